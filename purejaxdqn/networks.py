"""The Q-network: an observation encoder (MLP, convolution, or your own torso), hidden
layers, a recurrent core where `Config.memory` asks for one, and a Q head (plain or
dueling; scalar, C51's categorical or QR-DQN's quantiles)."""

from typing import Callable, NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp

from purejaxdqn.config import Config
from purejaxdqn.conv import STRIDED_STACK, PatchConv2D, strided_output_shape
from purejaxdqn.noisy import NoisyLinear


def make_q_network(config: Config, num_actions: int | None = None,
                   obs_shape: tuple[int, ...] | None = None,
                   torso: Callable | None = None) -> hk.Transformed:
    """Haiku Q-network from observations of `obs_shape` (any dtype, any leading batch
    axes) to `num_actions` Q-values: an MLP over the flattened observation, or with
    `config.network` "cnn" over a 3x3 convolution's flattened features, or with "cnn_pool"
    over their maxima across the grid, or with "cnn_strided" over a stack of three
    strided convolutions (`STRIDED_STACK`), or over the features of your own `torso` (a Haiku
    function from a batch of float32 observations, shape (batch, *obs_shape), to features
    (batch, ...), flattened; in place of `config.network`'s); with a dueling head (value + advantage - mean
    advantage) if `config.dueling`. With `config.layer_norm` every hidden layer (the
    convolution's features too) is normalised (`hk.LayerNorm`) before its ReLU. With `config.noisy` its dense layers are
    `NoisyLinear`: `apply(params, obs, noise_key)` draws fresh noise, and without a key
    it uses the mean weights. With `config.distributional` (C51) the head gives each
    action logits over `return_atoms(config)`, and the Q-values are their expectations;
    `apply(..., logits=True)` returns the logits, of shape (..., num_actions, num_atoms).
    With `config.quantile_regression` (QR-DQN) it gives each action `num_quantiles`
    quantiles at `quantile_midpoints(config)`, and the Q-values are their means;
    `apply(..., logits=True)` returns the quantiles, (..., num_actions, num_quantiles).

    With `config.memory` ("lstm" or "gru") it is a `RecurrentQNetwork`: the hidden
    layers feed `hk.LSTM` or `hk.GRU` of `memory_size` units, reset where an episode
    starts (`hk.ResetCore`), and the Q head reads the core's output; see
    `RecurrentQNetwork` for its `apply`.

    `num_actions` and `obs_shape` default to those of `config.env_name`.
    """
    if num_actions is None or obs_shape is None:
        from purejaxdqn.envs import resolve_env

        env, env_params, n = resolve_env(config.env_name, overrides=config.env_params)
        num_actions = n if num_actions is None else num_actions
        obs_shape = env.observation_space(env_params).shape if obs_shape is None else obs_shape
    obs_shape = tuple(obs_shape)
    if torso is not None and not callable(torso):
        raise ValueError(f"network must be a Haiku function from a batch of observations to "
                         f"features, got {type(torso).__name__}")
    stateful = ("core" if isinstance(torso, hk.RNNCore) else "module class"
                if isinstance(torso, type) and issubclass(torso, hk.Module) else None)
    if stateful:
        name = getattr(torso, "__name__", type(torso).__name__)
        raise ValueError(f"network takes a Haiku function from a batch of observations to "
                         f"features, not a {stateful} ({name}); for memory, set "
                         f"Config.memory='lstm' or 'gru': its core reads your torso's features")
    if torso is not None and config.network != "mlp":
        raise ValueError(f"a network of your own replaces Config.network's torso; leave "
                         f"network='mlp', not {config.network!r}")
    if config.network != "mlp" and len(obs_shape) != 3:
        raise ValueError(f"network={config.network!r} needs image observations (height, "
                         f"width, channels); this environment's have shape {obs_shape}")
    if config.network == "cnn_strided" and min(strided_output_shape(*obs_shape[:2])) < 1:
        raise ValueError(f"network='cnn_strided' needs frames of 18x18 or more; this "
                         f"environment's are {obs_shape[0]}x{obs_shape[1]}: use 'cnn'")

    num_layers = len(config.hidden_sizes) + 1 + config.dueling
    atoms_per_action = (config.num_atoms if config.distributional else
                        config.num_quantiles if config.quantile_regression else 1)

    def layers(noise_key):
        """The network's layers as functions: (encode, mlp, q_head)."""
        layer_keys = iter([None] * num_layers if noise_key is None
                          else jax.random.split(noise_key, num_layers))

        def dense(x, size, name):
            if config.noisy:
                return NoisyLinear(size, config.noisy_sigma0, name=f"noisy_{name}")(
                    x, next(layer_keys))
            return hk.Linear(size, name=name)(x)

        def normalize(x, name):
            return hk.LayerNorm(-1, create_scale=True, create_offset=True, name=name)(x)

        def mlp(x, sizes, activate_final):
            if not (config.noisy or config.layer_norm):  # Haiku's MLP (and its param names)
                return hk.nets.MLP(sizes, activate_final=activate_final)(x)
            for i, size in enumerate(sizes):
                x = dense(x, size, f"linear_{i}")
                if activate_final or i < len(sizes) - 1:
                    x = normalize(x, f"layer_norm_{i}") if config.layer_norm else x
                    x = jax.nn.relu(x)
            return x

        def encode(obs):
            """Observations (any leading axes) -> features (batch, ...), flattened."""
            # Observations are stored in their native dtype; cast here, where they are used.
            x = obs.astype(jnp.float32).reshape(-1, *obs_shape)
            if torso is not None:
                x = torso(x)
            elif config.network == "cnn_strided":
                for i, (channels, kernel, stride) in enumerate(STRIDED_STACK):
                    x = PatchConv2D(channels, kernel, stride, name=f"conv_{i}")(x)
                    x = jax.nn.relu(normalize(x, f"conv_layer_norm_{i}")
                                    if config.layer_norm else x)
            elif config.network != "mlp":
                # hk.Conv2D's module name, so params saved with either load into both.
                x = PatchConv2D(config.conv_channels, kernel_shape=3, name="conv2_d")(x)
                x = jax.nn.relu(normalize(x, "conv_layer_norm") if config.layer_norm else x)
            if config.network == "cnn_pool":
                # Whether each filter's pattern is anywhere on the grid, not where: what is
                # learned at one cell holds at every cell.
                x = jnp.max(x, axis=(-3, -2))
            return x.reshape(x.shape[0], -1)

        def q_head(features, batch_shape, logits):
            """Hidden features (batch, ...) -> Q-values (or logits, quantiles) of
            `batch_shape`: the dueling head, or one dense layer."""
            head_shape = (-1, num_actions, atoms_per_action)
            if config.dueling:
                value = dense(features, atoms_per_action, "value").reshape(-1, 1, atoms_per_action)
                advantage = dense(features, num_actions * atoms_per_action, "advantage")
                advantage = advantage.reshape(head_shape)
                head = value + advantage - jnp.mean(advantage, axis=1, keepdims=True)
            else:
                head = dense(features, num_actions * atoms_per_action, "q_head").reshape(head_shape)
            return from_head(head.reshape(*batch_shape, num_actions, atoms_per_action), logits)

        return encode, mlp, q_head

    def from_head(head, logits):
        if config.quantile_regression:
            return head if logits else jnp.mean(head, axis=-1)
        if not config.distributional:
            return head[..., 0]
        return head if logits else expected_q(head, return_atoms(config))

    def q_values(obs, noise_key=None, logits=False):
        encode, mlp, q_head = layers(noise_key)
        batch_shape = obs.shape[:obs.ndim - len(obs_shape)]
        x = encode(obs)
        if config.dueling:
            return q_head(mlp(x, config.hidden_sizes, activate_final=True), batch_shape, logits)
        # Haiku's MLP to the head (and its param names, which saved runs keep).
        head = mlp(x, [*config.hidden_sizes, num_actions * atoms_per_action],
                   activate_final=False)
        return from_head(head.reshape(*batch_shape, num_actions, atoms_per_action), logits)

    if config.memory != "none":
        return _recurrent(config, layers)
    return hk.without_apply_rng(hk.transform(q_values))


