"""`purejaxdqn train` / `purejaxdqn sweep`: train many seeds (and hyperparameter settings) in
one program, print a summary, write the results."""

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from purejaxdqn import plots
from purejaxdqn.config import PRESETS, TRACED_FIELDS, Config
from purejaxdqn.runs import evaluate_run, load_metrics, write_curves_csv, write_tensorboard
from purejaxdqn.stats import summarize
from purejaxdqn.sweep import sweep
from purejaxdqn.distributed import check_num_seeds
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
    "double_q": "double Q-learning (online network selects, target evaluates)",
    "dueling": "dueling network head",
    "loss": "TD loss: huber or mse",
    "target_update_period": "0: soft target update by tau; K: copy every K learning steps",
    "network": "mlp; cnn (a 3x3 convolution first, for image observations); cnn_pool (its "
               "features max-pooled over the grid, translation invariant)",
    "conv_channels": "filters of the 3x3 convolution (cnn, cnn_pool)",
    "prioritized": "prioritised replay with importance-sampling weights",
    "noisy": "noisy networks explore (epsilon is then 0); evaluation uses the mean weights",
    "noisy_sigma0": "noisy networks: initial noise scale",
    "n_step": "n-step returns (1: one-step Q-learning)",
    "priority_exponent": "prioritised replay: alpha, the priority exponent",
    "importance_beta_start": "prioritised replay: beta at frame 0, annealed to 1",
    "distributional": "C51: learn a categorical return distribution (rlax) instead of Q",
    "num_atoms": "C51: atoms of the return distribution",
    "v_min": "C51: lowest return of the support",
    "v_max": "C51: highest return of the support",
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
        # Unset flags stay absent, so that a --preset's values are not overridden.
        default = ",".join(map(str, field.default)) if field.name == "hidden_sizes" else field.default
        kwargs = dict(dest=field.name, default=argparse.SUPPRESS,
                      help=f"{FIELD_HELP[field.name]} (default: {default})")
        if field.type is bool or field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif field.name == "hidden_sizes":
            parser.add_argument(flag, type=_sizes, **kwargs)
        else:
            parser.add_argument(flag, type=type(field.default), **kwargs)


