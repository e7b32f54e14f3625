"""What a running search tells its user.

On a terminal: one live status line, redrawn at most five times a second::

    hpsearch  done 12/96  running 2  queued 3  failed 1  pending 78  ETA 3m20s  best acc=0.9312

(``/~96`` when the total is an estimate: conditions may add or merge configurations; no
total and no pending count while the total is unknown). The ETA comes from the runs that
ended in this session (:class:`Eta`): set when a run ends, counting down in between, never
shown once the search stops (a fail-fast stop, Ctrl-C, SIGTERM).
Elsewhere (a log file, a batch job's output): one plain line per state change::

    2026-11-23 09:12:01 run 3f2a9c0d1b7e #12 finished acc=0.93 [done 12, running 2, failed 1]

(``queued 3`` after ``running`` while runs wait in a scheduler's queue: there a run is logged
``queued`` when submitted and ``started`` when its ``started_at`` appears.)

Lines that must stay (start, warnings, a failure's reason with the end of its stderr) are
printed above the live line with :meth:`Progress.message`. What a run wrote reaches the
terminal through :func:`printable`: its control characters are shown, not obeyed.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from hpsearch.runs.files import printable


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class Eta:
    """The time left, from the durations of the attempts that ended: ``mean duration x
    runs left / runs running at once`` (the most seen running at once), set when a run
    ends and counting down until the next end -- it never grows only because time passes
    with nothing ending. Below a second it reads ``soon``."""

    durations: list[float] = field(default_factory=list)
    slots: int = 1
    seconds: float | None = None  # as of ``since``
    since: float = 0.0

    def ended(self, duration: float | None, left: int, now: float) -> None:
        """A run ended after ``duration`` seconds (None: unknown); ``left`` runs remain."""
        if duration is not None and math.isfinite(duration) and duration >= 0:
            self.durations.append(duration)
        if self.durations:
            mean = sum(self.durations) / len(self.durations)
            self.seconds, self.since = mean * left / max(1, self.slots), now

    def text(self, now: float) -> str | None:
        """``3m20s``, ``soon``, or None while no run with a known duration ended."""
        if self.seconds is None:
            return None
        left = self.seconds - (now - self.since)
        return format_duration(left) if left >= 1 else "soon"


@dataclass
class Counts:
    """Runs of the search by what is known of them now."""

    finished: int = 0
    failed: int = 0  # for good: no retry left
    pruned: int = 0
    running: int = 0  # includes queued
    queued: int = 0
    total: int | None = None  # None: unknown (a generator that has not said how many)
    estimate: bool = False

    @property
    def pending(self) -> int:
        if self.total is None:
            return 0
        return max(0, self.total - self.finished - self.failed - self.pruned - self.running)


class Progress:
    """What a search tells its user while it runs: the counts, the best value, the ETA, and
    the lines about runs.

    The driver sets the :class:`Counts` (:meth:`set_counts`) and says what happens:
    :meth:`event` for a run that changed state (on a terminal the live line is redrawn, else
    one timestamped line with the counts), :meth:`message` and :meth:`detail` for lines that
    must stay, :meth:`offer_best` for a finished run's objective. :meth:`stop` drops the ETA
    once the search stops; :meth:`finish` writes the final status line, once. ``live``
    (default: whether ``stream`` is a terminal) chooses the live line over plain lines; a
    served search writes plain lines to its log. Everything a run wrote goes through
    :func:`printable`.
    """

    def __init__(self, performance_key: str, ascending: bool, stream: TextIO | None = None,
                 live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.performance_key = performance_key
        self.ascending = ascending
        self.counts = Counts()
        self.best: float | None = None
        self.eta = Eta()
        self._stopped = False
        self._next_draw = 0.0
        self._finished = False

    # -- counts -------------------------------------------------------------------
    def set_counts(self, counts: Counts) -> None:
        self.counts = counts
        self.eta.slots = max(self.eta.slots, counts.running - counts.queued)

    def stop(self) -> None:
        """The search stops (a fail-fast stop, Ctrl-C, SIGTERM): no more ETA."""
        self._stopped = True

    def offer_best(self, value: object) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            return
        if self.best is None or (value < self.best if self.ascending else value > self.best):
            self.best = float(value)

    def summary(self) -> str:
        c = self.counts
        total = None if c.total is None else max(
            c.total, c.finished + c.failed + c.pruned + c.running)
        approx = "~" if c.estimate else ""
        parts = [f"done {c.finished}" + (f"/{approx}{total}" if total else ""),
                 f"running {c.running - c.queued}"]
        if c.queued:
            parts.append(f"queued {c.queued}")
        parts.append(f"failed {c.failed}")
        if c.pruned:
            parts.append(f"pruned {c.pruned}")
        if total:
            parts.append(f"pending {approx}{c.pending}")
        eta = self.eta.text(time.monotonic())
        if eta is not None and c.pending + c.running > 0 and not self._stopped:
            parts.append(f"ETA {approx}{eta}")
        if self.best is not None:
            parts.append(f"best {self.performance_key}={self.best:.6g}")
        return "  ".join(parts)

    # -- output -------------------------------------------------------------------
    def event(self, text: str, counts_changed: bool = True, ended: bool = False,
              duration: float | None = None) -> None:
        """A run changed state; ``text`` like ``run 3f2a #12 finished acc=0.9``; ``ended``:
        an attempt ended, after ``duration`` seconds when known (the counts are set)."""
        if ended:
            c = self.counts
            self.eta.ended(duration, c.pending + c.running, time.monotonic())
        if self.live:
            self.draw()
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        c = self.counts
        queued = f", queued {c.queued}" if c.queued else ""
        counts = (f" [done {c.finished}, running {c.running - c.queued}{queued}, failed "
                  f"{c.failed}]" if counts_changed else "")
        self.stream.write(printable(f"{stamp} {text}{counts}") + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line that must stay visible (start, stop, warnings)."""
        if self.live and not self._finished:
            self.stream.write("\r\x1b[2K")
        self.stream.write(f"hpsearch: {printable(text)}\n")
        self.stream.flush()
        if self.live and not self._finished:
            self.draw(force=True)

    def detail(self, lines: list[str]) -> None:
        """Indented lines under the last message (e.g. the end of a failed run's stderr)."""
        if not lines:
            return
        if self.live and not self._finished:
            self.stream.write("\r\x1b[2K")
        self.stream.write("".join(f"    | {printable(line)}\n" for line in lines))
        self.stream.flush()
        if self.live and not self._finished:
            self.draw(force=True)

    def draw(self, force: bool = False) -> None:
        if not self.live or self._finished:
            return
        now = time.monotonic()
        if not force and now < self._next_draw:
            return
        self._next_draw = now + 0.2
        self.stream.write("\r\x1b[2Khpsearch  " + self.summary())
        self.stream.flush()

    def finish(self) -> None:
        """The final status line (no ETA), once, ending with a newline; later messages are
        plain."""
        if self._finished:
            return
        self._stopped = True
        if self.live:
            self.stream.write("\r\x1b[2Khpsearch  " + self.summary() + "\n")
        else:
            self.stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {self.summary()}\n")
        self.stream.flush()
        self._finished = True
