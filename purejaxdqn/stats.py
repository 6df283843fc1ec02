"""Aggregates across seeds as RL papers report them: mean, median and interquartile mean,
each with a percentile-bootstrap 95% confidence interval (scipy.stats, as rliable does)."""

import numpy as np
from scipy import stats


def iqm(x, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (`trim_mean` cutting 25% each end)."""
    return stats.trim_mean(np.asarray(x, np.float64), 0.25, axis=axis)


STATISTICS = {"mean": np.mean, "median": np.median, "iqm": iqm}


def bootstrap_ci(x, statistic=np.mean, num_resamples: int = 2_000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap confidence interval of `statistic(x, axis)` over the last axis
    of `x` (the seeds); leading axes (e.g. evaluation points) are kept. One seed has no
    spread to resample: its interval is the value itself."""
    x = np.asarray(x, np.float64)
    if x.shape[-1] < 2:
        value = statistic(x, axis=-1)
        return value, value
    interval = stats.bootstrap((x,), statistic, n_resamples=num_resamples,
                               confidence_level=confidence, method="percentile",
                               rng=np.random.default_rng(seed), axis=-1).confidence_interval
    return interval.low, interval.high


def summarize(x) -> dict:
    """{statistic: {"value", "ci_low", "ci_high"}} for mean, median and IQM of `x`."""
    x = np.asarray(x, np.float64)
    summary = {}
    for name, statistic in STATISTICS.items():
        low, high = bootstrap_ci(x, statistic)
        summary[name] = {"value": float(statistic(x, axis=-1)), "ci_low": float(low),
                         "ci_high": float(high)}
    return summary
