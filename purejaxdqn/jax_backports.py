"""Fixes from newer JAX releases, applied to the JAX installed where they are missing.

Each one changes how a program is compiled, never what it computes: the same key gives
the same bits with or without it."""


def unroll_threefry_on_cpu():
    """Lower JAX's Threefry hash on CPU as straight-line code, as upstream JAX does since
    jax-ml/jax#37872 ("threefry2x32: use unrolled loops in CPU lowering"), instead of a
    5-trip `while` loop per random call.

    JAX releases before that change lower every `jax.random` call on CPU to its own loop;
    a training program holds dozens, and each costs compile time and per-call loop
    overhead: on this project's 2-core CPU `Config()` at 1 seed compiles ~18% faster and
    runs 1.16x faster unrolled (benchmarks/results/threefry-backport-cpu-2cores-x86_64.md),
    bit for bit the same results. Where JAX's internals differ from what this expects, it
    does nothing. Idempotent."""
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32
        unrolled = threefry2x32._threefry2x32_lowering_rule  # JAX's lowering off CPU
        primitive = threefry2x32.threefry2x32_p
    except (ImportError, AttributeError):
        return
    mlir.register_lowering(primitive, unrolled, platform="cpu")
