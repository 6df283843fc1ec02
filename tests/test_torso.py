"""A network of your own (`make_train(config, network=torso)`): a Haiku function from a
batch of observations to features, under the project's hidden layers and Q head."""

import dataclasses

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config, make_train, sweep
from purejaxdqn.networks import make_q_network

SMALL = Config(num_frames=800, batch_size=16, buffer_size=400, warmup_steps=100,
               eval_every=400, eval_episodes=2, final_eval_episodes=2, hidden_sizes=(16,),
               eps_decay_frames=400)


def flatten(obs):
    return obs.reshape(obs.shape[0], -1)


def tanh_torso(obs):
    return jnp.tanh(hk.Linear(8, name="my_torso")(obs))


@pytest.mark.slow
def test_a_flattening_torso_is_the_default_network_bit_for_bit():
    keys = jax.random.split(jax.random.key(0), 2)
    default = jax.jit(jax.vmap(make_train(SMALL)))(keys)
    own = jax.jit(jax.vmap(make_train(SMALL, network=flatten)))(keys)
    chex.assert_trees_all_equal(default, own)


HEADS = {"plain": {}, "dueling": dict(dueling=True), "c51": dict(distributional=True),
         "qr": dict(quantile_regression=True), "noisy": dict(noisy=True),
         "all": dict(dueling=True, distributional=True, noisy=True)}


@pytest.mark.parametrize("head", HEADS)
def test_the_torso_feeds_each_head(head):
    config = Config(**HEADS[head], hidden_sizes=(16,))
    network = make_q_network(config, num_actions=3, obs_shape=(5,), torso=tanh_torso)
    obs = jax.random.normal(jax.random.key(1), (7, 5))
    params = network.init(jax.random.key(0), obs)
    assert params["my_torso"]["w"].shape == (5, 8)
    inputs = [next(iter(v.values())).shape[0] for k, v in params.items() if k != "my_torso"]
    assert 8 in inputs  # the first layer above the torso takes its 8 features
    q = network.apply(params, obs)
    assert q.shape == (7, 3) and q.dtype == jnp.float32
    # The Q-values depend on the torso's weights: it is in the path, not beside it.
    moved = {**params, "my_torso": {**params["my_torso"],
                                    "w": params["my_torso"]["w"] + 1.0}}
    assert not np.allclose(network.apply(moved, obs), q)


@pytest.mark.parametrize("memory", ["lstm", "gru"])
def test_with_memory_the_torso_feeds_the_core_at_every_step(memory):
    """The contract with memory (docs/suites.md): your torso encodes each step's
    observation; the hidden layers and the recurrent core read its features."""
    config = Config(memory=memory, memory_size=4, hidden_sizes=(16,))
    network = make_q_network(config, num_actions=3, obs_shape=(5,), torso=tanh_torso)
    steps, batch = 6, 2
    obs = jax.random.normal(jax.random.key(1), (steps, batch, 5))
    first = jnp.zeros((steps, batch), bool).at[0].set(True)
    params = network.init(jax.random.key(0), obs[0, 0])
    assert params["my_torso"]["w"].shape == (5, 8)
    q, memories = network.apply(params, obs, first, network.initial_memory(batch))
    assert q.shape == (steps, batch, 3) and jax.tree.leaves(memories)[0].shape == (steps, batch, 4)
    moved = {**params, "my_torso": {**params["my_torso"],
                                    "w": params["my_torso"]["w"] + 1.0}}
    assert not np.allclose(network.apply(moved, obs, first, network.initial_memory(batch))[0], q)


@pytest.mark.slow
def test_a_torso_trains_in_a_sweep():
    """A sweep vmaps the settings and, within each, the seeds."""
    config = dataclasses.replace(SMALL, dueling=True)
    swept = sweep(config, {"learning_rate": [1e-3, 1e-4]}, num_seeds=2, network=tanh_torso)
    assert np.all(np.isfinite(swept.metrics["loss"]))
    torso_weights = swept.params["my_torso"]["w"]
    assert torso_weights.shape == (2, 2, 4, 8)
    assert not np.allclose(torso_weights[0, 0], torso_weights[0, 1])  # each seed its own
    assert not np.allclose(torso_weights[0], torso_weights[1])  # each setting its own


def test_bad_torsos_are_one_line():
    with pytest.raises(ValueError, match="network must be a Haiku function"):
        make_train(SMALL, network="resnet")
    with pytest.raises(ValueError, match=r"not a module class \(GRU\); for memory, set "
                                         r"Config.memory='lstm' or 'gru'"):
        make_train(SMALL, network=hk.GRU)
    with pytest.raises(ValueError, match="replaces Config.network's torso"):
        make_train(dataclasses.replace(SMALL, env_name="Breakout-MinAtar", network="cnn"),
                   network=flatten)
