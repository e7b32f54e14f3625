"""Runs the scheduler cut short: the time limit and its warning, preemption, requeues.

An exit file whose command died of a signal, or was written after the wrapper itself got
SIGTERM/SIGINT/SIGHUP (cancel, requeue, preemption and the time limit signal every process of
a job), waits for the scheduler's word (see :mod:`hpsearch.backends.cluster.sweeps`) -- unless
the packed worker itself stopped the run. A job the time limit ended (``timeout_states``) or
whose run got the time-limit warning is reported with ``cut="timeout"``, one preemption ended
(``preempted_states``) with ``cut="preempted"`` (:func:`cut_of`).

A job the scheduler requeued starts its script again with the same launch: the wrapper then
runs as ``<key>.<r>``. Seeing that key in ``started_at`` or ``exit_code``, the backend reports
``Ended(restarted=<key>.<r>)`` for each restart and goes on watching the run under that key
(:func:`restarts`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from hpsearch.backends.base import Ended
from hpsearch.backends.cluster.scheduler import Scheduler
from hpsearch.backends.cluster.watchlist import Watched
from hpsearch.runs.files import ExitRecord, StartRecord, split_launch, was_warned


def walltime_warning(flag: float, limit: float | None) -> int:
    """Seconds before a job's time limit at which its runs get SIGTERM to save their work
    (``flag``: ``--walltime_warning``); 0, no warning, when the flag is 0, the job has no
    limit, or its limit (``limit`` seconds) is not longer than twice that."""
    seconds = int(flag)
    return seconds if seconds > 0 and limit and limit > 2 * seconds else 0


def cut_of(w: Watched, state: str, scheduler: Scheduler) -> str | None:
    """``"timeout"``, ``"preempted"`` or None: how the scheduler cut the run's job short,
    from its final ``state`` and the run's time-limit warning."""
    if state in scheduler.timeout_states or was_warned(w.run.run_dir, w.run.launch):
        return "timeout"
    return "preempted" if state in scheduler.preempted_states else None


def restarts(w: Watched, record: StartRecord | ExitRecord | None,
             cut_usage: Callable[[Watched], dict[str, float]]) -> list[Ended]:
    """``Ended(restarted=...)`` for each start of the run's job that the scheduler made
    again since the launch we watch (``record``: its ``started_at`` or ``exit_code``);
    ``w`` then watches the latest start. ``cut_usage``: the hours of the start cut short."""
    if record is None:
        return []
    base, now = split_launch(w.run.launch)
    seen_base, seen = split_launch(record.launch)
    ended = []
    while seen_base == base and seen > now:
        now += 1
        cut = w.signal_exit
        ended.append(Ended(w.run.run_id, cut.exit_code if cut else None,
                           "requeued by the scheduler",
                           extra={"job_id": w.job_id, **cut_usage(w)},
                           wall_time=cut.wall_time if cut else None,
                           restarted=f"{base}.{now}"))
        w.run = dataclasses.replace(w.run, launch=f"{base}.{now}", attempt=w.run.attempt + 1)
        w.signal_exit, w.requeued, w.gone_at = None, False, None
    return ended
