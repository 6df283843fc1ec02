"""Memory (purejaxdqn/networks.py's recurrent core, purejaxdqn/pqn_rnn.py, and R2D2's
loop in purejaxdqn/r2d2.py, whose pieces tests/test_r2d2.py checks): the core forgets
at an episode's start, the sequence loss's Q(lambda) targets against a step-by-step loop
and a numpy recursion, environment params by name; and, slow, for PQN-RNN and R2D2 each:
MemoryChain learned with memory and not without, and a resumed run equal to one never
stopped whose seed is the seed alone."""

import dataclasses

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config, make_q_network, make_train, train_seeds
from purejaxdqn.envs import resolve_env
from purejaxdqn.learning import LOSS_FUNCTIONS
from purejaxdqn.pqn_rnn import sequence_loss
from purejaxdqn.replay import Sequence
from purejaxdqn.train import make_parts
from tests.helpers import need, numpy_q_lambda, whole_and_resumed

# PQN-RNN on MemoryChain: the context shown at the first step, asked for at the last.
MEMORY_CHAIN = Config(algorithm="pqn", env_name="MemoryChain-bsuite",
                      env_params={"memory_length": 5}, memory="lstm", memory_size=32,
                      memory_window=4, num_envs=8, num_steps=16, num_minibatches=4,
                      num_epochs=2, hidden_sizes=(32,), layer_norm=True, num_frames=8 * 16 * 40,
                      eval_every=0, learning_rate=1e-3, eps_decay_frames=1_000)
# R2D2 (DQN with memory) on the same MemoryChain.
MEMORY_CHAIN_R2D2 = Config(env_name="MemoryChain-bsuite", env_params={"memory_length": 5},
                           memory="lstm", memory_size=32, hidden_sizes=(32,), num_envs=8,
                           train_every=8, batch_size=32, buffer_size=8 * 200,
                           warmup_steps=8 * 40, num_frames=8 * 16 * 40, sequence_length=16,
                           sequence_period=8, burn_in=4, n_step=3, eval_every=0,
                           eps_decay_frames=2_000, learning_rate=1e-3)
BOTH = pytest.mark.parametrize("config", [MEMORY_CHAIN, MEMORY_CHAIN_R2D2],
                               ids=["pqn-rnn", "r2d2"])


def unroll(network, params, obs, first, memory):
    return jax.jit(network.apply)(params, obs, first, memory)


def recurrent_config(memory: str) -> Config:
    return Config(algorithm="pqn", memory=memory, memory_size=8, hidden_sizes=(16,),
                  num_envs=4, eval_every=0)


@pytest.mark.parametrize("memory", ["lstm", "gru"])
def test_a_fresh_memory_is_the_cores_initial_state(memory):
    network = make_q_network(recurrent_config(memory), num_actions=3, obs_shape=(4,))
    core = hk.without_apply_rng(hk.transform(
        lambda: (hk.LSTM(8) if memory == "lstm" else hk.GRU(8)).initial_state(2)))
    chex.assert_trees_all_equal(network.initial_memory(2), core.apply({}))


def test_the_core_forgets_where_an_episode_starts():
    """(The GRU here; the LSTM, whose state is two arrays, in the sequence loss's test.)"""
    network = make_q_network(recurrent_config("gru"), num_actions=3, obs_shape=(4,))
    steps, batch = 6, 3
    obs = jax.random.normal(jax.random.key(0), (steps, batch, 4))
    params = network.init(jax.random.key(1), obs[0, 0])
    first = np.zeros((steps, batch), bool)
    first[0] = True
    first[3, 0] = first[5, 2] = True  # episodes start mid-sequence in environments 0 and 2
    q, memories = unroll(network, params, obs, jnp.asarray(first), network.initial_memory(batch))
    assert q.shape == (steps, batch, 3) and q.dtype == jnp.float32
    assert jax.tree.leaves(memories)[0].shape == (steps, batch, 8)
    for t, b in ((3, 0), (5, 2)):  # the rest of the sequence from a fresh memory
        fresh, _ = unroll(network, params, obs[t:, b:b + 1], jnp.asarray(first[t:, b:b + 1]),
                          network.initial_memory(1))
        np.testing.assert_allclose(q[t:, b], fresh[:, 0], rtol=1e-6, atol=1e-6)
    # Where no episode starts, the memory does count: environment 1 at step 3 is not the
    # same observation read fresh.
    fresh, _ = unroll(network, params, obs[3:, 1:2], jnp.ones((3, 1), bool),
                      network.initial_memory(1))
    assert not np.allclose(q[3, 1], fresh[0, 0], atol=1e-4)


