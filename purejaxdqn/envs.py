"""Environments: gymnax by name or as an instance, checked before anything compiles."""

import gymnax
from gymnax.environments import spaces


def make_env(env_name: str):
    """The gymnax environment and default params registered as `env_name`."""
    if env_name not in gymnax.registered_envs:
        raise ValueError(
            f"Config.env_name must be one of gymnax's registered environments "
            f"{gymnax.registered_envs}, got {env_name!r}")
    return gymnax.make(env_name)


def check_env(env, env_params) -> int:
    """Validate a gymnax environment for DQN; return its number of actions."""
    if not isinstance(env, gymnax.environments.environment.Environment):
        raise ValueError(f"env must be a gymnax Environment instance, got {type(env).__name__}")
    space = env.action_space(env_params)
    if not isinstance(space, spaces.Discrete):
        raise ValueError(
            f"DQN needs a discrete action space; {env.name} has {type(space).__name__}")
    max_steps = getattr(env_params, "max_steps_in_episode", None)
    if not isinstance(max_steps, int) or max_steps <= 0:
        raise ValueError(
            f"env_params.max_steps_in_episode must be an integer > 0 (it bounds the "
            f"evaluation episodes), got {max_steps!r}")
    return int(space.n)
