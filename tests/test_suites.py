"""The research suites through their adapters (purejaxdqn/suites.py): each one's episodes
end as that suite says (a time limit truncates and bootstraps, a termination does not),
the replay stores the true last observation, a vmapped seed is the seed alone, and bad
names are refused in one line. Without a suite installed its tests skip, naming the pip
command; where PUREJAXDQN_REQUIRE_SUITES is set (CI) they fail instead."""

import re
import sys
from pathlib import Path

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxdqn import Config, make_train
from purejaxdqn.envs import resolve_env
from purejaxdqn.policies import greedy_policy, uniform_policy
from purejaxdqn.suites import Adapter, adapt
from purejaxdqn.acting import act
from purejaxdqn.dqn import init_state
from purejaxdqn.train import make_parts
from tests.helpers import need, whole_and_resumed

NAMES = {"craftax": "Craftax-Classic-Symbolic-v1", "navix": "Navix-Empty-5x5-v0",
         "jumanji": "Maze-v0", "xminigrid": "MiniGrid-Empty-5x5", "octax": "brix"}


# Craftax's reset takes seconds to compile: in the slow tier.
@pytest.mark.parametrize("suite", [*(suite for suite in NAMES if suite != "craftax"),
                                   pytest.param("craftax", marks=pytest.mark.slow)])
def test_by_name_each_suite_is_a_gymnax_environment(suite):
    need(suite)
    env, env_params, num_actions = resolve_env(f"{suite}:{NAMES[suite]}")
    assert isinstance(env, Adapter) and num_actions >= 3
    assert env_params.max_steps_in_episode > 0
    obs, _ = jax.jit(env.reset)(jax.random.key(0), env_params)  # (eager: a program an op)
    space = env.observation_space(env_params)
    assert obs.shape == space.shape and obs.dtype == space.dtype
    # Grids keep their small integer dtype (the replay stores them so), Octax's frames
    # their bools.
    assert obs.dtype == {"navix": jnp.uint8, "xminigrid": jnp.uint8,
                         "octax": jnp.bool_}.get(suite, jnp.float32)


# Per suite: the raw environment with a short time limit, and a scenario: per step, the
# action and a change to the environment's state before it (or None); the steps at which
# an episode ends, by termination ("T") or truncation ("t").

def _navix():
    navix = need("navix")
    forward, right = 2, 1  # Empty-5x5: from (1, 1) facing east to the goal at (3, 3)
    actions = [forward, forward, right, forward, forward] + [right] * 6
    return navix.make("Navix-Empty-5x5-v0", max_steps=6), None, actions, {4: "T", 10: "t"}


def _xminigrid():
    xminigrid = need("xminigrid")
    env, params = xminigrid.make("MiniGrid-Empty-5x5")
    forward, right = 0, 1
    actions = [forward, forward, right, forward, forward] + [right] * 6
    return env, params.replace(max_steps=6), actions, {4: "T", 10: "t"}


def _jumanji():
    jumanji = need("jumanji")
    env = jumanji.make("Snake-v1", time_limit=13)
    # The circle depends on where the snake starts. (Its action mask keeps a snake out of
    # walls and its body, so it cannot die: Knapsack's terminations are tested below.)
    return env, None, None, None


def _craftax():
    craftax_env = need("craftax")
    env = craftax_env.make_craftax_env_from_name("Craftax-Classic-Symbolic-v1", auto_reset=False)
    noop = 0
    return env, env.default_params.replace(max_timesteps=4), [noop] * 6, {3: "t", 5: "T"}


def _octax():
    octax = need("octax")
    env = octax.create_environment("brix", max_num_steps_per_episodes=6)[0]
    noop = env.num_actions - 1
    # A life lost (V14 from 5 to 4) before step 2 ends the game there; the next episode is
    # truncated after its 6th step.
    return env, None, [noop] * 10, {2: "T", 8: "t"}


SNAKE_UP, SNAKE_RIGHT, SNAKE_DOWN, SNAKE_LEFT = range(4)  # jumanji's Snake


def _snake_circle(head) -> list[int]:
    """13 steps (the time limit) around a 2x2 square, away from the walls."""
    vertical = SNAKE_DOWN if head.row < 6 else SNAKE_UP
    horizontal = SNAKE_RIGHT if head.col < 6 else SNAKE_LEFT
    back = {SNAKE_DOWN: SNAKE_UP, SNAKE_UP: SNAKE_DOWN, SNAKE_RIGHT: SNAKE_LEFT,
            SNAKE_LEFT: SNAKE_RIGHT}
    return ([vertical, horizontal, back[vertical], back[horizontal]] * 4)[:13]


