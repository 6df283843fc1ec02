"""A documented config per environment, trained over many seeds, against a random policy:
final greedy return (mean and interquartile mean, 95% bootstrap CIs), as a markdown table.

    python benchmarks/environments.py --num-seeds 16
"""

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from purejaxdqn import Config, train_seeds
from purejaxdqn.envs import resolve_env
from purejaxdqn.evaluation import random_policy_returns
from purejaxdqn.stats import summarize

# Each a set of overrides of the tutorial defaults. MinAtar: the 3x3 convolution, a
# smaller batch and a budget that 2 CPU cores train in minutes (far below the 5M frames
# of the MinAtar paper, so these are early-learning figures, not final scores).
MINATAR = dict(network="cnn", num_frames=100_000, batch_size=32, buffer_size=100_000,
               learning_rate=1e-3, eps_decay_frames=50_000, eval_every=0)
ENVIRONMENTS = {
    "Acrobot-v1": dict(env_name="Acrobot-v1", num_frames=100_000, loss="mse",
                       learning_rate=1e-3, eps_decay_frames=20_000, eval_every=0),
    "MountainCar-v0": dict(env_name="MountainCar-v0", num_frames=200_000, loss="mse",
                           learning_rate=1e-3, eps_decay_frames=50_000, eval_every=0),
    "Breakout-MinAtar": dict(env_name="Breakout-MinAtar", **MINATAR),
    "Asterix-MinAtar": dict(env_name="Asterix-MinAtar", **MINATAR),
    "Freeway-MinAtar": dict(env_name="Freeway-MinAtar", **MINATAR),
    "SpaceInvaders-MinAtar": dict(env_name="SpaceInvaders-MinAtar", **MINATAR),
}


def random_policy_summary(env_name: str, episodes: int, seed: int) -> dict:
    env, env_params, _ = resolve_env(env_name)
    program = jax.jit(lambda key: random_policy_returns(key, env, env_params, episodes))
    return summarize(np.asarray(program(jax.random.key(seed))))


def _cell(summary: dict) -> str:
    return f"{summary['value']:.1f} [{summary['ci_low']:.1f}, {summary['ci_high']:.1f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-seeds", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-episodes", type=int, default=1_000,
                        help="episodes of the random policy per environment")
    parser.add_argument("--only", nargs="+", choices=list(ENVIRONMENTS),
                        default=list(ENVIRONMENTS),
                        help="run these environments (their rows are merged into --out)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "environments.json")
    args = parser.parse_args()

    rows = json.loads(args.out.read_text())["rows"] if args.out.exists() else {}
    print(f"| environment | frames | trained, {args.num_seeds} seeds: mean [95% CI] "
          f"| IQM [95% CI] | random policy: mean [95% CI] | compile + run |")
    print("|---|---|---|---|---|---|")
    for name in args.only:
        overrides = ENVIRONMENTS[name]
        config = Config(**overrides)
        timings = {}
        start = time.perf_counter()
        result = train_seeds(config, args.num_seeds, args.seed, timings=timings)
        trained = summarize(result.metrics["final_eval_return"])
        random = random_policy_summary(name, args.random_episodes, args.seed)
        rows[name] = {"overrides": overrides, "num_seeds": args.num_seeds, "seed": args.seed,
                      "trained": trained, "random": random,
                      "per_seed": np.asarray(result.metrics["final_eval_return"]).tolist(),
                      "compile_s": timings["compile_s"], "run_s": timings["run_s"],
                      "total_s": time.perf_counter() - start}
        print(f"| {name} | {config.num_frames:,} | {_cell(trained['mean'])} "
              f"| {_cell(trained['iqm'])} | {_cell(random['mean'])} "
              f"| {timings['compile_s']:.0f} + {timings['run_s']:.0f} s |", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
