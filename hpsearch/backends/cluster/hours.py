"""The GPU-hours and CPU-hours of a cluster run's attempt (:mod:`hpsearch.backends.accounting`).

Measured from the run's files: a one-run job's own, a packed run's split with the runs of its
job that held its GPU and CPUs at the same time. Where the scheduler keeps accounts (Slurm's
sacct), a one-run job's ends are charged what it accounted, in one call per poll; once it
answered that it keeps none, it is never asked again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hpsearch.backends.accounting import Ledger, hold_of, hours, measured
from hpsearch.backends.base import Ended
from hpsearch.backends.cluster.scheduler import Calls, Scheduler
from hpsearch.backends.cluster.watchlist import Watched, Watchlist
from hpsearch.runs.files import ATTEMPTS_DIR, ExitRecord, read_exit, read_start


class Charges:
    """What each ended attempt of the watched runs held, as result columns."""

    def __init__(self, watchlist: Watchlist, scheduler: Scheduler, calls: Calls) -> None:
        self.watchlist = watchlist
        self.scheduler = scheduler
        self.calls = calls
        self._ledger = Ledger(share_cpus=True)  # what the runs of a packed job shared
        self._accounting = scheduler.accounts_jobs  # until it said it keeps no accounts
        self._one_run_jobs: set[str] = set()  # ended runs of one-run jobs, to account

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
            return hours(*measured(hold, [], share_cpus=False))
        watched = self.watchlist.runs
        others = [hold_of(s, None) for r, job in w.pack.claims.items()
                  if job == w.job_id and r != w.run.run_id and r in watched
                  and (s := read_start(watched[r].run.run_dir)) is not None
                  and s.job == w.job_id]
        return self._ledger.charge(w.job_id, hold, others)

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
        """The ends of one-run jobs with their usage as the scheduler accounted it, where it
        keeps accounts: one call for all of them (to the accounting daemon, not the
        controller); once it answered that it keeps none, never asked again."""
        jobs = [e.extra["job_id"] for e in ended if e.run_id in self._one_run_jobs
                and e.restarted is None]
        self._one_run_jobs.difference_update(e.run_id for e in ended)
        if not jobs or not self._accounting:
            return ended
        self.calls.accounting += 1
        accounts = self.scheduler._account(jobs)
        self._accounting = bool(accounts)
        return [dataclasses.replace(e, extra={**e.extra, **accounts[e.extra["job_id"]]})
                if e.restarted is None and e.extra.get("job_id") in accounts else e
                for e in ended]
