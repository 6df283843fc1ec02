"""What the tests share, in one module (no test module imports another): small configs
and the assertions made of them, probe environments with known answers, reference
functions in numpy, the optional suites, and the ways a test starts the CLI (in this
process, watched for compiles, or as processes ended by their pids)."""

import json
import os
import re
import signal
import socket
import struct as binary
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from purejaxdqn import Config, make_q_network, make_train
from purejaxdqn.imports import import_suite

# --- Small configs, and the assertions made of their runs --------------------------------

SMALL = Config(num_frames=2_000, batch_size=32, buffer_size=1_000, warmup_steps=200,
               eval_every=500, eval_episodes=2, final_eval_episodes=3, hidden_sizes=(32,),
               eps_decay_frames=1_000)

SMALL_PQN = Config(algorithm="pqn", num_frames=1_600, num_envs=4, num_steps=25,
                   num_minibatches=4, hidden_sizes=(16,), layer_norm=True, eval_every=0,
                   final_eval_episodes=2, eps_decay_frames=800)


def assert_same_key_same_result(config, keys, result):
    again = jax.jit(jax.vmap(make_train(config)))(keys)
    chex.assert_trees_all_equal(result, again)


def assert_vmapped_seed_equals_seed_alone(config, keys, result):
    """Seed 1 of a vmapped `result` of `config` is seed 1 trained alone, up to the float
    rounding that batching the matmuls may bring."""
    alone = jax.jit(make_train(config))(keys[1])
    for batched, single in zip(jax.tree.leaves(result), jax.tree.leaves(alone)):
        np.testing.assert_allclose(batched[1], single, rtol=1e-4, atol=1e-5)


# --- Reference functions in numpy --------------------------------------------------------

def numpy_huber(x, delta=1.0):
    return np.where(np.abs(x) <= delta, 0.5 * x**2, delta * (np.abs(x) - 0.5 * delta))


def numpy_q_lambda(q_next, reward, terminal, done, gamma, lam, legal=None):
    """Peng's Q(lambda) by the backward recursion, one environment at a time: at an
    episode's end the return stops (bootstrapping from the final observation unless it
    terminated); at the rollout's end it bootstraps."""
    if legal is not None:
        legal = legal | ~legal.any(-1, keepdims=True)
        q_next = np.where(legal, q_next, -np.inf)
    steps, envs = reward.shape
    targets = np.zeros((steps, envs))
    for e in range(envs):
        g = None
        for t in reversed(range(steps)):
            v = q_next[t, e].max()
            boot = 0.0 if terminal[t, e] else gamma
            if done[t, e] or g is None:
                g = reward[t, e] + boot * v
            else:
                g = reward[t, e] + boot * ((1 - lam) * v + lam * g)
            targets[t, e] = g
    return targets


class Stop(Exception):
    pass


def whole_and_resumed(config, out: Path, **run):
    """(the run never stopped, the run stopped after its first segment and resumed from
    its checkpoint), both through `runner.train_resumable(config, **run)` in `out`."""
    from purejaxdqn.runner import train_resumable

    whole = train_resumable(config, out=out / "whole", **run)

    def stop(frames, _):
        raise Stop(frames)

    with pytest.raises(Stop):
        train_resumable(config, out=out / "run", on_segment=stop, **run)
    return whole, train_resumable(config, out=out / "run", resume=True, **run)


# Legal actions of a batch of 4 (3 actions): the last row has none, so all count.
LEGAL_T = np.array([[True, False, True], [False, True, False], [False, False, True],
                    [False, False, False]])

# --- Probe environments with known answers -----------------------------------------------

@struct.dataclass
class ProbeParams(environment.EnvParams):
    """A `Probe`'s behaviour, so that probes of one config can share one program, vmapped
    over these (`learned_q`): `time_limit` steps before a truncation; a first step that
    terminates (`terminate`) or not; reward 1 for `rewarded_action` only (-1: for every
    action); `two_steps`: the observation is the step (0, then 1), reward 1 at the second
    step, which terminates (Q is gamma at step 0 and 1 at step 1: the value has to travel
    one step back through the bootstrap). `max_steps_in_episode` bounds evaluation."""

    max_steps_in_episode: int = 1
    time_limit: int = 1
    terminate: bool = True
    rewarded_action: int = -1
    two_steps: bool = False


