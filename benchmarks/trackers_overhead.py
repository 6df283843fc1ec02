"""Overhead of the trackers: `purejaxdqn train` in checkpointed segments without a
tracker, with W&B (offline) and with MLflow (a local SQLite store), each a fresh process,
interleaved, timed by the run's own `total_run_s` (its frames/s; compile apart) and by
the process's wall time (which also holds starting the trackers and their last uploads).
Each repeat runs every variant once, one after another, so each variant's ratio to the
untracked run of its own repeat pairs runs that saw the same load: the table gives the
median of those paired ratios beside the ratio of the medians. "wandb (offline, no system
metrics)" is W&B with its system-metrics sampling off (WANDB__DISABLE_STATS=true, as a user
sets it).

    python benchmarks/trackers_overhead.py --num-seeds 16 --segment-frames 4000 --repeats 6
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {  # name: (flags, environment variables)
    "no tracker": ([], {}),
    "wandb (offline)": (["--wandb", "overhead"], {}),
    "wandb (offline, no system metrics)": (["--wandb", "overhead"],
                                           {"WANDB__DISABLE_STATS": "true"}),
    "mlflow (sqlite)": (["--mlflow", "sqlite:///{tmp}/mlflow.db"], {}),
    "both": (["--wandb", "overhead", "--mlflow", "sqlite:///{tmp}/mlflow.db"], {})}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-seeds", type=int, default=16)
    parser.add_argument("--segment-frames", type=int, default=4_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=None, help="a JSON file to write")
    args = parser.parse_args()

    times = {name: [] for name in VARIANTS}
    compile_s = {name: [] for name in VARIANTS}
    wall_s = {name: [] for name in VARIANTS}
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # interleaved: each sees the same machine load
            for variant, (name, (flags, extra)) in enumerate(VARIANTS.items()):
                out = Path(tmp) / f"{repeat}-{variant}"
                command = [sys.executable, "-m", "purejaxdqn.cli", "train", "--num-seeds",
                           str(args.num_seeds), "--segment-frames", str(args.segment_frames),
                           "--out", str(out), *(f.format(tmp=tmp) for f in flags)]
                start = time.perf_counter()
                done = subprocess.run(command, env={**env, **extra}, cwd=tmp,  # MLflow's
                                      capture_output=True, text=True)  # ./mlruns goes there
                wall_s[name].append(time.perf_counter() - start)
                assert done.returncode == 0, done.stderr[-2000:]
                summary = json.loads((out / "summary.json").read_text())
                times[name].append(summary["total_run_s"])
                compile_s[name].append(summary["compile_s"])
    base = statistics.median(times["no tracker"])
    base_wall = statistics.median(wall_s["no tracker"])
    print(f"CartPole-v1, {args.num_seeds} seeds x 40,000 frames in segments of "
          f"{args.segment_frames:,} frames; median of {args.repeats} interleaved processes; "
          f"run time (compile apart)")
    rows = {}
    for name in VARIANTS:
        median = statistics.median(times[name])
        wall = statistics.median(wall_s[name])
        paired = statistics.median(t / b for t, b in zip(times[name], times["no tracker"]))
        rows[name] = {"run_s": times[name], "compile_s": compile_s[name],
                      "wall_s": wall_s[name], "median_run_s": median,
                      "vs_no_tracker": median / base, "paired_vs_no_tracker": paired,
                      "wall_vs_no_tracker": wall / base_wall}
        print(f"  {name:34} run {median:7.2f} s ({median / base - 1:+.1%}; paired "
              f"{paired - 1:+.1%})  process "
              f"{wall:6.1f} s ({wall / base_wall - 1:+.1%})  compile "
              f"{statistics.median(compile_s[name]):.1f} s")
    if args.results:
        args.results.write_text(json.dumps({"args": vars(args) | {"results": str(args.results)},
                                            "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
