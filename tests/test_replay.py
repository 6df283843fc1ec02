"""Prioritised replay: sampling in proportion to priority, importance weights, guards."""

import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn import Config
from purejaxdqn.replay import Transition
from purejaxdqn.replay import importance_weights, make_buffer, new_priorities, sample


def filled_prioritized_buffer(td_errors, exponent):
    n = len(td_errors)
    config = Config(prioritized=True, buffer_size=n, batch_size=n, train_every=4,
                    warmup_steps=0)
    buffer = make_buffer(config)

    @jax.jit  # (one program: op by op, the sum tree's updates compile a program each)
    def fill(td_errors):
        item = Transition(jnp.zeros(1), jnp.int32(0), jnp.float32(0), jnp.bool_(False),
                          jnp.zeros(1))
        items = Transition(jnp.arange(n, dtype=jnp.float32)[:, None], jnp.zeros(n, jnp.int32),
                           jnp.zeros(n), jnp.zeros(n, bool), jnp.zeros((n, 1)))
        state = buffer.add(buffer.init(item), items)
        return buffer.set_priorities(state, jnp.arange(n), new_priorities(td_errors, exponent))

    return config, buffer, fill(jnp.asarray(td_errors, jnp.float32))


def test_sampling_frequency_is_proportional_to_priority():
    td_errors = np.array([0.0, 1.0, 2.0, 4.0, 8.0, 1.0, 0.5, 3.5])
    alpha = 0.7
    config, buffer, state = filled_prioritized_buffer(td_errors, alpha)
    keys = jax.random.split(jax.random.key(0), 500)
    drawn = jax.jit(jax.vmap(lambda k: sample(buffer, state, k, config, 0.5, 0.99)))(keys)
    counts = np.bincount(np.asarray(drawn.batch.obs[..., 0], int).ravel(), minlength=8)
    expected = (np.abs(td_errors) + 1e-6) ** alpha
    expected /= expected.sum()
    observed = counts / counts.sum()
    # 4,000 draws: each frequency within 4 standard errors of its probability.
    stderr = np.sqrt(expected * (1 - expected) / counts.sum())
    assert np.all(np.abs(observed - expected) < 4 * stderr + 1e-3), (observed, expected)
    assert counts[0] == 0  # |TD error| 0 gives priority eps**alpha: practically never


def test_importance_weights_match_numpy_and_guard_zero_probability():
    probabilities = jnp.array([0.1, 0.4, 0.0, 0.25])
    weights = importance_weights(probabilities, 10, 0.6)
    p = np.array([0.1, 0.4, 0.25])
    w = (10 * p) ** -0.6
    np.testing.assert_allclose(np.asarray(weights)[[0, 1, 3]], w / w.max(), rtol=1e-5)
    assert float(weights[2]) == 0.0 and np.all(np.isfinite(weights))
    assert float(weights.max()) == 1.0


def test_sampled_weights_use_the_buffer_fill():
    td_errors = np.array([1.0, 3.0, 1.0, 1.0])
    config, buffer, state = filled_prioritized_buffer(td_errors, 1.0)
    drawn = jax.jit(lambda key: sample(buffer, state, key, config, 1.0, 0.99))(jax.random.key(1))
    p = (td_errors + 1e-6) / (td_errors + 1e-6).sum()
    picked = np.asarray(drawn.batch.obs[:, 0], int)
    w = (4 * p[picked]) ** -1.0
    np.testing.assert_allclose(drawn.weights, w / w.max(), rtol=1e-4)
