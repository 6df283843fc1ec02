"""Every bad input ends in one line `purejaxdqn: error: ...` naming the file or field, exit
status 2, before anything compiles, with every existing file untouched; and the edges that
used to lose finished work now keep it. The error cases run in this process through
`cli.main(argv)`, watched for compiles; a new process only where one is the point."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest

from purejaxdqn.cli import main
from tests.helpers import COMPILED, main_in_process

SMALL = ["--num-seeds", "2", "--num-frames", "1600", "--eval-every", "400",
         "--warmup-steps", "100", "--buffer-size", "1000", "--batch-size", "32",
         "--hidden-sizes", "16"]


def test_the_watch_sees_a_compile():
    before = len(COMPILED)
    jax.jit(lambda x: jax.numpy.sin(x) * 2)(1.0)
    assert COMPILED[before:] == ["jit(<lambda>)"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A small segmented run, finished: checkpoint, params, metrics, summary."""
    out = tmp_path_factory.mktemp("runs") / "done"
    compiled_before = len(COMPILED)
    assert main(["train", *SMALL, "--segment-frames", "800", "--out", str(out)]) == 0
    assert len(COMPILED) > compiled_before  # the watch sees the training programs compile
    return out


def checkpoint_of(run: Path) -> Path:
    (path,) = run.glob("checkpoint-*.npz")
    return path


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def flip_a_bit(path: Path) -> None:
    """Flip one bit inside the data of the largest array (not in a zip header)."""
    with zipfile.ZipFile(path) as archive:
        largest = max(archive.infolist(), key=lambda info: info.compress_size)
    data = bytearray(path.read_bytes())
    data[largest.header_offset + 100 + largest.compress_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def unknown_config_key(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    summary["config"]["learning_rat"] = 0.1
    (run / "summary.json").write_text(json.dumps(summary))


CASES = {
    # name: (arguments, with RUN a copy of a finished run, TMP an empty directory and
    #        FILE a file; how to spoil RUN first; what the message says)
    "train --out names a file": (["train", "--out", "FILE"], None, "--out FILE is a file"),
    "sweep --out names a file": (["sweep", "--grid", "tau=0.1", "--out", "FILE"], None,
                                 "--out FILE is a file"),
    "train --out not empty": (["train", "--out", "RUN"], None, "--out RUN is not empty"),
    "truncated checkpoint": (["train", "--out", "RUN", "--resume"],
                             lambda run: truncate(checkpoint_of(run)), "is corrupt"),
    "empty checkpoint": (["train", "--out", "RUN", "--resume"],
                         lambda run: checkpoint_of(run).write_bytes(b""), "is corrupt"),
    "bit-flipped checkpoint": (["train", "--out", "RUN", "--resume"],
                               lambda run: flip_a_bit(checkpoint_of(run)), "is corrupt"),
    "resume with another learning rate": (
        ["train", "--out", "RUN", "--resume", "--learning-rate", "0.001"],
        lambda run: (run / "summary.json").unlink(),
        "--learning-rate 0.001 differs from the checkpoint's 0.0003"),
    "resume with another seed count": (["train", "--out", "RUN", "--resume", "--num-seeds", "4"],
                                       None, "--num-seeds 4 differs from the checkpoint's 2"),
    "resume without a checkpoint": (["train", "--out", "TMP", "--resume"], None,
                                    "no checkpoint in TMP"),
    "resume without --out": (["train", "--resume"], None, "--resume needs --out DIR"),
    "truncated params.npz": (["evaluate", "RUN"], lambda run: truncate(run / "params.npz"),
                             "RUN/params.npz is corrupt"),
    "unknown config key in summary.json": (["evaluate", "RUN"], unknown_config_key,
                                           "RUN/summary.json: unknown config field(s) "
                                           "learning_rat"),
    "summary.json not JSON": (["render", "RUN"],
                              lambda run: (run / "summary.json").write_text("{oops"),
                              "RUN/summary.json is not valid JSON"),
    "render --out names a directory": (["render", "RUN", "--out", "TMP"], None,
                                       "--out TMP is a directory"),
    "render --seed-index out of range": (["render", "RUN", "--seed-index", "2"], None,
                                         "--seed-index must be in [0, 2)"),
    "infinite learning rate": (["train", "--learning-rate", "inf"], None,
                               "Config.learning_rate must be a finite number > 0, got inf"),
    "NaN discount": (["train", "--gamma", "nan"], None, "Config.gamma must be in [0, 1]"),
    "a flag's typo": (["train", "--learning-rat", "0.1"], None,
                      "unrecognized arguments: --learning-rat 0.1"),
    "unknown environment": (["train", "--env-name", "Nope-v0"], None,
                            "Config.env_name must be one of"),
    "continuous actions": (["train", "--env-name", "Pendulum-v1"], None,
                           "DQN needs a discrete action space; Pendulum-v1 has Box"),
    "batch larger than the buffer": (["train", "--batch-size", "512", "--buffer-size", "256"],
                                     None, "Config.batch_size must be <= buffer_size (256)"),
    "negative frame count": (["train", "--num-frames", "-5"], None,
                             "Config.num_frames must be an integer > 0, got -5"),
    "no seeds": (["train", "--num-seeds", "0"], None, "num_seeds must be an integer > 0"),
    "segments that do not fit": (["train", *SMALL, "--segment-frames", "600", "--out", "TMP/x"],
                                 None, "segment_frames must be a multiple of eval_every (400)"),
    "tensorboard without --out": (["train", "--tensorboard"], None, "--tensorboard needs --out"),
    "sweep of a static field": (["sweep", "--grid", "batch_size=32,64"], None,
                                "cannot sweep 'batch_size'"),
    "an environment parameter's typo": (
        ["train", "--env-name", "MemoryChain-bsuite", "--env-param", "memory_lenght=30"], None,
        "Config.env_params: MemoryChain-bsuite's params have no field 'memory_lenght'; did "
        "you mean 'memory_length'?"),
    "an environment parameter without a value": (["train", "--env-param", "memory_length"],
                                                  None, "expected NAME=NUMBER"),
}


def snapshot(directory: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_before_compiling_and_touches_nothing(name, finished_run,
                                                                     tmp_path, capsys):
    args, spoil, message = CASES[name]
    run, empty, file = tmp_path / "run", tmp_path / "empty", tmp_path / "file"
    shutil.copytree(finished_run, run)
    empty.mkdir()
    file.write_text("earlier work")
    if spoil is not None:
        spoil(run)
    paths, before = sorted(tmp_path.rglob("*")), snapshot(tmp_path)

    def fill(text: str) -> str:
        return text.replace("RUN", str(run)).replace("TMP", str(empty)).replace("FILE", str(file))

    status, _, stderr, compiled = main_in_process(map(fill, args), capsys)
    assert status == 2, stderr
    assert stderr.splitlines() == [stderr.strip()] and not compiled, (stderr, compiled)
    assert stderr.startswith("purejaxdqn: error: ") and fill(message) in stderr
    assert sorted(tmp_path.rglob("*")) == paths and snapshot(tmp_path) == before


@pytest.mark.slow  # a new process: the point is what it imports
def test_help_and_argument_errors_load_no_jax():
    probe = ("import sys\nfrom purejaxdqn.cli import main\n"
             "for argv in (['train', '--help'], ['sweep', '--learning-rat', '1']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print('jax' in sys.modules, 'numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.splitlines()[-1] == "False False", done.stderr


@pytest.mark.slow  # trains, renders and compares
def test_outputs_into_an_empty_or_missing_directory_are_written(finished_run, tmp_path,
                                                                capsys):
    (tmp_path / "sweep").mkdir()  # existing and empty: used to lose the whole sweep
    status, _, stderr, _ = main_in_process(["sweep", "--grid", "tau=0.01,0.1", *SMALL,
                                            "--eval-every", "0", "--out", tmp_path / "sweep"],
                                           capsys)
    assert status == 0, stderr
    assert {p.name for p in (tmp_path / "sweep").iterdir()} == {
        "metrics.npz", "summary.json", "sweep.png"}
    status, _, stderr, _ = main_in_process(
        ["render", finished_run, "--out", tmp_path / "new" / "deeper" / "ep.gif"], capsys)
    assert status == 0, stderr
    assert (tmp_path / "new" / "deeper" / "ep.gif").stat().st_size > 0
    status, _, stderr, _ = main_in_process(
        ["compare", finished_run, "--out", tmp_path / "other" / "c.png"], capsys)
    assert status == 0, stderr
    assert (tmp_path / "other" / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_on_a_finished_run_only_reports_it(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    status, stdout, stderr, compiled = main_in_process(["train", "--out", run, "--resume"],
                                                       capsys)
    assert status == 0 and not compiled, (stderr, compiled)
    assert "this run is finished" in stdout and "nothing to resume" in stdout
    assert snapshot(run) == before


def test_written_metrics_match_the_checkpointed_segments(finished_run):
    metrics = np.load(finished_run / "metrics.npz")
    np.testing.assert_array_equal(metrics["frames"], [400, 800, 1200, 1600])
    assert metrics["eval_return"].shape == (2, 4)
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["segment_frames"] == 800 and summary["resumed_at_frame"] == 0
    assert summary["frames_per_second"] == pytest.approx(2 * 1600 / summary["total_run_s"])
