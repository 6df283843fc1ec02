"""Many processes through `jax.distributed` on this one machine (each a host stand-in):
the same results as one process, the CLI's files written once, and a run that loses a
process to SIGKILL ends with an error in bounded time and resumes bitwise identical."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.helpers import CLI, assert_same_outputs, cli_env, finish, free_port, start

pytestmark = pytest.mark.slow  # processes

TIMEOUT_S = 600

# The library from a script: 6 seeds (padded on 4 devices), gathered. (A sweep over
# processes: the CLI's, below.)
SCRIPT = """
import json, sys
import jax, numpy as np
from purejaxdqn import Config, train_seeds
from purejaxdqn.distributed import gather
config = Config(**json.loads(sys.argv[1]))
result = train_seeds(config, 6, seed=5)
final, w = gather((result.metrics["final_eval_return"], jax.tree.leaves(result.params)[-1]))
out = {"devices": jax.device_count(), "final": final.tolist(), "w": w.tolist()}
print(json.dumps(out))
"""

# The library from a user's script: imports first, then initialize, as the README shows.
DISTRIBUTED_SCRIPT = """
import os, jax
import purejaxdqn
jax.distributed.initialize(os.environ["TEST_COORDINATOR"], int(os.environ["TEST_PROCESSES"]),
                           int(os.environ["TEST_PROCESS_ID"]))
""" + SCRIPT

CONFIGS = {
    "dqn": dict(num_frames=1_000, batch_size=32, buffer_size=1_000, warmup_steps=200,
                eval_every=500, eval_episodes=2, final_eval_episodes=2, hidden_sizes=[16]),
    "pqn": dict(algorithm="pqn", num_frames=1_000, num_envs=4, num_steps=25,
                num_minibatches=4, eval_every=500, eval_episodes=2, final_eval_episodes=2,
                hidden_sizes=[16], layer_norm=True),
    # R2D2 (DQN with memory): the memories, the episode starts and the sequence replay in
    # the state split over processes.
    "r2d2": dict(env_name="MemoryChain-bsuite", env_params={"memory_length": 5}, memory="gru",
                 memory_size=16, hidden_sizes=[16], num_envs=4, train_every=4, batch_size=8,
                 buffer_size=256, warmup_steps=128, num_frames=384, sequence_length=10,
                 sequence_period=5, burn_in=3, n_step=3, eval_every=192, eval_episodes=2,
                 final_eval_episodes=2)}

SMALL = ["--num-frames", "1600", "--eval-every", "200", "--warmup-steps", "100",
         "--buffer-size", "1000", "--batch-size", "32", "--hidden-sizes", "16",
         "--seed", "3"]

# The CLI, in which process 1, right after its N-th checkpoint, says so and then hangs
# until it is killed from outside.
HANGING_CLI = """
import os, runpy, sys, time
import jax
import purejaxdqn.checkpoints as checkpoints
hang_after, marker, written, save = int(sys.argv.pop(1)), sys.argv.pop(1), [], checkpoints.remove_older
def save_then_hang(*args, **kwargs):
    save(*args, **kwargs)
    written.append(1)
    if len(written) == hang_after and jax.process_index() == 1:
        open(marker, "w").close()
        time.sleep(600)
checkpoints.remove_older = save_then_hang
runpy.run_module("purejaxdqn.cli", run_name="__main__")
"""


def devices_env(devices: int, **extra) -> dict:
    """The environment of a process of `devices` CPU devices, set as a user's XLA_FLAGS."""
    return cli_env(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)


def cli_processes(n: int, args_of, devices: int = 1, program=CLI):
    """`n` processes of the CLI joined by --coordinator on a free port; `args_of(i)`."""
    coordinator = f"localhost:{free_port()}"
    return [start([*args_of(i), "--coordinator", coordinator, "--num-processes", str(n),
                   "--process-id", str(i)], devices_env(devices), program)
            for i in range(n)]


def start_script(processes: int, devices: int, config: str = "dqn") -> list[subprocess.Popen]:
    """The test script in `processes` processes of `devices` devices each, joined, training
    `CONFIGS[config]`."""
    coordinator = f"localhost:{free_port()}"
    script = DISTRIBUTED_SCRIPT if processes > 1 else SCRIPT
    return [start([json.dumps(CONFIGS[config])],
                  devices_env(devices, TEST_COORDINATOR=coordinator,
                              TEST_PROCESSES=str(processes), TEST_PROCESS_ID=str(i)),
                  ("-c", script))
            for i in range(processes)]


def results_of(runs: list[tuple]) -> list[dict]:
    for code, _, err in runs:
        assert code == 0, err
    return [json.loads(out.strip().splitlines()[-1]) for _, out, _ in runs]


