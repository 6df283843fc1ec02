"""Seeds sharded across 4 (forced host) devices give what one device gives."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # subprocesses

SCRIPT = """
import json, sys
import jax, numpy as np
from purejaxdqn import Config, sweep, train_seeds
from purejaxdqn.distributed import gather
config = Config(num_frames=1_000, batch_size=32, buffer_size=1_000, warmup_steps=200,
                eval_every=500, eval_episodes=2, final_eval_episodes=2, hidden_sizes=(16,))
out = {"devices": jax.device_count()}
for n in (8, 6):
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


def run_with_devices(count: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_four_devices_match_one_device():
    one, four = run_with_devices(1), run_with_devices(4)
    assert one["devices"] == 1 and four["devices"] == 4
    assert four["spread_8"] == four["shards_8"] == 4  # the seeds really were spread out
    assert four["shards_6"] == 2  # 6 seeds come back in gcd(6, 4) shards, not replicated
    for n in (8, 6):  # 6 seeds do not divide 4 devices: padded to 8, the padding dropped
        assert len(four[f"final_{n}"]) == n
        np.testing.assert_allclose(four[f"final_{n}"], one[f"final_{n}"])
        np.testing.assert_allclose(four[f"w_{n}"], one[f"w_{n}"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(four["sweep"]).shape, (2, 6))
    np.testing.assert_allclose(four["sweep"], one["sweep"])
