"""Noisy networks: noise follows the key, evaluation uses the mean weights."""

import jax
import numpy as np
import pytest

from purejaxdqn import Config, make_q_network


def noisy_network(**overrides):
    config = Config(noisy=True, hidden_sizes=(8,), **overrides)
    network = make_q_network(config, num_actions=3, obs_shape=(4,))
    obs = jax.random.normal(jax.random.key(5), (6, 4))
    return network, network.init(jax.random.key(0), obs), obs


def test_noise_changes_with_the_key_and_evaluation_is_deterministic():
    network, params, obs = noisy_network()
    a = network.apply(params, obs, jax.random.key(1))
    b = network.apply(params, obs, jax.random.key(2))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, network.apply(params, obs, jax.random.key(1)))
    mean = network.apply(params, obs)  # no key: the mean weights, every time
    np.testing.assert_array_equal(mean, network.apply(params, obs))
    x = np.maximum(obs @ params["noisy_linear_0"]["w_mu"] + params["noisy_linear_0"]["b_mu"], 0)
    expected = x @ params["noisy_linear_1"]["w_mu"] + params["noisy_linear_1"]["b_mu"]
    np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-6)


def test_noisy_layer_matches_factorised_gaussian_formula():
    network, params, obs = noisy_network()
    key = jax.random.key(3)
    layer_keys = jax.random.split(key, 2)

    def scaled(e):
        return np.sign(e) * np.sqrt(np.abs(e))

    x = np.asarray(obs, np.float64)
    for i, name in enumerate(["noisy_linear_0", "noisy_linear_1"]):
        p = params[name]
        in_key, out_key = jax.random.split(layer_keys[i])
        eps_in = scaled(np.asarray(jax.random.normal(in_key, (p["w_mu"].shape[0],))))
        eps_out = scaled(np.asarray(jax.random.normal(out_key, (p["w_mu"].shape[1],))))
        w = p["w_mu"] + p["w_sigma"] * np.outer(eps_in, eps_out)
        x = x @ w + p["b_mu"] + p["b_sigma"] * eps_out
        x = np.maximum(x, 0) if i == 0 else x
    np.testing.assert_allclose(network.apply(params, obs, key), x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(params["noisy_linear_0"]["w_sigma"], 0.5 / 2.0)  # sigma0/sqrt(4)


def test_noisy_dueling_has_noisy_heads():
    network, params, obs = noisy_network(dueling=True)
    assert {"noisy_value", "noisy_advantage"} <= set(params)
    assert network.apply(params, obs, jax.random.key(0)).shape == (6, 3)


def test_noisy_sigma_is_validated():
    with pytest.raises(ValueError, match="Config.noisy_sigma0 must be a finite number > 0"):
        Config(noisy=True, noisy_sigma0=0.0)