def config_from_args(args) -> Config:
    """The --preset (or the defaults), with every flag given on the command line applied."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
             if hasattr(args, f.name)}
    return Config.preset(args.preset, **given) if args.preset else Config(**given)


def _grid_entry(text: str) -> tuple[str, list[float]]:
    field, _, values = text.partition("=")
    try:
        return field.strip(), [float(v) for v in values.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIELD=v1,v2,..., got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="purejaxdqn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train", help="train seeds in parallel and report final greedy returns",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    grid = commands.add_parser(
        "sweep", help="train every setting of a hyperparameter grid x seeds in one program",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    grid.add_argument("--grid", type=_grid_entry, action="append", required=True,
                      metavar="FIELD=V1,V2,...",
                      help=f"values of one traced hyperparameter; repeat for a grid. "
                           f"Fields: {', '.join(TRACED_FIELDS)}")
    train.add_argument("--csv", action="store_true",
                       help="also write the per-seed curves to DIR/curves.csv")
    train.add_argument("--tensorboard", action="store_true",
                       help="also write TensorBoard event files, one run per seed, to "
                            "DIR/tensorboard (needs tensorboardX)")
    evaluate = commands.add_parser(
        "evaluate", help="greedy return of the params a `train --out DIR` saved",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    evaluate.add_argument("run_dir", type=Path, help="a directory written by `train --out`")
    evaluate.add_argument("--episodes", type=int, default=100, help="episodes per seed")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the episodes")
    compare = commands.add_parser(
        "compare", help="overlay the learning curves of several runs",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    compare.add_argument("run_dirs", type=Path, nargs="+", help="directories written by `train --out`")
    compare.add_argument("--out", type=Path, default=Path("compare.png"), help="the plot to write")
    render = commands.add_parser(
        "render", help="draw a greedy episode of a saved agent into a GIF",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    render.add_argument("run_dir", type=Path, help="a directory written by `train --out`")
    render.add_argument("--seed-index", type=int, default=0, help="which trained seed")
    render.add_argument("--out", type=Path, default=Path("episode.gif"), help="the GIF to write")
    render.add_argument("--seed", type=int, default=0, help="seed of the episode")
    train.add_argument("--segment-frames", type=int, default=0,
                       help="run in segments of this many frames (a multiple of "
                            "--eval-every), checkpointing to --out after each and showing "
                            "progress; 0: one program, no checkpoints")
    train.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint in --out (same flags as the "
                            "interrupted command)")
    for command in (train, grid):
        command.add_argument("--num-seeds", type=int, default=16,
                             help="independent seeds, vmapped")
        command.add_argument("--preset", default=None, metavar="NAME",
                             help="start from a named Config preset (flags override it): "
                                  + ", ".join(PRESETS))
        command.add_argument("--seed", type=int, default=0,
                             help="master seed; seed i uses key i of its split")
        command.add_argument("--out", type=Path, default=None,
                             help="directory for the results (must not hold a previous run)")
        add_config_flags(command)
        add_distributed_flags(command)
    return parser


def _env_int(name: str):
    value = os.environ.get(name)
    try:
        return None if value is None else int(value)
    except ValueError:
        raise SystemExit(f"purejaxdqn: error: {name} must be an integer, got {value!r}")


def add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that join JAX's distributed runtime: one process per host, all running the
    same command; the seeds are split over every process's devices."""
    group = parser.add_argument_group(
        "many processes (jax.distributed)",
        "run the same command in every process; process 0 prints and writes the results")
    group.add_argument("--coordinator", default=os.environ.get("JAX_COORDINATOR_ADDRESS"),
                       metavar="HOST:PORT",
                       help="process 0's address, which every process reaches (env: "
                            "JAX_COORDINATOR_ADDRESS)")
    group.add_argument("--num-processes", type=int, default=_env_int("JAX_NUM_PROCESSES"),
                       help="how many processes run the command (env: JAX_NUM_PROCESSES)")
    group.add_argument("--process-id", type=int, default=_env_int("JAX_PROCESS_ID"),
                       help="this process's index, 0 .. num-processes - 1 (env: "
                            "JAX_PROCESS_ID)")
    group.add_argument("--distributed", action="store_true",
                       help="join with what JAX detects of the cluster (SLURM, Open MPI, "
                            "...), e.g. under srun; implied by the three flags above")
    group.add_argument("--heartbeat-timeout", type=int, default=None, metavar="SECONDS",
                       help="a process that loses its peers for this long ends with an "
                            "error (default: JAX's, 100)")


def join_processes(args) -> None:
    """`jax.distributed.initialize` when the command asks for several processes; it must
    come before anything starts JAX's backend."""
    given = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(value is None for value in given):
        return
    if args.num_processes is not None and args.num_processes <= 0:
        raise ValueError(f"--num-processes must be an integer > 0, got {args.num_processes}")
    if args.process_id is not None and not (
            0 <= args.process_id < (args.num_processes or args.process_id + 1)):
        raise ValueError(f"--process-id must be in 0 .. num-processes - 1, got "
                         f"{args.process_id}")
    if args.coordinator is not None and not re.fullmatch(r".+:\d+", args.coordinator):
        raise ValueError(f"--coordinator must be HOST:PORT, got {args.coordinator!r}")
    if args.heartbeat_timeout is not None and args.heartbeat_timeout <= 0:
        raise ValueError(f"--heartbeat-timeout must be an integer > 0, got "
                         f"{args.heartbeat_timeout}")
    from purejaxdqn import distributed

    timeout = args.heartbeat_timeout or distributed.HEARTBEAT_TIMEOUT_S
    distributed.initialize(*given, heartbeat_timeout=timeout)