def _raw_step(suite, env, params, state, action, key):
    """The raw suite's own step from `state`: its observation, as the adapter presents it.
    `key` is the one the loop's `act` gives the environment's step."""
    if suite == "navix":
        return env.step(state, action).observation
    if suite == "xminigrid":
        return env.step(params, state, action).observation
    if suite == "octax":
        return jnp.transpose(env.step(state, action)[1], (2, 1, 0))
    if suite == "jumanji":
        obs = env.step(state, action)[1].observation
        return jnp.concatenate([obs.grid.ravel(), jnp.float32(obs.step_count)[None],
                                obs.action_mask.astype(jnp.float32)])
    step_key = jax.random.split(jax.random.split(key)[1])[0]  # act's, then the adapter's
    return env.step(step_key, state, action, params)[0]


def _prefer(params, action: int, num_actions: int):
    """The network's parameters zeroed, and the output bias set so that `action` has the
    highest Q-value: with epsilon 0 the loop's `act` takes `action`."""
    def leaf(path, x):
        is_out = x.shape == (num_actions,) and jax.tree_util.keystr(path).endswith("['b']")
        return jax.nn.one_hot(action, num_actions) if is_out else jnp.zeros_like(x)

    return jax.tree_util.tree_map_with_path(leaf, params)


# Craftax's and XLand's compile the longest: in the slow tier.
@pytest.mark.parametrize("suite", ["navix", "jumanji", "octax", *(
    pytest.param(suite, marks=pytest.mark.slow) for suite in ("xminigrid", "craftax"))])
def test_time_limits_bootstrap_and_terminations_do_not(suite):
    """The loop's `act` steps the adapted environment with chosen actions; the stored
    transitions are checked against the raw suite stepped by hand from the same states:
    each step's next observation is the suite's own (at an episode's end, the true last
    one, not the reset's), the episode ends where the scenario says, and only a
    termination is stored terminal (a truncation bootstraps)."""
    raw, raw_params, actions, ends = {"navix": _navix, "xminigrid": _xminigrid,
                                      "jumanji": _jumanji, "craftax": _craftax,
                                      "octax": _octax}[suite]()
    config = Config(num_frames=64, batch_size=4, buffer_size=32, warmup_steps=8,
                    eval_every=0, hidden_sizes=(32,), eps_start=0.0, eps_end=0.0)
    parts = make_parts(config, raw, raw_params)
    hparams = config.hyperparams()
    num_actions = parts.env.action_space(parts.env_params).n
    # Weak types dropped (Craftax's reset leaves one), so that `step` compiles once.
    state = jax.jit(lambda key: jax.tree.map(
        lambda x: x if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        else jax.lax.convert_element_type(x, x.dtype), init_state(parts, key, hparams)))(
        jax.random.key(0))
    if suite == "jumanji":  # circle to the time limit
        actions, ends = _snake_circle(state.env_state.head_position), {12: "t"}
    step = jax.jit(lambda s, k: act(parts, s, k, hparams))
    # Jitted: Craftax's eager step takes seconds per call.
    raw_step = jax.jit(lambda *args: _raw_step(suite, raw, parts.env_params.inner, *args))
    keys = jax.random.split(jax.random.key(1), 32)
    i = 0
    while i < len(actions):
        action, key = actions[i], keys[i]
        if suite == "craftax" and ends.get(i) == "T":  # dies on this step
            state = state._replace(env_state=state.env_state.replace(
                player_health=jnp.zeros_like(state.env_state.player_health)))
        if suite == "octax" and ends.get(i) == "T":  # a life lost: Brix's game ends
            state = state._replace(env_state=state.env_state.replace(
                V=state.env_state.V.at[:, 14].set(4)))
        state = state._replace(online_params=_prefer(state.online_params, action, num_actions))
        before = jax.tree.map(lambda x: x[0], state.env_state)
        obs = np.asarray(state.obs[0])
        state, (stored, done, _) = step(state, key)
        own = np.asarray(raw_step(before, action, key))
        assert int(stored.action[0]) == action, i
        # (As the replay stores them: Octax's frames as bits.)
        np.testing.assert_array_equal(parts.decode(stored.obs[0]), obs)
        np.testing.assert_array_equal(parts.decode(stored.next_obs[0]), own, err_msg=f"step {i}")
        assert bool(done[0]) == (i in ends), i
        assert bool(stored.terminal[0]) == (ends.get(i) == "T"), i
        if i in ends:  # a new episode: the reset's observation, not the last one
            assert not np.array_equal(state.obs[0], own), i
        i += 1
    assert sorted(ends.values()) == (["t"] if suite == "jumanji" else ["T", "t"])


