"""Long runs that survive interruption: the training scan in segments of whole reports,
with the full `TrainState` checkpointed after each segment (the files: `checkpoints`).

The segment program (`Trainer.run_reports` over `segment_reports` reports, over the seeds
as `distributed.over_seeds` runs them) is compiled once and called repeatedly, so a run
resumed from a checkpoint takes exactly the steps the uninterrupted run takes, bit for bit.
"""

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp

from purejaxdqn import checkpoints, layout
from purejaxdqn.config import Config
from purejaxdqn.distributed import barrier, over_seeds, seed_keys, seed_sharding
from purejaxdqn.train import TrainResult, make_trainer


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


def train_resumable(config: Config, num_seeds: int, out: Path, segment_frames: int,
                    seed: int = 0, resume: bool = False,
                    on_segment: Callable[[int, dict], None] | None = None,
                    timings: dict | None = None, env=None, env_params=None,
                    network=None, progress=None) -> TrainResult:
    """Train `num_seeds` seeds in segments of `segment_frames`, checkpointing to `out`
    after each; with `resume`, continue from the latest checkpoint there.

    Under `jax.distributed`, every process calls this with the same arguments and writes
    the checkpoint files of its own seeds; a run must be resumed by as many processes.
    `on_segment(frames_done, metrics_so_far)` is called at each segment boundary (the CLI
    logs to its trackers from it); `progress` (a `progress.Progress`), entered once the
    segments are compiled, is updated after it. Returns what `train_seeds` returns, with metrics
    every `segment_plan(config, segment_frames)[0]` frames. If `timings` is a dict, it
    receives `compile_s`, `run_s` (this call's training), `total_run_s` (all calls') and
    `resumed_at_frame`, and `layout_before_resume` where the checkpoint was written on
    another layout (`layout.describe`; each checkpoint records its own). A checkpoint
    resumes on any number of devices: seeds are rows, resharded on load. `env`,
    `env_params` and `network` are `make_train`'s; a run resumes with the same ones.
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
        path, saved = checkpoints.find_checkpoint(directory)
        differences = checkpoints.differences(checkpoints.run_description(saved),
                                              checkpoints.run_description(meta))
        if differences:
            raise ValueError(f"the checkpoint in {directory} is of another run: "
                             + "; ".join(differences))
        elapsed = saved["elapsed_s"]

    start_compile = time.perf_counter()
    trainer = make_trainer(config, env, env_params,
                           report_every=None if config.eval_every else report_every,
                           network=network)
    hparams = config.hyperparams()
    sharding = seed_sharding()
    init = jax.jit(over_seeds(trainer.init, (0, None)), out_shardings=sharding)
    append = jax.jit(lambda a, b: jnp.concatenate([a, b], axis=1), out_shardings=sharding)
    keys, drop_padding = seed_keys(seed, num_seeds)
    state = init(keys, hparams)
    metrics = {}
    if resume:
        state, metrics, next_report = checkpoints.load_checkpoint(path, state, keys.shape[0])
    record = {**meta, "layout": layout.describe(num_seeds)}
    segment = jax.jit(over_seeds(trainer.run_reports, (0, None, None)),
                      donate_argnums=0, out_shardings=sharding).lower(
        state, jnp.arange(segment_reports), hparams).compile()
    final_eval = jax.jit(over_seeds(trainer.final_eval, (0,)), out_shardings=sharding).lower(
        state).compile()
    directory.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    with progress or contextlib.nullcontext():
        for start in range(next_report, num_reports, segment_reports):
            state, new = segment(state, jnp.arange(start, start + segment_reports), hparams)
            metrics = {k: append(metrics[k], v) if k in metrics else v for k, v in new.items()}
            done = start + segment_reports
            jax.block_until_ready(state)
            checkpoints.save_checkpoint(
                directory / checkpoints.checkpoint_name(done, process, processes), state,
                metrics, done, record, elapsed + time.perf_counter() - started)
            barrier(f"checkpoint-{done}")  # every process's file of this segment is written
            checkpoints.remove_older(directory, done)
            if on_segment is not None:
                on_segment(done * report_every, metrics)
            if progress:
                progress.update(done * report_every)

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
