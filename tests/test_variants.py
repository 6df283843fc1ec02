"""Every DQN variant switch learns CartPole above a random policy in a short run."""

import numpy as np
import pytest

from purejaxdqn import Config, train_seeds

pytestmark = pytest.mark.slow  # learning quality

SHORT = dict(num_frames=12_000, eval_every=0, eps_decay_frames=6_000, learning_rate=1e-3,
             final_eval_episodes=5)

# Each switch alone where its code path is its own; prioritised replay, n-step returns and
# C51 alone are the paths of the combinations that hold them (C51 with double Q and
# prioritised replay; n-step with prioritised replay and several environments; C51 with
# noisy networks and several environments; QR-DQN and Munchausen with the rest).
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


@pytest.mark.parametrize("variant", VARIANTS,
                         ids=[",".join(f"{k}={v}" for k, v in variant.items()) or "defaults"
                              for variant in VARIANTS])
def test_variant_learns_cartpole(variant):
    result = train_seeds(Config(**SHORT, **variant), num_seeds=2, seed=1)
    final = np.asarray(result.metrics["final_eval_return"])
    assert final.mean() > 40.0, final  # a random policy scores about 22
