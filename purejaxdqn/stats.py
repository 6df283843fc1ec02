"""Aggregates across seeds as RL papers report them: mean, median and interquartile mean,
each with a percentile-bootstrap 95% confidence interval (scipy.stats, as rliable does)."""

import numpy as np
from scipy import stats


def iqm(x, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (`trim_mean` cutting 25% each end)."""
    return stats.trim_mean(np.asarray(x, np.float64), 0.25, axis=axis)


STATISTICS = {"mean": np.mean, "median": np.median, "iqm": iqm}


RESAMPLED_PER_CALL = 1024  # values (rows x seeds) that one scipy call resamples


def bootstrap_ci(x, statistic=np.mean, num_resamples: int = 2_000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap confidence interval of `statistic(x, axis)` over the last axis
    of `x` (the seeds); leading axes (e.g. metrics, evaluation points) are kept. One seed
    has no spread to resample: its interval is the value itself. The leading rows are
    resampled a few at a time (about `RESAMPLED_PER_CALL` values a call): scipy draws the
    same resample indices whatever the leading axes, so each row gets the interval it would
    get alone, and many rows take few calls without resampled arrays too large to be quick."""
    x = np.asarray(x, np.float64)
    if x.shape[-1] < 2:
        value = statistic(x, axis=-1)
        return value, value
    rows = x.reshape(-1, x.shape[-1])
    chunk = max(1, RESAMPLED_PER_CALL // x.shape[-1])
    intervals = [stats.bootstrap((part,), statistic, n_resamples=num_resamples,
                                 confidence_level=confidence, method="percentile",
                                 rng=np.random.default_rng(seed), axis=-1).confidence_interval
                 for part in np.split(rows, range(chunk, len(rows), chunk))]
    low, high = (np.concatenate(bound).reshape(x.shape[:-1])[()]
                 for bound in ([i.low for i in intervals], [i.high for i in intervals]))
    return low, high


def summarize(x) -> dict:
    """{statistic: {"value", "ci_low", "ci_high"}} for mean, median and IQM of `x`."""
    x = np.asarray(x, np.float64)
    summary = {}
    for name, statistic in STATISTICS.items():
        low, high = bootstrap_ci(x, statistic)
        summary[name] = {"value": float(statistic(x, axis=-1)), "ci_low": float(low),
                         "ci_high": float(high)}
    return summary
