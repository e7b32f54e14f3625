"""The GPU-hours and CPU-hours of a cluster run's attempt (:mod:`hpsearch.backends.accounting`).

Measured from the run's files: a one-run job's own, a packed run's split with the runs of its
job that held its GPU and CPUs at the same time. Where the scheduler keeps accounts (Slurm's
sacct, PBS's ``resources_used``, Grid Engine's qacct), a one-run job's end is charged what it
accounted instead. Its end is held back until the scheduler answers for that job, for at
most the scheduler's :attr:`~hpsearch.backends.cluster.scheduler.Scheduler.accounting_wait`
(0 for Slurm and PBS, which account a job as it ends; Grid Engine writes its accounting file
every ``flush_time``); the held ends are asked about in one call per poll, at most every
:data:`ASK_INTERVAL` seconds. An end the scheduler did not answer for in time keeps its
measured hours. The ``hours_from`` column says which: the scheduler's command (``sacct``,
``qstat``, ``qacct``) or ``run files``. Once the scheduler answered that it keeps no accounts
at all, it is never asked again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from hpsearch.backends.accounting import Ledger, hold_of, hours, measured
from hpsearch.backends.base import Ended
from hpsearch.backends.cluster.scheduler import Scheduler
from hpsearch.backends.cluster.watchlist import Watched, Watchlist
from hpsearch.runs.files import ATTEMPTS_DIR, ExitRecord, read_exit, read_start

#: the ``hours_from`` of hours measured from the run's files
MEASURED = "run files"
#: seconds between two questions about the ends held back for the scheduler's accounts
ASK_INTERVAL = 2.0


class Charges:
    """What each ended attempt of the watched runs held, as result columns."""

    def __init__(self, watchlist: Watchlist, scheduler: Scheduler,
                 clock: Callable[[], float]) -> None:
        self.watchlist = watchlist
        self.scheduler = scheduler
        self._clock = clock
        self._ledger = Ledger(share_cpus=True)  # what the runs of a packed job shared
        self._accounting: bool | None = None  # asked of the scheduler at the first end
        self._one_run_jobs: set[str] = set()  # ended runs of one-run jobs, to account
        self._held: dict[str, tuple[Ended, float]] = {}  # {run_id: (end, measured after)}
        self._next_ask = 0.0

    def usage(self, w: Watched, folder: Path, record: ExitRecord) -> dict[str, float]:
        """``gpu_hours`` and ``cpu_hours`` of the start whose files are in ``folder``: a
        job's own, or for a packed run, split with the runs of its job that held its GPU
        and CPUs at the same time."""
        start = read_start(folder)
        if start is None or start.launch != record.launch:
            return {}
        hold = hold_of(start, record)
        if w.pack is None:
            self._one_run_jobs.add(w.run.run_id)  # the scheduler may account its job
            return {**hours(*measured(hold, [], share_cpus=False)), "hours_from": MEASURED}
        watched = self.watchlist.runs
        others = [hold_of(s, None) for r, job in w.pack.claims.items()
                  if job == w.job_id and r != w.run.run_id and r in watched
                  and (s := read_start(watched[r].run.run_dir)) is not None
                  and s.job == w.job_id]
        return {**self._ledger.charge(w.job_id, hold, others), "hours_from": MEASURED}

    def cut_usage(self, w: Watched) -> dict[str, float]:
        """The usage of the start a requeue cut short: its files are in the run's latest
        ``attempts/<n>/`` (the wrapper moved them there)."""
        folder = w.run.run_dir / ATTEMPTS_DIR
        try:
            latest = max((int(p.name) for p in folder.iterdir() if p.name.isdigit()), default=0)
        except OSError:
            return {}
        record = read_exit(folder / str(latest), w.run.launch) if latest else None
        return {} if record is None else self.usage(w, folder / str(latest), record)

    def accounted(self, ended: list[Ended]) -> list[Ended]:
        """``ended`` less the ends held back for the scheduler's accounts, plus the held
        ends it answered for (charged what it accounted) or waited for long enough
        (measured); see the module docstring."""
        if self._accounting is None:
            self._accounting = self.scheduler.accounts_jobs
        now = self._clock()
        wait = self.scheduler.accounting_wait
        out = []
        for e in ended:
            if (self._accounting and e.run_id in self._one_run_jobs and e.restarted is None
                    and "job_id" in e.extra):
                self._held[e.run_id] = (e, now + wait)
            else:
                out.append(e)
        self._one_run_jobs.difference_update(e.run_id for e in ended)
        if not self._held:
            return out
        if now >= self._next_ask or any(until <= now for _, until in self._held.values()):
            self._next_ask = now + ASK_INTERVAL
            accounts = self.scheduler._account([e.extra["job_id"] for e, _ in
                                                self._held.values()])
            if accounts is None:
                self._accounting = False
                accounts = {}
            for run_id, (e, until) in list(self._held.items()):
                found = accounts.get(e.extra["job_id"])
                if found is not None:
                    e = dataclasses.replace(e, extra={
                        **e.extra, **found, "hours_from": self.scheduler.accounted_by})
                if found is not None or not self._accounting or until <= now:
                    out.append(e)
                    del self._held[run_id]
        return out

    def due(self) -> float | None:
        """When the held ends are next asked about or released (None: none held)."""
        if not self._held:
            return None
        return min(self._next_ask, *(until for _, until in self._held.values()))
