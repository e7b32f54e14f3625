"""What the run directories and the scheduler say of the watched runs, and the verdicts.

A run's end is learned from its run directory first (``exit_code`` with the launch's key).
The exit files cost one ``stat`` each, which adds up with thousands of queued runs on NFS, so
they are read sparingly: every run's file just before each scheduler query (a "sweep"), and
between queries only the files of runs the last query did not report as queued
(:meth:`Sweeper.read_files`). A run not seen started has its ``started_at`` read in place of its
exit file (there is no exit file without it), and its exit file too while the scheduler says it
runs: a waiting run costs one look, and a run one more, once.

Only runs without an exit file are asked about, in ONE scheduler query (:meth:`Sweeper.ask`).
A job that left the queue (or reached a final state) without an ``exit_code`` file is given a
grace for the file to show up (shared filesystems lag); then it is reported as ``Ended(run_id,
None, <scheduler state>)`` (:meth:`Sweeper.gone`). An exit file saying the command died of a
signal (status > 128) is reported once the scheduler has said why (``TIMEOUT``, ``CANCELLED``,
``TERM_RUNLIMIT``...), with that as the reason (see :mod:`hpsearch.backends.cluster.requeue`).
"""

from __future__ import annotations

from hpsearch.backends.base import BackendError, Ended
from hpsearch.backends.cluster import packing, requeue
from hpsearch.backends.cluster.hours import Charges
from hpsearch.backends.cluster.scheduler import Calls, QueryFailed, Scheduler
from hpsearch.backends.cluster.watchlist import Watched, Watchlist
from hpsearch.runs.files import read_exit, read_start, split_launch, was_warned

#: scheduler states in which a job ended normally (a signal death is not explained by them)
_PLAIN_ENDS = frozenset({"COMPLETED", "DONE", "GONE"})


class Sweeper:
    """Reads the watched runs' files and asks the scheduler about them; judges their ends."""

    def __init__(self, scheduler: Scheduler, watchlist: Watchlist, calls: Calls,
                 charges: Charges, max_query_failures: int) -> None:
        self.scheduler = scheduler
        self.watchlist = watchlist
        self.calls = calls
        self.charges = charges
        self.max_query_failures = max_query_failures
        self._query_failures = 0

    # -- the files -------------------------------------------------------------------------
    def read_files(self, full: bool) -> list[Ended]:
        """What the run directories say: exit files of all watched runs (``full``) or of
        those that may have run; restarts of requeued jobs; the packs' new claims."""
        watched = self.watchlist.runs
        for pack in {id(w.pack): w.pack for w in watched.values()
                     if w.pack is not None and w.run.run_id not in w.pack.claims}.values():
            packing.read_claims(pack, watched)
        ended = []
        for run_id, w in list(watched.items()):
            if w.signal_exit is not None or w.requeued:
                self.calls.files += 1
                ended += requeue.restarts(w, read_start(w.run.run_dir), self.charges.cut_usage)
            unclaimed = w.pack is not None and run_id not in w.pack.claims
            if w.signal_exit is not None or unclaimed or (
                    not full and w.state in self.scheduler.queued_states and not w.requeued):
                continue
            if (not w.started and not self._look_for_start(run_id, w)
                    and self.watchlist.waiting(w)):
                continue  # still queued: no exit file without a started_at
            self.calls.files += 1
            ended += self.look(run_id, w)
        return ended

    def _look_for_start(self, run_id: str, w: Watched) -> bool:
        """Whether the run's ``started_at`` (of its launch) is there now (one look)."""
        self.calls.files += 1
        start = read_start(w.run.run_dir)
        if start is None or split_launch(start.launch)[0] != split_launch(w.run.launch)[0]:
            return False
        self.watchlist.note_start(run_id, w, start.job)
        return True

    def look(self, run_id: str, w: Watched) -> list[Ended]:
        """The run's exit file, if it is this launch's (or a restart's): reported now, or
        kept until the scheduler says why the job ended."""
        record = read_exit(w.run.run_dir)
        if record is None or split_launch(record.launch)[0] != split_launch(w.run.launch)[0]:
            return []
        if not w.started:  # it ran: its started_at could not be written, or was not read
            self.watchlist.note_start(run_id, w, w.job_id)
        ended = requeue.restarts(w, record, self.charges.cut_usage)
        if record.launch != w.run.launch:
            return ended  # an older start's file, retired by now
        if record.signalled and not (w.pack is not None and packing.worker_stopped(w)):
            w.signal_exit = record  # reported once the scheduler said why
            return ended
        self.watchlist.unwatch(run_id)
        warned = was_warned(w.run.run_dir, w.run.launch)
        usage = self.charges.usage(w, w.run.run_dir, record)
        return [*ended, Ended.recorded(run_id, record, {"job_id": w.job_id, **usage},
                                       cut="timeout" if warned else None)]

    # -- the scheduler ---------------------------------------------------------------------
    def ask(self, asking: list[Watched], now: float) -> bool:
        """One scheduler query about ``asking``; True when a state changed."""
        try:
            states = self.scheduler._query(
                sorted({j for w in asking for j in packing.ids_of(w)}))
            self._query_failures = 0
        except QueryFailed as exc:
            self._query_failures += 1
            if self._query_failures >= self.max_query_failures:
                raise BackendError(f"scheduler query failed {self._query_failures} "
                                   f"times in a row: {exc}") from exc
            return False
        finally:
            self.calls.scheduler += 1
        changed = False
        for w in asking:
            state = packing.state_of(w, states, self.scheduler)
            if state != w.state:
                changed = True
                if state in self.scheduler.queued_states and not self.watchlist.waiting(w):
                    w.requeued = True  # it ran; now it waits to start again
                w.state = state
            if state == "GONE" or self.scheduler.is_final(state):
                w.gone_at = now
        return changed

    def gone(self, run_id: str, w: Watched) -> Ended:
        """The end of a run the scheduler says is over."""
        self.watchlist.unwatch(run_id)
        extra = {"job_id": w.job_id}
        record = w.signal_exit or read_exit(w.run.run_dir, w.run.launch)  # a late file
        state = w.state
        cut = requeue.cut_of(w, state, self.scheduler)
        if w.pack is not None and cut is None and (
                state in self.scheduler.lost_states | {"GONE"}) and (
                record is None or record.signalled):
            why = (f"its job {w.job_id} ended ({state}) before the run did"
                   if run_id in w.pack.claims else f"no job of launch {w.pack.key} took it")
            return Ended(run_id, None, why, lost=True, extra=extra)
        if record is not None:
            if not w.started:
                self.watchlist.note_start(run_id, w, w.job_id)
            reason = None if state in _PLAIN_ENDS or not record.signalled else state
            extra.update(self.charges.usage(w, w.run.run_dir, record))
            return Ended.recorded(run_id, record, extra, reason, cut=cut)
        reason = "gone from the queue" if state == "GONE" else state
        return Ended(run_id, None, reason, extra=extra, cut=cut)