def test_a_jumanji_termination_does_not_bootstrap():
    """Knapsack ends (discount 0) when no item fits: every end is a termination, stored
    terminal, with the suite's own last observation (mask included) as next_obs."""
    jumanji = need("jumanji")
    raw = jumanji.make("Knapsack-v1")
    config = Config(num_frames=64, batch_size=4, buffer_size=32, warmup_steps=8,
                    eval_every=0, hidden_sizes=(16,), eps_start=0.0, eps_end=0.0)
    parts = make_parts(config, raw)
    hparams = config.hyperparams()
    state = jax.jit(lambda key: init_state(parts, key, hparams))(jax.random.key(0))
    step = jax.jit(lambda s, k: act(parts, s, k, hparams))
    raw_step = jax.jit(lambda s, a: raw.step(s, a)[1].observation)  # eager, 60 cost seconds
    ends = 0
    for key in jax.random.split(jax.random.key(1), 60):  # greedy: the first legal item
        before = jax.tree.map(lambda x: x[0], state.env_state)
        state, (stored, done, _) = step(state, key)
        own = raw_step(before, stored.action[0])
        own = jnp.concatenate([jnp.ravel(leaf).astype(jnp.float32) for leaf in (
            own.weights, own.values, own.packed_items, own.action_mask)])
        np.testing.assert_array_equal(stored.next_obs[0], own)
        assert bool(stored.terminal[0]) == bool(done[0])
        ends += int(done[0])
    assert ends >= 2


def small_config(suite: str, **overrides) -> Config:
    return Config(env_name=f"{suite}:{NAMES[suite]}", num_frames=256, batch_size=16,
                  buffer_size=256, warmup_steps=64, eval_every=128, eval_episodes=1,
                  final_eval_episodes=1, hidden_sizes=(16,), num_envs=2, train_every=4,
                  **overrides)


def test_a_grid_is_stored_as_uint8_for_the_cnn():
    need("xminigrid")
    config = small_config("xminigrid", network="cnn", conv_channels=4)
    parts, hparams = make_parts(config), config.hyperparams()
    state = jax.eval_shape(lambda key: init_state(parts, key, hparams), jax.random.key(0))
    stored = state.buffer_state.experience
    assert stored.obs.dtype == jnp.uint8 and stored.obs.shape[-3:] == (7, 7, 2)


def test_octax_frames_are_stored_as_their_bits():
    """Octax's boolean frames go into the replay as packed bits (1,024 bytes for 32x64x4),
    and come out as the frames Octax drew, stepped by hand."""
    octax = need("octax")
    config = small_config("octax", network="cnn_strided")
    parts, hparams = make_parts(config), config.hyperparams()
    state = jax.eval_shape(lambda key: init_state(parts, key, hparams), jax.random.key(0))
    stored = state.buffer_state.experience
    assert stored.obs.dtype == jnp.uint8 and stored.obs.shape[-1] == 32 * 64 * 4 // 8
    raw = octax.create_environment("brix")[0]
    raw_state, frames, _ = raw.reset(jax.random.key(0))
    for action in (0, 1, 0, 0, 2):
        raw_state, frames = jax.jit(raw.step)(raw_state, action)[:2]
    assert frames.dtype == jnp.bool_ and int(frames.sum()) > 0
    obs = jnp.transpose(frames, (2, 1, 0))  # rows down the screen, frames as channels
    packed = parts.encode(obs)
    assert packed.dtype == jnp.uint8 and packed.shape == (1024,)
    np.testing.assert_array_equal(np.unpackbits(np.asarray(packed)),
                                  np.asarray(obs).reshape(-1))
    np.testing.assert_array_equal(parts.decode(packed), obs)


def test_params_handed_over_are_kept_whole():
    """`adapt` keeps an adapter's params as given, their evaluation bound too."""
    navix = need("navix")
    _, default = adapt(navix.make("Navix-Empty-5x5-v0"))
    _, kept = adapt(navix.make("Navix-Empty-5x5-v0"),
                    default.replace(max_steps_in_episode=7))
    assert default.max_steps_in_episode != 7 and kept.max_steps_in_episode == 7


