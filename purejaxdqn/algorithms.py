"""The algorithms the loop can run, by `Config.algorithm`: each is a state, a seed's start
(`init_state`) and a block (`run_block`), and what the run builds for it (a replay
buffer, or none). The loop (`purejaxdqn.train`) knows algorithms only through
`ALGORITHMS`; adding one is writing its module over `purejaxdqn.acting` and the pieces
below it, then one line here and its name in `config.ALGORITHMS` (docs/design.md walks
through it)."""

from typing import Callable, NamedTuple

from purejaxdqn import dqn, pqn, pqn_rnn, r2d2, replay
from purejaxdqn.config import ALGORITHMS as NAMES
from purejaxdqn.config import Config


class Algorithm(NamedTuple):
    """How the loop runs an algorithm. `init_state(parts, key, hparams)` is a seed's state
    at frame 0, a NamedTuple that the scan carries and a checkpoint saves;
    `run_block(parts, state, block_index, hparams)` is `config.block_frames` frames of it:
    (state, `acting.BlockOut`); `make_buffer(config)` the replay it keeps, or None."""

    init_state: Callable
    run_block: Callable
    make_buffer: Callable | None = None


# By `Config.algorithm`, and with "_rnn" where `Config.memory` sets a recurrent core.
ALGORITHMS = {
    "dqn": Algorithm(dqn.init_state, dqn.run_block, replay.make_buffer),
    "pqn": Algorithm(pqn.init_state, pqn.run_block),
    "dqn_rnn": Algorithm(r2d2.init_state, r2d2.run_block, replay.make_buffer),
    "pqn_rnn": Algorithm(pqn_rnn.init_state, pqn_rnn.run_block),
}
assert tuple(name for name in ALGORITHMS if not name.endswith("_rnn")) == NAMES, \
    "config.ALGORITHMS and the registry differ"


def algorithm_of(config: Config) -> Algorithm:
    """The registered algorithm that runs `config`."""
    return ALGORITHMS[config.algorithm + ("_rnn" if config.memory != "none" else "")]
