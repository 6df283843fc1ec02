"""Our PQN against PureJaxQL's (the PQN paper's own code) with its configs: final greedy
return and frames per second (compile apart), interleaved in one run.

    python benchmarks/vs_purejaxql.py --purejaxql /tmp/purejaxql/pqn_gymnax.py
    python benchmarks/vs_purejaxql.py --config pqn_rnn_memory_chain \
        --purejaxql /tmp/purejaxql/pqn_rnn_gymnax.py

`--config` names PureJaxQL's config: `pqn_cartpole` (the default: its `pqn_gymnax.py`),
or, with memory (its `pqn_rnn_gymnax.py`, a GRU after two LayerNormed layers, Q(lambda)
over each rollout with a 4-step window of the previous one), `pqn_rnn_memory_chain`
(bsuite's MemoryChain at memory_length 100, 24 updates of 32 x 128 frames) or
`pqn_rnn_cartpole` (244 updates of 32 x 64 frames). Ours runs the same hyperparameters
and sizes (`CONFIGS`); unlike PureJaxQL's, our recurrent network does not read the last
action, and our epsilon decays by frame, not by update.

PureJaxQL is not on PyPI, and its code never enters this repository: `--purejaxql` names
your own adapted copy of its `purejaxql/pqn_gymnax.py` or `pqn_rnn_gymnax.py` (repository
mttga/purejaxql) that defines `make_train(config)` as upstream does and
`default_config(num_frames, test)` (for the recurrent file `default_config(num_frames,
test, name)`) returning `config/alg/NAME.yaml` with `config.yaml`'s evaluation settings. The copy
these figures come from changed upstream only as follows: gymnax 1.0's step (six values;
done = terminated or truncated, upstream's semantics), `final_observation` left out of its
metrics, no hydra, wandb or saving.

Under JAX 0.10.2 PureJaxQL's recurrent program hangs on this CPU from 8 vmapped seeds on
(every thread waiting; 4 seeds run); under 0.9.2 it runs. `--purejaxql-python` names the
interpreter of an environment for it, e.g. `python -m venv V && V/bin/pip install
jax==0.9.2 jaxlib==0.9.2 flax optax gymnax==1.0.1 chex six`; ours stays on this one, and
the tables name both versions. In PureJaxQL's own pins (`jax==0.4.20 jaxlib==0.4.20
flax==0.7.4 optax==0.1.7 chex==0.1.84 gymnax==0.0.6 six "numpy<2" "scipy<=1.12"`) its copy
keeps upstream's five-value step.

PureJaxQL runs as its users run it, `jax.jit(jax.vmap(train))` with its config: 244
updates of 32 x 64 frames, and a greedy test of 128 environments x 500 steps every 12
updates (its TEST_INTERVAL 0.05). Its final greedy return is its last test's mean return.
It also runs without those tests (`TEST_DURING_TRAINING` off), the same training work as
ours. Ours runs the `cartpole-pqn-purejaxql` settings (the same hyperparameters; see
`PRESETS`) as its users run it, `train_seeds`, with its final 10-episode evaluation only.
Each measurement is a fresh process (cold compile, no compilation cache); the contestants
alternate, `--repeats` times each, and the table gives medians. `--seed` is every
contestant's root key. `--no-peer-tests` and `--no-same-work` leave out one of
PureJaxQL's two runs. `--num-frames` shortens the runs for a speed figure alone (the
schedules still decay over 500,000 frames, as PureJaxQL's TOTAL_TIMESTEPS_DECAY keeps
them).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from harness import child_env, interleaved_seeds, median, run_python, write_table

OURS = """
import dataclasses, json, sys
from purejaxdqn import Config, layout, train_seeds
config = Config.preset(sys.argv[4], **{k: tuple(v) if isinstance(v, list) else v
                                       for k, v in json.loads(sys.argv[5]).items()})
frames = int(sys.argv[1]) // config.block_frames * config.block_frames
config = dataclasses.replace(config, num_frames=frames)
timings = {}
result = train_seeds(config, int(sys.argv[2]), int(sys.argv[3]), timings=timings)
print(json.dumps({**timings, "frames": frames, "devices": layout.describe(int(sys.argv[2]))["devices"],
                  "final": result.metrics["final_eval_return"].tolist()}))
