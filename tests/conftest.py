"""One persistent compilation cache for the whole test session: this process, the
pytest-xdist workers and every process a test starts (through the CLI's
PUREJAXDQN_COMPILE_CACHE) share a new, empty directory, so that a program that several
tests or processes build the same is compiled once. It is removed at the session's end,
and a test about the cold compile names a cache of its own.

Layout: this process splits the CPU into two devices, so that the seeds a test trains here
run on both cores of a small machine (on a CPU a seed's bits do not depend on the layout,
which tests/test_layout.py checks); a process a test starts runs on one device unless the
test sets its layout (tests/test_layout.py drops this to test the default: one device per
core)."""

import os
import shutil
import tempfile

import jax

CACHE_VARIABLE = "PUREJAXDQN_TEST_SESSION_CACHE"  # set by the first process, inherited
if not os.environ.get(CACHE_VARIABLE):
    os.environ[CACHE_VARIABLE] = tempfile.mkdtemp(prefix="purejaxdqn-test-cache-")
    _OWNS_CACHE = True
else:
    _OWNS_CACHE = False

os.environ["PUREJAXDQN_COMPILE_CACHE"] = os.environ[CACHE_VARIABLE]
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # the CLI would leave caching to it
os.environ["PUREJAXDQN_CPU_DEVICES"] = "1"
jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_compilation_cache_dir", os.environ[CACHE_VARIABLE])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def pytest_unconfigure(config):
    if _OWNS_CACHE:
        shutil.rmtree(os.environ[CACHE_VARIABLE], ignore_errors=True)
