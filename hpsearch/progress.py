"""What a running search tells its user.

On a terminal: one live status line, redrawn at most five times a second::

    hpsearch  done 12/96  running 2  failed 1  pending 81  ETA 3m20s  best acc_test=0.9312

Elsewhere (a log file, a batch job's output): one plain line per state change::

    2026-11-23 09:12:01 run 3f2a9c0d1b7e #12 finished acc=0.93 [done 12, running 2, failed 1]
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    def __init__(self, total_hint: int, performance_key: str, ascending: bool,
                 stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.total_hint = total_hint
        self.performance_key = performance_key
        self.ascending = ascending
        self.done = self.failed = self.running = 0
        self.best: float | None = None
        self._started = time.monotonic()
        self._done_this_session = 0
        self._next_draw = 0.0

    # -- counts -------------------------------------------------------------------
    def set_counts(self, done: int, failed: int, running: int) -> None:
        self.done, self.failed, self.running = done, failed, running

    def offer_best(self, value: object) -> None:
        if not isinstance(value, float) or math.isnan(value):
            return
        if self.best is None or (value < self.best if self.ascending else value > self.best):
            self.best = value

    def _summary(self) -> str:
        total = max(self.total_hint, self.done + self.failed + self.running)
        pending = total - self.done - self.failed - self.running
        parts = [f"done {self.done}/{total}", f"running {self.running}",
                 f"failed {self.failed}", f"pending {pending}"]
        elapsed = time.monotonic() - self._started
        if self._done_this_session and pending + self.running > 0:
            eta = elapsed / self._done_this_session * (pending + self.running)
            parts.append(f"ETA {format_duration(eta)}")
        if self.best is not None:
            parts.append(f"best {self.performance_key}={self.best:.6g}")
        return "  ".join(parts)

    # -- output -------------------------------------------------------------------
    def event(self, text: str, counts_changed: bool = True, ended: bool = False) -> None:
        """A run changed state; ``text`` like ``run 3f2a #12 finished acc=0.9``."""
        if ended:
            self._done_this_session += 1
        if self.live:
            self.draw()
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        counts = f" [done {self.done}, running {self.running}, failed {self.failed}]" \
            if counts_changed else ""
        self.stream.write(f"{stamp} {text}{counts}\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line that must stay visible (start, stop, warnings)."""
        if self.live:
            self.stream.write("\r\x1b[2K")
        self.stream.write(f"hpsearch: {text}\n")
        self.stream.flush()
        if self.live:
            self.draw(force=True)

    def draw(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now < self._next_draw:
            return
        self._next_draw = now + 0.2
        self.stream.write("\r\x1b[2Khpsearch  " + self._summary())
        self.stream.flush()

    def finish(self) -> None:
        if self.live:
            self.draw(force=True)
            self.stream.write("\n")
        self.stream.flush()
