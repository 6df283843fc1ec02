"""purejaxdqn: the whole DQN training run as one jitted, vmapped XLA program."""

from purejaxdqn.agent import make_q_network
from purejaxdqn.config import Config, HyperParams
from purejaxdqn.sweep import SweepResult, sweep
from purejaxdqn.train import (TrainResult, TrainState, Trainer, make_train, make_trainer,
                              report_frames, train_seeds)

__all__ = ["Config", "HyperParams", "TrainResult", "TrainState", "make_q_network",
           "make_train", "make_trainer", "report_frames", "sweep", "SweepResult", "train_seeds",
           "Trainer"]
