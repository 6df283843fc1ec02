"""Probe environments with known Q-values: truncation bootstraps, termination does not. Each
method learns every probe of `PROBES` in one program (vmapped over the probes' params),
and the probes once more with time limits that do not bootstrap."""

import numpy as np
import pytest

from tests.helpers import GAMMA, PROBES, learned_q

pytestmark = pytest.mark.slow  # learning quality


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


def expected_q(method: str, bootstrap: bool) -> np.ndarray:
    """Per probe of `PROBES`, the Q-values (observation 0.0, then 1.0; two actions) that
    `method` learns: greedy (DQN, its variants, PQN) or Munchausen's. A one-step probe
    shows only observation 1.0: observation 0.0 is NaN (not checked)."""
    both, never = np.ones((1, 2)), np.full((1, 2), np.nan)
    munchausen = method == "munchausen"

    def one_state(rewards, discount):
        q = munchausen_fixed_point(rewards, [0], np.array([discount])) if munchausen else (
            rewards / (1.0 - discount) if discount else rewards)
        return np.concatenate([never, q])

    truncated = GAMMA if bootstrap else 0.0
    rewarded = np.array([[0.0, 1.0]])
    two_steps = (munchausen_fixed_point(np.array([[0.0] * 2, [1.0] * 2]), [1, None],
                                        np.array([GAMMA, 0.0])) if munchausen
                 else np.array([[GAMMA] * 2, [1.0] * 2]))
    return np.stack([one_state(both, truncated), one_state(both, 0.0),
                     one_state(rewarded, 0.0), two_steps])


# Each method, and plain DQN with 3-step windows (every window cut at an episode's end).
METHODS = {"dqn": {}, "dqn-3-step": dict(n_step=3), **METHODS}


@pytest.mark.parametrize("bootstrap", [True, False], ids=["bootstrap", "no-bootstrap"])
@pytest.mark.parametrize("method", METHODS)
def test_each_method_learns_the_probes(method, bootstrap):
    """`bootstrap_on_truncation=False` is the tutorial's semantics: a time limit ends it
    all, so the truncated probe learns 1, as a terminated one does."""
    q = learned_q(list(PROBES.values()), bootstrap_on_truncation=bootstrap, **METHODS[method])
    expected = expected_q(method, bootstrap)
    checked = ~np.isnan(expected)
    np.testing.assert_allclose(q[checked], expected[checked], rtol=0.05, atol=0.03)
