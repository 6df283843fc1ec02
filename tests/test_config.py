"""Bad configuration is refused with a message naming the field, before compiling."""

import dataclasses

import jax
import pytest

from purejaxdqn import Config, make_train, train_seeds
from purejaxdqn.config import PRESETS
from purejaxdqn.envs import resolve_env
from tests.helpers import ContinuousProbe, need


@pytest.mark.parametrize("overrides, message", [
    ({"num_frames": -5}, "Config.num_frames must be an integer > 0"),
    ({"num_frames": 0}, "Config.num_frames must be an integer > 0"),
    ({"num_frames": 1000.0}, "Config.num_frames must be an integer > 0"),
    ({"batch_size": 0}, "Config.batch_size must be an integer > 0"),
    ({"buffer_size": 100}, "Config.batch_size must be <= buffer_size (100)"),
    ({"train_every": 0}, "Config.train_every must be an integer > 0"),
    ({"train_every": 3}, "Config.num_frames must be a multiple of train_every (3)"),
    ({"warmup_steps": -1}, "Config.warmup_steps must be an integer >= 0"),
    ({"warmup_steps": 40_000}, "Config.warmup_steps must be < num_frames (40000)"),
    ({"eval_every": 3_000}, "Config.eval_every must be 0 or a divisor of num_frames"),
    ({"eval_every": 2_002}, "Config.eval_every must be 0 or a multiple of train_every"),
    ({"eval_every": -2_000}, "Config.eval_every must be an integer >= 0"),
    ({"eval_episodes": 0}, "Config.eval_episodes must be an integer > 0"),
    ({"final_eval_episodes": -1}, "Config.final_eval_episodes must be an integer > 0"),
    ({"gamma": 1.5}, "Config.gamma must be in [0, 1]"),
    ({"gamma": -0.1}, "Config.gamma must be in [0, 1]"),
    ({"eps_start": 2.0}, "Config.eps_start must be in [0, 1]"),
    ({"eps_end": -0.5}, "Config.eps_end must be in [0, 1]"),
    ({"tau": 0.0}, "Config.tau must be in (0, 1]"),
    ({"learning_rate": 0.0}, "Config.learning_rate must be a finite number > 0"),
    ({"max_grad_norm": -1.0}, "Config.max_grad_norm must be a finite number > 0"),
    ({"eps_decay_frames": 0}, "Config.eps_decay_frames must be a finite number > 0"),
    ({"learning_rate": float("inf")}, "Config.learning_rate must be a finite number > 0"),
    ({"max_grad_norm": float("nan")}, "Config.max_grad_norm must be a finite number > 0"),
    ({"gamma": float("nan")}, "Config.gamma must be in [0, 1]"),
    ({"v_max": float("inf")}, "Config.v_max must be a finite number > v_min"),
    ({"v_min": -float("inf")}, "Config.v_min must be a finite number"),
    ({"noisy_sigma0": float("inf")}, "Config.noisy_sigma0 must be a finite number > 0"),
    ({"hidden_sizes": ()}, "Config.hidden_sizes must be a non-empty tuple"),
    ({"hidden_sizes": (64, 0)}, "Config.hidden_sizes must be a non-empty tuple"),
    ({"bootstrap_on_truncation": "yes"}, "Config.bootstrap_on_truncation must be a bool"),
    ({"double_q": 1}, "Config.double_q must be a bool"),
    ({"loss": "l1"}, "Config.loss must be one of ('huber', 'mse')"),
    ({"target_update_period": -1}, "Config.target_update_period must be an integer >= 0"),
    ({"network": "rnn"}, "Config.network must be one of ('mlp', 'cnn', 'cnn_pool', 'cnn_strided')"),
    ({"conv_channels": 0}, "Config.conv_channels must be an integer > 0"),
    ({"priority_exponent": 1.5}, "Config.priority_exponent must be in [0, 1]"),
    ({"importance_beta_start": -0.1}, "Config.importance_beta_start must be in [0, 1]"),
    ({"prioritized": "yes"}, "Config.prioritized must be a bool"),
    ({"n_step": 0}, "Config.n_step must be an integer > 0"),
    ({"n_step": 5, "warmup_steps": 2}, "Config.warmup_steps must be >= n_step - 1 (4)"),
    ({"num_atoms": 1}, "Config.num_atoms must be an integer >= 2"),
    ({"v_min": 5.0, "v_max": 5.0}, "Config.v_max must be a finite number > v_min (5.0)"),
    ({"distributional": "yes"}, "Config.distributional must be a bool"),
    ({"num_envs": 0}, "Config.num_envs must be an integer > 0"),
    ({"act_unroll": 0}, "Config.act_unroll must be an integer > 0"),
    ({"num_envs": 3}, "Config.num_envs must be a divisor or a multiple of train_every (4)"),
    ({"num_envs": 6, "train_every": 4}, "Config.num_envs must be a divisor or a multiple"),
    ({"num_envs": 8, "num_frames": 40_004}, "Config.num_frames must be a multiple of "
                                            "max(train_every, num_envs) (8)"),
    ({"num_envs": 16, "eval_every": 2_008}, "Config.eval_every must be 0 or a multiple of "
                                            "max(train_every, num_envs) (16)"),
    ({"num_envs": 4, "n_step": 3, "warmup_steps": 5},
     "Config.warmup_steps must be >= (n_step - 1) * num_envs (8)"),
    ({"num_envs": 4, "n_step": 3, "buffer_size": 8, "batch_size": 8},
     "Config.n_step must be <= buffer_size // num_envs (2)"),
    ({"distributional": True, "loss": "mse"}, "C51 minimises a cross-entropy"),
    ({"num_quantiles": 1}, "Config.num_quantiles must be an integer >= 2"),
    ({"quantile_regression": True, "distributional": True},
     "Config.quantile_regression must be False with distributional=True"),
    ({"quantile_regression": True, "loss": "mse"}, "QR-DQN minimises the quantile Huber loss"),
    ({"quantile_regression": 1}, "Config.quantile_regression must be a bool"),
    ({"munchausen": True, "double_q": True}, "Config.munchausen must be False with double_q=True"),
    ({"munchausen": True, "quantile_regression": True},
     "Config.munchausen must be False with quantile_regression=True"),
    ({"munchausen_alpha": 1.5}, "Config.munchausen_alpha must be in [0, 1]"),
    ({"entropy_temperature": 0.0}, "Config.entropy_temperature must be a finite number > 0"),
    ({"log_policy_clip": 0.5}, "Config.log_policy_clip must be a finite number < 0"),
    ({"algorithm": "ppo"}, "Config.algorithm must be one of ('dqn', 'pqn')"),
    ({"algorithm": "pqn", "buffer_size": 10_000},
     "Config.buffer_size must be left at its default (50000): it is DQN's, and algorithm is 'pqn'"),
    ({"algorithm": "pqn", "double_q": True}, "Config.double_q must be left at its default"),
    ({"q_lambda": 0.5}, "Config.q_lambda must be left at its default (0.95): it is PQN's, "
                        "and algorithm is 'dqn'"),
    ({"num_steps": 32}, "Config.num_steps must be left at its default (16): it is PQN's"),
    ({"algorithm": "pqn", "q_lambda": 1.5}, "Config.q_lambda must be in [0, 1]"),
    ({"algorithm": "pqn", "num_envs": 4, "num_steps": 6, "num_minibatches": 16},
     "Config.num_minibatches must be a divisor of num_envs * num_steps (24)"),
    ({"algorithm": "pqn", "num_envs": 4, "num_steps": 8, "num_frames": 1_000},
     "Config.num_frames must be a multiple of num_envs * num_steps (32): whole rollouts"),
    ({"algorithm": "pqn", "num_epochs": 0}, "Config.num_epochs must be an integer > 0"),
    ({"algorithm": "pqn", "reward_scale": 0.0}, "Config.reward_scale must be a finite number > 0"),
    ({"memory": "lstm", "munchausen": True, "n_step": 3},
     "Config.n_step must be 1 with munchausen=True and memory: Munchausen's soft target is"),
    ({"memory": "lstm", "munchausen": True, "n_step": 1, "value_rescaling": True},
     "Config.value_rescaling must be False with munchausen=True"),
    ({"memory": "gru", "noisy": True}, "Config.noisy must be False with memory='gru'"),
    ({"memory": "gru", "distributional": True, "value_rescaling": True},
     "Config.value_rescaling must be False with distributional=True"),
    ({"memory": "gru", "buffer_size": 400, "num_envs": 4, "warmup_steps": 400,
      "sequence_length": 120}, "Config.sequence_length must be <= buffer_size // num_envs (100)"),
    ({"memory": "gru", "burn_in": 20}, "Config.burn_in must be < sequence_length (20)"),
    ({"memory": "gru", "n_step": 17}, "Config.n_step must be <= sequence_length - burn_in (16)"),
    ({"memory": "gru", "num_envs": 64, "train_every": 64},
     "Config.warmup_steps must be >= sequence_length * num_envs (1280)"),
    ({"burn_in": 8}, "Config.burn_in must be left at its default (4) without memory: it is "
                     "the recurrent DQN's"),
    ({"algorithm": "pqn", "sequence_length": 8}, "Config.sequence_length must be left at its "
                                                  "default (20): it is DQN's"),
    ({"memory": "gru", "priority_eta": 1.5}, "Config.priority_eta must be in [0, 1]"),
    ({"algorithm": "pqn", "memory": "rnn"}, "Config.memory must be one of ('none', 'lstm', 'gru')"),
    ({"algorithm": "pqn", "memory": "gru", "num_envs": 4, "num_minibatches": 8},
     "Config.num_minibatches must be a divisor of num_envs (4) with memory"),
    ({"algorithm": "pqn", "memory_window": 4}, "Config.memory_window must be 0 without memory"),
    ({"algorithm": "pqn", "memory": "gru", "memory_size": 0},
     "Config.memory_size must be an integer > 0"),
    ({"env_params": [("memory_length",)]}, "Config.env_params must be (name, value) pairs"),
])
def test_bad_config_is_refused(overrides, message):
    with pytest.raises(ValueError) as error:
        Config(**overrides)
    assert message in str(error.value)


