"""Tests of an optional environment suite: `need(suite)` skips them where it is not
installed, naming the pip command, and fails them where PUREJAXDQN_REQUIRE_SUITES is set
(CI, which installs every suite)."""

import importlib
import os

import pytest

SUITE_MODULES = {"craftax": "craftax.craftax_env", "navix": "navix", "jumanji": "jumanji",
                 "xminigrid": "xminigrid"}


def need(suite: str):
    """The suite's module, or the test skipped (failed where CI requires every suite)."""
    try:
        return importlib.import_module(SUITE_MODULES[suite])
    except ImportError:
        install = f'pip install "purejaxdqn[{suite}]"'
        if os.environ.get("PUREJAXDQN_REQUIRE_SUITES"):
            pytest.fail(f"the {suite} suite is required here but not installed: {install}")
        pytest.skip(f"the {suite} suite is not installed: {install}")
