"""Environments: gymnax by name or as an instance, or one of the suites (adapted in
`purejaxdqn.suites`), checked before anything compiles; gymnax and the suites are
imported inside the functions (see `purejaxdqn.imports`)."""

from purejaxdqn.imports import import_gymnax, suite_of


def make_env(env_name: str):
    """The gymnax environment and default params registered as `env_name`."""
    gymnax = import_gymnax()
    if env_name not in gymnax.registered_envs:
        raise ValueError(
            f"Config.env_name must be one of gymnax's registered environments "
            f"{gymnax.registered_envs}, got {env_name!r}")
    return gymnax.make(env_name)


def resolve_env(env_name: str, env=None, env_params=None, overrides=()):
    """(env, env_params, num_actions): `env` or else `env_name`'s, checked for DQN.

    A name "SUITE:NAME", or an environment object of one of the `SUITES`, comes wrapped in
    that suite's adapter (see `purejaxdqn.suites`), with the suite's own params, if any,
    as `env_params`. `env_params` defaults to the environment's `default_params`; then
    each (field, value) of `overrides` (`Config.env_params`) is set in it.
    """
    Environment = import_gymnax().environments.environment.Environment
    if env is None and ":" in env_name:
        from purejaxdqn.suites import make_suite_env  # (imports gymnax and the suite)

        env, default_params = make_suite_env(env_name)
    elif env is None:
        env, default_params = make_env(env_name)
    elif suite_of(env) is not None:
        from purejaxdqn.suites import adapt

        env, env_params = adapt(env, env_params)
        default_params = env_params
    elif isinstance(env, Environment):
        default_params = env.default_params
    else:
        raise ValueError(f"env must be a gymnax Environment instance, got {type(env).__name__}")
    env_params = with_fields(default_params if env_params is None else env_params, overrides,
                             env.name)
    return env, env_params, _num_actions(env, env_params)


def with_fields(env_params, overrides, env_name: str):
    """`env_params` with each (field, value) of `overrides` set; a field it lacks is
    refused in one line, naming the close matches and the fields there are."""
    import dataclasses
    import difflib

    if not overrides:
        return env_params
    fields = ([f.name for f in dataclasses.fields(env_params)]
              if dataclasses.is_dataclass(env_params) else [])
    for name, value in overrides:
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            raise ValueError(
                f"Config.env_params: {env_name}'s params have no field {name!r}"
                f"{f'; did you mean {close[0]!r}?' if close else ''} (fields: "
                f"{', '.join(fields) or 'none'})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"Config.env_params: {name} must be a number, got {value!r}")
    return env_params.replace(**dict(overrides))


def step_envs(env, keys, states, actions, env_params):
    """One step of environments along a leading axis: the environment's own `step_batch`
    where it has one (the suites' adapters: resets only where an episode ended, shared
    where they cost), else gymnax's `step` under vmap."""
    import jax

    if hasattr(env, "step_batch"):
        return env.step_batch(keys, states, actions, env_params)
    return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, states, actions, env_params)


def legal_actions(env, obs):
    """The legal actions at `obs` (bool, last axis the actions) for an environment that
    says which they are (a `legal_actions(obs)` method, as the Jumanji adapter's), else
    None: every action always is."""
    legal = getattr(env, "legal_actions", None)
    return None if legal is None else legal(obs)


def _num_actions(env, env_params) -> int:
    from gymnax.environments import spaces

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


def has_binary_observations(env, env_params) -> bool:
    """MinAtar's observations are 0/1 channels (as float32 in gymnax), Octax's boolean
    frames: the replay buffer stores them as packed bits, 32 and 8 times smaller."""
    import jax.numpy as jnp

    return (env.name.endswith("-MinAtar")
            or env.observation_space(env_params).dtype == jnp.bool_)