@pytest.mark.parametrize("cut", [True, False], ids=["truncation", "no-truncation"])
def test_the_sequence_loss_against_a_step_by_step_loop(cut):
    """The loss of a sequence with an episode start, a termination and (or not) a
    truncation: its targets are Q(lambda) over Q at each next observation, read step by
    step with the memory after the step (a truncation bootstraps from the true final
    observation, which is not the next episode's first)."""
    config = dataclasses.replace(MEMORY_CHAIN, loss="mse", reward_scale=0.5)
    parts, hparams = make_parts(config), config.hyperparams()
    network, steps, envs = parts.network, 7, 2
    keys = jax.random.split(jax.random.key(2), 4)
    terminal, truncated = np.zeros((steps, envs), bool), np.zeros((steps, envs), bool)
    terminal[2, 0] = True
    truncated[4, 1] = cut
    done = terminal | truncated
    stream = np.asarray(jax.random.normal(keys[0], (steps + 1, envs, 3)))
    final = np.asarray(jax.random.normal(keys[1], (steps, envs, 3)))
    obs = jnp.asarray(stream[:-1])  # the next step's observation, or where an episode
    next_obs = jnp.asarray(np.where(done[..., None], final, stream[1:]))  # ended its last
    params = network.init(jax.random.key(3), obs[0, 0])
    first = np.zeros((steps, envs), bool)
    first[1:] = done[:-1]  # after each end, an episode starts
    memory = jax.tree.map(lambda x: x + 0.3, network.initial_memory(envs))  # stored, not fresh
    action = np.asarray(jax.random.randint(keys[2], (steps, envs), 0, 2))
    reward = np.asarray(jax.random.normal(keys[3], (steps, envs)))
    valid = np.ones((steps, envs), bool)
    valid[0] = False  # a window step from before the run's start: not in the loss
    sequence = Sequence(obs, jnp.asarray(action), jnp.asarray(reward, jnp.float32),
                        jnp.asarray(terminal), next_obs, jnp.asarray(done), jnp.asarray(first),
                        jax.tree.map(lambda x: jnp.broadcast_to(x, (steps, *x.shape)), memory),
                        jnp.asarray(valid))
    loss, stats = jax.jit(lambda p, s: sequence_loss(p, parts, s, hparams))(params, sequence)

    q, q_next = np.zeros((steps, envs, 2)), np.zeros((steps, envs, 2))
    one_step = jax.jit(network.apply)  # (one program for every call: one step, one env)
    for e in range(envs):  # one step at a time, one environment at a time
        m = jax.tree.map(lambda x: x[e:e + 1], memory)
        for t in range(steps):
            out, ms = one_step(params, obs[t:t + 1, e:e + 1],
                               jnp.asarray(first[t:t + 1, e:e + 1]), m)
            m = jax.tree.map(lambda x: x[-1], ms)
            q[t, e] = out[0, 0]
            nxt, _ = one_step(params, next_obs[t:t + 1, e:e + 1], jnp.zeros((1, 1), bool), m)
            q_next[t, e] = nxt[0, 0]
    targets = numpy_q_lambda(q_next, 0.5 * reward, terminal, done, config.gamma, config.q_lambda)
    td = targets - np.take_along_axis(q, action[..., None], -1)[..., 0]
    expected = np.asarray(LOSS_FUNCTIONS["mse"](td))[valid].mean()
    np.testing.assert_allclose(loss, expected, rtol=2e-5)
    np.testing.assert_allclose(stats.abs_td_error, np.abs(td)[valid].mean(), rtol=2e-5)


def test_environment_params_by_name():
    _, params, _ = resolve_env("MemoryChain-bsuite", overrides=(("memory_length", 30),))
    assert params.memory_length == 30 and params.max_steps_in_episode == 1000
    parts = make_parts(Config(env_name="MemoryChain-bsuite", env_params={"memory_length": 7}))
    assert parts.env_params.memory_length == 7
    with pytest.raises(ValueError, match="must be a number, got 'long'"):
        resolve_env("MemoryChain-bsuite", overrides=(("memory_length", "long"),))


def memory_chain_returns(config: Config) -> np.ndarray:
    return np.asarray(train_seeds(config, num_seeds=2, seed=0).metrics["final_eval_return"])


@pytest.mark.slow
def test_memory_chain_is_learned_with_memory_and_not_without():
    """A context shown at the first step, asked for 5 steps later (reward +1 if the action
    is the context, -1 if not): the greedy PQN-RNN agent answers right every time; the
    same config without memory can do no better than chance (0 on average). The suite's
    guard of learning with memory; R2D2's, and both at memory length 30 on 16 fresh
    seeds, are measured by benchmarks/memory_presets.py."""
    with_memory = memory_chain_returns(MEMORY_CHAIN)
    without = memory_chain_returns(MEMORY_CHAIN.without_memory())
    assert with_memory.min() == 1.0, with_memory
    assert without.max() <= 0.6, without  # 10 evaluation episodes, each +1 or -1


@pytest.mark.slow
@BOTH
def test_a_resumed_run_is_the_run_never_stopped_and_a_seed_the_seed_alone(config, tmp_path):
    """Two seeds stopped after their first segment and resumed from the checkpoint (the
    memories, the episode starts, and PQN-RNN's window or R2D2's replay saved) end bit for
    bit as the run never stopped; and seed 1 of the two, trained alone in one program, ends
    where it did beside seed 0 (up to the rounding batched matmuls may bring)."""
    config = dataclasses.replace(config, num_frames=8 * 16 * 6)
    whole, resumed = whole_and_resumed(config, tmp_path, num_seeds=2,
                                       segment_frames=8 * 16 * 2)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    alone = jax.jit(make_train(config))(jax.random.split(jax.random.key(0), 2)[1])
    for together, single in zip(jax.tree.leaves((whole.params, whole.metrics["final_eval_return"])),
                                jax.tree.leaves((alone.params, alone.metrics["final_eval_return"]))):
        np.testing.assert_allclose(together[1], single, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_suite_with_action_masks_trains_with_memory():
    """Jumanji's Maze through its adapter (egocentric enough: the walls near the agent and a
    mask of the legal moves), PQN-RNN acting, learning and evaluating with the masks."""
    need("jumanji")
    config = dataclasses.replace(MEMORY_CHAIN, env_name="jumanji:Maze-v0", env_params=(),
                                 num_frames=8 * 16 * 4, final_eval_episodes=2)
    result = jax.jit(make_train(config))(jax.random.key(5))
    assert np.isfinite(result.metrics["loss"]).all() and result.metrics["loss"].shape == (1,)
    assert int(result.metrics["train_episodes"][0]) > 0
