"""Where a run's reports go besides metrics.npz: one small protocol and its backends.

A tracker is told, from the host and never inside the jitted program: `start(run)` before
anything compiles, `log_reports(frames, metrics, rows)` as reports arrive (all at once
after a one-program run, segment by segment in a segmented one; `rows` are the reports'
aggregates across seeds, computed once for every tracker), `log_summary(summary, metrics,
files)` at the end, then `finish()`. `record()` is what it needs to continue the same
tracker run after a resume; `Tracking` keeps it in the output directory's trackers.json
with the last frame each tracker logged, so that no report is logged twice.

Backends: `Csv` (curves.csv) and `TensorBoard` (event files, one run per seed), written
at the end; `Wandb` and `MLflow`, which log each report's aggregates across seeds (mean
and IQM with their 95% bootstrap CIs) at the frame it describes, the config (every
field, with the package's version and commit), the per-seed final returns as a table, the
summary and the plots. The two trackers are extras: `pip install "purejaxdqn[wandb]"`,
`"purejaxdqn[mlflow]"`."""

import copy
import dataclasses
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from purejaxdqn.stats import STATISTICS, bootstrap_ci, summarize

RECORD = "trackers.json"


@dataclasses.dataclass(frozen=True)
class Run:
    """What a tracker is told about a run at its start."""

    config: dict               # every Config field, as dataclasses.asdict gives it
    name: str | None = None    # None: the tracker's own
    group: str | None = None   # a sweep's settings share one
    out: Path | None = None    # the run's output directory, if any
    details: dict = dataclasses.field(default_factory=dict)  # seeds, layout, version, ...
    record: dict = dataclasses.field(default_factory=dict)   # the tracker's, to resume


