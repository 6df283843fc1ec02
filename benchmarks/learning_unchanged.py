"""Final greedy returns of the default config (or `--overrides`) over 64 seeds, for two
checkouts of this project, to show an optimisation left learning unchanged.

    git worktree add /tmp/before <commit>   # the commit before the change
    python benchmarks/learning_unchanged.py /tmp/before .
    python benchmarks/learning_unchanged.py /tmp/before . --vmap

The per-seed final returns, and a digest of every metric and parameter, of both: as
`train_seeds` runs them, or with `--vmap` the program itself, `jax.jit(jax.vmap(
make_train(Config())))` on one CPU device (the GPU's way), which compares the training
program across commits whose CPU seed layout differs.
"""

import argparse

import numpy as np

from harness import child_env, run_python

PROBE = """
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
import jax, numpy as np
from purejaxdqn import Config, make_train, train_seeds
overrides = json.loads(sys.argv[4])
preset = overrides.pop("preset", None)
config = Config.preset(preset, **overrides) if preset else Config(**overrides)
if sys.argv[3] == "vmap":
    keys = jax.random.split(jax.random.key(0), int(sys.argv[2]))
    result = jax.jit(jax.vmap(make_train(config)))(keys)
else:
    result = train_seeds(config, int(sys.argv[2]), seed=0)
leaves = [np.asarray(x) for x in jax.tree.leaves((result.params, result.metrics))]
print(json.dumps({"final": np.asarray(result.metrics["final_eval_return"]).tolist(),
                  "digest": hashlib.sha256(b"".join(x.tobytes() for x in leaves)).hexdigest()}))
"""


def main():
    from purejaxdqn.stats import summarize

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--vmap", action="store_true")
    parser.add_argument("--overrides", default="{}",
                        help="Config fields as JSON (default: the default config), e.g. "
                             "'{\"distributional\": true, \"v_min\": 0.0}'; a \"preset\" "
                             "key starts from that preset")
    args = parser.parse_args()
    before, after, seeds = args.before, args.after, args.seeds
    env = child_env(devices=1) if args.vmap else None
    finals, digests = {}, {}
    for name, checkout in (("before", before), ("after", after)):
        done = run_python(["-c", PROBE, checkout, seeds, "vmap" if args.vmap else "seeds",
                           args.overrides], env=env)
        finals[name], digests[name] = np.array(done["final"]), done["digest"]
        s = summarize(finals[name])
        print(f"{name:6} ({checkout}): mean {s['mean']['value']:.2f} "
              f"[{s['mean']['ci_low']:.2f}, {s['mean']['ci_high']:.2f}], "
              f"IQM {s['iqm']['value']:.2f} [{s['iqm']['ci_low']:.2f}, {s['iqm']['ci_high']:.2f}]")
    same = np.array_equal(finals["before"], finals["after"])
    print(f"{seeds} seeds: per-seed final returns {'identical' if same else 'differ'}; "
          f"largest per-seed difference {np.abs(finals['before'] - finals['after']).max():.3g}; "
          f"every metric and parameter bit for bit "
          f"{'identical' if digests['before'] == digests['after'] else 'different'}")


if __name__ == "__main__":
    main()
