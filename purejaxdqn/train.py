"""`make_train`: the whole DQN run as one pure function of a key, ready for jit and vmap.

Loop structure (all `lax.scan`, no Python in the loop), each level a module-level
function of the run's `Parts`:

    train(key)
      scan over reports (num_frames / eval_every, and one more: the final evaluation)
        run_report: scan over blocks of block_frames = max(train_every, num_envs) frames
          run_block: scan over block_frames / num_envs acting steps (`act`: epsilon-
            greedy, one step of num_envs environments), one write to the replay, then
            block_frames / train_every learning steps (`learn_once`), skipped in warm-up
        report_metrics; greedy evaluation (`evaluate_state`: eval_episodes, or
        final_eval_episodes in the final report)

The final evaluation is a last report so that one compiled evaluation serves all of them.
Without periodic evaluation (eval_every=0) there is one report, then the final evaluation.
"""

import functools
import time
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn.agent import (LearnStats, epsilon_at, greedy_action, learn_step, make_optimizer,
                              make_q_network, select_action)
from purejaxdqn import layout, replay
from purejaxdqn.batching import varying_with
from purejaxdqn.replay import Transition, obs_codec
from purejaxdqn.config import Config, HyperParams
from purejaxdqn.distributed import over_seeds, seed_keys
from purejaxdqn.envs import has_binary_observations, legal_actions, resolve_env, step_envs
from purejaxdqn.evaluation import evaluate
from purejaxdqn.jax_backports import unroll_threefry_on_cpu


class TrainState(NamedTuple):
    """Everything the training scan carries; what a checkpoint saves."""

    online_params: Any
    target_params: Any
    opt_state: Any
    buffer_state: Any
    env_state: Any
    obs: chex.Array             # (num_envs, ...): each environment's current observation
    episode_return: chex.Array  # (num_envs,): return so far of each episode in progress
    frame: chex.Array           # frames taken so far, over all environments
    key: chex.PRNGKey


class TrainResult(NamedTuple):
    params: Any                 # trained online params
    metrics: dict               # name -> array with a trailing axis of reports (see below)


