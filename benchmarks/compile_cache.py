"""What a repeated `purejaxdqn train` pays before training: without the persistent
compilation cache (`--no-compile-cache`), with it empty (first run) and filled (a later
run of the same command), side by side; and the imports every run pays.

    python benchmarks/compile_cache.py

compile: the summary's compile time (tracing, lowering, and XLA's compile or the cache's
load); wall: the whole command (imports, compile, the run, the summary, the files).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(extra: list[str], env: dict, out: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "purejaxdqn.cli", "train", "--num-seeds", "1",
                    "--out", str(out), *extra], capture_output=True, text=True, env=env,
                   check=True)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    return {"wall_s": wall, "compile_s": summary["compile_s"], "run_s": summary["run_s"]}


def import_seconds(env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import purejaxdqn.commands"], env=env, check=True)
    return time.perf_counter() - start


def main():
    plain = {k: v for k, v in os.environ.items()
             if k not in ("JAX_COMPILATION_CACHE_DIR", "PUREJAXDQN_COMPILE_CACHE")}
    with tempfile.TemporaryDirectory() as tmp:
        cached = {**plain, "PUREJAXDQN_COMPILE_CACHE": str(Path(tmp) / "cache")}
        runs = [("no cache", ["--no-compile-cache"], plain), ("cache empty", [], cached),
                ("cache filled", [], cached), ("no cache", ["--no-compile-cache"], plain),
                ("cache filled", [], cached)]
        for i, (label, extra, env) in enumerate(runs):
            r = run(extra, env, Path(tmp) / f"run{i}")
            print(f"{label:13s} compile {r['compile_s']:5.1f} s, run {r['run_s']:5.1f} s, "
                  f"wall {r['wall_s']:5.1f} s", flush=True)
        print(f"import purejaxdqn.commands (JAX and the stack): {import_seconds(plain):.1f} s")


if __name__ == "__main__":
    main()
