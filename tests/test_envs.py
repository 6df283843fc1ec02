"""Other gymnax environments: image observations, a CNN, and bit-packed replay."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config, make_q_network, make_train, make_trainer
from purejaxdqn.replay import obs_codec


def test_bit_codec_round_trips_binary_observations():
    obs = jax.random.bernoulli(jax.random.key(0), 0.3, (5, 10, 10, 4)).astype(jnp.float32)
    encode, decode = obs_codec((10, 10, 4), binary=True)
    stored = encode(obs)
    assert stored.shape == (5, 50) and stored.dtype == jnp.uint8  # 400 bits in 50 bytes
    np.testing.assert_array_equal(decode(stored), obs)
    single = encode(obs[2])
    assert single.shape == (50,)
    np.testing.assert_array_equal(decode(single[None])[0], obs[2])


def test_minatar_replay_stores_packed_bits():
    config = Config(env_name="Breakout-MinAtar", network="cnn", buffer_size=1_000)
    state = jax.eval_shape(make_trainer(config).init, jax.random.key(0), config.hyperparams())
    experience = state.buffer_state.experience
    assert experience.obs.dtype == jnp.uint8 and experience.obs.shape == (1, 1_000, 50)
    assert experience.next_obs.shape == (1, 1_000, 50)


@pytest.mark.parametrize("network", ["mlp", "cnn", "cnn_pool"])
def test_networks_take_image_observations_with_any_batch_shape(network):
    config = Config(env_name="Breakout-MinAtar", network=network, hidden_sizes=(32,),
                    conv_channels=8)
    q = make_q_network(config)
    obs = jnp.zeros((10, 10, 4))
    params = q.init(jax.random.key(0), obs)
    assert q.apply(params, obs).shape == (3,)
    assert q.apply(params, jnp.zeros((2, 7, 10, 10, 4))).shape == (2, 7, 3)
    assert ("conv2_d" in params) == (network != "mlp")
    if network != "mlp":
        assert params["conv2_d"]["w"].shape == (3, 3, 4, 8)
        # The first dense layer reads 8 x 8 cells of 8 features, or 8 pooled features.
        assert params["mlp/~/linear_0"]["w"].shape[0] == (8 if network == "cnn_pool" else 512)


@pytest.mark.parametrize("network", ["cnn", "cnn_pool"])
def test_only_the_pooled_cnn_ignores_where_a_pattern_is(network):
    config = Config(env_name="Asterix-MinAtar", network=network, hidden_sizes=(32,))
    q = make_q_network(config)
    # A random 4 x 4 patch, 2 or more cells from every edge before and after the shift,
    # so that every 3x3 window that sees part of it exists in both.
    patch = jax.random.bernoulli(jax.random.key(1), 0.3, (4, 4, 4)).astype(jnp.float32)
    obs = jnp.zeros((10, 10, 4)).at[3:7, 3:7].set(patch)
    shifted = jnp.roll(obs, (-1, -1), axis=(0, 1))
    params = q.init(jax.random.key(0), obs)
    same = np.allclose(q.apply(params, obs), q.apply(params, shifted), atol=1e-6)
    assert same == (network == "cnn_pool")


def test_cnn_needs_image_observations():
    with pytest.raises(ValueError, match="needs image observations .* shape \\(4,\\)"):
        make_trainer(Config(network="cnn_pool"))  # CartPole


# (MountainCar takes Acrobot's path, a classic-control MLP, and SpaceInvaders a MinAtar
# game's convolution, which the fast tier's MinAtar tests compile: both in the slow tier.)
@pytest.mark.parametrize("env_name, num_actions", [
    ("Acrobot-v1", 3), pytest.param("MountainCar-v0", 3, marks=pytest.mark.slow),
    pytest.param("SpaceInvaders-MinAtar", 4, marks=pytest.mark.slow)])
def test_other_environments_train(env_name, num_actions):
    config = Config(env_name=env_name, num_frames=400, warmup_steps=100, eval_every=0,
                    final_eval_episodes=1, hidden_sizes=(16,), buffer_size=500, batch_size=16,
                    network="cnn" if "MinAtar" in env_name else "mlp")
    result = jax.jit(make_train(config))(jax.random.key(0))
    assert result.params["mlp/~/linear_1"]["b"].shape == (num_actions,)
    assert np.isfinite(result.metrics["loss"]).all()


@pytest.mark.slow
def test_gymnax_comes_without_importing_seaborn_until_it_is_used():
    """gymnax's Pong and Bandit modules import seaborn (and scipy) for rendering only;
    purejaxdqn defers it, and seaborn still works once a user reaches for it."""
    code = ("import sys; from purejaxdqn.envs import make_env; make_env('CartPole-v1'); "
            "print('scipy.stats' in sys.modules, type(sys.modules['seaborn']).__name__); "
            "import gymnax.environments.misc.pong as pong; "
            "print(len(pong.sns.color_palette('cubehelix', 3)), "
            "type(sys.modules['seaborn']).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split("\n")
    assert out[:2] == ["False _Deferred", "3 module"]
