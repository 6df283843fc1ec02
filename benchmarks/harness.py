"""The one harness of the benchmarks: each measurement in a fresh Python process (a cold
compile, nothing carried over from the last run), contestants interleaved so that all see
the same machine load, medians, and the results file. No JAX is imported here, so a
parent process holds no device memory.

    import harness
    runs = harness.interleaved({"ours": lambda: harness.run_python(["-c", CODE])}, repeats=2)
    harness.median(runs["ours"], "run_s")
"""

import collections
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def child_env(checkout: str | Path | None = None, devices: int | str | None = None,
              drop: tuple[str, ...] = (), **overrides: str) -> dict:
    """This process's environment for a child: `checkout` (another checkout of purejaxdqn,
    or a peer's folder) first on PYTHONPATH; `devices` as PUREJAXDQN_CPU_DEVICES, with any
    XLA_FLAGS of the caller's dropped so that the count holds; `drop` removed; `overrides`
    set."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout),
                                                          env.get("PYTHONPATH")]))
    if devices is not None:
        env.pop("XLA_FLAGS", None)
        env["PUREJAXDQN_CPU_DEVICES"] = str(devices)
    return {**env, **overrides}


def run_python(args: list[str], env: dict | None = None, cwd: str | Path | None = None,
               python: str = sys.executable) -> dict:
    """`python *args` in a fresh process (this interpreter, or `python`): the JSON object
    on the last line of its stdout, with `wall_s`, the process's wall-clock seconds from
    start to exit, added. A failure ends the benchmark with the tail of the child's stderr."""
    start = time.perf_counter()
    done = subprocess.run([python, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"python {' '.join(map(str, args))[:200]} failed:\n"
                         f"{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": wall}


def train_cli(flags: list[str], out: Path, env: dict | None = None,
              cwd: str | Path | None = None) -> dict:
    """`purejaxdqn train FLAGS --out OUT` as a user runs it, in a fresh process: its
    summary.json, with `wall_s` (Python's start and the imports included) added."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "purejaxdqn.cli", "train", *map(str, flags),
                           "--out", str(out)], capture_output=True, text=True, env=env,
                          cwd=cwd)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"purejaxdqn train {' '.join(map(str, flags))} failed:\n"
                         f"{done.stderr[-3000:]}")
    return {**json.loads((Path(out) / "summary.json").read_text()), "wall_s": wall}


def interleaved(contestants: dict[str, Callable[[], dict]], repeats: int,
                report: Callable[[str, dict], None] | None = None) -> dict[str, list[dict]]:
    """`repeats` rounds, each running every contestant once in turn, so that a change in
    the machine's load falls on all of them: {name: [each run's result]}. `report(name,
    result)` is called after each run (to print progress)."""
    results = collections.defaultdict(list)
    for _ in range(repeats):
        for name, measure in contestants.items():
            results[name].append(measure())
            if report is not None:
                report(name, results[name][-1])
    return dict(results)


def interleaved_seeds(contestants: dict[str, Callable[[int], dict]], seeds: int,
                      repeats: int) -> dict[str, list[dict]]:
    """`interleaved` for contestants that take a seed count, printing each run's compile
    and run seconds as it ends."""
    return interleaved(
        {name: (lambda contest=contest: contest(seeds)) for name, contest in
         contestants.items()}, repeats,
        lambda name, r: print(seeds, name, {m: round(r[m], 2) for m in ("compile_s", "run_s")},
                              flush=True))


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def timed(fn, *args, repeats: int = 5) -> float:
    """The median wall-clock seconds of `fn(*args)` (a jitted function), after one call
    that compiles it."""
    import jax

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_name() -> str:
    """`cpu-2cores-x86_64`, or the accelerator's kind (`nvidia-h200`): results files are
    named after it."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu-{os.cpu_count()}cores-{platform.machine()}"
    return device.device_kind.lower().replace(" ", "-")


def write_table(name: str, lines: list[str], tag: str = "") -> Path:
    """Print a results table (`lines` but the first, the command that made it) and write it
    whole to benchmarks/results/<name>-<machine><tag>.md."""
    print("\n".join(lines[1:]))
    path = RESULTS / f"{name}-{machine_name()}{tag}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")
    return path


KINDS = [("matmul", ("gemm", "cublas", "cutlass", "xmma", "matmul", "dot", "ynn")),
         ("reduction", ("reduce",)), ("transpose", ("transpose",)),
         ("copy", ("memcpy", "memset", "copy")), ("fusion", ("fusion", "loop_", "input_"))]


def kind_of(name: str) -> str:
    """The kind of a device operation (matmul, reduction, ...) from its name in a trace."""
    name = name.lower()
    return next((kind for kind, marks in KINDS if any(m in name for m in marks)), "other")


def device_ops(trace: list[dict]) -> list[dict]:
    """The events that are device work: on a GPU the kernels and copies on its streams,
    on a CPU the XLA thunks (events naming an `hlo_op`) but for loops and branches, whose
    time is their bodies'."""
    procs = {e["pid"]: e["args"]["name"] for e in trace
             if e.get("ph") == "M" and e.get("name") == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    gpu = {pid for pid, name in procs.items() if "GPU" in name}
    ops = [e for e in trace if e.get("ph") == "X" and e["pid"] in gpu]
    streams = [e for e in ops if "stream" in threads.get((e["pid"], e["tid"]), "").lower()]
    if gpu:
        return streams or ops
    control = ("while", "cond", "call")
    return [e for e in trace if e.get("ph") == "X" and "hlo_op" in e.get("args", {})
            and not e["name"].startswith(control)]
