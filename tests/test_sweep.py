"""Sweeps over traced hyperparameters: one program, configs x seeds."""

import dataclasses
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from purejaxdqn import Config, make_train, sweep

SMALL = Config(num_frames=1_000, batch_size=32, buffer_size=1_000, warmup_steps=200,
               eval_every=500, eval_episodes=2, final_eval_episodes=2, hidden_sizes=(16,),
               eps_decay_frames=500)


@pytest.mark.slow
def test_sweep_is_configs_by_seeds_and_matches_single_runs():
    grid = {"learning_rate": [1e-4, 1e-2], "gamma": [0.9, 0.99, 0.5]}
    result = sweep(SMALL, grid, num_seeds=2, seed=3)
    assert result.configs == [{"learning_rate": lr, "gamma": g}
                              for lr in grid["learning_rate"] for g in grid["gamma"]]
    assert result.metrics["final_eval_return"].shape == (6, 2)
    assert result.metrics["eval_return"].shape == (6, 2, 2)
    # Setting 5 (learning_rate 1e-2, gamma 0.5), seed 1, equals that config trained alone.
    alone = jax.jit(make_train(dataclasses.replace(SMALL, learning_rate=1e-2, gamma=0.5)))(
        jax.random.split(jax.random.key(3), 2)[1])
    for swept, single in zip(jax.tree.leaves(result.params), jax.tree.leaves(alone.params)):
        np.testing.assert_allclose(swept[5, 1], single, rtol=1e-4, atol=1e-5)
    # The settings really differ: the learning rate moves the loss.
    loss = np.asarray(result.metrics["loss"])
    assert not np.allclose(loss[0], loss[3])


@pytest.mark.parametrize("grid, message", [
    ({"batch_size": [32, 64]}, "cannot sweep 'batch_size': only traced hyperparameters"),
    ({"gamma": [0.9, 1.5]}, "Config.gamma must be in [0, 1], got 1.5"),
    ({"tau": []}, "the sweep grid gives no values for 'tau'"),
    ({}, "the sweep grid is empty"),
])
def test_bad_grid_is_refused(grid, message):
    with pytest.raises(ValueError) as error:
        sweep(SMALL, grid, num_seeds=2)
    assert message in str(error.value)


@pytest.mark.slow
def test_sweep_cli_ranks_settings_and_writes_files(tmp_path):
    out = tmp_path / "sweep"
    flags = ["--num-frames", "1000", "--warmup-steps", "200", "--eval-every", "500",
             "--buffer-size", "1000", "--batch-size", "32", "--hidden-sizes", "16"]
    done = subprocess.run(
        [sys.executable, "-m", "purejaxdqn.cli", "sweep", "--grid", "learning_rate=1e-4,1e-2",
         "--grid", "tau=0.01,0.5", "--num-seeds", "3", "--out", str(out), *flags],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    iqms = [row["iqm"]["value"] for row in summary["ranked"]]
    assert len(iqms) == 4 and iqms == sorted(iqms, reverse=True)
    assert "IQM" in done.stdout and "learning_rate=0.01 tau=0.5" in done.stdout
    assert np.load(out / "metrics.npz")["final_eval_return"].shape == (4, 3)
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
