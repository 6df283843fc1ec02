"""The checkpoint file format: what a resumable run saves, how it is found and read back,
and the one check of an `.npz` file for corruption (checkpoints and a run's outputs).

Checkpoints are plain `.npz`, one file per process holding that process's seeds (the
shards of the state's leaves and of the metrics so far), named after the report the run
resumes at: `checkpoint-000004.process-0-of-2.npz`. Each file is written to a temporary
name, fsynced and renamed; only once every process has written its file of a segment (a
barrier, in `runner`) does each delete its older one. So a crash, even of one process
while the others go on, always leaves one segment that every process holds whole, and
resume takes the latest such. (orbax-checkpoint would do this too; one `np.savez` per
process plus a barrier is all it needs here, keeps each process's file its own, and is
bitwise exact.)
"""

import contextlib
import json
import os
import re
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn.distributed import seed_sharding

CHECKPOINT_PATTERN = re.compile(r"checkpoint-(\d+)\.process-(\d+)-of-(\d+)\.npz")


@contextlib.contextmanager
def open_npz(path: Path):
    """The `.npz` file at `path`, open, after checking every array in it against its CRC:
    a truncated, empty or altered file (or one that is no `.npz`) raises a ValueError
    naming it, before anything is read from it."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise ValueError(f"{bad} fails its CRC check")
        data = np.load(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is corrupt or not an .npz file ({error})") from None
    with data:
        yield data


def checkpoint_name(next_report: int, process: int, processes: int) -> str:
    return f"checkpoint-{next_report:06d}.process-{process}-of-{processes}.npz"


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
    except BaseException:  # a failed write: no half-written file stays (a signal: remove_partial)
        tmp.unlink(missing_ok=True)
        raise


def read_meta(path: Path) -> dict:
    """The run description saved with a checkpoint (`open_npz` checks the file first)."""
    try:
        with open_npz(path) as data:
            return {**json.loads(str(data["meta"])), "elapsed_s": float(data["elapsed_s"])}
    except (ValueError, KeyError) as error:
        reason = str(error) if isinstance(error, ValueError) else f"{path} lacks {error}"
        raise ValueError(f"the checkpoint {reason}; delete it to resume from an earlier "
                         f"one, or start the run again") from None


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


def remove_partial(directory: Path, process: int = 0, processes: int = 1) -> None:
    """Remove this process's checkpoint being written (its temporary file), if any: what a
    signal that ends the run leaves of it."""
    for tmp in Path(directory).glob(f"checkpoint-*.process-{process}-of-{processes}.npz.tmp"):
        tmp.unlink(missing_ok=True)


def after_interruption(directory: Path, process: int = 0,
                       processes: int = 1) -> tuple[Path, int | None] | None:
    """What survives in `directory` when a run is stopped: a checkpoint being written is
    dropped whole (`remove_partial`); then (this process's latest complete checkpoint, the
    frame of each seed it holds, or None if its record can't be read), or None if it has
    none."""
    remove_partial(directory, process, processes)
    held = own_checkpoints(directory, process, processes)
    if not held:
        return None
    report = int(CHECKPOINT_PATTERN.fullmatch(held[-1].name).group(1))
    try:
        meta = read_meta(held[-1])
        return held[-1], report * (meta["config"]["eval_every"] or meta["segment_frames"])
    except (ValueError, KeyError, TypeError):
        return held[-1], None


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


def remove_older(directory: Path, next_report: int) -> None:
    for p in own_checkpoints(directory, jax.process_index(), jax.process_count()):
        if p.name != checkpoint_name(next_report, jax.process_index(), jax.process_count()):
            p.unlink()


def run_description(meta: dict) -> dict:
    """A checkpoint's run as one flat dict: every `Config` field, `num_seeds`, `seed` and
    `segment_frames` (`meta` as `read_meta` returns it, or as `train_resumable` saves it)."""
    return {**meta["config"], **{k: meta[k] for k in ("num_seeds", "seed", "segment_frames")}}


def differences(saved: dict, wanted: dict, label=str) -> list[str]:
    """`label(name) value differs from the checkpoint's value` for each name in `wanted`
    whose value is not the one in `saved`: the one check of a resume against the run it
    continues (the CLI labels names as flags, `train_resumable` as they are)."""
    def show(value):
        if not isinstance(value, (list, tuple)):
            return str(value)
        # (name, value) pairs (`Config.env_params`) as name=value
        return ",".join("=".join(map(str, x)) if isinstance(x, (list, tuple)) else str(x)
                        for x in value)

    return [f"{label(name)} {show(value)} differs from the checkpoint's "
            f"{show(saved.get(name))}" for name, value in wanted.items()
            if show(value) != show(saved.get(name))]


def find_checkpoint(directory: Path) -> tuple[Path, dict]:
    """This process's file of the latest checkpoint in `directory` and its run description
    (config, num_seeds, seed, segment_frames, next_report, elapsed_s), checked for
    corruption; without compiling anything (across processes, one small gather)."""
    directory = Path(directory)
    next_report = latest_checkpoint(directory)
    path = directory / checkpoint_name(next_report, jax.process_index(), jax.process_count())
    return path, {**read_meta(path), "next_report": next_report}


