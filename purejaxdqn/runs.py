"""Reading back what `purejaxdqn train` wrote: config, params, metrics; greedy evaluation
of saved params; CSV export of the per-seed curves."""

import csv
import json
from pathlib import Path

import jax
import numpy as np

from purejaxdqn.agent import make_q_network
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


def load_config(run_dir: Path) -> Config:
    summary = json.loads(_require_file(Path(run_dir) / "summary.json").read_text())
    if "config" not in summary:
        raise ValueError(f"{run_dir}/summary.json holds no config")
    return Config(**summary["config"])


def load_params(run_dir: Path) -> dict:
    """The Haiku params saved by `train` (leading axis: seeds)."""
    params: dict = {}
    with np.load(_require_file(Path(run_dir) / "params.npz")) as flat:
        for name in flat.files:
            module, _, leaf = name.rpartition("/")
            params.setdefault(module, {})[leaf] = flat[name]
    return params


def load_metrics(run_dir: Path) -> dict:
    with np.load(_require_file(Path(run_dir) / "metrics.npz")) as data:
        return {name: data[name] for name in data.files}


def evaluate_run(run_dir: Path, episodes: int, seed: int = 0) -> np.ndarray:
    """Mean greedy return over `episodes` episodes for each saved seed: (seeds,)."""
    if episodes <= 0:
        raise ValueError(f"--episodes must be an integer > 0, got {episodes}")
    config, params = load_config(run_dir), load_params(run_dir)
    env, env_params, num_actions = resolve_env(config.env_name)
    network = make_q_network(config, num_actions, env.observation_space(env_params).shape)
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