@pytest.mark.parametrize("epsilon", [1.0, 0.0])
def test_no_illegal_action_is_taken(epsilon):
    """Jumanji's Maze masks the moves into walls: random (epsilon 1) and greedy (epsilon 0)
    acting, and greedy evaluation, take legal actions only; its observation ends with the
    mask, which the replay stores with the next observation."""
    need("jumanji")
    config = Config(env_name="jumanji:Maze-v0", num_envs=8, train_every=8, batch_size=4,
                    buffer_size=64, warmup_steps=8, eval_every=0, hidden_sizes=(16,),
                    eps_start=epsilon, eps_end=epsilon)
    parts = make_parts(config)
    hparams = config.hyperparams()
    state = jax.jit(lambda key: init_state(parts, key, hparams))(jax.random.key(0))
    legal_of = jax.jit(parts.env.legal_actions)  # (jitted here: op by op, a program each)
    # The hyperparameters traced: both epsilons are one program (the second from the
    # session's compilation cache).
    steps = jax.jit(lambda s, keys, h: jax.lax.scan(lambda s, k: act(parts, s, k, h), s, keys))
    state, (stored, done, _) = steps(state, jax.random.split(jax.random.key(1), 110), hparams)
    legal = np.asarray(legal_of(stored.obs))
    taken = np.take_along_axis(legal, np.asarray(stored.action)[..., None], axis=-1)
    assert taken.all() and not legal.all()  # the mask bites, and is obeyed
    assert np.asarray(legal_of(stored.next_obs)).any(axis=-1).all()
    assert int(jnp.sum(done)) >= 8  # past the time limit (100 steps): every maze ended
    greedy = greedy_policy(parts.network, state.online_params, parts.env)
    chosen = np.asarray(jax.jit(lambda obs: greedy.act(None, obs, ())[0])(stored.obs))
    assert np.take_along_axis(legal, chosen[..., None], axis=-1).all()
    # The random policy that sets the floor in the preset tables draws legal actions too.
    uniform = jax.jit(jax.vmap(lambda key, obs: uniform_policy(parts.env, parts.env_params).act(
        key, obs, ())[0]))
    drawn = np.asarray(uniform(jax.random.split(jax.random.key(2), legal.shape[0]), stored.obs))
    assert np.take_along_axis(legal, drawn[..., None], axis=-1).all()


