"""Bytes per seed (replay, parameters, optimiser state, environment) of the default config,
and the peak resident memory of real runs at growing seed counts, to find how many seeds
fit in a given amount of RAM.

    python benchmarks/memory.py --seeds 256 1024 4096

Peak memory does not depend on the number of frames (the replay buffer has a fixed
capacity and metrics grow with reports only), so each run is short (400 frames).
"""

import argparse
import json

import jax
import numpy as np

from harness import run_python
from purejaxdqn import Config, make_trainer

PROBE = """
import json, resource, sys
from purejaxdqn import Config, train_seeds
config = Config(num_frames=400, warmup_steps=100, eval_every=0, final_eval_episodes=1)
train_seeds(config, int(sys.argv[1]))
print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def state_bytes_per_seed(config: Config) -> dict:
    trainer = make_trainer(config)
    state = jax.eval_shape(trainer.init, jax.random.key(0), config.hyperparams())

    def nbytes(tree):
        return int(sum(np.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree)))

    return {"replay": nbytes(state.buffer_state), "params": nbytes(state.online_params),
            "target_params": nbytes(state.target_params),
            "optimizer": nbytes(state.opt_state),
            "environment": nbytes((state.env_state, state.obs)), "total": nbytes(state)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--ram-gib", type=float, default=24.0)
    args = parser.parse_args()

    per_seed = state_bytes_per_seed(Config())
    print("training state per seed (bytes):", json.dumps(per_seed))
    rows = []
    for n in args.seeds:
        peak = run_python(["-c", PROBE, n])["peak_rss_bytes"]
        rows.append((n, peak))
        print(f"{n:6d} seeds: peak RSS {peak / 2**30:6.2f} GiB")
    (n0, p0), (n1, p1) = rows[0], rows[-1]
    slope = (p1 - p0) / (n1 - n0)
    fit = int((args.ram_gib * 2**30 - (p0 - slope * n0)) // slope)
    print(f"measured: {slope / 2**20:.2f} MiB per extra seed, {(p0 - slope * n0) / 2**20:.0f} MiB "
          f"fixed; about {fit:,} seeds fit in {args.ram_gib:g} GiB")


if __name__ == "__main__":
    main()
