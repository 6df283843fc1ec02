"""The GPU table in one command, on whatever accelerator JAX finds: frames per second
against seeds (ours and, given your adapted copy, PureJaxRL's DQN, interleaved), compile
apart, memory, the roofline and the fraction of it reached, where the device's time goes,
the compile phases, and time to solve.

    python benchmarks/gpu.py --purejaxrl .peer/dqn_tutorial.py
    python benchmarks/gpu.py --seeds 1 2 --num-frames 4000 --profile-seeds 2 --solve-seeds 4

(the second is a smoke run: a CPU will do). The settings are the tutorial's with no
periodic evaluation (`Config(eval_every=0)`), as in `vs_purejaxrl.py`, whose docstring
says how to adapt PureJaxRL's `dqn.py` (never commit it). `--baseline DIR` adds a third
contestant: purejaxdqn imported from DIR (a checkout of another commit, e.g. 435e8c6, the
code the first GPU figures came from), to hold a ratio on a card other than theirs.

Every measurement is a fresh process: each compile is cold, and no process holds device
memory that the next needs. A seed count whose XLA memory estimate exceeds the device's
memory is compiled, not run, and larger ones are skipped. The sections:
- fps: frames/s over all seeds (median of `--repeats`), compile s, XLA's memory estimate,
  the device's peak memory.
- roofline: the device's copy bandwidth and matmul rate, measured here (a 1 GiB
  elementwise pass; an 8192^3 product at default precision, TF32 on NVIDIA GPUs); a frame
  moves `params x (1 / num_envs + 10 / train_every)` bytes per seed (acting reads the
  weights once per acting step; a learning step makes about ten passes over parameters,
  gradients, Adam's moments and the target) and does `fps.flops_per_frame` FLOPs; the
  roofline is the lower of the two rates, and each row says what fraction it reached.
- profile: device time by kind of kernel (matmul, elementwise fusion, reduction,
  transpose, copy) over one run of `--profile-frames` frames at `--profile-seeds` seeds,
  read from JAX's profiler trace (Perfetto JSON), with kernels per frame.
- compile: trace, lower and XLA compile seconds of the default program (`Config()`) at
  1 seed.
- solve: preset cartpole-40k, `--solve-seeds` seeds, wall clock of `purejaxdqn train`
  with compile: cold, then with the persistent compilation cache filled by a first run.
Results: benchmarks/results/gpu-<device>.json and .md.
"""

import argparse
import collections
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

from harness import child_env, device_ops, kind_of, median, run_python, timed

HERE = Path(__file__).resolve().parent
from harness import RESULTS  # noqa: E402
PASSES_PER_LEARNING_STEP = 10


# ---- children: each runs in a fresh process and prints one JSON line -------------------

def config_for(num_frames: int, **overrides):
    from purejaxdqn import Config
    return Config(**{"num_frames": num_frames, "eval_every": 0, **overrides})


def child_fps(who: str, seeds: int, num_frames: int, repeats: int, peer: str | None,
              compiler_options: dict | None = None, overrides: dict | None = None):
    """`overrides` (Config fields) and `compiler_options` apply to ours only."""
    import jax
    from fps import time_program

    device = jax.devices()[0]
    limit = (device.memory_stats() or {}).get("bytes_limit")
    if who == "PureJaxRL":
        import importlib.util
        spec = importlib.util.spec_from_file_location("peer", peer)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = module.make_train(module.default_config(num_frames))
        keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    else:  # ours, or the baseline checkout first on PYTHONPATH
        from purejaxdqn import make_train
        fn, keys = make_train(config_for(num_frames, **(overrides or {}))), None
    return time_program(fn, seeds, repeats, keys=keys, max_bytes=limit,
                        compiler_options=compiler_options or None) | {
        "device": device.device_kind}


def child_roofline(num_frames: int):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from fps import flops_per_frame
    from purejaxdqn import make_trainer

    device = jax.devices()[0]
    gpu = device.platform != "cpu"
    x = jnp.ones((2**28 if gpu else 2**25,), jnp.float32)
    bandwidth = 2 * x.nbytes / timed(jax.jit(lambda x: x * 1.0001 + 1.0), x)
    n = 8192 if gpu else 1024
    a = jnp.ones((n, n), jnp.float32) / n
    matmul_rate = 2 * n**3 / timed(jax.jit(lambda a: a @ a), a)

    config = config_for(num_frames)
    trainer = make_trainer(config)
    state = jax.eval_shape(trainer.init, jax.random.key(0), config.hyperparams())
    param_bytes = sum(int(np.prod(x.shape)) * x.dtype.itemsize
                      for x in jax.tree.leaves(state.online_params))
    bytes_per_frame = param_bytes * (1 / config.num_envs
                                     + PASSES_PER_LEARNING_STEP / config.train_every)
    flops = flops_per_frame(config)
    return {"device": device.device_kind, "platform": device.platform,
            "jax": jax.__version__, "memory_limit_bytes": (device.memory_stats() or {}).get(
                "bytes_limit"),
            "bandwidth_bytes_per_s": bandwidth, "matmul_flops_per_s": matmul_rate,
            "param_bytes": param_bytes, "bytes_per_frame": bytes_per_frame,
            "flops_per_frame": flops,
            "roofline_frames_per_s": min(bandwidth / bytes_per_frame, matmul_rate / flops),
            "bound": "memory" if bandwidth / bytes_per_frame < matmul_rate / flops
            else "matmul"}