# What the tutorial's loop sets (../shared/reference/tutorial_dqn.py): its replay
# capacity, batch, warm-up, learning rhythm, evaluation, discount, soft update, optimiser,
# epsilon schedule, network and budget.
TUTORIAL = dict(env_name="CartPole-v1", num_frames=40_000, buffer_size=50_000, batch_size=128,
                warmup_steps=1_000, train_every=4, eval_every=2_000, eval_episodes=5,
                final_eval_episodes=10, gamma=0.99, tau=0.01, learning_rate=3e-4,
                max_grad_norm=10.0, eps_start=1.0, eps_end=0.05, eps_decay_frames=20_000,
                hidden_sizes=(128, 128), loss="huber")


def test_defaults_are_the_tutorials_plain_dqn():
    """The defaults are the tutorial's hyperparameters and its plain DQN: every variant
    switch off, one environment, one-step targets, the soft target update, and the
    `tutorial` preset is the defaults."""
    config = Config()
    assert {name: getattr(config, name) for name in TUTORIAL} == TUTORIAL
    switches = [f.name for f in dataclasses.fields(Config) if f.type in (bool, "bool")]
    assert "double_q" in switches and "noisy" in switches
    assert {name: getattr(config, name) for name in switches} == {
        name: name == "bootstrap_on_truncation" for name in switches}
    assert (config.algorithm, config.network, config.num_envs, config.n_step,
            config.target_update_period) == ("dqn", "mlp", 1, 1, 0)
    assert Config.preset("tutorial") == config


