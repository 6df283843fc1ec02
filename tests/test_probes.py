"""Probe environments with known Q-values: truncation bootstraps, termination does not."""

import jax
import numpy as np
import pytest

from purejaxdqn import Config, make_q_network, make_train
from tests.probe_envs import OneStepProbe, TwoStepProbe

pytestmark = pytest.mark.slow  # learning quality

GAMMA = 0.9
PROBE = dict(num_frames=3_000, batch_size=32, buffer_size=1_000, warmup_steps=100,
             gamma=GAMMA, tau=0.1, learning_rate=3e-3, hidden_sizes=(16,), eval_every=0,
             eps_decay_frames=1_000)


# PQN: no replay, no target network; 100 updates of 4 x 8 frames.
PQN_PROBE = dict(algorithm="pqn", num_frames=3_200, num_envs=4, num_steps=8, num_minibatches=4,
                 gamma=GAMMA, learning_rate=3e-3, hidden_sizes=(16,), layer_norm=True,
                 eval_every=0, eps_decay_frames=1_000)


def learned_q(env, obs=(1.0,), **overrides) -> np.ndarray:
    """Q-values learned in `env`, at each observation in `obs` (one number each)."""
    base = PQN_PROBE if overrides.get("algorithm") == "pqn" else PROBE
    config = Config(**{**base, **overrides})
    result = jax.jit(make_train(config, env=env))(jax.random.key(0))
    network = make_q_network(config, num_actions=2, obs_shape=(1,))
    return np.asarray(network.apply(result.params, np.array(obs, np.float32)[:, None]))


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


# Munchausen's operator shrinks a gap between two equal actions only by alpha per target
# generation, from the rarely taken action's samples: it acts uniformly, for longer.
METHODS = {"qr-dqn": dict(quantile_regression=True, num_quantiles=8),
           "munchausen": dict(munchausen=True, eps_end=1.0, num_frames=6_000),
           "pqn": dict(algorithm="pqn")}
ALPHA, TEMPERATURE, CLIP = 0.9, 0.03, -1.0  # Munchausen's defaults


def munchausen_fixed_point(rewards, next_state, discounts) -> np.ndarray:
    """Q per (state, action) under Munchausen's operator, iterated to its fixed point:
    Q(s, a) = r(s, a) + alpha clip(tau log pi(a|s), l0, 0) + discount(s) V(next(s)), with
    V(s) = sum_a pi(a|s) (Q(s, a) - tau log pi(a|s)) and pi = softmax(Q(s) / tau)."""
    q = np.zeros_like(rewards)
    for _ in range(2_000):
        z = q / TEMPERATURE
        log_pi = z - z.max(1, keepdims=True)
        log_pi -= np.log(np.exp(log_pi).sum(1, keepdims=True))
        soft_v = (np.exp(log_pi) * (q - TEMPERATURE * log_pi)).sum(1)
        bootstrap = np.array([soft_v[n] if n is not None else 0.0 for n in next_state])
        q = (rewards + ALPHA * np.clip(TEMPERATURE * log_pi, CLIP, 0.0)
             + (discounts * bootstrap)[:, None])
    return q


# Per probe: the environment, its observations, and for the greedy methods (DQN, QR-DQN)
# and for Munchausen the Q-values to learn.
def _probes():
    both = np.ones((1, 2))
    one_state = lambda r, discount: munchausen_fixed_point(r, [0], np.array([discount]))
    return {
        "constant, truncated": (OneStepProbe(False), (1.0,), both / (1.0 - GAMMA),
                                one_state(both, GAMMA), {}),
        "constant, terminated": (OneStepProbe(True), (1.0,), both, one_state(both, 0.0), {}),
        "truncated, no bootstrap": (OneStepProbe(False), (1.0,), both, one_state(both, 0.0),
                                    dict(bootstrap_on_truncation=False)),
        "action-dependent": (OneStepProbe(True, rewarded_action=1), (1.0,),
                             np.array([[0.0, 1.0]]), one_state(np.array([[0.0, 1.0]]), 0.0), {}),
        "two steps": (TwoStepProbe(), (0.0, 1.0), np.array([[GAMMA] * 2, [1.0] * 2]),
                      munchausen_fixed_point(np.array([[0.0] * 2, [1.0] * 2]), [1, None],
                                             np.array([GAMMA, 0.0])), {}),
    }


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("probe", list(_probes()))
def test_each_method_learns_the_probes(method, probe):
    env, obs, greedy_q, munchausen_q, overrides = _probes()[probe]
    expected = munchausen_q if method == "munchausen" else greedy_q
    q = learned_q(env, obs, **METHODS[method], **overrides)
    np.testing.assert_allclose(q, expected, rtol=0.05, atol=0.03)
