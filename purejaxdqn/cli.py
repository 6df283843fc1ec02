"""`purejaxdqn train`: train many seeds in one program, print a summary, write the results."""

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from purejaxdqn.config import Config
from purejaxdqn.stats import bootstrap_ci, summarize
from purejaxdqn.train import report_frames, train_seeds

FIELD_HELP = {
    "num_frames": "environment frames per seed",
    "batch_size": "transitions per learning step",
    "buffer_size": "replay capacity (oldest transitions are overwritten)",
    "warmup_steps": "frames collected before the first learning step",
    "train_every": "frames between learning steps",
    "gamma": "discount factor",
    "tau": "soft target update rate",
    "learning_rate": "Adam learning rate",
    "max_grad_norm": "global-norm gradient clipping",
    "eps_start": "initial exploration epsilon",
    "eps_end": "final exploration epsilon",
    "eps_decay_frames": "frames over which epsilon decays linearly",
    "hidden_sizes": "MLP hidden layer sizes, comma-separated (e.g. 128,128)",
    "eval_every": "frames between greedy evaluations (0: only the final one)",
    "eval_episodes": "episodes per periodic greedy evaluation",
    "final_eval_episodes": "episodes in the final greedy evaluation",
    "env_name": "gymnax environment id",
    "bootstrap_on_truncation": "bootstrap from the final observation at time limits",
}


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `Config` field, e.g. --learning-rate, with its default shown."""
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        kwargs = dict(dest=field.name, default=field.default,
                      help=f"{FIELD_HELP[field.name]} (default: %(default)s)")
        if field.type is bool or field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif field.name == "hidden_sizes":
            parser.add_argument(flag, type=_sizes, **kwargs)
        else:
            parser.add_argument(flag, type=type(field.default), **kwargs)


def config_from_args(args) -> Config:
    return Config(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Config)})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="purejaxdqn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train", help="train seeds in parallel and report final greedy returns",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--num-seeds", type=int, default=16, help="independent seeds, vmapped")
    train.add_argument("--seed", type=int, default=0, help="master seed; seed i uses key i of its split")
    train.add_argument("--out", type=Path, default=None,
                       help="directory for metrics.npz, summary.json, params.npz and "
                            "learning_curve.png (must not hold a previous run)")
    add_config_flags(train)
    return parser


def _format(stat: dict) -> str:
    return f"{stat['value']:7.1f}  [{stat['ci_low']:.1f}, {stat['ci_high']:.1f}]"


def run_train(args) -> dict:
    config = config_from_args(args)
    if args.num_seeds <= 0:
        raise ValueError(f"--num-seeds must be an integer > 0, got {args.num_seeds}")
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        raise ValueError(f"--out {args.out} is not empty; choose a new directory")

    timings = {}
    result = train_seeds(config, args.num_seeds, args.seed, timings=timings)
    metrics = {name: np.asarray(value) for name, value in result.metrics.items()}
    final = metrics["final_eval_return"]
    total_frames = args.num_seeds * config.num_frames
    summary = {
        "config": dataclasses.asdict(config), "num_seeds": args.num_seeds, "seed": args.seed,
        "final_eval_return": summarize(final),
        "compile_s": timings["compile_s"], "run_s": timings["run_s"],
        "frames_per_second": total_frames / timings["run_s"],
    }
    print(f"{config.env_name}: {args.num_seeds} seeds x {config.num_frames:,} frames")
    print(f"final greedy return over {config.final_eval_episodes} episodes, across seeds "
          f"(95% bootstrap CI):")
    for name in ("mean", "median", "iqm"):
        print(f"  {name:>6}: {_format(summary['final_eval_return'][name])}")
    print(f"compile {timings['compile_s']:.1f} s, run {timings['run_s']:.1f} s, "
          f"{summary['frames_per_second']:,.0f} frames/s across all seeds")

    if args.out is not None:
        write_outputs(args.out, config, result.params, metrics, summary)
        print(f"wrote {args.out}/")
    return summary


def write_outputs(out: Path, config: Config, params, metrics: dict, summary: dict) -> None:
    import jax

    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "metrics.npz", frames=report_frames(config), **metrics)
    flat = {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(params)}
    np.savez(out / "params.npz", **flat)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if "eval_return" in metrics:
        plot_learning_curve(out / "learning_curve.png", report_frames(config),
                            metrics["eval_return"], config.env_name)


def plot_learning_curve(path: Path, frames, eval_return, title: str) -> None:
    """Mean greedy return against frames, with a 95% bootstrap band across seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    returns = np.asarray(eval_return).T  # (reports, seeds)
    low, high = bootstrap_ci(returns)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(frames, returns.mean(axis=1), label=f"mean of {returns.shape[1]} seeds")
    ax.fill_between(frames, low, high, alpha=0.3, label="95% CI")
    ax.set(xlabel="frames", ylabel="greedy return", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            run_train(args)
    except ValueError as error:
        print(f"purejaxdqn: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
