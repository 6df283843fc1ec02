"""What a user sees of a long run on a terminal: `purejaxdqn train ARGS` on a
pseudo-terminal 100 columns wide, timed from the command's start: when the bar shows (the
programs compiled), when it first moves, the pace estimate, and the summary.

    python benchmarks/progress_on_terminal.py --num-seeds 256 --out DIR \
        > benchmarks/results/progress-on-terminal-256-seeds-cpu-2cores-x86_64.txt
"""

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time


def main():
    argv = [sys.executable, "-m", "purejaxdqn.cli", "train", *sys.argv[1:]]
    terminal, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    started = time.monotonic()
    process = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    seen = []  # (seconds since the start, a line or a redraw of the bar)
    while select.select([terminal], [], [], 3600)[0]:
        try:
            chunk = os.read(terminal, 65536).decode(errors="replace")
        except OSError:  # the command has ended
            break
        now = time.monotonic() - started
        seen += [(now, piece) for piece in re.split(r"[\r\n]+", chunk) if piece.strip()]
    process.wait()
    bars = [(t, line) for t, line in seen if re.search(r"\d+%\|", line)]
    moved = next((t, line) for t, line in bars if not re.search(r" 0%\|", line))
    print("$ purejaxdqn train " + " ".join(sys.argv[1:]) + "   (on a 100-column terminal)")
    print(f"{bars[0][0]:6.1f} s  the bar shows: {bars[0][1].strip()}")
    print(f"{moved[0]:6.1f} s  it first moves, {moved[0] - bars[0][0]:.1f} s later: "
          f"{moved[1].strip()}")
    for t, line in seen:
        if "at this pace" in line:
            print(f"{t:6.1f} s  {line.strip()}")
    half = bars[len(bars) // 2]
    print(f"{half[0]:6.1f} s  half way: {half[1].strip()}")
    print(f"{seen[-1][0]:6.1f} s  exit status {process.returncode}; the lines printed:")
    print("\n".join("          " + line for _, line in seen if not re.search(r"%\|", line)))


if __name__ == "__main__":
    main()
