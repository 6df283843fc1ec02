"""Progress on long runs: a run shown group by group of seeds, or in segments of blocks,
gives the one program's bits; the CLI shows a bar on a terminal and plain lines in a log
(none with --quiet), and Ctrl-C during a bar still ends in one line."""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import chex
import pytest

from purejaxdqn import Config, sweep, train_seeds
from purejaxdqn.progress import LONG_RUN_S, Progress
from purejaxdqn.train import segment_blocks
from tests.helpers import SMALL, SMALL_PQN, assert_same_outputs, cli_env, main_in_process

# SMALL's fields as flags: the CLI's run is the library's, and shares its programs.
SMALL_FLAGS = ["--num-frames", 2000, "--batch-size", 32, "--buffer-size", 1000,
               "--warmup-steps", 200, "--eval-every", 500, "--eval-episodes", 2,
               "--final-eval-episodes", 3, "--hidden-sizes", 32, "--eps-decay-frames", 1000]


def percents(text: str) -> list[int]:
    return [int(p) for p in re.findall(r"^\d+ seeds: +(\d+)% ", text, re.MULTILINE)]


def test_segments_grow_with_the_work_and_divide_the_run():
    def segments(config, runs):
        blocks = config.num_frames // config.block_frames
        assert blocks % segment_blocks(config, runs) == 0
        return blocks // segment_blocks(config, runs)

    long = Config(eval_every=0, num_frames=1_000_000)
    assert segments(long, 1) == 50 and segments(long, 64) == 50
    assert segments(Config(eval_every=0), 1) == 10  # 40,000 frames: 10, the fewest
    assert segments(Config(eval_every=0), 16) == 40  # 640,000: 32 wanted; 250 blocks each
    # 1,001 blocks (7 x 11 x 13): the divisor nearest to 10 segments' 100
    assert segments(Config(eval_every=0, num_frames=4 * 1_001, warmup_steps=0), 1) == 11


def test_progress_changes_no_bit_of_a_run(capsys):
    # 10 seeds a device: a call per seed of each device, the program unchanged
    whole = train_seeds(SMALL, 20, seed=0)
    capsys.readouterr()
    shown = train_seeds(SMALL, 20, seed=0, progress=Progress(SMALL.num_frames, 20, "lines",
                                                             "20 seeds"))
    chex.assert_trees_all_equal(whole, shown)
    assert percents(capsys.readouterr().out) == list(range(10, 101, 10))

    # a sweep of 2 runs a device without periodic evaluation: its one report in segments
    grid = {"q_lambda": [0.5, 0.9]}
    whole = sweep(SMALL_PQN, grid, 2, seed=1)
    shown = sweep(SMALL_PQN, grid, 2, seed=1, progress=Progress(SMALL_PQN.num_frames, 4, "off"))
    chex.assert_trees_all_equal(whole.params, shown.params)
    chex.assert_trees_all_equal(whole.metrics, shown.metrics)
    assert whole.metrics["loss"].shape == (2, 2, 1)


def test_the_cli_shows_lines_in_a_log_and_nothing_when_quiet(tmp_path, capsys):
    """Two seeds (one a device) go a report a call: 4 reports, then the final evaluation."""
    argv = ["train", "--num-seeds", 2, *SMALL_FLAGS]
    status, shown, stderr, _ = main_in_process([*argv, "--progress", "--out",
                                                tmp_path / "shown"], capsys)
    assert status == 0, stderr
    assert percents(shown) == [25, 50, 75, 100]
    assert "at this pace the run takes about" in shown
    status, quiet, stderr, _ = main_in_process([*argv, "--quiet", "--out", tmp_path / "quiet"],
                                               capsys)
    assert status == 0, stderr
    assert percents(quiet) == [] and "at this pace" not in quiet and "iqm" in quiet
    assert_same_outputs(tmp_path / "shown", tmp_path / "quiet")
    # a short run shows nothing by default
    status, short, _, _ = main_in_process(argv, capsys)
    assert status == 0 and percents(short) == []


def test_the_estimate_is_the_pace_past_warm_up(capsys, monkeypatch):
    clock = iter([100.0, 101.0, 102.0, 103.0])  # entering, then one second per update
    monkeypatch.setattr("purejaxdqn.progress.time.perf_counter", lambda: next(clock))
    with Progress(1_000, 1, "lines", "1 seeds", estimate=True, steady_from=5) as progress:
        progress.update(5)    # warm-up ends: the pace is measured from here
        progress.update(7)    # two frames a second: 2 s so far, 496.5 s to go
    assert "the run takes about 8.3 min" in capsys.readouterr().out
    assert "--segment-frames" in progress.estimate_line(LONG_RUN_S + 1)
    assert "--segment-frames" not in progress.estimate_line(LONG_RUN_S - 1)


def read_until(fd: int, pattern: str, seen: bytes, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while not re.search(pattern.encode(), seen) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0.01))
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the process has ended
                break
    return seen


@pytest.mark.slow  # a new process on a terminal
def test_a_terminal_gets_a_bar_with_an_eta_and_ctrl_c_ends_in_one_line():
    terminal, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "purejaxdqn.cli", "train", "--num-seeds", "2",
         *map(str, SMALL_FLAGS), "--num-frames", "200000"],
        stdin=child, stdout=child, stderr=child, env=cli_env(), close_fds=True)
    os.close(child)
    try:
        bar = r"2 seeds: +[1-9]\d*%\|.*\| [\d.]+k/400k \[[\d:]+<[\d:]+"  # done < ETA
        seen = read_until(terminal, bar, b"", timeout=300)
        assert re.search(bar.encode(), seen), seen.decode(errors="replace")[-2000:]
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        seen = read_until(terminal, r"nothing was saved.*\n", seen, timeout=10)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        os.close(terminal)
    assert process.returncode == 128 + signal.SIGINT
    last = seen.decode(errors="replace").replace("\r\n", "\n").rstrip("\n").split("\n")[-1]
    assert last.startswith("purejaxdqn: stopped by SIGINT; nothing was saved"), last
