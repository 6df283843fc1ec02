"""Replay: flashbax's item buffer, uniform or prioritised, behind one small interface."""

from typing import NamedTuple

import chex
import flashbax as fbx
import jax
import jax.numpy as jnp

from purejaxdqn.config import Config

# Added to |TD error| before the priority exponent: no stored item ever gets priority 0.
PRIORITY_EPS = 1e-6


class Sample(NamedTuple):
    batch: chex.ArrayTree
    indices: chex.Array          # where in the buffer (prioritised replay only; else None)
    weights: chex.Array | None   # importance-sampling weights (prioritised only)


def make_buffer(config: Config):
    """flashbax item buffer of `buffer_size`, written `train_every` transitions at a time.

    With `config.prioritized`, flashbax's prioritised item buffer with exponent 1: the
    priority exponent is applied here, so that it stays a traced (sweepable) value.
    """
    kwargs = dict(max_length=config.buffer_size, min_length=1,
                  sample_batch_size=config.batch_size, add_sequences=True)
    if config.prioritized:
        return fbx.make_prioritised_item_buffer(**kwargs, priority_exponent=1.0,
                                                device=jax.default_backend())
    return fbx.make_item_buffer(**kwargs)


def importance_weights(probabilities, num_items, beta) -> chex.Array:
    """(N * P(i))^-beta, divided by the batch's largest. Guards flashbax's float32 sum
    tree, which can drift on long runs and hand back an item of probability 0: such an
    item gets weight 0 (it does not count) instead of an infinite one."""
    valid = probabilities > 0
    weights = jnp.where(valid, (num_items * jnp.where(valid, probabilities, 1.0)) ** -beta, 0.0)
    return weights / jnp.maximum(jnp.max(weights), 1e-12)


def sample(buffer, buffer_state, key, config: Config, beta) -> Sample:
    """A batch, and for prioritised replay its indices and importance weights."""
    drawn = buffer.sample(buffer_state, key)
    if not config.prioritized:
        return Sample(drawn.experience, None, None)
    num_items = jnp.where(buffer_state.is_full, config.buffer_size, buffer_state.current_index)
    return Sample(drawn.experience, drawn.indices,
                  importance_weights(drawn.probabilities, num_items, beta))


def new_priorities(td_error, exponent) -> chex.Array:
    return (jnp.abs(td_error) + PRIORITY_EPS) ** exponent
