"""Several environments per seed (`num_envs`): frames count all of them, each keeps its own
episodes, truncations and n-step windows, and the replay ratio stays set in frames."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config, make_train, make_trainer
from purejaxdqn import replay
from tests.helpers import (GAMMA, PROBES, CounterEnv, assert_same_key_same_result, learned_q,
                           one_step_probe)

SMALL = Config(num_frames=2_000, batch_size=32, buffer_size=1_000, warmup_steps=200,
               eval_every=500, eval_episodes=2, final_eval_episodes=3, hidden_sizes=(32,),
               eps_decay_frames=1_000, num_envs=4)


# Two learning steps per acting step (8 environments), and with 3-step windows two acting
# steps per learning step (2) and one each (4).
@pytest.mark.parametrize("n_step, num_envs, train_every", [(1, 8, 4), (3, 2, 4), (3, 4, 4)])
@pytest.mark.slow
def test_probe_q_values(n_step, num_envs, train_every):
    # A time limit bootstraps from the final obs; a termination does not.
    q = learned_q([PROBES["constant, truncated"], PROBES["constant, terminated"]],
                  n_step=n_step, num_envs=num_envs, train_every=train_every)
    np.testing.assert_allclose(q[:, 1], [[1.0 / (1.0 - GAMMA)] * 2, [1.0] * 2], rtol=0.05)


@pytest.mark.parametrize("num_envs", [1, 4, 8])
def test_every_environments_episodes_are_counted(num_envs):
    # One-step episodes: every frame, in whichever environment, ends one.
    config = Config(num_frames=2_000, batch_size=32, buffer_size=1_000, warmup_steps=200,
                    eval_every=400, eval_episodes=1, final_eval_episodes=1, hidden_sizes=(8,),
                    num_envs=num_envs)
    metrics = jax.jit(make_train(config, env=one_step_probe(terminate=True)))(
        jax.random.key(0)).metrics
    np.testing.assert_array_equal(metrics["train_episodes"], [400] * 5)
    np.testing.assert_array_equal(metrics["train_episode_return"], [1.0] * 5)


def run_counter(num_envs: int, n_step: int):
    config = Config(num_frames=400, buffer_size=120, batch_size=64, warmup_steps=50,
                    eval_every=0, hidden_sizes=(8,), num_envs=num_envs, n_step=n_step)
    trainer = make_trainer(config, env=CounterEnv(random_start=True))
    hparams = config.hyperparams()

    @jax.jit
    def run(key):
        state = trainer.init(key, hparams)
        state = trainer.run_reports(state, jnp.arange(config.num_reports), hparams)[0]
        drawn = replay.sample(trainer.buffer, state.buffer_state, jax.random.key(1), config,
                              1.0, 1.0)
        return state, drawn

    return config, *run(jax.random.key(0))


def test_items_of_several_environments_are_their_own_frames():
    config, state, drawn = run_counter(num_envs=4, n_step=1)
    obs = np.asarray(state.buffer_state.experience.obs[0, :, 0])
    next_obs = np.asarray(state.buffer_state.experience.next_obs[0, :, 0])
    np.testing.assert_array_equal(next_obs, obs + 1)  # each item from one environment
    starts = np.asarray(state.obs[:, 0]) - 100  # 400 frames: 100 steps of each of 4
    assert len(set(starts.tolist())) == 4
    # The buffer keeps the newest 120 frames: the last 30 steps of each environment.
    np.testing.assert_array_equal(np.sort(obs), np.sort(np.concatenate(
        [start + np.arange(70, 100) for start in starts])))


def test_n_step_windows_never_cross_environments():
    config, state, drawn = run_counter(num_envs=4, n_step=3)
    rows = np.asarray(state.buffer_state.experience[0].obs[:, :, 0])  # (envs, steps)
    assert rows.shape == (4, 30)
    assert all(len(set(row // 10**6)) == 1 for row in rows)  # one environment a row
    # gamma 1 and no episode end: each window spans 3 consecutive frames of one env.
    np.testing.assert_array_equal(np.asarray(drawn.steps), 3)
    np.testing.assert_array_equal(np.asarray(drawn.batch.next_obs - drawn.batch.obs), 3)


@pytest.fixture(scope="module")
def vmapped_result():
    keys = jax.random.split(jax.random.key(42), 3)
    return keys, jax.jit(jax.vmap(make_train(SMALL)))(keys)


def test_same_key_same_result(vmapped_result):
    assert_same_key_same_result(SMALL, *vmapped_result)


def test_environments_differ_and_metrics_have_report_shapes(vmapped_result):
    _, result = vmapped_result
    assert result.metrics["eval_return"].shape == (3, 4)
    assert result.metrics["train_episodes"].dtype == jnp.int32
    state = jax.jit(make_trainer(SMALL).init)(jax.random.key(0), SMALL.hyperparams())
    assert state.obs.shape == (4, 4) and state.episode_return.shape == (4,)
    assert len({tuple(row) for row in np.asarray(state.obs).tolist()}) == 4
