"""The DQN agent: Q-network, epsilon-greedy acting, TD loss, learning step, target update."""

from functools import partial
from typing import Callable, NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import optax
import rlax

from purejaxdqn.config import Config
from purejaxdqn.conv import PatchConv2D
from purejaxdqn.noisy import NoisyLinear
from purejaxdqn.replay import Transition


def make_q_network(config: Config, num_actions: int | None = None,
                   obs_shape: tuple[int, ...] | None = None,
                   torso: Callable | None = None) -> hk.Transformed:
    """Haiku Q-network from observations of `obs_shape` (any dtype, any leading batch
    axes) to `num_actions` Q-values: an MLP over the flattened observation, or with
    `config.network` "cnn" over a 3x3 convolution's flattened features, or with "cnn_pool"
    over their maxima across the grid, or over the features of your own `torso` (a Haiku
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

    `num_actions` and `obs_shape` default to those of `config.env_name`.
    """
    if num_actions is None or obs_shape is None:
        from purejaxdqn.envs import resolve_env

        env, env_params, n = resolve_env(config.env_name)
        num_actions = n if num_actions is None else num_actions
        obs_shape = env.observation_space(env_params).shape if obs_shape is None else obs_shape
    obs_shape = tuple(obs_shape)
    if torso is not None and not callable(torso):
        raise ValueError(f"network must be a Haiku function from a batch of observations to "
                         f"features, got {type(torso).__name__}")
    if torso is not None and config.network != "mlp":
        raise ValueError(f"a network of your own replaces Config.network's torso; leave "
                         f"network='mlp', not {config.network!r}")
    if config.network != "mlp" and len(obs_shape) != 3:
        raise ValueError(f"network={config.network!r} needs image observations (height, "
                         f"width, channels); this environment's have shape {obs_shape}")

    num_layers = len(config.hidden_sizes) + 1 + config.dueling
    atoms_per_action = (config.num_atoms if config.distributional else
                        config.num_quantiles if config.quantile_regression else 1)

    def q_values(obs, noise_key=None, logits=False):
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

        batch_shape = obs.shape[:obs.ndim - len(obs_shape)]
        # Observations are stored in their native dtype; cast here, where they are used.
        x = obs.astype(jnp.float32).reshape(-1, *obs_shape)
        if torso is not None:
            x = torso(x)
        elif config.network != "mlp":
            # hk.Conv2D's module name, so params saved with either load into both.
            x = PatchConv2D(config.conv_channels, kernel_shape=3, name="conv2_d")(x)
            x = jax.nn.relu(normalize(x, "conv_layer_norm") if config.layer_norm else x)
        if config.network == "cnn_pool":
            # Whether each filter's pattern is anywhere on the grid, not where: what is
            # learned at one cell holds at every cell.
            x = jnp.max(x, axis=(-3, -2))
        x = x.reshape(x.shape[0], -1)
        head_shape = (-1, num_actions, atoms_per_action)
        if config.dueling:
            features = mlp(x, config.hidden_sizes, activate_final=True)
            value = dense(features, atoms_per_action, "value").reshape(-1, 1, atoms_per_action)
            advantage = dense(features, num_actions * atoms_per_action, "advantage")
            advantage = advantage.reshape(head_shape)
            head = value + advantage - jnp.mean(advantage, axis=1, keepdims=True)
        else:
            head = mlp(x, [*config.hidden_sizes, num_actions * atoms_per_action],
                       activate_final=False).reshape(head_shape)
        head = head.reshape(*batch_shape, num_actions, atoms_per_action)
        if config.quantile_regression:
            return head if logits else jnp.mean(head, axis=-1)
        if not config.distributional:
            return head[..., 0]
        return head if logits else expected_q(head, return_atoms(config))

    return hk.without_apply_rng(hk.transform(q_values))


def return_atoms(config: Config) -> chex.Array:
    """C51's fixed support: `num_atoms` returns evenly spaced over [v_min, v_max]."""
    return jnp.linspace(config.v_min, config.v_max, config.num_atoms)


def quantile_midpoints(config: Config) -> chex.Array:
    """QR-DQN's quantile levels: the midpoints (2i + 1) / (2N) of N equal slices of [0, 1]."""
    return (jnp.arange(config.num_quantiles) + 0.5) / config.num_quantiles


def expected_q(logits: chex.Array, atoms: chex.Array) -> chex.Array:
    """Q-values: the means of categorical distributions over `atoms` (last axis)."""
    return jnp.sum(jax.nn.softmax(logits) * atoms, axis=-1)


def epsilon_at(frame: chex.Array, eps_start, eps_end, eps_decay_frames) -> chex.Array:
    """Linear epsilon schedule from `eps_start` to `eps_end` over `eps_decay_frames`."""
    fraction = jnp.clip(frame / eps_decay_frames, 0.0, 1.0)
    return eps_start + fraction * (eps_end - eps_start)


def legal_or_all(legal: chex.Array) -> chex.Array:
    """The legal actions (bool, last axis the actions), or all of them where none is."""
    return legal | ~jnp.any(legal, axis=-1, keepdims=True)


