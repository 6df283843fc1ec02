"""DQN with memory (purejaxdqn/r2d2.py, R2D2): n-step targets inside a sequence against a
numpy recursion (with and without value rescaling), the sequence loss against a step by
step loop (Munchausen's soft targets too), no gradient through burn-in, and the replay's sequences as the acting loop had
them (stored memories, episode starts, one environment each)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config
from purejaxdqn import r2d2, replay
from purejaxdqn.learning import (LOSS_FUNCTIONS, categorical_losses, quantile_losses,
                                 sequence_n_step, sequence_targets)
from purejaxdqn.networks import quantile_midpoints, return_atoms
from purejaxdqn.replay import Sequence
from purejaxdqn.train import make_parts

# R2D2 on MemoryChain: the context shown at the first step, asked for at the last.
R2D2 = Config(env_name="MemoryChain-bsuite", env_params={"memory_length": 5}, memory="gru",
              memory_size=16, hidden_sizes=(16,), num_envs=4, train_every=4, batch_size=8,
              buffer_size=4 * 64, warmup_steps=4 * 32, num_frames=4 * 96, sequence_length=10,
              sequence_period=5, burn_in=3, n_step=3, double_q=True, eval_every=0,
              final_eval_episodes=2)


def h(x, eps=1e-3):  # R2D2's value rescaling and its inverse, written out
    return np.sign(x) * (np.sqrt(np.abs(x) + 1) - 1) + eps * x


def h_inverse(x, eps=1e-3):
    return np.sign(x) * (((np.sqrt(1 + 4 * eps * (np.abs(x) + 1 + eps)) - 1) / (2 * eps)) ** 2 - 1)


def numpy_sequence_targets(reward, terminal, done, value, gamma, n, rescale):
    """Each step's return summed forward, one sequence at a time: up to n rewards, stopping
    after an episode's end or at the sequence's end, then the bootstrap from that step's
    value (none after a termination)."""
    steps, batch = reward.shape
    unscale = h_inverse if rescale else (lambda x: x)
    targets = np.zeros((steps, batch))
    for b in range(batch):
        for t in range(steps):
            g, discount = 0.0, 1.0
            for k in range(t, min(t + n, steps)):
                g += discount * reward[k, b]
                discount *= 0.0 if terminal[k, b] else gamma
                if done[k, b] or k == min(t + n, steps) - 1:
                    g += discount * unscale(value[k, b])
                    break
            targets[t, b] = h(g) if rescale else g
    return targets


@pytest.mark.parametrize("n, rescale", [(1, False), (3, False), (4, True)])
def test_n_step_targets_inside_a_sequence_against_numpy(n, rescale):
    steps, batch = 9, 3
    rng = np.random.default_rng(n)
    reward = rng.normal(size=(steps, batch)).astype(np.float32)
    value = 3 * rng.normal(size=(steps, batch)).astype(np.float32)
    terminal, truncated = np.zeros((steps, batch), bool), np.zeros((steps, batch), bool)
    terminal[2, 0] = terminal[7, 1] = truncated[4, 0] = truncated[3, 2] = True
    done = terminal | truncated
    targets = jax.jit(sequence_targets, static_argnums=(5, 6))(
        reward, terminal, done, value, 0.9, n, rescale)
    assert targets.shape == (steps, batch) and targets.dtype == jnp.float32
    np.testing.assert_allclose(
        targets, numpy_sequence_targets(reward, terminal, done, value, 0.9, n, rescale),
        rtol=1e-4, atol=1e-4)
    if not rescale:  # the distributional heads' collapsed transitions: the same returns
        returns, discount, last = jax.jit(sequence_n_step, static_argnums=4)(
            reward, terminal, done, 0.9, n)
        assert last.dtype == jnp.int32 and np.all(np.asarray(last) >= np.arange(steps)[:, None])
        bootstrap = np.take_along_axis(value, np.asarray(last), axis=0)
        np.testing.assert_allclose(returns + discount * bootstrap, targets, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def parts():
    return make_parts(R2D2)


def a_sequence(parts, steps=8, batch=2):
    """Sequences with an episode end and start, a termination and a truncation, and a
    stored memory that is not the fresh one."""
    keys = jax.random.split(jax.random.key(0), 4)
    obs = jax.random.normal(keys[0], (steps, batch, 3))
    next_obs = jax.random.normal(keys[1], (steps, batch, 3))
    terminal, truncated = np.zeros((steps, batch), bool), np.zeros((steps, batch), bool)
    terminal[4, 0] = truncated[5, 1] = True
    first = np.zeros((steps, batch), bool)
    first[5, 0] = first[6, 1] = True
    memory = jax.tree.map(lambda x: jnp.broadcast_to(x + 0.3, (steps, *x.shape)),
                          parts.network.initial_memory(batch))
    return Sequence(obs, jax.random.randint(keys[2], (steps, batch), 0, 2),
                    jax.random.normal(keys[3], (steps, batch)), jnp.asarray(terminal), next_obs,
                    jnp.asarray(terminal | truncated), jnp.asarray(first), memory,
                    jnp.ones((steps, batch), bool))


def step_by_step(network, params, sequence, logits=False):
    """The network read one step and one sequence at a time from the stored memory: its
    outputs at each step's observation and at its next observation (read with the memory
    after the step), each (steps, batch, ...) in numpy."""
    one_step = jax.jit(lambda p, o, f, m: network.apply(p, o, f, m, logits))
    steps, batch = sequence.first.shape
    out, out_next = [[None] * batch for _ in range(steps)], [[None] * batch for _ in range(steps)]
    for b in range(batch):
        m = jax.tree.map(lambda x: x[0, b:b + 1], sequence.memory)
        for t in range(steps):
            o, ms = one_step(params, sequence.obs[t:t + 1, b:b + 1],
                             sequence.first[t:t + 1, b:b + 1], m)
            m = jax.tree.map(lambda x: x[-1], ms)
            out[t][b] = np.asarray(o[0, 0])
            nxt, _ = one_step(params, sequence.next_obs[t:t + 1, b:b + 1],
                              jnp.zeros((1, 1), bool), m)
            out_next[t][b] = np.asarray(nxt[0, 0])
    return np.asarray(out), np.asarray(out_next)


def test_the_sequence_loss_against_a_step_by_step_loop(parts):
    """Both networks read the sequence one step at a time from its stored memory (the
    burn-in included), Q at each next observation with the memory after the step, double
    Q's action from the online network, the n-step targets in numpy, the loss's mean."""
    config = dataclasses.replace(R2D2, loss="mse")
    parts = parts._replace(config=config)
    hparams, network = config.hyperparams(), parts.network
    sequence = a_sequence(parts)
    online = network.init(jax.random.key(1), sequence.obs[0, 0])
    target = network.init(jax.random.key(2), sequence.obs[0, 0])
    loss, (stats, td) = jax.jit(lambda o, t, s: r2d2.sequence_loss(o, t, parts, s, hparams))(
        online, target, sequence)

    q, q_next = {}, {}
    for name, params in (("online", online), ("target", target)):
        q[name], q_next[name] = step_by_step(network, params, sequence)
    a_next = q_next["online"].argmax(-1)
    value = np.take_along_axis(q_next["target"], a_next[..., None], -1)[..., 0]
    learn = slice(config.burn_in, None)
    targets = numpy_sequence_targets(np.asarray(sequence.reward)[learn],
                                     np.asarray(sequence.terminal)[learn],
                                     np.asarray(sequence.done)[learn], value[learn],
                                     config.gamma, config.n_step, False)
    action = np.asarray(sequence.action)
    expected_td = targets - np.take_along_axis(q["online"], action[..., None], -1)[learn, :, 0]
    np.testing.assert_allclose(td, expected_td, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss, np.mean(LOSS_FUNCTIONS["mse"](expected_td)), rtol=1e-4)
    np.testing.assert_allclose(stats.abs_td_error, np.abs(expected_td).mean(), rtol=1e-4)
    errors = replay.sequence_errors(td, 0.9)
    np.testing.assert_allclose(
        errors, 0.9 * np.abs(expected_td).max(0) + 0.1 * np.abs(expected_td).mean(0), rtol=1e-4)


def test_munchausen_over_sequences_against_a_step_by_step_loop():
    """Munchausen with memory: each learning step's soft one-step target from the target
    network read step by step from the stored memory, at the step's observation (the
    log-policy bonus of the action taken) and at its next one (the soft value; none after
    the termination, the true final observation at the truncation), in numpy."""
    config = dataclasses.replace(R2D2, munchausen=True, double_q=False, n_step=1, loss="mse")
    parts = make_parts(config)
    network, alpha, tau = parts.network, config.munchausen_alpha, config.entropy_temperature
    sequence = a_sequence(parts)
    online = network.init(jax.random.key(1), sequence.obs[0, 0])
    target = network.init(jax.random.key(2), sequence.obs[0, 0])
    loss, (_, td) = jax.jit(lambda o, t, s: r2d2.sequence_loss(
        o, t, parts, s, config.hyperparams()))(online, target, sequence)
    q_online, _ = step_by_step(network, online, sequence)
    q_target, q_next = step_by_step(network, target, sequence)

    def log_softmax(q):
        z = q / tau - (q / tau).max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    learn, action = slice(config.burn_in, None), np.asarray(sequence.action)
    taken = np.take_along_axis(log_softmax(q_target), action[..., None], -1)[..., 0]
    bonus = alpha * np.clip(tau * taken, config.log_policy_clip, 0.0)
    log_pi = log_softmax(q_next)
    soft_value = np.sum(np.exp(log_pi) * (q_next - tau * log_pi), axis=-1)
    discount = config.gamma * (1.0 - np.asarray(sequence.terminal))
    targets = np.asarray(sequence.reward) + bonus + discount * soft_value
    expected_td = (targets - np.take_along_axis(q_online, action[..., None], -1)[..., 0])[learn]
    assert np.asarray(sequence.terminal)[learn].any() and np.any(bonus[learn] < 0)
    np.testing.assert_allclose(td, expected_td, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss, np.mean(LOSS_FUNCTIONS["mse"](expected_td)), rtol=1e-4)


@pytest.mark.parametrize("head", ["c51", "qr"])
def test_distributional_heads_over_sequences(head):
    """C51's and QR-DQN's losses over a sequence, against rlax's on transitions collapsed
    by hand: each learning step's n-step return and discount, and the target network's
    distribution (double Q's action from the online one) at the step it bootstraps from,
    read one step at a time with the memory after that step."""
    config = dataclasses.replace(R2D2, distributional=head == "c51",
                                 quantile_regression=head == "qr", num_atoms=11, num_quantiles=8)
    parts = make_parts(config)
    hparams, network = config.hyperparams(), parts.network
    sequence = a_sequence(parts)
    online = network.init(jax.random.key(1), sequence.obs[0, 0])
    target = network.init(jax.random.key(2), sequence.obs[0, 0])
    loss, (stats, errors) = jax.jit(
        lambda o, t, s: r2d2.sequence_loss(o, t, parts, s, hparams))(online, target, sequence)
    learn = slice(config.burn_in, None)
    steps, batch = sequence.first.shape
    assert errors.shape == (steps - config.burn_in, batch)

    out, out_next = {}, {}
    for name, params in (("online", online), ("target", target)):
        out[name], out_next[name] = step_by_step(network, params, sequence, logits=True)
    reward, terminal, done = (np.asarray(x)[learn] for x in
                              (sequence.reward, sequence.terminal, sequence.done))
    rows = []  # (online out at t, action, return, discount, target out, selector) per step
    for t in range(steps - config.burn_in):
        for b in range(batch):
            g, discount, k = 0.0, 1.0, t
            for k in range(t, min(t + config.n_step, len(reward))):
                g += discount * reward[k, b]
                discount *= config.gamma
                if done[k, b]:
                    break
            discount *= 0.0 if terminal[k, b] else 1.0
            at, now = k + config.burn_in, t + config.burn_in
            rows.append((out["online"][now, b], int(sequence.action[now, b]), g, discount,
                         out_next["target"][at, b], out_next["online"][at, b]))
    o, a, g, d, tgt, sel = (np.stack([np.asarray(r[i]) for r in rows]) for i in range(6))
    if head == "c51":
        atoms = return_atoms(config)
        q_sel = np.sum(jax.nn.softmax(sel) * np.asarray(atoms), axis=-1)
        expected = categorical_losses(atoms, o, a, g.astype(np.float32), d.astype(np.float32),
                                      tgt, q_sel)
    else:
        expected = quantile_losses(o, quantile_midpoints(config), a, g.astype(np.float32),
                                   d.astype(np.float32), sel, tgt)
    np.testing.assert_allclose(errors.reshape(-1), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss, np.mean(expected), rtol=1e-4)


def test_burn_in_steps_get_no_gradient(parts):
    """The burn-in's observations move the memory on (the loss depends on them) but the
    gradient does not flow through them; it does through the steps after."""
    hparams, network = R2D2.hyperparams(), parts.network
    sequence = a_sequence(parts)
    params = network.init(jax.random.key(1), sequence.obs[0, 0])

    def loss_of(obs):
        return r2d2.sequence_loss(params, params, parts, sequence._replace(obs=obs),
                                  hparams)[0]

    grads = jax.jit(jax.grad(loss_of))(sequence.obs)
    burn_in = R2D2.burn_in
    assert np.all(np.asarray(grads[:burn_in]) == 0.0)
    assert np.abs(np.asarray(grads[burn_in:])).sum() > 0
    moved = sequence.obs.at[:burn_in].add(1.0)
    assert not np.isclose(jax.jit(loss_of)(moved), jax.jit(loss_of)(sequence.obs))


def test_replayed_sequences_are_what_the_acting_loop_had(parts):
    """In warm-up (no learning, the network fixed), every sampled sequence is one
    environment's steps in order: each next observation is the next step's observation
    unless the episode ended, an episode starts after each end, and the stored memory at
    each step is what unrolling the network from the sequence's first stored memory
    gives."""
    hparams = R2D2.hyperparams()
    warmup_blocks = R2D2.warmup_steps // R2D2.block_frames - 1  # the last one learns

    @jax.jit
    def acted(key):
        state = r2d2.init_state(parts, key, hparams)
        state, _ = jax.lax.scan(lambda s, b: r2d2.run_block(parts, s, b, hparams), state,
                                jnp.arange(warmup_blocks))
        drawn = replay.sample(parts.buffer, state.buffer_state, jax.random.key(7), R2D2, 1.0,
                              R2D2.gamma)
        return state, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), drawn.batch)

    state, sequence = acted(jax.random.key(3))
    assert sequence.obs.shape == (R2D2.sequence_length, R2D2.batch_size, 3)
    obs, next_obs = np.asarray(sequence.obs), np.asarray(sequence.next_obs)
    done, first = np.asarray(sequence.done), np.asarray(sequence.first)
    assert done.any() and first.any()  # episodes of 6 steps end inside sequences of 10
    chained = ~done[:-1]
    np.testing.assert_array_equal(next_obs[:-1][chained], obs[1:][chained])
    np.testing.assert_array_equal(first[1:], done[:-1])
    _, memories = jax.jit(parts.network.apply)(
        state.online_params, sequence.obs, sequence.first,
        jax.tree.map(lambda x: x[0], sequence.memory))
    for stored, unrolled in zip(jax.tree.leaves(sequence.memory), jax.tree.leaves(memories)):
        np.testing.assert_allclose(stored[1:], unrolled[:-1], rtol=1e-5, atol=1e-6)
