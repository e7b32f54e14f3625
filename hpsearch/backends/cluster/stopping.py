"""Stopping cluster runs: SIGTERM, a grace, then cancel -- and cancelling outright.

A run asked to stop is marked (:func:`stop`); the next poll sends every marked run SIGTERM in
one scheduler call, and once a run's grace is over, cancels it for good, again one call for all
of them (:func:`stop_or_kill`: at most one stopping call per poll). A packed run is stopped by
its worker, through the pack's ``stops/<run_id>`` file, not by a scheduler call.
"""

from __future__ import annotations

from collections.abc import Sequence

from hpsearch.backends.cluster import claims
from hpsearch.backends.cluster.scheduler import Calls, Scheduler
from hpsearch.backends.cluster.watchlist import Watchlist


def stop(watchlist: Watchlist, run_ids: Sequence[str], grace: float) -> None:
    """Mark the runs to get SIGTERM in the next poll; a packed run's worker is asked
    through the pack's ``stops/`` instead."""
    for run_id in run_ids:
        w = watchlist.runs.get(run_id)
        if w is not None and w.pack is not None:
            claims.request_stop(w.pack.folder, [run_id], grace)
        elif w is not None and w.kill_at is None:
            w.stop_grace = grace


def stop_or_kill(watchlist: Watchlist, scheduler: Scheduler, calls: Calls, now: float) -> None:
    """At most one stopping call: cancel the runs whose grace is over, else send SIGTERM to
    the runs asked to stop."""
    watched = watchlist.runs.values()
    due = [w for w in watched if w.kill_at is not None and now >= w.kill_at and w.gone_at is None]
    if due:
        calls.scheduler += 1
        calls.stops += 1
        scheduler._cancel_jobs([w.job_id for w in due])
        for w in due:
            w.kill_at = None
        return
    asked = [w for w in watched if w.stop_grace is not None]
    if asked:
        calls.scheduler += 1
        calls.stops += 1
        scheduler._signal_jobs([w.job_id for w in asked], "TERM")
        for w in asked:
            w.kill_at, w.stop_grace = now + w.stop_grace, None


def cancel(watchlist: Watchlist, scheduler: Scheduler, calls: Calls,
           run_ids: Sequence[str] | None) -> None:
    """Cancel the jobs of ``run_ids`` (all watched when None) with one command and stop
    watching them. A packed run is stopped through its pack (no worker starts it then); a
    worker array goes when all its runs do."""
    watched = watchlist.runs
    ids = list(watched) if run_ids is None else [r for r in run_ids if r in watched]
    job_ids = [watched[r].job_id for r in ids if watched[r].pack is None]
    for run_id in ids:
        w = watched[run_id]
        if w.pack is not None:
            claims.request_stop(w.pack.folder, [run_id], 0)
    job_ids += sorted({watched[r].array_id for r in ids if watched[r].pack is not None
                       and watchlist.arrays.holds_only(watched[r].array_id, set(ids))})
    if job_ids:
        calls.scheduler += 1
        scheduler._cancel_jobs(job_ids)
    for run_id in ids:
        watchlist.unwatch(run_id)
