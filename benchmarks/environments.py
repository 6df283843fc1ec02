"""A documented config per environment, trained over many seeds, against a random policy:
final greedy return (mean and interquartile mean, 95% bootstrap CIs), as a markdown table.

    python benchmarks/environments.py --num-seeds 16
    python benchmarks/environments.py --suites --num-seeds 16 --seed 1000   # fresh seeds
    python benchmarks/environments.py --octax --num-seeds 16 --seed 1000 --random-episodes 100
"""

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from purejaxdqn import Config, train_seeds
from purejaxdqn.config import OCTAX_GAMES, PRESETS
from purejaxdqn.envs import resolve_env
from purejaxdqn.evaluation import random_policy_returns
from purejaxdqn.stats import summarize

# The presets (purejaxdqn/config.py) that learn each environment.
ENVIRONMENTS = {"Acrobot-v1": "acrobot-50k", "MountainCar-v0": "mountaincar-100k",
                **{f"{game}-MinAtar": f"{game.lower()}-minatar-100k"
                   for game in ("Breakout", "Asterix", "Freeway", "SpaceInvaders")}}
# The environment suites' presets (each suite an extra: pip install ".[envs]").
SUITE_ENVIRONMENTS = {"navix:Navix-Empty-8x8-v0": "navix-empty-8x8",
                      "xminigrid:MiniGrid-Empty-8x8": "xminigrid-empty-8x8",
                      "jumanji:Game2048-v1": "jumanji-game2048",
                      "craftax:Craftax-Classic-Symbolic-v1": "craftax-classic-pqn"}
# Octax's presets (pip install ".[octax]"), into octax-presets.json.
OCTAX_ENVIRONMENTS = {f"octax:{game}": f"octax-{game}-pqn" for game in OCTAX_GAMES}


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
    parser.add_argument("--suites", action="store_true",
                        help="the environment suites' presets (into suite-presets.json)")
    parser.add_argument("--octax", action="store_true",
                        help="Octax's presets (into octax-presets.json)")
    parser.add_argument("--only", nargs="+",
                        choices=[*ENVIRONMENTS, *SUITE_ENVIRONMENTS, *OCTAX_ENVIRONMENTS],
                        help="run these environments (their rows are merged into --out)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    environments, results = ((OCTAX_ENVIRONMENTS, "octax-presets.json") if args.octax else
                             (SUITE_ENVIRONMENTS, "suite-presets.json") if args.suites else
                             (ENVIRONMENTS, "environments.json"))
    args.only = args.only or list(environments)
    args.out = args.out or Path(__file__).parent / "results" / results

    rows = json.loads(args.out.read_text())["rows"] if args.out.exists() else {}
    print(f"| environment | frames | trained, {args.num_seeds} seeds: mean [95% CI] "
          f"| IQM [95% CI] | random policy: mean [95% CI] | compile + run |")
    print("|---|---|---|---|---|---|")
    for name in args.only:
        preset = {**ENVIRONMENTS, **SUITE_ENVIRONMENTS, **OCTAX_ENVIRONMENTS}[name]
        config = Config.preset(preset)
        timings = {}
        start = time.perf_counter()
        result = train_seeds(config, args.num_seeds, args.seed, timings=timings)
        trained = summarize(result.metrics["final_eval_return"])
        random = random_policy_summary(name, args.random_episodes, args.seed)
        rows[name] = {"preset": preset, "overrides": PRESETS[preset], "num_seeds": args.num_seeds, "seed": args.seed,
                      "trained": trained, "random": random,
                      "random_episodes": args.random_episodes,
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
