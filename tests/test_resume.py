"""A run killed with SIGKILL mid-way and resumed ends bitwise identical to an
uninterrupted one; checkpoints are atomic."""

import dataclasses
import json
import os
import signal
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config
from purejaxdqn.checkpoints import checkpoint_name
from purejaxdqn.runner import segment_plan
from tests.helpers import (SMALL_PQN, assert_same_outputs, main_in_process, run_cli, start,
                           whole_and_resumed)

FLAGS = ["--num-seeds", "2", "--num-frames", "1600", "--eval-every", "200",
         "--warmup-steps", "100", "--buffer-size", "1000", "--batch-size", "32",
         "--hidden-sizes", "16", "--segment-frames", "400", "--seed", "3"]


# Breakout-MinAtar like its preset (eval_every=0, the CNN), small: segments without
# periodic evaluation, one report per segment.
MINATAR_FLAGS = ["--preset", "breakout-minatar-100k", "--num-seeds", "2", "--num-frames", "1600",
                 "--warmup-steps", "100", "--buffer-size", "1000", "--batch-size", "16",
                 "--hidden-sizes", "16", "--conv-channels", "4", "--final-eval-episodes", "2",
                 "--segment-frames", "400", "--seed", "3"]


# The CLI, in a process that, right after its N-th checkpoint is written, says so in a
# file and hangs, to be killed from outside.
HANGING_CLI = """
import runpy, sys, time
import purejaxdqn.checkpoints as checkpoints
hang_after, marker, written, save = int(sys.argv.pop(1)), sys.argv.pop(1), [], checkpoints.save_checkpoint
def save_then_hang(*args, **kwargs):
    save(*args, **kwargs)
    written.append(1)
    if len(written) == hang_after:
        open(marker, "w").close()
        time.sleep(600)
checkpoints.save_checkpoint = save_then_hang
runpy.run_module("purejaxdqn.cli", run_name="__main__")
"""


def compile_cache(directory) -> dict:
    """This environment with the CLI's compilation cache in `directory`: the runs of one
    test that run one program compile it once."""
    return {**os.environ, "PUREJAXDQN_COMPILE_CACHE": str(directory)}


def kill_after_checkpoints(out, count: int, flags=FLAGS, env=None) -> None:
    """Run the CLI until it has written `count` checkpoints, then SIGKILL it by its pid."""
    marker = out.parent / f"{out.name}.hanging"
    process = start([count, marker, "train", *flags, "--out", out], env, ("-c", HANGING_CLI),
                    stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint within 600 s"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


# DQN with periodic evaluation is killed and resumed in tests/test_multihost.py (one
# process of two) and tests/test_layout.py (on another device count); PQN is resumed in
# this process below, PQN-RNN and R2D2 in tests/test_memory.py.
@pytest.mark.slow
def test_killed_and_resumed_run_is_bitwise_identical(tmp_path):
    # The uninterrupted run first: the run killed and the resumed one load its program from
    # the cache.
    flags = MINATAR_FLAGS
    env = compile_cache(tmp_path / "cache")
    status, _, stderr = run_cli("train", *flags, "--out", tmp_path / "whole", env=env)
    assert status == 0, stderr
    kill_after_checkpoints(tmp_path / "resumed", 2, flags, env)
    # Killed between writing segment 2's checkpoint and removing segment 1's (without
    # evaluation: a report a segment).
    reports = (1, 2)
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == [
        checkpoint_name(r, 0, 1) for r in reports]
    with np.load(tmp_path / "resumed" / checkpoint_name(reports[1], 0, 1)) as checkpoint:
        assert int(checkpoint["next_report"]) == reports[1]
    assert not (tmp_path / "resumed" / "summary.json").exists()

    # The checkpoint supplies the config, seeds and segment size.
    status, _, stderr = run_cli("train", "--out", tmp_path / "resumed", "--resume", env=env)
    assert status == 0, stderr
    assert_same_outputs(tmp_path / "whole", tmp_path / "resumed")
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert summary["resumed_at_frame"] == 800 and summary["total_run_s"] > summary["run_s"]
    assert summary["frames_per_second"] == pytest.approx(2 * 1600 / summary["total_run_s"])


@pytest.mark.slow
def test_a_resumed_pqn_run_is_the_run_never_stopped(tmp_path):
    """PQN (no replay, no target network; a rollout of 4 x 25 frames an update) stopped
    after its first segment and resumed from the checkpoint ends bit for bit as the run
    never stopped."""
    config = dataclasses.replace(SMALL_PQN, eval_every=200, eval_episodes=2)
    whole, resumed = whole_and_resumed(config, tmp_path, num_seeds=2, segment_frames=400,
                                       seed=3)
    assert whole.metrics["eval_return"].shape == (2, 8)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_resume_refuses_another_runs_checkpoint(tmp_path, capsys):
    kill_after_checkpoints(tmp_path, 1)
    status, _, stderr, compiled = main_in_process(
        ["train", *FLAGS, "--gamma", "0.9", "--out", tmp_path, "--resume"], capsys)
    assert status == 2 and not compiled
    assert "--gamma 0.9 differs from the checkpoint's 0.99" in stderr
    status, _, stderr, _ = main_in_process(
        ["train", *FLAGS, "--out", tmp_path / "empty", "--resume"], capsys)
    assert status == 2 and "no checkpoint" in stderr


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
    from purejaxdqn import checkpoints

    state = {"w": jnp.arange(6.0).reshape(2, 3), "key": jax.random.split(jax.random.key(1), 2)}
    path = tmp_path / checkpoint_name(2, 0, 1)
    checkpoints.save_checkpoint(path, state, {"loss": jnp.ones((2, 2))}, 2, {"a": 1})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.np, "savez", crash)
    with pytest.raises(OSError):
        checkpoints.save_checkpoint(path, state, {"loss": jnp.zeros((2, 2))}, 3, {"a": 1})
    assert path.read_bytes() == before  # the last good checkpoint is untouched
    assert checkpoints.read_meta(path) == {"a": 1, "elapsed_s": 0.0}
    restored, metrics, next_report = checkpoints.load_checkpoint(path, state)
    assert next_report == 2
    np.testing.assert_array_equal(metrics["loss"], np.ones((2, 2)))
    np.testing.assert_array_equal(restored["w"], state["w"])
    np.testing.assert_array_equal(jax.random.key_data(restored["key"]),
                                  jax.random.key_data(state["key"]))


@pytest.mark.slow
def test_resume_refuses_another_process_count(tmp_path):
    from purejaxdqn import checkpoints

    state = {"w": jnp.zeros((2, 3))}
    checkpoints.save_checkpoint(tmp_path / checkpoint_name(4, 0, 2), state, {}, 4, {})
    status, _, stderr = run_cli("train", *FLAGS, "--out", tmp_path, "--resume")
    assert status == 2
    assert "written by 2 process(es); resume it with 2, not 1" in stderr
