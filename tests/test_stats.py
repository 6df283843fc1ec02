"""The across-seed aggregates: IQM by hand, and the bootstrap interval against a numpy
percentile bootstrap written out here."""

import numpy as np
import pytest

from purejaxdqn.stats import bootstrap_ci, iqm, summarize


def test_iqm_is_the_mean_of_the_middle_half():
    x = np.array([100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -100.0])  # middle four: 2, 3, 4, 5
    assert iqm(x) == pytest.approx(3.5)
    assert iqm(np.stack([x, 2 * x])).tolist() == pytest.approx([3.5, 7.0])


def test_bootstrap_ci_is_the_percentile_bootstrap():
    x = np.random.default_rng(3).normal(200.0, 50.0, size=(3, 16))
    rng = np.random.default_rng(0)  # the resamples the interval's seed 0 draws
    means = x[:, rng.integers(0, 16, size=(2_000, 16))].mean(axis=-1)
    low, high = bootstrap_ci(x)
    np.testing.assert_allclose(low, np.percentile(means, 2.5, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(high, np.percentile(means, 97.5, axis=-1), rtol=1e-12)
    assert np.all(low < x.mean(axis=-1)) and np.all(x.mean(axis=-1) < high)


def test_summarize_values_intervals_and_degenerate_cases():
    x = np.arange(32.0)
    summary = summarize(x)
    assert summary["mean"]["value"] == pytest.approx(15.5)
    assert summary["median"]["value"] == pytest.approx(15.5)
    assert summary["iqm"]["value"] == pytest.approx(15.5)
    for stat in summary.values():
        assert stat["ci_low"] < stat["value"] < stat["ci_high"]
    assert summarize(x) == summary  # seeded: the same interval every time
    solved = summarize(np.full(8, 500.0))["iqm"]
    assert solved == {"value": 500.0, "ci_low": 500.0, "ci_high": 500.0}
    one = summarize(np.array([42.0]))["mean"]
    assert one == {"value": 42.0, "ci_low": 42.0, "ci_high": 42.0}
