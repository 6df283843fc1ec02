"""The training loop's module-level pieces, each alone: one acting step, one block, a
report's metrics, epsilon."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config
from purejaxdqn.acting import act, exploration_epsilon
from purejaxdqn.dqn import init_state, run_block
from purejaxdqn.learning import LearnStats
from purejaxdqn.train import make_parts, report_metrics
from tests.helpers import CounterEnv, ProbeParams

TINY = dict(num_frames=64, batch_size=4, buffer_size=32, warmup_steps=8, eval_every=0,
            hidden_sizes=(4,))


def test_report_metrics_average_only_the_steps_that_learned():
    learning = jnp.array([[False, False], [True, True], [True, True]])  # (blocks, learns)
    loss = jnp.array([[9.0, 9.0], [1.0, 2.0], [3.0, 4.0]])
    stats = LearnStats(loss, 2 * loss, -loss)
    episodes = jnp.array([1, 0, 3], jnp.int32)
    return_sums = jnp.array([10.0, 0.0, 50.0])
    metrics = report_metrics((learning, stats, episodes, return_sums), jnp.float32(0.3))
    assert float(metrics["loss"]) == pytest.approx(2.5)          # (1 + 2 + 3 + 4) / 4
    assert float(metrics["abs_td_error"]) == pytest.approx(5.0)
    assert float(metrics["q_value"]) == pytest.approx(-2.5)
    assert int(metrics["train_episodes"]) == 4
    assert float(metrics["train_episode_return"]) == pytest.approx(15.0)  # 60 / 4
    assert float(metrics["epsilon"]) == pytest.approx(0.3)
    none = report_metrics((learning & False, stats, episodes * 0, return_sums * 0),
                          jnp.float32(0.0))
    assert np.isnan(none["loss"]) and np.isnan(none["train_episode_return"])


def test_exploration_epsilon_follows_the_schedule_and_is_zero_when_noisy():
    config = Config(eps_start=1.0, eps_end=0.1, eps_decay_frames=100)
    hparams = config.hyperparams()
    values = [float(exploration_epsilon(jnp.int32(f), hparams, config)) for f in (0, 50, 500)]
    assert values == pytest.approx([1.0, 0.55, 0.1])
    noisy = Config(noisy=True)
    assert float(exploration_epsilon(jnp.int32(0), noisy.hyperparams(), noisy)) == 0.0


@pytest.mark.parametrize("bootstrap", [True, False])
def test_act_stores_the_final_observation_at_a_time_limit(bootstrap):
    # Episodes of 3 steps ending by truncation, 2 environments side by side.
    config = Config(**TINY, num_envs=2, train_every=2, bootstrap_on_truncation=bootstrap)
    parts = make_parts(config, CounterEnv(), ProbeParams(max_steps_in_episode=3))
    hparams = config.hyperparams()
    state = jax.jit(lambda key: init_state(parts, key, hparams))(jax.random.key(0))
    step = jax.jit(lambda s, k: act(parts, s, k, hparams))
    for i, key in enumerate(jax.random.split(jax.random.key(1), 4)):
        obs = np.asarray(state.obs[:, 0])
        state, (stored, done, returns) = step(state, key)
        assert int(state.frame) == 2 * (i + 1)
        np.testing.assert_array_equal(stored.obs[:, 0], obs)
        np.testing.assert_array_equal(stored.next_obs[:, 0], obs + 1)  # not the reset's 0
        assert stored.action.dtype == jnp.int32 and stored.action.shape == (2,)
        ends = i == 2
        np.testing.assert_array_equal(done, [ends, ends])
        np.testing.assert_array_equal(stored.terminal, [ends and not bootstrap] * 2)
        np.testing.assert_array_equal(state.obs[:, 0], [0, 0] if ends else obs + 1)


def test_run_block_learns_only_after_warm_up():
    config = Config(**TINY, train_every=4)  # blocks of 4 frames; learning from block 1
    parts = make_parts(config, CounterEnv(), None)
    hparams = config.hyperparams()
    state = jax.jit(lambda key: init_state(parts, key, hparams))(jax.random.key(0))
    # The block index is traced: one program serves every block, warm-up or not.
    block = jax.jit(chex.assert_max_traces(lambda s, b: run_block(parts, s, b, hparams), n=1))
    for b in range(3):
        before = state.online_params
        state, (learning, stats, episodes, return_sums) = block(state, b)
        assert int(state.frame) == 4 * (b + 1)
        assert int(state.buffer_state.current_index) == 4 * (b + 1)
        changed = any(not np.array_equal(x, y) for x, y in
                      zip(jax.tree.leaves(before), jax.tree.leaves(state.online_params)))
        assert learning.tolist() == [b >= 1] and changed == (b >= 1)
        assert int(episodes) == 0 and float(return_sums) == 0.0
