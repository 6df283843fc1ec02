"""Long runs that survive interruption: the training scan in segments of whole reports,
with the full `TrainState` checkpointed after each segment.

The segment program (`Trainer.run_reports` over `segment_reports` reports, over the seeds
as `distributed.over_seeds` runs them) is compiled once and called repeatedly, so a run
resumed from a checkpoint takes exactly the steps the uninterrupted run takes, bit for bit.

Checkpoints are plain `.npz`, one file per process holding that process's seeds (the
shards of the state's leaves and of the metrics so far), named after the report the run
resumes at: `checkpoint-000004.process-0-of-2.npz`. Each file is written to a temporary
name, fsynced and renamed; only once every process has written its file of a segment
(a barrier) does each delete its older one. So a crash, even of one process while the
others go on, always leaves one segment that every process holds whole, and resume takes
the latest such. (orbax-checkpoint would do this too; one `np.savez` per process plus a
barrier is all it needs here, keeps each process's file its own, and is bitwise exact.)
"""

import dataclasses
import json
import os
import re
import time
import zipfile
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn import layout
from purejaxdqn.config import Config
from purejaxdqn.distributed import barrier, over_seeds, seed_keys, seed_sharding
from purejaxdqn.train import TrainResult, make_trainer


def checkpoint_name(next_report: int, process: int, processes: int) -> str:
    return f"checkpoint-{next_report:06d}.process-{process}-of-{processes}.npz"


CHECKPOINT_PATTERN = re.compile(r"checkpoint-(\d+)\.process-(\d+)-of-(\d+)\.npz")


def segment_plan(config: Config, segment_frames: int) -> tuple[int, int]:
    """(report_every, segment_reports): segments are whole learning blocks that divide the
    run, and whole reports when evaluation is periodic; without it (`eval_every=0`) the
    run reports once per segment."""
    blocks = ("a multiple of eval_every" if config.eval_every else
              "a multiple of train_every" if config.num_envs == 1 else
              "a multiple of max(train_every, num_envs)")
    unit = config.eval_every or config.block_frames
    if (not isinstance(segment_frames, int) or isinstance(segment_frames, bool)
            or segment_frames <= 0 or segment_frames % unit
            or config.num_frames % segment_frames):
        raise ValueError(f"segment_frames must be {blocks} ({unit}) that divides num_frames "
                         f"({config.num_frames}), got {segment_frames!r}")
    report_every = config.eval_every or segment_frames
    return report_every, segment_frames // report_every


def _key_leaf(x) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _local_shards(name: str, x) -> dict:
    """This process's shards of `x`, keyed `name@start` by where they start on axis 0."""
    shards = {}
    for shard in x.addressable_shards:
        shards.setdefault(f"{name}@{shard.index[0].start or 0}", np.asarray(shard.data))
    return {f"{name}#shape": np.array(x.shape), **shards}


def save_checkpoint(path: Path, state, metrics: dict, next_report: int, meta: dict,
                    elapsed_s: float = 0.0) -> None:
    """Write this process's shards of `state` and `metrics` (jax arrays, seeds on axis 0)
    atomically: to a temporary file beside `path`, fsync, then rename over it.
    `elapsed_s`: the run's training time so far, for honest throughput after a resume."""
    leaves = [jax.random.key_data(x) if _key_leaf(x) else x for x in jax.tree.leaves(state)]
    arrays = {}
    for i, x in enumerate(leaves):
        arrays.update(_local_shards(f"state_{i}", x))
    for name, x in metrics.items():
        arrays.update(_local_shards(f"metric_{name}", x))
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, next_report=next_report, meta=json.dumps(meta), elapsed_s=elapsed_s,
                     **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a failed write, or Ctrl-C during it: no half-written file stays
        tmp.unlink(missing_ok=True)
        raise


