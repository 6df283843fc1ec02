"""PatchConv2D (im2col matmul) against hk.Conv2D in the MinAtar training program, side by
side in one run: 16 seeds, 4,000 frames of Breakout-MinAtar, all learning (batch 32).

    python benchmarks/investigations/conv.py
"""

import haiku as hk

from purejaxdqn import Config, networks, train_seeds


def haiku_conv(output_channels, kernel_shape, name=None):
    return hk.Conv2D(output_channels, kernel_shape, padding="VALID", name=name)


def main():
    config = Config(env_name="Breakout-MinAtar", network="cnn", num_frames=4_000,
                    batch_size=32, buffer_size=4_000, warmup_steps=4, eval_every=0,
                    final_eval_episodes=1)
    ours = networks.PatchConv2D
    for name, conv in [("hk.Conv2D", haiku_conv), ("PatchConv2D", ours),
                       ("hk.Conv2D", haiku_conv), ("PatchConv2D", ours)]:
        networks.PatchConv2D = conv
        timings = {}
        train_seeds(config, 16, timings=timings)
        print(f"{name:12s} compile {timings['compile_s']:5.1f} s  run {timings['run_s']:5.1f} s",
              flush=True)
    networks.PatchConv2D = ours


if __name__ == "__main__":
    main()
