"""The trackers (purejaxdqn/trackers.py): the aggregates they log against numpy; a
segmented run stopped part way and resumed, and a sweep, each complete in Weights & Biases
(offline, read back from its run files) and in MLflow (a real tracking server on a free
port, read back through MlflowClient); a tracker failing after training started costs the
run nothing and `purejaxdqn log` completes its record; bad tracker input in one line
before anything compiles."""

import importlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from purejaxdqn import Config, TrainResult, checkpoints, stats, trackers
from purejaxdqn.stats import bootstrap_ci, iqm
from tests.helpers import (Stop, cli_env, free_port, main_in_process, need_extra, start,
                           wandb_run)

FLAGS = ["--num-seeds", "4", "--num-frames", "1600", "--eval-every", "200",
         "--warmup-steps", "100", "--buffer-size", "1000", "--batch-size", "32",
         "--hidden-sizes", "16", "--seed", "3", "--segment-frames", "400"]
FRAMES = list(range(200, 1601, 200))


@pytest.mark.parametrize("per_call", [1024, 8], ids=["one-call", "chunked"])
def test_each_reports_aggregates_against_numpy(per_call, monkeypatch):
    monkeypatch.setattr(stats, "RESAMPLED_PER_CALL", per_call)  # 8: 2 of 6 rows a call
    rng = np.random.default_rng(0)
    metrics = {"eval_return": rng.normal(size=(4, 3)), "loss": rng.normal(size=(4, 3)),
               "final_eval_return": rng.normal(size=4)}
    rows = trackers.aggregates([10, 20, 30], metrics)
    assert [frame for frame, _ in rows] == [10, 20, 30]
    for i, (_, row) in enumerate(rows):
        assert len(row) == 2 * 6  # two metrics x (mean, IQM) x (value, low, high)
        for name in ("eval_return", "loss"):
            seeds = metrics[name][:, i]
            assert row[f"{name}/mean"] == pytest.approx(seeds.mean())
            assert row[f"{name}/iqm"] == pytest.approx(np.sort(seeds)[1:3].mean())  # 4 seeds
            low, high = bootstrap_ci(seeds, iqm)
            assert (row[f"{name}/iqm_ci_low"], row[f"{name}/iqm_ci_high"]) == (low, high)
            assert row[f"{name}/mean_ci_low"] <= row[f"{name}/mean"] <= row[f"{name}/mean_ci_high"]


class Recorder(trackers.Tracker):
    """A tracker of one's own: the protocol's calls, kept."""

    key = "recorder"

    def __init__(self, fail_at: str = ""):
        self.calls, self.fail_at = [], fail_at

    def start(self, run):
        self.calls.append(("start", run.config["num_frames"], run.details["num_seeds"]))

    def log_reports(self, frames, metrics, rows):
        if self.fail_at == "log_reports":
            raise RuntimeError("tracker down")
        assert [frame for frame, _ in rows] == list(frames)
        self.calls.append(("log_reports", list(frames), metrics["eval_return"].tolist(),
                           rows[0][1]["eval_return/mean"]))

    def log_summary(self, summary, metrics, files):
        self.calls.append(("log_summary", summary["final_eval_return"]["mean"]["value"]))

    def finish(self, completed=True):
        self.calls.append(("finish", completed))


def test_a_result_logged_from_python_reaches_every_tracker_and_a_failing_one_costs_nothing(
        tmp_path, capsys):
    config = Config(num_frames=2_000, eval_every=500)
    returns = np.arange(8, dtype=np.float32).reshape(2, 4)
    result = TrainResult({}, {"eval_return": returns, "final_eval_return": returns[:, -1]})
    good, bad = Recorder(), Recorder(fail_at="log_reports")
    assert not trackers.log_result([bad, good], config, result, num_seeds=2, out=tmp_path)
    assert good.calls == [("start", 2_000, 2),
                          ("log_reports", [500, 1000, 1500, 2000], returns.tolist(), 2.0),
                          ("log_summary", 5.0), ("finish", True)]
    assert bad.calls == [("start", 2_000, 2)]  # dropped at its failure, the others went on
    assert capsys.readouterr().err == ("purejaxdqn: error: recorder failed (RuntimeError: "
                                       "tracker down); the run's files are saved\n")


