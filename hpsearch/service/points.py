"""The points of one served search as its HTTP clients see them, shared between threads.

A point is a trial of the search: its ``id`` is the trial number, its ``params`` the trial's
configuration. What clients see::

    {"id": 7, "params": {"lr": 0.01}, "status": "running", "loss": null,
     "run_id": "000007-3f2a9c0d"}

``status`` is ``new`` (proposed, not handed out: in the pool, or about to be), ``running``
(leased to a worker, or run by the service's own backend), ``finished`` (``loss`` is the
first objective's value) or ``failed``. Where a point is, for the service, is its ``place``:

==========  =====================================================  ==============
place       meaning                                                status shown
==========  =====================================================  ==============
proposed    journaled; the driver has not submitted it (yet)       new
pool        submitted to the external backend, not handed out      new
lease       handed out; ``deadline`` is when its lease expires     running
elsewhere   submitted to the service's own backend (local, Slurm)  running
returning   its lease expired; the driver journals it ``lost``     new
reported    a report was written; the driver has not judged it     the report's
ended       the driver told the strategy how it ended              finished/failed
==========  =====================================================  ==============

The driver's thread changes places through the strategy (:mod:`.observed`) and the
backend's ``submit``/``poll``; the HTTP threads through the backend's ``lease``/``report``.
Everything goes through :attr:`PointBook.lock`; :attr:`PointBook.changed` wakes the driver.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Literal, get_args

from hpsearch.backends.base import Run

#: the statuses a client sees and can ask for
PointStatus = Literal["new", "running", "finished", "failed"]
POINT_STATUSES: tuple[str, ...] = get_args(PointStatus)


@dataclass
class Report:
    """What a worker reported: metrics (None for a failure) or the failure's message."""

    metrics: dict[str, Any] | None
    failure: str | None
    worker: str
    loss: float | None


@dataclass
class Point:
    trial: int
    run_id: str
    params: dict[str, Any]
    place: str = "proposed"
    status: str = "new"
    loss: float | None = None
    run: Run | None = None
    worker: str = ""
    deadline: float | None = None
    held: Report | None = None  # a report that came while the point was not submitted

    def view(self) -> dict[str, Any]:
        return {"id": self.trial, "params": self.params, "status": self.status,
                "loss": self.loss, "run_id": self.run_id}


class PointBook:
    """Every point of one search, by trial; ``minimize`` orders ``best``."""

    def __init__(self, minimize: bool) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.points: dict[int, Point] = {}
        self.by_run: dict[str, int] = {}
        self.minimize = minimize

    # -- from the strategy (the driver's thread) -----------------------------------
    def propose(self, trial: int, run_id: str, params: dict[str, Any]) -> None:
        with self.lock:
            if trial not in self.points:
                self.points[trial] = Point(trial, run_id, dict(params))
                self.by_run[run_id] = trial

    def forget(self, trials: set[int]) -> None:
        """Withdrawn proposals (a changed grid dropped them before they ran)."""
        with self.lock:
            for trial in trials:
                point = self.points.get(trial)
                if point is not None and point.place == "proposed":
                    del self.points[trial], self.by_run[point.run_id]

    def end(self, trial: int, status: str, loss: float | None) -> None:
        """The driver's verdict: ``finished`` with the loss, or failed."""
        with self.lock:
            point = self.points.get(trial)
            if point is None:
                return
            point.place = "ended"
            point.status = "finished" if status == "finished" else "failed"
            point.loss = loss if point.status == "finished" else None
            point.run = point.held = None
            point.deadline = None

    # -- views (the HTTP threads) --------------------------------------------------
    def list(self, status: str | None, limit: int | None) -> list[dict[str, Any]]:
        with self.lock:
            chosen = [p.view() for p in sorted(self.points.values(), key=lambda p: p.trial)
                      if status is None or p.status == status]
        return chosen if limit is None else chosen[:limit]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(POINT_STATUSES, 0)
        with self.lock:
            for point in self.points.values():
                counts[point.status] += 1
        return counts

    def best(self) -> dict[str, Any] | None:
        with self.lock:
            done = [p for p in self.points.values() if p.status == "finished"
                    and p.loss is not None and not math.isnan(p.loss)]
            if not done:
                return None
            if self.minimize:  # ties: the earliest trial
                return min(done, key=lambda p: (p.loss, p.trial)).view()
            return max(done, key=lambda p: (p.loss, -p.trial)).view()
