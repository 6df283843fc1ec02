"""`purejaxdqn`: train many seeds (and hyperparameter settings) in one program, print a
summary, write the results; evaluate, render and compare saved runs.

This module reads the command line and checks every input and output before anything
heavy is imported or anything compiles: bad input ends with one line `purejaxdqn: error:
...` and exit status 2, and no existing file is touched. What each command then does is in
`commands.py`."""

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from purejaxdqn.config import PRESETS, TRACED_FIELDS, Config, field_docs

if TYPE_CHECKING:
    from purejaxdqn.commands import SweepPlan, TrainPlan


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _env_param(text: str) -> tuple[str, int | float]:
    name, equals, value = text.partition("=")
    try:
        number = float(value)
        return name.strip(), int(number) if number.is_integer() and "." not in value else number
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {text!r}") from None


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `Config` field, e.g. --learning-rate, its help the field's docstring,
    with its default shown."""
    docs = field_docs()
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        # Unset flags stay absent, so that a --preset's values are not overridden.
        default = ",".join(map(str, field.default)) if field.name == "hidden_sizes" else field.default
        kwargs = dict(dest=field.name, default=argparse.SUPPRESS,
                      help=f"{docs[field.name].replace('%', '%%')}"
                           f"{' Traced: sweepable.' if field.name in TRACED_FIELDS else ''}"
                           f" (default: {default})")
        if field.type is bool or field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif field.name == "hidden_sizes":
            parser.add_argument(flag, type=_sizes, **kwargs)
        elif field.name == "env_params":
            kwargs["help"] = kwargs["help"].replace("(default: ())", "(repeat it for several)")
            parser.add_argument("--env-param", type=_env_param, action="append",
                                metavar="NAME=VALUE", **kwargs)
        else:
            parser.add_argument(flag, type=type(field.default), **kwargs)


def config_from_args(args) -> Config:
    """The --preset (or the defaults), with every flag given on the command line applied."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
             if hasattr(args, f.name)}
    return Config.preset(args.preset, **given) if args.preset else Config(**given)


def _device_count(text: str) -> int:
    from purejaxdqn.layout import parse_count

    try:
        return parse_count(text, "--cpu-devices")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--cpu-devices "))


