"""The CLI's persistent compilation cache stays off in tests (each test compiles, as the
tests that watch for compiles expect), except where a test turns it on itself.

Layout: this process splits the CPU into two devices, so that the seeds a test trains here
run on both cores of a small machine (on a CPU a seed's bits do not depend on the layout,
which tests/test_layout.py checks); a process a test starts runs on one device unless the
test sets its layout (tests/test_layout.py drops this to test the default: one device per
core)."""

import os

import jax

os.environ["PUREJAXDQN_COMPILE_CACHE"] = "off"
os.environ["PUREJAXDQN_CPU_DEVICES"] = "1"
jax.config.update("jax_num_cpu_devices", 2)
