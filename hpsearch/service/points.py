"""The points of one served search as its HTTP clients see them, shared between threads.

A point is a trial of the search: its ``id`` is the trial number, its ``params`` the trial's
configuration. What clients see::

    {"id": 7, "params": {"lr": 0.01}, "status": "running", "loss": null,
     "run_id": "000007-3f2a9c0d", "resume_from": null}

``resume_from`` names the point a point continues, for hyperband and bohb (a configuration
promoted to a larger budget) and pbt (a segment continuing a member's checkpoint): its ``id``
and its run's output directory (``out_dir``, what ``HPSEARCH_RESUME_FROM`` holds for a run
the service runs itself), e.g. ``{"id": 3, "out_dir": "/abs/out/runs/000003-5be1f0a2/out"}``;
null for a point that starts afresh.

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
A point's ``status`` and ``loss`` change only through :meth:`PointBook.move`, which keeps
the counts by status and the best point up to date: a status call costs the same at 10
points and at 100 000.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from hpsearch.runs.files import StartRecord
from hpsearch.runs.model import Run, run_dirs

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
    start: StartRecord | None = None  # the started_at of its lease
    deadline: float | None = None
    held: Report | None = None  # a report that came while the point was not submitted
    resume_from: dict[str, Any] | None = None  # {"id": trial, "out_dir": its output dir}

    def view(self) -> dict[str, Any]:
        return {"id": self.trial, "params": self.params, "status": self.status,
                "loss": self.loss, "run_id": self.run_id, "resume_from": self.resume_from}


class PointBook:
    """Every point of one search (in ``out_dir``), by trial; ``minimize`` orders ``best``."""

    def __init__(self, minimize: bool, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.points: dict[int, Point] = {}
        self.by_run: dict[str, int] = {}
        self.minimize = minimize
        self._counts = dict.fromkeys(POINT_STATUSES, 0)
        self._best: Point | None = None
        self._best_known = True  # False: _best may be out of date, found again when asked

    def move(self, point: Point, place: str, status: str, loss: float | None = None) -> None:
        """Under the lock: ``point`` goes to ``place`` and shows ``status`` (and ``loss``)."""
        before = self._rank(point)
        self._counts[point.status] -= 1
        self._counts[status] += 1
        point.place, point.status, point.loss = place, status, loss
        after = self._rank(point)
        if point is self._best:
            if after is None or before is None or after > before:  # worse, or out of it
                self._best_known = False
        elif after is not None and self._best_known and (
                self._best is None or after < self._rank(self._best)):
            self._best = point

    def _rank(self, point: Point) -> tuple[float, int] | None:
        """What orders the best point (ties: the earliest trial); None: not a candidate."""
        if point.status != "finished" or point.loss is None or math.isnan(point.loss):
            return None
        return (point.loss if self.minimize else -point.loss, point.trial)

    # -- from the strategy (the driver's thread) -----------------------------------
    def propose(self, trial: int, run_id: str, params: dict[str, Any],
                continues: int | None = None) -> None:
        """A new point; ``continues``: the trial whose run it continues (its lineage's)."""
        with self.lock:
            if trial not in self.points:
                parent = None if continues is None else self.points.get(continues)
                resume_from = None if parent is None else {
                    "id": parent.trial, "out_dir": str(run_dirs(self.out_dir, parent.run_id)[1])}
                self.points[trial] = Point(trial, run_id, dict(params), resume_from=resume_from)
                self.by_run[run_id] = trial
                self._counts["new"] += 1

    def forget(self, trials: set[int]) -> None:
        """Withdrawn proposals (a changed grid dropped them before they ran)."""
        with self.lock:
            for trial in trials:
                point = self.points.get(trial)
                if point is not None and point.place == "proposed":
                    self.move(point, "proposed", "new")  # out of the best (a held report)
                    self._counts["new"] -= 1
                    del self.points[trial], self.by_run[point.run_id]

    def end(self, trial: int, status: str, loss: float | None) -> None:
        """The driver's verdict: ``finished`` with the loss, or failed."""
        with self.lock:
            point = self.points.get(trial)
            if point is None:
                return
            finished = status == "finished"
            self.move(point, "ended", "finished" if finished else "failed",
                      loss if finished else None)
            point.run = point.held = None
            point.deadline = None

    # -- views (the HTTP threads) --------------------------------------------------
    def list(self, status: str | None, limit: int | None) -> list[dict[str, Any]]:
        with self.lock:
            chosen = [p.view() for p in sorted(self.points.values(), key=lambda p: p.trial)
                      if status is None or p.status == status]
        return chosen if limit is None else chosen[:limit]

    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self._counts)

    def best(self) -> dict[str, Any] | None:
        with self.lock:
            if not self._best_known:
                ranked = [p for p in self.points.values() if self._rank(p) is not None]
                self._best = min(ranked, key=self._rank, default=None)  # type: ignore[arg-type]
                self._best_known = True
            return None if self._best is None else self._best.view()
