"""`make_train`: the whole run as one pure function of a key, ready for jit and vmap. This
is the loop every algorithm shares; the algorithms themselves (`purejaxdqn.dqn`,
`purejaxdqn.pqn`) are registered in `purejaxdqn.algorithms`, and each supplies its state
and its block.

Loop structure (all `lax.scan`, no Python in the loop), each level a module-level
function of the run's `Parts`:

    train(key)
      scan over reports (num_frames / eval_every, and one more: the final evaluation)
        run_report: scan over blocks_per_report blocks of `config.block_frames` frames
          the algorithm's run_block: the acting rollout (`acting.rollout`), then its
            learning (DQN: a write to the replay, then learning steps, skipped in warm-up;
            PQN: Q(lambda) targets and minibatch epochs)
        report_metrics; greedy evaluation (`evaluate_state`: eval_episodes, or
        final_eval_episodes in the final report)

The final evaluation is a last report so that one compiled evaluation serves all of them.
Without periodic evaluation (eval_every=0) there is one report, then the final evaluation.
"""

import contextlib
import functools
import time
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn import layout
from purejaxdqn.acting import Parts, exploration_epsilon
from purejaxdqn.algorithms import algorithm_of
from purejaxdqn.config import Config, HyperParams
from purejaxdqn.distributed import maps_seeds, over_seeds, seed_keys, seed_sharding
from purejaxdqn.envs import has_binary_observations, resolve_env
from purejaxdqn.evaluation import evaluate
from purejaxdqn.jax_backports import unroll_threefry_on_cpu
from purejaxdqn.networks import make_q_network
from purejaxdqn.progress import Progress
from purejaxdqn.replay import obs_codec


class TrainResult(NamedTuple):
    params: Any                 # trained online params
    metrics: dict               # name -> array with a trailing axis of reports (see below)


def report_frames(config: Config, report_every: int | None = None) -> np.ndarray:
    """The frame counts at which metrics are reported: eval_every, 2 * eval_every, ...
    (or every `report_every` frames, as a segmented run without evaluation reports)."""
    report_every = report_every or config.report_every
    return report_every * np.arange(1, config.num_frames // report_every + 1)


def masked_mean(values, mask):
    """The mean of `values` where `mask` holds; NaN where it holds nowhere."""
    count = jnp.sum(mask)
    return jnp.where(count > 0, jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(count, 1),
                     jnp.nan)


def report_metrics(blocks_out, epsilon) -> dict:
    """A report's metrics from what its blocks returned (`acting.BlockOut`s): the learning
    stats averaged over the steps that learned, epsilon, and the episodes ended."""
    learning, stats, episodes, return_sums = blocks_out
    total_episodes = jnp.sum(episodes)
    metrics = {name: masked_mean(value, learning) for name, value in stats._asdict().items()}
    metrics["epsilon"] = epsilon
    metrics["train_episodes"] = total_episodes
    metrics["train_episode_return"] = jnp.where(
        total_episodes > 0, jnp.sum(return_sums) / jnp.maximum(total_episodes, 1), jnp.nan)
    return metrics


def evaluate_state(parts: Parts, state, final):
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


def run_blocks(parts: Parts, state, block_indices, hparams: HyperParams):
    """The algorithm's blocks at `block_indices`, one after another: (state, what each
    block returned, stacked)."""
    block = algorithm_of(parts.config).run_block
    return jax.lax.scan(lambda s, b: block(parts, s, b, hparams), state, block_indices)


def finish_report(parts: Parts, state, blocks_out, final, hparams: HyperParams):
    """A report's metrics from what its blocks returned, and with periodic evaluation its
    greedy evaluation (`final`: the final one)."""
    config = parts.config
    metrics = report_metrics(blocks_out, exploration_epsilon(state.frame, hparams, config))
    if config.eval_every:
        state, metrics["eval_return"] = evaluate_state(parts, state, final)
    return state, metrics


def run_report(parts: Parts, state, report_index, hparams: HyperParams):
    """`blocks_per_report` blocks, then the metrics of this stretch. With periodic
    evaluation, report `config.num_reports` (one past the last) is the final evaluation:
    no blocks, `final_eval_episodes` episodes (see `make_train`)."""
    def blocks(state):
        first = report_index * parts.blocks_per_report
        return run_blocks(parts, state, first + jnp.arange(parts.blocks_per_report), hparams)

    final = report_index == parts.config.num_reports
    if parts.config.eval_every:  # (`final` is never true without it: see `make_train`)
        # `report_index` comes from the scan's xs, so this stays a real branch under vmap;
        # the final report's blocks output nothing: zeros of what blocks return.
        nothing = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype),
                               jax.eval_shape(blocks, state)[1])
        state, blocks_out = jax.lax.cond(final, lambda s: (s, nothing), blocks, state)
    else:
        state, blocks_out = blocks(state)
    return finish_report(parts, state, blocks_out, final, hparams)


