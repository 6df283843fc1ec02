"""Hyperparameter sweeps as one program: a grid over traced hyperparameters is a `vmap`."""

import dataclasses
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from purejaxdqn.config import TRACED_FIELDS, Config, HyperParams
from purejaxdqn import layout
from purejaxdqn.distributed import maps_seeds, over_seeds, seed_keys, seed_sharding
from purejaxdqn.progress import Progress
from purejaxdqn.train import (compile_and_run, groups_of_runs, make_train, make_trainer,
                              run_in_groups, run_in_segments)


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
          env_params=None, timings: dict | None = None, network=None,
          progress=False) -> SweepResult:
    """Train `num_seeds` seeds for every setting in `grid`, in one jitted program.

    Every setting gets the same seeds (key i of `jax.random.split(jax.random.key(seed),
    num_seeds)`), so differences between settings are not differences between seeds.
    `timings`, if a dict, receives `compile_s` and `run_s`. `env`, `env_params` and
    `network` are `make_train`'s. With `progress` (True: a tqdm bar; or a
    `progress.Progress`), the sweep goes in segments (`train.run_in_segments`), with the
    same bits.
    """
    layout.split_for(num_seeds)
    settings = grid_settings(config, grid)
    hparams = HyperParams(*(
        jnp.array([s.get(f, getattr(config, f)) for s in settings], jnp.float32)
        for f in TRACED_FIELDS))
    keys, drop_padding = seed_keys(seed, num_seeds)
    train = make_train(config, env, env_params, network)
    if progress is True:
        progress = Progress(config.num_frames, num_seeds * len(settings),
                            desc=f"{len(settings)} settings x {num_seeds} seeds")
    if progress:
        batch, runs, per_run, unflatten = _batched(hparams, keys)
        if groups_of_runs(runs.size):  # each run as one call of the one-run program
            program = jax.jit(over_seeds(train, (0, 0)))
            result = run_in_groups(program, (runs, per_run), progress,
                                   config.num_frames, timings)
        else:
            trainer = make_trainer(config, env, env_params, network=network)
            result = run_in_segments(trainer, config, batch, runs, progress, timings)
        result = drop_padding(unflatten(result), axis=1)
        return SweepResult(result.params, result.metrics, settings)
    if maps_seeds():  # every setting of a seed one after another, as a single run does
        per_seed = over_seeds(lambda key, h: jax.lax.map(lambda hp: train(key, hp), h),
                              (0, None))
        program = jax.jit(lambda k, h: jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1),
                                                    per_seed(k, h)))
    else:
        program = jax.jit(jax.vmap(jax.vmap(train, in_axes=(0, None)), in_axes=(None, 0)))
    result = drop_padding(compile_and_run(program, (keys, hparams), timings), axis=1)
    return SweepResult(result.params, result.metrics, settings)


def _batched(hparams: HyperParams, keys):
    """`run_in_segments`'s `batch` for a sweep, the keys of its runs, each run's
    hyperparameters (None off a CPU), and what turns a result's run axes into (settings,
    seeds). On a CPU each device's runs (its seeds'
    settings) go one after another, as `sweep`'s one program runs them; elsewhere a vmap
    over the settings of a vmap over the seeds, as there."""
    settings, seeds = len(hparams.gamma), len(keys)
    if maps_seeds():  # one axis of runs, seed-major, split over the devices by seed
        # on the host: every process holds all of them, as a constant of the programs
        per_run = jax.tree.map(lambda x: np.tile(np.asarray(x), seeds), hparams)
        runs = jax.jit(lambda k: jnp.repeat(k, settings), out_shardings=seed_sharding())(keys)

        def batch(fn, in_axes):
            return lambda *args: over_seeds(fn, (*in_axes, 0))(*args, per_run)

        def unflatten(tree):
            return jax.tree.map(lambda x: jnp.swapaxes(
                x.reshape(seeds, settings, *x.shape[1:]), 0, 1), tree)

        return batch, runs, per_run, unflatten

    def batch(fn, in_axes):
        def setting(hp, *args):
            return jax.vmap(lambda *a: fn(*a, hp), in_axes)(*args)

        return lambda *args: jax.vmap(setting, (0, *in_axes))(hparams, *args)

    return batch, jnp.stack([keys] * settings), None, lambda tree: tree