"""

# Timed as ours is (`train.compile_and_run`: compiled ahead of time, then run), on one
# CPU device, without importing purejaxdqn: it may run under another interpreter
# (`--purejaxql-python`) whose JAX is not ours.
PEER = """
import importlib.util, json, sys, time
import jax, numpy as np
spec = importlib.util.spec_from_file_location("peer", sys.argv[4])
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)
name = {"name": sys.argv[6]} if sys.argv[6] != "pqn_cartpole" else {}
config = peer.default_config(int(sys.argv[1]), test=sys.argv[5] == "test", **name)
keys = jax.random.split(jax.random.PRNGKey(int(sys.argv[3])), int(sys.argv[2]))
start = time.perf_counter()
compiled = jax.jit(jax.vmap(peer.make_train(config))).lower(keys).compile()
compiled_at = time.perf_counter()
out = jax.block_until_ready(compiled(keys))
timings = {"compile_s": compiled_at - start, "run_s": time.perf_counter() - compiled_at}
frames = int(sys.argv[1]) // (config["NUM_ENVS"] * config["NUM_STEPS"]) * config["NUM_ENVS"] * config["NUM_STEPS"]
test = out["metrics"].get("test/returned_episode_returns")
print(json.dumps({**timings, "frames": frames, "devices": jax.device_count(), "jax": jax.__version__,
                  "final": None if test is None else np.asarray(test)[:, -1].tolist()}))
