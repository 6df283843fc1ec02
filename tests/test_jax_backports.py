"""Backported compile fixes: they change the compiled program, never its numbers."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from purejaxdqn import Config, make_trainer


def test_building_a_trainer_lowers_threefry_without_loops_and_with_the_same_bits():
    make_trainer(Config())
    key = jax.random.key(7)
    compiled = jax.jit(lambda k: jax.random.split(k, 3)).lower(key).compile().as_text()
    assert " while(" not in compiled
    # Known-answer vectors of Threefry-2x32 (20 rounds), from its authors' Random123 suite.
    for key_words, count, expected in [
            ([0, 0], [0, 0], [0x6b200159, 0x99ba4efe]),
            ([0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x1cb996fc, 0xbb002be7]),
            ([0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3], [0xc4923a9c, 0x483df7a0])]:
        bits = jax.jit(threefry_2x32)(jnp.uint32(key_words), jnp.uint32(count))
        np.testing.assert_array_equal(bits, np.uint32(expected))