def provenance() -> dict:
    """The package's version, and its git commit where it runs from a checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], text=True,
                                capture_output=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"version": importlib.metadata.version("purejaxdqn"), "commit": commit}


def per_report(metrics: dict) -> list[str]:
    """The metrics that have a value per seed and report: (seeds, reports) arrays."""
    return [name for name, value in metrics.items() if np.ndim(value) == 2]


def aggregates(frames, metrics: dict) -> list[tuple[int, dict]]:
    """[(frame, {"NAME/mean", "NAME/mean_ci_low", "NAME/mean_ci_high", "NAME/iqm", ...})]
    for each report: every per-report metric's mean and IQM across seeds, each with its
    95% percentile-bootstrap CI (`stats.bootstrap_ci`, as summary.json's), every metric's
    reports resampled in one `bootstrap_ci` call per statistic."""
    names = per_report(metrics)
    rows = [{} for _ in frames]
    if names:
        values = np.stack([np.asarray(metrics[name], np.float64).T for name in names])
        for statistic in ("mean", "iqm"):  # each (metrics, reports)
            value = STATISTICS[statistic](values, axis=-1)
            low, high = bootstrap_ci(values, STATISTICS[statistic])
            for name, *by_report in zip(names, value, low, high):
                for row, v, lo, hi in zip(rows, *by_report):
                    row.update({f"{name}/{statistic}": float(v),
                                f"{name}/{statistic}_ci_low": float(lo),
                                f"{name}/{statistic}_ci_high": float(hi)})
    return [(int(frame), row) for frame, row in zip(frames, rows)]


def flat(tree: dict, prefix: str = "") -> dict:
    """A nested dict as one level, keys joined by '/'."""
    items = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            items.update(flat(value, f"{prefix}{key}/"))
        else:
            items[f"{prefix}{key}"] = value
    return items


class Tracker:
    """The protocol; every method but `start` may be left as it is."""

    key = ""  # its entry in trackers.json

    def check(self) -> None:
        """Raise ValueError (one line) if the tracker cannot be used: run before any
        compile."""

    def start(self, run: Run) -> None:
        raise NotImplementedError

    def log_reports(self, frames: np.ndarray, metrics: dict, rows: list) -> None:
        """New reports only: `metrics` {name: (seeds, len(frames))}, and `rows` their
        `aggregates`: [(frame, {"NAME/mean": ..., ...})]."""

    def log_summary(self, summary: dict, metrics: dict, files: dict) -> None:
        """The end: summary.json's content, every metric (with "frames"), and the files
        written ({name: path})."""

    def finish(self, completed: bool = True) -> None:
        """The end of this tracker's run: completed, or stopped part way."""

    def record(self) -> dict:
        return {}

    def resume_hint(self) -> str:
        """The flags that name this tracker to `purejaxdqn log DIR`."""
        return ""


class Csv(Tracker):
    """curves.csv: one row per (seed, report): seed, frames, then each per-report metric."""

    key = "csv"

    def __init__(self, path: Path):
        self.path = Path(path)

    def start(self, run: Run) -> None:
        pass

    def log_summary(self, summary: dict, metrics: dict, files: dict) -> None:
        import csv

        names = per_report(metrics)
        with open(self.path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["seed", "frames", *names])
            for seed in range(len(metrics[names[0]])):
                for i, frame in enumerate(metrics["frames"]):
                    writer.writerow([seed, int(frame), *(metrics[n][seed, i] for n in names)])


class TensorBoard(Tracker):
    """TensorBoard event files, one run per seed (`directory/seed_000`, ...), each
    per-report metric a scalar against frames."""

    key = "tensorboard"

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def check(self) -> None:
        _needs("tensorboardX", "tensorboard", "--tensorboard")

    def start(self, run: Run) -> None:
        pass

    def log_summary(self, summary: dict, metrics: dict, files: dict) -> None:
        from tensorboardX import SummaryWriter

        names = per_report(metrics)
        for seed in range(len(metrics[names[0]])):
            with SummaryWriter(str(self.directory / f"seed_{seed:03d}")) as writer:
                for name in names:
                    for frame, value in zip(metrics["frames"], metrics[name][seed]):
                        writer.add_scalar(name, float(value), int(frame))


def _needs(module: str, extra: str, flag: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"{flag} needs {module}: pip install \"purejaxdqn[{extra}]\"") from None


def _final_table(metrics: dict) -> list[list]:
    return [[seed, float(value)] for seed, value in enumerate(metrics["final_eval_return"])]


class Wandb(Tracker):
    """Weights & Biases: one W&B run per training run (per setting, in a sweep's group).
    With WANDB_MODE=offline it writes to disk only (`wandb sync` uploads it later); with an
    output directory, its files go there (DIR/wandb)."""

    key = "wandb"

    def __init__(self, project: str, entity: str | None = None, group: str | None = None):
        self.project, self.entity, self.group = project, entity, group
        self.run = None

    def check(self) -> None:
        wandb = _needs("wandb", "wandb", "--wandb")
        if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
            return
        logged_in = wandb.login(prompt=False, verify=False)  # credentials present, or not
        wandb.teardown()  # what the check set up, dropped: start() reads the settings anew
        if not logged_in:
            raise ValueError("--wandb: not logged in to Weights & Biases (run `wandb login`, "
                             "or set WANDB_MODE=offline to log to disk and `wandb sync` later)")
        _reachable(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"), "--wandb")

    def start(self, run: Run) -> None:
        import wandb

        run_id = run.record.get("id")
        self.run = wandb.init(
            project=self.project, entity=self.entity, group=run.group or self.group,
            name=run.name, id=run_id, resume="must" if run_id else None,
            dir=str(run.out) if run.out else None, reinit="create_new",
            config={**run.config, **run.details}, settings=wandb.Settings(quiet=True))

    def log_reports(self, frames, metrics: dict, rows: list) -> None:
        for frame, row in rows:
            self.run.log(row, step=frame)

    def log_summary(self, summary: dict, metrics: dict, files: dict) -> None:
        import wandb

        last = int(metrics["frames"][-1]) if len(metrics["frames"]) else 0
        logged = {"final_eval_return_per_seed": wandb.Table(
            columns=["seed", "final_eval_return"], data=_final_table(metrics))}
        for name, path in files.items():
            if Path(path).suffix == ".png":
                logged[name] = wandb.Image(str(path))
        self.run.log(logged, step=last)
        self.run.summary.update(flat({k: v for k, v in summary.items() if k != "config"}))

    def finish(self, completed: bool = True) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if completed else 1)

    def record(self) -> dict:
        return ({"id": self.run.id, "project": self.project, "entity": self.entity,
                 "group": self.group} if self.run else {})

    def resume_hint(self) -> str:
        return f"--wandb {self.project}" + (f" --wandb-entity {self.entity}"
                                            if self.entity else "")


class MLflow(Tracker):
    """MLflow: a run in `experiment` at `uri` (a tracking server's http(s) address, or a
    local store such as file:///path or sqlite:///path.db): the config as parameters,
    each report's aggregates as metrics by step (the frame), the summary, the per-seed
    final returns, the plots and metrics.npz as artifacts."""

    key = "mlflow"

    def __init__(self, uri: str, experiment: str = "purejaxdqn", group: str | None = None):
        self.uri, self.experiment, self.group = uri, experiment, group
        self.client = self.run_id = None

    def check(self) -> None:
        _needs("mlflow", "mlflow", "--mlflow")
        if self.uri.startswith(("http://", "https://")):
            _reachable(self.uri.rstrip("/") + "/health", "--mlflow")
        elif "://" not in self.uri or self.uri.startswith("file:"):
            # MLflow 3 keeps its file store in maintenance and refuses it unless opted in:
            # naming one is the opt-in.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            self._client().search_experiments(max_results=1)
        except Exception as error:
            raise ValueError(f"--mlflow {self.uri}: {type(error).__name__}: "
                             f"{_first_line(error)}") from None

    def _client(self):
        from mlflow import MlflowClient

        if self.client is None:
            self.client = MlflowClient(tracking_uri=self.uri)
        return self.client

    def start(self, run: Run) -> None:
        from mlflow.entities import Param

        self._client()
        self.run_id = run.record.get("run_id")
        if self.run_id:
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(self.experiment)
        experiment_id = (experiment.experiment_id if experiment else
                         self.client.create_experiment(self.experiment))
        tags = {"group": run.group or self.group} if (run.group or self.group) else {}
        self.run_id = self.client.create_run(experiment_id, run_name=run.name,
                                             tags=tags).info.run_id
        params = {**flat(run.config), **flat(run.details)}
        self.client.log_batch(self.run_id, params=[
            Param(key, json.dumps(value) if not isinstance(value, str) else value)
            for key, value in params.items()])

    def log_reports(self, frames, metrics: dict, rows: list) -> None:
        from mlflow.entities import Metric

        batch = [Metric(key, value, 0, frame) for frame, row in rows
                 for key, value in row.items()]
        for i in range(0, len(batch), 1000):  # MLflow takes at most 1000 metrics a batch
            self.client.log_batch(self.run_id, metrics=batch[i:i + 1000])

    def log_summary(self, summary: dict, metrics: dict, files: dict) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            table = Path(scratch) / "final_eval_return.csv"
            table.write_text("seed,final_eval_return\n" + "".join(
                f"{seed},{value!r}\n" for seed, value in _final_table(metrics)))
            summary_file = Path(scratch) / "summary.json"
            summary_file.write_text(json.dumps(summary, indent=2) + "\n")
            for path in (table, summary_file, *files.values()):
                self.client.log_artifact(self.run_id, str(path))

    def finish(self, completed: bool = True) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "FINISHED" if completed else "KILLED")

    def record(self) -> dict:
        return ({"run_id": self.run_id, "uri": self.uri, "experiment": self.experiment}
                if self.run_id else {})

    def resume_hint(self) -> str:
        return f"--mlflow {self.uri} --mlflow-experiment {self.experiment}"