def check_out(out: Path | None) -> None:
    if out is not None and out.exists() and any(out.iterdir()):
        raise ValueError(f"--out {out} is not empty; choose a new directory")


def _format(stat: dict) -> str:
    return f"{stat['value']:7.1f}  [{stat['ci_low']:.1f}, {stat['ci_high']:.1f}]"


def run_train(args) -> dict:
    config = config_from_args(args)
    check_num_seeds(args.num_seeds)
    if args.tensorboard and args.out is None:
        raise ValueError("--tensorboard needs --out DIR")
    timings = {}
    if args.segment_frames or args.resume:
        if args.out is None:
            raise ValueError("--segment-frames and --resume need --out DIR for checkpoints")
        if not args.resume:
            check_out(args.out)
        result = train_with_progress(config, args, timings)
    else:
        check_out(args.out)
        result = train_seeds(config, args.num_seeds, args.seed, timings=timings)
    params, metrics = results_on_main(result.params, result.metrics)
    if params is None:
        return {}
    final = metrics["final_eval_return"]
    total_frames = args.num_seeds * config.num_frames
    summary = {
        "config": dataclasses.asdict(config), "num_seeds": args.num_seeds, "seed": args.seed,
        "final_eval_return": summarize(final), **timings,
        "frames_per_second": total_frames / timings["run_s"],
    }
    print(f"{config.env_name}: {args.num_seeds} seeds x {config.num_frames:,} frames")
    print(f"final greedy return over {config.final_eval_episodes} episodes, across seeds "
          f"(95% bootstrap CI):")
    for name in ("mean", "median", "iqm"):
        print(f"  {name:>6}: {_format(summary['final_eval_return'][name])}")
    compile_s = (f"compile {timings['compile_s']:.1f} s, run" if "compile_s" in timings
                 else "wall time, compiles included,")
    print(f"{compile_s} {timings['run_s']:.1f} s, "
          f"{summary['frames_per_second']:,.0f} frames/s across all seeds")

    if args.out is not None:
        write_outputs(args.out, config, params, metrics, summary)
        if args.csv:
            write_curves_csv(args.out / "curves.csv", report_frames(config), metrics)
        if args.tensorboard:
            write_tensorboard(args.out / "tensorboard", report_frames(config), metrics)
        print(f"wrote {args.out}/")
    return summary


def results_on_main(params, metrics: dict):
    """(params, metrics) as numpy on process 0, gathered from every process's seeds;
    (None, None) on the others, which say so in one line."""
    import jax

    from purejaxdqn.distributed import gather, is_main_process

    params, metrics = gather((params, metrics))
    if not is_main_process():
        print(f"process {jax.process_index()} of {jax.process_count()}: its seeds are "
              f"trained; process 0 reports and writes the results")
        return None, None
    return params, metrics


def run_evaluate(args) -> dict:
    returns = evaluate_run(args.run_dir, args.episodes, args.seed)
    for i, value in enumerate(returns):
        print(f"seed {i:3d}: {value:7.1f}")
    summary = summarize(returns)
    print(f"greedy return over {args.episodes} episodes, across {len(returns)} seeds "
          f"(95% bootstrap CI):")
    for name in ("mean", "median", "iqm"):
        print(f"  {name:>6}: {_format(summary[name])}")
    return summary


def run_render(args) -> None:
    from purejaxdqn.render import render_run

    episode_return = render_run(args.run_dir, args.seed_index, args.out, args.seed)
    print(f"wrote {args.out}: a greedy episode with return {episode_return:.0f}")


def run_compare(args) -> None:
    curves = []
    for run_dir in args.run_dirs:
        metrics = load_metrics(run_dir)
        if "eval_return" not in metrics:
            raise ValueError(f"{run_dir} has no periodic evaluation (eval_every was 0)")
        if metrics["eval_return"].ndim != 2:
            raise ValueError(f"{run_dir} is a sweep; compare takes `train --out` runs")
        curves.append((str(run_dir), metrics["frames"], metrics["eval_return"]))
        final = summarize(metrics["final_eval_return"])
        print(f"{str(run_dir):40} final IQM {_format(final['iqm'])}  mean {_format(final['mean'])}")
    plots.learning_curves(args.out, curves, "greedy return (mean, 95% CI)")
    print(f"wrote {args.out}")


