"""What the Q-network learns from: one small function per TD target or loss (rlax's where
it has one), `td_loss` composing them for DQN's variants, the losses by name, and the
optimiser. Each target function works on a batch, named with rlax's time suffixes
(`q_tm1`, `a_tm1`, `r_t`, `discount_t`, `q_t`); illegal actions are masked through
`policies.mask_illegal`."""

from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
import rlax

from purejaxdqn import replay
from purejaxdqn.config import LOSSES, Config
from purejaxdqn.networks import expected_q, quantile_midpoints, return_atoms
from purejaxdqn.policies import mask_illegal
from purejaxdqn.replay import Transition

LOSS_FUNCTIONS = {"huber": lambda td: rlax.huber_loss(td, 1.0), "mse": rlax.l2_loss}
assert tuple(LOSS_FUNCTIONS) == LOSSES, "Config's loss names and their functions differ"


class LearnStats(NamedTuple):
    loss: chex.Array
    abs_td_error: chex.Array
    q_value: chex.Array


def q_learning_td(q_tm1, a_tm1, r_t, discount_t, q_t, q_t_selector=None) -> chex.Array:
    """TD errors of a batch: `rlax.q_learning`, or `rlax.double_q_learning` where a
    selector (the online network's Q, or the target's masked to the legal actions) picks
    the next action."""
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t], [2, 1, 1, 1, 2])
    if q_t_selector is None:
        return jax.vmap(rlax.q_learning)(q_tm1, a_tm1, r_t, discount_t, q_t)
    return jax.vmap(rlax.double_q_learning)(q_tm1, a_tm1, r_t, discount_t, q_t, q_t_selector)


def categorical_losses(atoms, logits_tm1, a_tm1, r_t, discount_t, logits_t,
                       q_t_selector=None) -> chex.Array:
    """C51's cross-entropies of a batch (`rlax.categorical_q_learning`, or
    `categorical_double_q_learning` with a selector), logits (batch, actions, atoms)."""
    chex.assert_rank([logits_tm1, a_tm1, logits_t], [3, 1, 3])
    args = (atoms, logits_tm1, a_tm1, r_t, discount_t, atoms, logits_t)
    if q_t_selector is None:
        return jax.vmap(rlax.categorical_q_learning, (None, 0, 0, 0, 0, None, 0))(*args)
    return jax.vmap(rlax.categorical_double_q_learning,
                    (None, 0, 0, 0, 0, None, 0, 0))(*args, q_t_selector)


def quantile_losses(quantiles_tm1, tau, a_tm1, r_t, discount_t, quantiles_t_selector,
                    quantiles_t) -> chex.Array:
    """QR-DQN's quantile Huber losses (kappa 1) of a batch, `rlax.quantile_q_learning`;
    quantiles (batch, actions, quantiles) as the network gives them (rlax wants quantiles
    first). The selector ranks the next actions by its means."""
    chex.assert_rank([quantiles_tm1, quantiles_t_selector, quantiles_t], 3)
    first = lambda x: jnp.swapaxes(x, -1, -2)  # noqa: E731
    return jax.vmap(rlax.quantile_q_learning, (0, None, 0, 0, 0, 0, 0, None))(
        first(quantiles_tm1), tau, a_tm1, r_t, discount_t, first(quantiles_t_selector),
        first(quantiles_t), 1.0)


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
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t], [2, 1, 1, 1, 2])

    def log_policy(q, legal):
        return jax.nn.log_softmax(mask_illegal(q / temperature, legal), axis=-1)

    log_pi_taken = jnp.take_along_axis(log_policy(q_tm1, legal_tm1), a_tm1[:, None], axis=-1)
    bonus = alpha * jnp.clip(temperature * log_pi_taken[:, 0], clip, 0.0)
    log_pi_t = log_policy(q_t, legal_t)
    pi_t = jnp.exp(log_pi_t)
    # An illegal action has pi 0 and log pi -inf: it adds nothing (not 0 * inf).
    soft_value_t = jnp.sum(jnp.where(pi_t > 0, pi_t * (q_t - temperature * log_pi_t), 0.0),
                           axis=-1)
    return jax.lax.stop_gradient(r_t + bonus + discount_t * soft_value_t)