def test_config_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().gamma = 0.5


def test_unknown_environment_is_refused():
    with pytest.raises(ValueError, match="Config.env_name must be one of gymnax's registered"):
        make_train(Config(env_name="CartPole-v42"))


def test_continuous_actions_are_refused():
    with pytest.raises(ValueError, match="discrete action space; Pendulum-v1 has Box"):
        make_train(Config(env_name="Pendulum-v1"))
    with pytest.raises(ValueError, match="discrete action space"):
        make_train(Config(), env=ContinuousProbe())


def test_non_environment_is_refused():
    with pytest.raises(ValueError, match="env must be a gymnax Environment"):
        make_train(Config(), env="CartPole-v1")


@pytest.mark.parametrize("num_seeds", [0, -3, 2.5])
def test_bad_seed_count_is_refused(num_seeds):
    with pytest.raises(ValueError, match="num_seeds must be an integer > 0"):
        train_seeds(Config(), num_seeds)


def test_hyperparams_are_float32_scalars():
    hparams = Config(learning_rate=1e-3).hyperparams()
    assert all(x.dtype == jax.numpy.float32 and x.shape == () for x in hparams)
    assert float(hparams.learning_rate) == pytest.approx(1e-3)


def test_presets():
    preset = Config.preset("cartpole-40k")
    assert (preset.loss, preset.n_step, preset.learning_rate, preset.tau,
            preset.eps_decay_frames) == ("mse", 3, 4e-3, 0.05, 10_000)
    assert preset.num_frames == 40_000 and preset.gamma == 0.99  # the rest is the default
    assert Config.preset("tutorial") == Config()
    assert Config.preset("cartpole-40k", tau=0.1).tau == 0.1
    with pytest.raises(ValueError, match="unknown preset 'fast'; choose from"):
        Config.preset("fast")
    with pytest.raises(ValueError, match="Config.tau must be in"):
        Config.preset("cartpole-40k", tau=2.0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_names_a_usable_environment(name):
    config = Config.preset(name)
    suite, colon, _ = config.env_name.partition(":")
    if colon:
        need(suite)
    env, env_params, num_actions = resolve_env(config.env_name, overrides=config.env_params)
    assert num_actions >= 2
    image = len(env.observation_space(env_params).shape) == 3
    if not colon:  # MinAtar's presets use the convolution (a suite's grid may not)
        assert (config.network != "mlp") == image


def test_every_field_has_its_meaning_written_once_and_help_reads_it():
    from purejaxdqn.cli import build_parser
    from purejaxdqn.config import TRACED_FIELDS, field_docs

    docs = field_docs()
    assert set(docs) == {f.name for f in dataclasses.fields(Config)}
    assert all(len(doc) > 10 and "\n" not in doc for doc in docs.values())
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    helps = {a.dest: a.help for a in train._actions}
    for name, doc in docs.items():
        assert helps[name].startswith(doc.replace("%", "%%"))
        assert ("Traced: sweepable." in helps[name]) == (name in TRACED_FIELDS)
