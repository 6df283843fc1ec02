"""Time to solve CartPole for many seeds, the number a user waits for: wall-clock seconds,
compile included, for `--num-seeds` fresh seeds of each preset, and whether the IQM of
their final greedy return reaches 475. Each run is a fresh `purejaxdqn train` process, as
a user runs it (every core: the CPU device count is the CLI's default); the runs alternate,
`--repeats` times each, first without the compilation cache, then with it filled.

    python benchmarks/time_to_solve.py --presets cartpole-fast --baseline /tmp/before

`--baseline DIR` runs another checkout's `purejaxdqn` (its package, on PYTHONPATH) beside
this one, so that ratios come from one run: the first contestant is the ratios' base.
`--cpu-devices` pins this checkout's device count. `--seed` takes several fresh seed sets
(each `--num-seeds` seeds from that seed), run in turn; `--cold-only` leaves out the runs
with the cache filled. The table is printed and written to
benchmarks/results/time-to-solve-<machine>.md.

    python benchmarks/time_to_solve.py --presets cartpole-fast cartpole-pqn --repeats 1 \
        --cold-only --seed 2024 3000 4000 5000 6000 --tag=-pqn-five-sets
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from harness import child_env, median, train_cli, write_table

SOLVED = 475.0


def run(contestant: dict, num_seeds: int, seed: int, out: Path, cache: Path | None) -> dict:
    """One `purejaxdqn train` process: without the compilation cache, or with it in `cache`."""
    env = child_env(checkout=contestant["checkout"], drop=("PUREJAXDQN_CPU_DEVICES",),
                    PUREJAXDQN_COMPILE_CACHE=str(cache) if cache else "off")
    summary = train_cli(["--preset", contestant["preset"], "--num-seeds", num_seeds, "--seed",
                         seed, *contestant["flags"]], out, env, cwd=contestant["checkout"])
    final = summary["final_eval_return"]
    return {"wall_s": summary["wall_s"], "compile_s": summary["compile_s"],
            "run_s": summary["run_s"], "iqm": final["iqm"]["value"],
            "iqm_ci": [final["iqm"]["ci_low"], final["iqm"]["ci_high"]],
            "mean": final["mean"]["value"],
            "devices": summary.get("layout", {}).get("devices", 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["cartpole-fast"])
    parser.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="another checkout, whose presets run first, as the base")
    parser.add_argument("--baseline-presets", nargs="+", default=["cartpole-fast"])
    parser.add_argument("--cpu-devices", type=int, default=None)
    parser.add_argument("--num-seeds", type=int, default=64)
    parser.add_argument("--seed", type=int, nargs="+", default=[1000],
                        help="fresh seeds, never searched: one seed set from each")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cold-only", action="store_true",
                        help="leave out the runs with the compilation cache filled")
    parser.add_argument("--tag", default="", help="suffix of the results file's name")
    args = parser.parse_args()

    flags = [] if args.cpu_devices is None else ["--cpu-devices", str(args.cpu_devices)]
    contestants = [{"name": f"{p} ({args.baseline.name})", "preset": p,
                    "checkout": args.baseline.resolve(), "flags": []}
                   for p in (args.baseline_presets if args.baseline else [])]
    contestants += [{"name": p, "preset": p, "checkout": None, "flags": flags}
                    for p in args.presets]
    phases = (False,) if args.cold_only else (False, True)
    results = {(c["name"], cached, seed): [] for seed in args.seed for c in contestants
               for cached in phases}
    with tempfile.TemporaryDirectory() as tmp:
        for cached in phases:
            for repeat in range(args.repeats):  # interleaved: all see the same machine load
                for seed in args.seed:
                    for i, c in enumerate(contestants):
                        cache = Path(tmp) / f"cache-{i}" if cached else None
                        if cached and repeat == 0 and seed == args.seed[0]:  # fill (untimed)
                            run(c, args.num_seeds, seed, Path(tmp) / f"fill-{i}", cache)
                        r = run(c, args.num_seeds, seed,
                                Path(tmp) / f"{i}-{cached}-{repeat}-{seed}", cache)
                        results[c["name"], cached, seed].append(r)
                        print(f"{c['name']} seed {seed} ({'cache filled' if cached else 'cold'}):"
                              f" wall {r['wall_s']:.1f} s (compile {r['compile_s']:.1f}, run "
                              f"{r['run_s']:.1f}), IQM {r['iqm']:.1f}", flush=True)

    lines = [f"$ python benchmarks/time_to_solve.py {' '.join(sys.argv[1:])}", "",
             f"{args.num_seeds} seeds from each seed, median of {args.repeats} fresh "
             f"processes; solved: IQM of the final greedy return >= {SOLVED:g}; wall "
             f"includes Python's start and imports",
             "| run | seed | devices | compile cache | wall s (compile + run) | final IQM [95% CI] "
             f"| final mean | solved | wall vs {contestants[0]['name']} cold, same seeds |",
             "|---|---:|---:|---|---:|---:|---:|---|---:|"]
    for (name, cached, seed), runs in results.items():
        base = median(results[contestants[0]["name"], False, seed], "wall_s")
        wall, compile_s, run_s = (median(runs, k) for k in ("wall_s", "compile_s", "run_s"))
        r = runs[0]  # the same seeds on the same layout give the same returns every repeat
        lines.append(
            f"| {name} | {seed} | {r['devices']} | {'filled' if cached else 'empty'} | "
            f"{wall:.1f} ({compile_s:.1f} + {run_s:.1f}) | {r['iqm']:.1f} [{r['iqm_ci'][0]:.1f}, "
            f"{r['iqm_ci'][1]:.1f}] | {r['mean']:.1f} | {'yes' if r['iqm'] >= SOLVED else 'no'}"
            f" | {wall / base:.2f} |")
    if len(args.seed) > 1:
        lines += ["", f"Over the {len(args.seed)} seed sets:", "",
                  "| run | compile cache | solved | median wall s | median wall vs "
                  f"{contestants[0]['name']} cold |", "|---|---|---:|---:|---:|"]
        for c in contestants:
            for cached in phases:
                runs = [results[c["name"], cached, seed] for seed in args.seed]
                walls = [median(rs, "wall_s") for rs in runs]
                ratios = [w / median(results[contestants[0]["name"], False, seed], "wall_s")
                          for w, seed in zip(walls, args.seed)]
                solved = sum(rs[0]["iqm"] >= SOLVED for rs in runs)
                lines.append(f"| {c['name']} | {'filled' if cached else 'empty'} | "
                             f"{solved} of {len(runs)} | {statistics.median(walls):.1f} | "
                             f"{statistics.median(ratios):.2f} |")
    write_table("time-to-solve", lines, args.tag)


if __name__ == "__main__":
    main()