def _reachable(url: str, flag: str, timeout: float = 10) -> None:
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise ValueError(f"{flag}: cannot reach {url} ({reason})") from None


def recorded_trackers(out: Path) -> list[Tracker]:
    """The W&B and MLflow trackers a run in `out` logged to (its trackers.json), to be
    continued by a resumed run."""
    record = _read_record(out)
    found = []
    if "wandb" in record:
        saved = record["wandb"]
        found.append(Wandb(saved["project"], saved.get("entity"), saved.get("group")))
    if "mlflow" in record:
        saved = record["mlflow"]
        found.append(MLflow(saved["uri"], saved.get("experiment", "purejaxdqn")))
    return found


class Tracking:
    """The trackers of one run, with the failure rules: a tracker that cannot start stops
    the run before it compiles (`start` raises ValueError, one line); one that fails later
    is dropped, the run goes on and saves its files, and `errors` holds one line for it,
    naming the command that completes its record from the output directory. Each
    tracker's record in trackers.json is keyed by its `key` and `suffix` (a sweep's
    setting)."""

    def __init__(self, trackers, run: Run, suffix: str = ""):
        self.run, self.suffix = run, suffix
        saved = _read_record(run.out) if run.out else {}
        self.saved = saved
        self.trackers = [t for t in trackers if not saved.get(self._key(t), {}).get("finished")]
        self.done = [t.key for t in trackers if t not in self.trackers]
        self.logged_until = {self._key(t): saved.get(self._key(t), {}).get("logged_until", -1)
                             for t in self.trackers}
        self.errors: list[str] = []

    def _key(self, tracker) -> str:
        return tracker.key + self.suffix

    def start(self) -> None:
        _RUNNING.append(self)
        for tracker in self.trackers:
            tracker.check()
        for tracker in self.trackers:
            record = self.saved.get(self._key(tracker), {})
            try:
                tracker.start(dataclasses.replace(self.run, record=record))
            except Exception as error:
                raise ValueError(f"{tracker.key}: could not start its run "
                                 f"({type(error).__name__}: {_first_line(error)})") from None
        self._save()

    def _each(self, call) -> None:
        for tracker in list(self.trackers):
            try:
                call(tracker)
            except Exception as error:  # a tracker's failure never costs the run
                self.trackers.remove(tracker)
                hint = tracker.resume_hint()
                where = self.run.out or "DIR"
                self.errors.append(
                    f"purejaxdqn: error: {tracker.key} failed ({type(error).__name__}: "
                    f"{_first_line(error)}); the run's files are saved"
                    + (f"; complete its record with: purejaxdqn log {where} {hint}"
                       if hint else ""))

    def log_reports(self, frames, metrics: dict) -> None:
        frames = np.asarray(frames)
        computed = {}  # the aggregates of each slice of new reports, once for all trackers

        def log(tracker):
            new = frames > self.logged_until[self._key(tracker)]
            if new.any():
                first = int(np.argmax(new))
                reports = {name: np.asarray(metrics[name])[:, first:]
                           for name in per_report(metrics)}
                if first not in computed:
                    computed[first] = aggregates(frames[first:], reports)
                tracker.log_reports(frames[first:], reports, computed[first])
                self.logged_until[self._key(tracker)] = int(frames[-1])
        self._each(log)
        self._save()

    def end(self, summary: dict, metrics: dict, files: dict) -> None:
        """The last reports not yet logged, the summary, and each tracker's finish."""
        self.log_reports(metrics["frames"], metrics)

        def close(tracker):
            tracker.log_summary(summary, metrics, files)
            tracker.finish()
        self._each(close)
        self._save(done=True)
        if self in _RUNNING:
            _RUNNING.remove(self)

    def interrupt(self) -> None:
        """The run stopped part way: each tracker run ends as failed, its record kept."""
        if self in _RUNNING:
            _RUNNING.remove(self)
        self._each(lambda tracker: tracker.finish(completed=False))


    def say_errors(self) -> bool:
        """Each failure in one line on stderr; True if there was none."""
        for line in self.errors:
            print(line, file=sys.stderr)
        return not self.errors

    def _save(self, done: bool = False) -> None:
        if self.run.out is None:
            return
        record = dict(self.saved)
        for tracker in self.trackers:
            if tracker.record():
                record[self._key(tracker)] = {
                    **tracker.record(), "logged_until": self.logged_until[self._key(tracker)],
                    "finished": done}
        if record:
            path = Path(self.run.out) / RECORD
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(record, indent=2) + "\n")
            temporary.replace(path)
        self.saved = record


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0]