def child_profile(seeds: int, num_frames: int):
    import jax

    from purejaxdqn import make_train

    keys = jax.random.split(jax.random.key(0), seeds)
    compiled = jax.jit(jax.vmap(make_train(config_for(num_frames)))).lower(keys).compile()
    jax.block_until_ready(compiled(keys))
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            start = time.perf_counter()
            jax.block_until_ready(compiled(keys))
            wall_us = (time.perf_counter() - start) * 1e6
        path = next(Path(tmp).rglob("perfetto_trace.json.gz"))
        trace = json.load(gzip.open(path))
    trace = trace["traceEvents"] if isinstance(trace, dict) else trace
    ops = device_ops(trace)
    by_kind, by_name = collections.Counter(), collections.Counter()
    for e in ops:
        by_kind[kind_of(e["name"])] += e.get("dur", 0)
        by_name[e["name"]] += e.get("dur", 0)
    busy = sum(by_kind.values())
    return {"seeds": seeds, "frames": num_frames, "wall_us": wall_us, "busy_us": busy,
            "ops": len(ops), "ops_per_frame": len(ops) / num_frames,
            "us_per_frame": {k: v / num_frames for k, v in by_kind.most_common()},
            "top_ops_us": [[name, us] for name, us in by_name.most_common(12)]}


def child_compile():
    import jax

    from purejaxdqn import Config, make_train

    keys = jax.random.split(jax.random.key(0), 1)
    program = jax.jit(jax.vmap(make_train(Config())))
    start = time.perf_counter()
    traced = program.trace(keys)
    traced_at = time.perf_counter()
    lowered = traced.lower()
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    xla_s = time.perf_counter() - lowered_at
    hlo = compiled.as_text()
    return {"trace_s": traced_at - start, "lower_s": lowered_at - traced_at, "xla_s": xla_s,
            "fusions": hlo.count(" fusion("), "loops": hlo.count(" while(")}


CHILDREN = {"fps": child_fps, "roofline": child_roofline, "profile": child_profile,
            "compile": child_compile}


def child(name: str, *args, pythonpath: str | None = None):
    """One of CHILDREN, in a fresh process (see `harness.run_python`)."""
    return run_python([__file__, "--child", name, json.dumps(args)],
                      env=child_env(checkout=pythonpath))


# ---- the parent: no JAX here, so that it holds no device memory ------------------------

def mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f}"


