"""What each `purejaxdqn` command does once `cli.py` has checked its inputs and outputs:
train, sweep, evaluate, render, compare. Under `jax.distributed`, every process trains
its seeds and process 0 alone prints and writes."""

import dataclasses
import json
import sys
from pathlib import Path
import jax
import numpy as np

from purejaxdqn import layout, plots
from purejaxdqn.config import Config
from purejaxdqn.distributed import gather, is_main_process, mean
from purejaxdqn.progress import Progress
from purejaxdqn.runs import evaluate_run, load_metrics
from purejaxdqn.trackers import Run, Tracking, log_sweep, provenance, sweep_group
from purejaxdqn.stats import summarize
from purejaxdqn.sweeps import grid_settings, sweep
from purejaxdqn.train import report_frames, train_seeds


@dataclasses.dataclass(frozen=True)
class TrainPlan:
    """`purejaxdqn train` once its inputs are checked: what `commands.run_train` does."""

    config: Config
    num_seeds: int
    seed: int
    out: Path | None = None
    segment_frames: int | None = None  # None: one program, no checkpoints
    report_every: int | None = None    # frames per report of a segmented run
    resume: bool = False
    resumed_at_frame: int = 0
    trackers: tuple = ()  # trackers.Tracker instances, checked
    preset: str | None = None
    progress: bool | None = None  # None: shown unless the run is short


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """`purejaxdqn sweep` once its inputs are checked: what `commands.run_sweep` does."""

    config: Config
    grid: dict
    num_seeds: int
    seed: int
    out: Path | None = None
    trackers: tuple = ()
    preset: str | None = None
    progress: bool | None = None  # None: shown unless the run is short


# A run of fewer frames than this in all (seeds x settings x frames) is short: it shows no
# progress and runs as one program.
SHORT_FRAMES = 100_000


def progress_of(config: Config, runs: int, shown: bool | None, desc: str,
                initial: int = 0) -> Progress | None:
    """What a command shows while it trains `runs` runs of `config`: nothing where `shown`
    is False (--quiet), or where it is None and the run is short; else a bar on a
    terminal and a line per tenth of the run elsewhere (a log), and how long the run
    should take. Every process runs the same segments; process 0 alone shows them."""
    if shown is None:
        shown = config.num_frames * runs >= SHORT_FRAMES
    if not shown:
        return None
    mode = "off" if not is_main_process() else "bar" if sys.stdout.isatty() else "lines"
    return Progress(config.num_frames, runs, mode, desc, estimate=True, initial=initial,
                    steady_from=config.warmup_steps)


def _format(stat: dict) -> str:
    return f"{stat['value']:7.1f}  [{stat['ci_low']:.1f}, {stat['ci_high']:.1f}]"


def print_summary(title: str, summary: dict) -> None:
    """`title`, then the mean, median and IQM of a `stats.summarize`, one per line."""
    print(title)
    for name in ("mean", "median", "iqm"):
        print(f"  {name:>6}: {_format(summary[name])}")


def results_on_main(params, metrics: dict):
    """(params, metrics) as numpy on process 0, gathered from every process's seeds;
    (None, None) on the others, which say so in one line."""
    params, metrics = gather((params, metrics))
    if not is_main_process():
        print(f"process {jax.process_index()} of {jax.process_count()}: its seeds are "
              f"trained; process 0 reports and writes the results")
        return None, None
    return params, metrics


def run_train(plan: TrainPlan) -> int:
    """`purejaxdqn train`, as `cli.check_train` planned it."""
    config, num_seeds, out = plan.config, plan.num_seeds, plan.out
    timings = {}
    tracking = None
    if plan.trackers and is_main_process():  # started before anything compiles
        tracking = Tracking(plan.trackers, train_run(
            dataclasses.asdict(config), out, num_seeds, plan.seed, plan.segment_frames,
            layout.describe(num_seeds), plan.preset))
        tracking.start()
    if is_main_process():
        print(f"training {layout.summary_line(num_seeds)}", flush=True)
    frames = report_frames(config, plan.report_every)
    try:
        if plan.segment_frames:
            result = train_with_progress(plan, timings, tracking, frames)
        else:
            progress = progress_of(config, num_seeds, plan.progress, f"{num_seeds} seeds")
            result = train_seeds(config, num_seeds, plan.seed, timings=timings,
                                 progress=progress or False)
    except BaseException:  # the tracker runs end as failed; a resume continues them
        if tracking is not None:
            tracking.interrupt()
        raise
    params, metrics = results_on_main(result.params, result.metrics)
    if params is None:
        return 0
    total_run_s = timings.get("total_run_s", timings["run_s"])
    summary = {
        "config": dataclasses.asdict(config), "num_seeds": num_seeds, "seed": plan.seed,
        "segment_frames": plan.segment_frames, "layout": layout.describe(num_seeds),
        "final_eval_return": summarize(metrics["final_eval_return"]), **timings,
        "frames_per_second": num_seeds * config.num_frames / total_run_s,
    }
    print(f"{config.env_name}: {num_seeds} seeds x {config.num_frames:,} frames")
    print_summary(f"final greedy return over {config.final_eval_episodes} episodes, across "
                  f"seeds (95% bootstrap CI):", summary["final_eval_return"])
    if timings.get("resumed_at_frame"):
        print(f"compile {timings['compile_s']:.1f} s; resumed at frame "
              f"{timings['resumed_at_frame']:,}: this part ran {timings['run_s']:.1f} s, all "
              f"parts {total_run_s:.1f} s; {summary['frames_per_second']:,.0f} frames/s "
              f"across all seeds over all parts")
    else:
        print(f"compile {timings['compile_s']:.1f} s, run {timings['run_s']:.1f} s, "
              f"{summary['frames_per_second']:,.0f} frames/s across all seeds")
    written = True
    if out is not None:
        written = write_outputs(out, config, params, metrics, summary, frames)
        if written:
            print(f"wrote {out}/")
    if tracking is not None:
        tracking.end(summary, {"frames": frames, **metrics}, _logged_files(out))
        written &= tracking.say_errors()
    return 0 if written else 1