def greedy_action(q: chex.Array, legal: chex.Array | None = None) -> chex.Array:
    """The argmax over the last axis of `q`, among the `legal` actions where given."""
    if legal is not None:
        q = jnp.where(legal_or_all(legal), q, -jnp.inf)
    return jnp.argmax(q, axis=-1).astype(jnp.int32)


def select_action(key: chex.PRNGKey, q: chex.Array, epsilon: chex.Array,
                  legal: chex.Array | None = None) -> chex.Array:
    """Epsilon-greedy over the last axis of `q`: a uniform random action with
    probability `epsilon`, else the argmax; both among the `legal` actions (a bool mask
    shaped like `q`) where given. (rlax's `epsilon_greedy` is deprecated in favour of
    distrax, whose categorical draw costs more than these lines.)"""
    explore_key, action_key = jax.random.split(key)
    if legal is None:
        random_action = jax.random.randint(action_key, q.shape[:-1], 0, q.shape[-1])
    else:
        random_action = jax.random.categorical(
            action_key, jnp.where(legal_or_all(legal), 0.0, -jnp.inf))
    explore = jax.random.uniform(explore_key, q.shape[:-1]) < epsilon
    return jnp.where(explore, random_action, greedy_action(q, legal)).astype(jnp.int32)


class LearnStats(NamedTuple):
    loss: chex.Array
    abs_td_error: chex.Array
    q_value: chex.Array


def munchausen_target(q_tm1: chex.Array, a_tm1: chex.Array, r_t: chex.Array,
                      discount_t: chex.Array, q_t: chex.Array, alpha, temperature, clip,
                      legal_tm1: chex.Array | None = None,
                      legal_t: chex.Array | None = None) -> chex.Array:
    """Munchausen DQN's target (Vieillard et al. 2020), per example of a batch:
    r + alpha * clip(temperature * log pi(a_tm1 | s_tm1), clip, 0)
      + discount * sum_a pi(a | s_t) * (q_t[a] - temperature * log pi(a | s_t)),
    with pi the softmax of Q / temperature (over the legal actions, where masks are
    given). `q_tm1` and `q_t` (batch, actions) are the target network's, at the states
    acted in and reached. rlax has no Munchausen target; no gradient flows through it."""
    def log_policy(q, legal):
        logits = q / temperature
        if legal is not None:
            logits = jnp.where(legal_or_all(legal), logits, -jnp.inf)
        return jax.nn.log_softmax(logits, axis=-1)

    log_pi_taken = jnp.take_along_axis(log_policy(q_tm1, legal_tm1), a_tm1[:, None], axis=-1)
    bonus = alpha * jnp.clip(temperature * log_pi_taken[:, 0], clip, 0.0)
    log_pi_t = log_policy(q_t, legal_t)
    pi_t = jnp.exp(log_pi_t)
    # An illegal action has pi 0 and log pi -inf: it adds nothing (not 0 * inf).
    soft_value_t = jnp.sum(jnp.where(pi_t > 0, pi_t * (q_t - temperature * log_pi_t), 0.0),
                           axis=-1)
    return jax.lax.stop_gradient(r_t + bonus + discount_t * soft_value_t)


LOSSES = {"huber": lambda td: rlax.huber_loss(td, 1.0), "mse": rlax.l2_loss}


