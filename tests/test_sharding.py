"""Seeds sharded across 4 (forced host) devices give what one device gives."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.runs import finish

pytestmark = pytest.mark.slow  # subprocesses

# Seed counts from TEST_SEED_COUNTS (default 8 and 6: one dividing 4 devices, one not).
SCRIPT = """
import json, os, sys
import jax, numpy as np
from purejaxdqn import Config, sweep, train_seeds
from purejaxdqn.distributed import gather
config = Config(num_frames=1_000, batch_size=32, buffer_size=1_000, warmup_steps=200,
                eval_every=500, eval_episodes=2, final_eval_episodes=2, hidden_sizes=(16,))
out = {"devices": jax.device_count()}
for n in map(int, os.environ.get("TEST_SEED_COUNTS", "8,6").split(",")):
    result = train_seeds(config, n, seed=5)
    w = jax.tree.leaves(result.params)[-1]
    out[f"spread_{n}"] = len(w.sharding.device_set)
    out[f"shards_{n}"] = len({shard.index[0].start for shard in w.global_shards})
    final, w = gather((result.metrics["final_eval_return"], w))
    out[f"final_{n}"], out[f"w_{n}"] = final.tolist(), w.tolist()
swept = sweep(config, {"tau": [0.01, 0.1]}, num_seeds=6, seed=5)
out["sweep"] = gather(swept.metrics["final_eval_return"]).tolist()
print(json.dumps(out))
"""


def start_with_devices(count: int) -> subprocess.Popen:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}"}
    return subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_four_devices_match_one_device():
    done = finish([start_with_devices(1), start_with_devices(4)])  # side by side
    for status, _, stderr in done:
        assert status == 0, stderr
    one, four = (json.loads(stdout.strip().splitlines()[-1]) for _, stdout, _ in done)
    assert one["devices"] == 1 and four["devices"] == 4
    assert four["spread_8"] == four["shards_8"] == 4  # the seeds really were spread out
    assert four["shards_6"] == 2  # 6 seeds come back in gcd(6, 4) shards, not replicated
    for n in (8, 6):  # 6 seeds do not divide 4 devices: padded to 8, the padding dropped
        assert len(four[f"final_{n}"]) == n
        np.testing.assert_allclose(four[f"final_{n}"], one[f"final_{n}"])
        np.testing.assert_allclose(four[f"w_{n}"], one[f"w_{n}"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(four["sweep"]).shape, (2, 6))
    np.testing.assert_allclose(four["sweep"], one["sweep"])