def report_frames(config: Config, report_every: int | None = None) -> np.ndarray:
    """The frame counts at which metrics are reported: eval_every, 2 * eval_every, ...
    (or every `report_every` frames, as a segmented run without evaluation reports)."""
    report_every = report_every or config.report_every
    return report_every * np.arange(1, config.num_frames // report_every + 1)


class Parts(NamedTuple):
    """What the pieces of a run share, fixed when it is built: the config, the environment,
    the network, the replay buffer, how observations are stored, and the loop's counts."""

    config: Config
    env: Any
    env_params: Any
    network: Any              # the Haiku Q-network
    buffer: Any               # the flashbax buffer (None: PQN has none)
    encode: Callable          # observation -> what the replay stores (see `obs_codec`)
    decode: Callable
    report_every: int         # frames per report

    @property
    def acts_per_block(self) -> int:
        """Acting steps per block, each a step of `num_envs` environments."""
        return self.config.block_frames // self.config.num_envs

    @property
    def learns_per_block(self) -> int:
        return self.config.block_frames // self.config.train_every

    @property
    def blocks_per_report(self) -> int:
        return self.report_every // self.config.block_frames

    @property
    def first_learning_block(self) -> int:
        """Block b (0-based) ends at frame (b + 1) * block_frames; it learns once the
        buffer holds `warmup_steps` transitions."""
        return max(-(-self.config.warmup_steps // self.config.block_frames) - 1, 0)


def env_keys(key, num_envs: int):
    """One key per environment; one environment keeps the key itself, so that num_envs=1
    is bitwise the unbatched run."""
    return key[None] if num_envs == 1 else jax.random.split(key, num_envs)


def exploration_epsilon(frame, hparams: HyperParams, config: Config):
    """Epsilon at `frame`: the linear schedule, or 0 where noisy networks explore."""
    if config.noisy:
        return jnp.float32(0.0)
    return epsilon_at(frame, hparams.eps_start, hparams.eps_end, hparams.eps_decay_frames)


def start_seed(parts: Parts, key):
    """What every loop's state starts from: (key, network params, observations and states
    of the `num_envs` environments reset)."""
    key, net_key, env_key = jax.random.split(key, 3)
    obs, env_state = jax.vmap(parts.env.reset, in_axes=(0, None))(
        env_keys(env_key, parts.config.num_envs), parts.env_params)
    return key, parts.network.init(net_key, obs[0]), obs, env_state


def init_state(parts: Parts, key, hparams: HyperParams) -> TrainState:
    """A seed's state at frame 0: networks, optimiser, empty replay, environments reset."""
    config, encode = parts.config, parts.encode
    key, params, obs, env_state = start_seed(parts, key)
    dummy = replay.stored(Transition(encode(obs[0]), jnp.int32(0), jnp.float32(0.0),
                                     jnp.bool_(False), encode(obs[0])), jnp.bool_(False),
                          config)
    opt_state = make_optimizer(hparams.learning_rate, hparams.max_grad_norm).init(params)
    state = TrainState(params, params, opt_state, parts.buffer.init(dummy), env_state, obs,
                       jnp.zeros(config.num_envs, jnp.float32), jnp.int32(0), key)
    # Batched from the start (see `varying_with`): all but the scalars, the counters every
    # seed shares (frames, Adam's step, the replay's write index), which stay unbatched so
    # that the replay write stays a slice update, not a scatter.
    return varying_with(key, state, where=lambda leaf: jnp.ndim(leaf) > 0)


def act(parts: Parts, state: TrainState, key, hparams: HyperParams):
    """One step of the `num_envs` environments, epsilon-greedy from one batched forward
    pass: (state, (stored transitions, done, episode returns so far)), leading axis the
    environments."""
    config, network = parts.config, parts.network
    act_key, env_key = jax.random.split(key)
    legal = legal_actions(parts.env, state.obs)
    if config.noisy:  # the noise explores: greedy in the freshly perturbed network
        q = network.apply(state.online_params, state.obs, act_key)
        action = greedy_action(q, legal)
    else:
        action = select_action(act_key, network.apply(state.online_params, state.obs),
                               exploration_epsilon(state.frame, hparams, config), legal)
    obs, env_state, reward, terminated, truncated, info = step_envs(
        parts.env, env_keys(env_key, config.num_envs), state.env_state, action,
        parts.env_params)
    reward = jnp.asarray(reward, jnp.float32)
    terminal = terminated if config.bootstrap_on_truncation else terminated | truncated
    transition = Transition(parts.encode(state.obs), action, reward,
                            jnp.asarray(terminal, jnp.bool_),
                            parts.encode(info["final_observation"]))
    done = jnp.asarray(terminated | truncated, jnp.bool_)
    episode_return = state.episode_return + reward
    state = state._replace(env_state=env_state, obs=obs, frame=state.frame + config.num_envs,
                           episode_return=jnp.where(done, 0.0, episode_return))
    return state, (replay.stored(transition, done, config), done, episode_return)


def learn_once(parts: Parts, state: TrainState, sample_key, learn_steps, learning,
               hparams: HyperParams):
    """One learning step (sample, TD update, target update), skipped while `learning` is
    false (warm-up); `learn_steps` counts learning steps so far, this one included."""
    config = parts.config
    beta = hparams.importance_beta_start + (1.0 - hparams.importance_beta_start) * (
        state.frame / config.num_frames)
    noise_key = None
    if config.noisy:
        sample_key, noise_key = jax.random.split(sample_key)
    drawn = replay.sample(parts.buffer, state.buffer_state, sample_key, config, beta,
                          hparams.gamma)
    batch = drawn.batch._replace(obs=parts.decode(drawn.batch.obs),
                                 next_obs=parts.decode(drawn.batch.next_obs))

    def learn(nets):
        *nets, stats, errors = learn_step(
            *nets, batch, learn_steps, hparams, parts.network, config, drawn.weights,
            drawn.steps, noise_key, legal_actions(parts.env, batch.next_obs),
            legal_actions(parts.env, batch.obs) if config.munchausen else None)
        return tuple(nets), stats, errors

    def skip(nets):
        return nets, LearnStats(*(jnp.float32(0.0),) * 3), jnp.zeros(config.batch_size)

    # `learning` comes from the scan's xs, never from the vmapped state, so this stays a
    # real branch under vmap instead of becoming a select of both sides.
    nets = (state.online_params, state.target_params, state.opt_state)
    (online, target, opt_state), stats, errors = jax.lax.cond(learning, learn, skip, nets)
    state = state._replace(online_params=online, target_params=target, opt_state=opt_state)
    if config.prioritized:
        # Before learning starts, sampled items keep the top priority new items get.
        top = jnp.full_like(errors, state.buffer_state.sum_tree_state.max_recorded_priority)
        priorities = jnp.where(learning, replay.new_priorities(errors, hparams.priority_exponent),
                               top)
        state = state._replace(buffer_state=parts.buffer.set_priorities(
            state.buffer_state, drawn.indices, priorities))
    return state, stats


def run_block(parts: Parts, state: TrainState, block_index, hparams: HyperParams):
    """`block_frames` frames of acting, one write of them to the replay, then
    `learns_per_block` learning steps unless still warming up: (state, (learning, learn
    stats, episodes ended, sum of their returns))."""
    config = parts.config
    key, sample_key, *act_keys = jax.random.split(state.key, 2 + parts.acts_per_block)
    state, (transitions, done, returns) = jax.lax.scan(
        lambda s, k: act(parts, s, k, hparams), state._replace(key=key), jnp.stack(act_keys),
        unroll=config.act_unroll)
    state = state._replace(
        buffer_state=replay.add(parts.buffer, state.buffer_state, transitions, config))
    learning = block_index >= parts.first_learning_block
    learned = (block_index - parts.first_learning_block) * parts.learns_per_block  # before
    if parts.learns_per_block == 1:
        state, stats = learn_once(parts, state, sample_key, learned + 1, learning, hparams)
        stats = jax.tree.map(lambda x: x[None], stats)
    else:
        state, stats = jax.lax.scan(
            lambda s, xs: learn_once(parts, s, xs[0], learned + xs[1], learning, hparams),
            state, (jax.random.split(sample_key, parts.learns_per_block),
                    jnp.arange(1, parts.learns_per_block + 1)))
    learning = jnp.broadcast_to(learning, (parts.learns_per_block,))
    return state, (learning, stats, jnp.sum(done), jnp.sum(jnp.where(done, returns, 0.0)))


def masked_mean(values, mask):
    """The mean of `values` where `mask` holds; NaN where it holds nowhere."""
    count = jnp.sum(mask)
    return jnp.where(count > 0, jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(count, 1),
                     jnp.nan)


def report_metrics(blocks_out, epsilon) -> dict:
    """A report's metrics from what its blocks returned (see `run_block`): the learning
    stats averaged over the steps that learned, epsilon, and the episodes ended."""
    learning, stats, episodes, return_sums = blocks_out
    total_episodes = jnp.sum(episodes)
    metrics = {name: masked_mean(value, learning) for name, value in stats._asdict().items()}
    metrics["epsilon"] = epsilon
    metrics["train_episodes"] = total_episodes
    metrics["train_episode_return"] = jnp.where(
        total_episodes > 0, jnp.sum(return_sums) / jnp.maximum(total_episodes, 1), jnp.nan)
    return metrics


def evaluate_state(parts: Parts, state: TrainState, final):
    """The greedy evaluation: `final_eval_episodes` episodes if `final` (which may be
    traced), else `eval_episodes`. With periodic evaluation on, one evaluation program
    computes both (see `run_report`), so that it is compiled once."""
    config = parts.config
    key, eval_key = jax.random.split(state.key)
    args = (eval_key, state.online_params, parts.network, parts.env, parts.env_params)
    if config.eval_every:
        means = evaluate(*args, (config.eval_episodes, config.final_eval_episodes))
        mean_return = jnp.where(final, means[1], means[0])
    else:
        mean_return = evaluate(*args, config.final_eval_episodes)
    return state._replace(key=key), mean_return


def run_report(parts: Parts, state: TrainState, report_index, hparams: HyperParams):
    """`blocks_per_report` blocks, then the metrics of this stretch. With periodic
    evaluation, report `config.num_reports` (one past the last) is the final evaluation:
    no blocks, `final_eval_episodes` episodes (see `make_train`)."""
    config = parts.config

    block = loop_of(config)[1]

    def blocks(state):
        indices = report_index * parts.blocks_per_report + jnp.arange(parts.blocks_per_report)
        return jax.lax.scan(lambda s, b: block(parts, s, b, hparams), state, indices)

    final = report_index == config.num_reports
    if config.eval_every:  # (`final` is never true without it: see `make_train`)
        # `report_index` comes from the scan's xs, so this stays a real branch under vmap;
        # the final report's blocks output nothing: zeros of what blocks return.
        nothing = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype),
                               jax.eval_shape(blocks, state)[1])
        state, blocks_out = jax.lax.cond(final, lambda s: (s, nothing), blocks, state)
    else:
        state, blocks_out = blocks(state)
    metrics = report_metrics(blocks_out, exploration_epsilon(state.frame, hparams, config))
    if config.eval_every:
        state, metrics["eval_return"] = evaluate_state(parts, state, final)
    return state, metrics


def loop_of(config: Config) -> tuple[Callable, Callable]:
    """(init_state, run_block) of `config.algorithm`: DQN's here, PQN's in `purejaxdqn.pqn`
    (which builds on this module's pieces, hence the import here)."""
    if config.algorithm == "pqn":
        from purejaxdqn import pqn

        return pqn.init_state, pqn.run_block
    return init_state, run_block


class Trainer(NamedTuple):
    """The pieces of a run, for callers that drive the scan themselves (tests, resumable
    runs). `make_train` composes them into one function."""

    init: Callable            # (key, hparams) -> TrainState
    run_reports: Callable     # (state, report_indices, hparams) -> (state, metrics)
    final_eval: Callable      # (state) -> (state, mean greedy return)
    network: Any              # the Haiku Q-network
    buffer: Any               # the flashbax buffer (None: PQN has none)


def make_parts(config: Config, env=None, env_params=None,
               report_every: int | None = None, network=None) -> Parts:
    """The `Parts` of a run; see `make_trainer`."""
    if report_every is not None and config.eval_every:
        raise ValueError("report_every is eval_every when periodic evaluation is on")
    env, env_params, num_actions = resolve_env(config.env_name, env, env_params)
    obs_shape = env.observation_space(env_params).shape
    encode, decode = obs_codec(obs_shape, has_binary_observations(env))
    return Parts(config, env, env_params, make_q_network(config, num_actions, obs_shape, network),
                 replay.make_buffer(config) if config.algorithm == "dqn" else None, encode,
                 decode, report_every or config.report_every)


def make_trainer(config: Config, env=None, env_params=None,
                 report_every: int | None = None, network=None) -> Trainer:
    """Build the pieces of a run; see `make_train` for the arguments. A report covers
    `report_every` frames (default `config.report_every`; another value only where
    `eval_every` is 0, so that a segmented run reports once per segment)."""
    parts = make_parts(config, env, env_params, report_every, network)
    unroll_threefry_on_cpu()

    def run_reports(state: TrainState, report_indices, hparams):
        return jax.lax.scan(lambda s, i: run_report(parts, s, i, hparams), state,
                            report_indices)

    return Trainer(functools.partial(loop_of(config)[0], parts), run_reports,
                   lambda state: evaluate_state(parts, state, final=True), parts.network,
                   parts.buffer)


def make_train(config: Config, env=None, env_params=None, network=None):
    """Build `train(key, hparams=None) -> TrainResult` for `config`.

    `env` (a gymnax Environment with a discrete action space, or an environment of one of
    the suites in `purejaxdqn.suites`) and `env_params` default to `config.env_name`'s.
    `network`, a Haiku function from a batch of observations to features, replaces
    `config.network`'s torso; the hidden layers and the Q head (plain, dueling, C51,
    noisy) go on top (see `agent.make_q_network`). `hparams` defaults to `config.hyperparams()`;
    pass a `HyperParams` of arrays to sweep them under `vmap`.

    `TrainResult.metrics` holds, per report (every `eval_every` frames, or once at the
    end when it is 0): `eval_return` (only when `eval_every` > 0), `loss`,
    `abs_td_error`, `q_value` (means over the learning steps since the last report),
    `epsilon`, `train_episode_return` and `train_episodes` (episodes completed since
    the last report); and `final_eval_return`, a scalar.
    """
    trainer = make_trainer(config, env, env_params, network=network)

    def train(key: chex.PRNGKey, hparams: HyperParams | None = None) -> TrainResult:
        hparams = config.hyperparams() if hparams is None else hparams
        state = trainer.init(key, hparams)
        if not config.eval_every:
            state, metrics = trainer.run_reports(state, jnp.arange(config.num_reports), hparams)
            state, metrics["final_eval_return"] = trainer.final_eval(state)
            return TrainResult(state.online_params, metrics)
        # The final evaluation as one more report: one compiled evaluation for all of them.
        state, metrics = trainer.run_reports(state, jnp.arange(config.num_reports + 1), hparams)
        final = metrics["eval_return"][-1]
        metrics = {name: value[:-1] for name, value in metrics.items()}
        return TrainResult(state.online_params, {**metrics, "final_eval_return": final})

    return train


def train_seeds(config: Config, num_seeds: int, seed: int = 0, env=None, env_params=None,
                timings: dict | None = None, network=None) -> TrainResult:
    """Train `num_seeds` independent seeds in one jitted program (`distributed.over_seeds`:
    on a CPU each device trains its seeds one after another, elsewhere they are vmapped).

    Seed i uses key i of `jax.random.split(jax.random.key(seed), num_seeds)`, on any
    number of devices and processes (see `distributed.seed_keys`); the result's seed axis
    stays split over the devices. On a CPU, if this call starts JAX, the seeds are split
    over one device per core (see `layout.use_cpu_devices`). If `timings` is a dict, it
    receives `compile_s` and `run_s` (wall-clock seconds). `env`, `env_params` and
    `network` are `make_train`'s.
    """
    layout.split_for(num_seeds)
    keys, drop_padding = seed_keys(seed, num_seeds)
    train = jax.jit(over_seeds(make_train(config, env, env_params, network), (0,)))
    return drop_padding(compile_and_run(train, (keys,), timings))


def compile_and_run(program, args: tuple, timings: dict | None = None):
    """Compile the jitted `program` ahead of time, then run it on `args`; if `timings` is
    a dict, record `compile_s` and `run_s` (wall-clock seconds) in it."""
    start = time.perf_counter()
    compiled = program.lower(*args).compile()
    compiled_at = time.perf_counter()
    result = jax.block_until_ready(compiled(*args))
    if timings is not None:
        timings["compile_s"] = compiled_at - start
        timings["run_s"] = time.perf_counter() - compiled_at
    return result
