"""Configuration: static structure (`Config`) and the traced hyperparameters it carries."""

import dataclasses
import math
from typing import Any, NamedTuple

# No JAX at import: the CLI reads this module to answer --help and argument errors at once.


class HyperParams(NamedTuple):
    """Hyperparameters that are traced values, so a sweep over them is a `vmap`: each a
    float32 array (a scalar, or with a leading axis to vmap over)."""

    learning_rate: Any
    gamma: Any
    tau: Any
    eps_start: Any
    eps_end: Any
    eps_decay_frames: Any
    max_grad_norm: Any
    priority_exponent: Any
    importance_beta_start: Any
    q_lambda: Any
    priority_eta: Any


TRACED_FIELDS = HyperParams._fields
LOSSES = ("huber", "mse")
NETWORKS = ("mlp", "cnn", "cnn_pool", "cnn_strided")
OCTAX_GAMES = ("ufo", "missile", "airplane")  # the Octax games with presets
MEMORIES = ("none", "lstm", "gru")
ALGORITHMS = ("dqn", "pqn")


@dataclasses.dataclass(frozen=True)
class Config:
    """A DQN (or PQN) run. Defaults are the reference tutorial's hyperparameters.

    Counts and sizes shape the compiled program (static); the fields named in
    `HyperParams` are passed into it as traced values (see `Config.hyperparams`).
    """

    algorithm: str = "dqn"
    """`dqn`: replay and a target network; `pqn`: Q(lambda) targets over each rollout of
    `num_envs` x `num_steps` frames, then `num_epochs` passes over it in
    `num_minibatches` minibatches, with no replay and no target network (`purejaxdqn.pqn`)."""
    num_frames: int = 40_000
    """Environment frames per seed, counting every one of its `num_envs` environments."""
    batch_size: int = 128
    """Transitions per learning step."""
    buffer_size: int = 50_000
    """Replay capacity in transitions; the oldest are overwritten."""
    warmup_steps: int = 1_000
    """Frames collected before the first learning step."""
    train_every: int = 4
    """Frames between learning steps."""
    num_envs: int = 1
    """Environments stepped side by side per seed, in one batched forward pass."""
    act_unroll: int = 1
    """Acting steps per iteration of a block's acting loop (`lax.scan`'s unroll): fewer
    loop iterations, which a GPU at few seeds pays for, for a longer compile; same
    results."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.01
    """Soft target update rate."""
    learning_rate: float = 3e-4
    """Adam's learning rate."""
    max_grad_norm: float = 10.0
    """Global-norm gradient clipping before Adam."""
    eps_start: float = 1.0
    """Exploration epsilon at frame 0."""
    eps_end: float = 0.05
    """Exploration epsilon after the decay."""
    eps_decay_frames: int = 20_000
    """Frames over which epsilon decays linearly."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden layer sizes of the MLP (on the command line: comma-separated, e.g. 128,128)."""
    eval_every: int = 2_000
    """Frames between greedy evaluations (0: only the final one)."""
    eval_episodes: int = 5
    """Episodes per periodic greedy evaluation."""
    final_eval_episodes: int = 10
    """Episodes in the final greedy evaluation."""
    env_name: str = "CartPole-v1"
    """The gymnax environment id, or SUITE:NAME for a research suite's environment
    (`craftax:Craftax-Classic-Symbolic-v1`, `navix:Navix-Empty-5x5-v0`, `jumanji:Snake-v1`,
    `xminigrid:MiniGrid-Empty-8x8`; each an extra: `pip install "purejaxdqn[navix]"`)."""
    env_params: tuple = ()
    """Fields of the environment's params set by name, over its defaults: (name, value)
    pairs, or a dict (on the command line: --env-param memory_length=30, repeated)."""
    bootstrap_on_truncation: bool = True
    """Bootstrap from the final observation at time limits (a truncation is not a terminal
    state)."""
    double_q: bool = False
    """Double Q-learning (`rlax.double_q_learning`): the online network selects the next
    action, the target network evaluates it."""
    dueling: bool = False
    """Dueling head: value + advantage - mean advantage."""
    loss: str = "huber"
    """TD loss: `huber` (delta 1) or `mse` (0.5 * td^2)."""
    target_update_period: int = 0
    """0: soft target update by `tau` every learning step; K: copy the online network every
    K learning steps."""
    network: str = "mlp"
    """`mlp`; `cnn`: a 3x3 convolution before the MLP, its features flattened (image
    observations); `cnn_pool`: those features max-pooled over the grid (translation
    invariant); `cnn_strided`: Nature-DQN's stack of three convolutions scaled to frames
    such as Octax's 32x64 (32 filters 4x4 stride 2, 64 4x4 stride 2, 64 3x3 stride 1:
    3,072 features where `cnn` makes 29,760), frames of 18x18 or more."""
    conv_channels: int = 16
    """Filters of the 3x3 convolution (`cnn`, `cnn_pool`; `cnn_strided`'s are fixed)."""
    memory: str = "none"
    """`none`: a feedforward network; `lstm` or `gru`: a recurrent core (`hk.LSTM`,
    `hk.GRU`) between the hidden layers and the Q head, its state reset at every episode's
    start, for tasks that one observation does not show whole: with `algorithm` "dqn", DQN
    over replayed sequences (R2D2, `purejaxdqn.r2d2`); with "pqn", PQN-RNN
    (`purejaxdqn.pqn_rnn`)."""
    memory_size: int = 128
    """Units of the recurrent core (`memory`)."""
    memory_window: int = 0
    """PQN with memory: steps of each environment's previous rollout prepended to the
    sequence each update learns from (PureJaxQL's memory window)."""
    sequence_length: int = 20
    """DQN with memory (R2D2): steps of each replayed sequence, `burn_in` included."""
    sequence_period: int = 10
    """DQN with memory: steps between the starts of the sequences replay can sample (each
    overlaps the next by `sequence_length - sequence_period`)."""
    burn_in: int = 4
    """DQN with memory: a sequence's first steps, which only move the memory on from the
    state stored at its start (both networks, no gradient, not in the loss)."""
    value_rescaling: bool = False
    """DQN with memory: learn h(Q), R2D2's h(x) = sign(x)(sqrt(|x| + 1) - 1) + 0.001x
    (`rlax.signed_hyperbolic`), bootstrapping through its inverse."""
    priority_eta: float = 0.9
    """DQN with memory and `prioritized`: a sequence's priority is eta * max + (1 - eta) *
    mean of its |TD errors| (R2D2's mixture)."""
    layer_norm: bool = False
    """Normalise each hidden layer (and the convolution's features) before its ReLU
    (`hk.LayerNorm`): what PQN, without a target network, relies on."""
    n_step: int = 1
    """n-step returns (1: one-step Q-learning); an episode's end inside the n steps is
    handled."""
    noisy: bool = False
    """Noisy networks explore instead of epsilon-greedy (epsilon is then 0); evaluation
    uses the mean weights."""
    noisy_sigma0: float = 0.5
    """Initial noise scale of the noisy layers."""
    prioritized: bool = False
    """Prioritised replay (flashbax's sum tree) with importance-sampling weights."""
    priority_exponent: float = 0.6
    """Prioritised replay's alpha: priority = (|TD error| + eps) ** alpha."""
    importance_beta_start: float = 0.4
    """Prioritised replay's beta at frame 0, annealed linearly to 1 over the run."""
    distributional: bool = False
    """C51: learn a categorical return distribution per action (rlax) instead of Q."""
    num_atoms: int = 51
    """C51: atoms of the distribution's fixed support."""
    v_min: float = -10.0
    """C51: lowest return of the support."""
    v_max: float = 10.0
    """C51: highest return of the support."""
    quantile_regression: bool = False
    """QR-DQN: learn `num_quantiles` quantiles of each action's return by quantile
    regression (`rlax.quantile_q_learning`, Huber kappa 1) instead of Q; the Q-values are
    their means."""
    num_quantiles: int = 32
    """QR-DQN: quantiles per action, at the midpoints (2i + 1) / (2 * num_quantiles)."""
    munchausen: bool = False
    """Munchausen DQN: a soft target (the next state's softmax policy at
    `entropy_temperature`) plus the scaled, clipped log-policy of the action taken; with
    `memory` (R2D2), one-step (`n_step` 1) inside each replayed sequence."""
    munchausen_alpha: float = 0.9
    """Munchausen DQN: the scale of the log-policy bonus."""
    entropy_temperature: float = 0.03
    """Munchausen DQN: the temperature of the softmax policy."""
    log_policy_clip: float = -1.0
    """Munchausen DQN: the lower clip of temperature * log-policy (the bonus's l0)."""
    num_steps: int = 16
    """PQN: steps of each environment per rollout (an update's `num_envs * num_steps`
    frames)."""
    num_epochs: int = 4
    """PQN: passes over each rollout."""
    num_minibatches: int = 4
    """PQN: minibatches per pass (they divide the rollout's frames)."""
    q_lambda: float = 0.95
    """PQN: the lambda of Peng's Q(lambda) targets (0: one-step Q-learning)."""
    lr_linear_decay: bool = False
    """PQN: the learning rate decays linearly to 0 over the run's gradient steps."""
    reward_scale: float = 1.0
    """PQN: rewards are multiplied by this in the targets (returns are reported as is)."""

    def __post_init__(self):
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if isinstance(self.env_params, dict):
            object.__setattr__(self, "env_params", tuple(sorted(self.env_params.items())))
        object.__setattr__(self, "env_params", tuple(map(tuple, self.env_params)))
        _validate(self)

    @classmethod
    def preset(cls, name: str, **overrides) -> "Config":
        """A named configuration (see `PRESETS`), with any field overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def hyperparams(self) -> HyperParams:
        """The traced hyperparameters of this config, as float32 scalars."""
        import jax.numpy as jnp

        return HyperParams(*(jnp.float32(getattr(self, f)) for f in TRACED_FIELDS))

    def without_memory(self) -> "Config":
        """The same run with a feedforward network: `memory` "none", and the fields only a
        recurrent agent reads at their defaults (what a memory preset is compared with)."""
        return dataclasses.replace(self, **{field: _DEFAULTS[field] for field in MEMORY_ONLY})

    @property
    def report_every(self) -> int:
        """Frames between metric reports: `eval_every`, or the whole run when it is 0."""
        return self.eval_every or self.num_frames

    @property
    def block_frames(self) -> int:
        """Frames between one write to the buffer and the next: `train_every` frames of
        acting (`train_every // num_envs` steps), or one step of `num_envs` environments
        followed by `num_envs // train_every` learning steps. PQN: one rollout."""
        if self.algorithm == "pqn":
            return self.num_envs * self.num_steps
        return max(self.train_every, self.num_envs)

    @property
    def num_reports(self) -> int:
        return self.num_frames // self.report_every


def field_docs() -> dict[str, str]:
    """Each `Config` field's docstring, as one line: the one place a field's meaning is
    written (the CLI's `--help` and the docs read it from there)."""
    import ast
    import inspect

    body = ast.parse(inspect.getsource(Config)).body[0].body
    return {field.target.id: " ".join(doc.value.value.split())
            for field, doc in zip(body, body[1:])
            if isinstance(field, ast.AnnAssign) and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)}


