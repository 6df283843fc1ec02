"""Seeds batched with `vmap` (the library's way) against seeds run one after another on
each device with the unbatched program (`lax.map` inside `shard_map`), with every core.

`vmap` batches each device's seeds into one program, whose matmuls XLA may sum in another
order for another batch size: seed i's bits then depend on how many seeds share its device.
`lax.map` runs the one-seed program per seed, so seed i gives the same bits alone, among
many, on any device count. This measures what that costs: frames/s of both at each seed
count (compile apart, median of `--repeats` runs after one compile, the two interleaved),
and checks the bits of seed 0 and the last seed against each seed run alone.

    python benchmarks/investigations/seed_batching.py --seeds 8 64 256 --num-frames 20000

Results: benchmarks/results/seed-batching-<machine>.md.
"""

import argparse
import statistics
import sys
import time

from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: fps, harness
from purejaxdqn import layout  # noqa: E402

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--num-frames", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    layout.use_cpu_devices(layout.cpu_cores())

    import jax
    import numpy as np
    from jax.sharding import PartitionSpec

    import fps
    from purejaxdqn import Config, make_train

    config = Config(num_frames=args.num_frames, eval_every=0)
    train = make_train(config)

    def final_return(result):
        return np.asarray(result.metrics["final_eval_return"])

    def time_it(program, keys, repeats):
        start = time.perf_counter()
        compiled = program.lower(keys).compile()
        compile_s = time.perf_counter() - start
        runs, out = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            out = jax.block_until_ready(compiled(keys))
            runs.append(time.perf_counter() - start)
        return compile_s, statistics.median(runs), out

    alone = jax.jit(train)
    lines = [f"$ python benchmarks/investigations/seed_batching.py {' '.join(sys.argv[1:])}", "",
             f"Config(num_frames={args.num_frames:,}, eval_every=0), {jax.device_count()} CPU "
             f"devices (one per core), seeds split as the library splits them; median of "
             f"{args.repeats} runs after one compile; bits: the last layer's weights and the "
             f"final return of seeds 0 and n-1 against each seed trained alone",
             "| seeds | devices | vmap frames/s (compile s) | lax.map frames/s (compile s) | "
             "lax.map / vmap | vmap bits = alone | lax.map bits = alone |",
             "|---:|---:|---:|---:|---:|---|---|"]
    for num_seeds in args.seeds:
        keys = fps.split_keys(num_seeds)
        mesh = keys.sharding.mesh
        programs = {
            "vmap": jax.jit(jax.vmap(train)),
            "map": jax.jit(jax.shard_map(lambda k: jax.lax.map(train, k), mesh=mesh,
                                         in_specs=PartitionSpec("seeds"),
                                         out_specs=PartitionSpec("seeds"), check_vma=False)),
        }
        measured = {}
        for name, program in programs.items():
            measured[name] = time_it(program, keys, args.repeats)
        frames = num_seeds * config.num_frames
        same = {}
        for name, (_, _, result) in measured.items():
            same[name] = True
            for i in (0, num_seeds - 1):
                one = alone(keys[i])
                a = jax.tree.leaves(one.params)[-1]
                b = jax.tree.leaves(result.params)[-1][i]
                same[name] &= bool(np.array_equal(np.asarray(a), np.asarray(b)) and
                                   final_return(one) == final_return(result)[i])
        fps_ = {name: frames / m[1] for name, m in measured.items()}
        line = (f"| {num_seeds} | {len(keys.sharding.device_set)} | {fps_['vmap']:,.0f} "
                f"({measured['vmap'][0]:.1f}) | {fps_['map']:,.0f} ({measured['map'][0]:.1f}) | "
                f"{fps_['map'] / fps_['vmap']:.2f} | {'yes' if same['vmap'] else 'no'} | "
                f"{'yes' if same['map'] else 'no'} |")
        lines.append(line)
        print(line, flush=True)
    from harness import write_table

    write_table("seed-batching", lines)


if __name__ == "__main__":
    main()
