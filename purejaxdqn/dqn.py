"""DQN and its variants (`Config(algorithm="dqn")`, the default): a replay buffer, a target
network, and per block `block_frames` frames of acting, one write to the replay, then
`block_frames / train_every` learning steps, skipped in warm-up.

Registered in `purejaxdqn.algorithms`; the loop (`purejaxdqn.train`) runs its blocks."""

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from purejaxdqn import replay
from purejaxdqn.acting import Parts, block_out, rollout, start_seed
from purejaxdqn.batching import varying_with
from purejaxdqn.config import Config, HyperParams
from purejaxdqn.envs import legal_actions
from purejaxdqn.learning import (apply_gradients, learn_from_replay, learn_in_block,
                                 make_optimizer, td_loss)
from purejaxdqn.replay import Transition


class TrainState(NamedTuple):
    """Everything DQN's training scan carries; what a checkpoint saves."""

    online_params: Any
    target_params: Any
    opt_state: Any
    buffer_state: Any
    env_state: Any
    obs: chex.Array             # (num_envs, ...): each environment's current observation
    episode_return: chex.Array  # (num_envs,): return so far of each episode in progress
    frame: chex.Array           # frames taken so far, over all environments
    key: chex.PRNGKey


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


def learn_step(online_params, target_params, opt_state, batch, learn_steps, hparams,
               network, config: Config, weights=None, steps=1, noise_key=None, legal_t=None,
               legal_tm1=None):
    """One gradient step on `batch` (importance-weighted by `weights` if given), then the
    target update (see `update_target`).

    Returns the new (online_params, target_params, opt_state), `LearnStats` and the
    errors of the batch that set new priorities (see `learning.td_loss`, and its `legal_t`
    and `legal_tm1`).
    """
    grads, (stats, errors) = jax.grad(td_loss, has_aux=True)(
        online_params, target_params, batch, hparams.gamma, network, config, weights, steps,
        noise_key, legal_t, legal_tm1)
    return (*apply_gradients(grads, online_params, target_params, opt_state, learn_steps,
                             hparams, config), stats, errors)


def learn_once(parts: Parts, state: TrainState, sample_key, learn_steps, learning,
               hparams: HyperParams):
    """One learning step (sample, TD update, target update), skipped while `learning` is
    false (warm-up); `learn_steps` counts learning steps so far, this one included."""
    config = parts.config
    noise_key = None
    if config.noisy:
        sample_key, noise_key = jax.random.split(sample_key)

    def learn(nets, drawn):
        batch = drawn.batch._replace(obs=parts.decode(drawn.batch.obs),
                                     next_obs=parts.decode(drawn.batch.next_obs))
        *nets, stats, errors = learn_step(
            *nets, batch, learn_steps, hparams, parts.network, config, drawn.weights,
            drawn.steps, noise_key, legal_actions(parts.env, batch.next_obs),
            legal_actions(parts.env, batch.obs) if config.munchausen else None)
        return tuple(nets), stats, errors

    return learn_from_replay(parts.buffer, state, sample_key, learning, hparams, config, learn)


def run_block(parts: Parts, state: TrainState, block_index, hparams: HyperParams):
    """`block_frames` frames of acting, one write of them to the replay, then
    `learning.learns_per_block` learning steps unless still warming up: (state, `BlockOut`)."""
    config = parts.config
    state, sample_key, (transitions, done, returns) = rollout(parts, state, hparams)
    state = state._replace(
        buffer_state=replay.add(parts.buffer, state.buffer_state, transitions, config))
    state, learning, stats = learn_in_block(
        lambda s, key, learn_steps, learning: learn_once(parts, s, key, learn_steps, learning,
                                                         hparams),
        state, sample_key, block_index, config)
    return state, block_out(learning, stats, done, returns)
