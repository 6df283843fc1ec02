"""Whole episodes of a fixed policy: the greedy agent's return, and a random policy's."""

import chex
import jax
import jax.numpy as jnp

from purejaxdqn.batching import varying_with
from purejaxdqn.policies import Policy, greedy_policy, uniform_policy


def play_episode(key, policy: Policy, env, env_params):
    """One episode of `policy`, run for `max_steps_in_episode` steps:
    (undiscounted return, trace). Rewards after the episode's first termination or
    truncation are masked out of the return; the trace holds, per step, the environment
    state and observation acted on, the reward, and whether the episode had already ended
    (under jit, an unused trace costs nothing)."""
    reset_key, step_key = jax.random.split(key)
    obs, env_state = env.reset(reset_key, env_params)
    # Nothing after the episode's end counts, so it need not reset: an adapted suite
    # offers a step without one (see `purejaxdqn.suites`).
    env_step = getattr(env, "step_in_episode", env.step)

    def step(carry, key):
        obs, env_state, done, total, policy_carry = carry
        action, policy_carry = policy.act(jax.random.fold_in(key, 1), obs, policy_carry)
        next_obs, next_state, reward, terminated, truncated, _ = env_step(
            key, env_state, action, env_params)
        total = total + jnp.where(done, 0.0, reward)
        return ((next_obs, next_state, done | terminated | truncated, total, policy_carry),
                (env_state, obs, reward, done))

    keys = jax.random.split(step_key, env_params.max_steps_in_episode)
    init = varying_with(key, (obs, env_state, jnp.bool_(False), jnp.float32(0.0),
                              policy.carry))
    (_, _, _, total, _), trace = jax.lax.scan(step, init, keys)
    return total, trace


def episode_returns(key, policy: Policy, env, env_params, num_episodes: int) -> chex.Array:
    """Undiscounted returns, shape (num_episodes,), of `policy`: the
    episodes run side by side (see `play_episode`)."""
    return jax.vmap(lambda k: play_episode(k, policy, env, env_params)[0])(
        jax.random.split(key, num_episodes))


def evaluate(key, params, network, env, env_params,
             num_episodes: int | tuple[int, ...]) -> chex.Array:
    """Mean return of `num_episodes` greedy (epsilon 0) episodes of `network` at `params`.

    Given a tuple of counts, the largest number of episodes runs and the result holds, for
    each count n, the mean of the first n episodes: one compiled evaluation serves them
    all, and each mean is bit for bit what an evaluation of n episodes alone gives
    (episode i's key does not depend on the count: a split is a prefix of a longer one)."""
    greedy = greedy_policy(network, params, env)
    if isinstance(num_episodes, int):
        return jnp.mean(episode_returns(key, greedy, env, env_params, num_episodes))
    returns = episode_returns(key, greedy, env, env_params, max(num_episodes))
    return jnp.stack([jnp.mean(returns[:n]) for n in num_episodes])


def random_policy_returns(key, env, env_params, num_episodes: int) -> chex.Array:
    """Returns, shape (num_episodes,), of a uniformly random policy (`policies.uniform_policy`):
    the floor that a trained agent's return is read against."""
    return episode_returns(key, uniform_policy(env, env_params), env, env_params, num_episodes)