# Named configurations; docs/presets.md lists each with what it reaches, and docs/results.md
# and docs/methods.md say how each was found.
PRESETS = {
    "tutorial": {},
    # Found by the two `purejaxdqn sweep` runs in docs/results.md (seeds 0-7), checked on 64
    # fresh seeds.
    "cartpole-40k": dict(loss="mse", n_step=3, learning_rate=4e-3, tau=0.05,
                         eps_decay_frames=10_000),
    # The shortest time to solve many seeds: 20,000 frames, a 64-64 network learning every
    # 8 frames from batches of 128, no periodic evaluation; found by the sweeps in
    # benchmarks/results/cartpole-fast-search.txt, checked on five fresh sets of 64 seeds.
    "cartpole-fast": dict(loss="mse", n_step=3, learning_rate=1.5e-2, tau=0.1, gamma=0.995,
                          num_frames=20_000, eps_decay_frames=7_000, hidden_sizes=(64, 64),
                          batch_size=128, train_every=8, eval_every=0),
    # Configs that learn other environments, from small sweeps (seeds 0-7), checked over
    # 16 seeds against a random policy by benchmarks/environments.py. MinAtar: a budget
    # that 2 CPU cores train in minutes, far below the MinAtar paper's 5M frames.
    "acrobot-50k": dict(env_name="Acrobot-v1", num_frames=50_000, loss="mse",
                        learning_rate=1e-3, eval_every=0),
    "mountaincar-100k": dict(env_name="MountainCar-v0", num_frames=100_000, loss="mse",
                             learning_rate=1e-3, eps_decay_frames=50_000, eval_every=0),
    **{f"{game.lower()}-minatar-100k": dict(
        env_name=f"{game}-MinAtar", network="cnn", num_frames=100_000, batch_size=32,
        buffer_size=100_000, learning_rate=1e-3, eps_decay_frames=50_000, eval_every=0)
        | network
       for game, network in (
           ("Breakout", {}), ("Freeway", {}), ("SpaceInvaders", {}),
           # Asterix's player roams the whole grid: what is learned about an enemy beside
           # it at one cell must hold at every cell, which the pooled convolution gives
           # and the flattened one did not learn in 1M frames.
           ("Asterix", dict(network="cnn_pool", conv_channels=64)))},
    # Rainbow's six parts (C51 over CartPole's returns, double Q, dueling, prioritised
    # replay, 3-step returns, noisy networks) on the tutorial's budget and hyperparameters.
    "rainbow": dict(distributional=True, v_min=0.0, v_max=100.0, double_q=True, dueling=True,
                    prioritized=True, n_step=3, noisy=True),
    # PQN for the shortest time to solve many seeds on a CPU: 196 updates of 16 x 32
    # frames, a 64-64 LayerNorm network; from the sweeps in
    # benchmarks/results/pqn-preset-search.txt.
    "cartpole-pqn": dict(
        algorithm="pqn", num_frames=196 * 512, num_envs=16, num_steps=32, num_epochs=4,
        num_minibatches=8, hidden_sizes=(64, 64), layer_norm=True, learning_rate=3e-4,
        lr_linear_decay=True, reward_scale=0.1, loss="mse", eps_decay_frames=20_000,
        eval_every=0),
    # PQN on Breakout-MinAtar: PureJaxQL's pqn_minatar.yaml (its network: a 3x3
    # convolution and a dense 128, both LayerNormed; lambda 0.65) scaled to two CPU cores,
    # 586 updates of 16 x 32 frames; from the sweep in
    # benchmarks/results/pqn-breakout-preset-search.txt.
    "breakout-minatar-pqn": dict(
        env_name="Breakout-MinAtar", algorithm="pqn", network="cnn", num_frames=586 * 512,
        num_envs=16, num_steps=32, num_epochs=2, num_minibatches=4, hidden_sizes=(128,),
        layer_norm=True, learning_rate=1e-3, lr_linear_decay=True, q_lambda=0.65,
        loss="mse", eps_end=0.05, eps_decay_frames=30_000, eval_every=0),
    # PQN as PureJaxQL's config/alg/pqn_cartpole.yaml has it (its 244 updates of 32 x 64
    # frames; epsilon to 0.2 over 20% of them; RAdam, learning rate decaying to 0), for the
    # side-by-side in benchmarks/vs_purejaxql.py.
    "cartpole-pqn-purejaxql": dict(
        algorithm="pqn", num_frames=244 * 2048, num_envs=32, num_steps=64, num_epochs=4,
        num_minibatches=16, hidden_sizes=(256, 256), layer_norm=True, learning_rate=1e-4,
        lr_linear_decay=True, max_grad_norm=10.0, reward_scale=0.1, gamma=0.99, q_lambda=0.95,
        eps_start=1.0, eps_end=0.2, eps_decay_frames=99_942, loss="mse", eval_every=0),
    # PQN with memory on bsuite's MemoryChain (a context shown at the first step, asked
    # for `memory_length` steps later), at memory_length 30: PureJaxQL's
    # pqn_rnn_memory_chain.yaml (32 x 128 frames an update, a 4-step window, a GRU,
    # epsilon to 0.01 over 10% of the frames), its two 256-unit layers and GRU at one of
    # 64, for 48 updates, not 24 (benchmarks/results/memory-preset-search.txt).
    "memorychain-pqn-rnn": dict(
        algorithm="pqn", env_name="MemoryChain-bsuite", env_params={"memory_length": 30},
        memory="gru", memory_size=64, hidden_sizes=(64,), layer_norm=True, num_envs=32,
        num_steps=128, memory_window=4, num_minibatches=16, num_epochs=4, learning_rate=1e-3,
        eps_end=0.01, eps_decay_frames=19_660, num_frames=48 * 4096, loss="mse", eval_every=0),
    # R2D2 (DQN with memory) on bsuite's MemoryChain at memory_length 30: sequences of 64
    # steps every 16 (a 16-step burn-in from the stored state), 5-step double Q, 16
    # environments, one learning step of 32 sequences per acting step, 65,536 frames; from
    # benchmarks/results/memory-preset-search.txt.
    "memorychain-r2d2": dict(
        env_name="MemoryChain-bsuite", env_params={"memory_length": 30}, memory="gru",
        memory_size=64, hidden_sizes=(64,), num_envs=16, train_every=16, batch_size=32,
        buffer_size=16 * 1024, warmup_steps=16 * 64, num_frames=16 * 4096,
        sequence_length=64, sequence_period=16, burn_in=16, n_step=5, double_q=True,
        learning_rate=1e-3, eps_decay_frames=16 * 2048, target_update_period=250,
        eval_every=0),
    # PQN with memory on CartPole: PureJaxQL's pqn_rnn_cartpole.yaml (244 updates of 32 x
    # 64 frames, a 4-step window, 4 epochs of 16 minibatches, lr 1e-4 decaying, epsilon to
    # 0.2 over 20%, rewards x 0.1), its 256-unit layers and GRU at 64
    # (benchmarks/results/memory-preset-search.txt).
    "cartpole-pqn-rnn": dict(
        algorithm="pqn", memory="gru", memory_size=64, hidden_sizes=(64, 64), layer_norm=True,
        num_envs=32, num_steps=64, memory_window=4, num_minibatches=16, num_epochs=4,
        learning_rate=1e-4, lr_linear_decay=True, reward_scale=0.1, eps_end=0.2,
        eps_decay_frames=99_942, num_frames=244 * 2048, loss="mse", eval_every=0),
    # PQN with memory on XLand-MiniGrid's MemoryS8, an egocentric 7x7 view: an object
    # seen in the first room, its match to be chosen at the corridor's end. The
    # memorychain-pqn-rnn network, gamma 0.95, 400 updates of 32 x 64 frames; from three
    # settings x 4 seeds (benchmarks/results/memory-preset-search.txt).
    "xminigrid-memory-s8-pqn-rnn": dict(
        algorithm="pqn", env_name="xminigrid:MiniGrid-MemoryS8", memory="gru", memory_size=64,
        hidden_sizes=(64,), layer_norm=True, num_envs=32, num_steps=64, memory_window=4,
        num_minibatches=16, num_epochs=4, learning_rate=1e-3, eps_end=0.05,
        eps_decay_frames=200_000, num_frames=400 * 2048, gamma=0.95, loss="mse", eval_every=0),
    # The environment suites (docs/suites.md), from one sweep each over 16 seeds
    # (benchmarks/results/suite-preset-search.txt), checked on 16 fresh seeds by
    # benchmarks/environments.py --suites. A sparse reward of 1 at the goal: gamma 0.99
    # leaves turning and stepping forward within 1% of each other, and the greedy policy
    # loops; 0.9 sets them apart.
    "navix-empty-8x8": dict(env_name="navix:Navix-Empty-8x8-v0", num_frames=50_000,
                            gamma=0.9, eval_every=0),
    "xminigrid-empty-8x8": dict(env_name="xminigrid:MiniGrid-Empty-8x8", num_frames=50_000,
                                gamma=0.9, learning_rate=1e-3, eval_every=0),
    # Jumanji's Game2048 (action masks: only moves that change the board): reward is the
    # merged tiles' values; from two sweeps over 8 seeds.
    "jumanji-game2048": dict(env_name="jumanji:Game2048-v1", num_frames=400_000,
                             learning_rate=1e-3, eps_end=0.01, eps_decay_frames=200_000,
                             eval_every=0),
    # Craftax-Classic at what two CPU cores train in about 15 minutes for 16 seeds: PQN
    # (DQN at 100k frames stayed below the random policy's 1.5), exploring from epsilon
    # 0.1 as PureJaxQL's Craftax config does. An early-learning figure, not a solved task.
    "craftax-classic-pqn": dict(
        env_name="craftax:Craftax-Classic-Symbolic-v1", algorithm="pqn", num_frames=307_200,
        num_envs=16, num_steps=16, num_epochs=2, num_minibatches=4, hidden_sizes=(256, 256),
        layer_norm=True, learning_rate=1e-4, lr_linear_decay=True, q_lambda=0.9,
        eps_start=0.1, eps_decay_frames=100_000, eval_every=0),
    # Octax's CHIP-8 games: PQN (Octax's own baseline) with the strided torso, 100 updates
    # of 16 x 32 frames (51,200 frames a seed, about 12 minutes for 16 seeds on two CPU
    # cores): early learning, 1% of the 5M steps of Octax's published curves; the learning
    # rate chosen by one sweep per game (benchmarks/results/octax-preset-search.txt), each
    # checked above a random policy on 16 fresh seeds (octax-presets.json).
    **{f"octax-{game}-pqn": dict(
        env_name=f"octax:{game}", algorithm="pqn", network="cnn_strided",
        num_frames=100 * 512, num_envs=16, num_steps=32, num_epochs=2, num_minibatches=4,
        hidden_sizes=(256,), layer_norm=True, learning_rate=1e-3, lr_linear_decay=True,
        q_lambda=0.65, loss="mse", eps_end=0.05, eps_decay_frames=12_800, eval_every=0)
       for game in OCTAX_GAMES},
}


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _require(ok: bool, field: str, allowed: str, value) -> None:
    if not ok:
        raise ValueError(f"Config.{field} must be {allowed}, got {value!r}")


