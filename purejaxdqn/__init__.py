"""purejaxdqn: the whole DQN training run as one jitted, vmapped XLA program.

The names below are imported on first use (PEP 562), so that `import purejaxdqn` and the
CLI's `--help` load no JAX: a multi-host program calls `jax.distributed.initialize()`
after its imports, and help should answer at once."""

import importlib

_HOMES = {
    "make_q_network": "networks",
    "Config": "config", "HyperParams": "config",
    "SweepResult": "sweeps", "sweep": "sweeps",
    "TrainResult": "train", "TrainState": "dqn", "Trainer": "train", "make_train": "train",
    "make_trainer": "train", "report_frames": "train", "train_seeds": "train",
    "use_cpu_devices": "layout",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'purejaxdqn' has no attribute {name!r}")
    return getattr(importlib.import_module(f"purejaxdqn.{_HOMES[name]}"), name)
