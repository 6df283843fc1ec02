"""Tiny gymnax environments with known answers, for tests."""

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class ProbeParams(environment.EnvParams):
    max_steps_in_episode: int = 1


class OneStepProbe(environment.Environment):
    """Constant observation, two actions, reward 1 for each; the episode ends after one
    step, terminated if `terminate`, else truncated by the time limit."""

    def __init__(self, terminate: bool, rewarded_action: int | None = None):
        super().__init__()
        self.terminate = terminate
        self.rewarded_action = rewarded_action

    @property
    def default_params(self):
        return ProbeParams()

    def step_env(self, key, state, action, params):
        state = state.replace(time=state.time + 1)
        if self.rewarded_action is None:
            reward = jnp.float32(1.0)
        else:
            reward = (action == self.rewarded_action).astype(jnp.float32)
        return self.get_obs(state), state, reward, jnp.bool_(self.terminate), {}

    def reset_env(self, key, params):
        state = environment.EnvState(time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.ones((1,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (1,), jnp.float32)


class CounterEnv(environment.Environment):
    """Observation = frames taken since reset, and no episode ends within a test run, so
    the replay buffer's contents tell exactly which frames it holds. (Only for runs
    without evaluation: an evaluation episode would last `max_steps_in_episode`.) With
    `random_start`, the count starts at a random multiple of 10**6, which tells
    environments stepped side by side apart."""

    def __init__(self, random_start: bool = False):
        super().__init__()
        self.random_start = random_start

    @property
    def default_params(self):
        return ProbeParams(max_steps_in_episode=10**9)

    def step_env(self, key, state, action, params):
        state = state.replace(time=state.time + 1)
        return self.get_obs(state), state, jnp.float32(0.0), jnp.bool_(False), {}

    def reset_env(self, key, params):
        start = jax.random.randint(key, (), 0, 1000) * 10**6 if self.random_start else 0
        state = environment.EnvState(time=jnp.int32(start))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.time], jnp.int32)

    def action_space(self, params):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0, jnp.iinfo(jnp.int32).max, (1,), jnp.int32)


class ContinuousProbe(OneStepProbe):
    def __init__(self):
        super().__init__(terminate=True)

    def action_space(self, params):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)


class TwoStepProbe(environment.Environment):
    """Two steps: the observation is the step (0, then 1), any action; reward 1 at the
    second step, which terminates. Q is gamma at step 0 and 1 at step 1: the value has to
    travel one step back through the bootstrap."""

    @property
    def default_params(self):
        return ProbeParams(max_steps_in_episode=3)  # the termination comes first

    def step_env(self, key, state, action, params):
        state = state.replace(time=state.time + 1)
        done = state.time >= 2
        return self.get_obs(state), state, done.astype(jnp.float32), done, {}

    def reset_env(self, key, params):
        state = environment.EnvState(time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.time], jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 2.0, (1,), jnp.float32)
