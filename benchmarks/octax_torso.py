"""The strided torso (`network="cnn_strided"`) against the 3x3 `cnn` on Octax's frames
(Brix: 32x64, 4 frames as channels): frames/s of DQN training through `train_seeds`, as
a user runs it (on this CPU each core trains its share of the seeds one after another),
compile apart; each measurement in a fresh process, the two torsos interleaved, medians.

    python benchmarks/octax_torso.py [--seeds 1 16] [--num-frames 8000] [--repeats 2]

Both train the same DQN (4 environments a seed, a learning step of 32 every 4 frames, a
replay of 10,000; the Octax presets are PQN), without periodic evaluation, the final one
greedy episode short (episodes cut at 500 steps), so that training is what is timed.
"""

import argparse
import json
import sys

import harness

NETWORKS = ("cnn", "cnn_strided")


def measure(network: str, num_seeds: int, num_frames: int) -> dict:
    from purejaxdqn import Config
    from purejaxdqn.train import train_seeds

    config = Config(env_name="octax:brix", network=network, num_frames=num_frames,
                    num_envs=4, train_every=4, batch_size=32, buffer_size=10_000,
                    warmup_steps=1_000, eval_every=0, final_eval_episodes=1,
                    hidden_sizes=(256,), env_params=(("max_steps_in_episode", 500),))
    timings = {}
    train_seeds(config, num_seeds, timings=timings)
    return {**timings, "frames_per_s": num_seeds * num_frames / timings["run_s"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--num-frames", type=int, default=8_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("NETWORK", "SEEDS"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.num_frames)))
        return

    lines = [f"$ python benchmarks/octax_torso.py {' '.join(sys.argv[1:])}", "",
             f"DQN on octax:brix, {args.num_frames:,} frames a seed; frames/s across the "
             f"seeds (training and one final greedy episode), median of {args.repeats} "
             f"fresh processes, the torsos interleaved; compile apart.", "",
             "| seeds | network | frames/s | / cnn | compile s | run s |",
             "|---:|---|---:|---:|---:|---:|"]
    for seeds in args.seeds:
        runs = harness.interleaved(
            {n: (lambda n=n: harness.run_python(
                [__file__, "--child", n, seeds, "--num-frames", args.num_frames]))
             for n in NETWORKS},
            args.repeats, report=lambda n, r: print(f"  {seeds} seeds {n}: "
                                                    f"{r['frames_per_s']:,.0f} frames/s"))
        base = harness.median(runs["cnn"], "frames_per_s")
        for network, results in runs.items():
            rate = harness.median(results, "frames_per_s")
            lines.append(f"| {seeds} | {network} | {rate:,.0f} | {rate / base:.2f}x | "
                         f"{harness.median(results, 'compile_s'):.1f} | "
                         f"{harness.median(results, 'run_s'):.1f} |")
    harness.write_table("octax-torso", lines)


if __name__ == "__main__":
    main()
