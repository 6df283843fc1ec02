"""The agent's pieces against independent numpy computations."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config
from purejaxdqn.conv import PatchConv2D
from purejaxdqn.dqn import learn_step
from purejaxdqn.learning import update_target
from purejaxdqn.learning import make_optimizer, td_loss
from purejaxdqn.networks import make_q_network
from purejaxdqn.policies import epsilon_at, select_action
from purejaxdqn.replay import Transition, n_step_transition
from tests.helpers import LEGAL_T, numpy_huber

CONFIG = Config(hidden_sizes=(8,))


def numpy_q(params, obs):
    layers = [params[name] for name in sorted(params)]  # mlp/~/linear_0, linear_1
    x = np.asarray(obs, np.float64)
    for i, layer in enumerate(layers):
        x = x @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        if i < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x


@pytest.fixture
def batch_and_params():
    network = make_q_network(CONFIG, num_actions=3, obs_shape=(4,))
    obs = np.array([[0.1, -0.2, 0.3, 0.0], [1.0, 2.0, -1.0, 0.5],
                    [-0.5, 0.5, 0.2, -2.0], [3.0, -3.0, 1.0, 1.0]], np.float32)
    batch = Transition(
        obs=obs, action=np.array([0, 2, 1, 2], np.int32),
        reward=np.array([1.0, 0.0, -1.0, 5.0], np.float32),
        terminal=np.array([False, True, False, False]),
        next_obs=obs[::-1] * 0.7)
    online = network.init(jax.random.key(1), obs)
    target = network.init(jax.random.key(2), obs)
    return network, batch, online, target


@pytest.mark.parametrize("double_q", [False, True])
@pytest.mark.parametrize("loss_name", ["huber", "mse"])
def test_td_loss_matches_numpy(batch_and_params, double_q, loss_name):
    network, batch, online, target = batch_and_params
    config = Config(hidden_sizes=(8,), double_q=double_q, loss=loss_name)
    gamma = 0.9
    q_tm1, q_t = numpy_q(online, batch.obs), numpy_q(target, batch.next_obs)
    if double_q:  # the online network picks the action, the target network values it
        next_action = numpy_q(online, batch.next_obs).argmax(axis=1)
        assert np.any(next_action != q_t.argmax(axis=1))  # the two rules differ here
        bootstrap = q_t[np.arange(4), next_action]
    else:
        bootstrap = q_t.max(axis=1)
    target_tm1 = batch.reward + gamma * (1.0 - batch.terminal) * bootstrap
    td = target_tm1 - q_tm1[np.arange(4), batch.action]
    assert np.abs(td).max() > 1.0 and np.abs(td).min() < 1.0  # both Huber regimes

    loss, (stats, td_error) = td_loss(online, target, jax.tree.map(jnp.asarray, batch), gamma,
                                      network, config)
    np.testing.assert_allclose(td_error, td, rtol=1e-5)
    expected = numpy_huber(td) if loss_name == "huber" else 0.5 * td**2
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats.abs_td_error, np.abs(td).mean(), rtol=1e-5)
    np.testing.assert_allclose(stats.q_value, q_tm1[np.arange(4), batch.action].mean(),
                               rtol=1e-5)


def test_learn_step_moves_target_by_tau(batch_and_params):
    network, batch, online, target = batch_and_params
    hparams = CONFIG.hyperparams()._replace(tau=jnp.float32(0.25))
    opt_state = make_optimizer(hparams.learning_rate, hparams.max_grad_norm).init(online)
    new_online, new_target, _, stats, _ = jax.jit(learn_step, static_argnums=(6, 7))(
        online, target, opt_state, batch, 1, hparams, network, CONFIG)
    for o, t_old, t_new, o_old in zip(*map(jax.tree.leaves, (new_online, target,
                                                               new_target, online))):
        np.testing.assert_allclose(t_new, 0.25 * o + 0.75 * t_old, rtol=1e-5, atol=1e-7)
        assert not np.allclose(o, o_old)  # the online params did learn
    loss_after, _ = td_loss(new_online, target, batch, hparams.gamma, network, CONFIG)
    assert loss_after < stats.loss


@pytest.mark.parametrize("learn_steps, copied", [(1, False), (2, False), (3, True), (6, True)])
def test_hard_target_update_copies_every_period(batch_and_params, learn_steps, copied):
    _, _, online, target = batch_and_params
    config = Config(target_update_period=3)
    new_target = jax.jit(update_target, static_argnums=4)(online, target, learn_steps, 0.5,
                                                          config)
    expected = online if copied else target
    for got, want in zip(jax.tree.leaves(new_target), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(got, want)


def test_dueling_head_is_value_plus_centred_advantage():
    config = Config(hidden_sizes=(8, 8), dueling=True)
    network = make_q_network(config, num_actions=3, obs_shape=(4,))
    obs = jax.random.normal(jax.random.key(3), (5, 4))
    params = network.init(jax.random.key(4), obs)
    assert set(params) == {"mlp/~/linear_0", "mlp/~/linear_1", "value", "advantage"}
    torso = np.asarray(obs, np.float64)
    for name in ("mlp/~/linear_0", "mlp/~/linear_1"):
        torso = np.maximum(torso @ params[name]["w"] + params[name]["b"], 0.0)
    value = torso @ params["value"]["w"] + params["value"]["b"]
    advantage = torso @ params["advantage"]["w"] + params["advantage"]["b"]
    expected = value + advantage - advantage.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(network.apply(params, obs), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("frame, expected", [(0, 1.0), (5_000, 0.7625), (10_000, 0.525),
                                             (20_000, 0.05), (35_000, 0.05)])
def test_epsilon_schedule(frame, expected):
    np.testing.assert_allclose(epsilon_at(frame, 1.0, 0.05, 20_000), expected, rtol=1e-6)


def test_select_action_greedy_and_uniform():
    q = jnp.array([0.0, 3.0, 1.0])
    keys = jax.random.split(jax.random.key(0), 3000)
    greedy = jax.vmap(select_action, (0, None, None))(keys, q, 0.0)
    assert greedy.dtype == jnp.int32 and np.all(greedy == 1)
    uniform = np.asarray(jax.vmap(select_action, (0, None, None))(keys, q, 1.0))
    np.testing.assert_allclose(np.bincount(uniform, minlength=3) / 3000, 1 / 3, atol=0.03)
    half = np.asarray(jax.vmap(select_action, (0, None, None))(keys, q, 0.5))
    np.testing.assert_allclose(np.mean(half == 1), 0.5 + 0.5 / 3, atol=0.03)


def test_n_step_transition_across_termination_and_truncation():
    gamma = 0.9
    rewards = np.array([[1.0, 2.0, 3.0]] * 3, np.float32)
    last = np.array([[False, False, False],    # no episode end in the window
                     [False, True, False],     # terminated at step 1
                     [True, False, False]])    # truncated at step 0 (time limit)
    terminal = np.array([[False, False, False], [False, True, False], [False, False, False]])
    next_obs = np.arange(3 * 3 * 4, dtype=np.float32).reshape(3, 3, 4)
    items = Transition(obs=next_obs - 1, action=np.array([[2, 0, 1]] * 3, np.int32),
                       reward=rewards, terminal=terminal, next_obs=next_obs)
    batch, steps = n_step_transition(jax.tree.map(jnp.asarray, items), jnp.asarray(last), gamma)
    np.testing.assert_array_equal(steps, [3, 2, 1])
    np.testing.assert_allclose(batch.reward, [1 + 2 * gamma + 3 * gamma**2, 1 + 2 * gamma, 1.0],
                               rtol=1e-6)
    np.testing.assert_array_equal(batch.terminal, [False, True, False])
    np.testing.assert_array_equal(batch.next_obs, next_obs[[0, 1, 2], [2, 1, 0]])
    np.testing.assert_array_equal(batch.obs, items.obs[:, 0])
    np.testing.assert_array_equal(batch.action, [2, 2, 2])

    # The TD target discounts the bootstrap by gamma ** steps, and not at all past a
    # termination.
    network = make_q_network(CONFIG, num_actions=3, obs_shape=(4,))
    params = network.init(jax.random.key(0), next_obs[0, 0])
    _, (_, td) = td_loss(params, params, batch, gamma, network, CONFIG, steps=steps)
    q_tm1 = numpy_q(params, batch.obs)[np.arange(3), 2]
    q_t = numpy_q(params, batch.next_obs).max(axis=1)
    expected = np.asarray(batch.reward) + gamma ** np.array([3, 2, 1]) * np.array([1, 0, 1]) * q_t
    np.testing.assert_allclose(td, expected - q_tm1, rtol=1e-5, atol=1e-5)


def numpy_c51_loss(logits_tm1, action, reward, discount, logits_t, atoms, q_t_selector=None):
    """C51's loss as in the paper's Algorithm 1: project the shifted target atoms onto the
    support by splitting each one's mass between its two neighbours."""
    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    p_t = softmax(logits_t)                                  # (B, A, N)
    selector = (p_t * atoms).sum(-1) if q_t_selector is None else q_t_selector
    rows = np.arange(len(action))
    p_next = p_t[rows, selector.argmax(axis=1)]              # (B, N)
    v_min, v_max, dz = atoms[0], atoms[-1], atoms[1] - atoms[0]
    target = np.zeros_like(p_next)
    for i in rows:
        for j, z in enumerate(atoms):
            b = (np.clip(reward[i] + discount[i] * z, v_min, v_max) - v_min) / dz
            low, high = int(np.floor(b)), int(np.ceil(b))
            if low == high:
                target[i, low] += p_next[i, j]
            else:
                target[i, low] += p_next[i, j] * (high - b)
                target[i, high] += p_next[i, j] * (b - low)
    logits = logits_tm1[rows, action]
    log_p = logits - logits.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    return -(target * log_p).sum(-1)