def read_meta(path: Path) -> dict:
    """The run description saved with a checkpoint, after checking every array in it
    against its CRC: a truncated, empty or altered file is reported as corrupt."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise ValueError(f"{bad} fails its CRC check")
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            elapsed = float(data["elapsed_s"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"the checkpoint {path} is corrupt ({error}); delete it to resume "
                         f"from an earlier one, or start the run again") from None
    return {**meta, "elapsed_s": elapsed}


def load_checkpoint(path: Path, like_state, num_rows: int | None = None):
    """(state, metrics, next_report) from this process's file `path`, as arrays split over
    today's devices like `seed_sharding()`; `like_state` gives the state's tree structure.

    The devices need not be those that wrote it: seeds are independent rows, so each device
    takes its rows wherever they were saved (this process's file first, then the other
    processes' files of the same checkpoint, where they share a directory). `num_rows`:
    the seed axis today (seeds and padding; default: as saved). Padding rows past those
    saved repeat saved ones: they train and are dropped, like any padding."""
    others = sorted(path.parent.glob(path.name.split(".process-")[0] + ".process-*.npz"))
    files = [np.load(p) for p in [path] + [p for p in others if p != path]]
    try:
        def restore(name, sharding):
            saved = tuple(files[0][f"{name}#shape"])
            pieces = [piece for data in files for piece in _pieces(data, name)]
            shape = (num_rows or saved[0], *saved[1:])
            return jax.make_array_from_callback(shape, sharding, lambda index: _read_rows(
                pieces, name, range(shape[0])[index[0]], saved[0]))

        sharding = seed_sharding()
        leaves, treedef = jax.tree.flatten(like_state)
        restored = [restore(f"state_{i}", sharding) for i in range(len(leaves))]
        restored = [jax.random.wrap_key_data(x, impl=jax.random.key_impl(like))
                    if _key_leaf(like) else x for x, like in zip(restored, leaves)]
        names = [k[len("metric_"):-len("#shape")] for k in files[0].files
                 if k.startswith("metric_") and k.endswith("#shape")]
        metrics = {name: restore(f"metric_{name}", sharding) for name in names}
        return jax.tree.unflatten(treedef, restored), metrics, int(files[0]["next_report"])
    finally:
        for data in files:
            data.close()


def _pieces(data, name: str) -> list:
    """[(first row, row count, file, key)] of the rows of `name` saved in the npz `data`,
    read from the array headers (nothing loaded)."""
    pieces = []
    for key in data.files:
        head, _, start = key.rpartition("@")
        if head == name:
            with data.zip.open(key + ".npy") as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                pieces.append((int(start), read(f)[0][0], data, key))
    return pieces


def _read_rows(pieces, name: str, rows: range, saved: int):
    """`rows` of `name` from its saved pieces (row r >= saved is row r % saved)."""
    loaded, out = {}, []
    for first, count, data, key in pieces:  # the common case: one piece holds them all
        if first <= rows.start and rows.stop <= first + count and rows.stop <= saved:
            return data[key][rows.start - first:rows.stop - first]
    for row in rows:
        row %= saved
        piece = next((p for p in pieces if p[0] <= row < p[0] + p[1]), None)
        if piece is None:
            raise ValueError(f"row {row} of the checkpoint's {name} is in no file here: "
                             f"copy every process's file of the checkpoint into the directory")
        first, _, data, key = piece
        if (id(data), key) not in loaded:
            loaded[id(data), key] = data[key]
        out.append(loaded[id(data), key][row - first])
    return np.stack(out)


def saved_num_seeds(directory: Path) -> int | None:
    """The seed count of the newest readable checkpoint in `directory`, read without JAX
    (the CLI splits the CPU for it before JAX starts); None if there is none."""
    found = sorted((int(m.group(1)), p) for p in Path(directory).glob("checkpoint-*")
                   if (m := CHECKPOINT_PATTERN.fullmatch(p.name)))
    for _, path in reversed(found):
        try:
            return int(read_meta(path)["num_seeds"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def own_checkpoints(directory: Path, process: int = 0, processes: int = 1) -> list[Path]:
    """This process's checkpoint files in `directory`, oldest first (no collective)."""
    found = [(m, p) for p in Path(directory).glob(f"checkpoint-*.process-{process}-of-"
                                                  f"{processes}.npz")
             if (m := CHECKPOINT_PATTERN.fullmatch(p.name))]
    return [p for m, p in sorted(found, key=lambda mp: int(mp[0].group(1)))]


def latest_checkpoint(directory: Path) -> int:
    """The latest report index at which every process holds its checkpoint file."""
    processes, process = jax.process_count(), jax.process_index()
    found = [CHECKPOINT_PATTERN.fullmatch(p.name) for p in Path(directory).glob("checkpoint-*")]
    found = [tuple(map(int, m.groups())) for m in found if m]
    # A process holds at most two segments' files (the new one, until every process has
    # written it): the four latest are plenty to find the latest that all hold.
    held = sorted(report for report, p, n in found if (p, n) == (process, processes))[-4:]
    held = np.array(held + [-1] * (4 - len(held)))
    if processes > 1:
        from jax.experimental import multihost_utils

        held = multihost_utils.process_allgather(held)  # (processes, 4)
    common = set.intersection(*(set(row) for row in np.atleast_2d(held))) - {-1}
    if not common:
        counts = sorted({n for _, _, n in found})
        if counts and processes not in counts:
            raise ValueError(
                f"the checkpoint in {directory} was written by {counts[-1]} process(es); "
                f"resume it with {counts[-1]}, not {processes}")
        raise ValueError(f"--resume: no checkpoint in {directory}"
                         + (" that every process holds" if processes > 1 else ""))
    return int(max(common))


def _remove_older(directory: Path, next_report: int) -> None:
    for p in own_checkpoints(directory, jax.process_index(), jax.process_count()):
        if p.name != checkpoint_name(next_report, jax.process_index(), jax.process_count()):
            p.unlink()


def meta_differences(saved: dict, meta: dict, prefix: str = "") -> list[str]:
    """`field: value differs from the checkpoint's value`, for each field that differs."""
    lines = []
    for name in sorted(set(saved) | set(meta)):
        a, b = meta.get(name), saved.get(name)
        if isinstance(a, dict) and isinstance(b, dict):
            lines += meta_differences(b, a, f"{prefix}{name}.")
        elif a != b:
            lines.append(f"{prefix}{name} {a!r} differs from the checkpoint's {b!r}")
    return lines


def find_checkpoint(directory: Path) -> tuple[Path, dict]:
    """This process's file of the latest checkpoint in `directory` and its run description
    (config, num_seeds, seed, segment_frames, next_report, elapsed_s), checked for
    corruption; without compiling anything (across processes, one small gather)."""
    directory = Path(directory)
    next_report = latest_checkpoint(directory)
    path = directory / checkpoint_name(next_report, jax.process_index(), jax.process_count())
    return path, {**read_meta(path), "next_report": next_report}


def train_resumable(config: Config, num_seeds: int, out: Path, segment_frames: int,
                    seed: int = 0, resume: bool = False,
                    on_segment: Callable[[int, dict], None] | None = None,
                    timings: dict | None = None) -> TrainResult:
    """Train `num_seeds` seeds in segments of `segment_frames`, checkpointing to `out`
    after each; with `resume`, continue from the latest checkpoint there.

    Under `jax.distributed`, every process calls this with the same arguments and writes
    the checkpoint files of its own seeds; a run must be resumed by as many processes.
    `on_segment(frames_done, metrics_so_far)` is called at each segment boundary (the CLI
    feeds its progress bar from it). Returns what `train_seeds` returns, with metrics
    every `segment_plan(config, segment_frames)[0]` frames. If `timings` is a dict, it
    receives `compile_s`, `run_s` (this call's training), `total_run_s` (all calls') and
    `resumed_at_frame`, and `layout_before_resume` where the checkpoint was written on
    another layout (`layout.describe`; each checkpoint records its own). A checkpoint
    resumes on any number of devices: seeds are rows, resharded on load.
    """
    report_every, segment_reports = segment_plan(config, segment_frames)
    layout.split_for(num_seeds)
    num_reports = config.num_frames // report_every
    directory = Path(out)
    meta = {"config": dataclasses.asdict(config), "num_seeds": num_seeds, "seed": seed,
            "segment_frames": segment_frames}
    meta = json.loads(json.dumps(meta))  # tuples -> lists, as they come back from disk
    processes, process = jax.process_count(), jax.process_index()
    next_report, elapsed = 0, 0.0
    if resume:  # checked before anything compiles
        path, saved = find_checkpoint(directory)
        differences = meta_differences({k: saved[k] for k in meta}, meta)
        if differences:
            raise ValueError(f"the checkpoint in {directory} is of another run: "
                             + "; ".join(differences))
        elapsed = saved["elapsed_s"]

    start_compile = time.perf_counter()
    trainer = make_trainer(config, report_every=None if config.eval_every else report_every)
    hparams = config.hyperparams()
    sharding = seed_sharding()
    init = jax.jit(over_seeds(trainer.init, (0, None)), out_shardings=sharding)
    append = jax.jit(lambda a, b: jnp.concatenate([a, b], axis=1), out_shardings=sharding)
    keys, drop_padding = seed_keys(seed, num_seeds)
    state = init(keys, hparams)
    metrics = {}
    if resume:
        state, metrics, next_report = load_checkpoint(path, state, keys.shape[0])
    record = {**meta, "layout": layout.describe(num_seeds)}
    segment = jax.jit(over_seeds(trainer.run_reports, (0, None, None)),
                      donate_argnums=0, out_shardings=sharding).lower(
        state, jnp.arange(segment_reports), hparams).compile()
    final_eval = jax.jit(over_seeds(trainer.final_eval, (0,)), out_shardings=sharding).lower(
        state).compile()
    directory.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    for start in range(next_report, num_reports, segment_reports):
        state, new = segment(state, jnp.arange(start, start + segment_reports), hparams)
        metrics = {k: append(metrics[k], v) if k in metrics else v for k, v in new.items()}
        done = start + segment_reports
        jax.block_until_ready(state)
        save_checkpoint(directory / checkpoint_name(done, process, processes), state,
                        metrics, done, record, elapsed + time.perf_counter() - started)
        barrier(f"checkpoint-{done}")  # every process's file of this segment is written
        _remove_older(directory, done)
        if on_segment is not None:
            on_segment(done * report_every, metrics)

    state, final_return = final_eval(state)
    metrics = {**metrics, "final_eval_return": jax.block_until_ready(final_return)}
    if timings is not None:
        run_s = time.perf_counter() - started
        timings.update(compile_s=started - start_compile, run_s=run_s,
                       total_run_s=elapsed + run_s,
                       resumed_at_frame=next_report * report_every)
        if resume and saved.get("layout") != record["layout"]:
            timings["layout_before_resume"] = saved.get("layout")
    return drop_padding(TrainResult(state.online_params, metrics))