# Fields that only one algorithm reads: set away from their defaults for the other, they
# are refused (a replay size given to PQN would otherwise be silently ignored).
DQN_ONLY = ("batch_size", "buffer_size", "warmup_steps", "train_every", "tau",
            "target_update_period", "double_q", "n_step", "noisy", "prioritized",
            "priority_exponent", "importance_beta_start", "distributional", "quantile_regression",
            "munchausen", "sequence_length", "sequence_period", "burn_in", "value_rescaling",
            "priority_eta")
PQN_ONLY = ("num_steps", "num_epochs", "num_minibatches", "q_lambda", "lr_linear_decay",
            "reward_scale", "memory_window")
# DQN's fields that only its recurrent version (R2D2, `memory` set) reads.
SEQUENCE_ONLY = ("sequence_length", "sequence_period", "burn_in", "value_rescaling",
                 "priority_eta")
MEMORY_ONLY = ("memory", "memory_size", "memory_window", *SEQUENCE_ONLY)
# DQN's variant that its recurrent version does not combine with: it acts
# epsilon-greedily.
NOT_WITH_MEMORY = ("noisy",)


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)}


def _validate(c: Config) -> None:
    _require(c.algorithm in ALGORITHMS, "algorithm", f"one of {ALGORITHMS}", c.algorithm)
    _require(c.memory in MEMORIES, "memory", f"one of {MEMORIES}", c.memory)
    other_fields = DQN_ONLY if c.algorithm == "pqn" else PQN_ONLY
    for field in other_fields:
        _require(getattr(c, field) == _DEFAULTS[field], field,
                 f"left at its default ({_DEFAULTS[field]!r}): it is "
                 f"{'DQN' if c.algorithm == 'pqn' else 'PQN'}'s, and algorithm is "
                 f"{c.algorithm!r}", getattr(c, field))
    for field in ("num_frames", "batch_size", "buffer_size", "train_every", "num_envs",
                  "act_unroll", "eval_episodes", "final_eval_episodes", "n_step", "conv_channels",
                  "num_steps", "num_epochs", "num_minibatches", "memory_size", "sequence_length",
                  "sequence_period"):
        value = getattr(c, field)
        _require(_is_int(value) and value > 0, field, "an integer > 0", value)
    for field in ("warmup_steps", "eval_every", "memory_window", "burn_in"):
        value = getattr(c, field)
        _require(_is_int(value) and value >= 0, field, "an integer >= 0", value)
    if c.algorithm == "pqn":
        rollout = c.num_envs * c.num_steps
        _require(rollout % c.num_minibatches == 0, "num_minibatches",
                 f"a divisor of num_envs * num_steps ({rollout}), the frames of a rollout",
                 c.num_minibatches)
        block = f"num_envs * num_steps ({rollout}): whole rollouts"
        _require(c.memory == "none" or c.num_envs % c.num_minibatches == 0, "num_minibatches",
                 f"a divisor of num_envs ({c.num_envs}) with memory: a minibatch is whole "
                 f"environments' sequences", c.num_minibatches)
        _require(c.memory != "none" or c.memory_window == 0, "memory_window",
                 "0 without memory", c.memory_window)
    else:
        _validate_dqn(c)
        block = (f"train_every ({c.train_every})" if c.num_envs == 1 else
                 f"max(train_every, num_envs) ({c.block_frames}): whole acting and learning "
                 f"steps")
    _require(c.num_frames % c.block_frames == 0, "num_frames", f"a multiple of {block}",
             c.num_frames)
    _require(c.eval_every % c.block_frames == 0, "eval_every", f"0 or a multiple of {block}",
             c.eval_every)
    _require(c.eval_every == 0 or c.num_frames % c.eval_every == 0, "eval_every",
             f"0 or a divisor of num_frames ({c.num_frames})", c.eval_every)
    for field in ("gamma", "eps_start", "eps_end", "q_lambda"):
        value = getattr(c, field)
        _require(_is_number(value) and 0.0 <= value <= 1.0, field, "in [0, 1]", value)
    _require(_is_number(c.tau) and 0.0 < c.tau <= 1.0, "tau", "in (0, 1]", c.tau)
    for field in ("learning_rate", "max_grad_norm", "eps_decay_frames", "reward_scale"):
        value = getattr(c, field)
        _require(_is_number(value) and value > 0, field, "a finite number > 0", value)
    _require(len(c.hidden_sizes) > 0 and all(_is_int(h) and h > 0 for h in c.hidden_sizes),
             "hidden_sizes", "a non-empty tuple of integers > 0", c.hidden_sizes)
    for field in ("priority_exponent", "importance_beta_start", "priority_eta"):
        value = getattr(c, field)
        _require(_is_number(value) and 0.0 <= value <= 1.0, field, "in [0, 1]", value)
    _require(_is_number(c.noisy_sigma0) and c.noisy_sigma0 > 0, "noisy_sigma0",
             "a finite number > 0", c.noisy_sigma0)
    _require(_is_int(c.num_atoms) and c.num_atoms >= 2, "num_atoms", "an integer >= 2",
             c.num_atoms)
    _require(_is_number(c.v_min), "v_min", "a finite number", c.v_min)
    _require(_is_number(c.v_max) and c.v_max > c.v_min, "v_max", f"a finite number > v_min ({c.v_min})",
             c.v_max)
    _require(not (c.distributional and c.loss != "huber"), "loss",
             "'huber' (the default, unused) with distributional=True: C51 minimises a "
             "cross-entropy", c.loss)
    _require(_is_int(c.num_quantiles) and c.num_quantiles >= 2, "num_quantiles",
             "an integer >= 2", c.num_quantiles)
    _require(not (c.quantile_regression and c.distributional), "quantile_regression",
             "False with distributional=True: C51 and QR-DQN are two return distributions",
             c.quantile_regression)
    _require(not (c.quantile_regression and c.loss != "huber"), "loss",
             "'huber' (the default, unused) with quantile_regression=True: QR-DQN minimises "
             "the quantile Huber loss", c.loss)
    for other in ("distributional", "quantile_regression", "double_q"):
        _require(not (c.munchausen and getattr(c, other) is True), "munchausen",
                 f"False with {other}=True: Munchausen DQN's soft target replaces the "
                 f"greedy one", c.munchausen)
    _require(_is_number(c.munchausen_alpha) and 0.0 <= c.munchausen_alpha <= 1.0,
             "munchausen_alpha", "in [0, 1]", c.munchausen_alpha)
    _require(_is_number(c.entropy_temperature) and c.entropy_temperature > 0,
             "entropy_temperature", "a finite number > 0", c.entropy_temperature)
    _require(_is_number(c.log_policy_clip) and c.log_policy_clip < 0, "log_policy_clip",
             "a finite number < 0", c.log_policy_clip)
    for field in ("bootstrap_on_truncation", "double_q", "dueling", "prioritized", "noisy",
                  "distributional", "quantile_regression", "munchausen", "layer_norm",
                  "lr_linear_decay", "value_rescaling"):
        _require(isinstance(getattr(c, field), bool), field, "a bool", getattr(c, field))
    _require(c.loss in LOSSES, "loss", f"one of {LOSSES}", c.loss)
    _require(c.network in NETWORKS, "network", f"one of {NETWORKS}", c.network)
    _require(all(len(pair) == 2 and isinstance(pair[0], str) for pair in c.env_params),
             "env_params", "(name, value) pairs or a dict of names", c.env_params)
    _require(_is_int(c.target_update_period) and c.target_update_period >= 0,
             "target_update_period", "an integer >= 0", c.target_update_period)
    _require(isinstance(c.env_name, str), "env_name", "a string", c.env_name)