def tables(result: dict) -> str:
    roof = result["roofline"]
    names = list(result["fps"][0]["runs"]) if result["fps"] else []
    lines = [f"# {roof['device']} ({roof['platform']}, jax {roof['jax']})", "",
             f"`{result['command']}`", "",
             f"Tutorial settings, {result['num_frames']:,} frames, no periodic evaluation; "
             f"fresh process per run, median of {result['repeats']}, interleaved. Roofline: "
             f"{roof['roofline_frames_per_s']:,.0f} frames/s ({roof['bound']}-bound: "
             f"{roof['bytes_per_frame'] / 1e3:.0f} KB and {roof['flops_per_frame'] / 1e6:.1f} "
             f"MFLOP per frame; measured {roof['bandwidth_bytes_per_s'] / 1e9:,.0f} GB/s, "
             f"{roof['matmul_flops_per_s'] / 1e12:,.1f} TFLOP/s).", "",
             "| seeds | " + " | ".join(f"{n} frames/s" for n in names)
             + " | ratio | " + " | ".join(f"{n} compile s" for n in names)
             + " | our XLA memory MiB | our device peak MiB | of roofline |",
             "|---:|" + "---:|" * (2 * len(names) + 4)]
    for row in result["fps"]:
        fps = {n: row["runs"][n]["frames_per_s"] for n in names}
        ours = row["runs"][names[0]]
        ratio = (f"{fps[names[0]] / fps[names[1]]:.2f}"
                 if len(names) > 1 and None not in (fps[names[0]], fps[names[1]]) else "-")
        lines.append(
            f"| {row['seeds']:,} | "
            + " | ".join("-" if f is None else f"{f:,.0f}" for f in fps.values())
            + f" | {ratio} | "
            + " | ".join(f"{row['runs'][n]['compile_s']:.1f}" for n in names)
            + f" | {mib(ours['xla_memory_bytes'])} | {mib(ours.get('device_peak_bytes'))} | "
            + ("-" if fps[names[0]] is None
               else f"{fps[names[0]] / roof['roofline_frames_per_s']:.0%}") + " |")
    prof = result["profile"]
    lines += ["", f"Device time per frame at {prof['seeds']:,} seeds ({prof['frames']:,} frames, "
              f"device busy {prof['busy_us'] / prof['wall_us']:.0%} of the wall time, "
              f"{prof['ops_per_frame']:.1f} kernels per frame):", "",
              "| kind | us per frame |", "|---|---:|"]
    lines += [f"| {kind} | {us:.2f} |" for kind, us in prof["us_per_frame"].items()]
    comp = result["compile"]
    lines += ["", f"Compile of `Config()` at 1 seed: trace {comp['trace_s']:.1f} s, lower "
              f"{comp['lower_s']:.1f} s, XLA {comp['xla_s']:.1f} s ({comp['fusions']} fusions, "
              f"{comp['loops']} loops in the optimised program).", "",
              f"Time to solve (preset cartpole-40k, {result['solve_seeds']} seeds, seed "
              f"{result['solve_seed']}, `purejaxdqn train`, wall clock with compile):", "",
              "| run | wall s | compile s | run s | final IQM |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {r['wall_s']:.1f} | {r['compile_s']:.1f} | {r['run_s']:.1f} | "
              f"{r['iqm']:.1f} |" for name, r in result["solve"].items()]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 64, 1024, 4096],
                        help="add 16384 where the device time allows (minutes per contestant)")
    parser.add_argument("--num-frames", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--purejaxrl", help="your adapted copy of its dqn.py")
    parser.add_argument("--baseline", help="a checkout of another purejaxdqn commit")
    parser.add_argument("--profile-seeds", type=int, default=4096)
    parser.add_argument("--profile-frames", type=int, default=4000)
    parser.add_argument("--solve-seeds", type=int, default=64)
    parser.add_argument("--solve-seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default: benchmarks/results/gpu-<device>.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(HERE))
        print(json.dumps(CHILDREN[args.child](*json.loads(args.child_args))))
        return

    from time_to_solve import run as solve_run

    contestants = {"purejaxdqn": (None, None)}
    if args.purejaxrl:
        contestants["PureJaxRL"] = (str(Path(args.purejaxrl).resolve()), None)
    if args.baseline:
        contestants["baseline"] = (None, str(Path(args.baseline).resolve()))
    result = {"command": "python benchmarks/gpu.py " + " ".join(sys.argv[1:]),
              "num_frames": args.num_frames, "repeats": args.repeats,
              "solve_seeds": args.solve_seeds, "solve_seed": args.solve_seed}
    result["roofline"] = child("roofline", args.num_frames)
    print(json.dumps(result["roofline"]), flush=True)

    device = result["roofline"]["device"].lower().replace(" ", "-")
    out = args.out or RESULTS / f"gpu-{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def save():  # after each section, so that a run cut short keeps what it measured
        out.write_text(json.dumps(result, indent=2) + "\n")

    save()

    result["fps"], too_big = [], set()
    for seeds in args.seeds:
        runs = {}
        for name, (peer, path) in contestants.items():
            if name in too_big:
                continue
            tries = [child("fps", name, seeds, args.num_frames, args.repeats, peer,
                           pythonpath=path) for _ in range(args.repeats)]
            run = tries[0] | {"run_s": None if tries[0]["run_s"] is None
                              else median(tries, "run_s")}
            run["frames_per_s"] = (None if run["run_s"] is None
                                   else seeds * args.num_frames / run["run_s"])
            if run["run_s"] is None:
                too_big.add(name)
            runs[name] = run
            print(f"{seeds} seeds, {name}: {json.dumps(run)}", flush=True)
        if runs.keys() == contestants.keys():
            result["fps"].append({"seeds": seeds, "runs": runs})
            save()

    result["compile"] = child("compile")
    save()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        solve = [("cold", None), ("cache empty", cache), ("cache filled", cache)]
        preset = {"preset": "cartpole-40k", "checkout": None, "flags": []}
        result["solve"] = {name: solve_run(preset, args.solve_seeds, args.solve_seed,
                                           Path(tmp) / f"run{i}", cache=c)
                           for i, (name, c) in enumerate(solve)}
    save()
    result["profile"] = child("profile", args.profile_seeds, args.profile_frames)
    save()
    out.with_suffix(".md").write_text(tables(result))
    print(tables(result) + f"\nwrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
