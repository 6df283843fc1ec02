"""Compile seconds and frames/s of the tutorial program (no periodic evaluation) under
XLA compiler options and static `Config` changes, each combination and seed count in a
fresh process (XLA's autotuner caches its choices for the life of a process), interleaved.

    python benchmarks/investigations/compile_options.py --seeds 64 4096 --options '{}' \\
        '{"xla_gpu_autotune_level": 0}' '{"xla_gpu_enable_triton_gemm": false}'
    python benchmarks/investigations/compile_options.py --seeds 1 64 --configs '{}' '{"act_unroll": 4}' \\
        '{"num_envs": 4}'
    python benchmarks/investigations/compile_options.py --seeds 1 8 --configs '{}' '{"eval_every": 2000}' \
        --baseline /tmp/before      # a checkout of another commit, run beside this one

An option XLA does not know is reported as an error, not a crash. Prints one JSON line
per run and, at the end, a table; `--out FILE` also writes the JSON.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/
from harness import child_env, run_python  # noqa: E402

GPU = Path(__file__).resolve().parents[1] / "gpu.py"


def child(name: str, *args, pythonpath: str | None = None) -> dict:
    """gpu.py's measurement `name`, in a fresh process (see gpu.py's children)."""
    return run_python([GPU, "--child", name, json.dumps(args)],
                      env=child_env(checkout=pythonpath))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--num-frames", type=int, default=40_000)
    parser.add_argument("--options", nargs="+", default=["{}"],
                        help="JSON objects of XLA options, e.g. '{\"xla_gpu_autotune_level\": 0}'")
    parser.add_argument("--configs", nargs="+", default=["{}"],
                        help="JSON objects of Config fields, e.g. '{\"act_unroll\": 4}'")
    parser.add_argument("--baseline", type=Path,
                        help="a checkout of another purejaxdqn commit, run after each run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    codes = {"this": None} | ({"baseline": str(args.baseline.resolve())} if args.baseline
                              else {})
    rows = []
    runs = [(seeds, json.loads(options), json.loads(overrides), code) for seeds in args.seeds
            for overrides in args.configs for options in args.options for code in codes]
    for seeds, options, overrides, code in runs:
        row = {"seeds": seeds, "options": options, "config": overrides, "code": code}
        try:  # gpu.py's fps child, in a fresh process
            row |= child("fps", "purejaxdqn", seeds, args.num_frames, 1, None, options,
                         overrides, pythonpath=codes[code])
            row["frames_per_s"] = seeds * args.num_frames / row["run_s"]
        except SystemExit as failed:
            row["error"] = str(failed).strip().splitlines()[-1][-300:]
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print("\n| seeds | config | options | code | compile s | of which trace + lower | frames/s |\n"
          "|---:|---|---|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['seeds']:,} | `{json.dumps(row['config'])}` | "
              f"`{json.dumps(row['options'])}` | {row['code']} | "
              + (f"error: {row['error']} | | |" if "error" in row else
                 f"{row['compile_s']:.1f} | {row['trace_s']:.2f} + {row['lower_s']:.2f} | "
                 f"{row['frames_per_s']:,.0f} |"))


if __name__ == "__main__":
    main()
