"""PQN (Gallici et al., "Simplifying Deep Temporal Difference Learning", ICLR 2025): the
second training loop, `Config(algorithm="pqn")`.

No replay and no target network. Each block is one update: every environment acts
epsilon-greedily for `num_steps` steps (`acting.rollout`, as DQN acts), Peng's Q(lambda)
targets (`learning.q_lambda_targets`) are computed over that rollout with the network as
it acted, then `num_epochs` passes of `num_minibatches` gradient steps regress the
Q-values on them. Registered in `purejaxdqn.algorithms`: reports, evaluation, segments
and checkpoints are the loop's (`purejaxdqn.train`, the runner), as for DQN.
"""

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from purejaxdqn.acting import Parts, block_out, rollout, start_seed
from purejaxdqn.batching import varying_with
from purejaxdqn.config import HyperParams
from purejaxdqn.envs import legal_actions
from purejaxdqn.learning import LOSS_FUNCTIONS, LearnStats, pqn_optimizer, q_lambda_targets


class PQNState(NamedTuple):
    """Everything PQN's training scan carries; what a checkpoint saves."""

    online_params: Any
    opt_state: Any
    env_state: Any
    obs: chex.Array             # (num_envs, ...): each environment's current observation
    episode_return: chex.Array  # (num_envs,): return so far of each episode in progress
    frame: chex.Array           # frames taken so far, over all environments
    key: chex.PRNGKey


def init_state(parts: Parts, key, hparams: HyperParams) -> PQNState:
    """A seed's state at frame 0: network, optimiser, environments reset."""
    config = parts.config
    key, params, obs, env_state = start_seed(parts, key)
    state = PQNState(params, pqn_optimizer(hparams, config).init(params), env_state, obs,
                     jnp.zeros(config.num_envs, jnp.float32), jnp.int32(0), key)
    # Batched from the start, but for the counters every seed shares (see `dqn.init_state`).
    return varying_with(key, state, where=lambda leaf: jnp.ndim(leaf) > 0)


def minibatch_step(parts: Parts, carry, minibatch, hparams: HyperParams):
    """One gradient step on a minibatch of (obs, action, target): `config.loss` of the
    difference between the target and the Q-value of the action taken."""
    params, opt_state = carry
    obs, action, target = minibatch
    config = parts.config

    def loss_fn(params):
        q = parts.network.apply(params, obs)
        q_taken = jnp.take_along_axis(q, action[:, None], axis=-1)[:, 0]
        td_error = target - q_taken
        stats = LearnStats(jnp.float32(0.0), jnp.mean(jnp.abs(td_error)), jnp.mean(q_taken))
        return jnp.mean(LOSS_FUNCTIONS[config.loss](td_error)), stats

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = pqn_optimizer(hparams, config).update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), stats._replace(loss=loss)


def run_block(parts: Parts, state: PQNState, block_index, hparams: HyperParams):
    """One update: a rollout of `num_steps` acting steps, its Q(lambda) targets, then
    `num_epochs` shuffled passes of `num_minibatches` gradient steps: (state, (learning,
    learn stats averaged over the update, episodes ended, sum of their returns)), as
    `BlockOut`)."""
    config = parts.config
    state, learn_key, (steps, done, returns) = rollout(parts, state, hparams)
    obs, next_obs = parts.decode(steps.obs), parts.decode(steps.next_obs)
    q_next = parts.network.apply(state.online_params, next_obs)
    targets = q_lambda_targets(q_next, steps.reward * config.reward_scale, steps.terminal,
                               done, hparams.gamma, hparams.q_lambda,
                               legal_actions(parts.env, next_obs))
    frames = config.block_frames
    flat = jax.tree.map(lambda x: x.reshape(frames, *x.shape[2:]),
                        (obs, steps.action, targets))

    def epoch(carry, key):
        order = jax.random.permutation(key, frames)
        minibatches = jax.tree.map(
            lambda x: x[order].reshape(config.num_minibatches, -1, *x.shape[1:]), flat)
        return jax.lax.scan(lambda c, mb: minibatch_step(parts, c, mb, hparams), carry,
                            minibatches)

    (params, opt_state), stats = jax.lax.scan(
        epoch, (state.online_params, state.opt_state),
        jax.random.split(learn_key, config.num_epochs))
    state = state._replace(online_params=params, opt_state=opt_state)
    stats = jax.tree.map(lambda x: jnp.mean(x)[None], stats)
    return state, block_out(jnp.ones(1, bool), stats, done, returns)
