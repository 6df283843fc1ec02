"""Compile seconds and frames/s of the tutorial program (no periodic evaluation) under
XLA compiler options and static `Config` changes, each combination and seed count in a
fresh process (XLA's autotuner caches its choices for the life of a process), interleaved.

    python benchmarks/compile_options.py --seeds 64 4096 --options '{}' \\
        '{"xla_gpu_autotune_level": 0}' '{"xla_gpu_enable_triton_gemm": false}'
    python benchmarks/compile_options.py --seeds 1 64 --configs '{}' '{"act_unroll": 4}' \\
        '{"num_envs": 4}'

An option XLA does not know is reported as an error, not a crash. Prints one JSON line
per run and, at the end, a table; `--out FILE` also writes the JSON.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(seeds: int, num_frames: int, options: dict, overrides: dict) -> dict:
    sys.path.insert(0, str(HERE))
    import jax
    from fps import time_program

    from purejaxdqn import Config, make_train

    fn = make_train(Config(**{"num_frames": num_frames, "eval_every": 0, **overrides}))
    result = time_program(fn, seeds, 1, compiler_options=options or None)
    return result | {"device": jax.devices()[0].device_kind,
                     "frames_per_s": seeds * num_frames / result["run_s"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--num-frames", type=int, default=40_000)
    parser.add_argument("--options", nargs="+", default=["{}"],
                        help="JSON objects of XLA options, e.g. '{\"xla_gpu_autotune_level\": 0}'")
    parser.add_argument("--configs", nargs="+", default=["{}"],
                        help="JSON objects of Config fields, e.g. '{\"act_unroll\": 4}'")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return

    rows = []
    runs = [(seeds, json.loads(options), json.loads(overrides)) for seeds in args.seeds
            for overrides in args.configs for options in args.options]
    for seeds, options, overrides in runs:
        done = subprocess.run(
            [sys.executable, __file__, "--child",
             json.dumps([seeds, args.num_frames, options, overrides])],
            capture_output=True, text=True)
        row = {"seeds": seeds, "options": options, "config": overrides}
        if done.returncode:
            row["error"] = done.stderr.strip().splitlines()[-1][-300:]
        else:
            row |= json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print("\n| seeds | config | options | compile s | frames/s |\n|---:|---|---|---:|---:|")
    for row in rows:
        print(f"| {row['seeds']:,} | `{json.dumps(row['config'])}` | "
              f"`{json.dumps(row['options'])}` | "
              + (f"error: {row['error']} | |" if "error" in row else
                 f"{row['compile_s']:.1f} | {row['frames_per_s']:,.0f} |"))


if __name__ == "__main__":
    main()
