"""The same seeds trained by one process and by several (`jax.distributed`), side by side.

One machine stands in for several hosts here: every process runs on the same CPU cores,
so this measures the cost of the process split (startup, joining, gathering results), not
the speed-up of real extra hosts. Each layout runs `purejaxdqn train` (one process per
"host", joined on a free localhost port) and reads what process 0 wrote.

    python benchmarks/multihost.py --num-seeds 64 --num-frames 10000
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYOUTS = [(1, 1), (1, 2), (2, 1)]  # (processes, devices per process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run(processes: int, devices: int, flags: list[str], out: Path) -> dict:
    """Wall time of the whole command, and process 0's summary.json."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    joined = (["--coordinator", f"localhost:{free_port()}", "--num-processes",
               str(processes)] if processes > 1 else [])
    start = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-m", "purejaxdqn.cli", "train", *flags,
                                 "--out", str(out / f"p{i}"), *joined,
                                 *(["--process-id", str(i)] if processes > 1 else [])],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
               for i in range(processes)]
    try:
        errors = [p.communicate(timeout=3600)[1] for p in running]
    finally:
        for p in running:
            if p.poll() is None:
                p.kill()
    wall = time.perf_counter() - start
    if any(p.returncode for p in running):
        raise SystemExit(f"{processes} x {devices} failed:\n" + "\n".join(errors))
    summary = json.loads((out / "p0" / "summary.json").read_text())
    return {"wall_s": wall, "compile_s": summary["compile_s"], "run_s": summary["run_s"],
            "frames_per_second": summary["frames_per_second"],
            "iqm": summary["final_eval_return"]["iqm"]["value"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-seeds", type=int, default=64)
    parser.add_argument("--num-frames", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    flags = ["--num-seeds", str(args.num_seeds), "--num-frames", str(args.num_frames),
             "--eps-decay-frames", str(args.num_frames // 2)]

    results = {layout: [] for layout in LAYOUTS}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # interleaved, so all see the same machine load
            for layout in LAYOUTS:
                out = Path(tmp) / f"{layout[0]}x{layout[1]}-{repeat}"
                results[layout].append(run(*layout, flags, out))

    print(f"{args.num_seeds} seeds x {args.num_frames:,} frames, tutorial config, "
          f"{os.cpu_count()} CPU cores shared by every process; median of {args.repeats}")
    print(f"{'processes x devices':>20} {'wall s':>8} {'compile s':>10} {'run s':>8} "
          f"{'frames/s':>10} {'vs 1 x 2':>9} {'final IQM':>10}")
    base = statistics.median(r["frames_per_second"] for r in results[(1, 2)])
    for (processes, devices), runs in results.items():
        median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{f'{processes} x {devices}':>20} {median['wall_s']:8.1f} "
              f"{median['compile_s']:10.1f} {median['run_s']:8.1f} "
              f"{median['frames_per_second']:10,.0f} {median['frames_per_second'] / base:9.2f} "
              f"{median['iqm']:10.1f}")


if __name__ == "__main__":
    main()