def _validate_dqn(c: Config) -> None:
    """What only DQN's replay and learning blocks need."""
    if c.memory != "none":
        _validate_sequences(c)
    else:
        for field in SEQUENCE_ONLY:
            _require(getattr(c, field) == _DEFAULTS[field], field,
                     f"left at its default ({_DEFAULTS[field]!r}) without memory: it is "
                     f"the recurrent DQN's (memory='lstm' or 'gru')", getattr(c, field))
    _require(c.batch_size <= c.buffer_size, "batch_size",
             f"<= buffer_size ({c.buffer_size})", c.batch_size)
    _require(c.train_every % c.num_envs == 0 or c.num_envs % c.train_every == 0, "num_envs",
             f"a divisor or a multiple of train_every ({c.train_every}): whole acting steps "
             f"per learning step, or whole learning steps per acting step", c.num_envs)
    _require(c.warmup_steps < c.num_frames, "warmup_steps",
             f"< num_frames ({c.num_frames})", c.warmup_steps)
    needed = (c.n_step - 1) * c.num_envs
    _require(c.memory != "none" or c.warmup_steps >= needed, "warmup_steps",
             f">= n_step - 1 ({needed}), so that n steps are stored before learning"
             if c.num_envs == 1 else f">= (n_step - 1) * num_envs ({needed}), so that n steps "
             f"of each environment are stored before learning", c.warmup_steps)
    _require(c.n_step <= c.buffer_size // c.num_envs, "n_step",
             f"<= buffer_size // num_envs ({c.buffer_size // c.num_envs}), the steps kept per "
             f"environment", c.n_step)