def q_lambda_targets(q_next: chex.Array, reward: chex.Array, terminal: chex.Array,
                     done: chex.Array, gamma, lambda_, legal_next=None) -> chex.Array:
    """Peng's Q(lambda) targets over a rollout, time-major ((steps, envs), `q_next`
    (steps, envs, actions): Q at each step's next observation, the true final one where
    an episode ended). G_t = r_t + d_t ((1 - l_t) max Q(s_t+1) + l_t G_t+1), with d_t =
    gamma, or 0 where the episode terminated, and l_t = lambda, or 0 where it ended
    (terminated or truncated): a return never runs into the next episode, and a truncation
    bootstraps from its final observation. The rollout's last step bootstraps from its next
    observation alone (`rlax.lambda_returns`)."""
    chex.assert_rank([q_next, reward, terminal, done], [3, 2, 2, 2])
    value_next = jnp.max(mask_illegal(q_next, legal_next), axis=-1)
    discount = gamma * (1.0 - terminal.astype(jnp.float32))
    lambdas = lambda_ * (1.0 - done.astype(jnp.float32))
    returns = jax.vmap(rlax.lambda_returns, in_axes=1, out_axes=1)
    return returns(reward, discount, value_next, lambdas)


def td_loss(online_params, target_params, batch: Transition, gamma, network, config: Config,
            weights=None, steps=1, noise_key=None, legal_t=None, legal_tm1=None):
    """Mean loss of a batch, weighted per example by `weights` if given (importance
    sampling); returns it and (`LearnStats`, errors), where the errors' magnitudes set
    new priorities.

    The loss is `config.loss` of the TD errors (`q_learning_td`: Q-learning, or double Q
    with `config.double_q`; or against `munchausen_target` with `config.munchausen`),
    which are then the errors. With `config.distributional` it is C51's cross-entropy
    (`categorical_losses`), with `config.quantile_regression` the quantile Huber loss
    (`quantile_losses`), which is then also the error; the stats still report the TD
    error of the Q-values. `steps` (per example) is how many rewards `batch.reward` sums
    (n-step returns): the bootstrap is discounted by gamma ** steps. `noise_key` (noisy
    networks) draws the online and target networks' noise. `legal_t` (bool, (batch,
    actions)), where the environment has action masks, holds the legal actions at
    `next_obs`: the target's max (double Q's argmax, C51's and QR-DQN's greedy next action,
    Munchausen's next policy) ranges over them only, through rlax's double-Q targets with a
    masked selector; `legal_tm1`, those at `obs`, restricts Munchausen's policy there.
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
    q_t_selector = to_q(out_t_selector) if config.double_q else None
    if legal_t is not None and not config.munchausen:  # (Munchausen masks its softmax)
        # The max over legal actions: an argmax over them, then q_t's.
        q_t_selector = mask_illegal(q_t if q_t_selector is None else q_t_selector, legal_t)
    if config.munchausen:
        target = munchausen_target(q_tm1_target, batch.action, batch.reward, discount_t,
                                   q_t, config.munchausen_alpha, config.entropy_temperature,
                                   config.log_policy_clip, legal_tm1, legal_t)
        td_error = target - jnp.take_along_axis(q_tm1, batch.action[:, None], axis=-1)[:, 0]
    else:
        td_error = q_learning_td(*scalar_args, q_t_selector)
    if c51:
        errors = categorical_losses(atoms, out_tm1, batch.action, batch.reward, discount_t,
                                    out_t, q_t_selector)
    elif qr:
        selector = mask_illegal(out_t_selector if config.double_q else out_t, legal_t)
        errors = quantile_losses(out_tm1, quantile_midpoints(config), batch.action,
                                 batch.reward, discount_t, selector, out_t)
    else:
        errors = td_error
    losses = errors if dist else LOSS_FUNCTIONS[config.loss](td_error)
    loss = jnp.mean(losses if weights is None else weights * losses)
    q_taken = jnp.take_along_axis(q_tm1, batch.action[:, None], axis=-1)
    stats = LearnStats(loss, jnp.mean(jnp.abs(td_error)), jnp.mean(q_taken))
    return loss, (stats, errors)


def update_target(online_params, target_params, learn_steps, tau, config: Config):
    """Soft update by `tau`, or a copy every `config.target_update_period` learning steps
    (`learn_steps` counts them, this one included)."""
    if config.target_update_period:
        return optax.periodic_update(online_params, target_params, learn_steps,
                                     config.target_update_period)
    return optax.incremental_update(online_params, target_params, tau)


def learns_per_block(config: Config) -> int:
    return config.block_frames // config.train_every


def first_learning_block(config: Config) -> int:
    """Block b (0-based) ends at frame (b + 1) * block_frames; it learns once the buffer
    holds `warmup_steps` transitions."""
    return max(-(-config.warmup_steps // config.block_frames) - 1, 0)


def apply_gradients(grads, online_params, target_params, opt_state, learn_steps, hparams,
                    config: Config):
    """A replay learner's step from its loss's gradients: DQN's optimiser (`make_optimizer`)
    on the online network, then the target update (see `update_target`): (online_params,
    target_params, opt_state)."""
    optimizer = make_optimizer(hparams.learning_rate, hparams.max_grad_norm)
    updates, opt_state = optimizer.update(grads, opt_state, online_params)
    online_params = optax.apply_updates(online_params, updates)
    target_params = update_target(online_params, target_params, learn_steps, hparams.tau,
                                  config)
    return online_params, target_params, opt_state


def learn_in_block(learn_once: Callable, state, sample_key, block_index, config: Config):
    """A replay learner's `learns_per_block` learning steps after a block's acting, each
    `learn_once(state, sample_key, learn_steps, learning) -> (state, stats)` with
    `learn_steps` counting learning steps so far (this one included) and `learning` false
    in warm-up: (state, learning (steps,), stats each (steps,))."""
    first, learns = first_learning_block(config), learns_per_block(config)
    learning = block_index >= first
    learned = (block_index - first) * learns  # learning steps before this block
    if learns == 1:
        state, stats = learn_once(state, sample_key, learned + 1, learning)
        stats = jax.tree.map(lambda x: x[None], stats)
    else:
        state, stats = jax.lax.scan(
            lambda s, xs: learn_once(s, xs[0], learned + xs[1], learning),
            state, (jax.random.split(sample_key, learns), jnp.arange(1, learns + 1)))
    return state, jnp.broadcast_to(learning, (learns,)), stats


def learn_from_replay(buffer, state, sample_key, learning, hparams, config: Config,
                      learn: Callable):
    """A replay learner's learning step: a batch drawn from `buffer` (importance exponent
    annealed from `importance_beta_start` to 1 over the run), then `learn((online,
    target, opt_state), drawn) -> (nets, stats, errors)` where `learning`, nothing in
    warm-up; with prioritised replay, the drawn items' new priorities from the errors (in
    warm-up, the top priority new items get). Returns (state with new networks,
    optimiser state and replay, `LearnStats`)."""
    beta = hparams.importance_beta_start + (1.0 - hparams.importance_beta_start) * (
        state.frame / config.num_frames)
    drawn = replay.sample(buffer, state.buffer_state, sample_key, config, beta, hparams.gamma)

    def skip(nets):
        return nets, LearnStats(*(jnp.float32(0.0),) * 3), jnp.zeros(config.batch_size)

    # `learning` comes from the scan's xs, never from the vmapped state, so this stays a
    # real branch under vmap instead of becoming a select of both sides.
    nets = (state.online_params, state.target_params, state.opt_state)
    (online, target, opt_state), stats, errors = jax.lax.cond(
        learning, lambda n: learn(n, drawn), skip, nets)
    state = state._replace(online_params=online, target_params=target, opt_state=opt_state)
    if config.prioritized:
        top = jnp.full_like(errors, state.buffer_state.sum_tree_state.max_recorded_priority)
        priorities = jnp.where(learning, replay.new_priorities(errors, hparams.priority_exponent),
                               top)
        state = state._replace(buffer_state=buffer.set_priorities(
            state.buffer_state, drawn.indices, priorities))
    return state, stats


def sequence_targets(r_t: chex.Array, terminal: chex.Array, done: chex.Array,
                     v_t: chex.Array, gamma, n: int, rescale: bool = False) -> chex.Array:
    """n-step targets inside sequences, time-major ((steps, batch); `v_t` the value to
    bootstrap from at each step's next observation, the true final one where an episode
    ended): G_t = r_t + ... + gamma^(m-1) r_t+m-1 + gamma^m v_t+m-1, where the m <= n
    steps stop at the first episode end (a termination then bootstraps nothing) or at the
    sequence's end. `rlax.transformed_n_step_returns` with lambda 0 where an episode ends;
    with `rescale`, over R2D2's value rescaling (`rlax.SIGNED_HYPERBOLIC_PAIR`: `v_t` and
    the targets are h(Q))."""
    chex.assert_rank([r_t, terminal, done, v_t], 2)
    discount = gamma * (1.0 - terminal.astype(jnp.float32))
    lambdas = 1.0 - done.astype(jnp.float32)
    pair = rlax.SIGNED_HYPERBOLIC_PAIR if rescale else rlax.IDENTITY_PAIR

    def returns(r, d, v, lambda_):
        return rlax.transformed_n_step_returns(pair, r, d, v, n, lambda_t=lambda_)

    return jax.vmap(returns, in_axes=1, out_axes=1)(r_t, discount, v_t, lambdas)


def sequence_n_step(r_t: chex.Array, terminal: chex.Array, done: chex.Array, gamma,
                    n: int) -> tuple[chex.Array, chex.Array, chex.Array]:
    """n-step returns inside sequences, time-major ((steps, batch)), as one transition per
    step for the distributional heads: (the discounted sum of the m <= n rewards up to the
    first episode end or the sequence's end, the bootstrap's discount gamma^m (0 where that
    last step terminated), and that last step's index t + m - 1, whose next observation
    the return bootstraps from). `sequence_targets` is the same return for a value."""
    chex.assert_rank([r_t, terminal, done], 2)
    steps = r_t.shape[0]
    window = jnp.arange(steps)[:, None] + jnp.arange(n)            # (steps, n)
    index = jnp.minimum(window, steps - 1)
    ended = done[index].astype(jnp.int32)                          # (steps, n, batch)
    counted = (window < steps)[..., None] & (jnp.cumsum(ended, axis=1) - ended == 0)
    m = jnp.sum(counted, axis=1)                                   # (steps, batch)
    returns = jnp.sum(jnp.where(counted, gamma ** jnp.arange(n)[:, None] * r_t[index], 0.0),
                      axis=1)
    last = jnp.arange(steps)[:, None] + m - 1
    terminal_last = jnp.take_along_axis(terminal, last, axis=0)
    return returns, gamma ** m * (1.0 - terminal_last.astype(jnp.float32)), last


def make_optimizer(learning_rate, max_grad_norm,
                   rule=optax.adam) -> optax.GradientTransformation:
    """`rule` (Adam, DQN's; PQN takes RAdam) after global-norm clipping; the learning rate
    (a value, traced or not, or an optax schedule) and the norm may be traced."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), rule(learning_rate))


def pqn_optimizer(hparams, config: Config) -> optax.GradientTransformation:
    """PQN's (with or without memory): RAdam, as its authors' code has it, after
    global-norm clipping, its learning rate decaying linearly to 0 over the run's gradient
    steps where `config.lr_linear_decay`."""
    learning_rate = hparams.learning_rate
    if config.lr_linear_decay:
        steps = config.num_frames // config.block_frames * config.num_epochs * config.num_minibatches
        learning_rate = optax.linear_schedule(hparams.learning_rate, 0.0, steps)
    return make_optimizer(learning_rate, hparams.max_grad_norm, optax.radam)
