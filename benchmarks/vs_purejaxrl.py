"""Ours against PureJaxRL's DQN, the strongest pure-JAX peer, on the tutorial's settings:
frames per second (compile apart) and cold compile time, interleaved in one run.

    python benchmarks/vs_purejaxrl.py --purejaxrl /tmp/purejaxrl/dqn_tutorial.py --seeds 1 8

PureJaxRL is not on PyPI, and its code never enters this repository: `--purejaxrl` names
your own adapted copy of its `purejaxrl/dqn.py` (repository luchris429/purejaxrl) that
defines `make_train(config)` as upstream does and `default_config(num_frames)` returning
its config dict. The copy these figures come from changed upstream only as follows:
gymnax 1.0's step (six values; done = terminated or truncated, the tutorial's semantics),
no wrappers and no wandb (CartPole is flat), the shared-key bug fixed (upstream replaces
`rng` by `PRNGKey(0)` before the dummy transition, so every seed shares one key stream),
and the tutorial's hyperparameters: 1 environment, a 128-128 network, Adam 3e-4 after
global-norm clipping at 10, Huber loss, batch 128, buffer 50,000, learning from frame
1,000 every 4 frames, soft target update (tau 0.01) every 4 frames, epsilon 1 to 0.05
over 20,000 frames. Its loop is upstream's: one frame per scan step, the learning step
and the target update each behind a `lax.cond` on the frame counter.

Ours runs `Config(eval_every=0)`, the same work without periodic evaluation, and its
final 10-episode evaluation (PureJaxRL's has none, so ours does a little more). Each
measurement is a fresh process (cold compile, no compilation cache); the contestants
alternate, `--repeats` times each, and the table gives medians.

A third contestant, "PureJaxRL + backport", is its program compiled with the one
compile fix ours applies to the installed JAX (`purejaxdqn.jax_backports`: Threefry
unrolled on CPU, as newer JAX does), so that what ours gains from our code and what it
gains from that fix are told apart.
"""

import argparse
import json
import statistics
import subprocess
import sys

OURS = """
import json, sys
from purejaxdqn import Config, train_seeds
config = Config(num_frames=int(sys.argv[1]), eval_every=0)
timings = {}
train_seeds(config, int(sys.argv[2]), timings=timings)
print(json.dumps(timings))
"""

# Timed as ours is: `compile_and_run` compiles ahead of time, then runs.
PEER = """
import importlib.util, json, sys
import jax
from purejaxdqn.train import compile_and_run
if sys.argv[4] == "backport":
    from purejaxdqn.jax_backports import unroll_threefry_on_cpu
    unroll_threefry_on_cpu()
spec = importlib.util.spec_from_file_location("peer", sys.argv[3])
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)
keys = jax.random.split(jax.random.PRNGKey(0), int(sys.argv[2]))
program = jax.jit(jax.vmap(peer.make_train(peer.default_config(int(sys.argv[1])))))
timings = {}
compile_and_run(program, (keys,), timings)
print(json.dumps(timings))
"""


def run(code: str, *args) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purejaxrl", required=True, help="your adapted copy of its dqn.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--num-frames", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    rows = []
    for seeds in args.seeds:
        runs = {"purejaxdqn": [], "PureJaxRL": [], "PureJaxRL + backport": []}
        for _ in range(args.repeats):
            runs["purejaxdqn"].append(run(OURS, args.num_frames, seeds))
            runs["PureJaxRL"].append(run(PEER, args.num_frames, seeds, args.purejaxrl, "-"))
            runs["PureJaxRL + backport"].append(
                run(PEER, args.num_frames, seeds, args.purejaxrl, "backport"))
            print(seeds, {k: v[-1] for k, v in runs.items()}, flush=True)
        med = {name: {k: statistics.median(r[k] for r in rs) for k in ("compile_s", "run_s")}
               for name, rs in runs.items()}
        fps = {name: seeds * args.num_frames / m["run_s"] for name, m in med.items()}
        rows.append((seeds, fps, med, runs))

    print(f"\n{args.num_frames:,} frames, tutorial settings, no periodic evaluation; "
          f"median of {args.repeats}, interleaved; frames/s over all seeds, compile apart")
    peers = ("PureJaxRL", "PureJaxRL + backport")
    print("| seeds | purejaxdqn frames/s | " + " | ".join(f"{p} frames/s | ratio" for p in peers)
          + " | compile s: ours / " + " / ".join(peers) + " |")
    print("|---:|---:|" + "---:|---:|" * len(peers) + "---|")
    for seeds, fps, med, _ in rows:
        print(f"| {seeds} | {fps['purejaxdqn']:,.0f} | "
              + " | ".join(f"{fps[p]:,.0f} | {fps['purejaxdqn'] / fps[p]:.2f}" for p in peers)
              + " | " + " / ".join(f"{med[n]['compile_s']:.1f}" for n in ("purejaxdqn", *peers))
              + " |")
    print(json.dumps([{"seeds": s, "runs": r} for s, _, _, r in rows]))


if __name__ == "__main__":
    main()
