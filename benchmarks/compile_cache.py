"""What a repeated `purejaxdqn train` pays before training: without the persistent
compilation cache (`--no-compile-cache`), with it empty (first run) and filled (a later
run of the same command), side by side; and the imports every run pays.

    python benchmarks/compile_cache.py
    python benchmarks/compile_cache.py --baseline /tmp/before --repeats 3   # beside another
                                                                           # checkout

compile: the summary's compile time (tracing, lowering, and XLA's compile or the cache's
load); wall: the whole command (imports, compile, the run, the summary, the files).
"""

import argparse
import tempfile
from pathlib import Path

from harness import child_env, run_python, train_cli

CACHE_VARIABLES = ("JAX_COMPILATION_CACHE_DIR", "PUREJAXDQN_COMPILE_CACHE")


def run(extra: list[str], env: dict, out: Path) -> dict:
    summary = train_cli(["--num-seeds", "1", *extra], out, env)
    return {k: summary[k] for k in ("wall_s", "compile_s", "run_s")}


def import_seconds(env: dict) -> float:
    return run_python(["-c", "import purejaxdqn.commands; print('{}')"], env=env)["wall_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path,
                        help="a checkout of another purejaxdqn commit, each run beside this one's")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs without the cache and with it filled (it is emptied once)")
    args = parser.parse_args()
    codes = {"this": None} | ({"baseline": str(args.baseline.resolve())} if args.baseline
                              else {})
    with tempfile.TemporaryDirectory() as tmp:
        runs = ([("no cache", ["--no-compile-cache"])] * args.repeats + [("cache empty", [])]
                + [("cache filled", [])] * args.repeats)
        for i, (label, extra) in enumerate(runs):
            for code, path in codes.items():
                cache = {} if label == "no cache" else {
                    "PUREJAXDQN_COMPILE_CACHE": str(Path(tmp) / f"cache-{code}")}
                env = child_env(checkout=path, drop=CACHE_VARIABLES, **cache)
                r = run(extra, env, Path(tmp) / f"run{i}-{code}")
                print(f"{label:13s} {code:8s} compile {r['compile_s']:5.2f} s, "
                      f"run {r['run_s']:5.1f} s, wall {r['wall_s']:5.1f} s", flush=True)
        plain = child_env(drop=CACHE_VARIABLES)
        print(f"import purejaxdqn.commands (JAX and the stack): {import_seconds(plain):.1f} s")


if __name__ == "__main__":
    main()