class Probe(environment.Environment):
    """Tiny episodes with known Q-values (see `ProbeParams`), two actions, observations of
    one float: constant 1.0, or with `two_steps` the step."""

    def __init__(self, **params):
        super().__init__()
        self.params = ProbeParams(**params)

    @property
    def default_params(self):
        return self.params

    def step_env(self, key, state, action, params):
        state = state.replace(time=state.time + 1)
        pays = jnp.where(params.rewarded_action < 0, True, action == params.rewarded_action)
        second = state.time >= 2
        reward = jnp.where(params.two_steps, second, pays).astype(jnp.float32)
        terminated = jnp.where(params.two_steps, second, params.terminate)
        return self.get_obs(state, params), state, reward, terminated, {}

    def is_truncated(self, state, params):
        return state.time >= params.time_limit

    def reset_env(self, key, params):
        state = environment.EnvState(time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state, params=None, key=None):
        params = self.params if params is None else params
        return jnp.where(params.two_steps, state.time, 1.0).astype(jnp.float32)[None]

    def action_space(self, params):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 2.0, (1,), jnp.float32)


def one_step_probe(terminate: bool, rewarded_action: int = -1, steps: int = 1) -> Probe:
    """Constant observation; reward 1 for every action (or `rewarded_action` alone); the
    episode ends after `steps` steps, terminated if `terminate`, else truncated by the
    time limit (then it bootstraps: Q = 1 / (1 - gamma))."""
    return Probe(max_steps_in_episode=steps, time_limit=steps,
                 terminate=terminate and steps == 1, rewarded_action=rewarded_action)


class ContinuousProbe(Probe):
    def action_space(self, params):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)


class CounterEnv(environment.Environment):
    """Observation = frames taken since reset, and no episode ends within a test run, so
    the replay buffer's contents tell exactly which frames it holds. (Only for runs
    without evaluation: an evaluation episode would last `max_steps_in_episode`.) With
    `random_start`, the count starts at a random multiple of 10**6, which tells
    environments stepped side by side apart."""

    def __init__(self, random_start: bool = False):
        super().__init__()
        self.random_start = random_start

    @property
    def default_params(self):
        return ProbeParams(max_steps_in_episode=10**9)

    def step_env(self, key, state, action, params):
        state = state.replace(time=state.time + 1)
        return self.get_obs(state), state, jnp.float32(0.0), jnp.bool_(False), {}

    def reset_env(self, key, params):
        start = jax.random.randint(key, (), 0, 1000) * 10**6 if self.random_start else 0
        state = environment.EnvState(time=jnp.int32(start))
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.time], jnp.int32)

    def action_space(self, params):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0, jnp.iinfo(jnp.int32).max, (1,), jnp.int32)



GAMMA = 0.9
PROBE = dict(num_frames=3_000, batch_size=32, buffer_size=1_000, warmup_steps=100,
             gamma=GAMMA, tau=0.1, learning_rate=3e-3, hidden_sizes=(16,), eval_every=0,
             eps_decay_frames=1_000)

# PQN: no replay, no target network; 200 updates of 4 x 8 frames (the two-step probe's
# value travels back through on-policy lambda-returns: at 100 it is still short of gamma).
PQN_PROBE = dict(algorithm="pqn", num_frames=6_400, num_envs=4, num_steps=8, num_minibatches=4,
                 gamma=GAMMA, learning_rate=3e-3, hidden_sizes=(16,), layer_norm=True,
                 eval_every=0, eps_decay_frames=1_000)

# Probes by name, as `ProbeParams` fields, and the Q-values each has at the observations
# it shows: 1.0 (one-step probes), or 0.0 then 1.0 (two steps).
PROBES = {
    "constant, truncated": dict(terminate=False),
    "constant, terminated": dict(terminate=True),
    "action-dependent": dict(terminate=True, rewarded_action=1),
    "two steps": dict(two_steps=True, time_limit=3),
}


