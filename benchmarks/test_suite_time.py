"""The test suite's wall time, for several checkouts of this project one after another on
this machine (each as its README runs it: its own pytest settings), with every
environment suite required as CI runs it: tests passed and seconds, and each against the
first.

    git worktree add /tmp/before <commit>
    python benchmarks/test_suite_time.py /tmp/before .
    python benchmarks/test_suite_time.py /tmp/before . --fast     # -m "not slow"

Run it alone on the machine: the ratio holds for one run, the seconds for that day.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def run_suite(checkout: Path, fast: bool) -> tuple[str, float]:
    """(pytest's closing counts, wall seconds) of the suite of `checkout`."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if fast:
        command += ["-m", "not slow"]
    env = {**os.environ, "PYTHONPATH": str(checkout), "PUREJAXDQN_REQUIRE_SUITES": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    closing = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return (closing[-1].strip("= ") if closing else f"exit {done.returncode}"), wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--fast", action="store_true", help='only -m "not slow"')
    args = parser.parse_args()
    rows = []
    for checkout in args.checkouts:
        counts, wall = run_suite(checkout.resolve(), args.fast)
        rows.append((checkout, counts, wall))
        print(f"{checkout}: {counts}, {wall:.1f} s", flush=True)
    tier = '-m "not slow"' if args.fast else "whole suite"
    print(f"\n| checkout | {tier} | wall s | / first |\n|---|---|---:|---:|")
    for checkout, counts, wall in rows:
        print(f"| {checkout} | {counts} | {wall:.1f} | {wall / rows[0][2]:.2f}x |")


if __name__ == "__main__":
    main()
