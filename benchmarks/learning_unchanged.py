"""Final greedy returns of the default config over 64 seeds, for two checkouts of this
project, to show an optimisation left learning unchanged.

    git worktree add /tmp/before 4256168   # the commit before the optimisation
    python benchmarks/learning_unchanged.py /tmp/before .
"""

import json
import subprocess
import sys

import numpy as np

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from purejaxdqn import Config, train_seeds
result = train_seeds(Config(), int(sys.argv[2]), seed=0)
print(json.dumps(np.asarray(result.metrics["final_eval_return"]).tolist()))
"""


def main():
    from purejaxdqn.stats import summarize

    before, after, seeds = sys.argv[1], sys.argv[2], 64
    finals = {}
    for name, checkout in (("before", before), ("after", after)):
        done = subprocess.run([sys.executable, "-c", PROBE, checkout, str(seeds)],
                              capture_output=True, text=True, check=True)
        finals[name] = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
        s = summarize(finals[name])
        print(f"{name:6} ({checkout}): mean {s['mean']['value']:.2f} "
              f"[{s['mean']['ci_low']:.2f}, {s['mean']['ci_high']:.2f}], "
              f"IQM {s['iqm']['value']:.2f} [{s['iqm']['ci_low']:.2f}, {s['iqm']['ci_high']:.2f}]")
    same = np.array_equal(finals["before"], finals["after"])
    print(f"{seeds} seeds: per-seed final returns {'identical' if same else 'differ'}; "
          f"largest per-seed difference {np.abs(finals['before'] - finals['after']).max():.3g}")


if __name__ == "__main__":
    main()
