"""Frames per second of the default 40,000-frame run against the number of seeds (and of
environments per seed, and the replay ratio), beside this machine's compute ceiling for
the same matmuls, both with the seeds split over the CPU's cores as the library splits
them (`--cpu-devices 1`: one device).

    python benchmarks/fps.py                       # 1, 8, 64, 256 seeds, 3 runs each
    python benchmarks/fps.py --seeds 1 8 64 --eval-every 0
    python benchmarks/fps.py --seeds 1 8 64 --num-envs 1 4 10 16 20 --train-every 4 10 --eval-every 0

(Settings where neither `num_envs` nor `train_every` divides the other are skipped.)

For each seed count: compile time (ahead of time, `lower().compile()`) apart from run
time, the median of `--repeats` runs, XLA's memory estimate of the program, and bytes of
replay per seed, the device's peak memory where it reports one (GPUs), and the share of
compile in compile + run. The ceiling: the floating-point work of one frame is one acting forward
pass, plus every `train_every` frames one learning step (online forward, target forward,
backward); a plain jitted, vmapped scan of matmuls of exactly those shapes, timed the
same way, gives the frames per second this machine could reach if nothing but those
matmuls ran. Results go to benchmarks/results/<machine>.json and fps_vs_seeds.png.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jax.sharding import Mesh, NamedSharding, PartitionSpec

from purejaxdqn import Config, make_train, make_trainer

try:
    from purejaxdqn import layout
    from purejaxdqn.distributed import over_seeds
except ImportError:  # a baseline checkout from before the CPU split (gpu.py --baseline)
    layout = None

    def over_seeds(fn, in_axes, mesh=None):
        return jax.vmap(fn, in_axes)
from purejaxdqn.envs import resolve_env

from harness import RESULTS, machine_name  # noqa: E402


def layer_sizes(config: Config) -> list[int]:
    env, env_params, num_actions = resolve_env(config.env_name)
    obs_dim = int(np.prod(env.observation_space(env_params).shape))
    return [obs_dim, *config.hidden_sizes, num_actions]


def flops_per_frame(config: Config) -> float:
    """Matmul FLOPs of one frame: acting forward + (learning step) / train_every."""
    sizes = layer_sizes(config)
    forward = 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))  # per example
    # Backward: a weight gradient for every layer, an input gradient for all but the first.
    backward = 2 * forward - 2 * sizes[0] * sizes[1]
    learning = config.batch_size * (forward + forward + backward)  # online, target, grad
    return forward + learning / config.train_every


def make_ceiling(config: Config):
    """A scan of exactly the trainer's matmuls, per seed, with nothing else around them."""
    sizes = layer_sizes(config)
    shapes = list(zip(sizes[:-1], sizes[1:]))

    def forward(weights, x):
        for w in weights:
            x = x @ w
        return x

    def learn(weights, x_batch):
        online = [x_batch]
        for w in weights:
            online.append(online[-1] @ w)
        target = forward(weights, x_batch)
        grad_out = online[-1] - target
        new_weights = list(weights)
        for i in reversed(range(len(weights))):
            new_weights[i] = weights[i] - 1e-6 * (online[i].T @ grad_out)
            if i > 0:
                grad_out = grad_out @ weights[i].T
        return new_weights

    def block(weights, x_act, x_batch):
        for _ in range(config.block_frames // config.num_envs):  # acting steps
            x_act = x_act + 1e-3 * forward(weights, x_act)[..., :1]
        for _ in range(config.block_frames // config.train_every):  # learning steps
            weights = learn(weights, x_batch)
        return weights, x_act

    def run(key):
        keys = jax.random.split(key, len(shapes) + 2)
        weights = [0.1 * jax.random.normal(k, s) for k, s in zip(keys, shapes)]
        x_act = jax.random.normal(keys[-2], (config.num_envs, sizes[0]))
        x_batch = jax.random.normal(keys[-1], (config.batch_size, sizes[0]))

        def body(carry, _):
            weights, x_act = carry
            return block(weights, x_act, x_batch), None

        (weights, x_act), _ = jax.lax.scan(body, (weights, x_act), None,
                                           length=config.num_frames // config.block_frames)
        return sum(jnp.sum(w) for w in weights) + jnp.sum(x_act)

    return run


def split_keys(num_seeds: int):
    """`num_seeds` of `jax.random.key(0)`'s keys, split over the devices as the library
    splits seeds: over the fewest of them that give the fewest seeds each, padded to a
    multiple of that count (padding seeds run, and count against the frames/s)."""
    devices = (layout.best_device_count(num_seeds, jax.device_count()) if layout
               else jax.device_count())
    keys = jax.random.split(jax.random.key(0), -(-num_seeds // devices) * devices)
    mesh = Mesh(np.array(jax.devices()[:devices]), ("seeds",))
    return jax.device_put(keys, NamedSharding(mesh, PartitionSpec("seeds")))


def time_program(fn, num_seeds: int, repeats: int, keys=None,
                 max_bytes: int | None = None, compiler_options: dict | None = None) -> dict:
    """Compile ahead of time (with XLA's `compiler_options`, if given), then run `repeats`
    times; median run time. `compile_s` is the whole compile, of which `trace_s` and
    `lower_s` are the tracing to a jaxpr and its lowering to StableHLO (the rest is
    XLA's). The seeds run as the library runs them (`distributed.over_seeds`: one after
    another on each CPU device, vmapped on a GPU). `keys` default to
    `split_keys(num_seeds)` (one device where JAX has one); a
    program whose memory estimate exceeds `max_bytes` is compiled but not run (its `run_s`
    is None). The result's `devices` is how many devices the keys were split over."""
    keys = split_keys(num_seeds) if keys is None else keys
    mesh = getattr(keys.sharding, "mesh", None) or Mesh(
        np.array(list(keys.sharding.device_set)), ("seeds",))
    program = jax.jit(over_seeds(fn, (0,), mesh))
    start = time.perf_counter()
    traced = program.trace(keys)
    traced_at = time.perf_counter()
    lowered = traced.lower()
    lowered_at = time.perf_counter()
    compiled = lowered.compile(compiler_options)
    compile_s = time.perf_counter() - start
    phases = {"trace_s": traced_at - start, "lower_s": lowered_at - traced_at}
    estimate = xla_memory_bytes(compiled)
    if max_bytes is not None and estimate is not None and estimate > max_bytes:
        return {"compile_s": compile_s, **phases, "run_s": None, "xla_memory_bytes": estimate}
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        runs.append(time.perf_counter() - start)
    stats = jax.devices()[0].memory_stats() or {}  # None on CPU
    run_s = statistics.median(runs)
    return {"compile_s": compile_s, **phases, "run_s": run_s, "runs_s": runs,
            "devices": len(keys.sharding.device_set),
            "compile_share": compile_s / (compile_s + run_s), "xla_memory_bytes": estimate,
            "device_peak_bytes": stats.get("peak_bytes_in_use")}


def xla_memory_bytes(compiled) -> int | None:
    """XLA's estimate of a compiled program's memory: arguments, outputs, temporaries."""
    memory = compiled.memory_analysis()
    return None if memory is None else int(memory.argument_size_in_bytes
                                           + memory.output_size_in_bytes
                                           + memory.temp_size_in_bytes)


def replay_bytes_per_seed(config: Config) -> int:
    trainer = make_trainer(config)
    state = jax.eval_shape(trainer.init, jax.random.key(0), config.hyperparams())
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state.buffer_state))


def plot(path: Path, rows: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for setting in sorted({(r["num_envs"], r["train_every"]) for r in rows}):
        part = [r for r in rows if (r["num_envs"], r["train_every"]) == setting]
        label = f"num_envs={setting[0]}, train_every={setting[1]}"
        seeds = [r["num_seeds"] for r in part]
        line, = ax.plot(seeds, [r["frames_per_second"] for r in part], "o-", label=label)
        ax.plot(seeds, [r["ceiling_frames_per_second"] for r in part], "s--",
                color=line.get_color(), alpha=0.5)
    ax.set(xscale="log", yscale="log", xlabel="seeds (vmapped)",
           ylabel="frames per second, all seeds", title=title + " (dashed: matmul ceiling)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1])
    parser.add_argument("--train-every", type=int, nargs="+", default=[Config.train_every],
                        help="frames per learning step (the replay ratio's inverse)")
    parser.add_argument("--num-frames", type=int, default=Config.num_frames)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=Config.eval_every,
                        help="0 turns periodic evaluation off")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default: benchmarks/results/<device>.json)")
    parser.add_argument("--cpu-devices", type=int, default=None,
                        help="CPU devices to split seeds over (default: one per core)")
    args = parser.parse_args()
    layout.use_cpu_devices(args.cpu_devices or layout.cpu_cores())

    machine = machine_name()
    rows = []
    for train_every in args.train_every:
        for num_envs in args.num_envs:
            try:
                config = Config(eval_every=args.eval_every, num_frames=args.num_frames,
                                train_every=train_every, num_envs=num_envs)
            except ValueError as error:  # e.g. 4 environments, a learning step per 10 frames
                print(f"train_every {train_every:2d}, {num_envs:2d} envs: skipped: {error}")
                continue
            for num_seeds in args.seeds:
                ours = time_program(make_train(config), num_seeds, args.repeats)
                ceiling = time_program(make_ceiling(config), num_seeds, args.repeats)
                frames = num_seeds * config.num_frames
                row = {"num_seeds": num_seeds, "num_envs": num_envs,
                       "train_every": train_every, **ours,
                       "frames_per_second": frames / ours["run_s"],
                       "ceiling_frames_per_second": frames / ceiling["run_s"],
                       "ceiling_compile_s": ceiling["compile_s"]}
                row["fraction_of_ceiling"] = (row["frames_per_second"]
                                              / row["ceiling_frames_per_second"])
                rows.append(row)
                peak = row["device_peak_bytes"]
                print(f"train_every {train_every:2d}, {num_envs:2d} envs, {num_seeds:5d} seeds "
                      f"on {ours['devices']} device(s): "
                      f"compile {row['compile_s']:.2f} s ({row['compile_share']:.0%}), run "
                      f"{row['run_s']:.2f} s, {row['frames_per_second']:,.0f} frames/s, ceiling "
                      f"{row['ceiling_frames_per_second']:,.0f} ({row['fraction_of_ceiling']:.0%}),"
                      f" XLA memory {row['xla_memory_bytes'] / 2**20:,.0f} MiB"
                      + (f", device peak {peak / 2**20:,.0f} MiB" if peak else ""), flush=True)

    config = Config(eval_every=args.eval_every, num_frames=args.num_frames)
    result = {
        "machine": machine, "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__, "devices": jax.device_count(),
        "eval_every": config.eval_every,
        "num_frames": config.num_frames,
        "flops_per_frame": flops_per_frame(config),
        "replay_bytes_per_seed": replay_bytes_per_seed(config), "rows": rows,
        "command": "python benchmarks/fps.py " + " ".join(
            ["--seeds", *map(str, args.seeds), "--num-envs", *map(str, args.num_envs),
             "--train-every", *map(str, args.train_every), "--num-frames",
             str(args.num_frames), "--repeats", str(args.repeats),
             "--eval-every", str(args.eval_every), "--cpu-devices",
             str(args.cpu_devices or layout.cpu_cores())]),
    }
    out = args.out or RESULTS / f"{machine}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    # The README's figure for the default file, a figure beside any other --out.
    plot(out.with_name("fps_vs_seeds.png") if args.out is None else out.with_suffix(".png"), rows,
         f"{machine}, eval_every={config.eval_every}")
    print(f"flops/frame {result['flops_per_frame']:,.0f} at train_every "
          f"{config.train_every}; replay {result['replay_bytes_per_seed'] / 2**20:.2f} MiB "
          f"per seed; wrote {out}")


if __name__ == "__main__":
    main()
