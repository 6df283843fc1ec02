"""The layout of a run: how many processes and devices train its seeds, and how many seeds
each device holds. The CLI, the library's entry points and the checkpoints ask this module.

On a CPU, XLA keeps about one core busy per device, so the seeds are split over one CPU
device per core by default (seeds never exchange anything while training). JAX fixes its
CPU device count when its backend starts, so the count is chosen before that:
`use_cpu_devices` is the call, made by `train_seeds`, `sweep` and `train_resumable` when
they are the first to start JAX, and by the CLI before anything else. GPUs and TPUs are
untouched: the CPU device count only shapes the CPU backend.

Results depend on the layout by float rounding (XLA batches each device's seeds and may sum
in another order), so the layout is part of a run's record (`describe`).
"""

import os
import warnings

ENV_VAR = "PUREJAXDQN_CPU_DEVICES"
_FORCED_BY_XLA_FLAGS = "xla_force_host_platform_device_count"
_warned = False


def cpu_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_num_seeds(num_seeds) -> int:
    """`num_seeds`, or ValueError unless it is an integer > 0: checked here alone, where a
    run starts (`split_for`) and where the CLI reads `--num-seeds`."""
    if not isinstance(num_seeds, int) or isinstance(num_seeds, bool) or num_seeds <= 0:
        raise ValueError(f"num_seeds must be an integer > 0, got {num_seeds!r}")
    return num_seeds


def parse_count(value, source: str) -> int:
    """A device count: a positive integer, or ValueError naming `source`."""
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if count <= 0:
        raise ValueError(f"{source} must be an integer > 0 (CPU devices), got {value!r}")
    return count


def best_device_count(num_seeds: int, cores: int) -> int:
    """The fewest devices, at most `cores`, that give the fewest seeds per device: 6 seeds
    on 4 cores run on 3 devices of 2 seeds (4 devices would hold 2 each too, one padded)."""
    per_device = -(-num_seeds // max(1, min(cores, num_seeds)))
    return -(-num_seeds // per_device)


def requested_count(num_seeds: int | None = None, processes: int = 1) -> int:
    """The CPU devices per process a run of `num_seeds` seeds asks for: PUREJAXDQN_CPU_DEVICES
    if set, else `best_device_count` of this process's share of the seeds on its cores."""
    setting = os.environ.get(ENV_VAR, "")
    if setting.strip():
        return parse_count(setting, ENV_VAR)
    if not isinstance(num_seeds, int) or num_seeds <= 0:
        return cpu_cores()
    return best_device_count(-(-num_seeds // max(processes, 1)), cpu_cores())


def process_position() -> tuple[int, int]:
    """(this process's index, the processes of the run), as jax.distributed knows them,
    without starting JAX's backend."""
    from jax._src import distributed

    return distributed.global_state.process_id or 0, distributed.global_state.num_processes or 1


def process_count() -> int:
    return process_position()[1]


def backend_started() -> bool:
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def use_cpu_devices(count: int | None = None, num_seeds: int | None = None,
                    processes: int = 1) -> int | None:
    """Split JAX's CPU backend into `count` devices (default: `requested_count(num_seeds,
    processes)`); call it right after `import jax`, before anything runs on JAX:

        purejaxdqn.use_cpu_devices(num_seeds=64)   # or count=1 for a single device

    Returns the count set, or None where it is not this call's to set: the backend has
    started (a warning, once, if that left a single CPU device for many), or the user set
    it already (XLA_FLAGS' --xla_force_host_platform_device_count, or jax_num_cpu_devices).
    Never fails on those; a bad `count` is a ValueError."""
    import jax

    count = requested_count(num_seeds, processes) if count is None else parse_count(
        count, "the CPU device count")
    if (_FORCED_BY_XLA_FLAGS in os.environ.get("XLA_FLAGS", "")
            or jax.config.jax_num_cpu_devices != -1):
        return None
    if backend_started():
        _warn_single_device(count)
        return None
    jax.config.update("jax_num_cpu_devices", count)
    return count


def _warn_single_device(count: int) -> None:
    global _warned
    import jax

    if count > 1 and not _warned and jax.default_backend() == "cpu" and (
            jax.local_device_count() == 1):
        _warned = True
        warnings.warn(
            f"JAX started before purejaxdqn could split the CPU into devices, so every seed "
            f"runs on one device (about one core busy of {cpu_cores()}); call "
            f"purejaxdqn.use_cpu_devices(num_seeds=...) right after `import jax`, before "
            f"anything runs on JAX, to use every core", stacklevel=3)


def split_for(num_seeds: int) -> None:
    """What `train_seeds`, `sweep` and `train_resumable` do first: check `num_seeds`, then
    split the CPU for them if JAX has not started (`use_cpu_devices`)."""
    check_num_seeds(num_seeds)
    use_cpu_devices(num_seeds=num_seeds, processes=process_count())


def describe(num_seeds: int) -> dict:
    """The layout a run of `num_seeds` seeds has now, for its record: processes, devices,
    the platform, and the seeds each device holds (padded to a multiple of the devices)."""
    import jax

    devices = jax.device_count()
    return {"platform": jax.default_backend(), "processes": jax.process_count(),
            "devices": devices, "devices_per_process": jax.local_device_count(),
            "seeds_per_device": -(-num_seeds // devices),
            "padding_seeds": -num_seeds % devices}


def summary_line(num_seeds: int) -> str:
    """`64 seeds on 2 cpu devices, 32 each` (and the processes and padding, if any)."""
    layout = describe(num_seeds)
    text = (f"{num_seeds} seeds on {layout['devices']} {layout['platform']} "
            f"device{'s' if layout['devices'] > 1 else ''}")
    if layout["processes"] > 1:
        text += f" of {layout['processes']} processes"
    if layout["devices"] > 1:
        text += f", {layout['seeds_per_device']} each"
    if layout["padding_seeds"]:
        text += f" ({layout['padding_seeds']} padding seeds, dropped)"
    return text