@pytest.mark.slow
def test_the_docs_examples_run_as_written():
    """docs/suites.md's Python examples, each run as a user would paste it, but for 2,000
    frames of its 10,000 (what runs is the API, not how well it learns)."""
    need("navix"), need("xminigrid"), need("octax")
    text = (Path(__file__).parents[1] / "docs" / "suites.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 3 and all("num_frames=10_000" in block for block in blocks)
    for block in (block.replace("num_frames=10_000", "num_frames=2_000") for block in blocks):
        exec(compile(block, "docs/suites.md", "exec"), {"__name__": "__docs__"})


def grid_torso(obs):
    """A torso of one's own for Navix's grids: a 3x3 convolution."""
    return jax.nn.relu(hk.Conv2D(4, kernel_shape=3, name="grid_conv")(obs))


@pytest.mark.slow
def test_a_suite_run_with_its_own_torso_resumes_bitwise(tmp_path):
    """Navix by object (its egocentric view, Navix's `symbolic_first_person`: the 7x7 grid
    ahead of the agent) with a torso of one's own, 3 seeds in checkpointed segments: stopped
    after its first segment and resumed, it ends as the run that was never stopped. And,
    once for the suites (each loop's own check is in tests/test_train.py and
    tests/test_pqn.py), seed 1 trained alone is seed 1 beside the others: the adapters'
    `step_batch` resets only the environments whose episodes ended."""
    navix = need("navix")
    env = navix.make("Navix-Empty-5x5-v0", max_steps=20,
                     observation_fn=navix.observations.symbolic_first_person)
    config = Config(num_frames=1200, batch_size=16, buffer_size=600, warmup_steps=100,
                    eval_every=400, eval_episodes=2, final_eval_episodes=2,
                    hidden_sizes=(16,), eps_decay_frames=600)
    whole, resumed = whole_and_resumed(config, tmp_path, num_seeds=3, segment_frames=400,
                                       env=env, network=grid_torso)
    assert whole.params["grid_conv"]["w"].shape == (3, 3, 3, 3, 4)
    assert whole.params["mlp/~/linear_0"]["w"].shape == (3, 7 * 7 * 4, 16)  # the 7x7 view
    chex.assert_trees_all_equal(whole, resumed)
    assert int(np.sum(whole.metrics["train_episodes"])) > 0
    alone = jax.jit(make_train(config, env=env, network=grid_torso))(
        jax.random.split(jax.random.key(0), 3)[1])
    # (Bit for bit where the seeds run one after another, as `train_seeds` runs them on a
    # CPU; a vmapped batch may order a float sum differently.)
    for together, single in zip(jax.tree.leaves(whole), jax.tree.leaves(alone)):
        np.testing.assert_allclose(together[1], single, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(whole.metrics["train_episodes"][1],
                                  alone.metrics["train_episodes"])


@pytest.mark.slow
def test_an_octax_game_by_object_resumes_bitwise_and_vmapped_is_alone(tmp_path):
    """Brix by object (Octax's gymnax wrapper, episodes cut at 40 steps), with the strided
    torso: 2 seeds stopped after their first segment and resumed end as the run never
    stopped; vmapped, seed 1 is seed 1 trained alone; `render` plays a greedy episode."""
    octax = need("octax")
    from octax.wrappers import OctaxGymnaxWrapper

    env = OctaxGymnaxWrapper(octax.create_environment("brix", max_num_steps_per_episodes=40)[0])
    config = Config(network="cnn_strided", num_frames=512, batch_size=16, buffer_size=256,
                    warmup_steps=64, eval_every=256, eval_episodes=1, final_eval_episodes=1,
                    hidden_sizes=(16,), num_envs=2, train_every=4)
    whole, resumed = whole_and_resumed(config, tmp_path, num_seeds=2, segment_frames=256,
                                       env=env)
    chex.assert_trees_all_equal(whole, resumed)
    assert whole.params["conv_0"]["w"].shape == (2, 4, 4, 4, 32)
    assert int(np.sum(whole.metrics["train_episodes"])) >= 2 * 512 // 40
    # The run above trained each seed alone on a device of its own (and in segments):
    # vmapped, seed 1 is that seed.
    keys = jax.random.split(jax.random.key(0), 2)
    together = jax.jit(jax.vmap(make_train(config, env=env)))(keys)
    for both, single in zip(jax.tree.leaves(together), jax.tree.leaves(whole)):
        np.testing.assert_allclose(both[1], single[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(together.metrics["train_episodes"][1],
                                  whole.metrics["train_episodes"][1])
    # `render`'s greedy episode, whose states hold the emulator's random key.
    from purejaxdqn.render import greedy_episode

    parts = make_parts(config, env)
    _, frames, rewards = greedy_episode(parts.env, parts.env_params, parts.network,
                                        jax.tree.map(lambda x: x[0], whole.params),
                                        jax.random.key(0))
    assert frames.shape[1:] == (32, 64, 4) and 1 <= len(rewards) <= 40


def test_unknown_suites_and_names_are_one_line():
    with pytest.raises(ValueError, match="unknown suite 'gym'; choose from craftax, navix"):
        resolve_env("gym:CartPole-v1")
    need("navix")
    with pytest.raises(ValueError, match="did you mean Navix-Empty-5x5-v0") as error:
        resolve_env("navix:Navix-Empty-5x5")
    assert "\n" not in str(error.value)
    need("octax")
    with pytest.raises(ValueError, match="octax has no environment 'brik'; did you mean brix"):
        resolve_env("octax:brik")


@pytest.mark.parametrize("suite", ["xminigrid", "octax"])
def test_a_suite_not_installed_names_its_extra(monkeypatch, suite):
    monkeypatch.setitem(sys.modules, suite, None)  # import SUITE raises
    monkeypatch.delitem(sys.modules, "octax.environments", raising=False)
    with pytest.raises(ValueError, match=rf'the {suite} suite is not installed .*pip '
                                         rf'install "purejaxdqn\[{suite}\]"'):
        resolve_env(f"{suite}:{NAMES[suite]}")


def test_xland_rulesets_and_multi_discrete_actions_are_refused():
    need("xminigrid")
    with pytest.raises(ValueError, match="rulesets"):
        resolve_env("xminigrid:XLand-MiniGrid-R1-9x9")
    need("jumanji")
    with pytest.raises(ValueError, match="DQN needs one discrete action; jumanji's "):
        resolve_env("jumanji:RobotWarehouse-v0")
