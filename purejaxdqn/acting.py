"""What every algorithm's block is made of, below the algorithms and the loop: the parts
of a run (`Parts`), a seed's start (`start_seed`), one epsilon-greedy step of the
environments (`act`), the acting rollout over a block (`rollout`, the one acting scan),
and what a block returns to the loop (`BlockOut`).

An algorithm's state is a NamedTuple with at least the fields `act` reads and writes:
`online_params`, `env_state`, `obs`, `episode_return`, `frame` and `key`."""

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

from purejaxdqn import replay
from purejaxdqn.config import Config, HyperParams
from purejaxdqn.envs import legal_actions, step_envs
from purejaxdqn.learning import LearnStats
from purejaxdqn.policies import epsilon_at, greedy_action, select_action
from purejaxdqn.replay import Transition


class Parts(NamedTuple):
    """What the pieces of a run share, fixed when it is built: the config, the environment,
    the network, the replay buffer, how observations are stored, and frames per report."""

    config: Config
    env: Any
    env_params: Any
    network: Any              # the Haiku Q-network
    buffer: Any               # the flashbax buffer (None where the algorithm keeps none)
    encode: Callable          # observation -> what the replay stores (see `obs_codec`)
    decode: Callable
    report_every: int         # frames per report

    @property
    def acts_per_block(self) -> int:
        """Acting steps per block, each a step of `num_envs` environments."""
        return self.config.block_frames // self.config.num_envs

    @property
    def blocks_per_report(self) -> int:
        return self.report_every // self.config.block_frames


class BlockOut(NamedTuple):
    """What a block returns to the loop, which makes a report's metrics of them (see
    `train.report_metrics`)."""

    learning: chex.Array      # (learning steps,) bool: the steps that learned
    stats: LearnStats         # each (learning steps,)
    episodes: chex.Array      # episodes that ended in the block
    return_sum: chex.Array    # the sum of their returns


def block_out(learning, stats: LearnStats, done, returns) -> BlockOut:
    """A `BlockOut` from the learning steps' flags and stats and the rollout's `done` and
    episode returns so far (see `act`)."""
    return BlockOut(learning, stats, jnp.sum(done), jnp.sum(jnp.where(done, returns, 0.0)))


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
    """What every algorithm's state starts from: (key, network params, observations and
    states of the `num_envs` environments reset)."""
    key, net_key, env_key = jax.random.split(key, 3)
    obs, env_state = jax.vmap(parts.env.reset, in_axes=(0, None))(
        env_keys(env_key, parts.config.num_envs), parts.env_params)
    return key, parts.network.init(net_key, obs[0]), obs, env_state


def feedforward_q(parts: Parts, state, noise_key):
    """Q-values at the state's observations (a noisy network's noise drawn with
    `noise_key`, where given), and the state, unchanged."""
    noise = () if noise_key is None else (noise_key,)
    return parts.network.apply(state.online_params, state.obs, *noise), state


def act(parts: Parts, state, key, hparams: HyperParams, q_values: Callable = feedforward_q):
    """One step of the `num_envs` environments, epsilon-greedy from one batched forward
    pass (`q_values(parts, state, noise_key) -> (q, state)`: `feedforward_q`, or a
    recurrent network's, which moves its memory on): (state, (stored transitions, done,
    episode returns so far)), leading axis the environments."""
    config = parts.config
    act_key, env_key = jax.random.split(key)
    legal = legal_actions(parts.env, state.obs)
    q, state = q_values(parts, state, act_key if config.noisy else None)
    if config.noisy:  # the noise explores: greedy in the freshly perturbed network
        action = greedy_action(q, legal)
    else:
        action = select_action(act_key, q, exploration_epsilon(state.frame, hparams, config),
                               legal)
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


def rollout(parts: Parts, state, hparams: HyperParams, step: Callable = act):
    """`acts_per_block` acting steps (`step`, by default `act`) in one scan, from keys
    split off the state's: (state, a key for the block's learning, what the steps return:
    (stored transitions, done, episode returns so far), leading axes (steps,
    environments))."""
    key, learn_key, *act_keys = jax.random.split(state.key, 2 + parts.acts_per_block)
    state, out = jax.lax.scan(lambda s, k: step(parts, s, k, hparams), state._replace(key=key),
                              jnp.stack(act_keys), unroll=parts.config.act_unroll)
    return state, learn_key, out


def last(memories):
    """The core's state after a sequence's last step."""
    return jax.tree.map(lambda x: x[-1], memories)


def recurrent_q(parts: Parts, state, _noise_key):
    """Q-values at the state's observations, and the state with each environment's
    memory moved on by that step (reset first where an episode starts)."""
    q, memories = parts.network.apply(state.online_params, state.obs[None], state.first[None],
                                      state.memory)
    return q[0], state._replace(memory=last(memories))


def recurrent_act(parts: Parts, state, key, hparams: HyperParams):
    """`act` with a recurrent network (`recurrent_q`; the state also carries `memory` and
    `first`, see `networks.RecurrentQNetwork`): (state, ((stored transitions, first,
    memory before the step), done, episode returns so far))."""
    before = (state.first, state.memory)
    state, (stored, done, returns) = act(parts, state, key, hparams, recurrent_q)
    return state._replace(first=done), ((stored, *before), done, returns)
