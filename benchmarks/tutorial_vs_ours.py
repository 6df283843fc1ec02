"""Does `Config()` learn what the tutorial's own loop learns? The tutorial
(`../shared/reference/tutorial_dqn.py`, gymnasium CartPole-v1, a deque buffer) run for
many seeds, against ours over as many seeds, compared as distributions.

    python benchmarks/tutorial_vs_ours.py --num-seeds 32 --jobs 2

Each tutorial run takes 2-3 minutes on one core; its SUMMARY line is appended to
`benchmarks/results/tutorial-runs.jsonl` as it finishes, and seeds already there are not
run again (so the command can be interrupted and repeated). Then ours runs, and the
comparison goes to `benchmarks/results/tutorial-vs-ours-<our seeds>.md` and `.png`.
"""

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from purejaxdqn import Config, report_frames, train_seeds
from purejaxdqn.distributed import gather
from purejaxdqn.plots import learning_curves
from purejaxdqn.stats import bootstrap_ci, iqm

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT.parent / "shared" / "reference" / "tutorial_dqn.py"
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "tutorial-runs.jsonl"
OURS = {"Config(bootstrap_on_truncation=False)": Config(bootstrap_on_truncation=False),
        "Config()": Config()}


def run_tutorial(seed: int) -> dict:
    done = subprocess.run([sys.executable, str(TUTORIAL), "--seed", str(seed)],
                          capture_output=True, text=True, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("SUMMARY ")]
    if done.returncode or not lines:
        raise SystemExit(f"tutorial seed {seed} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("SUMMARY "):])


def tutorial_runs(seeds: list[int], jobs: int) -> list[dict]:
    """The SUMMARY of each seed, running those not yet in RUNS."""
    have = {}
    if RUNS.exists():
        for line in RUNS.read_text().splitlines():
            run = json.loads(line)
            have[run["seed"]] = run
    missing = [s for s in seeds if s not in have]
    with ThreadPoolExecutor(jobs) as pool:
        for run in pool.map(run_tutorial, missing):
            have[run["seed"]] = run
            with open(RUNS, "a") as f:
                f.write(json.dumps(run) + "\n")
            print(f"tutorial seed {run['seed']}: final {run['final_eval_10ep']:.1f} "
                  f"({run['loop_time_s']:.0f} s)", flush=True)
    return [have[s] for s in seeds]


def describe(values: np.ndarray) -> str:
    mean_ci = bootstrap_ci(values, np.mean)
    iqm_ci = bootstrap_ci(values, iqm)
    return (f"{np.mean(values):6.1f} [{mean_ci[0]:.1f}, {mean_ci[1]:.1f}] | "
            f"{iqm(values):6.1f} [{iqm_ci[0]:.1f}, {iqm_ci[1]:.1f}] | "
            f"{np.std(values, ddof=1):5.1f} | {np.min(values):.0f}-{np.max(values):.0f}")


def difference_ci(a: np.ndarray, b: np.ndarray, resamples: int = 10_000, seed: int = 0):
    """Percentile-bootstrap 95% CI of mean(a) - mean(b), resampling each independently."""
    rng = np.random.default_rng(seed)
    diffs = (rng.choice(a, (resamples, len(a))).mean(1)
             - rng.choice(b, (resamples, len(b))).mean(1))
    return np.percentile(diffs, [2.5, 97.5])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-seeds", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=1, help="tutorial runs side by side")
    parser.add_argument("--ours-seeds", type=int, default=None,
                        help="seeds of ours (default: --num-seeds); ours are cheap")
    parser.add_argument("--only-tutorial-semantics", action="store_true",
                        help="of ours, run only Config(bootstrap_on_truncation=False)")
    parser.add_argument("--collect-only", action="store_true",
                        help="only run the tutorial seeds still missing")
    args = parser.parse_args()
    seeds = list(range(args.num_seeds))
    runs = tutorial_runs(seeds, args.jobs)
    if args.collect_only:
        return
    tutorial_final = np.array([r["final_eval_10ep"] for r in runs])
    tutorial_curves = np.array([r["eval_returns"] for r in runs])
    frames = np.array(runs[0]["eval_steps"])

    rows = [(f"tutorial loop (gymnasium, deque), {len(runs)} seeds", tutorial_final)]
    curves = [(f"tutorial, {len(runs)} seeds", frames, tutorial_curves)]
    ours_seeds = args.ours_seeds or args.num_seeds
    for name, config in OURS.items():
        if args.only_tutorial_semantics and config.bootstrap_on_truncation:
            continue
        assert (report_frames(config) == frames).all()
        result = train_seeds(config, ours_seeds, seed=0)
        metrics = gather(result.metrics)
        rows.append((f"purejaxdqn `{name}`, {ours_seeds} seeds", metrics["final_eval_return"]))
        curves.append((f"{name}, {ours_seeds} seeds", frames, metrics["eval_return"]))

    lines = ["# The tutorial's loop against `Config()`", "",
             f"`python benchmarks/tutorial_vs_ours.py {' '.join(sys.argv[1:])}`: final greedy "
             "return (10 episodes) after 40,000 frames; 95% percentile-bootstrap CIs.", "",
             "| run | mean [95% CI] | IQM [95% CI] | sd | range |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {describe(values)} |" for name, values in rows]
    lines += ["", "| difference of means | tutorial minus ours [95% CI] |", "|---|---|"]
    for name, values in rows[1:]:
        low, high = difference_ci(tutorial_final, values)
        lines.append(f"| tutorial - {name} | {tutorial_final.mean() - values.mean():+.1f} "
                     f"[{low:+.1f}, {high:+.1f}] |")
    lines += ["", "Mean greedy return (5 episodes) every 2,000 frames, across seeds:", "",
              "| frames | " + " | ".join(name for name, _, _ in curves) + " |",
              "|---|" + "---|" * len(curves)]
    for i, frame in enumerate(frames):
        lines.append(f"| {frame:,} | "
                     + " | ".join(f"{np.mean(c[:, i]):.1f}" for _, _, c in curves) + " |")
    name = f"tutorial-vs-ours-{ours_seeds}"
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    learning_curves(RESULTS / f"{name}.png", curves,
                    "CartPole-v1: greedy return (mean, 95% CI)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
