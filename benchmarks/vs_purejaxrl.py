"""Ours against PureJaxRL's DQN, the strongest pure-JAX peer, on the tutorial's settings:
frames per second (compile apart) and cold compile time, interleaved in one run.

    python benchmarks/vs_purejaxrl.py --purejaxrl /tmp/purejaxrl/dqn_tutorial.py

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

Each runs in two layouts, so that what the split over the CPU's cores gains is told apart
from what the code gains: ours as its users run it (the default: seeds split over the
fewest CPU devices, at most one per core, that give the fewest seeds each) and on one
device; PureJaxRL as its users run it (`jax.jit(jax.vmap(train))`, one device) and with its
seeds split over the same devices as ours (keys sharded over a mesh, padded alike). The
matmul ceiling (`fps.make_ceiling`: the same matmuls and nothing else) is measured on the
split layout. The results file is written after each seed count; `--tag` names it apart
(for a second command over other seed counts). `--backport` adds PureJaxRL compiled with the one compile fix ours applies to
the installed JAX (`purejaxdqn.jax_backports`: Threefry unrolled on CPU, as newer JAX
does), on one device.
"""

import argparse
import json
import sys
from pathlib import Path

from harness import child_env, interleaved_seeds, median, run_python, write_table


OURS = """
import json, sys
from purejaxdqn import Config, layout, train_seeds
config = Config(num_frames=int(sys.argv[1]), eval_every=0)
timings = {}
train_seeds(config, int(sys.argv[2]), timings=timings)
print(json.dumps({**timings, "devices": layout.describe(int(sys.argv[2]))["devices"]}))
"""

# Timed as ours is: `compile_and_run` compiles ahead of time, then runs. Split: its keys
# placed over the devices as `fps.split_keys` places ours.
PEER = """
import importlib.util, json, sys
import jax
from purejaxdqn import layout
split = sys.argv[5] == "split"
layout.use_cpu_devices(None if split else 1, int(sys.argv[2]))
import fps
from purejaxdqn.train import compile_and_run
if sys.argv[4] == "backport":
    from purejaxdqn.jax_backports import unroll_threefry_on_cpu
    unroll_threefry_on_cpu()
spec = importlib.util.spec_from_file_location("peer", sys.argv[3])
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)
keys = jax.random.key_data(fps.split_keys(int(sys.argv[2])))  # raw uint32, as PRNGKey
program = jax.jit(jax.vmap(peer.make_train(peer.default_config(int(sys.argv[1])))))
timings = {}
compile_and_run(program, (keys,), timings)
print(json.dumps({**timings, "devices": len(keys.sharding.device_set)}))
"""

CEILING = """
import json, sys
from purejaxdqn import Config, layout
layout.use_cpu_devices(None if sys.argv[3] == "split" else 1, int(sys.argv[2]))
import fps
row = fps.time_program(fps.make_ceiling(Config(num_frames=int(sys.argv[1]), eval_every=0)),
                       int(sys.argv[2]), 1)
print(json.dumps(row))
"""


def run(code: str, *args, devices: str | None = None) -> dict:
    """`code` in a fresh process, on the library's default CPU devices or on `devices`."""
    env = child_env(devices=devices, drop=("PUREJAXDQN_CPU_DEVICES", "XLA_FLAGS"))
    return run_python(["-c", code, *args], env=env, cwd=Path(__file__).parent)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purejaxrl", required=True, help="your adapted copy of its dqn.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--num-frames", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the results file's name")
    parser.add_argument("--backport", action="store_true",
                        help="also PureJaxRL with our Threefry backport, one device")
    args = parser.parse_args()
    contestants = {
        "purejaxdqn (every core)": lambda n: run(OURS, args.num_frames, n),
        "purejaxdqn (1 device)": lambda n: run(OURS, args.num_frames, n, devices="1"),
        "PureJaxRL (1 device)": lambda n: run(PEER, args.num_frames, n, args.purejaxrl, "-",
                                              "one"),
        "PureJaxRL (split like ours)": lambda n: run(PEER, args.num_frames, n,
                                                     args.purejaxrl, "-", "split"),
        "ceiling (split like ours)": lambda n: run(CEILING, args.num_frames, n, "split"),
    }
    if args.backport:
        contestants["PureJaxRL + backport (1 device)"] = lambda n: run(
            PEER, args.num_frames, n, args.purejaxrl, "backport", "one")

    rows = []
    for seeds in args.seeds:
        runs = interleaved_seeds(contestants, seeds, args.repeats)
        med = {name: {k: median(rs, k) for k in ("compile_s", "run_s")}
               | {"devices": rs[0]["devices"]} for name, rs in runs.items()}
        fps = {name: seeds * args.num_frames / m["run_s"] for name, m in med.items()}
        rows.append({"seeds": seeds, "frames_per_second": fps, "medians": med, "runs": runs})
        write(args, contestants, rows)


def write(args, contestants: dict, rows: list) -> None:
    """The table of `rows` so far, printed and written to the results files."""
    ours, peer = "purejaxdqn (every core)", "PureJaxRL (1 device)"
    lines = [f"$ python benchmarks/vs_purejaxrl.py {' '.join(sys.argv[1:])}", "",
             f"{args.num_frames:,} frames, tutorial settings, no periodic evaluation; median "
             f"of {args.repeats} fresh processes, interleaved; frames/s over all seeds, "
             f"compile apart (compile s in brackets); ceiling: the same matmuls alone",
             "| seeds | devices | " + " | ".join(contestants) + " | ours / PureJaxRL, each as "
             "run | ours / PureJaxRL, same devices | ours / ceiling, same devices |",
             "|---:|---:|" + "---:|" * (len(contestants) + 3)]
    for row in rows:
        fps, med = row["frames_per_second"], row["medians"]
        lines.append(
            f"| {row['seeds']} | {med[ours]['devices']} | " + " | ".join(
                f"{fps[n]:,.0f} ({med[n]['compile_s']:.1f})" for n in contestants)
            + f" | {fps[ours] / fps[peer]:.2f} | "
            f"{fps[ours] / fps['PureJaxRL (split like ours)']:.2f} | "
            f"{fps[ours] / fps['ceiling (split like ours)']:.0%} |")
    path = write_table("vs-purejaxrl", lines, args.tag)
    path.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
