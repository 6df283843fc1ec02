"""Compile time of `purejaxdqn train` without JAX's persistent compilation cache, with it
empty (first run) and with it filled (a later run of the same config), side by side.

    python benchmarks/compile_cache.py
"""

import os
import re
import subprocess
import sys
import tempfile


def compile_seconds(env: dict) -> float:
    out = subprocess.run([sys.executable, "-m", "purejaxdqn.cli", "train", "--num-seeds", "1"],
                         capture_output=True, text=True, env=env, check=True).stdout
    return float(re.search(r"compile ([0-9.]+) s", out).group(1))


def main():
    plain = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    with tempfile.TemporaryDirectory() as cache:
        cached = {**plain, "JAX_COMPILATION_CACHE_DIR": cache}
        for label, env in [("no cache", plain), ("cache empty", cached),
                           ("cache filled", cached), ("no cache", plain),
                           ("cache filled", cached)]:
            print(f"{label:13s} compile {compile_seconds(env):5.1f} s", flush=True)


if __name__ == "__main__":
    main()