def train_run(config: dict, out: Path | None, num_seeds: int, seed: int,
              segment_frames: int | None, layout_record: dict | None,
              preset: str | None = None) -> Run:
    """What the trackers are told of a `train` run, as it starts or from its summary."""
    return Run(config, out=out, details={
        "num_seeds": num_seeds, "seed": seed, "preset": preset,
        "segment_frames": segment_frames, "layout": layout_record, **provenance()})


def _logged_files(out: Path | None) -> dict:
    """The files a tracker keeps beside its metrics: the plots, the summary and
    metrics.npz, where they were written."""
    names = ("learning_curve.png", "sweep.png", "summary.json", "metrics.npz")
    return {} if out is None else {Path(name).stem: out / name for name in names
                                   if (out / name).exists()}


def train_with_progress(plan: TrainPlan, timings: dict, tracking: Tracking | None = None,
                        frames: np.ndarray | None = None):
    """The resumable runner, with its progress (frames across all seeds) at segment
    boundaries, and each segment's reports logged to the trackers as it ends."""
    from purejaxdqn.runner import train_resumable

    seeds = plan.num_seeds
    progress = progress_of(plan.config, seeds, plan.progress is not False, f"{seeds} seeds",
                           plan.resumed_at_frame)

    def on_segment(frames_done: int, metrics: dict) -> None:
        if plan.trackers:  # every process takes part in the gather
            so_far = gather(metrics)
            if tracking is not None:
                reports = next(iter(so_far.values())).shape[1]
                tracking.log_reports(frames[:reports], so_far)
        if "eval_return" in metrics:  # (a collective too)
            latest = mean(metrics["eval_return"][:, -1])
            if progress:
                progress.set_postfix(eval_return=f"{latest:.1f}")

    return train_resumable(plan.config, seeds, plan.out, plan.segment_frames, plan.seed,
                           plan.resume, on_segment, timings, progress=progress)


def _write(path: Path, write, *args) -> bool:
    """Write one output; a failure is said on stderr and the other outputs still go."""
    try:
        write(path, *args)
        return True
    except (OSError, ValueError) as error:
        print(f"purejaxdqn: error: could not write {path}: {error}", file=sys.stderr)
        return False


def _save_params(path: Path, params) -> None:
    flat = {"/".join(str(getattr(k, "key", k)) for k in key_path): np.asarray(leaf)
            for key_path, leaf in jax.tree_util.tree_leaves_with_path(params)}
    np.savez(path, **flat)