def learned_q(probes: list[dict], **overrides) -> np.ndarray:
    """Q-values learned in each of `probes` (`ProbeParams` fields) under `PROBE` (or
    `PQN_PROBE`) with `overrides`, all in one program vmapped over the probes, at the
    observations 0.0 and 1.0: shape (probes, 2 observations, 2 actions)."""
    base = PQN_PROBE if overrides.get("algorithm") == "pqn" else PROBE
    config = Config(**{**base, **overrides})
    fields = ("time_limit", "terminate", "rewarded_action", "two_steps")
    variants = {name: jnp.array([{**ProbeParams().__dict__, **probe}[name] for probe in probes])
                for name in fields}

    def train(variant):  # the evaluation bound stays a Python int
        env_params = ProbeParams(max_steps_in_episode=3, **variant)
        return make_train(config, env=Probe(), env_params=env_params)(jax.random.key(0))

    params = jax.jit(jax.vmap(train))(variants).params
    network = make_q_network(config, num_actions=2, obs_shape=(1,))
    return np.asarray(jax.vmap(network.apply, (0, None))(params, jnp.array([[0.0], [1.0]])))


# --- The optional environment suites -----------------------------------------------------

def need(suite: str):
    """The suite's module, or the test skipped where it is not installed, naming the pip
    command (failed where PUREJAXDQN_REQUIRE_SUITES is set: CI installs every suite)."""
    try:
        return import_suite(suite)
    except ValueError as error:
        if os.environ.get("PUREJAXDQN_REQUIRE_SUITES"):
            pytest.fail(f"required here: {error}")
        pytest.skip(str(error))


# --- The CLI in this process, watched for compiles ---------------------------------------

def is_program(fun_name: str) -> bool:
    """Whether a compiled `fun_name` is a program, not one array operation (gymnax builds
    its default params with one `convert_element_type`)."""
    op = re.fullmatch(r"jit\((\w+)\)", fun_name)
    return not (op and (hasattr(jax.lax, op[1]) or hasattr(jax.numpy, op[1])))


COMPILED: list[str] = []  # the programs XLA compiled in this process, in order


def _on_compile(name, *args, fun_name="", **kwargs):
    if name == "/jax/core/compile/backend_compile_duration" and is_program(fun_name):
        COMPILED.append(fun_name)


jax.monitoring.register_event_duration_secs_listener(_on_compile)


def main_in_process(argv, capsys) -> tuple[int, str, str, list[str]]:
    """(exit status, stdout, stderr, programs compiled) of `purejaxdqn ARGV` run here."""
    from purejaxdqn.cli import main

    capsys.readouterr()
    compiled_before = len(COMPILED)
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit:  # argparse's errors
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err, COMPILED[compiled_before:]


# --- The CLI as processes ----------------------------------------------------------------

# The CLI, saying on stderr when XLA compiles a program, and when the persistent cache
# supplies one. (JAX records a "compile" for a cache hit too: with the cache on, the hits
# tell which were loaded.)
WATCHED_CLI = """
import re, sys
import jax, jax.monitoring
def on_compile(name, *args, fun_name="", **kwargs):
    op = re.fullmatch(r"jit\\((\\w+)\\)", fun_name)
    if (name == "/jax/core/compile/backend_compile_duration"
            and not (op and (hasattr(jax.lax, op[1]) or hasattr(jax.numpy, op[1])))):
        sys.stderr.write(f"XLA compiled {fun_name}\\n")
def on_event(name, **kwargs):
    if name == "/jax/compilation_cache/cache_hits":
        sys.stderr.write("loaded a program from the compilation cache\\n")
jax.monitoring.register_event_duration_secs_listener(on_compile)
jax.monitoring.register_event_listener(on_event)
from purejaxdqn.cli import main
sys.exit(main(sys.argv[1:]))
"""

CLI = ("-m", "purejaxdqn.cli")


def cli_env(devices: str | None = "1", **extra) -> dict:
    """This process's environment for a process a test starts: PUREJAXDQN_CPU_DEVICES set to
    `devices` (None: unset, the default layout), XLA_FLAGS dropped, `extra` added."""
    env = {k: v for k, v in os.environ.items() if k not in ("PUREJAXDQN_CPU_DEVICES",
                                                            "XLA_FLAGS")}
    if devices is not None:
        env["PUREJAXDQN_CPU_DEVICES"] = devices
    return {**env, **extra}


