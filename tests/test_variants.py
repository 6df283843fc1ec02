"""The guard of the variants' learning quality: C51 with double Q and prioritised replay
(a distributional loss, a masked selector's path and importance weights, in the
cheapest of the combinations to compile) learns CartPole above a random policy in a
short run. Every variant's path is checked by `python benchmarks/variants_learn.py`."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from variants_learn import THRESHOLD, VARIANTS, final_returns  # noqa: E402

pytestmark = pytest.mark.slow  # learning quality

GUARD = {"distributional": True, "v_min": 0.0, "v_max": 100.0, "double_q": True,
         "prioritized": True}


def test_the_guard_is_one_of_the_benchmarks_variants():
    assert GUARD in VARIANTS


def test_c51_with_double_q_and_prioritised_replay_learns_cartpole():
    final = final_returns(GUARD)
    assert final.mean() > THRESHOLD, final  # a random policy scores about 22
