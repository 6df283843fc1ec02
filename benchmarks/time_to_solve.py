"""Time to solve CartPole for many seeds, the number a user waits for: wall-clock seconds,
compile included, for `--num-seeds` fresh seeds of each preset, and whether the IQM of
their final greedy return reaches 475. The presets run one after the other, twice, in
one process tree, each a fresh `purejaxdqn train` (no compilation cache).

    python benchmarks/time_to_solve.py --presets cartpole-40k cartpole-fast --num-seeds 64
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

SOLVED = 475.0


def run(preset: str, num_seeds: int, seed: int, out: Path, cache: Path | None = None) -> dict:
    """One `purejaxdqn train` process: without the compilation cache, or with it in `cache`."""
    cache_args = ["--no-compile-cache"] if cache is None else []
    env = {**os.environ, "PUREJAXDQN_COMPILE_CACHE": str(cache)} if cache else None
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "purejaxdqn.cli", "train", "--preset", preset,
                    "--num-seeds", str(num_seeds), "--seed", str(seed), "--out", str(out),
                    *cache_args], capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    iqm = summary["final_eval_return"]["iqm"]
    return {"wall_s": wall, "compile_s": summary["compile_s"], "run_s": summary["run_s"],
            "iqm": iqm["value"], "iqm_ci": [iqm["ci_low"], iqm["ci_high"]]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["cartpole-40k", "cartpole-fast"])
    parser.add_argument("--num-seeds", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1000, help="fresh seeds: never searched")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    results = {preset: [] for preset in args.presets}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # interleaved: both see the same machine load
            for preset in args.presets:
                r = run(preset, args.num_seeds, args.seed, Path(tmp) / f"{preset}-{repeat}")
                results[preset].append(r)
                print(f"{preset}: wall {r['wall_s']:.1f} s (compile {r['compile_s']:.1f}, run "
                      f"{r['run_s']:.1f}), IQM {r['iqm']:.1f}", flush=True)
    base = statistics.median(r["wall_s"] for r in results[args.presets[0]])
    print(f"\n{args.num_seeds} seeds (seed {args.seed}), median of {args.repeats}; solved: "
          f"IQM of the final greedy return >= {SOLVED:g}")
    print("| preset | wall s (compile + run) | final IQM [95% CI] | solved | wall vs "
          f"{args.presets[0]} |")
    print("|---|---:|---:|---|---:|")
    for preset, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        compile_s = statistics.median(r["compile_s"] for r in runs)
        run_s = statistics.median(r["run_s"] for r in runs)
        r = runs[0]  # the same seeds give the same returns every repeat
        print(f"| {preset} | {wall:.1f} ({compile_s:.1f} + {run_s:.1f}) | {r['iqm']:.1f} "
              f"[{r['iqm_ci'][0]:.1f}, {r['iqm_ci'][1]:.1f}] | "
              f"{'yes' if r['iqm'] >= SOLVED else 'no'} | {wall / base:.2f} |")


if __name__ == "__main__":
    main()
