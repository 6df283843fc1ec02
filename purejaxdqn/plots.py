"""Plots written by the CLI: learning curves with 95% bands, sweep rankings."""

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402

from purejaxdqn.stats import bootstrap_ci  # noqa: E402


def learning_curves(path: Path, curves: list, title: str) -> None:
    """Mean greedy return against frames for each (label, frames, eval_return (seeds,
    reports)), with a 95% bootstrap band across seeds."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, frames, eval_return in curves:
        returns = np.asarray(eval_return).T  # (reports, seeds)
        low, high = bootstrap_ci(returns)
        line, = ax.plot(frames, returns.mean(axis=1), label=label)
        ax.fill_between(frames, low, high, alpha=0.25, color=line.get_color())
    ax.set(xlabel="frames", ylabel="greedy return (95% CI across seeds)", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def ranking(path: Path, rows: list[dict], title: str) -> None:
    """Settings ranked by IQM of the final greedy return, with 95% CIs."""
    labels = [" ".join(f"{k}={v:g}" for k, v in r["setting"].items()) for r in rows]
    iqm = np.array([r["iqm"]["value"] for r in rows])
    err = np.array([[r["iqm"]["value"] - r["iqm"]["ci_low"],
                     r["iqm"]["ci_high"] - r["iqm"]["value"]] for r in rows]).T
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.5))
    ax.barh(np.arange(len(rows)), iqm, xerr=err, capsize=3)
    ax.set_yticks(np.arange(len(rows)), labels)
    ax.invert_yaxis()
    ax.set(xlabel="IQM of final greedy return (95% CI)", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