class RecurrentQNetwork(NamedTuple):
    """A Q-network with memory (`Config.memory`), Haiku's `init` and `apply` as
    `hk.Transformed` has them, but over sequences:

    `apply(params, obs, first, memory, logits=False) -> (q, memories)`: observations
    `obs` (time, batch, *obs_shape), `first` (time, batch) bool: where an episode starts
    (the core's state is reset to its initial one before that step), and `memory` the
    core's state at the sequence's start (batch leading). `q` is (time, batch, actions);
    `memories` the core's state after each step, time leading: its last is the state to
    carry on from. `scan_unroll` (static) is the steps per iteration of the unroll's scan:
    the same values up to float rounding, in a different time and compile time.
    `initial_memory(batch)` is a fresh state for `batch` sequences.
    `init(key, obs)` takes one observation, as the feedforward network's does."""

    init: Callable
    apply: Callable
    initial_memory: Callable


def _recurrent(config: Config, layers: Callable) -> RecurrentQNetwork:
    """The recurrent network: encoder and hidden layers per step, then `hk.LSTM` or
    `hk.GRU` unrolled over time (`hk.dynamic_unroll`, reset at episode starts by
    `hk.ResetCore`), then the Q head per step."""
    def core():
        cell = hk.LSTM if config.memory == "lstm" else hk.GRU
        return hk.ResetCore(cell(config.memory_size, name=config.memory))

    def unroll(obs, first, memory, logits=False, scan_unroll=1):
        encode, mlp, q_head = layers(None)
        steps, batch = first.shape
        x = mlp(encode(obs), config.hidden_sizes, activate_final=True).reshape(steps, batch, -1)
        out, memories = hk.dynamic_unroll(core(), (x, first), memory, return_all_states=True,
                                          unroll=scan_unroll)
        return q_head(out.reshape(steps * batch, -1), (steps, batch), logits), memories

    def initial_memory(batch):
        """What `hk.LSTM` and `hk.GRU` start from (their `initial_state`): zeros."""
        zeros = jnp.zeros((batch, config.memory_size), jnp.float32)
        return hk.LSTMState(zeros, zeros) if config.memory == "lstm" else zeros

    transformed = hk.without_apply_rng(hk.transform(unroll))
    return RecurrentQNetwork(
        lambda key, obs: transformed.init(key, obs[None, None], jnp.ones((1, 1), bool),
                                          initial_memory(1)),
        transformed.apply, initial_memory)


def return_atoms(config: Config) -> chex.Array:
    """C51's fixed support: `num_atoms` returns evenly spaced over [v_min, v_max]."""
    return jnp.linspace(config.v_min, config.v_max, config.num_atoms)


def quantile_midpoints(config: Config) -> chex.Array:
    """QR-DQN's quantile levels: the midpoints (2i + 1) / (2N) of N equal slices of [0, 1]."""
    return (jnp.arange(config.num_quantiles) + 0.5) / config.num_quantiles


def expected_q(logits: chex.Array, atoms: chex.Array) -> chex.Array:
    """Q-values: the means of categorical distributions over `atoms` (last axis)."""
    return jnp.sum(jax.nn.softmax(logits) * atoms, axis=-1)

