"""The whole program: shapes, determinism, vmap, replay wrap-around, evaluation."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from purejaxdqn import Config, make_q_network, make_train, make_trainer, report_frames
from purejaxdqn.policies import epsilon_at
from purejaxdqn.envs import make_env
from purejaxdqn.evaluation import evaluate, random_policy_returns
from tests.helpers import (SMALL, CounterEnv, assert_same_key_same_result,
                           assert_vmapped_seed_equals_seed_alone, one_step_probe)


@pytest.fixture(scope="module")
def vmapped_result():
    keys = jax.random.split(jax.random.key(42), 3)
    return keys, jax.jit(jax.vmap(make_train(SMALL)))(keys)


def test_metric_shapes_and_dtypes(vmapped_result):
    _, result = vmapped_result
    metrics = result.metrics
    assert set(metrics) == {"eval_return", "loss", "abs_td_error", "q_value", "epsilon",
                            "train_episode_return", "train_episodes", "final_eval_return"}
    for name, value in metrics.items():
        expected = (3,) if name == "final_eval_return" else (3, 4)
        assert value.shape == expected, name
        assert value.dtype == (jnp.int32 if name == "train_episodes" else jnp.float32), name
    assert jax.tree.leaves(result.params)[0].shape[0] == 3
    # CartPole returns are positive; every report after warm-up has learned.
    assert np.all(metrics["eval_return"] >= 8) and np.all(np.isfinite(metrics["loss"]))
    np.testing.assert_allclose(metrics["epsilon"][0],
                               epsilon_at(report_frames(SMALL), 1.0, 0.05, 1_000), rtol=1e-6)
    # Episodes completed in a report, at least 200 / 500 steps long each.
    assert np.all(metrics["train_episodes"] >= 1)
    assert np.all(metrics["train_episodes"] * metrics["train_episode_return"] <= 500 + 500)


def test_same_key_same_result(vmapped_result):
    assert_same_key_same_result(SMALL, *vmapped_result)


def test_vmapped_seed_equals_seed_alone(vmapped_result):
    assert_vmapped_seed_equals_seed_alone(SMALL, *vmapped_result)


def test_different_seeds_differ(vmapped_result):
    _, result = vmapped_result
    w = jax.tree.leaves(result.params)[-1]
    assert not np.allclose(w[0], w[1]) and not np.allclose(w[1], w[2])
    assert len(set(np.asarray(result.metrics["train_episodes"][:, 0]).tolist())) > 1


def test_legacy_uint32_keys_work():
    result = jax.eval_shape(make_train(SMALL), jax.random.PRNGKey(0))
    assert result.metrics["eval_return"].shape == (4,)


def test_eval_every_zero_reports_once_without_eval():
    config = Config(**{**SMALL.__dict__, "eval_every": 0})
    metrics = jax.eval_shape(make_train(config), jax.random.key(0)).metrics
    assert "eval_return" not in metrics
    assert metrics["loss"].shape == (1,) and metrics["final_eval_return"].shape == ()


def test_learning_waits_for_warmup():
    # The first report ends before warm-up does: no learning step, so no loss.
    config = Config(**{**SMALL.__dict__, "warmup_steps": 600})
    metrics = jax.jit(make_train(config))(jax.random.key(0)).metrics
    assert np.isnan(metrics["loss"][0]) and np.all(np.isfinite(metrics["loss"][1:]))


@pytest.mark.parametrize("warmup_steps, train_every", [(100, 4), (99, 4), (0, 4), (1, 1),
                                                      (30, 10)])
def test_learning_steps_come_when_the_tutorials_loop_learns(warmup_steps, train_every):
    # The tutorial's loop stores frame t's transition (t from 1), then learns if the buffer
    # holds warmup_steps transitions and t % train_every == 0. Adam counts ours.
    config = Config(num_frames=200, batch_size=8, buffer_size=100, eval_every=0,
                    hidden_sizes=(8,), warmup_steps=warmup_steps, train_every=train_every)
    trainer = make_trainer(config, env=CounterEnv())
    hparams = config.hyperparams()

    @jax.jit
    def learning_steps(key):
        state = trainer.init(key, hparams)
        state, _ = trainer.run_reports(state, jnp.arange(config.num_reports), hparams)
        return optax.tree_utils.tree_get(state.opt_state, "count")

    tutorial = sum(1 for t in range(1, 201) if t >= warmup_steps and t % train_every == 0)
    assert int(learning_steps(jax.random.key(0))) == tutorial


def test_replay_wraps_around_keeping_newest():
    config = Config(num_frames=400, buffer_size=100, batch_size=16, warmup_steps=50,
                    eval_every=0, hidden_sizes=(8,))
    trainer = make_trainer(config, env=CounterEnv())
    hparams = config.hyperparams()

    @jax.jit
    def run(key):
        state = trainer.init(key, hparams)
        return trainer.run_reports(state, jnp.arange(config.num_reports), hparams)[0]

    buffer_state = run(jax.random.key(0)).buffer_state
    assert bool(buffer_state.is_full) and int(buffer_state.current_index) == 0
    experience = buffer_state.experience
    np.testing.assert_array_equal(np.sort(experience.obs[0, :, 0]), np.arange(300, 400))
    np.testing.assert_array_equal(experience.next_obs[0, :, 0], experience.obs[0, :, 0] + 1)
    assert experience.obs.dtype == jnp.int32  # stored in its native dtype


def test_evaluation_is_greedy():
    env = one_step_probe(terminate=False, rewarded_action=0, steps=50)
    env_params = env.default_params
    network = make_q_network(SMALL, num_actions=2, obs_shape=(1,))
    params = network.init(jax.random.key(0), jnp.ones((1,)))
    last = sorted(params)[-1]
    params[last] = {"w": jnp.zeros_like(params[last]["w"]), "b": jnp.array([1.0, 0.0])}
    mean_return = jax.jit(lambda key: evaluate(key, params, network, env, env_params, 20))(
        jax.random.key(0))
    assert float(mean_return) == 50.0  # any random action would lose a reward


def test_one_evaluation_serves_several_episode_counts():
    """Given several counts, `evaluate` runs the most episodes once and gives, for each
    count, what an evaluation of exactly that many episodes gives."""
    env, env_params = make_env("CartPole-v1")
    network = make_q_network(SMALL, num_actions=2, obs_shape=(4,))
    params = network.init(jax.random.key(1), jnp.ones((4,)))
    key = jax.random.key(2)
    means = jax.jit(lambda: evaluate(key, params, network, env, env_params, (3, 7)))()
    for mean, n in zip(means, (3, 7)):
        exact = jax.jit(lambda: evaluate(key, params, network, env, env_params, n))()
        np.testing.assert_array_equal(mean, exact)
    assert means[0] != means[1]  # 28/3 and 66/7 at these keys: the counts are told apart


def _episode_loops(jaxpr, length: int) -> int:
    """How many scans of `length` steps `jaxpr` holds, sub-jaxprs included."""
    count = 0
    for eqn in jaxpr.eqns:
        count += eqn.primitive.name == "scan" and eqn.params["length"] == length
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple) else (value,):
                if hasattr(sub, "eqns") or hasattr(sub, "jaxpr"):
                    count += _episode_loops(getattr(sub, "jaxpr", sub), length)
    return count


@pytest.mark.parametrize("eval_every", [600, 0])
def test_one_evaluation_program_serves_periodic_and_final_evaluations(eval_every):
    # 2,400 frames: no block loop of 500 steps (600 at most) to be mistaken for an episode's.
    config = dataclasses.replace(SMALL, num_frames=2_400, eval_every=eval_every)
    jaxpr = jax.make_jaxpr(make_train(config))(jax.random.key(0)).jaxpr
    assert _episode_loops(jaxpr, length=500) == 1  # CartPole's episodes: 500 steps at most


def test_random_policy_is_uniform():
    # Each of 50 steps pays 1 for action 0 of 2: the return is Binomial(50, 1/2).
    env = one_step_probe(terminate=False, rewarded_action=0, steps=50)
    env_params = env.default_params
    returns = np.asarray(jax.jit(lambda key: random_policy_returns(key, env, env_params, 2_000))(
        jax.random.key(0)))
    assert returns.shape == (2_000,)
    assert abs(returns.mean() - 25.0) < 0.3  # standard error 0.08
    assert abs(returns.std() - np.sqrt(12.5)) < 0.3


def test_learning_step_stays_a_branch_under_vmap():
    keys = jax.random.split(jax.random.key(0), 2)
    jaxpr = str(jax.make_jaxpr(jax.vmap(make_train(SMALL)))(keys))
    assert "cond[" in jaxpr


def test_a_fresh_state_is_batched_over_seeds_but_for_its_counters():
    """Under vmap every non-scalar leaf of a fresh state varies with the seed (zeros and
    constants included, so that the training scans are batched in one pass), and the
    scalar counters every seed shares do not (the replay write stays a slice update)."""
    trainer, hparams = make_trainer(SMALL), SMALL.hyperparams()
    keys = jax.random.split(jax.random.key(0), 2)
    state = jax.eval_shape(trainer.init, keys[0], hparams)
    shapes = jax.tree_util.tree_flatten_with_path(state)[0]
    for i, (path, leaf) in enumerate(shapes):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            continue
        def one_leaf(key, i=i):
            return jax.tree.leaves(trainer.init(key, hparams))[i]
        try:  # an output that varies over the vmapped axis cannot be returned unmapped
            jax.vmap(one_leaf, out_axes=None)(keys)
            batched = False
        except ValueError:
            batched = True
        assert batched == (leaf.ndim > 0), jax.tree_util.keystr(path)


@pytest.mark.slow
def test_unrolling_the_acting_loop_changes_no_result(vmapped_result):
    """`act_unroll` only changes how many acting steps one loop iteration holds, with a
    count that does not divide the block as well (3 of SMALL's 4 acting steps a block)."""
    keys, rolled = vmapped_result
    assert SMALL.block_frames // SMALL.num_envs == 4 and SMALL.act_unroll == 1
    unrolled = jax.jit(jax.vmap(make_train(dataclasses.replace(SMALL, act_unroll=3))))(keys)
    chex.assert_trees_all_equal(rolled, unrolled)