def _read_record(out: Path) -> dict:
    path = Path(out) / RECORD
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is unreadable ({error}); remove it to start the trackers' "
                         f"records afresh") from None


def sweep_group(summary: dict, trackers) -> str:
    """A sweep's tracker group: the one it was logged under, one a tracker was given, or
    one named for the sweep."""
    given = [t.group for t in trackers if getattr(t, "group", None)]
    return summary.get("tracker_group") or (given[0] if given else (
        f"sweep-{summary['config']['env_name']}-{time.strftime('%Y%m%d-%H%M%S')}"))


def log_sweep(trackers, summary: dict, metrics: dict, out: Path | None = None,
              files: dict | None = None) -> bool:
    """Each setting of a sweep as its own tracker run, all in `sweep_group`'s group, with
    its reports (`metrics` as a sweep's: (settings, seeds, ...), and "frames") and its
    final returns; `summary` as `purejaxdqn sweep` writes it ("config", "grid",
    "num_seeds", "seed"). True if every tracker logged every setting; each failure is one
    line on stderr."""
    from purejaxdqn.config import Config
    from purejaxdqn.sweeps import grid_settings

    config = Config(**summary["config"])
    group = sweep_group(summary, trackers)
    finals = metrics["final_eval_return"]
    ok = True
    for i, setting in enumerate(grid_settings(config, summary["grid"])):
        name = " ".join(f"{k}={v:g}" for k, v in setting.items())
        tracking = Tracking([copy.copy(t) for t in trackers], Run(
            dataclasses.asdict(dataclasses.replace(config, **setting)), name=name,
            group=group, out=out, details={"num_seeds": summary["num_seeds"],
                                           "seed": summary["seed"], "setting": setting,
                                           **provenance()}), suffix=f":{i}")
        if not tracking.trackers:
            continue
        try:
            tracking.start()
        except ValueError as error:
            print(f"purejaxdqn: error: {error}", file=sys.stderr)
            return False
        tracking.end({"setting": setting, "final_eval_return": summarize(finals[i])},
                     {k: (v if k == "frames" else v[i]) for k, v in metrics.items()},
                     (files or {}) if i == 0 else {})
        ok &= tracking.say_errors()
    return ok