@pytest.mark.parametrize("double_q", [False, True])
def test_c51_loss_matches_numpy(batch_and_params, double_q):
    _, batch, _, _ = batch_and_params
    # Six atoms one apart; the rewards push target atoms past both ends of the support.
    config = Config(hidden_sizes=(8,), distributional=True, num_atoms=6, v_min=-2.0,
                    v_max=3.0, double_q=double_q)
    network = make_q_network(config, num_actions=3, obs_shape=(4,))
    online = network.init(jax.random.key(1), batch.obs)
    target = jax.tree.map(lambda x: 3.0 * x, network.init(jax.random.key(2), batch.obs))
    gamma = 0.9
    logits = {name: np.asarray(network.apply(params, obs, logits=True), np.float64)
              for name, params, obs in [("tm1", online, batch.obs), ("t", target, batch.next_obs),
                                        ("selector", online, batch.next_obs)]}
    atoms = np.linspace(-2.0, 3.0, 6)
    assert logits["tm1"].shape == (4, 3, 6)
    selector = (np.exp(logits["selector"]) / np.exp(logits["selector"]).sum(-1, keepdims=True)
                * atoms).sum(-1) if double_q else None
    if double_q:  # the online network's choice differs from the target network's here
        q_t = (np.exp(logits["t"]) / np.exp(logits["t"]).sum(-1, keepdims=True) * atoms).sum(-1)
        assert np.any(selector.argmax(axis=1) != q_t.argmax(axis=1))
    discount = gamma * (1.0 - batch.terminal)
    expected = numpy_c51_loss(logits["tm1"], batch.action, batch.reward, discount,
                              logits["t"], atoms, selector)

    loss, (stats, errors) = td_loss(online, target, jax.tree.map(jnp.asarray, batch), gamma,
                                    network, config)
    np.testing.assert_allclose(errors, expected, rtol=1e-5)
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-5)
    q_tm1 = network.apply(online, batch.obs)
    np.testing.assert_allclose(stats.q_value, q_tm1[np.arange(4), batch.action].mean(),
                               rtol=1e-5)


