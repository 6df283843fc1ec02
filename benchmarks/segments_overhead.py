"""Overhead of the resumable runner (segments, a checkpoint after each, progress-bar
updates) against the single program, both compiled ahead, timed side by side.

    python benchmarks/segments_overhead.py --num-seeds 8 --segment-frames 4000
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn import Config, make_trainer
from purejaxdqn.checkpoints import checkpoint_name, save_checkpoint
from purejaxdqn.runner import segment_plan


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-seeds", type=int, default=8)
    parser.add_argument("--segment-frames", type=int, default=4_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = Config()
    trainer = make_trainer(config)
    hparams = config.hyperparams()
    keys = jax.random.split(jax.random.key(0), args.num_seeds)
    state = jax.jit(jax.vmap(trainer.init, in_axes=(0, None)))(keys, hparams)
    program = jax.jit(jax.vmap(trainer.run_reports, in_axes=(0, None, None)))
    _, k = segment_plan(config, args.segment_frames)
    whole_indices = jnp.arange(config.num_reports)
    whole = program.lower(state, whole_indices, hparams).compile()
    segment = program.lower(state, jnp.arange(k), hparams).compile()

    def run_whole():
        jax.block_until_ready(whole(state, whole_indices, hparams))

    def run_segments(directory: Path):
        s, metrics = state, {}
        for start in range(0, config.num_reports, k):
            s, new = segment(s, jnp.arange(start, start + k), hparams)
            metrics = {n: jnp.concatenate([metrics[n], v], 1) if n in metrics else v
                       for n, v in new.items()}
            save_checkpoint(directory / checkpoint_name(start + k, 0, 1), s, metrics,
                            start + k, {})
            float(np.mean(metrics["eval_return"][:, -1]))  # what the progress bar shows
        jax.block_until_ready(s)

    times = {"single program": [], "segments + checkpoints": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            start = time.perf_counter()
            run_whole()
            times["single program"].append(time.perf_counter() - start)
            start = time.perf_counter()
            run_segments(Path(tmp))
            times["segments + checkpoints"].append(time.perf_counter() - start)
    base = statistics.median(times["single program"])
    print(f"{args.num_seeds} seeds x {config.num_frames:,} frames, segments of "
          f"{args.segment_frames:,} frames ({config.num_frames // args.segment_frames} "
          f"checkpoints); median of {args.repeats}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:24} {median:7.2f} s  ({median / base - 1:+.1%})")


if __name__ == "__main__":
    main()
