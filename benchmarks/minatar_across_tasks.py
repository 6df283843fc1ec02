"""DQN against PQN across the five MinAtar games: each trained by the CLI (16 seeds, one
budget for all), then `purejaxdqn compare` across the tasks (rliable's IQM, median, mean
and optimality gap of normalised scores with stratified bootstrap CIs, performance
profiles, probability of improvement).

    python benchmarks/minatar_across_tasks.py --num-frames 51200 --out runs/minatar

DQN: each game's `*-minatar-100k` preset (Seaquest, which has none, takes Breakout's);
PQN: `breakout-minatar-pqn` on each game. Runs already in `--out` are kept, so that an
interrupted table resumes where it stopped.
"""

import argparse
import subprocess
import sys
from pathlib import Path

GAMES = ["Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders"]


def dqn_preset(game: str) -> str:
    return f"{'breakout' if game == 'Seaquest' else game.lower()}-minatar-100k"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-frames", type=int, default=51_200)
    parser.add_argument("--num-seeds", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/minatar"))
    parser.add_argument("--table", type=Path, default=None,
                        help="where compare writes its figures and table (default: OUT/compare)")
    args = parser.parse_args()

    labelled = []
    for game in GAMES:
        for label, preset in (("dqn", dqn_preset(game)), ("pqn", "breakout-minatar-pqn")):
            run = args.out / label / game
            if not (run / "summary.json").exists():
                command = [sys.executable, "-m", "purejaxdqn.cli", "train", "--preset", preset,
                           "--env-name", f"{game}-MinAtar", "--num-frames",
                           str(args.num_frames), "--num-seeds", str(args.num_seeds), "--seed",
                           str(args.seed), "--eval-every", "0", "--out", str(run)]
                print("$", " ".join(command[1:]), flush=True)
                subprocess.run(command, check=True)
            labelled.append(f"{label}={run}")
    table = args.table or args.out / "compare"
    command = [sys.executable, "-m", "purejaxdqn.cli", "compare", *labelled, "--out",
               str(table)]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
