"""Ours, the reference Python loop and rejax, one after the other in one process tree, on
the default config with no periodic evaluation, so the ratios never mix two noisy days.

    pip install -e ".[bench]" && python benchmarks/compare.py

Each contestant runs in its own subprocess (`--num-frames` frames, 1 seed unless
`--num-seeds`); run time excludes compilation for all three.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
OURS = """
import json, sys
from purejaxdqn import Config, train_seeds
config = Config(num_frames=int(sys.argv[1]), eval_every=0)
timings = {}
train_seeds(config, int(sys.argv[2]), timings=timings)
print(json.dumps({**timings, "frames_per_second": int(sys.argv[2]) * config.num_frames / timings["run_s"]}))
"""


def run(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-frames", type=int, default=40_000)
    parser.add_argument("--num-seeds", type=int, default=1)
    args = parser.parse_args()
    frames, seeds = str(args.num_frames), str(args.num_seeds)

    results = {
        "purejaxdqn": run(["-c", OURS, frames, seeds]),
        "reference loop": run([str(HERE / "reference_loop.py"), "--num-frames", frames]),
        "rejax": run([str(HERE / "vs_rejax.py"), "--num-frames", frames, "--num-seeds", seeds]),
    }
    ours = results["purejaxdqn"]["frames_per_second"]
    print(f"{args.num_frames:,} frames, no periodic evaluation; reference loop: 1 seed; "
          f"purejaxdqn and rejax: {args.num_seeds} seed(s), vmapped")
    print(f"| {'':15} | frames/s | compile s | purejaxdqn is |")
    print(f"|{'-' * 17}|---------:|----------:|--------------:|")
    for name, r in results.items():
        compile_s = f"{r['compile_s']:.1f}" if "compile_s" in r else "-"
        print(f"| {name:15} | {r['frames_per_second']:8,.0f} | {compile_s:>9} | "
              f"{ours / r['frames_per_second']:12.1f}x |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
