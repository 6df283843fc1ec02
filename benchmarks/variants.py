"""Every DQN variant at the default 40,000 frames over many seeds: final greedy return
(mean and interquartile mean, 95% bootstrap CIs) and frames/s over all seeds (compile
apart), as a markdown table.

    python benchmarks/variants.py --num-seeds 64
    python benchmarks/variants.py --table breakout-minatar --num-seeds 16 --seed 1000

`--table breakout-minatar` gives the methods side by side on Breakout-MinAtar: the DQN
preset, QR-DQN and Munchausen each switched on in it, and the PQN preset at its own budget.
"""

import argparse
import json
from pathlib import Path

from purejaxdqn import Config, train_seeds
from purejaxdqn.config import PRESETS
from purejaxdqn.stats import summarize

VARIANTS = {
    "tutorial defaults": {},
    "double Q": {"double_q": True},
    "dueling": {"dueling": True},
    "MSE loss": {"loss": "mse"},
    "hard target update every 250 steps": {"target_update_period": 250},
    "double Q + dueling": {"double_q": True, "dueling": True},
    "prioritised replay": {"prioritized": True},
    "3-step returns": {"n_step": 3},
    "noisy networks": {"noisy": True},
    "C51, support [0, 100]": {"distributional": True, "v_min": 0.0, "v_max": 100.0},
    "C51 + double Q + dueling + prioritised + 3-step": {
        "distributional": True, "v_min": 0.0, "v_max": 100.0, "double_q": True,
        "dueling": True, "prioritized": True, "n_step": 3},
    "QR-DQN, 32 quantiles": {"quantile_regression": True},
    "Munchausen DQN": {"munchausen": True},
    "preset rainbow": PRESETS["rainbow"],
    "preset cartpole-40k": PRESETS["cartpole-40k"],
}

BREAKOUT = PRESETS["breakout-minatar-100k"]
TABLES = {
    "cartpole": ("CartPole-v1, 40k frames", VARIANTS),
    "breakout-minatar": ("Breakout-MinAtar, each preset's frames", {
        "preset breakout-minatar-100k (DQN)": BREAKOUT,
        "QR-DQN, 32 quantiles (in that preset)": BREAKOUT | {"quantile_regression": True},
        "Munchausen DQN (in that preset)": BREAKOUT | {"munchausen": True},
        "preset breakout-minatar-pqn (PQN)": PRESETS["breakout-minatar-pqn"],
    }),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", choices=list(TABLES), default="cartpole")
    parser.add_argument("--num-seeds", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", help="run these variants of the table (their rows "
                        "are merged into --out)")
    parser.add_argument("--out", type=Path, help="results/variants.json for the cartpole "
                        "table, results/variants-TABLE.json for another")
    args = parser.parse_args()
    title, variants = TABLES[args.table]
    for name in args.only or ():
        if name not in variants:
            parser.error(f"--only: no variant {name!r} in the {args.table} table; "
                         f"it has {', '.join(map(repr, variants))}")
    if args.out is None:
        stem = "variants" + ("" if args.table == "cartpole" else f"-{args.table}")
        args.out = Path(__file__).parent / "results" / f"{stem}.json"

    rows = json.loads(args.out.read_text())["rows"] if args.out.exists() else {}
    print(f"| variant ({title}, {args.num_seeds} seeds) | frames | mean [95% CI] "
          f"| IQM [95% CI] | frames/s (compile) |")
    print("|---|---:|---|---|---|")
    for name in args.only or variants:
        switches, timings = variants[name], {}
        config = Config(**switches)
        result = train_seeds(config, args.num_seeds, args.seed, timings=timings)
        rows[name] = {"switches": switches, "num_frames": config.num_frames,
                      **summarize(result.metrics["final_eval_return"]), **timings,
                      "frames_per_second": args.num_seeds * config.num_frames / timings["run_s"]}
        mean, iqm = rows[name]["mean"], rows[name]["iqm"]
        print(f"| {name} | {config.num_frames:,} "
              f"| {mean['value']:.1f} [{mean['ci_low']:.1f}, {mean['ci_high']:.1f}] "
              f"| {iqm['value']:.1f} [{iqm['ci_low']:.1f}, {iqm['ci_high']:.1f}] "
              f"| {rows[name]['frames_per_second']:,.0f} ({timings['compile_s']:.0f} s) |",
              flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)  # after each row: a long table
        args.out.write_text(json.dumps({"num_seeds": args.num_seeds, "seed": args.seed,
                                        "rows": rows}, indent=2) + "\n")

if __name__ == "__main__":
    main()
