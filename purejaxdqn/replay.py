"""Replay: what a stored transition is and how it is written, packed and collapsed;
flashbax buffers, uniform or prioritised, one transition or n-step windows, behind one
small interface (`make_buffer`, `stored`, `add`, `sample`)."""

from typing import Any, NamedTuple

import chex
import flashbax as fbx
import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn.config import Config


class Transition(NamedTuple):
    """One replay item. `next_obs` is the true successor (gymnax's `final_observation`),
    not the auto-reset observation; `terminal` marks transitions that must not bootstrap."""

    obs: chex.Array
    action: chex.Array
    reward: chex.Array
    terminal: chex.Array
    next_obs: chex.Array


class Sequence(NamedTuple):
    """What a recurrent agent learns from, per step of each environment (leading axes: steps,
    environments, or a batch of sequences and their steps): the transition as stored
    (observations encoded), whether the episode ended there (`done`) or started there
    (`first`: the memory is reset before the step), the core's memory before the step
    (`memory`: a sequence unrolls from its first step's, the stored state), and whether the
    step is real (`valid`: PQN-RNN's window holds steps from before the run's first
    rollout)."""

    obs: chex.Array
    action: chex.Array
    reward: chex.Array
    terminal: chex.Array
    next_obs: chex.Array
    done: chex.Array
    first: chex.Array
    memory: Any
    valid: chex.Array


def obs_codec(obs_shape: tuple[int, ...], binary: bool):
    """(encode, decode) between observations and what the replay buffer stores: the
    observation itself in its native dtype, or for 0/1 observations its bits packed
    into uint8 (decoded to uint8 0/1 values, which the network casts)."""
    if not binary:
        return (lambda obs: obs), (lambda stored: stored)
    size = int(np.prod(obs_shape))

    def encode(obs):
        return jnp.packbits(obs.reshape(*obs.shape[:obs.ndim - len(obs_shape)], size) > 0.5,
                            axis=-1)

    def decode(stored):
        bits = jnp.unpackbits(stored, axis=-1, count=size)
        return bits.reshape(*stored.shape[:-1], *obs_shape)

    return encode, decode


def n_step_transition(items: Transition, last: chex.Array, gamma):
    """Collapse windows of n stored transitions (leading axes (batch, n)) into one
    transition each, and the number of rewards it sums.

    The return sums discounted rewards up to the first episode end in the window (`last`:
    terminated or truncated) or its end; it bootstraps from that transition's `next_obs`
    (the true final observation at a truncation) unless that transition is `terminal`.
    (rlax's n-step returns bootstrap from the next state in the sequence, which after an
    auto-reset belongs to the next episode, so the window is collapsed here.)
    """
    n = last.shape[-1]
    ended_before = jnp.cumsum(last, axis=-1) - last       # episode ends strictly before k
    in_episode = (ended_before == 0).astype(jnp.float32)  # still the first episode
    steps = jnp.sum(in_episode, axis=-1).astype(jnp.int32)
    reward = jnp.sum(in_episode * gamma ** jnp.arange(n) * items.reward, axis=-1)

    def at_end(x):
        index = (steps - 1).reshape(steps.shape + (1,) * (x.ndim - 1))
        return jnp.take_along_axis(x, index, axis=1).squeeze(1)

    transition = Transition(items.obs[:, 0], items.action[:, 0], reward,
                            at_end(items.terminal), at_end(items.next_obs))
    return transition, steps


# Added to |TD error| before the priority exponent: no stored item ever gets priority 0.
PRIORITY_EPS = 1e-6


class Sample(NamedTuple):
    batch: Transition            # one-step, or collapsed n-step transitions
    steps: chex.Array | int      # rewards summed in batch.reward (n-step), else 1
    indices: chex.Array | None   # where in the buffer (prioritised replay only)
    weights: chex.Array | None   # importance-sampling weights (prioritised replay only)


def make_buffer(config: Config):
    """A flashbax buffer of `buffer_size` transitions, written a block at a time: an item
    buffer, or for `n_step` > 1 a trajectory buffer with one row per environment
    (`buffer_size // num_envs` steps each), sampling windows of n that never cross from
    one environment into another.

    With `config.prioritized`, the prioritised version with exponent 1: the priority
    exponent is applied here (`new_priorities`), so that it stays a traced value.
    """
    if config.memory != "none":
        return make_sequence_buffer(config)
    if config.n_step == 1:
        kwargs = dict(max_length=config.buffer_size, min_length=1,
                      sample_batch_size=config.batch_size, add_sequences=True)
        make = fbx.make_prioritised_item_buffer if config.prioritized else fbx.make_item_buffer
    else:
        kwargs = dict(max_length_time_axis=config.buffer_size // config.num_envs,
                      add_batch_size=config.num_envs,
                      min_length_time_axis=config.n_step, sample_batch_size=config.batch_size,
                      sample_sequence_length=config.n_step, period=1)
        make = (fbx.make_prioritised_trajectory_buffer if config.prioritized
                else fbx.make_trajectory_buffer)
    if config.prioritized:
        kwargs.update(priority_exponent=1.0, device=jax.default_backend())
    return make(**kwargs)


