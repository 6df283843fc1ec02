"""Reading back what `purejaxdqn train` wrote: config, params, metrics; greedy evaluation
of saved params; CSV export of the per-seed curves."""

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from purejaxdqn.networks import make_q_network
from purejaxdqn.checkpoints import open_npz
from purejaxdqn.config import Config
from purejaxdqn.envs import resolve_env
from purejaxdqn.evaluation import evaluate


def _require_file(path: Path) -> Path:
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} is not a directory")
    if not path.is_file():
        raise ValueError(f"{path.parent} holds no {path.name}: is it an output of "
                         f"`purejaxdqn train --out`?")
    return path


def _read_npz(path: Path) -> dict:
    """Every array of an .npz file of the run, checked by `checkpoints.open_npz`."""
    with open_npz(_require_file(path)) as data:
        return {name: data[name] for name in data.files}


def load_config(run_dir: Path) -> Config:
    path = _require_file(Path(run_dir) / "summary.json")
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("config"), dict):
        raise ValueError(f"{path} holds no config")
    unknown = sorted(set(summary["config"]) - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        raise ValueError(f"{path}: unknown config field(s) {', '.join(unknown)} (written by "
                         f"another version of purejaxdqn?)")
    try:
        return Config(**summary["config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


def load_params(run_dir: Path) -> dict:
    """The Haiku params saved by `train` (leading axis: seeds)."""
    params: dict = {}
    for name, value in _read_npz(Path(run_dir) / "params.npz").items():
        module, _, leaf = name.rpartition("/")
        params.setdefault(module, {})[leaf] = value
    if not params:
        raise ValueError(f"{Path(run_dir) / 'params.npz'} holds no parameters")
    return params


def load_metrics(run_dir: Path) -> dict:
    metrics = _read_npz(Path(run_dir) / "metrics.npz")
    if "final_eval_return" not in metrics:
        raise ValueError(f"{Path(run_dir) / 'metrics.npz'} holds no final_eval_return")
    return metrics


def check_run(run_dir: Path) -> tuple[Config, dict]:
    """(config, params) of a `train --out` directory, every file read and checked."""
    return load_config(run_dir), load_params(run_dir)


class SavedRun(NamedTuple):
    """A `train --out` directory read back: its config and params (leading axis: seeds),
    its environment, and the network that the params belong to."""

    config: Config
    params: dict
    env: Any
    env_params: Any
    network: Any


def load_run(run_dir: Path) -> SavedRun:
    """The saved run in `run_dir`, every file read and checked, its network rebuilt."""
    config, params = load_config(run_dir), load_params(run_dir)
    env, env_params, num_actions = resolve_env(config.env_name, overrides=config.env_params)
    network = make_q_network(config, num_actions, env.observation_space(env_params).shape)
    return SavedRun(config, params, env, env_params, network)


def evaluate_run(run_dir: Path, episodes: int, seed: int = 0) -> np.ndarray:
    """Mean greedy return over `episodes` episodes for each saved seed: (seeds,)."""
    if episodes <= 0:
        raise ValueError(f"--episodes must be an integer > 0, got {episodes}")
    _, params, env, env_params, network = load_run(run_dir)
    num_seeds = len(jax.tree.leaves(params)[0])
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    greedy = jax.jit(jax.vmap(
        lambda key, p: evaluate(key, p, network, env, env_params, episodes)))
    return np.asarray(greedy(keys, params))


def write_curves_csv(path: Path, frames: np.ndarray, metrics: dict) -> None:
    """One row per (seed, report): seed, frames, then each per-report metric."""
    names = [n for n, v in metrics.items() if np.ndim(v) == 2]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "frames", *names])
        for seed in range(len(metrics[names[0]])):
            for i, frame in enumerate(frames):
                writer.writerow([seed, int(frame), *(metrics[n][seed, i] for n in names)])


def write_tensorboard(directory: Path, frames: np.ndarray, metrics: dict) -> None:
    """TensorBoard event files, one run per seed (`directory/seed_000`, ...), each
    per-report metric a scalar against frames. Written after training, from the host."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ValueError("--tensorboard needs tensorboardX: pip install 'purejaxdqn[tensorboard]'")
    names = [n for n, v in metrics.items() if np.ndim(v) == 2]
    for seed in range(len(metrics[names[0]])):
        with SummaryWriter(str(Path(directory) / f"seed_{seed:03d}")) as writer:
            for name in names:
                for frame, value in zip(frames, metrics[name][seed]):
                    writer.add_scalar(name, float(value), int(frame))
