"""The CLI's persistent compilation cache stays off in tests (each test compiles, as the
tests that watch for compiles expect), except where a test turns it on itself. Tests run
on one CPU device unless they set their own layout (tests/test_layout.py drops this to
test the default: one device per core)."""

import os

os.environ["PUREJAXDQN_COMPILE_CACHE"] = "off"
os.environ["PUREJAXDQN_CPU_DEVICES"] = "1"
