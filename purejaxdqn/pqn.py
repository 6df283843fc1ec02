"""PQN (Gallici et al., "Simplifying Deep Temporal Difference Learning", ICLR 2025): the
second training loop, `Config(algorithm="pqn")`.

No replay and no target network. Each block is one update: every environment acts
epsilon-greedily for `num_steps` steps (DQN's `train.act`), Peng's Q(lambda) targets are
computed over that rollout with the network as it acted, then `num_epochs` passes of
`num_minibatches` gradient steps regress the Q-values on them. Reports, evaluation,
segments and checkpoints are DQN's (`train.run_report`, `train.evaluate_state`, the
runner): only the state (`PQNState`) and the block differ.
"""

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
import rlax

from purejaxdqn.agent import LOSSES, LearnStats, legal_or_all
from purejaxdqn.batching import varying_with
from purejaxdqn.config import Config, HyperParams
from purejaxdqn.envs import legal_actions
from purejaxdqn.train import Parts, act, start_seed


class PQNState(NamedTuple):
    """Everything PQN's training scan carries; what a checkpoint saves."""

    online_params: Any
    opt_state: Any
    env_state: Any
    obs: chex.Array             # (num_envs, ...): each environment's current observation
    episode_return: chex.Array  # (num_envs,): return so far of each episode in progress
    frame: chex.Array           # frames taken so far, over all environments
    key: chex.PRNGKey


def make_optimizer(hparams: HyperParams, config: Config) -> optax.GradientTransformation:
    """RAdam (PQN's own, as its authors' code has it) after global-norm clipping, its
    learning rate decaying linearly to 0 over the run's gradient steps where
    `config.lr_linear_decay`."""
    learning_rate = hparams.learning_rate
    if config.lr_linear_decay:
        steps = config.num_frames // config.block_frames * config.num_epochs * config.num_minibatches
        learning_rate = optax.linear_schedule(hparams.learning_rate, 0.0, steps)
    return optax.chain(optax.clip_by_global_norm(hparams.max_grad_norm),
                       optax.radam(learning_rate))


def init_state(parts: Parts, key, hparams: HyperParams) -> PQNState:
    """A seed's state at frame 0: network, optimiser, environments reset."""
    config = parts.config
    key, params, obs, env_state = start_seed(parts, key)
    state = PQNState(params, make_optimizer(hparams, config).init(params), env_state, obs,
                     jnp.zeros(config.num_envs, jnp.float32), jnp.int32(0), key)
    # Batched from the start, but for the counters every seed shares (see `train.init_state`).
    return varying_with(key, state, where=lambda leaf: jnp.ndim(leaf) > 0)


def q_lambda_targets(q_next: chex.Array, reward: chex.Array, terminal: chex.Array,
                     done: chex.Array, gamma, lambda_, legal_next=None) -> chex.Array:
    """Peng's Q(lambda) targets over a rollout, time-major ((steps, envs), `q_next`
    (steps, envs, actions): Q at each step's next observation, the true final one where
    an episode ended). G_t = r_t + d_t ((1 - l_t) max Q(s_t+1) + l_t G_t+1), with d_t =
    gamma, or 0 where the episode terminated, and l_t = lambda, or 0 where it ended
    (terminated or truncated): a return never runs into the next episode, and a truncation
    bootstraps from its final observation. The rollout's last step bootstraps from its next
    observation alone (`rlax.lambda_returns`)."""
    if legal_next is not None:
        q_next = jnp.where(legal_or_all(legal_next), q_next, -jnp.inf)
    value_next = jnp.max(q_next, axis=-1)
    discount = gamma * (1.0 - terminal.astype(jnp.float32))
    lambdas = lambda_ * (1.0 - done.astype(jnp.float32))
    returns = jax.vmap(rlax.lambda_returns, in_axes=1, out_axes=1)
    return returns(reward, discount, value_next, lambdas)


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
        return jnp.mean(LOSSES[config.loss](td_error)), stats

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = make_optimizer(hparams, config).update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), stats._replace(loss=loss)


def run_block(parts: Parts, state: PQNState, block_index, hparams: HyperParams):
    """One update: a rollout of `num_steps` acting steps, its Q(lambda) targets, then
    `num_epochs` shuffled passes of `num_minibatches` gradient steps: (state, (learning,
    learn stats averaged over the update, episodes ended, sum of their returns)), as
    `train.run_block` returns them."""
    config = parts.config
    key, learn_key, *act_keys = jax.random.split(state.key, 2 + config.num_steps)
    state, (rollout, done, returns) = jax.lax.scan(
        lambda s, k: act(parts, s, k, hparams), state._replace(key=key), jnp.stack(act_keys),
        unroll=config.act_unroll)
    obs, next_obs = parts.decode(rollout.obs), parts.decode(rollout.next_obs)
    q_next = parts.network.apply(state.online_params, next_obs)
    targets = q_lambda_targets(q_next, rollout.reward * config.reward_scale, rollout.terminal,
                               done, hparams.gamma, hparams.q_lambda,
                               legal_actions(parts.env, next_obs))
    frames = config.block_frames
    flat = jax.tree.map(lambda x: x.reshape(frames, *x.shape[2:]),
                        (obs, rollout.action, targets))

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
    return state, (jnp.ones(1, bool), stats, jnp.sum(done),
                   jnp.sum(jnp.where(done, returns, 0.0)))
