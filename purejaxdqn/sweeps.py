"""Hyperparameter sweeps as one program: a grid over traced hyperparameters is a `vmap`."""

import dataclasses
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from purejaxdqn.config import TRACED_FIELDS, Config, HyperParams
from purejaxdqn import layout
from purejaxdqn.distributed import maps_seeds, over_seeds, seed_keys
from purejaxdqn.train import compile_and_run, make_train


class SweepResult(NamedTuple):
    params: Any            # leading axes (configs, seeds)
    metrics: dict          # name -> array with leading axes (configs, seeds)
    configs: list[dict]    # the settings, in the order of the configs axis


def grid_settings(config: Config, grid: dict) -> list[dict]:
    """Every combination of `grid` (field -> values), checked like a `Config`."""
    if not grid:
        raise ValueError("the sweep grid is empty; give at least one field and its values")
    for field, values in grid.items():
        if field not in TRACED_FIELDS:
            raise ValueError(
                f"cannot sweep {field!r}: only traced hyperparameters can share one "
                f"program; choose from {list(TRACED_FIELDS)}")
        if len(values) == 0:
            raise ValueError(f"the sweep grid gives no values for {field!r}")
    settings = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    for setting in settings:
        dataclasses.replace(config, **setting)  # raises the Config's own ValueError
    return settings


def sweep(config: Config, grid: dict, num_seeds: int, seed: int = 0, env=None,
          env_params=None, timings: dict | None = None, network=None) -> SweepResult:
    """Train `num_seeds` seeds for every setting in `grid`, in one jitted program.

    Every setting gets the same seeds (key i of `jax.random.split(jax.random.key(seed),
    num_seeds)`), so differences between settings are not differences between seeds.
    `timings`, if a dict, receives `compile_s` and `run_s`. `env`, `env_params` and
    `network` are `make_train`'s.
    """
    layout.split_for(num_seeds)
    settings = grid_settings(config, grid)
    hparams = HyperParams(*(
        jnp.array([s.get(f, getattr(config, f)) for s in settings], jnp.float32)
        for f in TRACED_FIELDS))
    train = make_train(config, env, env_params, network)
    keys, drop_padding = seed_keys(seed, num_seeds)
    if maps_seeds():  # every setting of a seed one after another, as a single run does
        per_seed = over_seeds(lambda key, h: jax.lax.map(lambda hp: train(key, hp), h),
                              (0, None))
        program = jax.jit(lambda k, h: jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1),
                                                    per_seed(k, h)))
    else:
        program = jax.jit(jax.vmap(jax.vmap(train, in_axes=(0, None)), in_axes=(None, 0)))
    result = drop_padding(compile_and_run(program, (keys, hparams), timings), axis=1)
    return SweepResult(result.params, result.metrics, settings)
