"""The test suite's wall time, for several checkouts of this project one after another on
this machine (each as its README runs it: its own pytest settings), with every
environment suite required as CI runs it: tests passed and seconds, and each against the
first.

    git worktree add /tmp/before <commit>
    python benchmarks/test_suite_time.py /tmp/before .
    python benchmarks/test_suite_time.py /tmp/before . --fast     # -m "not slow"
    python benchmarks/test_suite_time.py /tmp/before . --same-scope

`--same-scope` leaves out, in checkouts that have them, the tests that issues 36-39 added
after issue 35's "before" (6e3b5a6): recurrent agents, trackers and rliable, progress,
Octax. Their other tests (a parameter of an older test, Octax's docs example) still run.

Run it alone on the machine: the ratio holds for one run, the seconds for that day.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path


# Whole modules, then single tests, that issues 36-39 added (see --same-scope).
LATER_MODULES = ["test_memory.py", "test_r2d2.py", "test_trackers.py", "test_report.py",
                 "test_progress.py"]
LATER_TESTS = [
    "test_suites.py::test_an_octax_game_by_object_resumes_bitwise_and_vmapped_is_alone",
    "test_suites.py::test_octax_frames_are_stored_as_their_bits",
    "test_torso.py::test_with_memory_the_torso_feeds_the_core_at_every_step",
    "test_multihost.py::test_processes_match_one_process_with_as_many_devices[2-1-r2d2]"]


def run_suite(checkout: Path, fast: bool, same_scope: bool) -> tuple[str, float]:
    """(pytest's closing counts, wall seconds) of the suite of `checkout`."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if fast:
        command += ["-m", "not slow"]
    if same_scope:
        command += [f"--ignore=tests/{name}" for name in LATER_MODULES]
        command += [f"--deselect=tests/{test}" for test in LATER_TESTS]  # absent: no-op
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
    parser.add_argument("--same-scope", action="store_true",
                        help="without the tests that issues 36-39 added")
    args = parser.parse_args()
    rows = []
    for checkout in args.checkouts:
        counts, wall = run_suite(checkout.resolve(), args.fast, args.same_scope)
        rows.append((checkout, counts, wall))
        print(f"{checkout}: {counts}, {wall:.1f} s", flush=True)
    tier = ('-m "not slow"' if args.fast else "whole suite") + (
        ", same scope" if args.same_scope else "")
    print(f"\n| checkout | {tier} | wall s | / first |\n|---|---|---:|---:|")
    for checkout, counts, wall in rows:
        print(f"| {checkout} | {counts} | {wall:.1f} | {wall / rows[0][2]:.2f}x |")


if __name__ == "__main__":
    main()
