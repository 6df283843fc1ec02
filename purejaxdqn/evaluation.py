"""Whole episodes of a fixed policy: the greedy agent's return, and a random policy's."""

from typing import Callable

import chex
import jax
import jax.numpy as jnp

from purejaxdqn.batching import varying_with


def episode_returns(key, policy: Callable, env, env_params, num_episodes: int) -> chex.Array:
    """Undiscounted returns, shape (num_episodes,), of `policy(key, obs) -> action`.

    The episodes run side by side for `max_steps_in_episode` steps; rewards after an
    episode's first termination or truncation are masked out.
    """
    def episode_return(key):
        reset_key, step_key = jax.random.split(key)
        obs, env_state = env.reset(reset_key, env_params)

        def step(carry, key):
            obs, env_state, done, total = carry
            action = policy(jax.random.fold_in(key, 1), obs)
            obs, env_state, reward, terminated, truncated, _ = env.step(
                key, env_state, action, env_params)
            total = total + jnp.where(done, 0.0, reward)
            return (obs, env_state, done | terminated | truncated, total), None

        keys = jax.random.split(step_key, env_params.max_steps_in_episode)
        init = varying_with(key, (obs, env_state, jnp.bool_(False), jnp.float32(0.0)))
        (_, _, _, total), _ = jax.lax.scan(step, init, keys)
        return total

    return jax.vmap(episode_return)(jax.random.split(key, num_episodes))


def evaluate(key, params, network, env, env_params,
             num_episodes: int | tuple[int, ...]) -> chex.Array:
    """Mean return of `num_episodes` greedy (epsilon 0) episodes of `network` at `params`.

    Given a tuple of counts, the largest number of episodes runs and the result holds, for
    each count n, the mean of the first n episodes: one compiled evaluation serves them
    all, and each mean is bit for bit what an evaluation of n episodes alone gives
    (episode i's key does not depend on the count: a split is a prefix of a longer one)."""
    def greedy(_, obs):
        return jnp.argmax(network.apply(params, obs), axis=-1)

    if isinstance(num_episodes, int):
        return jnp.mean(episode_returns(key, greedy, env, env_params, num_episodes))
    returns = episode_returns(key, greedy, env, env_params, max(num_episodes))
    return jnp.stack([jnp.mean(returns[:n]) for n in num_episodes])


def random_policy_returns(key, env, env_params, num_episodes: int) -> chex.Array:
    """Returns, shape (num_episodes,), of a uniformly random policy: the floor that a
    trained agent's return is read against."""
    num_actions = env.action_space(env_params).n

    def uniform(key, _):
        return jax.random.randint(key, (), 0, num_actions)

    return episode_returns(key, uniform, env, env_params, num_episodes)
