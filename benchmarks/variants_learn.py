"""Learning quality of every DQN variant's code path: each learns CartPole above a random
policy (about 22) in a short run, 12,000 frames, 2 seeds; the suite keeps one of these as
its guard (tests/test_variants.py). Exit status 1 if one does not.

    python benchmarks/variants_learn.py

Each switch alone where its code path is its own; prioritised replay, n-step returns and
C51 alone are the paths of the combinations that hold them (C51 with double Q and
prioritised replay; n-step with prioritised replay and several environments; C51 with
noisy networks and several environments; QR-DQN and Munchausen with the rest).
"""

import argparse
import sys

import numpy as np

from purejaxdqn import Config, train_seeds

SHORT = dict(num_frames=12_000, eval_every=0, eps_decay_frames=6_000, learning_rate=1e-3,
             final_eval_episodes=5)
THRESHOLD = 40.0  # a random policy scores about 22

VARIANTS = [
    {},
    {"double_q": True},
    {"dueling": True},
    {"loss": "mse"},
    {"target_update_period": 100},
    {"noisy": True},
    {"distributional": True, "v_min": 0.0, "v_max": 100.0, "double_q": True,
     "prioritized": True},
    {"num_envs": 8, "n_step": 3, "prioritized": True},
    {"num_envs": 4, "distributional": True, "v_min": 0.0, "v_max": 100.0, "noisy": True},
    {"quantile_regression": True, "double_q": True, "dueling": True, "prioritized": True},
    {"quantile_regression": True, "n_step": 3, "noisy": True, "num_envs": 4},
    {"munchausen": True},
    {"munchausen": True, "dueling": True, "n_step": 3, "prioritized": True, "noisy": True},
]


def final_returns(variant: dict) -> np.ndarray:
    """Final greedy returns of 2 seeds (seed 1) of the short run with `variant`."""
    result = train_seeds(Config(**SHORT, **variant), num_seeds=2, seed=1)
    return np.asarray(result.metrics["final_eval_return"])


def main():
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    failed = 0
    print("| variant | final greedy returns (2 seeds) | mean | above 40 |\n|---|---|---:|---|")
    for variant in VARIANTS:
        final = final_returns(variant)
        passed = final.mean() > THRESHOLD
        failed += not passed
        name = ", ".join(f"{k}={v}" for k, v in variant.items()) or "defaults"
        print(f"| {name} | {final.round(1).tolist()} | {final.mean():.1f} | "
              f"{'yes' if passed else 'NO'} |", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