def test_bad_tracker_input_is_one_line_before_compiling(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"

    def refused(flags, message):
        status, _, stderr, compiled = main_in_process(["train", *FLAGS, "--out", out, *flags],
                                                      capsys)
        assert status == 2 and message in stderr, stderr
        assert stderr.count("\n") == 1 and not compiled and not out.exists()

    try:
        importlib.import_module("mlflow")
        refused(["--mlflow", f"http://127.0.0.1:{free_port()}"],
                "--mlflow: cannot reach http://127.0.0.1:")
    except ImportError:
        refused(["--mlflow", "http://127.0.0.1:1"],
                '--mlflow needs mlflow: pip install "purejaxdqn[mlflow]"')
    refused(["--wandb-group", "g"], "--wandb-entity and --wandb-group need --wandb PROJECT")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: online W&B has no credentials
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    try:
        importlib.import_module("wandb")
        refused(["--wandb", "p"], "--wandb: not logged in to Weights & Biases")
    except ImportError:
        pass
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises
    refused(["--wandb", "p"], '--wandb needs wandb: pip install "purejaxdqn[wandb]"')
    status, _, stderr, _ = main_in_process(["log", tmp_path, "--mlflow", "sqlite:///x.db"],
                                           capsys)
    assert status == 2 and "holds no summary.json" in stderr, stderr


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (SQLite store) on a free port, ended by its pid."""
    need_extra("mlflow")
    directory = tmp_path_factory.mktemp("mlflow")
    uri = f"http://127.0.0.1:{free_port()}"
    with open(directory / "server.log", "w") as log:
        server = subprocess.Popen(
            [Path(sys.executable).parent / "mlflow", "server", "--backend-store-uri",
             f"sqlite:///{directory / 'mlflow.db'}", "--artifacts-destination",
             str(directory / "artifacts"), "--host", "127.0.0.1", "--port",
             uri.rpartition(":")[2], "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, (directory / "server.log").read_text()
                assert time.monotonic() < deadline, "no MLflow server within 120 s"
                time.sleep(0.2)
        yield uri
    finally:  # the server and the workers it started: its own process group
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def assert_reports_logged_once(steps_and_values, values, statistic: str):
    """A tracker's (step, value) of a metric's STATISTIC: one per report, each the
    statistic across seeds of that report's `values` (seeds, reports) in metrics.npz."""
    steps = [step for step, _ in steps_and_values]
    assert steps == FRAMES, steps
    values = np.asarray(values, np.float64)
    want = values.mean(0) if statistic == "mean" else iqm(values.T)
    np.testing.assert_allclose([v for _, v in steps_and_values], want, rtol=1e-6)


def mlflow_run(uri: str, experiment: str, run_id: str | None = None):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return client, (runs if run_id is None else [r for r in runs if r.info.run_id == run_id])


@pytest.mark.slow
def test_a_stopped_and_resumed_run_is_complete_in_both_trackers(tmp_path, capsys,
                                                                monkeypatch, mlflow_server):
    need_extra("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "run"
    saved = checkpoints.remove_older

    def stop_after_second(directory, done, *args):  # its checkpoint written, not logged
        saved(directory, done, *args)
        if done == 4:
            raise Stop(done)

    with monkeypatch.context() as patch:
        patch.setattr(checkpoints, "remove_older", stop_after_second)
        with pytest.raises(Stop):
            main_in_process(["train", *FLAGS, "--out", out, "--wandb", "proj",
                             "--wandb-group", "g", "--mlflow", mlflow_server,
                             "--mlflow-experiment", "resumed"], capsys)
    record = json.loads((out / "trackers.json").read_text())
    assert record["wandb"]["logged_until"] == record["mlflow"]["logged_until"] == 400
    client, (stopped,) = mlflow_run(mlflow_server, "resumed")
    assert stopped.info.status == "KILLED"

    # Resumed naming another W&B project or MLflow experiment: refused, nothing compiled.
    for flags, where in ((["--wandb", "other"], "--wandb proj"), (["--mlflow", mlflow_server],
                         f"--mlflow {mlflow_server} --mlflow-experiment resumed")):
        status, _, stderr, compiled = main_in_process(
            ["train", "--out", out, "--resume", *flags], capsys)
        assert status == 2 and not compiled and stderr.count("\n") == 1, stderr
        assert f"this run already logs to `{where}` (its trackers.json)" in stderr, stderr
    # Resumed with the trackers its trackers.json names: the report of the segment whose
    # checkpoint was written but not logged comes first, then the rest, each once.
    status, _, stderr, _ = main_in_process(["train", "--out", out, "--resume"], capsys)
    assert status == 0, stderr
    metrics = np.load(out / "metrics.npz")
    summary = json.loads((out / "summary.json").read_text())
    record = json.loads((out / "trackers.json").read_text())
    assert record["wandb"]["finished"] and record["wandb"]["logged_until"] == 1600

    run = wandb_run(out, record["wandb"]["id"])
    assert run["steps"] == FRAMES and run["group"] == "g"
    for statistic in ("mean", "iqm"):
        assert_reports_logged_once(
            [(step, run["history"][step][f"eval_return/{statistic}"]) for step in FRAMES],
            metrics["eval_return"], statistic)
        for step in FRAMES:
            row = run["history"][step]
            assert (row[f"loss/{statistic}_ci_low"] <= row[f"loss/{statistic}"]
                    <= row[f"loss/{statistic}_ci_high"])
    assert run["config"]["learning_rate"] == summary["config"]["learning_rate"]
    assert run["config"]["num_seeds"] == 4 and run["config"]["version"]
    assert run["summary"]["final_eval_return/iqm/value"] == pytest.approx(
        summary["final_eval_return"]["iqm"]["value"])
    table = run["history"][1600]["final_eval_return_per_seed/path"]
    (table_file,) = out.glob(f"wandb/*-{record['wandb']['id']}*/files/{table}")
    np.testing.assert_allclose([value for _, value in json.loads(table_file.read_text())["data"]],
                               metrics["final_eval_return"], rtol=1e-6)
    assert run["history"][1600]["learning_curve/_type"] == "image-file"

    client, (resumed,) = mlflow_run(mlflow_server, "resumed")
    assert resumed.info.run_id == stopped.info.run_id and resumed.info.status == "FINISHED"
    assert json.loads(resumed.data.params["learning_rate"]) == summary["config"]["learning_rate"]
    for statistic in ("mean", "iqm"):
        history = client.get_metric_history(resumed.info.run_id, f"eval_return/{statistic}")
        assert_reports_logged_once(sorted((m.step, m.value) for m in history),
                                   metrics["eval_return"], statistic)
    assert {a.path for a in client.list_artifacts(resumed.info.run_id)} == {
        "final_eval_return.csv", "learning_curve.png", "metrics.npz", "summary.json"}


@pytest.mark.slow
def test_a_sweep_logs_one_run_per_setting_in_one_group(tmp_path, capsys, monkeypatch,
                                                       mlflow_server):
    need_extra("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "sweep"
    status, _, stderr, _ = main_in_process(
        ["sweep", "--grid", "learning_rate=0.001,0.0003", *FLAGS[:-2], "--num-seeds", "2",
         "--out", out, "--wandb", "proj", "--mlflow", mlflow_server,
         "--mlflow-experiment", "swept"], capsys)
    assert status == 0, stderr
    metrics = np.load(out / "metrics.npz")  # (settings, seeds, reports)
    record = json.loads((out / "trackers.json").read_text())
    assert sorted(record) == ["mlflow:0", "mlflow:1", "wandb:0", "wandb:1"]
    groups = set()
    for i, name in enumerate(["learning_rate=0.001", "learning_rate=0.0003"]):
        run = wandb_run(out, record[f"wandb:{i}"]["id"])
        assert run["name"] == name and run["steps"] == FRAMES
        groups.add(run["group"])
        assert_reports_logged_once([(s, run["history"][s]["eval_return/mean"]) for s in FRAMES],
                                   metrics["eval_return"][i], "mean")
    assert len(groups) == 1 and groups.pop().startswith("sweep-CartPole-v1-")
    client, runs = mlflow_run(mlflow_server, "swept")
    assert sorted(r.info.run_name for r in runs) == ["learning_rate=0.0003", "learning_rate=0.001"]
    assert len({r.data.tags["group"] for r in runs}) == 1
    for i in range(2):
        (run,) = [r for r in runs if r.info.run_id == record[f"mlflow:{i}"]["run_id"]]
        history = client.get_metric_history(run.info.run_id, "eval_return/iqm")
        assert_reports_logged_once(sorted((m.step, m.value) for m in history),
                                   metrics["eval_return"][i], "iqm")


@pytest.mark.slow
def test_a_tracker_failing_mid_run_costs_nothing_and_log_completes_it(tmp_path, capsys,
                                                                      monkeypatch):
    """MLflow with a file store, failing at the summary: the run saves its files, says so
    in one line and exits 1; `purejaxdqn log` then completes the same MLflow run."""
    need_extra("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    out, uri = tmp_path / "run", (tmp_path / "mlruns").as_uri()

    def gone(*args):
        raise ConnectionError("tracking server gone\nsecond line")

    with monkeypatch.context() as patch:
        patch.setattr(trackers.MLflow, "log_summary", gone)
        status, _, stderr, _ = main_in_process(["train", *FLAGS, "--out", out, "--mlflow", uri],
                                               capsys)
    assert status == 1
    assert stderr == (f"purejaxdqn: error: mlflow failed (ConnectionError: tracking server "
                      f"gone); the run's files are saved; complete its record with: "
                      f"purejaxdqn log {out} --mlflow {uri} --mlflow-experiment purejaxdqn\n")
    assert {"summary.json", "metrics.npz", "params.npz"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "trackers.json").read_text())["mlflow"]
    assert record["logged_until"] == 1600 and not record["finished"]

    status, stdout, stderr, compiled = main_in_process(
        ["log", out, "--mlflow", uri, "--mlflow-experiment", "purejaxdqn"], capsys)
    assert status == 0 and not compiled, stderr
    client, (run,) = mlflow_run(uri, "purejaxdqn", record["run_id"])
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "eval_return/mean")
    assert_reports_logged_once(sorted((m.step, m.value) for m in history),
                               np.load(out / "metrics.npz")["eval_return"], "mean")
    assert "summary.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
    # Once complete, logging again logs nothing twice.
    status, stdout, _, _ = main_in_process(["log", out, "--mlflow", uri], capsys)
    assert status == 0 and "already" in stdout


@pytest.mark.slow
def test_ctrl_c_keeps_what_the_trackers_were_sent(tmp_path):
    """SIGINT ends the process at once, but first ends the W&B run, whose offline records
    would otherwise be lost with the process: every report trackers.json says was logged
    is in the run's file."""
    need_extra("wandb")
    out = tmp_path / "run"
    process = start(["train", *FLAGS[:-2], "--num-frames", "40000", "--segment-frames",
                     "400", "--out", out, "--wandb", "proj"],
                    cli_env(WANDB_MODE="offline"), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (out / "trackers.json").exists() or json.loads(
                (out / "trackers.json").read_text())["wandb"]["logged_until"] < 800:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "nothing logged within 300 s"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGINT)
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    record = json.loads((out / "trackers.json").read_text())["wandb"]
    assert not record["finished"]
    run = wandb_run(out, record["id"])
    assert run["steps"] == list(range(200, record["logged_until"] + 1, 200))
