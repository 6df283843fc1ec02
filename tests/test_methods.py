"""QR-DQN's quantile loss and Munchausen DQN's target against numpy, on hand-built
batches (the networks' outputs computed by the network, every loss term by hand)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config
from purejaxdqn.learning import munchausen_target, td_loss
from purejaxdqn.networks import make_q_network
from purejaxdqn.replay import Transition
from tests.helpers import LEGAL_T, numpy_huber


def hand_batch() -> Transition:
    obs = np.array([[0.1, -0.2, 0.3, 0.0], [1.0, 2.0, -1.0, 0.5],
                    [-0.5, 0.5, 0.2, -2.0], [3.0, -3.0, 1.0, 1.0]], np.float32)
    return Transition(obs=obs, action=np.array([0, 2, 1, 2], np.int32),
                      reward=np.array([1.0, 0.0, -1.0, 5.0], np.float32),
                      terminal=np.array([False, True, False, False]),
                      next_obs=obs[::-1] * 0.7)


def numpy_quantile_loss(theta_tm1, action, reward, discount, theta_t, selector):
    """Dabney et al. 2018, eq. 10 with kappa 1: per example, the sum over the online
    quantiles i of the mean over target quantiles j of |tau_i - 1{u_ij < 0}| huber(u_ij)."""
    n = theta_tm1.shape[-1]
    tau = (2 * np.arange(n) + 1) / (2 * n)
    losses = []
    for b in range(theta_tm1.shape[0]):
        best = selector[b].mean(axis=-1).argmax()
        target = reward[b] + discount[b] * theta_t[b, best]  # (j,)
        u = target[None, :] - theta_tm1[b, action[b]][:, None]  # (i, j)
        rho = np.abs(tau[:, None] - (u < 0)) * numpy_huber(u)
        losses.append(rho.mean(axis=1).sum())
    return np.array(losses)


@pytest.mark.parametrize("double_q, masked", [(False, False), (True, False), (False, True)])
def test_quantile_loss_matches_numpy(double_q, masked):
    batch = hand_batch()
    config = Config(hidden_sizes=(8,), quantile_regression=True, num_quantiles=5,
                    double_q=double_q)
    network = make_q_network(config, num_actions=3, obs_shape=(4,))
    online = network.init(jax.random.key(1), batch.obs)
    target = jax.tree.map(lambda x: 3.0 * x, network.init(jax.random.key(2), batch.obs))
    theta = {name: np.asarray(network.apply(params, obs, logits=True), np.float64)
             for name, params, obs in [("tm1", online, batch.obs), ("t", target, batch.next_obs),
                                       ("online_t", online, batch.next_obs)]}
    assert theta["tm1"].shape == (4, 3, 5)
    selector = theta["online_t"] if double_q else theta["t"]
    if masked:
        legal = LEGAL_T | ~LEGAL_T.any(axis=1, keepdims=True)
        selector = np.where(legal[..., None], selector, -np.inf)
        assert np.any(selector.mean(-1).argmax(1) != theta["t"].mean(-1).argmax(1))
    if double_q:
        assert np.any(selector.mean(-1).argmax(1) != theta["t"].mean(-1).argmax(1))
    gamma = 0.9
    expected = numpy_quantile_loss(theta["tm1"], batch.action, batch.reward,
                                   gamma * (1.0 - batch.terminal), theta["t"], selector)
    loss, (stats, errors) = td_loss(online, target, jax.tree.map(jnp.asarray, batch), gamma,
                                    network, config,
                                    legal_t=jnp.asarray(LEGAL_T) if masked else None)
    np.testing.assert_allclose(errors, expected, rtol=1e-5)
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-5)
    # Q-values are the quantiles' means, for one observation or a batch.
    q = network.apply(online, batch.obs)
    np.testing.assert_allclose(q, theta["tm1"].mean(-1), rtol=1e-5)
    np.testing.assert_allclose(network.apply(online, batch.obs[0]), q[0], rtol=1e-5)
    np.testing.assert_allclose(stats.q_value, q[np.arange(4), batch.action].mean(), rtol=1e-5)


def numpy_munchausen(q_tm1, action, reward, discount, q_t, alpha, temperature, clip,
                     legal_tm1=None, legal_t=None):
    """Vieillard et al. 2020, eq. 3, one example at a time over the legal actions."""
    targets = []
    for b in range(q_tm1.shape[0]):
        def policy(q, legal):
            idx = np.flatnonzero(legal) if legal is not None and legal.any() else np.arange(len(q))
            z = q[idx] / temperature
            log_pi = z - z.max() - np.log(np.exp(z - z.max()).sum())
            return idx, log_pi
        idx, log_pi = policy(q_tm1[b], None if legal_tm1 is None else legal_tm1[b])
        bonus = alpha * np.clip(temperature * log_pi[list(idx).index(action[b])], clip, 0.0)
        idx_t, log_pi_t = policy(q_t[b], None if legal_t is None else legal_t[b])
        soft_v = np.sum(np.exp(log_pi_t) * (q_t[b, idx_t] - temperature * log_pi_t))
        targets.append(reward[b] + bonus + discount[b] * soft_v)
    return np.array(targets)


def test_munchausen_target_matches_numpy():
    rng = np.random.default_rng(0)
    # Mostly within a temperature of each other; the first example's action is 2 Q-units
    # from the best, so that its log-policy is clipped.
    q_tm1 = rng.normal(size=(6, 3)) * 0.05
    q_tm1[0] = [0.0, 1.0, 2.0]
    q_t = rng.normal(size=(6, 3)) * 0.05
    action = np.array([0, 2, 1, 0, 1, 2], np.int32)
    reward = rng.normal(size=6)
    discount = np.array([0.9, 0.0, 0.9, 0.9, 0.9, 0.9])
    legal_tm1 = np.array([[True, True, True], [False, True, True], [True, True, False],
                          [True, False, False], [False, False, False], [True, True, True]])
    legal_t = np.array([[True, False, True], [True, True, True], [False, False, True],
                        [False, True, True], [False, False, False], [True, True, False]])
    for masks in [(None, None), (legal_tm1, legal_t)]:
        expected = numpy_munchausen(q_tm1, action, reward, discount, q_t, 0.9, 0.03, -1.0,
                                    *masks)
        got = munchausen_target(*(jnp.asarray(x, jnp.float32) for x in (q_tm1,)),
                                jnp.asarray(action), jnp.asarray(reward, jnp.float32),
                                jnp.asarray(discount, jnp.float32), jnp.asarray(q_t, jnp.float32),
                                0.9, 0.03, -1.0,
                                *(None if m is None else jnp.asarray(m) for m in masks))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_munchausen_td_loss_uses_the_target_network_at_both_states():
    batch = hand_batch()
    config = Config(hidden_sizes=(8,), munchausen=True, munchausen_alpha=0.5,
                    entropy_temperature=0.5, log_policy_clip=-0.2)
    network = make_q_network(config, num_actions=3, obs_shape=(4,))
    online = network.init(jax.random.key(1), batch.obs)
    target = network.init(jax.random.key(2), batch.obs)
    q = {name: np.asarray(network.apply(params, obs), np.float64)
         for name, params, obs in [("tm1", online, batch.obs), ("target_tm1", target, batch.obs),
                                   ("t", target, batch.next_obs)]}
    gamma = 0.9
    expected = numpy_munchausen(q["target_tm1"], batch.action, batch.reward,
                                gamma * (1.0 - batch.terminal), q["t"], 0.5, 0.5, -0.2)
    td = expected - q["tm1"][np.arange(4), batch.action]
    loss, (_, errors) = td_loss(online, target, jax.tree.map(jnp.asarray, batch), gamma,
                                network, config)
    np.testing.assert_allclose(errors, td, rtol=1e-5)
    np.testing.assert_allclose(loss, numpy_huber(td).mean(), rtol=1e-5)
