"""What a long run shows while it trains: a tqdm bar with an ETA on a terminal, a plain
line per tenth of the run elsewhere (logs), or nothing. Fed on the host between the
compiled segments of a run (`train.run_in_segments`, `runner.train_resumable`); nothing
here runs inside a jitted program."""

import sys
import time

# A run expected to take longer than this is told it can be checkpointed and resumed.
LONG_RUN_S = 3600
MODES = ("bar", "lines", "off")

# The bar drawn now, if any: a signal handler ends its line before saying why the run
# stopped (see `end_line`).
_DRAWING: list = []


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """A run's progress in frames across all its `runs` (seeds, and a sweep's settings):
    `frames` each. `mode`: "bar" (tqdm,
    with its ETA), "lines" (a line on stdout as each tenth of the run ends) or "off".
    With `estimate`, an update also says how long the whole run should take (once, at
    the second update past `steady_from` frames, e.g. the warm-up without learning: the
    pace between the two), and names checkpointed segments where that is over an hour. The runner enters it once the
    run is compiled, and calls `update(frames_done)` after each segment."""

    def __init__(self, frames: int, runs: int = 1, mode: str = "bar", desc: str = "training",
                 estimate: bool = False, initial: int = 0, steady_from: int = 0):
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {MODES}, got {mode!r}")
        self.runs, self.mode, self.desc, self.estimate = runs, mode, desc, estimate
        self.total = frames * runs
        self.done = self.started_at = initial * runs
        self.steady_from, self.steady = steady_from * runs, None
        self.tenths = 10 * self.done // max(self.total, 1)
        self.start = None
        self.bar = None
        self.postfix = ""

    def __enter__(self):
        """Start the clock (once the run's programs are compiled) and draw the bar."""
        self.start, self.wall_start = time.perf_counter(), time.time()
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, unit="frame",
                            unit_scale=True, desc=self.desc, dynamic_ncols=True)
            _DRAWING.append(self)
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            _DRAWING.remove(self)
            self.bar.close()

    def set_postfix(self, **values) -> None:
        """Figures shown after the bar (or at the end of each line), e.g. a return."""
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())
        if self.bar is not None:
            self.bar.set_postfix(values, refresh=False)

    def update(self, frames: int) -> None:
        """Each run has trained `frames` frames."""
        self.done = done = frames * self.runs
        now = time.perf_counter()
        elapsed = now - self.start
        rate = (done - self.started_at) / max(elapsed, 1e-9)
        left = (self.total - done) / max(rate, 1e-9)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        elif self.mode == "lines" and 10 * done // max(self.total, 1) > self.tenths:
            self.tenths = 10 * done // max(self.total, 1)
            to_go = f", about {_duration(left)} to go" if done < self.total else ""
            extra = f", {self.postfix}" if self.postfix else ""
            print(f"{self.desc}: {100 * done / self.total:3.0f}% ({done:,} of "
                  f"{self.total:,} frames), {_duration(elapsed)} so far{to_go}{extra}",
                  flush=True)
        if self.estimate and done < self.total and done >= self.steady_from:
            if self.steady is None:
                self.steady = (now, done)
            elif self.steady[1] < done:
                pace = (done - self.steady[1]) / max(now - self.steady[0], 1e-9)
                self.say(self.estimate_line(elapsed + (self.total - done) / pace))
                self.estimate = False

    def estimate_line(self, whole_s: float) -> str:
        line = (f"at this pace the run takes about {_duration(whole_s)} "
                f"(ends near {time.strftime('%H:%M', time.localtime(self.wall_start + whole_s))})")
        if whole_s > LONG_RUN_S:
            line += (": over an hour, so a stop loses it all; with --segment-frames K "
                     "--out DIR it is checkpointed every K frames and resumes with "
                     "--resume")
        return line

    def say(self, line: str) -> None:
        """A line on stdout that leaves the bar whole."""
        if self.mode == "off":
            return
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)


def end_line() -> None:
    """For a signal handler: end the bar's line, so that what follows starts a line of its
    own (it writes to the terminal directly: no lock is taken)."""
    if _DRAWING:
        import os

        os.write(2, b"\n")
