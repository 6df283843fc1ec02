"""Ours, the reference Python loop and rejax, one after the other in one process tree, with
no periodic evaluation, so the ratios never mix two noisy days: ours on the default
config, and ours on rejax's own configuration (like for like: 4 environments stepped side
by side with one learning step per step of all 4, 64-64 network, L2 loss, a time limit
ending the episode), against rejax.

    pip install -e ".[bench]" && python benchmarks/compare.py [--num-seeds 8]

Each contestant runs in its own subprocess (`--num-frames` frames, 1 seed unless
`--num-seeds`); run time excludes compilation. One difference is left: rejax clips each
gradient element (`optax.clip`), ours clips the global norm, both at 10.
"""

import argparse
import json
from pathlib import Path

from harness import run_python

HERE = Path(__file__).parent
# rejax's DQN as `vs_rejax.py` configures it, in our terms.
REJAX_CONFIG = dict(num_envs=4, train_every=4, hidden_sizes=(64, 64), loss="mse",
                    bootstrap_on_truncation=False)
OURS = """
import json, sys
from purejaxdqn import Config, train_seeds
config = Config(num_frames=int(sys.argv[1]), eval_every=0, **eval(sys.argv[3]))
timings = {}
train_seeds(config, int(sys.argv[2]), timings=timings)
print(json.dumps({**timings, "frames_per_second": int(sys.argv[2]) * config.num_frames / timings["run_s"]}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-frames", type=int, default=40_000)
    parser.add_argument("--num-seeds", type=int, default=1)
    args = parser.parse_args()
    frames, seeds = str(args.num_frames), str(args.num_seeds)

    results = {
        "purejaxdqn": run_python(["-c", OURS, frames, seeds, "{}"]),
        "reference loop": run_python([HERE / "reference_loop.py", "--num-frames", frames]),
        "purejaxdqn, rejax's config": run_python(["-c", OURS, frames, seeds,
                                                  repr(REJAX_CONFIG)]),
        "rejax": run_python([HERE / "vs_rejax.py", "--num-frames", frames, "--num-seeds",
                             seeds]),
    }
    print(f"{args.num_frames:,} frames, no periodic evaluation; reference loop: 1 seed; "
          f"purejaxdqn and rejax: {args.num_seeds} seed(s), vmapped")
    print(f"| {'':27} | frames/s | compile s | purejaxdqn is |")
    print(f"|{'-' * 29}|---------:|----------:|--------------:|")
    for name, r in results.items():
        # Like for like: the default config against the loop, rejax's against rejax.
        like = ("purejaxdqn, rejax's config" if name in ("rejax", "purejaxdqn, rejax's config")
                else "purejaxdqn")
        ours = results[like]["frames_per_second"]
        compile_s = f"{r['compile_s']:.1f}" if "compile_s" in r else "-"
        print(f"| {name:27} | {r['frames_per_second']:8,.0f} | {compile_s:>9} | "
              f"{ours / r['frames_per_second']:12.1f}x |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
