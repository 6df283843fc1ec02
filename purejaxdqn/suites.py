"""The JAX environment suites beside gymnax (Craftax, Navix, Jumanji, XLand-MiniGrid, Octax), each
given gymnax >= 1.0's semantics: the 6-tuple step, `terminated` apart from `truncated`
(read from the suite's own step type, discount or time limit), the true last observation
in `info["final_observation"]`, and auto-reset. The training loop never asks which suite
it runs.

By name, `Config(env_name="SUITE:NAME")` with the names each suite registers
(`"craftax:Craftax-Classic-Symbolic-v1"`, `"navix:Navix-Empty-5x5-v0"`,
`"jumanji:Snake-v1"`, `"xminigrid:MiniGrid-Empty-8x8"`, `"octax:brix"`); by object,
`make_train(config, env=<the suite's environment>)` wraps it (navix's `ToGymnax` and
Octax's `OctaxGymnaxWrapper` included).
Each suite is an optional extra (`pip install "purejaxdqn[navix]"`) imported only here.

Resets: many environments stepping together (`step_batch`, what the training loop calls)
draw new episodes only when one has ended, and an environment whose reset is expensive
(Craftax generates a world) shares a few fresh ones among those that ended at once
(`reset_ratio`, Craftax's own baselines' "optimistic resets").
"""

import contextlib
import difflib
import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from purejaxdqn.imports import SUITES, import_gymnax, import_suite, suite_of

# This module is imported only where an environment is resolved, so gymnax (which builds
# arrays when imported) may be imported here.
_gymnax = import_gymnax()
Environment = _gymnax.environments.environment.Environment
spaces = _gymnax.environments.spaces


def split_name(env_name: str) -> tuple[str | None, str]:
    """("navix", "Navix-Empty-5x5-v0") for "navix:Navix-Empty-5x5-v0"; (None, name) for
    a gymnax name."""
    suite, colon, name = env_name.partition(":")
    return (suite, name) if colon else (None, env_name)


def registered_names(suite: str, module) -> tuple[str, ...]:
    """The environment names a suite registers (XLand-MiniGrid: its single-task ones; its
    XLand rulesets are downloaded from the internet, which a run may not do)."""
    if suite == "craftax":
        return ("Craftax-Classic-Symbolic-v1", "Craftax-Classic-Pixels-v1",
                "Craftax-Symbolic-v1", "Craftax-Pixels-v1")
    if suite == "navix":
        return tuple(module.registry())
    if suite == "jumanji":
        return tuple(sorted(module.registered_environments()))
    if suite == "octax":  # a module per game
        import pkgutil

        return tuple(sorted(m.name for m in pkgutil.iter_modules(module.__path__)))
    return tuple(n for n in module.registered_environments() if n.startswith("MiniGrid-"))


def make_suite_env(env_name: str):
    """(env, env_params) of a "SUITE:NAME" environment, adapted to gymnax's semantics; a
    one-line ValueError for an unknown suite or name, or a suite not installed."""
    suite, name = split_name(env_name)
    if suite not in SUITES:
        raise ValueError(f"Config.env_name {env_name!r}: unknown suite {suite!r}; choose from "
                         f"{', '.join(SUITES)}, or a gymnax name without a prefix")
    module = import_suite(suite)
    names = registered_names(suite, module)
    if suite == "xminigrid" and name.startswith("XLand-"):
        raise ValueError(f"Config.env_name {env_name!r}: XLand-MiniGrid's XLand environments "
                         f"need its benchmark rulesets, downloaded from the internet, which a "
                         f"run may not do; its single-task MiniGrid-* environments work")
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"choose from {', '.join(names)}"
        raise ValueError(f"Config.env_name {env_name!r}: {suite} has no environment {name!r}; "
                         f"{hint}")
    if suite == "craftax":
        return adapt(module.make_craftax_env_from_name(name, auto_reset=False))
    if suite == "xminigrid":
        return adapt(*module.make(name))
    if suite == "octax":
        with _octax_quiet():  # its constructor runs the ROM's start-up
            return adapt(module.create_environment(name)[0])
    return adapt(module.make(name))


