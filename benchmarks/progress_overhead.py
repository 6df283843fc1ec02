"""The cost of progress on a run that shows it: `train_seeds(..., progress=...)` (on a CPU,
the seeds group by group where each device has 10 or more, else a report a call (here)
or, without periodic evaluation, 10 to 50 segments of blocks; a line per tenth of the run, as `purejaxdqn train` shows a log)
against the one program, side by side at each seed count, compile apart; and whether the
two give the same bits (every metric, the params).

    python benchmarks/progress_overhead.py --num-seeds 1 64 256 --repeats 3 1 1 \
        --out benchmarks/results/progress-overhead-cpu-2cores-x86_64.json
"""

import argparse
import contextlib
import io
import json
import platform
import statistics

import jax
import numpy as np

from purejaxdqn import Config, layout, train_seeds
from purejaxdqn.progress import Progress
from purejaxdqn.train import group_size, groups_of_runs, segment_blocks


def same_bits(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-seeds", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--repeats", type=int, nargs="+", default=[3, 1, 1],
                        help="side-by-side pairs at each seed count")
    parser.add_argument("--out", default=None, help="a JSON file of the figures")
    args = parser.parse_args()
    config = Config()
    layout.split_for(max(args.num_seeds))
    rows = []
    for seeds, repeats in zip(args.num_seeds, args.repeats):
        times = {"one program": [], "progress": []}
        compile_s = {"one program": [], "progress": []}
        for _ in range(repeats):  # interleaved, so both see the same machine load
            timings = {}
            whole = train_seeds(config, seeds, timings=timings)
            times["one program"].append(timings["run_s"])
            compile_s["one program"].append(timings["compile_s"])
            timings = {}
            with contextlib.redirect_stdout(io.StringIO()) as lines:
                shown = train_seeds(config, seeds, timings=timings, progress=Progress(
                    config.num_frames, seeds, "lines", f"{seeds} seeds"))
            times["progress"].append(timings["run_s"])
            compile_s["progress"].append(timings["compile_s"])
            bits = same_bits(whole, shown)
            assert lines.getvalue().count("%") == 10
        base, with_progress = (statistics.median(times[k]) for k in times)
        row = {"num_seeds": seeds, "repeats": repeats, "run_s": times,
               "compile_s": compile_s, "same_bits": bits,
               "fps_one_program": seeds * config.num_frames / base,
               "fps_progress": seeds * config.num_frames / with_progress,
               "cost": with_progress / base - 1}
        rows.append(row)
        print(f"{seeds:4d} seeds: one program {base:7.2f} s, with progress "
              f"{with_progress:7.2f} s ({row['cost']:+.1%}), same bits: {bits}; compile "
              f"{statistics.median(compile_s['one program']):.1f} s vs "
              f"{statistics.median(compile_s['progress']):.1f} s", flush=True)
    def calls_of(seeds: int) -> str:
        if groups_of_runs(seeds):
            per_device = seeds // jax.device_count()
            return f"{per_device // group_size(per_device)} groups"
        if config.eval_every:
            return f"{config.num_reports + 1} reports"
        return f"{config.num_frames // config.block_frames // segment_blocks(config, seeds)} segments"

    calls = {seeds: calls_of(seeds) for seeds in args.num_seeds}
    print(f"Config() (CartPole-v1, {config.num_frames:,} frames a seed), calls by seed "
          f"count: {calls}; run time is the median of the pairs")
    if args.out:
        with open(args.out, "w") as file:
            json.dump({"machine": f"{platform.machine()}, {jax.device_count()} "
                                  f"{jax.default_backend()} devices", "calls": calls,
                       "rows": rows}, file, indent=2)


if __name__ == "__main__":
    main()
