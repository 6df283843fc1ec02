"""Policies over Q-values, and the action masks they respect: epsilon's schedule, the
greedy and epsilon-greedy actions every loop acts with, and the greedy and uniform
policies that evaluation plays. Illegal actions are masked here and nowhere else
(`mask_illegal`)."""

from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

from purejaxdqn.envs import legal_actions


def epsilon_at(frame: chex.Array, eps_start, eps_end, eps_decay_frames) -> chex.Array:
    """Linear epsilon schedule from `eps_start` to `eps_end` over `eps_decay_frames`."""
    fraction = jnp.clip(frame / eps_decay_frames, 0.0, 1.0)
    return eps_start + fraction * (eps_end - eps_start)


def legal_or_all(legal: chex.Array) -> chex.Array:
    """The legal actions (bool, last axis the actions), or all of them where none is."""
    return legal | ~jnp.any(legal, axis=-1, keepdims=True)


def mask_illegal(values: chex.Array, legal: chex.Array | None, fill=-jnp.inf) -> chex.Array:
    """`values` (last axis the actions, or with `legal` broadcast over trailing axes where
    `values` has more) with `fill` at the illegal actions; unchanged where `legal` is None
    (every action legal). Where no action is legal, all count as legal (`legal_or_all`)."""
    if legal is None:
        return values
    legal = legal_or_all(legal)
    legal = legal.reshape(legal.shape + (1,) * (values.ndim - legal.ndim))
    return jnp.where(legal, values, fill)


def greedy_action(q: chex.Array, legal: chex.Array | None = None) -> chex.Array:
    """The argmax over the last axis of `q`, among the `legal` actions where given."""
    return jnp.argmax(mask_illegal(q, legal), axis=-1).astype(jnp.int32)


def uniform_action(key: chex.PRNGKey, shape: tuple, num_actions: int,
                   legal: chex.Array | None = None) -> chex.Array:
    """Actions of `shape` drawn uniformly at random among the `num_actions` (among the
    `legal` ones, shaped `shape + (num_actions,)`, where given)."""
    if legal is None:
        return jax.random.randint(key, shape, 0, num_actions)
    return jax.random.categorical(key, mask_illegal(jnp.zeros(legal.shape), legal))


def select_action(key: chex.PRNGKey, q: chex.Array, epsilon: chex.Array,
                  legal: chex.Array | None = None) -> chex.Array:
    """Epsilon-greedy over the last axis of `q`: a uniform random action with
    probability `epsilon`, else the argmax; both among the `legal` actions (a bool mask
    shaped like `q`) where given. (rlax's `epsilon_greedy` is deprecated in favour of
    distrax, whose categorical draw costs more than these lines.)"""
    explore_key, action_key = jax.random.split(key)
    random_action = uniform_action(action_key, q.shape[:-1], q.shape[-1], legal)
    explore = jax.random.uniform(explore_key, q.shape[:-1]) < epsilon
    return jnp.where(explore, random_action, greedy_action(q, legal)).astype(jnp.int32)


class Policy(NamedTuple):
    """A policy as evaluation plays it: `act(key, obs, carry) -> (action, carry)`, from
    `carry` at an episode's start (a recurrent network's memory, or nothing)."""

    act: Callable
    carry: Any = ()


def greedy_policy(network, params, env=None) -> Policy:
    """The policy that takes the action of highest Q-value (among the legal ones, where
    `env` says which; see `envs.legal_actions`). A recurrent network (see
    `networks.RecurrentQNetwork`) carries its memory from step to step of one episode
    (`obs` then one observation), from a fresh one."""
    def legal(obs):
        return None if env is None else legal_actions(env, obs)

    if not hasattr(network, "initial_memory"):
        return Policy(lambda _, obs, carry: (greedy_action(network.apply(params, obs),
                                                           legal(obs)), carry))

    def recurrent(_, obs, memory):
        q, memories = network.apply(params, obs[None, None], jnp.zeros((1, 1), bool), memory)
        return greedy_action(q[0, 0], legal(obs)), jax.tree.map(lambda x: x[-1], memories)

    return Policy(recurrent, network.initial_memory(1))


def uniform_policy(env, env_params) -> Policy:
    """The policy that draws actions uniformly at random (among the legal actions, where
    `env` says which; see `envs.legal_actions`)."""
    num_actions = env.action_space(env_params).n
    return Policy(lambda key, obs, carry: (
        uniform_action(key, (), num_actions, legal_actions(env, obs)), carry))