@pytest.mark.parametrize("dueling", [False, True])
def test_c51_q_values_are_the_expected_returns(dueling):
    config = Config(hidden_sizes=(8,), distributional=True, num_atoms=5, v_min=0.0,
                    v_max=100.0, dueling=dueling)
    network = make_q_network(config, num_actions=3, obs_shape=(4,))
    obs = jax.random.normal(jax.random.key(3), (7, 4))
    params = network.init(jax.random.key(4), obs)
    logits = np.asarray(network.apply(params, obs, logits=True), np.float64)
    assert logits.shape == (7, 3, 5)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    q = network.apply(params, obs)
    assert q.shape == (7, 3)
    np.testing.assert_allclose(q, (probs * np.linspace(0, 100, 5)).sum(-1), rtol=1e-5)
    assert np.all((0.0 <= q) & (q <= 100.0))
    # Unbatched observations too (acting sees one observation per seed).
    np.testing.assert_allclose(network.apply(params, obs[0]), q[0], rtol=1e-5)


def test_patch_conv_is_haikus_conv():
    x = jax.random.normal(jax.random.key(5), (6, 10, 10, 4))
    ours = hk.transform(lambda x: PatchConv2D(16, kernel_shape=3, name="conv2_d")(x))
    haikus = hk.transform(lambda x: hk.Conv2D(16, kernel_shape=3, padding="VALID")(x))
    params = ours.init(jax.random.key(6), x)
    params["conv2_d"]["b"] = jax.random.normal(jax.random.key(7), (16,))
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape,
                                                           haikus.init(jax.random.key(6), x))
    got = ours.apply(params, None, x)
    assert got.shape == (6, 8, 8, 16)
    np.testing.assert_allclose(got, haikus.apply(params, None, x), rtol=1e-5, atol=1e-5)
    # Any leading axes.
    np.testing.assert_allclose(ours.apply(params, None, x.reshape(2, 3, 10, 10, 4)),
                               got.reshape(2, 3, 8, 8, 16), rtol=1e-6)


