"""Why progress is not a host callback inside the training program: JAX does not write a
program holding one (`jax.debug.callback`) to the persistent compilation cache, so such a
program would be compiled afresh by every command. Runs a small scan with and without a
callback twice each, in new processes over a new cache, and lists what the cache holds.

    python benchmarks/investigations/callback_cache.py
"""

import subprocess
import sys
import tempfile
from pathlib import Path

PROGRAM = """
import sys, jax, jax.numpy as jnp
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

def body(carry, i):
    if sys.argv[2] == "with":
        jax.debug.callback(lambda i: None, i)
    return jnp.sin(carry) @ jnp.cos(carry), None

training = jax.jit(lambda x: jax.lax.scan(body, x, jnp.arange(10))[0])
training(jnp.ones((64, 64))).block_until_ready()
"""


def main():
    for callback in ("without", "with"):
        with tempfile.TemporaryDirectory() as cache:
            for _ in range(2):
                subprocess.run([sys.executable, "-c", PROGRAM, cache, callback], check=True)
            held = sorted(p.name.split("-")[0] for p in Path(cache).iterdir())
            cached = "jit__lambda" in held
            print(f"{callback:7} a host callback: the program is "
                  f"{'in' if cached else 'NOT in'} the cache ({', '.join(held)})")


if __name__ == "__main__":
    main()