def _num_seeds(text: str) -> int:
    from purejaxdqn.layout import check_num_seeds

    try:
        value = int(text)
    except ValueError:
        value = text  # (the error says what was given)
    try:
        return check_num_seeds(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _grid_entry(text: str) -> tuple[str, list[float]]:
    field, _, values = text.partition("=")
    try:
        return field.strip(), [float(v) for v in values.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIELD=v1,v2,..., got {text!r}")


def _reference_entry(text: str) -> tuple[str, float]:
    env, _, value = text.rpartition("=")
    try:
        return env, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ENV=RETURN, got {text!r}")


def check_compare(args) -> None:
    """compare's runs read and checked, and its mode set: `args.across` (LABEL=DIR runs)
    with `args.labelled` [(label, dir)], or one environment's curves in `args.out`."""
    from purejaxdqn.runs import load_config, load_metrics

    labelled = [(text.partition("=")[0], Path(text.partition("=")[2])) if "=" in text
                else (None, Path(text)) for text in args.run_dirs]
    args.across = any(label for label, _ in labelled)
    if args.across and not all(label for label, _ in labelled):
        raise ValueError("label every run (LABEL=DIR) or none")
    envs = {}
    for label, run_dir in labelled:
        load_metrics(run_dir)
        envs[(label, run_dir)] = load_config(run_dir).env_name
    if not args.across:
        args.run_dirs = [run_dir for _, run_dir in labelled]
        if len(set(envs.values())) > 1:
            raise ValueError(f"runs of {len(set(envs.values()))} environments: compare them "
                             f"across tasks by naming each run's configuration, LABEL=DIR")
        args.out = args.out or Path("compare.png")
        prepare_out_file(args.out)
        return
    for flag in ("random_episodes", "bootstrap_reps"):
        if getattr(args, flag) <= 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be an integer > 0, got "
                             f"{getattr(args, flag)}")
    tasks = {}
    for (label, run_dir), env in envs.items():
        if env in tasks.setdefault(label, {}):
            raise ValueError(f"{label} has two runs of {env}: {tasks[label][env]} and {run_dir}")
        tasks[label][env] = run_dir
    every = set(envs.values())
    for label, runs in tasks.items():
        if set(runs) != every:
            raise ValueError(f"{label} has no run of {', '.join(sorted(every - set(runs)))}: "
                             f"each configuration needs a run of every environment")
    unknown = sorted({env for env, _ in args.reference} - every)
    if unknown:
        raise ValueError(f"--reference {unknown[0]}: no run of that environment "
                         f"(environments: {', '.join(sorted(every))})")
    from purejaxdqn.report import _rliable

    _rliable()
    args.labelled = tasks
    args.out = args.out or Path("compare")
    _mkdir(args.out, "--out")


class Parser(argparse.ArgumentParser):
    """argparse, with a typo an error (no abbreviations) and every error one line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, f"purejaxdqn: error: {message} (see `{self.prog} --help`)\n")


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, but not "(default: None)" where the help says the default."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="purejaxdqn", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    formatter = dict(formatter_class=_DefaultsFormatter)
    train = commands.add_parser(
        "train", help="train seeds in parallel and report final greedy returns", **formatter)
    grid = commands.add_parser(
        "sweep", help="train every setting of a hyperparameter grid x seeds in one program",
        **formatter)
    grid.add_argument("--grid", type=_grid_entry, action="append", required=True,
                      metavar="FIELD=V1,V2,...",
                      help=f"values of one traced hyperparameter; repeat for a grid. "
                           f"Fields: {', '.join(TRACED_FIELDS)}")
    train.add_argument("--csv", action="store_true",
                       help="also write the per-seed curves to DIR/curves.csv")
    train.add_argument("--tensorboard", action="store_true",
                       help="also write TensorBoard event files, one run per seed, to "
                            "DIR/tensorboard (needs tensorboardX)")
    log = commands.add_parser(
        "log", help="log a finished `train --out` or `sweep --out` run to a tracker, or "
                    "complete a tracker run that failed part way", **formatter)
    log.add_argument("run_dir", type=Path, help="a directory written by `train` or `sweep`")
    evaluate = commands.add_parser(
        "evaluate", help="greedy return of the params a `train --out DIR` saved", **formatter)
    evaluate.add_argument("run_dir", type=Path, help="a directory written by `train --out`")
    evaluate.add_argument("--episodes", type=int, default=100, help="episodes per seed")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the episodes")
    compare = commands.add_parser(
        "compare", help="overlay the learning curves of runs of one environment; or, with "
                        "LABEL=DIR runs, compare configurations across environments "
                        "(rliable: IQM, median, mean, optimality gap, performance profiles, "
                        "probability of improvement)", **formatter)
    compare.add_argument("run_dirs", nargs="+", metavar="[LABEL=]DIR",
                         help="directories written by `train --out`; LABEL=DIR names the "
                              "configuration a run belongs to, one run per environment each")
    compare.add_argument("--out", type=Path, default=None,
                         help="the plot to write (one environment; default compare.png), or "
                              "the directory of the figures and table (across environments; "
                              "default compare/)")
    compare.add_argument("--reference", type=_reference_entry, action="append", default=[],
                         metavar="ENV=RETURN",
                         help="the return that normalises to 1 on ENV (default: the best "
                              "configuration's mean final return there); a random policy's "
                              "normalises to 0")
    compare.add_argument("--random-episodes", type=int, default=100,
                         help="episodes of the random policy per environment")
    compare.add_argument("--bootstrap-reps", type=int, default=10_000, metavar="N",
                         help="resamples of the stratified bootstrap (rliable's; the "
                              "probability of improvement takes N / 5)")
    render = commands.add_parser(
        "render", help="draw a greedy episode of a saved agent into a GIF (CartPole-v1 and "
                       "image-observation games)", **formatter)
    render.add_argument("run_dir", type=Path, help="a directory written by `train --out`")
    render.add_argument("--seed-index", type=int, default=0, help="which trained seed")
    render.add_argument("--out", type=Path, default=Path("episode.gif"), help="the GIF to write")
    render.add_argument("--seed", type=int, default=0, help="seed of the episode")
    train.add_argument("--segment-frames", type=int, default=None,
                       help="run in segments of this many frames (whole learning blocks, "
                            "and whole --eval-every reports when evaluating), checkpointing "
                            "to --out after each and showing progress; unset: one program, "
                            "no checkpoints")
    train.add_argument("--resume", action="store_true",
                       help="continue the run whose checkpoint is in --out; its settings "
                            "come from the checkpoint (a flag given must agree with it)")
    for command in (train, grid, log):
        add_tracker_flags(command)
    for command in (train, grid, evaluate, compare, render, log):
        command.add_argument("--no-compile-cache", action="store_true",
                             help="compile afresh instead of reusing programs compiled by "
                                  "earlier runs (env: PUREJAXDQN_COMPILE_CACHE=off)")
    for command in (train, grid):
        command.add_argument("--num-seeds", type=_num_seeds, default=None,
                             help="independent seeds, vmapped (default: 16)")
        command.add_argument("--preset", default=None, metavar="NAME",
                             help="start from a named Config preset (flags override it): "
                                  + ", ".join(PRESETS))
        command.add_argument("--seed", type=int, default=None,
                             help="master seed; seed i uses key i of its split (default: 0)")
        command.add_argument("--out", type=Path, default=None,
                             help="directory for the results (new, or empty)")
        shown = command.add_mutually_exclusive_group()
        shown.add_argument("--quiet", dest="progress", action="store_false", default=None,
                           help="no progress while training (default: a bar with an ETA "
                                "on a terminal, a line per tenth of the run in a log, for "
                                "runs of 100,000 frames or more in all)")
        shown.add_argument("--progress", dest="progress", action="store_true",
                           help="show progress even for a short run")
        command.add_argument("--cpu-devices", type=_device_count, default=None, metavar="N",
                             help="on a CPU, split the seeds over N devices (1: a single "
                                  "device, as before; env: PUREJAXDQN_CPU_DEVICES); default: "
                                  "one per core, as few as give the fewest seeds each")
        add_config_flags(command)
        add_distributed_flags(command)
    return parser


def add_tracker_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "trackers", "log the run to Weights & Biases or MLflow as well (docs/tracking.md)")
    group.add_argument("--wandb", default=None, metavar="PROJECT",
                       help="log to this W&B project (WANDB_MODE=offline: to disk only; "
                            "needs purejaxdqn[wandb])")
    group.add_argument("--wandb-entity", default=None, metavar="ENTITY",
                       help="the W&B entity (default: yours)")
    group.add_argument("--wandb-group", default=None, metavar="GROUP",
                       help="the W&B group (a sweep's default: one named for it)")
    group.add_argument("--mlflow", default=None, metavar="URI",
                       help="log to the MLflow tracking server or store at this URI "
                            "(http://HOST:PORT, file:///PATH, sqlite:///PATH.db; needs "
                            "purejaxdqn[mlflow])")
    group.add_argument("--mlflow-experiment", default="purejaxdqn", metavar="NAME",
                       help="the MLflow experiment")


def trackers_of(args, out: Path | None, csv: bool = False, tensorboard: bool = False,
                resume: bool = False) -> tuple:
    """The trackers the flags name (and, resuming, those the run logged to before: its
    trackers.json), each checked (installed, reachable) before anything compiles."""
    from purejaxdqn import trackers

    chosen = []
    if csv:
        chosen.append(trackers.Csv(out / "curves.csv"))
    if tensorboard:
        chosen.append(trackers.TensorBoard(out / "tensorboard"))
    if getattr(args, "wandb", None):
        chosen.append(trackers.Wandb(args.wandb, args.wandb_entity, args.wandb_group))
    elif getattr(args, "wandb_entity", None) or getattr(args, "wandb_group", None):
        raise ValueError("--wandb-entity and --wandb-group need --wandb PROJECT")
    if getattr(args, "mlflow", None):
        chosen.append(trackers.MLflow(args.mlflow, args.mlflow_experiment))
    recorded = trackers.recorded_trackers(out) if out is not None else []
    for before in recorded:  # a tracker run continues where it was: the same destination
        given = next((t for t in chosen if t.key == before.key), None)
        if given is not None and given.resume_hint() != before.resume_hint():
            raise ValueError(f"--{before.key}: this run already logs to "
                             f"`{before.resume_hint()}` (its trackers.json); continue with "
                             f"those flags, or with none")
    if resume:
        chosen += [t for t in recorded if t.key not in {c.key for c in chosen}]
    for tracker in chosen:
        tracker.check()
    return tuple(chosen)


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


def split_cpu(args) -> None:
    """Before JAX starts: the CPU devices for the command's seeds (the checkpoint's count on
    --resume), unless --cpu-devices or PUREJAXDQN_CPU_DEVICES says (see `layout`)."""
    from purejaxdqn import layout

    num_seeds = args.num_seeds
    if getattr(args, "resume", False) and args.out is not None:
        from purejaxdqn.checkpoints import saved_num_seeds

        num_seeds = saved_num_seeds(args.out)
    layout.use_cpu_devices(args.cpu_devices, num_seeds or DEFAULT_NUM_SEEDS,
                           layout.process_count())


def use_compile_cache(args) -> None:
    """JAX's persistent compilation cache, so that a repeated command loads its programs
    instead of compiling them: in PUREJAXDQN_COMPILE_CACHE, or by default
    $XDG_CACHE_HOME/purejaxdqn (~/.cache/purejaxdqn); off with --no-compile-cache or
    PUREJAXDQN_COMPILE_CACHE=off. A JAX_COMPILATION_CACHE_DIR of the user's is left to JAX."""
    setting = os.environ.get("PUREJAXDQN_COMPILE_CACHE", "")
    if (args.no_compile_cache or setting.lower() in ("0", "off", "no", "false")
            or os.environ.get("JAX_COMPILATION_CACHE_DIR")):
        return
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = Path(setting) if setting else home / "purejaxdqn"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # an unusable cache only costs compile time
    import jax

    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def prepare_out_dir(out: Path, create: bool = True) -> None:
    """--out: a new or empty directory, created now so that nothing trained is lost to
    it later."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; name a new directory")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"--out {out} is not empty; choose a new directory")
    if create:
        _mkdir(out, "--out")


def prepare_out_file(path: Path) -> None:
    """--out of render and compare: a file whose directory exists (it is created) and can
    be written."""
    if path.is_dir():
        raise ValueError(f"--out {path} is a directory; name the file to write")
    _mkdir(path.parent, f"the directory of --out {path}")


def _mkdir(directory: Path, what: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot create {what}: {error.strerror or error}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"{what} ({directory}) is not writable")


def _flag(name: str) -> str:
    return "--env-param" if name == "env_params" else "--" + name.replace("_", "-")


DEFAULT_NUM_SEEDS, DEFAULT_SEED = 16, 0


def _given_fields(args) -> dict:
    """The `Config` fields given on the command line (a --preset's fields included)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
             if hasattr(args, f.name)}
    if args.preset:  # a preset fixes every field
        given = dataclasses.asdict(Config.preset(args.preset, **given))
    return given