"""


# PureJaxQL's configs, and ours for the same work: a preset and what differs from it.
PQN_RNN = dict(hidden_sizes=(256, 256), memory_size=256, max_grad_norm=10.0, gamma=0.99,
               q_lambda=0.95)
CONFIGS = {
    "pqn_cartpole": ("cartpole-pqn-purejaxql", {}),
    # 24 updates of 32 x 128 frames; epsilon to 0.01 over 10% of them (2.4 updates)
    "pqn_rnn_memory_chain": ("memorychain-pqn-rnn", dict(
        PQN_RNN, env_params={"memory_length": 100}, num_frames=24 * 4096,
        eps_decay_frames=round(2.4 * 4096))),
    "pqn_rnn_cartpole": ("cartpole-pqn-rnn", PQN_RNN),
}
TASKS = {"pqn_cartpole": "CartPole-v1", "pqn_rnn_cartpole": "CartPole-v1",
         "pqn_rnn_memory_chain": "MemoryChain-bsuite (memory_length 100)"}

# The contestants' names, in the tables' order.
NAMES = OURS_NAME, PEER_NAME, SAME_NAME = (
    "purejaxdqn", "PureJaxQL, its tests (1 device)", "PureJaxQL, no tests (1 device)")


def run(code: str, *args, devices: int | None = None, python: str = sys.executable) -> dict:
    """`code` in a fresh process of `python`, on the library's default CPU devices (or
    `devices`)."""
    env = (child_env(devices=devices) if devices else
           child_env(drop=("PUREJAXDQN_CPU_DEVICES", "XLA_FLAGS")))
    return run_python(["-c", code, *args], env=env, cwd=Path(__file__).parent, python=python)


def main():
    from purejaxdqn import Config
    from purejaxdqn.stats import summarize

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purejaxql", required=True, help="your adapted copy of pqn_gymnax.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--config", choices=CONFIGS, default="pqn_cartpole",
                        help="PureJaxQL's config (config/alg/NAME.yaml)")
    parser.add_argument("--num-frames", type=int,
                        help="frames a seed (default: the config's: 499,712 or 98,304)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--purejaxql-python", default=sys.executable,
                        help="the interpreter PureJaxQL runs under (default: this one)")
    parser.add_argument("--our-devices", type=int,
                        help="our CPU devices (default: one per core, as the library's)")
    parser.add_argument("--seed", type=int, default=0, help="each contestant's root key")
    parser.add_argument("--tag", default="", help="suffix of the results file's name")
    parser.add_argument("--no-peer-tests", action="store_true",
                        help="leave out PureJaxQL with its tests: they run every 5%% of its "
                             "updates whatever the run's length, so a shortened run is "
                             "mostly tests")
    parser.add_argument("--no-same-work", action="store_true",
                        help="leave out PureJaxQL without its tests (the same-work ratio)")
    args = parser.parse_args()
    args.purejaxql = str(Path(args.purejaxql).resolve())  # the children run in benchmarks/
    preset, overrides = CONFIGS[args.config]
    args.num_frames = args.num_frames or Config.preset(preset, **overrides).num_frames
    ours = (preset, json.dumps(overrides))
    contestants = {
        OURS_NAME: lambda n: run(OURS, args.num_frames, n, args.seed, *ours,
                                 devices=args.our_devices),
        PEER_NAME: lambda n: run(PEER, args.num_frames, n, args.seed, args.purejaxql, "test",
                                 args.config, devices=1, python=args.purejaxql_python),
        SAME_NAME: lambda n: run(PEER, args.num_frames, n, args.seed, args.purejaxql, "none",
                                 args.config, devices=1, python=args.purejaxql_python),
    }
    if args.no_peer_tests:
        del contestants[PEER_NAME]
    if args.no_same_work:
        del contestants[SAME_NAME]
    if len(contestants) == 1:
        parser.error("--no-peer-tests and --no-same-work leave no PureJaxQL to compare with")
    rows = []
    for seeds in args.seeds:
        runs = interleaved_seeds(contestants, seeds, args.repeats)
        med = {name: {k: median(rs, k) for k in ("compile_s", "run_s")}
               | {"devices": rs[0]["devices"], "frames": rs[0]["frames"]}
               for name, rs in runs.items()}
        fps = {name: seeds * m["frames"] / m["run_s"] for name, m in med.items()}
        final = {name: summarize(np.asarray(rs[0]["final"])) for name, rs in runs.items()
                 if rs[0]["final"] is not None}
        rows.append({"seeds": seeds, "frames_per_second": fps, "medians": med,
                     "final": final, "runs": runs})
        write(args, contestants, rows)


def cell(summary: dict) -> str:
    return f"{summary['value']:.1f} [{summary['ci_low']:.1f}, {summary['ci_high']:.1f}]"


def write(args, contestants: dict, rows: list) -> None:
    """The tables of `rows` so far, printed and written to the results files."""
    ours, peer, same = NAMES
    lines = [f"$ python benchmarks/vs_purejaxql.py {' '.join(sys.argv[1:])}", "",
             f"{TASKS[args.config]}, PureJaxQL's {args.config} config, "
             f"{rows[0]['medians'][ours]['frames']:,} "
             f"frames per seed; median of {args.repeats} fresh processes, interleaved; "
             f"frames/s over all seeds, compile apart (compile s in brackets)", "",
             "| seeds | devices (ours) | " + " | ".join(contestants)
             + " | ours / PureJaxQL as run | ours / PureJaxQL, same work |",
             "|---:|---:|" + "---:|" * (len(contestants) + 2)]
    import jax  # the versions each ran under: PureJaxQL may have its own interpreter
    peers = {r.get("jax") for row in rows for n in (peer, same) for r in row["runs"].get(n, [])}
    if peers - {None, jax.__version__}:
        lines[2] += (f"; PureJaxQL under JAX {', '.join(sorted(peers - {None}))} "
                     f"(`--purejaxql-python`), ours under {jax.__version__}")
    for row in rows:
        fps, med = row["frames_per_second"], row["medians"]
        lines.append(f"| {row['seeds']} | {med[ours]['devices']} | " + " | ".join(
            f"{fps[n]:,.0f} ({med[n]['compile_s']:.1f})" for n in contestants)
            + "".join(f" | {fps[ours] / fps[n]:.2f}" if n in fps else " | -" for n in (peer, same))
            + " |")
    lines += ["", "Final greedy return (ours: 10 episodes per seed; PureJaxQL: its last test, "
              "128 environments), over seeds:", "",
              "| seeds | contestant | mean [95% CI] | IQM [95% CI] |", "|---:|---|---:|---:|"]
    for row in rows:
        for name, summary in row["final"].items():
            lines.append(f"| {row['seeds']} | {name} | {cell(summary['mean'])} | "
                         f"{cell(summary['iqm'])} |")
    name = "vs-purejaxql" + ("" if args.config == "pqn_cartpole"
                             else "-" + args.config.replace("_", "-"))
    path = write_table(name, lines, args.tag)
    path.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
