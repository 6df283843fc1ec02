"""Where `Config(bootstrap_on_truncation=False)` and the tutorial's loop
(`../shared/reference/tutorial_dqn.py`) still do different things, one difference at a
time: ours is run with the tutorial's way of doing each, over many seeds, and compared
with ours as it is (and with the tutorial runs `tutorial_vs_ours.py` collected).

    python benchmarks/tutorial_differences.py --num-seeds 128 --tutorial-seeds 41
    python benchmarks/tutorial_differences.py --physics 32

The differences in how the two loops learn (everything else they do alike, see the
README's "Against the tutorial's own loop"):
- epsilon: the tutorial's frame counter starts at 1 (`epsilon_by_frame(frame_idx)`), ours
  at 0, so its epsilon is one frame ahead;
- sampling: the tutorial draws a batch without replacement (`random.sample` over the
  deque), flashbax with replacement.
Each is swapped into our program here, for this measurement only, by replacing the one
function that does it; the package itself is unchanged. Results go to
`benchmarks/results/tutorial-differences-<seeds>.md` (and each seed's return to `.json`).

A third difference is the environment's arithmetic: gymnasium's CartPole integrates in
float64, gymnax's in float32 (same equations, thresholds and time limit). `--physics N`
measures it on trained policies instead: the greedy policies of our first N seeds, each
played for `--episodes` episodes in both environments; results go to
`benchmarks/results/tutorial-physics-<N>.md`.
"""

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

import purejaxdqn.train as train_module
from purejaxdqn import Config, replay, train_seeds
from purejaxdqn.policies import epsilon_at
from purejaxdqn.distributed import gather
from purejaxdqn.stats import bootstrap_ci

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_loop import greedy_returns  # noqa: E402
from tutorial_vs_ours import RESULTS, RUNS, describe, difference_ci  # noqa: E402

CONFIG = Config(bootstrap_on_truncation=False)


def epsilon_from_frame_one(frame, *schedule):
    """The tutorial's epsilon: its first frame is frame 1."""
    return epsilon_at(frame + 1, *schedule)


def without_replacement(key, num_items, size):
    """A uniform random `size`-subset of range(num_items) (Floyd's algorithm; `num_items`
    may be traced and must be at least `size`)."""
    draws = jax.random.uniform(key, (size,))

    def pick(chosen, i):
        top = num_items - size + i  # draw from 0..top
        candidate = jnp.minimum((draws[i] * (top + 1)).astype(jnp.int32), top)
        pick = jnp.where(jnp.any(chosen == candidate), top, candidate)
        return chosen.at[i].set(pick), None

    chosen, _ = jax.lax.scan(pick, jnp.full(size, -1, jnp.int32), jnp.arange(size))
    return chosen


def sample_without_replacement(buffer, buffer_state, key, config, beta, gamma):
    """`replay.sample` for a uniform one-step item buffer, drawing like `random.sample`."""
    assert config.n_step == 1 and not config.prioritized
    capacity = buffer_state.experience.reward.shape[1]
    num_items = jnp.where(buffer_state.is_full, capacity, buffer_state.current_index)
    # Before warm-up ends fewer than batch_size items exist; those batches are not used.
    indices = jnp.clip(without_replacement(key, jnp.maximum(num_items, config.batch_size),
                                           config.batch_size), 0, capacity - 1)
    batch = jax.tree.map(lambda x: x[0, indices], buffer_state.experience)
    return replay.Sample(batch, 1, None, None)


VARIANTS = {
    "ours": [],
    "epsilon from frame 1": [(train_module, "epsilon_at", epsilon_from_frame_one)],
    "sampling without replacement": [(replay, "sample", sample_without_replacement)],
}


def run(swaps, num_seeds: int) -> np.ndarray:
    with contextlib.ExitStack() as stack:
        for module, name, replacement in swaps:
            stack.enter_context(mock.patch.object(module, name, replacement))
        result = train_seeds(CONFIG, num_seeds, seed=0)
    return np.asarray(gather(result.metrics)["final_eval_return"])


