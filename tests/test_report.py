"""`purejaxdqn compare LABEL=DIR ...` across environments (purejaxdqn/report.py, rliable):
the normalised scores, the aggregates and the probability of improvement against numpy,
the figures and table written, and bad input in one line."""

import json
import sys

import numpy as np
import pytest
from scipy import stats

from purejaxdqn import Config
from purejaxdqn.report import AGGREGATES, normalised_scores
from tests.helpers import main_in_process, need_extra

# Two configurations' final greedy returns (4 seeds) on two environments.
FINALS = {"a": {"Acrobot-v1": [-90.0, -120.0, -100.0, -300.0],
                "CartPole-v1": [500.0, 420.0, 130.0, 480.0]},
          "b": {"Acrobot-v1": [-150.0, -95.0, -500.0, -110.0],
                "CartPole-v1": [200.0, 260.0, 90.0, 500.0]}}


def write_run(directory, env_name: str, finals) -> None:
    directory.mkdir(parents=True)
    config = Config(env_name=env_name, num_frames=2_000, eval_every=500)
    (directory / "summary.json").write_text(json.dumps(
        {"config": {"env_name": env_name, "num_frames": 2_000, "eval_every": 500},
         "num_seeds": 4, "seed": 0}))
    np.savez(directory / "metrics.npz", frames=np.arange(500, 2_001, 500),
             eval_return=np.zeros((4, 4), np.float32),
             final_eval_return=np.asarray(finals, np.float32))
    assert config.env_name == env_name


def numpy_improvement(x, y) -> float:
    """P(X > Y), ties counting half, averaged over tasks (Mann-Whitney's U statistic)."""
    per_task = [np.mean((x[:, t, None] > y[None, :, t]) + 0.5 * (x[:, t, None] == y[None, :, t]))
                for t in range(x.shape[1])]
    return float(np.mean(per_task))


def test_normalised_scores_are_zero_at_random_and_one_at_the_reference():
    random = {"Acrobot-v1": -500.0, "CartPole-v1": 20.0}
    reference = {"Acrobot-v1": -100.0, "CartPole-v1": 500.0}
    scores = normalised_scores(FINALS, random, reference)
    assert scores["a"].shape == (4, 2)  # seeds x tasks, tasks sorted
    np.testing.assert_allclose(scores["a"][:, 0], (np.array(FINALS["a"]["Acrobot-v1"]) + 500)
                               / 400)
    np.testing.assert_allclose(scores["b"][3, 1], (500 - 20) / 480)
    with pytest.raises(ValueError, match="different seed counts across tasks"):
        normalised_scores({"a": {"Acrobot-v1": [1.0], "CartPole-v1": [1.0, 2.0]}}, random,
                          reference)


def test_configurations_compared_across_environments(tmp_path, capsys):
    need_extra("rliable", "report")
    runs = []
    for label, by_env in FINALS.items():
        for env_name, finals in by_env.items():
            write_run(tmp_path / label / env_name, env_name, finals)
            runs.append(f"{label}={tmp_path / label / env_name}")
    out = tmp_path / "report"
    status, stdout, stderr, _ = main_in_process(
        ["compare", *runs, "--reference", "CartPole-v1=500", "--random-episodes", "20",
         "--bootstrap-reps", "500",
         "--out", out], capsys)
    assert status == 0, stderr
    table = json.loads((out / "table.json").read_text())
    assert table["bootstrap"]["reps"] == 500
    assert table["reference"] == {"Acrobot-v1": -152.5, "CartPole-v1": 500.0}  # best mean: a's
    scores = normalised_scores(FINALS, table["random"], table["reference"])
    flat = {label: s.ravel() for label, s in scores.items()}
    for label in FINALS:
        # (rliable's median is the median of the tasks' mean scores)
        want = {"IQM": stats.trim_mean(flat[label], 0.25),
                "Median": np.median(scores[label].mean(axis=0)),
                "Mean": flat[label].mean(),
                "Optimality gap": np.mean(np.maximum(1 - flat[label], 0))}
        for name in AGGREGATES:
            got = table["aggregates"][label][name]
            assert got["value"] == pytest.approx(want[name]), (label, name)
            assert got["ci_low"] <= got["value"] <= got["ci_high"], (label, name)
    improvement = table["probability_of_improvement"]["a,b"]
    assert improvement["value"] == pytest.approx(numpy_improvement(scores["a"], scores["b"]))
    assert table["probability_of_improvement"]["b,a"]["value"] == pytest.approx(
        1 - improvement["value"])
    for name in ("aggregates.png", "profiles.png", "improvement.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    assert (out / "table.md").read_text() in stdout
    assert "| a > b |" in stdout


def test_bad_comparisons_are_one_line(tmp_path, capsys, monkeypatch):
    write_run(tmp_path / "cartpole", "CartPole-v1", [1.0, 2.0, 3.0, 4.0])
    write_run(tmp_path / "acrobot", "Acrobot-v1", [1.0, 2.0, 3.0, 4.0])
    cases = {
        "two environments, no labels": ([tmp_path / "cartpole", tmp_path / "acrobot"],
                                        "runs of 2 environments: compare them across tasks"),
        "some labelled": ([f"a={tmp_path / 'cartpole'}", tmp_path / "acrobot"],
                          "label every run (LABEL=DIR) or none"),
        "a task missing": ([f"a={tmp_path / 'cartpole'}", f"a={tmp_path / 'acrobot'}",
                            f"b={tmp_path / 'cartpole'}"], "b has no run of Acrobot-v1"),
        "a reference of no run": ([f"a={tmp_path / 'cartpole'}", "--reference", "Pong=1"],
                                  "--reference Pong: no run of that environment"),
        "no resamples": ([f"a={tmp_path / 'cartpole'}", "--bootstrap-reps", "0"],
                         "--bootstrap-reps must be an integer > 0, got 0"),
    }
    for name, (argv, message) in cases.items():
        status, _, stderr, compiled = main_in_process(["compare", *argv, "--out",
                                                       tmp_path / "out"], capsys)
        assert status == 2 and message in stderr and stderr.count("\n") == 1, (name, stderr)
        assert not compiled
    monkeypatch.setitem(sys.modules, "rliable", None)
    status, _, stderr, _ = main_in_process(["compare", f"a={tmp_path / 'cartpole'}"], capsys)
    assert status == 2 and 'needs rliable: pip install "purejaxdqn[report]"' in stderr
