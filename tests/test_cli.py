"""The command line end to end on a short run."""

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import WATCHED_CLI, finish, main_in_process, read_scalars, run_cli, start


@pytest.mark.slow  # a new process, then every command
def test_train_writes_summary_and_files(tmp_path, capsys):
    """`train` as a user runs it, in a new process; then evaluate, render and compare on
    what it wrote, in this one."""
    out = tmp_path / "run"
    status, stdout, stderr = run_cli(
        "train", "--num-seeds", "3", "--num-frames", "2000", "--eval-every", "500",
        "--warmup-steps", "200", "--buffer-size", "1000", "--batch-size", "32",
        "--hidden-sizes", "32", "--seed", "7", "--out", out, "--csv", "--tensorboard")
    assert status == 0, stderr
    for word in ("mean", "median", "iqm", "compile", "frames/s"):
        assert word in stdout
    assert {p.name for p in out.iterdir()} == {
        "metrics.npz", "summary.json", "params.npz", "learning_curve.png", "curves.csv",
        "tensorboard"}
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
    rows = (out / "curves.csv").read_text().splitlines()
    assert rows[0].startswith("seed,frames,") and "eval_return" in rows[0]
    assert len(rows) == 1 + 3 * 4 and rows[5].startswith("1,500,")

    scalars = read_scalars(out / "tensorboard" / "seed_001")
    assert [step for step, _ in scalars["eval_return"]] == [500, 1000, 1500, 2000]
    np.testing.assert_allclose([v for _, v in scalars["eval_return"]],
                               metrics["eval_return"][1], rtol=1e-6)

    # The saved params evaluate again, greedily, to a return per seed.
    status, stdout, stderr, _ = main_in_process(["evaluate", out, "--episodes", "3"], capsys)
    assert status == 0, stderr
    assert stdout.count("seed ") == 3 and "iqm" in stdout

    status, stdout, stderr, _ = main_in_process(
        ["render", out, "--seed-index", "2", "--out", tmp_path / "ep.gif"], capsys)
    assert status == 0, stderr
    steps = int(stdout.split("return ")[-1])  # CartPole: reward 1 per step
    with Image.open(tmp_path / "ep.gif") as gif:  # every step, or every k-th past 150
        assert gif.n_frames == len(range(0, steps, max(1, steps // 150)))
    status, _, stderr, compiled = main_in_process(["render", out, "--seed-index", "3"], capsys)
    assert status == 2 and "--seed-index must be in [0, 3)" in stderr and not compiled

    status, _, stderr, _ = main_in_process(["compare", out, out, "--out", tmp_path / "cmp.png"],
                                           capsys)
    assert status == 0, stderr
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # trains
def test_evaluated_params_reproduce_training_returns(tmp_path):
    """Greedy evaluation of the saved params uses the same network as training did."""
    from purejaxdqn import Config, train_seeds
    from purejaxdqn.commands import write_outputs
    from purejaxdqn.runs import evaluate_run

    config = Config(num_frames=4_000, eval_every=0, final_eval_episodes=3, hidden_sizes=(32,))
    result = train_seeds(config, 2, seed=1)
    write_outputs(tmp_path, config, result.params, {"final_eval_return": np.zeros(2)},
                  {"config": __import__("dataclasses").asdict(config)})
    returns = evaluate_run(tmp_path, episodes=20)
    assert returns.shape == (2,)
    # Different episodes, same policy: the two estimates agree roughly.
    trained = np.asarray(result.metrics["final_eval_return"])
    np.testing.assert_allclose(returns, trained, rtol=0.5)


@pytest.mark.parametrize("args, message", [
    (["evaluate", "/nonexistent/run"], "/nonexistent/run is not a directory"),
    (["evaluate", "."], "holds no summary.json"),
    (["train", "--env-name", "Nope-v0"], "Config.env_name must be one of"),
    (["train", "--hidden-sizes", "a,b"], "expected comma-separated integers"),
])
def test_bad_input_is_one_line(args, message, capsys):
    status, _, stderr, compiled = main_in_process(args, capsys)
    assert status == 2 and message in stderr and not compiled
    assert "Traceback" not in stderr


def test_bad_input_fails_with_one_line_and_keeps_files(tmp_path, capsys):
    status, _, stderr, compiled = main_in_process(["train", "--gamma", "2"], capsys)
    assert status == 2 and not compiled
    assert stderr.strip() == "purejaxdqn: error: Config.gamma must be in [0, 1], got 2.0"
    (tmp_path / "keep.txt").write_text("earlier work")
    status, _, stderr, _ = main_in_process(["train", "--out", tmp_path], capsys)
    assert status == 2 and "is not empty" in stderr
    assert (tmp_path / "keep.txt").read_text() == "earlier work"


@pytest.mark.slow  # three new processes: the cache is across processes
def test_a_repeated_command_loads_its_programs_from_the_cache(tmp_path):
    import os

    env = {**os.environ, "PUREJAXDQN_COMPILE_CACHE": str(tmp_path / "cache")}
    args = ["train", "--num-seeds", "1", "--num-frames", "1000", "--eval-every", "500",
            "--warmup-steps", "100", "--hidden-sizes", "16"]

    def train(*extra):
        return start([*args, *extra], env, program=("-c", WATCHED_CLI))

    loaded = "loaded a program from the compilation cache"
    ((status, _, first),) = finish([train()])  # compiles, and fills the cache
    assert status == 0 and "XLA compiled jit(train)" in first and loaded not in first
    assert any((tmp_path / "cache").iterdir())
    (status, _, again), (status_off, _, off) = finish([train(), train("--no-compile-cache")])
    assert status == 0 and status_off == 0, again + off
    assert loaded in again  # the training program comes from the cache
    assert loaded not in off and "XLA compiled jit(train)" in off