def adapt(env, env_params=None):
    """(env, env_params) with `env` wrapped in its suite's adapter and the params to train
    it with, or both as given when `env` is not from one of the suites. `env_params` are
    the suite's own (xminigrid's, craftax's), or the adapter's `SuiteParams`."""
    if isinstance(env, Adapter):
        return env, env.default_params if env_params is None else env_params
    if type(env).__name__ == "ToGymnax" and suite_of(env) == "navix":
        env = env.env  # navix's own gymnax wrapper: its step has no truncation; unwrap
    if type(env).__name__ == "OctaxGymnaxWrapper" and suite_of(env) == "octax":
        env = env._octax_env  # its step folds truncation into `done`; unwrap
    suite = suite_of(env)
    if suite is None:
        return env, env_params
    if isinstance(env_params, SuiteParams):  # kept whole: its evaluation bound too
        return ADAPTERS[suite](env, env_params.inner), env_params
    adapter = ADAPTERS[suite](env, env_params)
    return adapter, adapter.default_params


@struct.dataclass
class SuiteParams(_gymnax.environments.environment.EnvParams):
    """gymnax's params (`max_steps_in_episode` bounds evaluation episodes) around the
    suite's own (`inner`)."""

    inner: Any = None


def _box(shape, dtype):
    """A Box over all of `dtype`'s values."""
    if jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_:
        info = jnp.iinfo(jnp.int32 if dtype == jnp.bool_ else dtype)
        low, high = (0, 1) if dtype == jnp.bool_ else (info.min, info.max)
    else:
        low, high = -jnp.inf, jnp.inf
    return spaces.Box(low, high, tuple(shape), dtype)


def _select(done, new, old):
    """Leaf by leaf: `new` where `done`, else `old`; `done` has the leading axis (or none)."""
    def pick(n, o):
        return jnp.where(jnp.reshape(done, done.shape + (1,) * (o.ndim - done.ndim)), n, o)

    return jax.tree.map(pick, new, old)