def resume_plan(args) -> "TrainPlan":
    """The run's plan from the checkpoint in --out; a flag given on the command line must
    agree with it."""
    from purejaxdqn import checkpoints
    from purejaxdqn.commands import TrainPlan
    from purejaxdqn.runner import segment_plan

    if not args.out.is_dir():
        raise ValueError(f"--resume: no checkpoint in {args.out} (not a directory)")
    _, saved = checkpoints.find_checkpoint(args.out)
    wanted = {**_given_fields(args),
              **{name: getattr(args, name) for name in ("num_seeds", "seed", "segment_frames")
                 if getattr(args, name) is not None}}
    conflicts = checkpoints.differences(checkpoints.run_description(saved), wanted, _flag)
    if conflicts:
        raise ValueError("; ".join(conflicts) + f" (in {args.out}); drop those flags to "
                         "resume the run as it was started")
    config = Config(**saved["config"])
    report_every, _ = segment_plan(config, saved["segment_frames"])
    return TrainPlan(config, saved["num_seeds"], saved["seed"], args.out,
                     saved["segment_frames"], report_every, resume=True,
                     resumed_at_frame=saved["next_report"] * report_every)


def check_train(args) -> "TrainPlan | None":
    """The plan of `purejaxdqn train`, every input and output checked; None when --resume
    finds the run already finished."""
    from purejaxdqn.commands import TrainPlan
    from purejaxdqn.distributed import is_main_process
    from purejaxdqn.envs import resolve_env

    if args.resume:
        if args.out is None:
            raise ValueError("--resume needs --out DIR, the directory of the run")
        plan = resume_plan(args)
    else:
        report_every = None
        config = config_from_args(args)
        if args.segment_frames is not None:
            from purejaxdqn.runner import segment_plan

            if args.out is None:
                raise ValueError("--segment-frames needs --out DIR for its checkpoints")
            report_every, _ = segment_plan(config, args.segment_frames)
        plan = TrainPlan(config, _or(args.num_seeds, DEFAULT_NUM_SEEDS),
                         _or(args.seed, DEFAULT_SEED), args.out, args.segment_frames,
                         report_every)
    resolve_env(plan.config.env_name, overrides=plan.config.env_params)
    for flag in ("csv", "tensorboard"):
        if getattr(args, flag) and args.out is None:
            raise ValueError(f"--{flag} needs --out DIR")
    plan = dataclasses.replace(plan, preset=args.preset, progress=args.progress, trackers=trackers_of(
        args, plan.out, args.csv, args.tensorboard, plan.resume))
    if plan.resume:
        config = plan.config
        if plan.resumed_at_frame == config.num_frames and (plan.out / "summary.json").exists():
            summary = json.loads((plan.out / "summary.json").read_text())
            iqm = summary["final_eval_return"]["iqm"]
            print(f"{plan.out}: this run is finished (all {config.num_frames:,} frames); "
                  f"final greedy IQM {iqm['value']:.1f} [{iqm['ci_low']:.1f}, "
                  f"{iqm['ci_high']:.1f}]; nothing to resume")
            return None
    elif plan.out is not None:  # every process writes checkpoints; only process 0 results
        prepare_out_dir(plan.out, create=bool(plan.segment_frames) or is_main_process())
    return plan