class Trainer(NamedTuple):
    """The pieces of a run, for callers that drive the scan themselves (tests, resumable
    runs). `make_train` composes them into one function."""

    init: Callable            # (key, hparams) -> the algorithm's state
    run_reports: Callable     # (state, report_indices, hparams) -> (state, metrics)
    final_eval: Callable      # (state) -> (state, mean greedy return)
    run_blocks: Callable      # (state, block_indices, hparams) -> (state, blocks' outputs)
    finish_report: Callable   # (state, blocks' outputs, final, hparams) -> (state, metrics)
    network: Any              # the Haiku Q-network
    buffer: Any               # the flashbax buffer (None where the algorithm keeps none)


def make_parts(config: Config, env=None, env_params=None,
               report_every: int | None = None, network=None) -> Parts:
    """The `Parts` of a run; see `make_trainer`."""
    if report_every is not None and config.eval_every:
        raise ValueError("report_every is eval_every when periodic evaluation is on")
    env, env_params, num_actions = resolve_env(config.env_name, env, env_params,
                                               config.env_params)
    obs_shape = env.observation_space(env_params).shape
    encode, decode = obs_codec(obs_shape, has_binary_observations(env, env_params))
    make_buffer = algorithm_of(config).make_buffer
    return Parts(config, env, env_params, make_q_network(config, num_actions, obs_shape, network),
                 make_buffer(config) if make_buffer else None, encode, decode,
                 report_every or config.report_every)


def make_trainer(config: Config, env=None, env_params=None,
                 report_every: int | None = None, network=None) -> Trainer:
    """Build the pieces of a run; see `make_train` for the arguments. A report covers
    `report_every` frames (default `config.report_every`; another value only where
    `eval_every` is 0, so that a segmented run reports once per segment)."""
    parts = make_parts(config, env, env_params, report_every, network)
    unroll_threefry_on_cpu()

    def run_reports(state, report_indices, hparams):
        return jax.lax.scan(lambda s, i: run_report(parts, s, i, hparams), state,
                            report_indices)

    return Trainer(functools.partial(algorithm_of(config).init_state, parts), run_reports,
                   lambda state: evaluate_state(parts, state, final=True),
                   functools.partial(run_blocks, parts), functools.partial(finish_report, parts),
                   parts.network, parts.buffer)


