"""Long runs that survive interruption: the training scan in segments of whole reports,
with the full `TrainState` checkpointed after each segment.

The segment program (`Trainer.run_reports` over `segment_reports` reports, vmapped over
seeds) is compiled once and called repeatedly, so a run resumed from a checkpoint takes
exactly the steps the uninterrupted run takes, bit for bit.

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

from purejaxdqn.config import Config
from purejaxdqn.distributed import barrier, check_num_seeds, seed_keys, seed_sharding
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
    with open(tmp, "wb") as f:
        np.savez(f, next_report=next_report, meta=json.dumps(meta), elapsed_s=elapsed_s,
                 **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


def load_checkpoint(path: Path, like_state):
    """(state, metrics, next_report) from this process's file `path`, as arrays split over
    the devices like `seed_sharding()`; `like_state` gives the state's tree structure."""
    with np.load(path) as data:
        def restore(name, sharding):
            shape = tuple(data[f"{name}#shape"])
            return jax.make_array_from_callback(
                shape, sharding, lambda index: data[f"{name}@{index[0].start or 0}"])

        sharding = seed_sharding()
        leaves, treedef = jax.tree.flatten(like_state)
        restored = [restore(f"state_{i}", sharding) for i in range(len(leaves))]
        restored = [jax.random.wrap_key_data(x, impl=jax.random.key_impl(like))
                    if _key_leaf(like) else x for x, like in zip(restored, leaves)]
        names = [k[len("metric_"):-len("#shape")] for k in data.files
                 if k.startswith("metric_") and k.endswith("#shape")]
        metrics = {name: restore(f"metric_{name}", sharding) for name in names}
        return jax.tree.unflatten(treedef, restored), metrics, int(data["next_report"])


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
    processes, process = jax.process_count(), jax.process_index()
    for p in Path(directory).glob(f"checkpoint-*.process-{process}-of-{processes}.npz"):
        match = CHECKPOINT_PATTERN.fullmatch(p.name)
        if match and int(match.group(1)) != next_report:
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
    `resumed_at_frame`.
    """
    check_num_seeds(num_seeds)
    report_every, segment_reports = segment_plan(config, segment_frames)
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
    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None)), out_shardings=sharding)
    append = jax.jit(lambda a, b: jnp.concatenate([a, b], axis=1), out_shardings=sharding)
    keys, drop_padding = seed_keys(seed, num_seeds)
    state = init(keys, hparams)
    metrics = {}
    if resume:
        state, metrics, next_report = load_checkpoint(path, state)
    segment = jax.jit(jax.vmap(trainer.run_reports, in_axes=(0, None, None)),
                      donate_argnums=0, out_shardings=sharding).lower(
        state, jnp.arange(segment_reports), hparams).compile()
    final_eval = jax.jit(jax.vmap(trainer.final_eval), out_shardings=sharding).lower(
        state).compile()
    directory.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    for start in range(next_report, num_reports, segment_reports):
        state, new = segment(state, jnp.arange(start, start + segment_reports), hparams)
        metrics = {k: append(metrics[k], v) if k in metrics else v for k, v in new.items()}
        done = start + segment_reports
        jax.block_until_ready(state)
        save_checkpoint(directory / checkpoint_name(done, process, processes), state,
                        metrics, done, meta, elapsed + time.perf_counter() - started)
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
    return drop_padding(TrainResult(state.online_params, metrics))
