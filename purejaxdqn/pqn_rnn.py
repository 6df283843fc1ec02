"""PQN with memory, `Config(algorithm="pqn", memory="lstm" or "gru")`: PureJaxQL's PQN-RNN
over a Haiku recurrent core (`networks.RecurrentQNetwork`).

Each environment's recurrent state is carried from step to step and from one update to
the next, and reset where an episode starts. An update is one rollout of `num_steps`
steps of every environment, acted epsilon-greedily as PQN acts (`acting.rollout`, with
the core's memory moved on at each step); the last `memory_window` steps of the previous
rollout are put before it. Each of `num_epochs` passes splits the environments into
`num_minibatches` groups and, per group, unrolls the network over the whole sequence from
the memory stored at its first step, computes Peng's Q(lambda) targets over it with the
network as it is (no gradient through them), and takes one gradient step on the loss of
every step. At an episode's end, the target bootstraps from the true final observation
read with the memory of the episode so far; a termination does not bootstrap.
Registered in `purejaxdqn.algorithms`, a peer of `purejaxdqn.pqn`.
"""

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from purejaxdqn.acting import Parts, block_out, recurrent_act, rollout, start_seed
from purejaxdqn.batching import varying_with
from purejaxdqn.config import HyperParams
from purejaxdqn.envs import legal_actions
from purejaxdqn.learning import LOSS_FUNCTIONS, LearnStats, pqn_optimizer, q_lambda_targets
from purejaxdqn.replay import Sequence


class PQNRNNState(NamedTuple):
    """Everything PQN-RNN's training scan carries; what a checkpoint saves."""

    online_params: Any
    opt_state: Any
    env_state: Any
    obs: chex.Array             # (num_envs, ...): each environment's current observation
    episode_return: chex.Array  # (num_envs,): return so far of each episode in progress
    frame: chex.Array           # frames taken so far, over all environments
    key: chex.PRNGKey
    memory: Any                 # the core's state of each environment, (num_envs, ...)
    first: chex.Array           # (num_envs,): the current observation starts an episode
    window: Sequence            # the previous rollout's last `memory_window` steps


def init_state(parts: Parts, key, hparams: HyperParams) -> PQNRNNState:
    """A seed's state at frame 0: network, optimiser, environments reset, fresh memories,
    and a window of steps not yet taken (`valid` false)."""
    config, network = parts.config, parts.network
    key, params, obs, env_state = start_seed(parts, key)
    memory = network.initial_memory(config.num_envs)
    steps, envs = config.memory_window, config.num_envs
    encoded = parts.encode(obs)

    def nothing(x, dtype=None):
        x = jnp.asarray(x, dtype)
        return jnp.zeros((steps, *x.shape), x.dtype)

    window = Sequence(nothing(encoded), nothing(jnp.zeros(envs, jnp.int32)),
                      nothing(jnp.zeros(envs, jnp.float32)), nothing(jnp.zeros(envs, bool)),
                      nothing(encoded), nothing(jnp.zeros(envs, bool)),
                      nothing(jnp.zeros(envs, bool)), jax.tree.map(nothing, memory),
                      nothing(jnp.zeros(envs, bool)))
    state = PQNRNNState(params, pqn_optimizer(hparams, config).init(params), env_state, obs,
                        jnp.zeros(envs, jnp.float32), jnp.int32(0), key, memory,
                        jnp.ones(envs, bool), window)
    # Batched from the start, but for the counters every seed shares (see `dqn.init_state`).
    return varying_with(key, state, where=lambda leaf: jnp.ndim(leaf) > 0)


# Steps per iteration of the learning unroll's scan. With one, each step's weight gradients
# (a minibatch of a few environments) are added into the scan's carry one step at a time;
# with 8, one seed of PureJaxQL's configs (GRU 256, 2 environments a minibatch) trains at
# 1.25-1.28x PureJaxQL's frames/s, from 0.69-0.79x (docs/methods.md), for about 2 s more
# compile. R2D2, whose minibatches are larger, ran slower with it, so only PQN-RNN unrolls.
SCAN_UNROLL = 8