def make_train(config: Config, env=None, env_params=None, network=None):
    """Build `train(key, hparams=None) -> TrainResult` for `config`.

    `env` (a gymnax Environment with a discrete action space, or an environment of one of
    the suites in `purejaxdqn.suites`) and `env_params` default to `config.env_name`'s.
    `network`, a Haiku function from a batch of observations to features, replaces
    `config.network`'s torso; the hidden layers and the Q head (plain, dueling, C51,
    noisy) go on top (see `networks.make_q_network`). `hparams` defaults to `config.hyperparams()`;
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


# A run without periodic evaluation shows its progress in about SEGMENTS segments, fewer
# where that would make segments of under SEGMENT_FRAMES frames across its runs (each
# costs a little), but no fewer than MIN_SEGMENTS (`segment_blocks`).
SEGMENTS, MIN_SEGMENTS, SEGMENT_FRAMES = 50, 10, 20_000


def segment_blocks(config: Config, runs: int = 1) -> int:
    """Blocks per segment of `run_in_segments` over `runs` runs without periodic
    evaluation: the divisor of the run's blocks nearest (in ratio) to what cuts it into the
    segments wanted."""
    segments = np.clip(config.num_frames * runs // SEGMENT_FRAMES, MIN_SEGMENTS, SEGMENTS)
    blocks = config.num_frames // config.block_frames
    divisors = [d for d in range(1, blocks + 1) if blocks % d == 0]
    return min(divisors, key=lambda d: abs(np.log(d * segments / blocks)))


def run_in_segments(trainer: Trainer, config: Config, batch: Callable, keys,
                    progress=None, timings: dict | None = None) -> TrainResult:
    """The run `make_train(config)` is, as a sequence of calls that gives that one
    program's bits, with `progress` (a `progress.Progress`, entered once they are
    compiled) updated on the host between them: with periodic evaluation, a call per
    report (the last, the final evaluation), the one program's scan body; without, the
    run's one report in segments of `segment_blocks(config, runs)` blocks, its metrics
    from all of them, then the final evaluation.

    `batch(fn, in_axes)` maps a trainer function `fn(*args, hparams)` over the runs (a
    run's seeds, a sweep's settings) as the one program does, hyperparameters included;
    `keys` holds one key per run. Returns a `TrainResult` whose metrics have the report
    axis last. `timings`, if a dict, receives `compile_s` and `run_s`."""
    start = time.perf_counter()
    state = jax.jit(batch(trainer.init, (0,)))(keys)
    if config.eval_every:
        program, size = trainer.run_reports, 1
        calls = [(r, config.report_every * min(r + 1, config.num_reports))
                 for r in range(config.num_reports + 1)]
    else:
        program, size = trainer.run_blocks, segment_blocks(config, keys.size)
        calls = [(first, (first + size) * config.block_frames)
                 for first in range(0, config.num_frames // config.block_frames, size)]
    run = jax.jit(batch(program, (0, None)), donate_argnums=0).lower(
        state, jnp.arange(size)).compile()
    if not config.eval_every:  # the report's metrics from every segment's blocks
        def report(state, chunks, hparams):
            blocks_out = jax.tree.map(lambda *c: jnp.concatenate(c), *chunks)
            return trainer.finish_report(state, blocks_out, False, hparams)[1]

        chunk = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                            sharding=x.sharding),
                             run.out_info[1])
        report = jax.jit(batch(report, (0, 0))).lower(state, (chunk,) * len(calls)).compile()
        final_eval = jax.jit(batch(lambda s, hparams: trainer.final_eval(s), (0,)),
                             donate_argnums=0).lower(state).compile()
    compiled_at = time.perf_counter()

    outs, pending = [], []
    with progress or contextlib.nullcontext():
        for first, frames in calls:
            state, out = run(state, jnp.arange(first, first + size))
            outs.append(out)
            if progress:  # the call before this one, once it is done
                if pending:
                    jax.block_until_ready(pending[0][0])
                    progress.update(pending.pop()[1])
                pending.append((out, frames))
        if config.eval_every:  # the final evaluation is the last report
            metrics = jax.tree.map(lambda *m: jnp.concatenate(m, axis=-1), *outs)
            final = metrics["eval_return"][..., -1]
            metrics = {name: value[..., :-1] for name, value in metrics.items()}
        else:
            metrics = jax.tree.map(lambda m: m[..., None], report(state, tuple(outs)))
            state, final = final_eval(state)
        result = jax.block_until_ready(TrainResult(state.online_params,
                                                   {**metrics, "final_eval_return": final}))
        if progress:
            progress.update(config.num_frames)
    if timings is not None:
        timings["compile_s"] = compiled_at - start
        timings["run_s"] = time.perf_counter() - compiled_at
    return result


def groups_of_runs(runs: int) -> bool:
    """Whether a run shows its progress group by group (`run_in_groups`): on a CPU, where
    each device runs its seeds one after another, with at least MIN_SEGMENTS each; else
    it goes in segments of blocks (`run_in_segments`)."""
    return maps_seeds() and runs // jax.device_count() >= MIN_SEGMENTS


def group_size(per_device: int, groups: int = SEGMENTS) -> int:
    """Seeds per device in each call of `run_in_groups`: the divisor of `per_device`
    nearest (in ratio) to what makes `groups` calls."""
    divisors = [d for d in range(1, per_device + 1) if per_device % d == 0]
    return min(divisors, key=lambda d: abs(np.log(d * groups / per_device)))


def run_in_groups(program, args: tuple, progress, frames: int,
                  timings: dict | None = None):
    """`program` (jitted, `over_seeds`: each device's runs one after another) on `args`
    (arrays whose leading axis is the runs, split over the devices), as a sequence of
    calls on a group of each device's runs (`group_size`): each run computed as the one
    call computes it, so with its bits, and no more of them in memory at once.
    `progress` (a `progress.Progress`), entered once the group's program is compiled, is
    updated as each group ends; a run is `frames` long."""
    devices = jax.device_count()
    per_device = args[0].shape[0] // devices
    size = group_size(per_device)
    sharding = seed_sharding()

    @functools.partial(jax.jit, out_shardings=sharding)
    def group(args, first):  # runs first .. first + size of every device
        return jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(
            x.reshape(devices, per_device, *x.shape[1:]), first, size, axis=1).reshape(
            devices * size, *x.shape[1:]), args)

    @functools.partial(jax.jit, out_shardings=sharding)
    def join(outs):  # groups x (devices x size) -> devices x groups x size
        return jax.tree.map(lambda *x: jnp.stack(x).reshape(
            len(x), devices, size, *x[0].shape[1:]).swapaxes(0, 1).reshape(
            devices * per_device, *x[0].shape[1:]), *outs)

    start = time.perf_counter()
    compiled = program.lower(*group(args, 0)).compile()
    compiled_at = time.perf_counter()
    outs = []
    with progress or contextlib.nullcontext():
        for first in range(0, per_device, size):
            outs.append(compiled(*group(args, first)))
            if progress and len(outs) > 1:  # the group before this one, once it is done
                jax.block_until_ready(outs[-2])
                progress.update(round(frames * (first / per_device)))
        result = jax.block_until_ready(join(outs))
        if progress:
            progress.update(frames)
    if timings is not None:
        timings["compile_s"] = compiled_at - start
        timings["run_s"] = time.perf_counter() - compiled_at
    return result


def train_seeds(config: Config, num_seeds: int, seed: int = 0, env=None, env_params=None,
                timings: dict | None = None, network=None, progress=False) -> TrainResult:
    """Train `num_seeds` independent seeds in one jitted program (`distributed.over_seeds`:
    on a CPU each device trains its seeds one after another, elsewhere they are vmapped).

    Seed i uses key i of `jax.random.split(jax.random.key(seed), num_seeds)`, on any
    number of devices and processes (see `distributed.seed_keys`); the result's seed axis
    stays split over the devices. On a CPU, if this call starts JAX, the seeds are split
    over one device per core (see `layout.use_cpu_devices`). If `timings` is a dict, it
    receives `compile_s` and `run_s` (wall-clock seconds). `env`, `env_params` and
    `network` are `make_train`'s. With `progress` (True: a tqdm bar; or a
    `progress.Progress`), the run goes in segments (`run_in_segments`), with the same bits.
    """
    layout.split_for(num_seeds)
    keys, drop_padding = seed_keys(seed, num_seeds)
    if progress is True:
        progress = Progress(config.num_frames, num_seeds, desc=f"{num_seeds} seeds")
    train = jax.jit(over_seeds(make_train(config, env, env_params, network), (0,)))
    if progress and groups_of_runs(keys.shape[0]):
        return drop_padding(run_in_groups(train, (keys,), progress, config.num_frames, timings))
    if progress:
        hparams = config.hyperparams()  # constants, as `make_train`'s default has them
        trainer = make_trainer(config, env, env_params, network=network)
        result = run_in_segments(
            trainer, config, lambda fn, axes: over_seeds(lambda *a: fn(*a, hparams), axes),
            keys, progress, timings)
        return drop_padding(result)
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
