"""What the tests that start processes and compare runs share."""

import os
import signal
import subprocess
import time
from pathlib import Path

import chex
import numpy as np


def finish(processes: list[subprocess.Popen], timeout: float = 600) -> list[tuple]:
    """(returncode, stdout, stderr) of each process, all waited for within `timeout`
    seconds together; any still running then, or when a wait fails, is killed by its pid.
    Processes started side by side overlap their compiles, mostly one core's work each."""
    deadline, results = time.monotonic() + timeout, []
    try:
        for p in processes:
            out, err = p.communicate(timeout=max(deadline - time.monotonic(), 1))
            results.append((p.returncode, out, err))
    finally:
        for p in processes:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
    return results


def assert_same_outputs(a: Path, b: Path, names=("params.npz", "metrics.npz")) -> None:
    """The `.npz` files `names` of run directories `a` and `b` hold the same arrays, bit
    for bit, under the same names."""
    for name in names:
        with np.load(Path(a) / name) as x, np.load(Path(b) / name) as y:
            chex.assert_trees_all_equal(dict(x), dict(y), strict=True)
