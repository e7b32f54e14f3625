"""Job arrays and their throttles, and submitting one with retries.

**At most ``--num_jobs`` jobs at once, across arrays.** Each array gets a throttle (Slurm
``%N``, LSF ``%N``); an array with ``u`` runs not yet ended and throttle ``t`` runs at most
``min(u, t x per job)`` of them, so :class:`Arrays` keeps the sum of those under ``num_jobs x
per job``: a new array's throttle is what is left (no new array while nothing is left), and
when older arrays drain, the throttle of a waiting one is raised (:meth:`Arrays.raise_throttle`,
in a poll that made no query: one scheduler call per poll at most).

**Submissions are idempotent.** The launch key is in the array's job name. When a submission
fails in a way that leaves open whether the array was queued (no answer in time, ``Socket
timed out``), the scheduler is asked once for a job of that name before submitting again
(:class:`Submitter`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hpsearch.backends.base import BackendError
from hpsearch.backends.cluster.scheduler import (
    Calls,
    QueryFailed,
    Scheduler,
    SubmitRefused,
    SubmitUnclear,
)


@dataclass
class Array:
    """One watched array: its throttle, the runs one of its jobs runs at once, its runs."""

    throttle: int
    per: int = 1  # runs one job of the array runs at once (--runs_per_job)
    run_ids: set[str] = field(default_factory=set)


class Arrays:
    """The arrays of the watched runs, in submission order, and the cap on them."""

    def __init__(self, num_jobs: int, per_job: int) -> None:
        #: jobs at once across arrays (--num_jobs)
        self.num_jobs = num_jobs
        #: runs one job runs at once: --runs_per_job (packed), else 1
        self.per_job = per_job
        self.by_id: dict[str, Array] = {}
        #: lowered to the runs queued when the scheduler refused a submission for a limit
        self.queue_cap: int | None = None

    def add(self, array_id: str, throttle: int) -> None:
        """A new array, submitted with ``throttle``."""
        self.by_id[array_id] = Array(throttle, self.per_job)

    def add_run(self, array_id: str, run_id: str, packed: bool) -> None:
        """Count ``run_id`` in its array (one a previous driver submitted: at ``num_jobs``)."""
        per = self.per_job if packed else 1
        self.by_id.setdefault(array_id, Array(self.num_jobs, per)).run_ids.add(run_id)

    def discard_run(self, array_id: str, run_id: str) -> None:
        """The run is no longer watched; an array left without runs is forgotten."""
        array = self.by_id.get(array_id)
        if array is not None:
            array.run_ids.discard(run_id)
            if not array.run_ids:
                del self.by_id[array_id]

    def holds_only(self, array_id: str, run_ids: set[str]) -> bool:
        """Whether every run of the array is among ``run_ids``."""
        return self.by_id[array_id].run_ids <= run_ids

    def in_use(self) -> int:
        """The most runs that may be running now: ``sum(min(unended, throttle x per job))``."""
        return sum(min(len(a.run_ids), a.throttle * a.per) for a in self.by_id.values())

    def free_slots(self) -> int:
        """Runs that could start at once now, beyond those that may be running, in whole
        jobs: with ``--runs_per_job N`` a multiple of N (a launch of fewer runs than a job
        holds would pay a job's start -- its wait in the queue, its zygote's import -- for
        each of them, and hold a job's place for one run)."""
        free = max(0, self.num_jobs * self.per_job - self.in_use())
        return free - free % self.per_job

    def room(self, limits: tuple[int, int], watched: int) -> int:
        """How many runs the next array may hold: none while ``num_jobs`` jobs may be
        running; else up to the max array size and the job-count limit (``limits``, or a
        submit limit the scheduler enforced) minus the ``watched`` runs queued now."""
        if self.free_slots() == 0:
            return 0
        per_array, max_jobs = limits
        cap = max_jobs if self.queue_cap is None else min(max_jobs, self.queue_cap)
        return max(0, min(per_array * self.per_job, cap * self.per_job - watched))

    def new_throttle(self) -> int:
        """The throttle of the next array: the jobs left under ``num_jobs``."""
        return min(self.num_jobs, math.ceil(self.free_slots() / self.per_job))

    def raise_throttle(self, scheduler: Scheduler, calls: Calls) -> None:
        """Give slots older arrays no longer need to the oldest array that waits for them
        (at most one scheduler call)."""
        spare = self.num_jobs - self.in_use()
        if spare <= 0:
            return
        for array_id, array in self.by_id.items():
            if len(array.run_ids) > array.throttle:
                new = min(array.throttle + spare, len(array.run_ids), self.num_jobs)
                calls.scheduler += 1
                try:
                    scheduler._set_throttle(array_id, new)
                except BackendError:
                    return  # keep the old throttle: slower, never over the cap
                array.throttle = new
                return


class Submitter:
    """Submits an array script: a refusal for a submit limit or a time-out is retried with
    back-off (``backoff`` seconds, doubling up to 60, for at most ``patience`` seconds); an
    unclear failure first asks whether the array was queued after all."""

    def __init__(self, scheduler: Scheduler, calls: Calls, arrays: Arrays,
                 sleep: Callable[[float], None], backoff: float, patience: float) -> None:
        self.scheduler = scheduler
        self.calls = calls
        self.arrays = arrays
        self.sleep = sleep
        self.backoff = backoff
        self.patience = patience

    def submit(self, script: Path, name: str, watched: int) -> str | None:
        """The array id of ``script`` (job name ``name``); None when the scheduler refused it
        while ``watched`` other runs are queued: the runs are handed back (not started, not
        failed) and the queue cap is lowered to what the scheduler accepted."""
        delay = self.backoff
        waited = 0.0
        while True:
            self.calls.submits += 1
            self.calls.scheduler += 1
            try:
                return self.scheduler._submit_array(script)
            except SubmitUnclear as exc:
                found = self._find(name)
                if found is not None:
                    return found
                problem: BackendError = exc
            except SubmitRefused as exc:
                if watched:
                    self.arrays.queue_cap = max(1, watched)
                    return None
                problem = exc
            if waited >= self.patience:
                raise BackendError(f"{problem} (still failing after {waited:.0f} s)") \
                    from problem
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, 60.0)

    def _find(self, name: str) -> str | None:
        """The array named ``name`` if the scheduler says it has one (one call)."""
        self.calls.scheduler += 1
        try:
            return self.scheduler._find_array(name)
        except QueryFailed:
            return None