def physics(num_seeds: int, num_episodes: int) -> list[str]:
    """The same greedy policies in gymnax's float32 CartPole and gymnasium's float64 one."""
    import gymnasium as gym

    from purejaxdqn import make_q_network
    from purejaxdqn.envs import resolve_env
    from purejaxdqn.evaluation import evaluate

    params = gather(train_seeds(CONFIG, num_seeds, seed=0).params)
    env, env_params, _ = resolve_env(CONFIG.env_name)
    network = make_q_network(CONFIG)
    q_values = jax.jit(network.apply)
    gymnasium = gym.make("CartPole-v1")
    tutorials = "gymnasium, the tutorial's 10 start states (seeds i + 1000 ... i + 1009)"
    per_seed = {"gymnax (float32)": [], "gymnasium (float64)": [], tutorials: []}
    for i in range(num_seeds):
        seed_params = jax.tree.map(lambda x: x[i], params)
        per_seed["gymnax (float32)"].append(float(evaluate(
            jax.random.key(1000 + i), seed_params, network, env, env_params, num_episodes)))
        # Episode j seeded i + 1000 + j: the first 10 are the tutorial's evaluation of seed i.
        returns = greedy_returns(gymnasium, q_values, seed_params, num_episodes, seed=i)
        per_seed["gymnasium (float64)"].append(returns.mean())
        per_seed[tutorials].append(returns[:10].mean())
    values = {name: np.array(v) for name, v in per_seed.items()}
    diffs = values["gymnasium (float64)"] - values["gymnax (float32)"]
    low, high = bootstrap_ci(diffs)
    protocol = values[tutorials] - values["gymnasium (float64)"]
    protocol_ci = bootstrap_ci(protocol)
    lines = ["# The same greedy policies in both CartPoles", "",
             f"`python benchmarks/tutorial_differences.py {' '.join(sys.argv[1:])}`: the "
             f"greedy policies of `Config(bootstrap_on_truncation=False)`'s first {num_seeds} "
             f"seeds (seed 0's keys) after 40,000 frames, {num_episodes} episodes each in each "
             "environment (gymnasium's episode j of policy i seeded i + 1000 + j, so that its "
             "first 10 are the start states of the tutorial's final evaluation of its seed i); "
             "mean return per policy, then across policies.", "",
             "| environment | mean [95% CI] | IQM [95% CI] | sd | range |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {describe(v)} |" for name, v in values.items()]
    lines += ["", f"Paired differences per policy (percentile bootstrap over policies): "
              f"gymnasium minus gymnax {diffs.mean():+.1f} [{float(low):+.1f}, "
              f"{float(high):+.1f}]; the tutorial's 10 start states minus {num_episodes} "
              f"{protocol.mean():+.1f} [{float(protocol_ci[0]):+.1f}, "
              f"{float(protocol_ci[1]):+.1f}]."]
    (RESULTS / f"tutorial-physics-{num_seeds}.md").write_text("\n".join(lines) + "\n")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-seeds", type=int, default=128)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--physics", type=int, metavar="N", help="compare the two CartPoles "
                        "on the greedy policies of N seeds instead")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--tutorial-seeds", type=int, metavar="N",
                        help="compare with the tutorial's seeds 0..N-1 (default: every run "
                        "in tutorial-runs.jsonl)")
    args = parser.parse_args()
    if args.physics:
        print("\n".join(physics(args.physics, args.episodes)))
        return
    finals = {}
    for name in args.only:
        start = time.perf_counter()
        finals[name] = run(VARIANTS[name], args.num_seeds)
        print(f"{name}: mean {finals[name].mean():.1f} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    runs = [json.loads(line) for line in RUNS.read_text().splitlines()] if RUNS.exists() else []
    tutorial = np.array([r["final_eval_10ep"] for r in runs
                         if args.tutorial_seeds is None or r["seed"] < args.tutorial_seeds])
    (RESULTS / f"tutorial-differences-{args.num_seeds}.json").write_text(json.dumps(
        {name: values.tolist() for name, values in finals.items()}) + "\n")

    lines = ["# Ours with the tutorial's way of doing each thing it does differently", "",
             f"`python benchmarks/tutorial_differences.py {' '.join(sys.argv[1:])}`: "
             "`Config(bootstrap_on_truncation=False)`, "
             f"{args.num_seeds} seeds each (seed 0's keys), final greedy return (10 episodes) "
             "after 40,000 frames; 95% percentile-bootstrap CIs.", "",
             "| run | mean [95% CI] | IQM [95% CI] | sd | range | minus ours [95% CI] |",
             "|---|---|---|---|---|---|"]
    base = finals.get("ours")
    rows = list(finals.items())
    if len(tutorial):
        rows.append((f"tutorial's loop (seeds 0-{len(tutorial) - 1}, tutorial-runs.jsonl)",
                     tutorial))
    for name, values in rows:
        if base is None or name == "ours":
            versus = ""
        else:
            low, high = difference_ci(values, base)
            versus = f"{values.mean() - base.mean():+.1f} [{low:+.1f}, {high:+.1f}]"
        lines.append(f"| {name} | {describe(values)} | {versus} |")
    (RESULTS / f"tutorial-differences-{args.num_seeds}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
