"""The CLI's persistent compilation cache stays off in tests (each test compiles, as the
tests that watch for compiles expect), except where a test turns it on itself."""

import os

os.environ["PUREJAXDQN_COMPILE_CACHE"] = "off"
