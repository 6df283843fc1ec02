"""Probe environments with known Q-values: truncation bootstraps, termination does not."""

import jax
import numpy as np
import pytest

from purejaxdqn import Config, make_q_network, make_train
from tests.probe_envs import OneStepProbe

pytestmark = pytest.mark.slow  # learning quality

GAMMA = 0.9
PROBE = dict(num_frames=3_000, batch_size=32, buffer_size=1_000, warmup_steps=100,
             gamma=GAMMA, tau=0.1, learning_rate=3e-3, hidden_sizes=(16,), eval_every=0,
             eps_decay_frames=1_000)


def learned_q(env, **overrides) -> np.ndarray:
    config = Config(**PROBE, **overrides)
    result = jax.jit(make_train(config, env=env))(jax.random.key(0))
    network = make_q_network(config, num_actions=2, obs_shape=(1,))
    return np.asarray(network.apply(result.params, np.ones((1,), np.float32)))


@pytest.mark.parametrize("terminate, bootstrap, expected, n_step", [
    (False, True, 1.0 / (1.0 - GAMMA), 1),   # time limit: bootstrap from the final obs
    (True, True, 1.0, 1),                    # termination: no bootstrap
    (False, False, 1.0, 1),                  # tutorial semantics: a time limit ends it all
    (False, True, 1.0 / (1.0 - GAMMA), 3),   # n-step windows cut at each end, as above
    (True, True, 1.0, 3),
])
def test_probe_q_values(terminate, bootstrap, expected, n_step):
    # With n-step windows, every window is cut at the one-step episode's end.
    q = learned_q(OneStepProbe(terminate), bootstrap_on_truncation=bootstrap, n_step=n_step)
    np.testing.assert_allclose(q, expected, rtol=0.05)