class Adapter(Environment):
    """gymnax's Environment over a suite's environment. A subclass says how the suite
    resets and steps without resetting (`suite_reset` with the suite's own params,
    `suite_step` with the adapter's `SuiteParams`, which also tells termination from
    truncation), its action count and its time limit."""

    reset_ratio = 1  # environments per fresh reset in `step_batch`; >1 where resets cost

    def __init__(self, env, inner_params=None):
        self.env = env
        self.inner_params = inner_params

    @property
    def name(self) -> str:
        return f"{suite_of(self.env)}:{getattr(self.env, 'name', type(self.env).__name__)}"

    @property
    def default_params(self):
        return SuiteParams(max_steps_in_episode=int(self.max_steps()), inner=self.inner_params)

    def action_space(self, params=None):
        return spaces.Discrete(int(self.num_actions()))

    def observation_space(self, params=None):
        obs = jax.eval_shape(lambda key: self.suite_reset(key, self.inner_params)[0],
                             jax.random.key(0))
        return _box(obs.shape, obs.dtype)

    def reset(self, key, params=None):
        params = self.default_params if params is None else params
        return self.suite_reset(key, params.inner)

    def step_in_episode(self, key, state, action, params=None):
        """The suite's step without auto-reset, as gymnax's 6-tuple (what evaluation,
        which masks everything after an episode's end, needs)."""
        params = self.default_params if params is None else params
        obs, state, reward, terminated, truncated = self.suite_step(key, state, action, params)
        info = {"final_observation": obs}
        return (obs, state, jnp.asarray(reward, jnp.float32), jnp.asarray(terminated, bool),
                jnp.asarray(truncated, bool), info)

    def step(self, key, state, action, params=None):
        """gymnax >= 1.0's step: (obs, state, reward, terminated, truncated, info), the
        environment reset where the episode ended, its last observation in
        info["final_observation"]."""
        out = self.step_batch(key[None], jax.tree.map(lambda x: x[None], state),
                              jnp.asarray(action)[None], params)
        return jax.tree.map(lambda x: x[0], out)

    def step_batch(self, keys, states, actions, params=None):
        """`step` for environments along a leading axis. Episodes are drawn only when one
        has ended (under `vmap` of the caller this branch becomes a select, and the cost
        is `reset_ratio`'s share), and `ceil(n / reset_ratio)` fresh ones are shared among
        those ended: the k-th to end takes fresh episode k mod that count."""
        params = self.default_params if params is None else params
        n = actions.shape[0]
        split = jax.vmap(jax.random.split)(keys)
        step_keys, reset_keys = split[:, 0], split[:, 1]
        obs, next_states, reward, terminated, truncated = jax.vmap(
            self.suite_step, in_axes=(0, 0, 0, None))(step_keys, states, actions, params)
        done = terminated | truncated
        fresh_count = -(-n // self.reset_ratio)

        def start_new_episodes(carry):
            obs, states = carry
            reset_obs, reset_states = jax.vmap(self.suite_reset, in_axes=(0, None))(
                reset_keys[:fresh_count], params.inner)
            if fresh_count < n:
                order = (jnp.cumsum(done) - 1) % fresh_count
                reset_obs, reset_states = jax.tree.map(lambda x: x[order],
                                                       (reset_obs, reset_states))
            return _select(done, reset_obs, obs), _select(done, reset_states, states)

        new_obs, new_states = jax.lax.cond(jnp.any(done), start_new_episodes, lambda c: c,
                                           (obs, next_states))
        info = {"final_observation": obs}
        return (new_obs, new_states, jnp.asarray(reward, jnp.float32),
                jnp.asarray(terminated, bool), jnp.asarray(truncated, bool), info)


def _flat(observation):
    """A pytree observation's leaves flattened and concatenated as float32 (what an MLP
    takes), an `action_mask` leaf last (as 0/1); an array observation as it is."""
    if isinstance(observation, jax.Array):
        return observation
    leaves = jax.tree_util.tree_leaves_with_path(observation)
    is_mask = [any(getattr(k, "name", getattr(k, "key", None)) == "action_mask" for k in path)
               for path, _ in leaves]
    ordered = [leaf for (_, leaf), m in zip(leaves, is_mask) if not m] + [
        leaf for (_, leaf), m in zip(leaves, is_mask) if m]
    return jnp.concatenate([jnp.ravel(leaf).astype(jnp.float32) for leaf in ordered])


class NavixAdapter(Adapter):
    """Navix: a timestep with a step type (transition 0, truncation 1, termination 2) and
    the time limit `max_steps`. Navix's `step` resets a finished timestep on the next call
    (under vmap a select that runs both); the adapter steps with `_step` instead and
    resets where gymnax would."""

    def max_steps(self):
        return self.env.max_steps

    def num_actions(self):
        return len(self.env.action_set)

    def suite_reset(self, key, inner):
        timestep = self.env.reset(key)
        return timestep.observation, timestep

    def suite_step(self, key, timestep, action, params):
        from navix.environments.environment import StepType

        nxt = self.env._step(timestep, action)
        return (nxt.observation, nxt, nxt.reward, nxt.step_type == StepType.TERMINATION,
                nxt.step_type == StepType.TRUNCATION)


class XMinigridAdapter(Adapter):
    """XLand-MiniGrid: a dm_env-like timestep whose last step has discount 0 at the goal
    and 1 at the time limit (`max_steps` of its params)."""

    def __init__(self, env, inner_params=None):
        super().__init__(env, env.default_params() if inner_params is None else inner_params)

    def max_steps(self):
        return self.inner_params.max_steps

    def num_actions(self):
        return self.env.num_actions(self.inner_params)

    def suite_reset(self, key, inner):
        timestep = self.env.reset(inner, key)
        return timestep.observation, timestep

    def suite_step(self, key, timestep, action, params):
        nxt = self.env.step(params.inner, timestep, action)
        last = nxt.last()
        return (nxt.observation, nxt, nxt.reward, last & (nxt.discount == 0.0),
                last & (nxt.discount > 0.0))


class JumanjiAdapter(Adapter):
    """Jumanji: dm_env timesteps with pytree observations. An episode ends with discount 0
    (termination) or above 0 (truncation); one that ends at the environment's
    `time_limit` is a truncation (Snake ends there with discount 0). Observations are
    flattened into one float32 vector that ends with the action mask (0/1) where there
    is one: `legal_actions` reads it back, and the network sees it too."""

    EVALUATION_STEPS = 10_000  # the bound on evaluation episodes without a time limit

    def __init__(self, env, inner_params=None):
        super().__init__(env, inner_params)
        self.has_mask = hasattr(env.observation_spec, "action_mask")

    def max_steps(self):
        limit = getattr(self.env, "time_limit", None)
        return limit if isinstance(limit, int) else self.EVALUATION_STEPS

    def legal_actions(self, obs):
        """The action mask at the end of an observation (None: the environment has none)."""
        if not self.has_mask:
            return None
        return obs[..., -int(self.num_actions()):] > 0.5

    def num_actions(self):
        spec = self.env.action_spec
        if not hasattr(spec, "num_values") or jnp.ndim(spec.num_values):
            raise ValueError(f"DQN needs one discrete action; jumanji's "
                             f"{type(self.env).__name__} has {type(spec).__name__}")
        return int(spec.num_values)

    def suite_reset(self, key, inner):
        state, timestep = self.env.reset(key)
        return _flat(timestep.observation), state

    def suite_step(self, key, state, action, params):
        state, timestep = self.env.step(state, action)
        last = timestep.step_type == 2  # dm_env's StepType.LAST
        limit = getattr(self.env, "time_limit", None)
        at_limit = (getattr(state, "step_count", -1) >= limit) if isinstance(limit, int) else False
        truncated = last & ((timestep.discount > 0.0) | at_limit)
        return _flat(timestep.observation), state, timestep.reward, last & ~truncated, truncated


class CraftaxAdapter(Adapter):
    """Craftax, stepped and reset without its own auto-reset (`step_env`, `reset_env`):
    its `done` covers death and the time limit (`max_timesteps`) alike; termination is
    `is_terminal` with the time limit lifted. A reset generates a world, about 300 steps'
    worth on a CPU: a few fresh worlds are shared among the environments that end at once."""

    reset_ratio = 4

    def __init__(self, env, inner_params=None):
        super().__init__(env, env.default_params if inner_params is None else inner_params)

    def max_steps(self):
        return self.inner_params.max_timesteps

    def num_actions(self):
        return self.env.num_actions

    def suite_reset(self, key, inner):
        return self.env.reset_env(key, inner)

    def suite_step(self, key, state, action, params):
        obs, state, reward, done, _ = self.env.step_env(key, state, action, params.inner)
        unlimited = params.inner.replace(max_timesteps=jnp.iinfo(jnp.int32).max)
        terminated = done & self.env.is_terminal(state, unlimited)
        return obs, state, reward, terminated, done & ~terminated


@contextlib.contextmanager
def _octax_quiet():
    """Octax's emulator, traced, warns of its own uint8 scatters (JAX's FutureWarning, once
    per opcode): not the user's to act on, so not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "scatter inputs have incompatible types",
                                FutureWarning)
        yield


class OctaxAdapter(Adapter):
    """Octax's CHIP-8 games: `OctaxEnv.reset`/`step` (no auto-reset of their own).
    Termination is the game's own `terminated_fn`; truncation comes after
    `max_steps_in_episode` steps of the adapter's params, Octax's
    `max_num_steps_per_episodes` by default (4,500 steps: five minutes of play at 60 Hz
    with its frame skip of 4), so that `--env-param max_steps_in_episode=N` shortens
    training and evaluation episodes alike. An observation is Octax's `frame_skip` boolean
    frames (the last of each skipped frame) as channels: (32, 64, frame_skip), rows down
    the screen, bool (stored as bits in the replay)."""

    @functools.cached_property
    def name(self) -> str:
        """"octax:GAME", GAME the module whose ROM the environment runs (found once: it
        imports every game's module)."""
        import importlib
        import os

        rom = os.path.basename(self.env.rom_path)
        package = "octax.environments"
        games = registered_names("octax", importlib.import_module(package))
        return "octax:" + next((game for game in games if getattr(importlib.import_module(
            f"{package}.{game}"), "rom_file", None) == rom), rom)

    def max_steps(self):
        return self.env.max_num_steps_per_episodes

    def num_actions(self):
        return self.env.num_actions

    def suite_reset(self, key, inner):
        state, obs, _ = self.env.reset(key)
        return jnp.transpose(obs, (2, 1, 0)), state

    def suite_step(self, key, state, action, params):
        with _octax_quiet():
            state, obs, reward, terminated, _, _ = self.env.step(state, action)
        truncated = (state.time >= params.max_steps_in_episode) & ~terminated
        return jnp.transpose(obs, (2, 1, 0)), state, reward, terminated, truncated


ADAPTERS = {"craftax": CraftaxAdapter, "navix": NavixAdapter, "jumanji": JumanjiAdapter,
            "xminigrid": XMinigridAdapter, "octax": OctaxAdapter}
