"""Seeds across devices and hosts: where the seed keys go, how results come back, and how
a command joins JAX's distributed runtime.

The seed axis is split over one mesh axis, "seeds", of every device of every process
(`jax.devices()` lists all hosts' devices once `jax.distributed.initialize` has run). Seeds
never exchange anything while training, so jit runs each device's seeds on that device;
only gathering results crosses hosts.
"""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# What `jax.distributed.initialize` is given when a command names no value: JAX's own
# defaults, written down because docs/long-runs.md documents them.
HEARTBEAT_TIMEOUT_S = 100
INITIALIZATION_TIMEOUT_S = 300


def seed_sharding(axis: int = 0, shards: int | None = None) -> NamedSharding:
    """Arrays whose axis `axis` is the seed axis, split in `shards` (default: one per
    device) over all devices; with fewer shards, each is held by several devices."""
    devices = np.array(jax.devices())
    shards = devices.size if shards is None else shards
    mesh = Mesh(devices.reshape(shards, -1), ("seeds", "copies"))
    return NamedSharding(mesh, PartitionSpec(*(None,) * axis, "seeds"))


def seed_keys(seed: int, num_seeds: int):
    """The keys of seeds 0 .. num_seeds - 1 (key i of `jax.random.split(jax.random.key(seed),
    num_seeds)`), split over all devices, and `drop_padding(tree, axis=0)`.

    A seed count that does not divide the device count is padded with extra seeds, so
    that every device runs as many; `drop_padding` cuts a result's seed axis back to
    `num_seeds`, keeping it split in gcd(num_seeds, devices) shards (a multiple of the
    device count keeps every seed's result on its own device, as it was trained)."""
    devices = jax.device_count()
    padding = -num_seeds % devices
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    if padding:
        keys = jnp.concatenate([keys, jax.random.split(jax.random.fold_in(keys[0], 1), padding)])
    # device_put reaches other processes' devices only from host memory: every process
    # computes the same keys, places their raw data and wraps it back into keys.
    data = jax.device_put(np.asarray(jax.random.key_data(keys)), seed_sharding())
    keys = jax.random.wrap_key_data(data, impl=jax.random.key_impl(keys))

    def drop_padding(tree, axis: int = 0):
        if not padding:
            return tree
        index = (slice(None),) * axis + (slice(num_seeds),)
        cut = jax.jit(lambda t: jax.tree.map(lambda x: x[index], t),
                      out_shardings=seed_sharding(axis, math.gcd(num_seeds, devices)))
        return cut(tree)

    return keys, drop_padding


def maps_seeds() -> bool:
    """Whether `over_seeds` runs each device's seeds one after another (on a CPU)."""
    return jax.default_backend() == "cpu"


def over_seeds(fn, in_axes: tuple, mesh: Mesh | None = None):
    """`fn` over the leading (seed) axis of the arguments whose `in_axes` entry is 0 (None:
    shared by every seed), for jit, with the seeds split over `mesh`'s "seeds" axis
    (default: `seed_sharding()`'s, every device).

    On a CPU each device runs its seeds one after another with the one-seed program
    (`lax.map` inside `shard_map`), so that seed i gives the same bits alone, among many,
    on any number of devices; on this CPU that is also faster than batching from 64 seeds
    on (benchmarks/investigations/seed_batching.py, docs/design.md). Elsewhere `vmap` batches them, as GPUs want."""
    if not maps_seeds():
        return jax.vmap(fn, in_axes)
    specs = tuple(PartitionSpec("seeds") if axis == 0 else PartitionSpec() for axis in in_axes)

    def per_device(*args):
        def one(seeded):
            given = iter(seeded)
            return fn(*(next(given) if axis == 0 else arg for arg, axis in zip(args, in_axes)))

        return jax.lax.map(one, tuple(arg for arg, axis in zip(args, in_axes) if axis == 0))

    per_device.__name__ = getattr(fn, "__name__", "per_device")  # the program's name: jit(train)
    return jax.shard_map(per_device, mesh=mesh or seed_sharding().mesh, in_specs=specs,
                         out_specs=PartitionSpec("seeds"), check_vma=False)


class LostProcess(RuntimeError):
    """Another process died or cannot be reached during a step that needs every process."""


def _across_processes(step: str, collective, *args):
    try:
        return collective(*args)
    except Exception as error:
        if jax.process_count() == 1:
            raise
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise LostProcess(
            f"process {jax.process_index()} of {jax.process_count()} lost another process "
            f"while {step} ({first_line}); start every process again (with --resume if the "
            f"run was checkpointed)") from error


def gather(tree):
    """The whole of every array in `tree`, as numpy, on every process (a collective: all
    processes must call it)."""
    from jax.experimental import multihost_utils

    return _across_processes("gathering results", multihost_utils.process_allgather, tree,
                             True)


def mean(x) -> float:
    """The mean of an array split over every process (a collective, like `gather`)."""
    return float(_across_processes("averaging over seeds", jnp.mean, x))


def is_main_process() -> bool:
    """Process 0 prints and writes; the others only compute."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process has reached the barrier `name`."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        _across_processes(f"waiting at {name}", multihost_utils.sync_global_devices, name)


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None,
               heartbeat_timeout: int = HEARTBEAT_TIMEOUT_S,
               initialization_timeout: int = INITIALIZATION_TIMEOUT_S) -> None:
    """`jax.distributed.initialize`, which must run before anything starts JAX's backend.

    Values left None come from the cluster (SLURM, Open MPI, ...; JAX detects them) or,
    for the coordinator, from JAX_COORDINATOR_ADDRESS. A process that loses its peers
    (or the coordinator) for `heartbeat_timeout` seconds ends with an error, so one dead
    process never leaves the others waiting forever. Cross-process collectives on CPU
    hosts go over gloo unless JAX_CPU_COLLECTIVES_IMPLEMENTATION says otherwise.
    """
    if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id,
                               initialization_timeout=initialization_timeout,
                               heartbeat_timeout_seconds=heartbeat_timeout)