def _numpy_conv(x, w, b, stride):
    """A VALID convolution, NHWC, output position by output position."""
    k = w.shape[0]
    height, width = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.empty((x.shape[0], height, width, w.shape[-1]))
    for i in range(height):
        for j in range(width):
            window = x[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j] = np.einsum("nhwc,hwco->no", window, w) + b
    return out


def test_the_strided_torso_is_a_numpy_forward_pass():
    """`network="cnn_strided"` on Octax-sized frames (32x64, 4 channels of 0/1): three
    strided convolutions with ReLUs, flattened, then the MLP and the Q head, computed in
    numpy from the same parameters; frames too small for it are refused in one line."""
    config = Config(network="cnn_strided", hidden_sizes=(16,))
    network = make_q_network(config, 3, (32, 64, 4))
    obs = jax.random.bernoulli(jax.random.key(8), 0.3, (5, 32, 64, 4))
    # (Jitted: op by op, the convolutions compile a program each.)
    params = jax.jit(lambda key, obs: jax.tree.map(
        lambda p: p + 0.01 * jax.random.normal(jax.random.key(10), p.shape),
        network.init(key, obs)))(jax.random.key(9), obs[0])  # biases away from zero
    x = np.asarray(obs, np.float64)
    for i, stride in enumerate((2, 2, 1)):
        layer = params[f"conv_{i}"]
        x = np.maximum(_numpy_conv(x, np.asarray(layer["w"], np.float64),
                                   np.asarray(layer["b"], np.float64), stride), 0.0)
    assert x.shape == (5, 4, 12, 64)  # 3,072 features
    x = x.reshape(5, -1)
    for name, relu in (("mlp/~/linear_0", True), ("mlp/~/linear_1", False)):
        x = x @ np.asarray(params[name]["w"], np.float64) + np.asarray(params[name]["b"])
        x = np.maximum(x, 0.0) if relu else x
    np.testing.assert_allclose(jax.jit(network.apply)(params, obs), x, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="needs frames of 18x18 or more; this environment's "
                                         "are 10x10"):
        make_q_network(config, 3, (10, 10, 4))


# Legal next actions per example; the last row has none (then every action counts).
@pytest.mark.parametrize("double_q", [False, True])
def test_the_target_ranges_over_legal_next_actions(batch_and_params, double_q):
    network, batch, online, target = batch_and_params
    config = Config(hidden_sizes=(8,), double_q=double_q)
    gamma = 0.9
    q_tm1, q_t = numpy_q(online, batch.obs), numpy_q(target, batch.next_obs)
    selector = numpy_q(online, batch.next_obs) if double_q else q_t
    legal = LEGAL_T | ~LEGAL_T.any(axis=1, keepdims=True)
    next_action = np.where(legal, selector, -np.inf).argmax(axis=1)
    assert np.any(next_action != selector.argmax(axis=1))  # the mask changes the choice
    bootstrap = q_t[np.arange(4), next_action]
    td = (batch.reward + gamma * (1.0 - batch.terminal) * bootstrap
          - q_tm1[np.arange(4), batch.action])
    _, (_, td_error) = td_loss(online, target, jax.tree.map(jnp.asarray, batch), gamma,
                               network, config, legal_t=jnp.asarray(LEGAL_T))
    np.testing.assert_allclose(td_error, td, rtol=1e-5)


