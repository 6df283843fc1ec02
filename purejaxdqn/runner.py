"""Long runs that survive interruption: the training scan in segments of whole reports,
with the full `TrainState` checkpointed after each segment.

The segment program (`Trainer.run_reports` over `segment_reports` reports, vmapped over
seeds) is compiled once and called repeatedly, so a run resumed from a checkpoint takes
exactly the steps the uninterrupted run takes, bit for bit. Checkpoints are plain `.npz`
(the state's leaves in tree order, the metrics so far and the next report index), written
to a temporary file and renamed over the last one, so a crash never leaves a corrupt
checkpoint: it loses at most the segment in progress. (orbax would work too, but one
`np.savez` plus `os.replace` is all this needs, and is bitwise exact.)
"""

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn.config import Config
from purejaxdqn.train import TrainResult, check_num_seeds, make_trainer, seed_keys

CHECKPOINT = "checkpoint.npz"


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


def save_checkpoint(path: Path, state, metrics: dict, next_report: int, meta: dict) -> None:
    """Write atomically: to a temporary file beside `path`, fsync, then rename over it."""
    leaves = [jax.random.key_data(x) if _key_leaf(x) else x for x in jax.tree.leaves(state)]
    arrays = {f"state_{i}": np.asarray(x) for i, x in enumerate(leaves)}
    arrays.update({f"metric_{k}": np.asarray(v) for k, v in metrics.items()})
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, next_report=next_report, meta=json.dumps(meta), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, like_state, meta: dict):
    """(state, metrics, next_report) from `path`; `like_state` gives the tree structure."""
    with np.load(path) as data:
        saved = json.loads(str(data["meta"]))
        if saved != meta:
            raise ValueError(f"the checkpoint in {path.parent} is of another run: {saved} "
                             f"!= {meta}")
        leaves, treedef = jax.tree.flatten(like_state)
        restored = [jax.random.wrap_key_data(data[f"state_{i}"],
                                             impl=jax.random.key_impl(like))
                    if _key_leaf(like) else jnp.asarray(data[f"state_{i}"])
                    for i, like in enumerate(leaves)]
        metrics = {k[len("metric_"):]: data[k] for k in data.files if k.startswith("metric_")}
        return jax.tree.unflatten(treedef, restored), metrics, int(data["next_report"])


def train_resumable(config: Config, num_seeds: int, out: Path, segment_frames: int,
                    seed: int = 0, resume: bool = False,
                    on_segment: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train `num_seeds` seeds in segments of `segment_frames`, checkpointing to
    `out/checkpoint.npz` after each; with `resume`, continue from that checkpoint.

    `on_segment(frames_done, metrics_so_far)` is called at each segment boundary (the CLI
    feeds its progress bar from it). Returns what `train_seeds` returns.
    """
    check_num_seeds(num_seeds)
    segment_reports = segment_reports_for(config, segment_frames)
    path = Path(out) / CHECKPOINT
    if resume and not path.exists():
        raise ValueError(f"--resume: no checkpoint in {out}")
    trainer = make_trainer(config)
    hparams = config.hyperparams()
    meta = {"config": dataclasses.asdict(config), "num_seeds": num_seeds, "seed": seed,
            "segment_frames": segment_frames}
    meta = json.loads(json.dumps(meta))  # tuples -> lists, as they come back from disk

    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None)))
    segment = jax.jit(jax.vmap(trainer.run_reports, in_axes=(0, None, None)),
                      donate_argnums=0)
    final_eval = jax.jit(jax.vmap(trainer.final_eval))

    keys, drop_padding = seed_keys(seed, num_seeds)
    state = init(keys, hparams)
    metrics, next_report = {}, 0
    if resume:
        shardings = jax.tree.map(lambda x: x.sharding, state)
        state, metrics, next_report = load_checkpoint(path, state, meta)
        state = jax.device_put(state, shardings)
    path.parent.mkdir(parents=True, exist_ok=True)

    for start in range(next_report, config.num_reports, segment_reports):
        indices = jnp.arange(start, start + segment_reports)
        state, new = segment(state, indices, hparams)
        metrics = {k: np.concatenate([metrics[k], v], axis=1) if k in metrics else np.asarray(v)
                   for k, v in new.items()}
        save_checkpoint(path, state, metrics, start + segment_reports, meta)
        if on_segment is not None:
            on_segment((start + segment_reports) * config.report_every, metrics)

    state, final_return = final_eval(state)
    metrics = {**metrics, "final_eval_return": np.asarray(final_return)}
    return drop_padding(TrainResult(state.online_params, metrics))
