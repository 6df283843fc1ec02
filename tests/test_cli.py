"""The command line end to end on a short run."""

import json
import subprocess
import sys

import numpy as np


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "purejaxdqn.cli", *args],
                          capture_output=True, text=True, timeout=600)


def test_train_writes_summary_and_files(tmp_path):
    out = tmp_path / "run"
    done = run_cli("train", "--num-seeds", "3", "--num-frames", "2000", "--eval-every", "500",
                   "--warmup-steps", "200", "--buffer-size", "1000", "--batch-size", "32",
                   "--hidden-sizes", "32", "--seed", "7", "--out", str(out))
    assert done.returncode == 0, done.stderr
    for word in ("mean", "median", "iqm", "compile", "frames/s"):
        assert word in done.stdout
    assert {p.name for p in out.iterdir()} == {
        "metrics.npz", "summary.json", "params.npz", "learning_curve.png"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_seeds"] == 3 and summary["config"]["hidden_sizes"] == [32]
    metrics = np.load(out / "metrics.npz")
    assert metrics["eval_return"].shape == (3, 4)
    np.testing.assert_array_equal(metrics["frames"], [500, 1000, 1500, 2000])
    assert summary["final_eval_return"]["mean"]["value"] == np.mean(
        metrics["final_eval_return"].astype(np.float64))
    params = np.load(out / "params.npz")
    assert params["mlp/~/linear_1/w"].shape == (3, 32, 2)
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_fails_with_one_line_and_keeps_files(tmp_path):
    done = run_cli("train", "--gamma", "2")
    assert done.returncode == 2
    assert done.stderr.strip() == "purejaxdqn: error: Config.gamma must be in [0, 1], got 2.0"
    (tmp_path / "keep.txt").write_text("earlier work")
    done = run_cli("train", "--out", str(tmp_path))
    assert done.returncode == 2 and "is not empty" in done.stderr
    assert (tmp_path / "keep.txt").read_text() == "earlier work"
