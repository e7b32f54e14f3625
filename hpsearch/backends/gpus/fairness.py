"""No starvation of runs of several GPUs: a pure policy, fed run ids and a clock.

A run of N > 1 GPUs starts only when N GPUs each admit it at once
(:meth:`~hpsearch.backends.gpus.admission.GpuAdmission.choose_many`), so runs of one GPU could
keep taking the GPUs it waits for, one at a time, forever. The rule::

    once a large run has waited longer than the median duration of the runs started
    meanwhile, smaller runs stop taking the GPUs it needs until it starts

The backend tells :class:`Fairness` what happened (``refused``: a run of several GPUs did not
fit when offered; ``started``; ``ended``) and asks :meth:`Fairness.starving`: the run that waited
longest, once its wait is longer than the median duration of the runs that started after it
began waiting and have ended. The backend then :meth:`~Fairness.hold` s N GPUs for it; other
runs are not placed on :meth:`~Fairness.blocked` GPUs until it starts (or is
:meth:`~Fairness.forget` -ten). One run holds GPUs at a time.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Fairness:
    """Who waits for several GPUs, and which GPUs the longest waiter holds."""

    #: run id -> (when it was first refused, how many GPUs it needs)
    waiting: dict[str, tuple[float, int]] = field(default_factory=dict)
    #: the run holding GPUs, and those GPUs
    holder: str | None = None
    held: tuple[int, ...] = ()
    _started: dict[str, float] = field(default_factory=dict)  # running: run id -> start
    _ended: list[tuple[float, float]] = field(default_factory=list)  # (start, duration)

    def refused(self, run_id: str, gpus: int, now: float) -> None:
        """A run of ``gpus`` GPUs was offered and did not fit (only runs of several count)."""
        if gpus > 1:
            self.waiting.setdefault(run_id, (now, gpus))

    def started(self, run_id: str, now: float) -> None:
        self.forget(run_id)
        self._started[run_id] = now

    def ended(self, run_id: str, now: float) -> None:
        start = self._started.pop(run_id, None)
        if start is not None and self.waiting:
            self._ended.append((start, now - start))
        oldest = min((since for since, _ in self.waiting.values()), default=None)
        # only runs started since a waiter began waiting count
        self._ended = [] if oldest is None else [e for e in self._ended if e[0] >= oldest]

    def forget(self, run_id: str) -> None:
        """The run no longer waits (it started, or it is no longer offered)."""
        self.waiting.pop(run_id, None)
        if self.holder == run_id:
            self.holder, self.held = None, ()

    def starving(self, now: float) -> tuple[str, int] | None:
        """(run id, GPUs it needs) of the longest waiter whose wait is longer than the median
        duration of the runs started since it began waiting; None while no run is."""
        for run_id, (since, gpus) in sorted(self.waiting.items(), key=lambda kv: kv[1][0]):
            durations = [d for start, d in self._ended if start >= since]
            if durations and now - since > statistics.median(durations):
                return run_id, gpus
        return None

    def hold(self, run_id: str, gpus: list[int]) -> None:
        """``gpus`` are kept for ``run_id`` until it starts."""
        self.holder, self.held = run_id, tuple(gpus)

    def blocked(self, run_id: str | None) -> tuple[int, ...]:
        """The GPUs ``run_id`` (None: any run) may not take now: those another run holds."""
        return self.held if self.holder is not None and self.holder != run_id else ()