def td_loss(online_params, target_params, batch: Transition, gamma, network: hk.Transformed,
            config: Config, weights=None, steps=1, noise_key=None, legal_t=None,
            legal_tm1=None):
    """Mean loss of a batch, weighted per example by `weights` if given (importance
    sampling); returns it and (`LearnStats`, errors), where the errors' magnitudes set
    new priorities.

    The loss is `config.loss` of the TD errors of `rlax.q_learning` (or
    `rlax.double_q_learning` if `config.double_q`, or of `munchausen_target` if
    `config.munchausen`), which are then the errors. With `config.distributional` it is
    the cross-entropy of `rlax.categorical_q_learning` (or
    `categorical_double_q_learning`), with `config.quantile_regression` the quantile
    Huber loss of `rlax.quantile_q_learning`, which is then also the error; the stats
    still report the TD error of the Q-values. `steps` (per example) is how many rewards
    `batch.reward` sums (n-step returns): the bootstrap is discounted by gamma ** steps.
    `noise_key` (noisy networks) draws the online and target networks' noise. `legal_t`
    (bool, (batch, actions)), where the environment has action masks, holds the legal
    actions at `next_obs`: the target's max (double Q's argmax, C51's and QR-DQN's greedy
    next action, Munchausen's next policy) ranges over them only, through rlax's
    double-Q targets with a masked selector; `legal_tm1`, those at `obs`, restricts
    Munchausen's policy there.
    """
    online_key, target_key = (None, None) if noise_key is None else jax.random.split(noise_key)
    c51, qr = config.distributional, config.quantile_regression
    dist = c51 or qr  # the network's outputs are logits or quantiles, Q-values from them
    if config.munchausen:  # the target network at obs too, in the same forward pass
        q_tm1_target, out_t = jnp.split(network.apply(
            target_params, jnp.concatenate([batch.obs, batch.next_obs]), target_key), 2)
    else:
        out_t = network.apply(target_params, batch.next_obs, target_key, logits=dist)
    if config.double_q:
        # One forward pass of the online network over obs and next_obs together.
        both = network.apply(online_params, jnp.concatenate([batch.obs, batch.next_obs]),
                             online_key, logits=dist)
        out_tm1, out_t_selector = jnp.split(both, 2)
    else:
        out_tm1 = network.apply(online_params, batch.obs, online_key, logits=dist)
    atoms = return_atoms(config)
    to_q = ((lambda out: expected_q(out, atoms)) if c51 else
            (lambda out: jnp.mean(out, axis=-1)) if qr else (lambda out: out))
    q_tm1, q_t = to_q(out_tm1), to_q(out_t)
    discount_t = gamma ** steps * (1.0 - batch.terminal.astype(jnp.float32))
    scalar_args = (q_tm1, batch.action, batch.reward, discount_t, q_t)
    c51_args = (atoms, out_tm1, batch.action, batch.reward, discount_t, atoms, out_t)
    q_t_selector = to_q(out_t_selector) if config.double_q else None
    if legal_t is not None and not config.munchausen:  # (Munchausen masks its softmax)
        # The max over legal actions: an argmax over them, then q_t's.
        q_t_selector = jnp.where(legal_or_all(legal_t),
                                 q_t if q_t_selector is None else q_t_selector, -jnp.inf)
    if config.munchausen:
        target = munchausen_target(q_tm1_target, batch.action, batch.reward, discount_t,
                                   q_t, config.munchausen_alpha, config.entropy_temperature,
                                   config.log_policy_clip, legal_tm1, legal_t)
        td_error = target - jnp.take_along_axis(q_tm1, batch.action[:, None], axis=-1)[:, 0]
    elif q_t_selector is not None:
        td_error = jax.vmap(rlax.double_q_learning)(*scalar_args, q_t_selector)
        if c51:
            errors = jax.vmap(rlax.categorical_double_q_learning,
                              (None, 0, 0, 0, 0, None, 0, 0))(*c51_args, q_t_selector)
    else:
        td_error = jax.vmap(rlax.q_learning)(*scalar_args)
        if c51:
            errors = jax.vmap(rlax.categorical_q_learning, (None, 0, 0, 0, 0, None, 0))(
                *c51_args)
    if qr:  # rlax wants (quantiles, actions); the selector ranks next actions by its mean
        selector = out_t_selector if config.double_q else out_t
        if legal_t is not None:
            selector = jnp.where(legal_or_all(legal_t)[..., None], selector, -jnp.inf)
        quantiles_first = partial(jnp.swapaxes, axis1=-1, axis2=-2)
        errors = jax.vmap(rlax.quantile_q_learning, (0, None, 0, 0, 0, 0, 0, None))(
            quantiles_first(out_tm1), quantile_midpoints(config), batch.action, batch.reward,
            discount_t, quantiles_first(selector), quantiles_first(out_t), 1.0)
    if dist:
        losses = errors  # the cross-entropies, or the quantile Huber losses
    else:
        errors, losses = td_error, LOSSES[config.loss](td_error)
    loss = jnp.mean(losses if weights is None else weights * losses)
    q_taken = jnp.take_along_axis(q_tm1, batch.action[:, None], axis=-1)
    stats = LearnStats(loss, jnp.mean(jnp.abs(td_error)), jnp.mean(q_taken))
    return loss, (stats, errors)


def make_optimizer(learning_rate, max_grad_norm) -> optax.GradientTransformation:
    """Adam after global-norm clipping; both arguments may be traced values."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))


def update_target(online_params, target_params, learn_steps, tau, config: Config):
    """Soft update by `tau`, or a copy every `config.target_update_period` learning steps
    (`learn_steps` counts them, this one included)."""
    if config.target_update_period:
        return optax.periodic_update(online_params, target_params, learn_steps,
                                     config.target_update_period)
    return optax.incremental_update(online_params, target_params, tau)


def learn_step(online_params, target_params, opt_state, batch, learn_steps, hparams,
               network, config: Config, weights=None, steps=1, noise_key=None, legal_t=None,
               legal_tm1=None):
    """One gradient step on `batch` (importance-weighted by `weights` if given), then the
    target update (see `update_target`).

    Returns the new (online_params, target_params, opt_state), `LearnStats` and the
    errors of the batch that set new priorities (see `td_loss`, and its `legal_t` and
    `legal_tm1`).
    """
    grads, (stats, errors) = jax.grad(td_loss, has_aux=True)(
        online_params, target_params, batch, hparams.gamma, network, config, weights, steps,
        noise_key, legal_t, legal_tm1)
    optimizer = make_optimizer(hparams.learning_rate, hparams.max_grad_norm)
    updates, opt_state = optimizer.update(grads, opt_state, online_params)
    online_params = optax.apply_updates(online_params, updates)
    target_params = update_target(online_params, target_params, learn_steps, hparams.tau,
                                  config)
    return online_params, target_params, opt_state, stats, errors