def start(args, env: dict | None = None, program=CLI, stdout=subprocess.PIPE,
          stderr=subprocess.PIPE) -> subprocess.Popen:
    """`python PROGRAM ARGS` (by default the CLI) as a process, in `env` (default: this
    process's)."""
    return subprocess.Popen([sys.executable, *program, *map(str, args)], stdout=stdout,
                            stderr=stderr, text=True, env=env)


def run_cli(*args, env: dict | None = None, timeout: float = 600, program=CLI):
    """(exit status, stdout, stderr) of the CLI with `args`, run to its end as a process
    within `timeout` seconds (see `finish`)."""
    return finish([start(args, env, program)], timeout)[0]


def finish(processes: list[subprocess.Popen], timeout: float = 600) -> list[tuple]:
    """(returncode, stdout, stderr) of each process, all waited for within `timeout`
    seconds together; any still running then, or when a wait fails, is killed by its pid.
    Processes started side by side overlap their compiles, mostly one core's work each."""
    deadline, results = time.monotonic() + timeout, []
    try:
        for p in processes:
            out, err = p.communicate(timeout=max(deadline - time.monotonic(), 1))
            results.append((p.returncode, out, err))
    finally:
        for p in processes:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


# --- What runs wrote ---------------------------------------------------------------------

def assert_same_outputs(a: Path, b: Path, names=("params.npz", "metrics.npz")) -> None:
    """The `.npz` files `names` of run directories `a` and `b` hold the same arrays, bit
    for bit, under the same names."""
    for name in names:
        with np.load(Path(a) / name) as x, np.load(Path(b) / name) as y:
            chex.assert_trees_all_equal(dict(x), dict(y), strict=True)


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of TensorBoard event files (TFRecord framing, tensorboardX's protos)."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = binary.unpack("<Q", data[offset:offset + 8])
            record = data[offset + 12:offset + 12 + length]  # skip the length's CRC
            offset += 12 + length + 4                        # and the record's CRC
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


# --- The trackers ------------------------------------------------------------------------

def need_extra(module: str, extra: str | None = None):
    """An optional package (a tracker's, rliable), or the test skipped where it is not
    installed (failed where PUREJAXDQN_REQUIRE_SUITES is set: CI installs those extras
    too)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        message = f'{module} is not installed: pip install "purejaxdqn[{extra or module}]"'
        if os.environ.get("PUREJAXDQN_REQUIRE_SUITES"):
            pytest.fail(f"required here: {message}")
        pytest.skip(message)


def wandb_records(path: Path):
    """The records of an offline W&B run's .wandb file, as wandb's protos. (wandb 0.31
    ships no Python reader of this log: the framing, LevelDB's log format of 32 KiB blocks
    after a 7-byte header, is read here; each record is wandb's own `Record`.)"""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", data[:7]
    position, block, parts = 7, 32_768, b""
    while position + 7 <= len(data):
        left = block - position % block
        _, length, kind = binary.unpack("<IHB", data[position:position + 7])
        if left < 7 or (length == 0 and kind == 0):  # a block's zero padding
            position += left
            continue
        parts += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or a record's last part
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def wandb_run(directory: Path, run_id: str) -> dict:
    """What the offline W&B runs of `run_id` under `directory` recorded, every part of it
    (a resumed run writes a second file): {"history": {step: {key: value}}, "steps":
    [each history row's step, in order], "config", "summary", "group", "name"}."""
    found = {"history": {}, "steps": [], "config": {}, "summary": {}}
    files = sorted(Path(directory).glob(f"wandb/offline-run-*-{run_id}*/run-{run_id}.wandb"))
    assert files, f"no offline W&B run {run_id} in {directory}"
    for path in files:
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                found.update(group=record.run.run_group, name=record.run.display_name)
                found["config"].update({i.key: json.loads(i.value_json)
                                        for i in record.run.config.update})
            elif kind == "config":
                found["config"].update({i.key: json.loads(i.value_json)
                                        for i in record.config.update})
            elif kind == "history":
                row = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                       for i in record.history.item}
                found["steps"].append(row["_step"])
                found["history"].setdefault(row["_step"], {}).update(row)
            elif kind == "summary":
                found["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                         for i in record.summary.update})
    return found
