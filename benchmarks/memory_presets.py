"""The memory presets (`Config.memory`) on fresh seeds: final greedy return (mean and
interquartile mean, 95% bootstrap CIs) with memory, with the same config without memory,
and of a random policy, with the wall time of each run on this machine, as a markdown
table.

    python benchmarks/memory_presets.py --num-seeds 16 --seed 2000   # seeds no search used
"""

import argparse
import json
import platform
from pathlib import Path

import jax
import numpy as np

from purejaxdqn import Config, train_seeds, use_cpu_devices
from purejaxdqn.envs import resolve_env
from purejaxdqn.evaluation import random_policy_returns
from purejaxdqn.stats import summarize

PRESETS = ("memorychain-pqn-rnn", "memorychain-r2d2", "cartpole-pqn-rnn",
           "xminigrid-memory-s8-pqn-rnn")


def cell(summary: dict) -> str:
    return f"{summary['value']:.2f} [{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"


def trained(config: Config, num_seeds: int, seed: int) -> dict:
    timings = {}
    result = train_seeds(config, num_seeds, seed=seed, timings=timings)
    final = np.asarray(result.metrics["final_eval_return"])
    return {"final": final.tolist(), "summary": summarize(final), **timings}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-seeds", type=int, default=16)
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--only", nargs="+", choices=PRESETS, default=list(PRESETS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / (
        f"memory-presets-{platform.machine()}.json"))
    args = parser.parse_args()
    use_cpu_devices(num_seeds=args.num_seeds)  # before the random policy starts JAX
    rows = json.loads(args.out.read_text())["rows"] if args.out.exists() else {}
    for name in args.only:
        config = Config.preset(name)
        env, env_params, _ = resolve_env(config.env_name, overrides=config.env_params)
        random = np.asarray(jax.jit(lambda key: random_policy_returns(
            key, env, env_params, 1_000))(jax.random.key(args.seed)))
        rows[name] = {
            "env": config.env_name, "env_params": dict(config.env_params),
            "frames": config.num_frames,
            "memory": trained(config, args.num_seeds, args.seed),
            "no_memory": trained(config.without_memory(), args.num_seeds, args.seed),
            "random": summarize(random)}
        print(name, json.dumps({k: v for k, v in rows[name].items()}, default=str)[:400],
              flush=True)
    args.out.write_text(json.dumps({"machine": f"{jax.default_backend()}, "
                                    f"{jax.device_count()} devices, {platform.machine()}",
                                    "num_seeds": args.num_seeds, "seed": args.seed,
                                    "rows": rows}, indent=1, default=float))
    print("| preset | environment, frames | with memory: mean; IQM | without memory: mean; "
          "IQM | random policy | run s (compile s), with / without |\n|---|---|---|---|---|---|")
    for name, row in rows.items():
        params = ", ".join(f"{k}={v}" for k, v in row["env_params"].items())
        with_memory, without = row["memory"], row["no_memory"]
        print(f"| `{name}` | {row['env']}{f' ({params})' if params else ''}, "
              f"{row['frames']:,} | {cell(with_memory['summary']['mean'])}; "
              f"{cell(with_memory['summary']['iqm'])} | {cell(without['summary']['mean'])}; "
              f"{cell(without['summary']['iqm'])} | {row['random']['mean']['value']:.2f} | "
              f"{with_memory['run_s']:.0f} ({with_memory['compile_s']:.0f}) / "
              f"{without['run_s']:.0f} ({without['compile_s']:.0f}) |")


if __name__ == "__main__":
    main()
