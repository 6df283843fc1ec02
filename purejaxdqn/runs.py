"""Reading back what `purejaxdqn train` wrote: config, params, metrics; greedy evaluation
of saved params."""

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


def check_logged_run(run_dir: Path) -> None:
    """What `purejaxdqn log` reads from a `train` or `sweep` directory, read and checked."""
    load_config(run_dir)
    load_metrics(run_dir)
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    if not isinstance(summary.get("num_seeds"), int) or "seed" not in summary:
        raise ValueError(f"{Path(run_dir) / 'summary.json'} holds no num_seeds and seed")
    if "frames" not in load_metrics(run_dir):
        raise ValueError(f"{Path(run_dir) / 'metrics.npz'} holds no frames")


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
