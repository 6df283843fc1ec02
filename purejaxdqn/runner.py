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


def segment_reports_for(config: Config, segment_frames: int) -> int:
    """Reports per segment, checked: segments are whole reports that divide the run."""
    if (not isinstance(segment_frames, int) or segment_frames <= 0
            or segment_frames % config.report_every
            or config.num_frames % segment_frames):
        raise ValueError(
            f"segment_frames must be a multiple of eval_every ({config.report_every}) that "
            f"divides num_frames ({config.num_frames}), got {segment_frames!r}")
    return segment_frames // config.report_every


def _key_leaf(x) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _local_shards(name: str, x) -> dict:
    """This process's shards of `x`, keyed `name@start` by where they start on axis 0."""
    shards = {}
    for shard in x.addressable_shards:
        shards.setdefault(f"{name}@{shard.index[0].start or 0}", np.asarray(shard.data))
    return {f"{name}#shape": np.array(x.shape), **shards}


def save_checkpoint(path: Path, state, metrics: dict, next_report: int, meta: dict) -> None:
    """Write this process's shards of `state` and `metrics` (jax arrays, seeds on axis 0)
    atomically: to a temporary file beside `path`, fsync, then rename over it."""
    leaves = [jax.random.key_data(x) if _key_leaf(x) else x for x in jax.tree.leaves(state)]
    arrays = {}
    for i, x in enumerate(leaves):
        arrays.update(_local_shards(f"state_{i}", x))
    for name, x in metrics.items():
        arrays.update(_local_shards(f"metric_{name}", x))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, next_report=next_report, meta=json.dumps(meta), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_meta(path: Path) -> dict:
    with np.load(path) as data:
        return json.loads(str(data["meta"]))


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


def latest_checkpoint(directory: Path, num_reports: int) -> int:
    """The latest report index at which every process holds its checkpoint file."""
    processes, process = jax.process_count(), jax.process_index()
    found = [CHECKPOINT_PATTERN.fullmatch(p.name) for p in Path(directory).glob("checkpoint-*")]
    found = [tuple(map(int, m.groups())) for m in found if m]
    held = np.zeros(num_reports + 1, bool)
    for report, p, n in found:
        if (p, n) == (process, processes) and report <= num_reports:
            held[report] = True
    counts = sorted({n for _, _, n in found})
    if processes > 1:
        from jax.experimental import multihost_utils

        held = np.all(multihost_utils.process_allgather(held), axis=0)
    if not held.any():
        if counts and processes not in counts:
            raise ValueError(
                f"the checkpoint in {directory} was written by {counts[-1]} process(es); "
                f"resume it with {counts[-1]}, not {processes}")
        raise ValueError(f"--resume: no checkpoint in {directory}"
                         + (" that every process holds" if processes > 1 else ""))
    return int(np.flatnonzero(held)[-1])


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


def train_resumable(config: Config, num_seeds: int, out: Path, segment_frames: int,
                    seed: int = 0, resume: bool = False,
                    on_segment: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train `num_seeds` seeds in segments of `segment_frames`, checkpointing to `out`
    after each; with `resume`, continue from the latest checkpoint there.

    Under `jax.distributed`, every process calls this with the same arguments and writes
    the checkpoint files of its own seeds; a run must be resumed by as many processes.
    `on_segment(frames_done, metrics_so_far)` is called at each segment boundary (the CLI
    feeds its progress bar from it). Returns what `train_seeds` returns.
    """
    check_num_seeds(num_seeds)
    segment_reports = segment_reports_for(config, segment_frames)
    directory = Path(out)
    meta = {"config": dataclasses.asdict(config), "num_seeds": num_seeds, "seed": seed,
            "segment_frames": segment_frames}
    meta = json.loads(json.dumps(meta))  # tuples -> lists, as they come back from disk
    processes, process = jax.process_count(), jax.process_index()
    next_report = 0
    if resume:  # checked before anything compiles
        next_report = latest_checkpoint(directory, config.num_reports)
        path = directory / checkpoint_name(next_report, process, processes)
        differences = meta_differences(read_meta(path), meta)
        if differences:
            raise ValueError(f"the checkpoint in {directory} is of another run: "
                             + "; ".join(differences))

    trainer = make_trainer(config)
    hparams = config.hyperparams()
    sharding = seed_sharding()
    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None)), out_shardings=sharding)
    segment = jax.jit(jax.vmap(trainer.run_reports, in_axes=(0, None, None)),
                      donate_argnums=0, out_shardings=sharding)
    final_eval = jax.jit(jax.vmap(trainer.final_eval), out_shardings=sharding)
    append = jax.jit(lambda a, b: jnp.concatenate([a, b], axis=1), out_shardings=sharding)

    keys, drop_padding = seed_keys(seed, num_seeds)
    state = init(keys, hparams)
    metrics = {}
    if resume:
        state, metrics, next_report = load_checkpoint(path, state)
    directory.mkdir(parents=True, exist_ok=True)

    for start in range(next_report, config.num_reports, segment_reports):
        indices = jnp.arange(start, start + segment_reports)
        state, new = segment(state, indices, hparams)
        metrics = {k: append(metrics[k], v) if k in metrics else v for k, v in new.items()}
        done = start + segment_reports
        save_checkpoint(directory / checkpoint_name(done, process, processes), state,
                        metrics, done, meta)
        barrier(f"checkpoint-{done}")  # every process's file of this segment is written
        _remove_older(directory, done)
        if on_segment is not None:
            on_segment(done * config.report_every, metrics)

    state, final_return = final_eval(state)
    metrics = {**metrics, "final_eval_return": final_return}
    return drop_padding(TrainResult(state.online_params, metrics))
