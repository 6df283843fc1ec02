"""PQN (purejaxdqn/pqn.py): Q(lambda) targets against a numpy loop over a rollout with a
termination and a truncation inside it; a sweep over its traced fields, one of whose
seeds is the seed alone; the probe environments are in test_probes.py, resume in test_resume.py."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import make_train, sweep
from purejaxdqn.learning import q_lambda_targets
from tests.helpers import SMALL_PQN, numpy_q_lambda


@pytest.mark.parametrize("masked", [False, True])
def test_q_lambda_targets_match_numpy(masked):
    rng = np.random.default_rng(0)
    steps, envs, actions = 7, 3, 4
    q_next = rng.normal(size=(steps, envs, actions))
    reward = rng.normal(size=(steps, envs))
    terminated = np.zeros((steps, envs), bool)
    truncated = np.zeros((steps, envs), bool)
    terminated[2, 0] = True   # env 0: terminates mid-rollout
    truncated[4, 1] = True    # env 1: cut by a time limit, bootstraps from its final obs
    terminated[5, 2] = truncated[1, 2] = True  # env 2: both, in turn
    done = terminated | truncated
    legal = rng.random((steps, envs, actions)) < 0.5 if masked else None
    expected = numpy_q_lambda(q_next, reward, terminated, done, 0.9, 0.7, legal)
    got = q_lambda_targets(jnp.asarray(q_next, jnp.float32), jnp.asarray(reward, jnp.float32),
                           jnp.asarray(terminated), jnp.asarray(done), 0.9, 0.7,
                           None if legal is None else jnp.asarray(legal))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # lambda 0 is one-step Q-learning; lambda 1 with no ends the discounted return + bootstrap.
    one_step = reward + 0.9 * (1 - terminated) * q_next.max(-1)
    np.testing.assert_allclose(
        q_lambda_targets(jnp.asarray(q_next, jnp.float32), jnp.asarray(reward, jnp.float32),
                         jnp.asarray(terminated), jnp.asarray(done), 0.9, 0.0),
        one_step, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_a_sweep_over_lambda_and_the_learning_rate_is_one_program():
    result = sweep(SMALL_PQN, {"q_lambda": [0.0, 0.9], "learning_rate": [1e-3]}, num_seeds=2)
    assert [c["q_lambda"] for c in result.configs] == [0.0, 0.9]
    final = np.asarray(result.metrics["final_eval_return"])
    assert final.shape == (2, 2)
    alone = jax.jit(make_train(dataclasses.replace(SMALL_PQN, q_lambda=0.9,
                                                   learning_rate=1e-3)))(
        jax.random.split(jax.random.key(0), 2)[1])
    # Seed 1 of the second setting, vmapped over settings and seeds, is that seed alone
    # (up to the rounding batched matmuls may bring).
    for swept, single in zip(jax.tree.leaves(result.metrics), jax.tree.leaves(alone.metrics)):
        np.testing.assert_allclose(swept[1, 1], single, rtol=1e-4, atol=1e-5)
    for swept, single in zip(jax.tree.leaves(result.params), jax.tree.leaves(alone.params)):
        np.testing.assert_allclose(swept[1, 1], single, rtol=1e-4, atol=1e-5)
    assert np.all(np.isfinite(result.metrics["loss"]))
    # One report (eval_every=0) of 16 updates: every one learned, episodes ended.
    assert result.metrics["loss"].shape == (2, 2, 1)
    assert np.all(result.metrics["train_episodes"] > 0)