def check_sweep(args) -> "SweepPlan":
    from purejaxdqn.commands import SweepPlan
    from purejaxdqn.distributed import is_main_process
    from purejaxdqn.envs import resolve_env
    from purejaxdqn.sweeps import grid_settings

    plan = SweepPlan(config_from_args(args), dict(args.grid),
                     _or(args.num_seeds, DEFAULT_NUM_SEEDS), _or(args.seed, DEFAULT_SEED),
                     args.out)
    grid_settings(plan.config, plan.grid)
    resolve_env(plan.config.env_name, overrides=plan.config.env_params)
    plan = dataclasses.replace(plan, preset=args.preset, progress=args.progress,
                               trackers=trackers_of(args, plan.out))
    if plan.out is not None:
        prepare_out_dir(plan.out, create=is_main_process())
    return plan


def _or(value, default):
    return default if value is None else value


# What a signal handler reports: the parsed arguments and, once checked, the plan.
_RUNNING: dict = {}


def _on_signal(signum, frame):
    """SIGINT or SIGTERM: say what survives and exit, from the handler itself. (An exception
    raised here could land in a finalizer, where Python ignores it, and the run would go
    on.)"""
    _end_interrupted(_RUNNING.get("args"), _RUNNING.get("plan"), signum)


def _end_interrupted(args, plan, signum: int) -> None:
    """One line on stderr saying what survives, then exit 128 + signal number at once
    (without waiting for a computation still running in XLA's threads). `args`: None if
    the signal came while the command line was read; `plan`: None until it is checked. A
    checkpoint being written is dropped whole (its temporary file removed)."""
    import signal

    name = signal.Signals(signum).name
    if args is None:
        line = f"stopped by {name}"
        segment_frames = checkpointed = None
    else:
        segment_frames = plan.segment_frames if plan else args.segment_frames if (
            args.command == "train") else None
        checkpointed = args.command == "train" and args.out and (segment_frames or args.resume)
    if checkpointed:
        from purejaxdqn import checkpoints
        from purejaxdqn.layout import process_position

        process, processes = process_position()
        latest = checkpoints.after_interruption(args.out, process, processes)
        if latest:
            path, frames = latest
            at = "" if frames is None else f" (frame {frames:,} of each seed)"
            resume = f"purejaxdqn train --out {shlex.quote(str(args.out))} --resume"
            if processes > 1:
                resume += " (in every process, with the same distributed flags)"
            line = (f"stopped by {name}; the last complete checkpoint is {path}{at}; "
                    f"resume with: {resume}")
        else:
            after = f" (after {segment_frames:,} frames)" if segment_frames else ""
            line = (f"stopped by {name} before the first checkpoint{after}; nothing was "
                    f"saved: run the command again")
    elif args is not None and args.command in ("train", "sweep"):
        line = (f"stopped by {name}; nothing was saved (a `train` run with --segment-frames "
                f"K --out DIR checkpoints every K frames and can resume)")
    elif args is not None:
        line = f"stopped by {name}"
    if "purejaxdqn.progress" in sys.modules:  # a progress bar's line ends first
        sys.modules["purejaxdqn.progress"].end_line()
    if "purejaxdqn.trackers" in sys.modules:  # what the trackers hold, flushed (bounded)
        sys.modules["purejaxdqn.trackers"].end_interrupted()
    try:  # the main thread may have been writing to stdout when the signal came
        sys.stdout.flush()
        sys.stderr.flush()
    except RuntimeError:
        pass
    os.write(2, f"purejaxdqn: {line}\n".encode())
    os._exit(128 + signum)


