"""A run killed with SIGKILL mid-way and resumed ends bitwise identical to an
uninterrupted one; checkpoints are atomic."""

import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config
from purejaxdqn.runner import checkpoint_name, segment_plan

FLAGS = ["--num-seeds", "2", "--num-frames", "1600", "--eval-every", "200",
         "--warmup-steps", "100", "--buffer-size", "1000", "--batch-size", "32",
         "--hidden-sizes", "16", "--segment-frames", "400", "--seed", "3"]


# The CLI, in a process that SIGKILLs itself right after its N-th checkpoint is written.
KILLED_CLI = """
import os, runpy, signal, sys
import purejaxdqn.runner as runner
kill_after, written, save = int(sys.argv.pop(1)), [], runner.save_checkpoint
def save_then_die(*args, **kwargs):
    save(*args, **kwargs)
    written.append(1)
    if len(written) == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
runner.save_checkpoint = save_then_die
runpy.run_module("purejaxdqn.cli", run_name="__main__")
"""


def train(out, *extra, kill_after=None):
    command = ([sys.executable, "-c", KILLED_CLI, str(kill_after)] if kill_after
               else [sys.executable, "-m", "purejaxdqn.cli"])
    return subprocess.run([*command, "train", *FLAGS, "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600)


def test_killed_and_resumed_run_is_bitwise_identical(tmp_path):
    whole = train(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr

    killed = train(tmp_path / "resumed", kill_after=2)
    assert killed.returncode == -signal.SIGKILL
    # Killed between writing segment 2's checkpoint and removing segment 1's.
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == [
        checkpoint_name(2, 0, 1), checkpoint_name(4, 0, 1)]
    with np.load(tmp_path / "resumed" / checkpoint_name(4, 0, 1)) as checkpoint:
        assert int(checkpoint["next_report"]) == 4  # 2 segments of 2 reports were kept
    assert not (tmp_path / "resumed" / "summary.json").exists()

    resumed = train(tmp_path / "resumed", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("params.npz", "metrics.npz"):
        a, b = np.load(tmp_path / "whole" / name), np.load(tmp_path / "resumed" / name)
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}")


def test_resume_refuses_another_runs_checkpoint(tmp_path):
    assert train(tmp_path, kill_after=1).returncode == -signal.SIGKILL
    done = subprocess.run([sys.executable, "-m", "purejaxdqn.cli", "train", *FLAGS,
                           "--gamma", "0.9", "--out", str(tmp_path), "--resume"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert "--gamma 0.9 differs from the checkpoint's 0.99" in done.stderr
    done = subprocess.run([sys.executable, "-m", "purejaxdqn.cli", "train", *FLAGS,
                           "--out", str(tmp_path / "empty"), "--resume"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "no checkpoint" in done.stderr


@pytest.mark.parametrize("segment_frames", [0, -500, 300, 2_500, 12_000])
def test_segments_must_be_whole_reports_dividing_the_run(segment_frames):
    config = Config(num_frames=6_000, eval_every=500, warmup_steps=100)
    assert segment_plan(config, 1_500) == (500, 3)
    with pytest.raises(ValueError, match=r"segment_frames must be a multiple of eval_every "
                                         r"\(500\) that divides num_frames \(6000\)"):
        segment_plan(config, segment_frames)


@pytest.mark.parametrize("segment_frames", [0, 1_502, 4_000])
def test_without_evaluation_segments_are_whole_learning_blocks(segment_frames):
    config = Config(num_frames=6_000, eval_every=0, warmup_steps=100)
    assert segment_plan(config, 1_500) == (1_500, 1)  # one report per segment
    assert segment_plan(config, 12) == (12, 1)
    with pytest.raises(ValueError, match=r"segment_frames must be a multiple of train_every "
                                         r"\(4\) that divides num_frames \(6000\)"):
        segment_plan(config, segment_frames)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from purejaxdqn import runner

    state = {"w": jnp.arange(6.0).reshape(2, 3), "key": jax.random.split(jax.random.key(1), 2)}
    path = tmp_path / checkpoint_name(2, 0, 1)
    runner.save_checkpoint(path, state, {"loss": jnp.ones((2, 2))}, 2, {"a": 1})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(runner.np, "savez", crash)
    with pytest.raises(OSError):
        runner.save_checkpoint(path, state, {"loss": jnp.zeros((2, 2))}, 3, {"a": 1})
    assert path.read_bytes() == before  # the last good checkpoint is untouched
    assert runner.read_meta(path) == {"a": 1, "elapsed_s": 0.0}
    restored, metrics, next_report = runner.load_checkpoint(path, state)
    assert next_report == 2
    np.testing.assert_array_equal(metrics["loss"], np.ones((2, 2)))
    np.testing.assert_array_equal(restored["w"], state["w"])
    np.testing.assert_array_equal(jax.random.key_data(restored["key"]),
                                  jax.random.key_data(state["key"]))


def test_resume_refuses_another_process_count(tmp_path):
    from purejaxdqn import runner

    state = {"w": jnp.zeros((2, 3))}
    runner.save_checkpoint(tmp_path / checkpoint_name(4, 0, 2), state, {}, 4, {})
    done = subprocess.run([sys.executable, "-m", "purejaxdqn.cli", "train", *FLAGS,
                           "--out", str(tmp_path), "--resume"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert "written by 2 process(es); resume it with 2, not 1" in done.stderr
