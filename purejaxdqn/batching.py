"""Scan carries that `vmap` batches in one pass."""

from typing import Callable

import chex
import jax
import jax.numpy as jnp


def varying_with(key: chex.PRNGKey, tree, where: Callable = lambda leaf: True):
    """`tree` unchanged, but under `vmap` batched along with `key` in the leaves `where`
    selects.

    A scan's initial carry often holds values that do not depend on the vmapped key
    (zeros, constants, flags), so `vmap` first batches the scan with them unbatched,
    finds them batched after one step, and batches the scan's body again, and again for
    every scan nested in it. Marking those leaves batched from the start gives the same
    computation after one pass. Numerically a no-op: a select of `x` or `x` on a predicate
    that is always true (XLA keeps a few of these selects; they run once per call).
    """
    data = jax.random.key_data(key).ravel()
    same = data[0] == data[0]
    return jax.tree.map(lambda x: jnp.where(same, x, x) if where(x) else x, tree)
