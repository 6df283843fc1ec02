"""The command line end to end on a short run."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.runs import finish


# The CLI, saying on stderr when XLA compiles a program, and when the persistent cache
# supplies one. Single array
# operations (gymnax builds its default params with one `convert_element_type`) are not
# programs. (JAX records a "compile" for a cache hit too: with the cache on, the hits
# tell which were loaded.)
WATCHED_CLI = """
import re, sys
import jax, jax.monitoring
def on_compile(name, *args, fun_name="", **kwargs):
    op = re.fullmatch(r"jit\\((\\w+)\\)", fun_name)
    if (name == "/jax/core/compile/backend_compile_duration"
            and not (op and (hasattr(jax.lax, op[1]) or hasattr(jax.numpy, op[1])))):
        sys.stderr.write(f"XLA compiled {fun_name}\\n")
def on_event(name, **kwargs):
    if name == "/jax/compilation_cache/cache_hits":
        sys.stderr.write("loaded a program from the compilation cache\\n")
jax.monitoring.register_event_duration_secs_listener(on_compile)
jax.monitoring.register_event_listener(on_event)
from purejaxdqn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "purejaxdqn.cli", *args],
                          capture_output=True, text=True, timeout=600)


def main_in_process(capsys, *argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `purejaxdqn ARGV`, run in this process."""
    from purejaxdqn.cli import main

    capsys.readouterr()
    try:
        status = main(list(argv))
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.slow  # a new process, then every command
def test_train_writes_summary_and_files(tmp_path, capsys):
    """`train` as a user runs it, in a new process; then evaluate, render and compare on
    what it wrote, in this one."""
    out = tmp_path / "run"
    done = run_cli("train", "--num-seeds", "3", "--num-frames", "2000", "--eval-every", "500",
                   "--warmup-steps", "200", "--buffer-size", "1000", "--batch-size", "32",
                   "--hidden-sizes", "32", "--seed", "7", "--out", str(out), "--csv",
                   "--tensorboard")
    assert done.returncode == 0, done.stderr
    for word in ("mean", "median", "iqm", "compile", "frames/s"):
        assert word in done.stdout
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

    from tests.tensorboard_reader import read_scalars
    scalars = read_scalars(out / "tensorboard" / "seed_001")
    assert [step for step, _ in scalars["eval_return"]] == [500, 1000, 1500, 2000]
    np.testing.assert_allclose([v for _, v in scalars["eval_return"]],
                               metrics["eval_return"][1], rtol=1e-6)

    # The saved params evaluate again, greedily, to a return per seed.
    status, stdout, stderr = main_in_process(capsys, "evaluate", str(out), "--episodes", "3")
    assert status == 0, stderr
    assert stdout.count("seed ") == 3 and "iqm" in stdout

    status, stdout, stderr = main_in_process(capsys, "render", str(out), "--seed-index", "2",
                                             "--out", str(tmp_path / "ep.gif"))
    assert status == 0, stderr
    steps = int(stdout.split("return ")[-1])  # CartPole: reward 1 per step
    with Image.open(tmp_path / "ep.gif") as gif:  # every step, or every k-th past 150
        assert gif.n_frames == len(range(0, steps, max(1, steps // 150)))
    status, _, stderr = main_in_process(capsys, "render", str(out), "--seed-index", "3")
    assert status == 2 and "--seed-index must be in [0, 3)" in stderr

    status, _, stderr = main_in_process(capsys, "compare", str(out), str(out), "--out",
                                        str(tmp_path / "cmp.png"))
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
    status, _, stderr = main_in_process(capsys, *args)
    assert status == 2 and message in stderr
    assert "Traceback" not in stderr


def test_bad_input_fails_with_one_line_and_keeps_files(tmp_path, capsys):
    status, _, stderr = main_in_process(capsys, "train", "--gamma", "2")
    assert status == 2
    assert stderr.strip() == "purejaxdqn: error: Config.gamma must be in [0, 1], got 2.0"
    (tmp_path / "keep.txt").write_text("earlier work")
    status, _, stderr = main_in_process(capsys, "train", "--out", str(tmp_path))
    assert status == 2 and "is not empty" in stderr
    assert (tmp_path / "keep.txt").read_text() == "earlier work"


@pytest.mark.slow  # three new processes: the cache is across processes
def test_a_repeated_command_loads_its_programs_from_the_cache(tmp_path):
    import os

    env = {**os.environ, "PUREJAXDQN_COMPILE_CACHE": str(tmp_path / "cache")}
    args = ["train", "--num-seeds", "1", "--num-frames", "1000", "--eval-every", "500",
            "--warmup-steps", "100", "--hidden-sizes", "16"]

    def train(*extra):
        return subprocess.Popen([sys.executable, "-c", WATCHED_CLI, *args, *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)

    loaded = "loaded a program from the compilation cache"
    ((status, _, first),) = finish([train()])  # compiles, and fills the cache
    assert status == 0 and "XLA compiled jit(train)" in first and loaded not in first
    assert any((tmp_path / "cache").iterdir())
    (status, _, again), (status_off, _, off) = finish([train(), train("--no-compile-cache")])
    assert status == 0 and status_off == 0, again + off
    assert loaded in again  # the training program comes from the cache
    assert loaded not in off and "XLA compiled jit(train)" in off