def _is_number(x) -> bool:
    """A finite int or float (not a bool, NaN or infinity)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _validate_sequences(c: Config) -> None:
    """What DQN over replayed sequences (R2D2) needs."""
    for field in NOT_WITH_MEMORY:
        _require(getattr(c, field) is False, field,
                 f"False with memory={c.memory!r}: the recurrent DQN acts epsilon-greedily",
                 getattr(c, field))
    for field in ("distributional", "quantile_regression", "munchausen"):
        _require(not (c.value_rescaling and getattr(c, field)), "value_rescaling",
                 f"False with {field}=True: its targets are not rescaled", c.value_rescaling)
    _require(not (c.munchausen and c.n_step != 1), "n_step",
             "1 with munchausen=True and memory: Munchausen's soft target is one-step",
             c.n_step)
    steps = c.buffer_size // c.num_envs
    _require(c.sequence_length <= steps, "sequence_length",
             f"<= buffer_size // num_envs ({steps}), the steps kept per environment",
             c.sequence_length)
    _require(c.burn_in < c.sequence_length, "burn_in",
             f"< sequence_length ({c.sequence_length}): steps must be left to learn from",
             c.burn_in)
    _require(c.n_step <= c.sequence_length - c.burn_in, "n_step",
             f"<= sequence_length - burn_in ({c.sequence_length - c.burn_in}): n-step returns "
             f"are taken inside a sequence", c.n_step)
    needed = c.sequence_length * c.num_envs
    _require(c.warmup_steps >= needed, "warmup_steps",
             f">= sequence_length * num_envs ({needed}), so that a whole sequence of each "
             f"environment is stored before learning", c.warmup_steps)