def next_q(params, q, memories, network, next_obs, sequence: Sequence) -> chex.Array:
    """Q at each step's next observation, read with the memory after the step, (steps,
    environments, actions). Where the episode goes on, that is the next step's own Q in
    `q`; after the last step, one more step of the network. Where an episode was cut by
    its time limit, the true final observation is read too, in one pass over every step
    (skipped when no step of the sequence was cut; after a termination nothing bootstraps,
    so any value serves). Where seeds are vmapped (not on a CPU, where each device maps
    them) the predicate is batched and that pass always runs, as it did before the skip."""
    steps, envs = sequence.first.shape
    last, _ = network.apply(params, next_obs[-1:], jnp.zeros((1, envs), bool),
                            jax.tree.map(lambda x: x[-1], memories))
    following = jnp.concatenate([q[1:], last])
    cut = sequence.done & ~sequence.terminal & sequence.valid

    def with_final_observations():
        flat = jax.tree.map(lambda x: x.reshape(steps * envs, *x.shape[2:]), memories)
        final, _ = network.apply(params, next_obs.reshape(1, steps * envs, *next_obs.shape[2:]),
                                 jnp.zeros((1, steps * envs), bool), flat)
        return jnp.where(cut[..., None], final.reshape(steps, envs, -1), following)

    return jax.lax.cond(jnp.any(cut), with_final_observations, lambda: following)


def sequence_loss(params, parts: Parts, sequence: Sequence, hparams: HyperParams):
    """`config.loss` of the Q(lambda) errors over the valid steps of `sequence` (steps,
    environments), unrolled from the memory stored at its first step; (loss, stats)."""
    config, network = parts.config, parts.network
    obs, next_obs = parts.decode(sequence.obs), parts.decode(sequence.next_obs)
    q, memories = network.apply(params, obs, sequence.first,
                                jax.tree.map(lambda x: x[0], sequence.memory),
                                scan_unroll=SCAN_UNROLL)
    q_next = next_q(*jax.lax.stop_gradient((params, q, memories)), network, next_obs, sequence)
    targets = q_lambda_targets(q_next, sequence.reward * config.reward_scale, sequence.terminal,
                               sequence.done, hparams.gamma, hparams.q_lambda,
                               legal_actions(parts.env, next_obs))
    q_taken = jnp.take_along_axis(q, sequence.action[..., None], axis=-1)[..., 0]
    td_error = targets - q_taken
    valid = sequence.valid.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(valid), 1.0)

    def mean(x):
        return jnp.sum(x * valid) / count

    loss = mean(LOSS_FUNCTIONS[config.loss](td_error))
    return loss, LearnStats(loss, mean(jnp.abs(td_error)), mean(q_taken))


def run_block(parts: Parts, state: PQNRNNState, block_index, hparams: HyperParams):
    """One update: a rollout of `num_steps` acting steps, the window put before it, then
    `num_epochs` passes of `num_minibatches` gradient steps, each on the whole sequences
    of a group of environments: (state, `BlockOut`)."""
    config = parts.config
    state, learn_key, ((stored, first, memory), done, returns) = rollout(
        parts, state, hparams, recurrent_act)
    new = Sequence(stored.obs, stored.action, stored.reward, stored.terminal, stored.next_obs,
                   done, first, memory, jnp.ones_like(done))
    sequence = jax.tree.map(lambda old, x: jnp.concatenate([old, x]), state.window, new)
    optimizer = pqn_optimizer(hparams, config)

    def minibatch_step(carry, minibatch):
        params, opt_state = carry
        (_, stats), grads = jax.value_and_grad(sequence_loss, has_aux=True)(
            params, parts, minibatch, hparams)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), stats

    def epoch(carry, key):
        order = jax.random.permutation(key, config.num_envs)
        minibatches = jax.tree.map(  # (minibatches, steps, environments each, ...)
            lambda x: jnp.swapaxes(x[:, order].reshape(
                x.shape[0], config.num_minibatches, -1, *x.shape[2:]), 0, 1), sequence)
        return jax.lax.scan(minibatch_step, carry, minibatches)

    (params, opt_state), stats = jax.lax.scan(
        epoch, (state.online_params, state.opt_state),
        jax.random.split(learn_key, config.num_epochs))
    window = jax.tree.map(lambda x: x[x.shape[0] - config.memory_window:], sequence)
    state = state._replace(online_params=params, opt_state=opt_state, window=window)
    stats = jax.tree.map(lambda x: jnp.mean(x)[None], stats)
    return state, block_out(jnp.ones(1, bool), stats, done, returns)