def main(argv=None) -> int:
    import signal

    _RUNNING.clear()
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _RUNNING["args"] = build_parser().parse_args(argv)
        return _run(_RUNNING["args"])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _RUNNING.clear()


def _run(args) -> int:
    try:
        if args.command in ("train", "sweep"):
            join_processes(args)
            split_cpu(args)
        use_compile_cache(args)
        plan = None
        if args.command == "train":
            plan = check_train(args)
            if plan is None:
                return 0
        elif args.command == "sweep":
            plan = check_sweep(args)
        elif args.command == "log":
            from purejaxdqn.runs import check_logged_run

            check_logged_run(args.run_dir)
            plan = trackers_of(args, args.run_dir)
            if not plan:
                raise ValueError("log: name a tracker (--wandb PROJECT or --mlflow URI)")
        elif args.command in ("evaluate", "render"):
            from purejaxdqn.runs import check_run

            check_run(args.run_dir)
        _RUNNING["plan"] = plan
        if args.command == "render":
            prepare_out_file(args.out)
        if args.command == "compare":
            check_compare(args)

        from purejaxdqn import commands

        if args.command in ("train", "sweep"):
            return {"train": commands.run_train, "sweep": commands.run_sweep}[args.command](
                plan)
        if args.command == "log":
            return commands.run_log(args.run_dir, plan)
        return {"evaluate": commands.run_evaluate, "render": commands.run_render,
                "compare": commands.run_compare}[args.command](args)
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


if __name__ == "__main__":
    sys.exit(main())
