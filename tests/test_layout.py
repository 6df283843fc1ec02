"""The CPU split over one device per core: the count chosen, how it is set and refused,
what it records, that a seed's bits do not depend on it, checkpoints that move between
device counts, and runs stopped by a signal."""

import json
import math
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from purejaxdqn import layout
from purejaxdqn.cli import main
from purejaxdqn.checkpoints import CHECKPOINT_PATTERN, own_checkpoints, read_meta
from tests.helpers import CLI, cli_env, finish, start

SMALL = ["--num-frames", "1600", "--eval-every", "400", "--warmup-steps", "100",
         "--buffer-size", "1000", "--batch-size", "32", "--hidden-sizes", "16"]


@pytest.mark.parametrize("seeds, cores, devices", [
    (64, 2, 2), (6, 4, 3), (5, 4, 3), (1, 16, 1), (7, 16, 7), (256, 16, 16), (17, 16, 9),
    (16, 1, 1), (3, 2, 2)])
def test_the_fewest_devices_that_give_the_fewest_seeds_each(seeds, cores, devices):
    assert layout.best_device_count(seeds, cores) == devices
    per_device = -(-seeds // devices)
    assert all(-(-seeds // d) >= per_device for d in range(1, cores + 1))


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_device_count_must_be_a_positive_integer(value, monkeypatch):
    with pytest.raises(ValueError, match=r"must be an integer > 0 \(CPU devices\)"):
        layout.parse_count(value, "X")
    monkeypatch.setenv("PUREJAXDQN_CPU_DEVICES", value)
    with pytest.raises(ValueError, match="PUREJAXDQN_CPU_DEVICES must be an integer > 0"):
        layout.requested_count(8)


def test_bad_device_counts_are_one_line_before_jax_starts(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--cpu-devices", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--cpu-devices: must be an integer > 0" in err
    probe = ("from purejaxdqn import layout\nfrom purejaxdqn.cli import main\n"
             "print(main(['sweep', '--grid', 'tau=0.1,0.2']), layout.backend_started())")
    ((_, stdout, stderr),) = finish([start([], cli_env("many"), ("-c", probe))], 120)
    assert stdout.split() == ["2", "False"]  # refused before JAX started: no compile
    assert stderr == ("purejaxdqn: error: PUREJAXDQN_CPU_DEVICES must be an integer > 0 "
                           "(CPU devices), got 'many'\n")


@pytest.mark.slow
def test_the_default_uses_every_core(tmp_path):
    """(That a seed's bits on a CPU do not depend on the layout is checked below, on 1, 2
    and 4 devices.)"""
    ((status, stdout, stderr),) = finish([start(
        ["train", *SMALL, "--num-seeds", "6", "--seed", "4", "--out", tmp_path], cli_env(None))])
    assert status == 0, stderr
    devices = layout.best_device_count(6, layout.cpu_cores())
    assert f"training 6 seeds on {devices} cpu device" in stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["layout"] == {"platform": "cpu", "processes": 1, "devices": devices,
                                 "devices_per_process": devices,
                                 "seeds_per_device": -(-6 // devices),
                                 "padding_seeds": -6 % devices}


LIBRARY = """
import warnings, sys
import purejaxdqn
from purejaxdqn import Config, layout, train_seeds
assert not layout.backend_started()  # importing and configuring start nothing
config = Config(num_frames=400, eval_every=0, warmup_steps=100, buffer_size=500,
                batch_size=16, hidden_sizes=(8,), final_eval_episodes=1)
if sys.argv[1] == "late":
    import jax.numpy as jnp
    jnp.zeros(1)  # the user starts JAX first: one device, one warning, no failure
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(2):
        train_seeds(config, 6)
import jax
ours = [str(w.message) for w in caught if "use_cpu_devices" in str(w.message)]
print(jax.device_count(), len(ours), *ours, sep="|")
"""


@pytest.mark.slow
def test_the_library_splits_when_it_starts_jax_and_warns_once_when_it_cannot():
    first, late = finish([start([when], cli_env("3"), ("-c", LIBRARY))
                          for when in ("first", "late")])
    for status, _, stderr in (first, late):
        assert status == 0, stderr
    assert first[1].strip().splitlines()[-1].split("|") == ["3", "0"]
    devices, warnings, message = late[1].strip().splitlines()[-1].split("|")
    assert (devices, warnings) == ("1", "1")
    assert "call purejaxdqn.use_cpu_devices(num_seeds=...) right after" in message


# The CLI, which after loading a checkpoint dumps the state it resumes from to a file.
DUMPING_CLI = """
import runpy, sys
import jax, numpy as np
import purejaxdqn.checkpoints as checkpoints
dump, load = sys.argv.pop(1), checkpoints.load_checkpoint
def load_and_dump(*args, **kwargs):
    state, metrics, next_report = load(*args, **kwargs)
    leaves = [jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
              else x for x in jax.tree.leaves(state)]
    np.savez(dump, next_report=next_report, **{f"state_{i}": np.asarray(x)
                                               for i, x in enumerate(leaves)},
             **{f"metric_{k}": np.asarray(v) for k, v in metrics.items()})
    return state, metrics, next_report
checkpoints.load_checkpoint = load_and_dump
runpy.run_module("purejaxdqn.cli", run_name="__main__")
"""


def stop_at(process, until, sig, timeout: float = 600) -> int:
    """Send `sig` to `process` (by pid) once `until()` holds; its exit status."""
    try:
        deadline = time.monotonic() + timeout
        while not until():
            assert process.poll() is None, "the run ended before it was stopped"
            assert time.monotonic() < deadline, f"not ready within {timeout} s"
            time.sleep(0.02)
        os.kill(process.pid, sig)
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def saved_rows(path, name: str) -> np.ndarray:
    """A checkpoint leaf's rows, put together from its shards as written."""
    with np.load(path) as data:
        starts = sorted(int(k.rpartition("@")[2]) for k in data.files
                        if k.rpartition("@")[0] == name)
        return np.concatenate([data[f"{name}@{s}"] for s in starts])


def stop_and_keep(out, tmp_path, process, after_frame: int, name: str) -> Path:
    """SIGINT `process` once it has written a checkpoint past report `after_frame`; a copy
    of the newest (a resumed run deletes it)."""
    def newer():
        return [p for p in own_checkpoints(out)
                if int(CHECKPOINT_PATTERN.fullmatch(p.name).group(1)) > after_frame]

    status = stop_at(process, lambda: bool(newer()), signal.SIGINT)
    assert status == 130, (tmp_path / f"{name}.log").read_text()
    assert not list(out.glob("*.tmp"))
    return Path(shutil.copy(own_checkpoints(out)[-1], tmp_path / name))


def assert_resumed_from(dump, checkpoint):
    """The state a resumed run loaded (dumped by DUMPING_CLI) is the checkpoint's, every
    seed's row bit for bit (padding rows aside)."""
    with np.load(dump) as resumed, np.load(checkpoint) as data:
        assert int(resumed["next_report"]) == int(data["next_report"])
        names = [k.partition("#")[0] for k in data.files if k.endswith("#shape")]
        assert len(names) > 10
        for name in names:
            np.testing.assert_array_equal(resumed[name][:3], saved_rows(checkpoint, name)[:3],
                                          err_msg=name)


@pytest.mark.slow
def test_a_checkpoint_resumes_on_another_device_count(tmp_path):
    """1 device, stopped; resumed on 2, stopped again; resumed on 1 to the end: each resume
    loads the checkpoint's bits, whatever layout wrote it."""
    out = tmp_path / "run"
    # Long enough that the signals land while it runs (a segment takes a fraction of a
    # second), short enough that the last run soon ends. No periodic evaluation (one
    # report a segment): less to compile, three times.
    args = ["train", *SMALL, "--num-frames", "12000", "--eval-every", "0",
            "--segment-frames", "1000", "--num-seeds", "3", "--out", str(out)]
    resume = ["train", "--out", str(out), "--resume"]

    def run(program, argv, devices: str, name: str) -> subprocess.Popen:  # stderr to a file
        with open(tmp_path / f"{name}.log", "w") as log:
            return start(argv, cli_env(devices), program, subprocess.DEVNULL, log)

    first = stop_and_keep(out, tmp_path, run(CLI, args, "1", "first.npz"), 0, "first.npz")
    meta = read_meta(first)
    assert (meta["layout"]["devices"], meta["layout"]["seeds_per_device"]) == (1, 3)

    reached = int(CHECKPOINT_PATTERN.fullmatch(own_checkpoints(out)[-1].name).group(1))
    second_run = run(("-c", DUMPING_CLI), [tmp_path / "d1.npz", *resume], "2", "second.npz")
    second = stop_and_keep(out, tmp_path, second_run, reached, "second.npz")
    assert_resumed_from(tmp_path / "d1.npz", first)
    meta = read_meta(second)
    assert (meta["layout"]["devices"], meta["layout"]["seeds_per_device"]) == (2, 2)

    ((status, _, stderr),) = finish([start([tmp_path / "d2.npz", *resume], cli_env("1"),
                                           ("-c", DUMPING_CLI))])
    assert status == 0, stderr
    assert_resumed_from(tmp_path / "d2.npz", second)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layout"]["devices"] == 1
    assert summary["layout_before_resume"]["devices"] == 2
    assert np.load(out / "metrics.npz")["loss"].shape == (3, 12)


@pytest.mark.slow
def test_sigint_after_a_checkpoint_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    args = ["train", *SMALL, "--num-frames", "40000", "--eval-every", "1000",
            "--segment-frames", "1000", "--num-seeds", "2", "--out", str(out)]
    with open(tmp_path / "stderr", "w+") as log:
        status = stop_at(start(args, cli_env(), stderr=log),
                         lambda: any(out.glob("checkpoint-*.npz")),
                         signal.SIGINT)
        log.seek(0)
        err = log.read()
    assert status == 130, err
    checkpoint = own_checkpoints(out)[-1]
    report = int(CHECKPOINT_PATTERN.fullmatch(checkpoint.name).group(1))
    assert err == (f"purejaxdqn: stopped by SIGINT; the last complete checkpoint is "
                   f"{checkpoint} (frame {report * 1000:,} of each seed); resume with: "
                   f"purejaxdqn train --out {out} --resume\n")
    read_meta(checkpoint)  # whole: its CRCs hold


@pytest.mark.slow
def test_sigterm_without_checkpoints_says_nothing_was_saved(tmp_path):
    args = ["train", *SMALL, "--num-frames", "400000", "--eval-every", "0", "--num-seeds",
            "2"]
    with open(tmp_path / "stderr", "w+") as log:
        process = start(args, cli_env(), stderr=log)
        started = []
        status = stop_at(process, lambda: started or started.append(process.stdout.readline()),
                         signal.SIGTERM)
        log.seek(0)
        err = log.read()
    assert started[0].startswith("training 2 seeds on 1 cpu device")
    assert status == 143
    assert err == ("purejaxdqn: stopped by SIGTERM; nothing was saved (a `train` run with "
                   "--segment-frames K --out DIR checkpoints every K frames and can resume)\n")


SEED_BITS = """
import sys
import jax, numpy as np
from purejaxdqn import Config, make_train, sweep, train_seeds
config = Config(num_frames=1000, batch_size=32, buffer_size=1000, warmup_steps=200,
                eval_every=500, eval_episodes=2, final_eval_episodes=2, hidden_sizes=(16,))
result = train_seeds(config, 6, seed=3)
w = jax.tree.leaves(result.params)[-1]
swept = np.zeros(0)
if sys.argv[3] == "sweep":  # 3 seeds x 2 settings (on 2 devices: padded)
    swept = jax.tree.leaves(sweep(config, {"tau": [0.01, 0.1]}, 3, seed=3).params)[-1]
alone = True
if sys.argv[2] == "alone":  # seed 5 of 6 trained alone
    single = jax.jit(make_train(config))(jax.random.split(jax.random.key(3), 6)[5])
    alone = np.array_equal(jax.tree.leaves(single.params)[-1], w[5])
np.savez(sys.argv[1], w=w, final=result.metrics["final_eval_return"],
         devices=jax.device_count(), swept=swept,
         shards=len({shard.index[0].start for shard in w.global_shards}), alone=alone)
"""


@pytest.mark.slow
def test_on_a_cpu_a_seed_gives_the_same_bits_alone_and_on_any_device_count(tmp_path):
    # 6 seeds on 1 and 2 devices (PUREJAXDQN_CPU_DEVICES) and on 4 set by the user's
    # XLA_FLAGS (padded to 8), side by side; seed 5 also trained alone on one device, and
    # a sweep on one and on two.
    layouts = {"1": cli_env("1"), "2": cli_env("2"),
               "4": cli_env(None, XLA_FLAGS="--xla_force_host_platform_device_count=4")}
    paths = {devices: tmp_path / f"{devices}.npz" for devices in layouts}
    done = finish([start(
        [paths[devices], "alone" if devices == "1" else "-",
         "sweep" if devices in ("1", "2") else "-"], env, ("-c", SEED_BITS))
        for devices, env in layouts.items()])
    runs = {}
    for devices, (status, _, stderr) in zip(layouts, done):
        assert status == 0, stderr
        runs[devices] = np.load(paths[devices])
        assert int(runs[devices]["devices"]) == int(devices)
        # The result stays split over the devices: gcd(6, devices) shards, never gathered.
        assert int(runs[devices]["shards"]) == math.gcd(6, int(devices))
    assert bool(runs["1"]["alone"])  # seed 5 of 6 is seed 5 trained alone
    for devices in ("2", "4"):
        for name in ("w", "final") + (("swept",) if devices == "2" else ()):
            np.testing.assert_array_equal(runs[devices][name], runs["1"][name], err_msg=name)