def test_c51_takes_the_best_legal_next_action(batch_and_params):
    _, batch, _, _ = batch_and_params
    config = Config(hidden_sizes=(8,), distributional=True, num_atoms=6, v_min=-2.0,
                    v_max=3.0)
    network = make_q_network(config, num_actions=3, obs_shape=(4,))
    online = network.init(jax.random.key(1), batch.obs)
    target = jax.tree.map(lambda x: 3.0 * x, network.init(jax.random.key(2), batch.obs))
    logits_t = np.asarray(network.apply(target, batch.next_obs, logits=True), np.float64)
    atoms = np.linspace(-2.0, 3.0, 6)
    q_t = (np.exp(logits_t) / np.exp(logits_t).sum(-1, keepdims=True) * atoms).sum(-1)
    legal = LEGAL_T | ~LEGAL_T.any(axis=1, keepdims=True)
    selector = np.where(legal, q_t, -np.inf)
    assert np.any(selector.argmax(axis=1) != q_t.argmax(axis=1))
    logits_tm1 = np.asarray(network.apply(online, batch.obs, logits=True), np.float64)
    expected = numpy_c51_loss(logits_tm1, batch.action, batch.reward,
                              0.9 * (1.0 - batch.terminal), logits_t, atoms, selector)
    _, (_, errors) = td_loss(online, target, jax.tree.map(jnp.asarray, batch), 0.9, network,
                             config, legal_t=jnp.asarray(LEGAL_T))
    np.testing.assert_allclose(errors, expected, rtol=1e-5)


def test_select_action_takes_only_legal_actions():
    q = jnp.array([0.0, 3.0, 1.0, 2.0])
    legal = jnp.array([True, False, True, False])
    keys = jax.random.split(jax.random.key(0), 3000)
    greedy = np.asarray(jax.vmap(select_action, (0, None, None, None))(keys, q, 0.0, legal))
    assert np.all(greedy == 2)  # the best legal action, not the best one
    uniform = np.asarray(jax.vmap(select_action, (0, None, None, None))(keys, q, 1.0, legal))
    np.testing.assert_allclose(np.bincount(uniform, minlength=4) / 3000, [0.5, 0, 0.5, 0],
                               atol=0.03)
    # Without a mask the draw is what it always was, bit for bit.
    assert np.array_equal(jax.vmap(select_action, (0, None, None))(keys, q, 1.0),
                          jax.vmap(select_action, (0, None, None, None))(keys, q, 1.0, None))


def test_layer_norm_normalises_each_hidden_layer():
    config = Config(hidden_sizes=(8, 6), layer_norm=True)
    network = make_q_network(config, num_actions=3, obs_shape=(4,))
    obs = jax.random.normal(jax.random.key(3), (5, 4)) * 10.0
    params = network.init(jax.random.key(4), obs)
    # Scales and offsets away from their initial 1 and 0, so that both are checked.
    params = {name: {k: v + (0.3 if k in ("scale", "offset") else 0.0) for k, v in p.items()}
              for name, p in params.items()}
    x = np.asarray(obs, np.float64)
    for i in range(2):
        layer, norm = params[f"linear_{i}"], params[f"layer_norm_{i}"]
        x = x @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
        x = np.maximum(x * np.asarray(norm["scale"]) + np.asarray(norm["offset"]), 0.0)
    expected = x @ np.asarray(params["linear_2"]["w"]) + np.asarray(params["linear_2"]["b"])
    np.testing.assert_allclose(network.apply(params, obs), expected, rtol=1e-4, atol=1e-5)
    # The convolution's features are normalised too.
    cnn = make_q_network(Config(hidden_sizes=(8,), layer_norm=True, network="cnn"),
                         num_actions=3, obs_shape=(5, 5, 2))
    assert "conv_layer_norm" in cnn.init(jax.random.key(0), jnp.zeros((5, 5, 2)))
