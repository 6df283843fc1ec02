"""The DQN agent: Q-network, epsilon-greedy acting, TD loss, learning step, target update."""

from typing import NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import optax
import rlax

from purejaxdqn.config import Config


class Transition(NamedTuple):
    """One replay item. `next_obs` is the true successor (gymnax's `final_observation`),
    not the auto-reset observation; `terminal` marks transitions that must not bootstrap."""

    obs: chex.Array
    action: chex.Array
    reward: chex.Array
    terminal: chex.Array
    next_obs: chex.Array


def make_q_network(config: Config, num_actions: int | None = None) -> hk.Transformed:
    """Haiku MLP from vector observations (any dtype) to `num_actions` Q-values.

    `num_actions` defaults to that of `config.env_name`.
    """
    if num_actions is None:
        from purejaxdqn.envs import resolve_env

        num_actions = resolve_env(config.env_name)[2]

    def q_values(obs):
        # Observations are stored in their native dtype; cast here, where they are used.
        return hk.nets.MLP([*config.hidden_sizes, num_actions])(obs.astype(jnp.float32))

    return hk.without_apply_rng(hk.transform(q_values))


def epsilon_at(frame: chex.Array, eps_start, eps_end, eps_decay_frames) -> chex.Array:
    """Linear epsilon schedule from `eps_start` to `eps_end` over `eps_decay_frames`."""
    fraction = jnp.clip(frame / eps_decay_frames, 0.0, 1.0)
    return eps_start + fraction * (eps_end - eps_start)


def select_action(key: chex.PRNGKey, q: chex.Array, epsilon: chex.Array) -> chex.Array:
    """Epsilon-greedy over the last axis of `q`: a uniform random action with
    probability `epsilon`, else the argmax. (rlax's `epsilon_greedy` is deprecated in
    favour of distrax, whose categorical draw costs more than these three lines.)"""
    explore_key, action_key = jax.random.split(key)
    random_action = jax.random.randint(action_key, q.shape[:-1], 0, q.shape[-1])
    explore = jax.random.uniform(explore_key, q.shape[:-1]) < epsilon
    return jnp.where(explore, random_action, jnp.argmax(q, axis=-1)).astype(jnp.int32)


class LearnStats(NamedTuple):
    loss: chex.Array
    abs_td_error: chex.Array
    q_value: chex.Array


def td_loss(online_params, target_params, batch: Transition, gamma, network: hk.Transformed):
    """Mean Huber loss of the Q-learning TD errors of a batch, and its `LearnStats`."""
    q_tm1 = network.apply(online_params, batch.obs)
    q_t = network.apply(target_params, batch.next_obs)
    discount_t = gamma * (1.0 - batch.terminal.astype(jnp.float32))
    td_error = jax.vmap(rlax.q_learning)(q_tm1, batch.action, batch.reward, discount_t, q_t)
    loss = jnp.mean(rlax.huber_loss(td_error, 1.0))
    q_taken = jnp.take_along_axis(q_tm1, batch.action[:, None], axis=-1)
    return loss, LearnStats(loss, jnp.mean(jnp.abs(td_error)), jnp.mean(q_taken))


def make_optimizer(learning_rate, max_grad_norm) -> optax.GradientTransformation:
    """Adam after global-norm clipping; both arguments may be traced values."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))


def learn_step(online_params, target_params, opt_state, batch, hparams, network):
    """One gradient step on `batch`, then the soft target update.

    Returns the new (online_params, target_params, opt_state) and `LearnStats`.
    """
    grads, stats = jax.grad(td_loss, has_aux=True)(
        online_params, target_params, batch, hparams.gamma, network)
    optimizer = make_optimizer(hparams.learning_rate, hparams.max_grad_norm)
    updates, opt_state = optimizer.update(grads, opt_state, online_params)
    online_params = optax.apply_updates(online_params, updates)
    target_params = optax.incremental_update(online_params, target_params, hparams.tau)
    return online_params, target_params, opt_state, stats
