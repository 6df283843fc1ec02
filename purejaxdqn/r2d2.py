"""DQN with memory, `Config(algorithm="dqn", memory="lstm" or "gru")`: R2D2's recurrent
replay (Kapturowski et al. 2019) over a Haiku recurrent core (`networks.RecurrentQNetwork`).

Acting moves each environment's memory on at every step and resets it where an episode
starts (`acting.recurrent_act`). The replay keeps every step with the memory it was acted
with (`replay.Sequence`), one row per environment, and samples sequences of
`sequence_length` steps starting every `sequence_period` steps. A learning step unrolls
the online and target networks over a batch of sequences from the memory stored at each
sequence's start: the first `burn_in` steps only move the memory on (no gradient, not in
the loss), the rest learn double (or plain) n-step Q-learning, its targets taken inside the
sequence (`learning.sequence_targets`: an episode's end cuts the return; a truncation
bootstraps from its true final observation, read with the memory after the step), over
R2D2's value rescaling where `value_rescaling`. Prioritised replay gives each sequence
eta * max + (1 - eta) * mean of its |TD errors|. The target network and the optimiser are
DQN's. Registered in `purejaxdqn.algorithms`, a peer of `purejaxdqn.dqn`.
"""

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from purejaxdqn import replay
from purejaxdqn.acting import Parts, block_out, last, recurrent_act, rollout, start_seed
from purejaxdqn.batching import varying_with
from purejaxdqn.config import HyperParams
from purejaxdqn.envs import legal_actions
from purejaxdqn.learning import (LOSS_FUNCTIONS, LearnStats, apply_gradients,
                                 categorical_losses, learn_from_replay, learn_in_block,
                                 make_optimizer, munchausen_target, quantile_losses,
                                 sequence_n_step, sequence_targets)
from purejaxdqn.networks import expected_q, quantile_midpoints, return_atoms
from purejaxdqn.policies import greedy_action, mask_illegal
from purejaxdqn.replay import Sequence


class R2D2State(NamedTuple):
    """Everything the recurrent DQN's training scan carries; what a checkpoint saves."""

    online_params: Any
    target_params: Any
    opt_state: Any
    buffer_state: Any
    env_state: Any
    obs: chex.Array             # (num_envs, ...): each environment's current observation
    episode_return: chex.Array  # (num_envs,): return so far of each episode in progress
    frame: chex.Array           # frames taken so far, over all environments
    key: chex.PRNGKey
    memory: Any                 # the core's state of each environment, (num_envs, ...)
    first: chex.Array           # (num_envs,): the current observation starts an episode


def init_state(parts: Parts, key, hparams: HyperParams) -> R2D2State:
    """A seed's state at frame 0: networks, optimiser, empty replay, environments reset,
    fresh memories."""
    config, network = parts.config, parts.network
    key, params, obs, env_state = start_seed(parts, key)
    memory = network.initial_memory(config.num_envs)
    encoded = parts.encode(obs[0])
    step = Sequence(encoded, jnp.int32(0), jnp.float32(0.0), jnp.bool_(False), encoded,
                    jnp.bool_(False), jnp.bool_(False), jax.tree.map(lambda x: x[0], memory),
                    jnp.bool_(True))
    opt_state = make_optimizer(hparams.learning_rate, hparams.max_grad_norm).init(params)
    state = R2D2State(params, params, opt_state, parts.buffer.init(step), env_state, obs,
                      jnp.zeros(config.num_envs, jnp.float32), jnp.int32(0), key, memory,
                      jnp.ones(config.num_envs, bool))
    # Batched from the start, but for the counters every seed shares (see `dqn.init_state`).
    return varying_with(key, state, where=lambda leaf: jnp.ndim(leaf) > 0)


def unroll(parts: Parts, params, sequence: Sequence, logits: bool = False):
    """The network over `sequence` (time-major) from its stored memory: the first
    `burn_in` steps only move the memory on, with no gradient through them; (Q-values, or
    with `logits` the distributional head's outputs, (learning steps, batch, actions,
    ...), the memory after each learning step)."""
    burn_in, network = parts.config.burn_in, parts.network
    obs = parts.decode(sequence.obs)
    memory = jax.tree.map(lambda x: x[0], sequence.memory)
    if burn_in:
        _, memories = network.apply(params, obs[:burn_in], sequence.first[:burn_in], memory)
        memory = jax.lax.stop_gradient(last(memories))
    return network.apply(params, obs[burn_in:], sequence.first[burn_in:], memory, logits)


def q_at_next(parts: Parts, params, next_obs, memories, logits: bool = False):
    """Q at each step's next observation (steps, batch, ...), read with the memory after
    the step: at an episode's end its true final observation (with `logits`, the
    distributional head's outputs)."""
    steps, batch = next_obs.shape[:2]
    flat = jax.tree.map(lambda x: x.reshape(steps * batch, *x.shape[2:]), memories)
    q, _ = parts.network.apply(params, next_obs.reshape(1, steps * batch, *next_obs.shape[2:]),
                               jnp.zeros((1, steps * batch), bool), flat, logits)
    return q.reshape(steps, batch, *q.shape[2:])