def make_sequence_buffer(config: Config):
    """The recurrent DQN's (R2D2's) replay: a flashbax trajectory buffer with one row per
    environment (`buffer_size // num_envs` steps each) of `Sequence` steps, sampling
    `batch_size` sequences of `sequence_length` steps that start every `sequence_period`
    steps and never cross from one environment into another; prioritised (exponent 1, as
    in `make_buffer`) with `config.prioritized`."""
    kwargs = dict(max_length_time_axis=config.buffer_size // config.num_envs,
                  add_batch_size=config.num_envs, min_length_time_axis=config.sequence_length,
                  sample_batch_size=config.batch_size,
                  sample_sequence_length=config.sequence_length, period=config.sequence_period)
    if not config.prioritized:
        return fbx.make_trajectory_buffer(**kwargs)
    return fbx.make_prioritised_trajectory_buffer(**kwargs, priority_exponent=1.0,
                                                  device=jax.default_backend())


def stored(transition: Transition, last, config: Config):
    """What the buffer holds per frame: the transition, and for n-step windows whether
    the episode ended there (terminated or truncated). (A recurrent agent's `Sequence`
    step is built from the transition by its algorithm.)"""
    return transition if config.n_step == 1 or config.memory != "none" else (transition, last)


def add(buffer, buffer_state, items, config: Config):
    """Append `items` (leading axes: time, environments) in one write: as a flat sequence
    of items, or as one row per environment (time second) for n-step windows and
    sequences."""
    if config.n_step > 1 or config.memory != "none":
        items = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), items)
    else:
        items = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), items)
    return buffer.add(buffer_state, items)


def importance_weights(probabilities, num_items, beta) -> chex.Array:
    """(N * P(i))^-beta, divided by the batch's largest. Guards flashbax's float32 sum
    tree, which can drift on long runs and hand back an item of probability 0: such an
    item gets weight 0 (it does not count) instead of an infinite one."""
    valid = probabilities > 0
    weights = jnp.where(valid, (num_items * jnp.where(valid, probabilities, 1.0)) ** -beta, 0.0)
    return weights / jnp.maximum(jnp.max(weights), 1e-12)


def sample(buffer, buffer_state, key, config: Config, beta, gamma) -> Sample:
    """A batch (n-step windows collapsed with discount `gamma`; for a recurrent agent
    `Sequence`s, leading axes (batch, steps)), and for prioritised replay its indices and
    importance weights (exponent `beta`)."""
    drawn = buffer.sample(buffer_state, key)
    if config.n_step == 1 or config.memory != "none":
        batch, steps = drawn.experience, 1
    else:
        batch, steps = n_step_transition(*drawn.experience, gamma)
    if not config.prioritized:
        return Sample(batch, steps, None, None)
    trajectories = config.n_step > 1 or config.memory != "none"
    rows = config.num_envs if trajectories else 1  # the buffer's add batch
    length, period = ((config.sequence_length, config.sequence_period)
                      if config.memory != "none" else (config.n_step, 1))
    steps_per_row = jnp.where(buffer_state.is_full, config.buffer_size // rows,
                              buffer_state.current_index)
    num_items = rows * jnp.maximum((steps_per_row - length) // period + 1, 1)  # sampleable
    return Sample(batch, steps, drawn.indices,
                  importance_weights(drawn.probabilities, num_items, beta))


def sequence_errors(td_errors, eta) -> chex.Array:
    """A sequence's error for its priority, from its steps' errors (steps, batch: TD errors,
    or C51's cross-entropies): R2D2's eta * max + (1 - eta) * mean of their magnitudes,
    (batch,)."""
    magnitudes = jnp.abs(td_errors)
    return eta * jnp.max(magnitudes, axis=0) + (1.0 - eta) * jnp.mean(magnitudes, axis=0)


def new_priorities(errors, exponent) -> chex.Array:
    """Priorities from the errors of a learning step (TD errors, or C51's cross-entropies)."""
    return (jnp.abs(errors) + PRIORITY_EPS) ** exponent