def write_outputs(out: Path, config: Config, params, metrics: dict, summary: dict,
                  frames: np.ndarray | None = None) -> bool:
    """metrics.npz, params.npz, summary.json and (with periodic evaluation)
    learning_curve.png in `out`, each on its own; True if all were written."""
    frames = report_frames(config) if frames is None else frames
    out.mkdir(parents=True, exist_ok=True)
    written = _write(out / "metrics.npz", lambda p: np.savez(p, frames=frames, **metrics))
    written &= _write(out / "params.npz", _save_params, params)
    written &= _write(out / "summary.json",
                      lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    if "eval_return" in metrics:
        curve = [(f"mean of {len(metrics['eval_return'])} seeds", frames,
                  metrics["eval_return"])]
        written &= _write(out / "learning_curve.png", plots.learning_curves, curve,
                          config.env_name)
    return written


def run_sweep(plan: SweepPlan) -> int:
    """`purejaxdqn sweep`, as `cli.check_sweep` planned it."""
    config, grid, num_seeds, out = plan.config, plan.grid, plan.num_seeds, plan.out
    timings = {}
    if is_main_process():
        settings = len(grid_settings(config, grid))
        print(f"sweeping {settings} settings x {layout.summary_line(num_seeds)}", flush=True)
    runs = num_seeds * len(grid_settings(config, grid))
    progress = progress_of(config, runs, plan.progress, f"{runs} runs")
    result = sweep(config, grid, num_seeds, plan.seed, timings=timings,
                   progress=progress or False)
    params, metrics = results_on_main(result.params, result.metrics)
    if params is None:
        return 0
    final = metrics["final_eval_return"]  # (configs, seeds)
    rows = [{"setting": setting, **summarize(returns)}
            for setting, returns in zip(result.configs, final)]
    rows.sort(key=lambda row: -row["iqm"]["value"])
    print(f"{config.env_name}: {len(rows)} settings x {num_seeds} seeds x "
          f"{config.num_frames:,} frames; final greedy return, 95% bootstrap CI")
    print(f"{'setting':<40} {'IQM':>22} {'mean':>22}")
    for row in rows:
        setting = " ".join(f"{k}={v:g}" for k, v in row["setting"].items())
        print(f"{setting:<40} {_format(row['iqm']):>22} {_format(row['mean']):>22}")
    print(f"compile {timings['compile_s']:.1f} s, run {timings['run_s']:.1f} s, "
          f"{final.size * config.num_frames / timings['run_s']:,.0f} frames/s across all runs")
    summary = {"config": dataclasses.asdict(config), "grid": grid, "num_seeds": num_seeds,
               "seed": plan.seed, "layout": layout.describe(num_seeds), "ranked": rows,
               **timings}
    if plan.trackers:
        summary["tracker_group"] = sweep_group(summary, plan.trackers)
    written = True
    if out is not None:
        written = _write(out / "metrics.npz",
                         lambda p: np.savez(p, frames=report_frames(config), **metrics))
        written &= _write(out / "summary.json",
                          lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
        written &= _write(out / "sweep.png", plots.ranking, rows, config.env_name)
        if written:
            print(f"wrote {out}/")
    if plan.trackers:
        written &= log_sweep(plan.trackers, summary, {"frames": report_frames(config),
                                                      **metrics}, out, _logged_files(out))
    return 0 if written else 1


def run_log(run_dir: Path, trackers: tuple) -> int:
    """`purejaxdqn log DIR`: a finished run's reports, summary and files to the trackers,
    continuing each tracker run DIR/trackers.json records (no report logged twice)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = load_metrics(run_dir)
    if "grid" in summary:
        return 0 if log_sweep(trackers, summary, metrics, run_dir, _logged_files(run_dir)) else 1
    tracking = Tracking(trackers, train_run(
        summary["config"], run_dir, summary["num_seeds"], summary["seed"],
        summary.get("segment_frames"), summary.get("layout")))
    if tracking.done:
        print(f"{run_dir}: already logged to {', '.join(tracking.done)} in full")
    if not tracking.trackers:
        return 0
    tracking.start()
    tracking.end(summary, metrics, _logged_files(run_dir))
    if tracking.say_errors():
        print(f"logged {run_dir} to " + ", ".join(t.key for t in tracking.trackers))
        return 0
    return 1


def run_evaluate(args) -> int:
    returns = evaluate_run(args.run_dir, args.episodes, args.seed)
    for i, value in enumerate(returns):
        print(f"seed {i:3d}: {value:7.1f}")
    print_summary(f"greedy return over {args.episodes} episodes, across {len(returns)} "
                  f"seeds (95% bootstrap CI):", summarize(returns))
    return 0


def run_render(args) -> int:
    from purejaxdqn.render import render_run

    episode_return = render_run(args.run_dir, args.seed_index, args.out, args.seed)
    print(f"wrote {args.out}: a greedy episode with return {episode_return:.0f}")
    return 0


def run_compare(args) -> int:
    if args.across:
        return run_compare_across(args)
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
    return 0


def run_compare_across(args) -> int:
    """`purejaxdqn compare LABEL=DIR ...`: configurations across environments."""
    from purejaxdqn.report import compare_across_tasks, markdown, random_return
    from purejaxdqn.runs import load_config

    finals, configs = {}, {}
    for label, runs in args.labelled.items():
        finals[label] = {env: load_metrics(run_dir)["final_eval_return"]
                         for env, run_dir in runs.items()}
        configs.update({env: load_config(run_dir) for env, run_dir in runs.items()})
    random = {env: random_return(env, config.env_params, args.random_episodes)
              for env, config in sorted(configs.items())}
    given = dict(args.reference)
    reference = {env: given.get(env, max(float(np.mean(f[env])) for f in finals.values()))
                 for env in random}
    for env in random:
        if reference[env] <= random[env]:
            raise ValueError(f"{env}: the reference return {reference[env]:.2f} is not above "
                             f"a random policy's {random[env]:.2f}; give one with "
                             f"--reference {env}=RETURN")
    table = compare_across_tasks(finals, random, reference, args.out, args.bootstrap_reps)
    print(f"{len(finals)} configurations x {len(random)} environments; final greedy returns "
          f"normalised by a random policy's ({args.random_episodes} episodes) and the "
          f"reference ({'given' if given else 'the best configuration'}); stratified "
          f"bootstrap 95% CIs")
    print(markdown(table), end="")
    print(f"wrote {args.out}/ (aggregates.png, profiles.png, improvement.png, table.md, "
          f"table.json)")
    return 0