def sequence_loss(online_params, target_params, parts: Parts, sequence: Sequence,
                  hparams: HyperParams, weights=None):
    """The loss of a batch of sequences (time-major), each sequence's mean over its
    learning steps, weighted by `weights` (importance sampling) where given: `config.loss`
    of the n-step TD errors (`learning.sequence_targets`), with `munchausen` of the
    one-step errors against each step's soft target (`learning.munchausen_target`, the
    target network at the step's observation and at its next one), or with `distributional`
    or `quantile_regression` C51's cross-entropies or QR-DQN's quantile losses against the
    n-step returns inside the sequence (`learning.sequence_n_step`). Returns (loss,
    (`LearnStats`, errors (learning steps, batch): the TD errors, or the distributional
    losses, from which priorities come))."""
    config = parts.config
    c51, qr = config.distributional, config.quantile_regression
    dist = c51 or qr
    rest = jax.tree.map(lambda x: x[config.burn_in:], sequence)
    next_obs = parts.decode(rest.next_obs)
    out, online_memories = unroll(parts, online_params, sequence, dist)
    q_target, target_memories = unroll(parts, target_params, sequence)
    out_t = q_at_next(parts, target_params, next_obs, target_memories, dist)
    out_selector = (q_at_next(parts, online_params, next_obs, online_memories, dist)
                    if config.double_q else out_t)
    out_selector = jax.lax.stop_gradient(out_selector)
    to_q = ((lambda x: expected_q(x, return_atoms(config))) if c51 else
            (lambda x: jnp.mean(x, axis=-1)) if qr else (lambda x: x))
    q, q_t, selector = to_q(out), to_q(out_t), to_q(out_selector)
    legal = legal_actions(parts.env, next_obs)
    q_taken = jnp.take_along_axis(q, rest.action[..., None], axis=-1)[..., 0]

    def flat(x):  # (steps, batch, ...) -> (steps * batch, ...): rlax's batches
        return None if x is None else x.reshape(-1, *x.shape[2:])

    if dist:
        returns, discount, at = sequence_n_step(rest.reward, rest.terminal, rest.done,
                                                hparams.gamma, config.n_step)

        def at_last(x):  # each step's bootstrap step
            return jnp.take_along_axis(x, at.reshape(at.shape + (1,) * (x.ndim - 2)), axis=0)

        legal_last = None if legal is None else at_last(legal)
        selector_last = mask_illegal(at_last(selector), legal_last)
        v_t = jnp.take_along_axis(at_last(q_t), greedy_action(selector_last)[..., None],
                                  axis=-1)[..., 0]
        td_error = jax.lax.stop_gradient(returns + discount * v_t) - q_taken
        args = (flat(out), flat(rest.action), flat(returns), flat(discount))
        if c51:
            errors = categorical_losses(return_atoms(config), *args, flat(at_last(out_t)),
                                        flat(selector_last))
        else:
            errors = quantile_losses(args[0], quantile_midpoints(config), *args[1:],
                                     flat(mask_illegal(at_last(out_selector), legal_last)),
                                     flat(at_last(out_t)))
        errors = errors.reshape(td_error.shape)
        losses = jnp.mean(errors, axis=0)
    elif config.munchausen:  # one-step: each step's soft target, the target network's
        legal_tm1 = legal_actions(parts.env, parts.decode(rest.obs))
        discount = hparams.gamma * (1.0 - rest.terminal.astype(jnp.float32))
        targets = munchausen_target(
            flat(q_target), flat(rest.action), flat(rest.reward), flat(discount), flat(q_t),
            config.munchausen_alpha, config.entropy_temperature, config.log_policy_clip,
            flat(legal_tm1), flat(legal)).reshape(q_taken.shape)
        td_error = errors = targets - q_taken
        losses = jnp.mean(LOSS_FUNCTIONS[config.loss](td_error), axis=0)
    else:
        a_t = greedy_action(selector, legal)
        v_t = jnp.take_along_axis(q_t, a_t[..., None], axis=-1)[..., 0]
        targets = sequence_targets(rest.reward, rest.terminal, rest.done, v_t, hparams.gamma,
                                   config.n_step, config.value_rescaling)
        td_error = errors = jax.lax.stop_gradient(targets) - q_taken
        losses = jnp.mean(LOSS_FUNCTIONS[config.loss](td_error), axis=0)  # (batch,)
    loss = jnp.mean(losses if weights is None else weights * losses)
    return loss, (LearnStats(loss, jnp.mean(jnp.abs(td_error)), jnp.mean(q_taken)), errors)


def learn_once(parts: Parts, state: R2D2State, sample_key, learn_steps, learning,
               hparams: HyperParams):
    """One learning step on a batch of sequences (sample, TD update, target update, new
    priorities), skipped while `learning` is false (warm-up)."""
    config = parts.config

    def learn(nets, drawn):
        online, target, opt_state = nets
        sequence = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), drawn.batch)  # time-major
        grads, (stats, errors) = jax.grad(sequence_loss, has_aux=True)(
            online, target, parts, sequence, hparams, drawn.weights)
        nets = apply_gradients(grads, online, target, opt_state, learn_steps, hparams, config)
        return nets, stats, replay.sequence_errors(errors, hparams.priority_eta)

    return learn_from_replay(parts.buffer, state, sample_key, learning, hparams, config, learn)


def run_block(parts: Parts, state: R2D2State, block_index, hparams: HyperParams):
    """`block_frames` frames of acting with memory, one write of their steps (each with the
    memory it was acted with) to the replay, then `learning.learns_per_block` learning
    steps on sequences unless still warming up: (state, `BlockOut`)."""
    config = parts.config
    state, sample_key, ((transition, first, memory), done, returns) = rollout(
        parts, state, hparams, recurrent_act)
    steps = Sequence(*transition, done, first, memory, jnp.ones_like(done))
    state = state._replace(
        buffer_state=replay.add(parts.buffer, state.buffer_state, steps, config))
    state, learning, stats = learn_in_block(
        lambda s, key, learn_steps, learning: learn_once(parts, s, key, learn_steps, learning,
                                                         hparams),
        state, sample_key, block_index, config)
    return state, block_out(learning, stats, done, returns)
