"""Peak resident memory of PQN-RNN as its updates go on, on one CPU device and on two, and
on two with XLA's CPU library fusions (YNNPACK) off: the leak docs/long-runs.md describes
(a recurrent core of 256 units on several CPU devices grows the process by each update).

    python benchmarks/memory_growth.py --seeds 4 --updates 2 8

Each run is a fresh process: `memorychain-pqn-rnn` with PureJaxQL's sizes (two layers of
256, a GRU of 256; `--memory-size` to change the core), MemoryChain at memory_length 100,
`--updates` updates of 32 x 128 frames a seed.
"""

import argparse
import json

from harness import child_env, run_python, write_table

PROBE = """
import json, resource, sys
from purejaxdqn import Config, train_seeds
config = Config.preset("memorychain-pqn-rnn", hidden_sizes=(256, 256), memory_size=int(sys.argv[3]),
                       env_params={"memory_length": 100}, num_frames=int(sys.argv[2]) * 4096)
train_seeds(config, int(sys.argv[1]))
print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

LAYOUTS = {  # name: (devices, XLA_FLAGS)
    "1 device": (1, None),
    "2 devices": (2, None),
    "2 devices, YNNPACK fusions off": (2, "--xla_cpu_experimental_ynn_fusion_type="),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--updates", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--memory-size", type=int, default=256)
    args = parser.parse_args()
    lines = [f"$ python benchmarks/memory_growth.py --seeds {args.seeds} --updates "
             f"{' '.join(map(str, args.updates))} --memory-size {args.memory_size}", "",
             f"Peak resident memory (GB) of {args.seeds} seeds of PQN-RNN (GRU "
             f"{args.memory_size}) by updates, a fresh process each", "",
             "| layout | " + " | ".join(f"{u} updates" for u in args.updates) + " |",
             "|---|" + "---:|" * len(args.updates)]
    rows = {}
    for name, (devices, flags) in LAYOUTS.items():
        env = child_env(devices=devices, **({"XLA_FLAGS": flags} if flags else {}))
        rows[name] = [run_python(["-c", PROBE, args.seeds, updates, args.memory_size],
                                 env=env)["peak_rss_bytes"] / 1e9 for updates in args.updates]
        lines.append(f"| {name} | " + " | ".join(f"{gb:.2f}" for gb in rows[name]) + " |")
        print(lines[-1], flush=True)
    path = write_table("memory-growth", lines)
    path.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
