"""The small searches behind the environment presets (benchmarks/environments.py), and the
longer Asterix runs: per-seed final greedy returns of each setting.

    python benchmarks/investigations/env_search.py --only acrobot mountaincar minatar asterix-200k asterix-long \
        asterix-paper asterix-pool minatar-pool
"""

import argparse

import numpy as np

from purejaxdqn import Config, sweep, train_seeds
from purejaxdqn.stats import iqm

MINATAR = dict(network="cnn", num_frames=100_000, batch_size=32, buffer_size=100_000,
               eps_decay_frames=50_000, eval_every=0, final_eval_episodes=5)
ASTERIX_LONG = dict(eps_decay_frames=100_000, learning_rate=3e-4, n_step=3, eval_episodes=5)
# The Asterix runs before its preset pooled the convolution's features: flattened, 16 filters.
FLAT = dict(network="cnn", conv_channels=16)
# name -> [(config, grid, seeds)]; an empty grid trains the one config with train_seeds.
SEARCHES = {
    "acrobot": [(Config(env_name="Acrobot-v1", num_frames=50_000, loss="mse", eval_every=0,
                        final_eval_episodes=5),
                 {"learning_rate": [3e-4, 1e-3], "tau": [0.01, 0.05]}, 8)],
    "mountaincar": [(Config(env_name="MountainCar-v0", num_frames=100_000, loss="mse",
                            eval_every=0, final_eval_episodes=5),
                     {"learning_rate": [3e-4, 1e-3], "eps_decay_frames": [20_000, 50_000]}, 8)],
    "minatar": [(Config(env_name=f"{game}-MinAtar", **MINATAR), {"learning_rate": [3e-4, 1e-3]}, 4)
                for game in ("Breakout", "Freeway")],
    "asterix-200k": [(Config.preset("asterix-minatar-100k", num_frames=200_000,
                                    eps_decay_frames=100_000, final_eval_episodes=5, **FLAT,
                                    **extra),
                      {"learning_rate": [3e-4, 1e-3]}, 4)
                     for extra in ({"n_step": 3},
                                   {"n_step": 3, "distributional": True, "double_q": True,
                                    "dueling": True, "prioritized": True})],
    "asterix-long": [(Config.preset("asterix-minatar-100k", num_frames=frames,
                                    eval_every=frames // 10, **ASTERIX_LONG, **FLAT), {}, 4)
                     for frames in (500_000, 1_000_000)],
    # The MinAtar paper's DQN schedule: learn every frame, copy the target every 1,000
    # steps, epsilon to 0.1 over 100k frames, 5,000 warm-up frames.
    "asterix-paper": [(Config.preset("asterix-minatar-100k", num_frames=200_000,
                                     eval_every=20_000, eval_episodes=5, final_eval_episodes=5,
                                     train_every=1, target_update_period=1_000, eps_end=0.1,
                                     eps_decay_frames=100_000, warmup_steps=5_000,
                                     learning_rate=3e-4, **FLAT), {}, 4),
                      (Config.preset("asterix-minatar-100k", eval_every=10_000, eval_episodes=5,
                                     final_eval_episodes=5, train_every=1,
                                     target_update_period=1_000, eps_end=0.1,
                                     warmup_steps=5_000, **FLAT),
                       {"learning_rate": [1e-4, 1e-3]}, 2)],
    # The preset's network: the convolution's features max-pooled over the grid.
    "asterix-pool": [(Config.preset("asterix-minatar-100k", final_eval_episodes=5,
                                    eval_every=10_000, eval_episodes=5, conv_channels=channels),
                      {"learning_rate": [3e-4, 1e-3]}, 4) for channels in (16, 32, 64)],
    # Asterix's network on the other three games (whose presets flatten the features).
    "minatar-pool": [(Config.preset(f"{game.lower()}-minatar-100k", network="cnn_pool",
                                    conv_channels=64, final_eval_episodes=5), {}, 4)
                     for game in ("Breakout", "Freeway", "SpaceInvaders")],
}


def _rounded(values, digits: int) -> list[float]:
    return np.round(np.asarray(values, dtype=float), digits).tolist()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(SEARCHES), default=list(SEARCHES))
    args = parser.parse_args()
    for name in args.only:
        for config, grid, seeds in SEARCHES[name]:
            if grid:
                result = sweep(config, grid, num_seeds=seeds)
                settings, metrics = result.configs, result.metrics
            else:  # one setting: give the metrics the sweep's leading settings axis
                settings = [{}]
                metrics = {k: np.asarray(v)[None] for k, v in
                           train_seeds(config, seeds).metrics.items()}
            net = (config.network if config.network == "mlp"
                   else f"{config.network}({config.conv_channels})")
            for i, setting in enumerate(settings):
                row = np.asarray(metrics["final_eval_return"][i])
                if config.eval_every:
                    curves = ", ".join(
                        f"{key} {_rounded(np.asarray(metrics[key][i]).mean(0), 2)}"
                        for key in ("eval_return", "train_episode_return"))
                    print(f"{name} {net} {config.num_frames:,} frames {setting}, per "
                          f"{config.eval_every:,} frames, mean of {seeds} seeds: {curves}")
                print(f"{name} {config.env_name} {net} {config.num_frames:,} frames {setting}: "
                      f"mean {row.mean():.2f} iqm {iqm(row):.2f} {_rounded(row, 1)}",
                      flush=True)


if __name__ == "__main__":
    main()
