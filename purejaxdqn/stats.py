"""Aggregates across seeds as RL papers report them: mean, median and interquartile mean,
each with a percentile-bootstrap 95% confidence interval (numpy, as in rliable)."""

import numpy as np


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (scipy's trim_mean at 0.25)."""
    x = np.sort(np.asarray(x, np.float64), axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


STATISTICS = {"mean": lambda x, axis=-1: np.mean(x, axis=axis),
              "median": lambda x, axis=-1: np.median(x, axis=axis),
              "iqm": iqm}


def bootstrap_ci(x, statistic=STATISTICS["mean"], num_resamples: int = 2_000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap confidence interval of `statistic` over the last axis of `x`.

    Leading axes (e.g. evaluation points) are kept: the result has their shape.
    """
    x = np.asarray(x, np.float64)
    n = x.shape[-1]
    rng = np.random.default_rng(seed)
    resampled = np.take(x, rng.integers(0, n, size=(num_resamples, n)), axis=-1)
    values = statistic(resampled, axis=-1)  # (*leading, num_resamples)
    tail = (1.0 - confidence) / 2 * 100
    return np.percentile(values, tail, axis=-1), np.percentile(values, 100 - tail, axis=-1)


def summarize(x) -> dict:
    """{statistic: {"value", "ci_low", "ci_high"}} for mean, median and IQM of `x`."""
    x = np.asarray(x, np.float64)
    summary = {}
    for name, statistic in STATISTICS.items():
        low, high = bootstrap_ci(x, statistic)
        summary[name] = {"value": float(statistic(x)), "ci_low": float(low),
                         "ci_high": float(high)}
    return summary