def train_with_progress(config: Config, args, timings: dict):
    """The resumable runner, with a progress bar fed at segment boundaries."""
    from tqdm import tqdm

    from purejaxdqn.distributed import is_main_process, mean
    from purejaxdqn.runner import train_resumable

    start = time.perf_counter()
    with tqdm(total=config.num_frames, unit="frame", unit_scale=True,
              desc=f"{args.num_seeds} seeds", disable=None if is_main_process() else True) as bar:
        def on_segment(frames_done: int, metrics: dict) -> None:
            bar.update(frames_done - bar.n)
            if "eval_return" in metrics:
                bar.set_postfix(eval_return=f"{mean(metrics['eval_return'][:, -1]):.1f}")

        result = train_resumable(config, args.num_seeds, args.out, args.segment_frames,
                                 args.seed, args.resume, on_segment)
    timings["run_s"] = time.perf_counter() - start
    return result


def write_outputs(out: Path, config: Config, params, metrics: dict, summary: dict) -> None:
    import jax

    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "metrics.npz", frames=report_frames(config), **metrics)
    flat = {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(params)}
    np.savez(out / "params.npz", **flat)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if "eval_return" in metrics:
        seeds = len(metrics["eval_return"])
        plots.learning_curves(out / "learning_curve.png",
                              [(f"mean of {seeds} seeds", report_frames(config),
                                metrics["eval_return"])], config.env_name)


def run_sweep(args) -> list[dict]:
    config = config_from_args(args)
    check_num_seeds(args.num_seeds)
    check_out(args.out)
    grid = dict(args.grid)
    timings = {}
    result = sweep(config, grid, args.num_seeds, args.seed, timings=timings)
    params, metrics = results_on_main(result.params, result.metrics)
    if params is None:
        return []
    final = metrics["final_eval_return"]  # (configs, seeds)
    rows = [{"setting": setting, **summarize(returns)}
            for setting, returns in zip(result.configs, final)]
    rows.sort(key=lambda row: -row["iqm"]["value"])
    frames = final.size * config.num_frames
    print(f"{config.env_name}: {len(rows)} settings x {args.num_seeds} seeds x "
          f"{config.num_frames:,} frames; final greedy return, 95% bootstrap CI")
    print(f"{'setting':<40} {'IQM':>22} {'mean':>22}")
    for row in rows:
        setting = " ".join(f"{k}={v:g}" for k, v in row["setting"].items())
        print(f"{setting:<40} {_format(row['iqm']):>22} {_format(row['mean']):>22}")
    print(f"compile {timings['compile_s']:.1f} s, run {timings['run_s']:.1f} s, "
          f"{frames / timings['run_s']:,.0f} frames/s across all runs")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        np.savez(args.out / "metrics.npz", frames=report_frames(config), **metrics)
        summary = {"config": dataclasses.asdict(config), "grid": grid,
                   "num_seeds": args.num_seeds, "seed": args.seed, "ranked": rows, **timings}
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        plots.ranking(args.out / "sweep.png", rows, config.env_name)
        print(f"wrote {args.out}/")
    return rows


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("train", "sweep"):
            join_processes(args)
        {"train": run_train, "sweep": run_sweep, "evaluate": run_evaluate,
         "compare": run_compare, "render": run_render}[args.command](args)
    except ValueError as error:
        print(f"purejaxdqn: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        from purejaxdqn.distributed import LostProcess

        if not isinstance(error, LostProcess):
            raise
        print(f"purejaxdqn: error: {error}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # Skip JAX's shutdown barrier, which would wait for the lost process and abort.
        os._exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
