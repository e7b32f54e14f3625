"""The external backend: runs are points handed out over HTTP, results come back as reports.

The driver ``submit``\\ s runs as for any backend; here they join the pool of ``new`` points
(kept ``ahead`` deep: ``room()`` is what is missing, so the strategy is asked for more as
soon as points are handed out). ``lease`` (an HTTP thread) hands out pool points: it writes
the run's ``started_at`` (``job=lease:<worker>``) before the answer leaves, so a point is
never handed out twice, even across a ``kill -9``. ``report`` writes the run's summary and
``exit_code`` (:mod:`.reports`) and the next ``poll`` says the run ended; the driver judges
and journals it as any run. A lease not reported within ``lease_s`` seconds ends as
``lost`` (the driver journals it and submits the run again, no attempt counted), and the
point is ``new`` again; a report that comes for it meanwhile is kept and written when it is
back. A restarted service ``reattach``\\ es: a run whose report was written ended, one
with ``started_at`` is leased still (for what is left of its lease), the rest are new.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from hpsearch.backends.base import Backend, Ended
from hpsearch.runs.files import read_start, write_start
from hpsearch.runs.model import Run
from hpsearch.runs.summary import SummaryFormat
from hpsearch.service.api_error import ApiError
from hpsearch.service.points import Point, PointBook, Report
from hpsearch.service.reports import ended_of, write_report

#: the job id the journal holds for a run submitted to this backend
EXTERNAL_JOB = "external"
#: how ``started_at`` names the worker that holds a point's lease
LEASE_PREFIX = "lease:"
#: the longest a report waits for the driver while points are out
BATCH_S = 0.02
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/+-]")


def worker_name(text: str) -> str:
    """A worker's name as it may stand in a run's files (one line, at most 100 chars)."""
    return _UNSAFE.sub("_", text)[:100] or "?"


class ExternalBackend(Backend):
    """Points of one search for HTTP workers; ``book`` is shared with the strategy."""

    name = "external"
    runs_commands = False  # a worker elsewhere computes the point

    def __init__(self, book: PointBook, fmt: SummaryFormat, ahead: int,
                 lease_s: float) -> None:
        self.book = book
        self.fmt = fmt
        self.ahead = ahead
        self.lease_s = lease_s
        self._pool: dict[int, None] = {}  # trials, in the order they came
        self._returning: set[int] = set()
        self._leased: set[int] = set()
        self._ended: list[Ended] = []
        self._woken = False

    # -- the driver's side ----------------------------------------------------------
    def room(self) -> int:
        with self.book.lock:
            return max(0, self.ahead - len(self._pool)) + len(self._returning)

    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        with self.book.lock:
            for run in runs:
                point = self.book.points[run.trial]
                self._returning.discard(run.trial)
                point.run = run
                if point.held is not None:
                    self._complete(point, point.held)
                else:
                    self.book.move(point, "pool", "new")
                    self._pool[run.trial] = None
        return {run.run_id: EXTERNAL_JOB for run in runs}

    def poll(self) -> list[Ended]:
        now = time.monotonic()
        with self.book.lock:
            ended, self._ended = self._ended, []
            for trial in [t for t in self._leased if now >= self._deadline(t)]:
                point = self.book.points[trial]
                assert point.run is not None
                self._leased.discard(trial)
                ended.append(Ended(point.run.run_id, None, lost=True, reason=(
                    f"lease expired: {point.worker} sent no report within {self.lease_s:g}s")))
                self.book.move(point, "returning", "new")
                point.deadline = None
                self._returning.add(trial)
        return ended

    def wait(self, timeout: float) -> None:
        """Until a lease took a point from the pool, or ``timeout``; while points are out
        (or reports wait) at most :data:`BATCH_S`: reports are recorded in batches, not
        one thread switch each (their files are written before they are answered)."""
        with self.book.changed:
            if self._woken:
                self._woken = False
                return
            if self._ended or self._leased:
                timeout = min(timeout, BATCH_S)
            if self._leased:
                first = min(self._deadline(t) for t in self._leased)
                timeout = min(timeout, max(0.0, first - time.monotonic()))
            self.book.changed.wait(timeout)
            self._woken = False

    def resolve(self, key: str, runs: Sequence[Run]) -> dict[str, str]:
        """The runs of an unanswered launch that were handed out (they have
        ``started_at`` of that launch); the others are submitted again."""
        started = {}
        for run in runs:
            start = read_start(run.run_dir)
            if start is not None and start.launch == key and start.job.startswith(LEASE_PREFIX):
                started[run.run_id] = EXTERNAL_JOB
        return started

    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        ended = []
        now_wall, now = time.time(), time.monotonic()
        with self.book.lock:
            for run, _job in jobs.values():
                point = self.book.points[run.trial]
                point.run = run
                done = ended_of(run)
                start = read_start(run.run_dir)
                if done is not None:
                    point.place = "reported"
                    ended.append(done)
                elif start is not None and start.launch == run.launch:
                    left = self.lease_s - max(0.0, now_wall - start.started_at)
                    self.book.move(point, "lease", "running")
                    point.worker = start.job.removeprefix(LEASE_PREFIX)
                    point.start, point.deadline = start, now + max(0.0, left)
                    self._leased.add(run.trial)
                else:
                    self.book.move(point, "pool", "new")
                    self._pool[run.trial] = None
        return ended

    def stop(self, run_ids: Sequence[str], grace: float) -> None:
        """Served points report no intermediate results, so no pruner ever stops one; and
        a worker elsewhere cannot be signalled: nothing to do."""

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        with self.book.lock:
            for point in self.book.points.values():
                if point.place in ("pool", "lease") and (
                        run_ids is None or point.run_id in run_ids):
                    self.book.move(point, "proposed", "new")
                    point.run = None
                    self._pool.pop(point.trial, None)
                    self._leased.discard(point.trial)

    def run_elsewhere(self, runs: Sequence[Run]) -> None:
        """These runs went to the service's own backend (:mod:`.split`)."""
        with self.book.lock:
            for run in runs:
                point = self.book.points[run.trial]
                self.book.move(point, "elsewhere", "running")

    def take_wake(self) -> bool:
        """Whether something happened since the last ``wait`` (and forget it)."""
        with self.book.lock:
            woken, self._woken = self._woken, False
            return woken

    def wake(self) -> None:
        """Make the driver's ``wait`` return now (e.g. to stop it)."""
        with self.book.lock:
            self._wake()

    def queued(self) -> int:
        with self.book.lock:
            return len(self._pool)

    # -- the HTTP side --------------------------------------------------------------
    def lease(self, limit: int | None, worker: str) -> list[dict[str, Any]]:
        """Hand out up to ``limit`` new points (all with None), oldest first."""
        worker = worker_name(worker)
        out = []
        with self.book.lock:
            deadline = time.monotonic() + self.lease_s
            for trial in list(self._pool)[:limit]:
                point = self.book.points[trial]
                assert point.run is not None
                point.start = write_start(point.run.run_dir, point.run.launch,
                                          LEASE_PREFIX + worker, worker)
                del self._pool[trial]
                self.book.move(point, "lease", "running")
                point.worker, point.deadline = worker, deadline
                self._leased.add(trial)
                out.append(point.view())
            if out:  # the strategy is asked for what is missing now (waiting for half
                self._wake()  # the pool to go, 8 workers emptied 16 points before it came)
        return out

    def report(self, trial: int, report: Report) -> dict[str, Any]:
        """Take a report on point ``trial`` (ApiError 404/409 when it cannot be taken)."""
        with self.book.lock:
            point = self.book.points.get(trial)
            if point is None:
                raise ApiError(404, f"there is no point {trial}; the points are 0 to "
                               f"{len(self.book.points) - 1}")
            if point.place in ("reported", "ended") or point.held is not None:
                raise ApiError(409, f"point {trial} was already reported ({point.status}); "
                               "nothing was recorded")
            if point.place == "elsewhere":
                raise ApiError(409, f"point {trial} runs on the service's own backend; its "
                               "result comes from there")
            if point.place in ("proposed", "returning"):
                point.held = report  # written when the driver submits it again
                self._show(point, point.place, report)
            else:
                self._complete(point, report)
            return point.view()

    # -- both -----------------------------------------------------------------------
    def _complete(self, point: Point, report: Report) -> None:
        """Under the lock: write the report into the point's run and queue its end."""
        run = point.run
        assert run is not None
        start = point.start if point.place == "lease" else write_start(
            run.run_dir, run.launch, LEASE_PREFIX + report.worker, report.worker)
        assert start is not None
        done = write_report(run, report, self.fmt, start)
        self._pool.pop(point.trial, None)
        self._leased.discard(point.trial)
        point.held, point.deadline = None, None
        self._show(point, "reported", report)
        self._ended.append(done)

    def _deadline(self, trial: int) -> float:
        deadline = self.book.points[trial].deadline
        assert deadline is not None
        return deadline

    def _show(self, point: Point, place: str, report: Report) -> None:
        status = "failed" if report.failure is not None else "finished"
        self.book.move(point, place, status, report.loss)

    def _wake(self) -> None:
        """Under the lock: the driver's ``wait`` returns."""
        self._woken = True
        self.book.changed.notify_all()
