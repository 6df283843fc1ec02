"""Configurations compared across tasks, as papers report them (Agarwal et al., NeurIPS
2021, with their library rliable, the `[report]` extra): each run's final greedy returns
normalised per task by a random policy's return and a reference return; the IQM, median,
mean and optimality gap across tasks and seeds with stratified bootstrap 95% CIs;
performance profiles; and the probability that one configuration improves on another."""

import itertools
import json
from pathlib import Path

import numpy as np

from purejaxdqn.stats import summarize

AGGREGATES = ("IQM", "Median", "Mean", "Optimality gap")


def _rliable():
    try:
        from rliable import library, metrics, plot_utils
    except ImportError:
        raise ValueError('comparing across tasks needs rliable: pip install '
                         '"purejaxdqn[report]"') from None
    return library, metrics, plot_utils


def random_return(env_name: str, env_params, episodes: int = 100, seed: int = 0) -> float:
    """A uniformly random policy's mean return over `episodes` episodes."""
    import jax

    from purejaxdqn.envs import resolve_env
    from purejaxdqn.evaluation import random_policy_returns

    env, params, _ = resolve_env(env_name, overrides=env_params)
    returns = jax.jit(lambda key: random_policy_returns(key, env, params, episodes))(
        jax.random.key(seed))
    return float(np.mean(returns))


def normalised_scores(finals: dict, random: dict, reference: dict) -> dict:
    """{label: (seeds, tasks)} of (return - random) / (reference - random), tasks in
    sorted order, from `finals` {label: {task: (seeds,)}}."""
    tasks = sorted(random)
    scores = {}
    for label, by_task in finals.items():
        seeds = {len(by_task[task]) for task in tasks}
        if len(seeds) != 1:
            raise ValueError(f"{label}: its runs have different seed counts across tasks "
                             f"({sorted(seeds)}); each configuration needs one count")
        columns = [(np.asarray(by_task[task], np.float64) - random[task])
                   / (reference[task] - random[task]) for task in tasks]
        scores[label] = np.stack(columns, axis=1)
    return scores


def compare_across_tasks(finals: dict, random: dict, reference: dict, out: Path,
                         reps: int = 10_000, seed: int = 0) -> dict:
    """Normalise, aggregate with rliable's stratified bootstrap, and write
    `aggregates.png`, `profiles.png`, `improvement.png`, `table.md` and `table.json` to
    `out`; returns the table (also what table.json holds)."""
    library, metrics, plot_utils = _rliable()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import warnings

    # arch, under rliable, warns that its RandomState argument will change; the draws are
    # seeded either way.
    warnings.filterwarnings("ignore", message="random_state is deprecated",
                            category=FutureWarning)
    scores = normalised_scores(finals, random, reference)
    labels = list(scores)
    def aggregate(x):
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_median(x),
                         metrics.aggregate_mean(x), metrics.aggregate_optimality_gap(x)])

    points, intervals = library.get_interval_estimates(
        scores, aggregate, reps=reps, random_state=np.random.RandomState(seed))
    taus = np.linspace(0.0, max(1.0, max(float(s.max()) for s in scores.values())), 81)
    profiles, profile_cis = library.create_performance_profile(scores, taus, reps=reps)
    pairs = {f"{x},{y}": (scores[x], scores[y]) for x, y in itertools.permutations(labels, 2)}
    improvement = {}
    if pairs:
        p_points, p_intervals = library.get_interval_estimates(
            pairs, metrics.probability_of_improvement, reps=max(reps // 5, 1),
            random_state=np.random.RandomState(seed))
        improvement = {pair: {"value": float(p_points[pair]),
                              "ci_low": float(p_intervals[pair][0, 0]),
                              "ci_high": float(p_intervals[pair][1, 0])} for pair in pairs}

    table = {"tasks": sorted(random), "random": random, "reference": reference,
             "aggregates": {label: {name: {"value": float(points[label][i]),
                                           "ci_low": float(intervals[label][0, i]),
                                           "ci_high": float(intervals[label][1, i])}
                                    for i, name in enumerate(AGGREGATES)}
                            for label in labels},
             "per_task": {label: {task: summarize(finals[label][task])["iqm"]
                                  for task in sorted(random)} for label in labels},
             "probability_of_improvement": improvement,
             "seeds": {label: int(scores[label].shape[0]) for label in labels},
             "bootstrap": {"reps": reps, "seed": seed, "method": "stratified percentile"}}

    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    (out / "table.md").write_text(markdown(table))
    figure, axes = plot_utils.plot_interval_estimates(
        points, intervals, metric_names=list(AGGREGATES), algorithms=labels,
        xlabel="normalised score")
    figure.savefig(out / "aggregates.png", bbox_inches="tight")
    figure, axis = plt.subplots(figsize=(6, 4))
    plot_utils.plot_performance_profiles(
        profiles, taus, performance_profile_cis=profile_cis, ax=axis,
        xlabel=r"normalised score $\tau$", ylabel=r"fraction of runs with score $> \tau$")
    axis.legend(labels)
    figure.savefig(out / "profiles.png", bbox_inches="tight")
    if improvement:
        plot_utils.plot_probability_of_improvement(
            {pair: np.array(p_points[pair]) for pair in pairs}, p_intervals)
        plt.savefig(out / "improvement.png", bbox_inches="tight")
    plt.close("all")
    return table


def _ci(stat: dict, digits: int = 2) -> str:
    return f"{stat['value']:.{digits}f} [{stat['ci_low']:.{digits}f}, {stat['ci_high']:.{digits}f}]"


def markdown(table: dict) -> str:
    """The table as markdown: the aggregates, each task's IQM of raw returns with the
    normalisation's random and reference returns, and the probabilities of improvement."""
    labels = list(table["aggregates"])
    lines = ["| configuration | seeds | " + " | ".join(AGGREGATES) + " |",
             "|---|---:|" + "---|" * len(AGGREGATES)]
    for label in labels:
        lines.append(f"| {label} | {table['seeds'][label]} | " + " | ".join(
            _ci(table["aggregates"][label][name]) for name in AGGREGATES) + " |")
    lines += ["", "| task | random | reference | " + " | ".join(
        f"{label}: IQM [95% CI]" for label in labels) + " |",
              "|---|---:|---:|" + "---|" * len(labels)]
    for task in table["tasks"]:
        lines.append(f"| {task} | {table['random'][task]:.2f} | {table['reference'][task]:.2f} | "
                     + " | ".join(_ci(table["per_task"][label][task], 1) for label in labels)
                     + " |")
    if table["probability_of_improvement"]:
        lines += ["", "| P(X > Y) | value [95% CI] |", "|---|---|"]
        for pair, stat in table["probability_of_improvement"].items():
            x, y = pair.split(",")
            lines.append(f"| {x} > {y} | {_ci(stat)} |")
    return "\n".join(lines) + "\n"