def log_result(trackers, config, result, num_seeds: int, seed: int = 0,
               out: Path | None = None, timings: dict | None = None) -> bool:
    """From Python: a `train_seeds` result (`TrainResult`) to `trackers` (e.g.
    `[Wandb("my-project"), MLflow("http://localhost:5000")]`), as `purejaxdqn train
    --wandb/--mlflow` logs it: the config, each report's aggregates, the final returns
    and their summary. Host-side, after training; `out` keeps trackers.json (to continue
    the tracker runs later). True if every tracker logged everything."""
    from purejaxdqn.train import report_frames

    metrics = {name: np.asarray(value) for name, value in result.metrics.items()}
    tracking = Tracking(trackers, Run(dataclasses.asdict(config), out=out, details={
        "num_seeds": num_seeds, "seed": seed, **provenance()}))
    tracking.start()
    summary = {"final_eval_return": summarize(metrics["final_eval_return"]), **(timings or {})}
    tracking.end(summary, {"frames": report_frames(config), **metrics}, {})
    return tracking.say_errors()


_RUNNING: list[Tracking] = []  # started and not yet ended


def end_interrupted(timeout: float = 20) -> None:
    """On SIGINT or SIGTERM, before the process exits at once: the trackers' runs ended as
    failed, so that what they hold reaches disk or server (W&B keeps an offline run's
    records in memory until its run ends), within `timeout` seconds."""
    import threading

    if _RUNNING:
        ending = threading.Thread(target=lambda: [t.interrupt() for t in list(_RUNNING)],
                                  daemon=True)
        ending.start()
        ending.join(timeout)