# Each test starts its one-process reference beside the processes it compares with it:
# compiling is mostly one core's work, so they overlap on a machine of two.
# 2 processes x 2 devices, PQN; 2 x 1, R2D2; DQN's 2 x 1 is the CLI's and the sweep's below.
@pytest.mark.parametrize("processes,devices,config", [(2, 2, "pqn"), (2, 1, "r2d2")])
def test_processes_match_one_process_with_as_many_devices(processes, devices, config):
    one, *many = results_of(finish(start_script(1, processes * devices, config)
                                   + start_script(processes, devices, config)))
    assert one["devices"] == processes * devices
    for result in many:  # every process sees the whole result, equal to one process's
        assert result == one


def test_a_killed_process_ends_the_run_and_both_resume_bitwise(tmp_path):
    heartbeat = 5
    segmented = [*SMALL, "--num-seeds", "6", "--segment-frames", "400"]
    whole = start(["train", *segmented, "--out", tmp_path / "whole"],
                  devices_env(2))  # runs beside the pair below

    try:
        out, marker = tmp_path / "run", tmp_path / "hanging"
        args = ["train", *segmented, "--out", str(out), "--heartbeat-timeout", str(heartbeat)]
        first, second = cli_processes(
            2, lambda i: args, program=("-c", HANGING_CLI, "2", str(marker)))
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while not marker.exists():  # process 1 (and so 0) holds 2 segments, then hangs
                assert time.monotonic() < deadline and second.poll() is None, second.stderr.read()
                time.sleep(0.1)
            os.kill(second.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            (code0, _, err0), (code1, _, _) = finish([first, second], timeout=heartbeat + 60)
            waited = time.monotonic() - killed_at
        finally:
            finish([first, second], timeout=1)
        assert code1 == -signal.SIGKILL
        assert waited < heartbeat + 60, waited
        assert code0 == 1 and "process 0 of 2 lost another process" in err0, err0[-2000:]
        assert not (out / "summary.json").exists()

        # Resumed, the pair ends as one process of two devices: process 0 reports and
        # writes, process 1 says so in one line.
        (code0, out0, err0), (code1, out1, err1), (code, _, err) = finish(
            cli_processes(2, lambda i: [*args, "--resume"]) + [whole])
        assert code0 == 0 and code1 == 0 and code == 0, err0 + err1 + err
        assert [line for line in out1.splitlines() if not line.startswith("[Gloo]")] == [
            "process 1 of 2: its seeds are trained; process 0 reports and writes the results"]
        assert "final greedy return" in out0
        assert_same_outputs(tmp_path / "whole", out)
        summaries = [json.loads((d / "summary.json").read_text()) for d in (tmp_path / "whole", out)]
        assert summaries[0]["final_eval_return"] == summaries[1]["final_eval_return"]
    finally:
        if whole.poll() is None:
            os.kill(whole.pid, signal.SIGKILL)
            whole.wait()


def test_sweep_under_srun_joins_with_what_jax_detects(tmp_path):
    """`--distributed` takes the process count and index from SLURM's variables, as under
    `srun` (here set by hand; the coordinator on a free port instead of SLURM's fixed one).
    With `--progress` the two processes run the sweep a report a call (3 runs a device: too
    few to go a run at a time), process 0 alone saying so, and give the one program's bits."""
    sweep = ["sweep", "--grid", "tau=0.01,0.1", *SMALL, "--num-seeds", "3"]
    coordinator = f"localhost:{free_port()}"
    slurm = dict(SLURM_JOB_ID="7", SLURM_NTASKS="2", SLURM_NODEID="0",
                 SLURM_STEP_NODELIST="localhost", JAX_COORDINATOR_ADDRESS=coordinator)
    single, *runs = finish(
        [start([*sweep, "--out", tmp_path / "single"], devices_env(2))]
        + [start([*sweep, "--distributed", "--progress", "--out", tmp_path / f"p{i}"],
                 devices_env(1, SLURM_PROCID=str(i), SLURM_LOCALID=str(i), **slurm))
           for i in range(2)])
    assert single[0] == 0, single[2]
    for code, _, err in runs:
        assert code == 0, err
    assert "process 1 of 2" in runs[1][1] and not (tmp_path / "p1").exists()
    progress = re.compile(r"^6 runs: +\d+% \(", re.MULTILINE)
    assert len(progress.findall(runs[0][1])) == 8, runs[0][1]  # a line a report
    assert not progress.search(runs[1][1] + single[1])
    assert_same_outputs(tmp_path / "single", tmp_path / "p0", names=("metrics.npz",))
