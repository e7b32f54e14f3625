"""The search loop: take runs while the backend has room, submit, wait, record, retry.

Every state change goes through :meth:`Driver._event`, which appends it to the journal and
applies it to the in-memory states with the same function replay uses, so what the driver
believes and what a restarted driver will believe cannot drift apart.

Restart rules (the journal is replayed first):

* finished runs are never run again;
* runs submitted by a previous driver are handed to the backend's ``reattach``: clusters
  watch their jobs again, the local backend adopts processes still alive; runs that ended
  meanwhile are recorded; runs that cannot be watched are run again (no attempt counted);
* failed runs are run again while their attempts are within ``--retries``.
"""

from __future__ import annotations

import os
import signal
import socket
from collections import deque
from collections.abc import Iterator
from types import FrameType
from typing import Any

from hpsearch.backends.base import Backend, Ended, Run
from hpsearch.journal import JOURNAL_FILE, Journal, RunState, apply_event, replay
from hpsearch.options import SearchOptions
from hpsearch.progress import Progress
from hpsearch.results import ResultsWriter, TableLayout
from hpsearch.runfiles import stderr_says_oom, write_run_record
from hpsearch.runs import make_run
from hpsearch.space import SearchSpace
from hpsearch.spec import SearchSpec
from hpsearch.summary import judge_run

#: exit statuses of the driver
EXIT_ALL_FINISHED = 0
EXIT_SOME_FAILED = 1
EXIT_TOO_MANY_FAILURES = 3


class Driver:
    def __init__(self, spec: SearchSpec, options: SearchOptions, space: SearchSpace,
                 backend: Backend, layout: TableLayout, progress: Progress) -> None:
        self.spec = spec
        self.options = options
        self.space = space
        self.backend = backend
        self.progress = progress
        self.out_dir = options.out_dir
        self.max_attempts = 1 + options.retries
        self.states: dict[str, RunState] = replay(self.out_dir / JOURNAL_FILE)
        self.journal = Journal(self.out_dir / JOURNAL_FILE)
        self.results = ResultsWriter(self.out_dir, layout)
        self.active: dict[str, Run] = {}
        self.retry: deque[Run] = deque()
        self.handled: set[str] = set()  # run ids this driver submitted or adopted
        self.stop_reason: str | None = None
        self.signal_number: int | None = None
        self.final_failures = sum(1 for s in self.states.values()
                                  if s.status == "failed" and s.attempts >= self.max_attempts)
        self.finished = sum(1 for s in self.states.values() if s.status == "finished")

    # -- bookkeeping ----------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> None:
        self.journal.append(kind, **fields)
        apply_event(self.states, {"ev": kind, **fields})
        self.results.changed()

    def _counts(self) -> None:
        self.progress.set_counts(self.finished, self.final_failures, len(self.active))

    def _make_run(self, index: int, config: dict[str, Any]) -> Run:
        return make_run(index, config, out_dir=self.out_dir, run_cwd=self.options.run_cwd,
                        python=self.options.python, script_name=self.spec.script_name,
                        out_arg=self.spec.out_arg)

    # -- choosing runs --------------------------------------------------------------
    def _fresh_runs(self) -> Iterator[Run]:
        """Runs of the space that still need running, in search order."""
        for index, config in enumerate(self.space):
            run = self._make_run(index, config)
            state = self.states.get(run.run_id)
            if run.run_id in self.handled or state is not None and (
                    state.status == "finished"
                    or state.status == "failed" and state.attempts >= self.max_attempts):
                continue
            yield run

    def _take(self, fresh: Iterator[Run], room: int) -> list[Run]:
        batch: list[Run] = []
        while len(batch) < room and self.retry:
            batch.append(self.retry.popleft())
        while len(batch) < room:
            run = next(fresh, None)
            if run is None:
                break
            batch.append(run)
        return batch

    # -- submitting and recording ---------------------------------------------------
    def _submit(self, batch: list[Run]) -> None:
        for run in batch:
            run.run_dir.mkdir(parents=True, exist_ok=True)
        job_ids = self.backend.submit(batch)
        for run in batch:
            job_id = job_ids.get(run.run_id)
            if job_id is None:
                self.retry.appendleft(run)
                continue
            write_run_record(run.run_dir, run.run_id, run.index, dict(run.config),
                             list(run.argv), run.cwd)
            self.handled.add(run.run_id)
            self.active[run.run_id] = run
            previous = self.states.get(run.run_id)
            attempt = (previous.attempts if previous else 0) + 1
            self._event("submit", run=run.run_id, index=run.index, config=run.config,
                        job=job_id, attempt=attempt)
            self.progress.event(f"run {run.run_id} #{run.index} started (job {job_id}, "
                                f"attempt {attempt})", counts_changed=False)

    def _record(self, ended: Ended) -> None:
        run = self.active.pop(ended.run_id, None)
        if run is None:
            return
        if ended.lost:
            self._event("lost", run=run.run_id, reason=ended.reason)
            if self.stop_reason is None:
                self.retry.append(run)
            return
        verdict = judge_run(run.sim_out_dir, self.spec.summary_filename,
                            self.spec.summary_keywords, self.spec.performance_key,
                            ended.exit_code, self.spec.summary_parser, run.index)
        reason = ended.reason or verdict.failure
        if reason is not None and stderr_says_oom(run.run_dir):
            reason = f"oom ({reason})"
        self._event("end", run=run.run_id, status="failed" if reason else "finished",
                    exit=ended.exit_code, reason=reason, metrics=verdict.metrics,
                    wall=ended.wall_time, extra=dict(ended.extra))
        state = self.states[run.run_id]
        perf = verdict.metrics.get(self.spec.performance_key)
        if reason is None:
            self.finished += 1
            self.progress.offer_best(perf)
            text = f"run {run.run_id} #{run.index} finished {self.spec.performance_key}={perf}"
        elif state.attempts < self.max_attempts and self.stop_reason is None:
            self.retry.append(run)
            text = f"run {run.run_id} #{run.index} failed ({reason}), will retry"
        else:
            self.final_failures += 1
            text = f"run {run.run_id} #{run.index} failed ({reason})"
            if self.options.max_failures and self.final_failures >= self.options.max_failures:
                self.stop_reason = "max_failures"
        self._counts()
        self.progress.event(text, ended=True)

    def _reattach(self) -> None:
        in_flight = {}
        for state in self.states.values():
            if state.status == "running" and state.job_id is not None:
                run = self._make_run(state.index, state.config)
                in_flight[run.run_id] = (run, state.job_id)
                self.active[run.run_id] = run
                self.handled.add(run.run_id)
        if in_flight:
            self.progress.message(f"reattaching to {len(in_flight)} run(s) of a previous driver")
            for ended in self.backend.reattach(in_flight):
                self._record(ended)

    # -- signals --------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_reason is None:
            self.stop_reason = "interrupted"
            self.signal_number = signum
            self.progress.message(f"{signal.Signals(signum).name}: stopping; run the same "
                                  "command again to resume")

    def _stop_active(self) -> None:
        cancel = (self.backend.name == "local" or self.options.cancel_on_interrupt
                  or self.stop_reason == "max_failures")
        if not self.active or not cancel:
            return
        ids = list(self.active)
        self.backend.cancel(ids)
        for run_id in ids:
            self._record(Ended(run_id, None, f"driver {self.stop_reason}", lost=True))

    # -- the loop -------------------------------------------------------------------
    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.journal.close()
            self.backend.close()

    def _loop(self) -> int:
        self._event("start", host=socket.gethostname(), pid=os.getpid(),
                    backend=self.backend.name)
        self._reattach()
        self._counts()
        fresh = self._fresh_runs()
        exhausted = False
        ended: list[Ended] = []
        while True:
            # start the next runs first, then record the ended ones: a free slot never
            # waits on bookkeeping
            if self.stop_reason is None and not exhausted:
                room = self.backend.room()
                batch = self._take(fresh, room) if room > 0 else []
                if batch:
                    self._submit(batch)
                    self._counts()
                elif room > 0 and not self.retry:
                    exhausted = True
            for end in ended:
                self._record(end)
            if self.stop_reason is None and exhausted and self.retry:
                exhausted = False
            if (exhausted and not self.active) or self.stop_reason is not None:
                break  # on a stop, _stop_active below ends (or leaves) the active runs
            self.journal.flush()
            self.results.maybe_write(self.states)
            self.progress.draw()
            self.backend.wait(1.0)
            ended = self.backend.poll()
        if self.stop_reason is not None:
            self._stop_active()
        self._event("stop", reason=self.stop_reason or "done")
        self.journal.flush()
        self.results.maybe_write(self.states, force=True)
        self._counts()
        self.progress.finish()
        return self._exit_status()

    def _exit_status(self) -> int:
        if self.stop_reason == "interrupted":
            return 128 + (self.signal_number or signal.SIGINT)
        if self.stop_reason == "max_failures":
            self.progress.message(f"stopped after {self.final_failures} failed runs "
                                  "(--max_failures)")
            return EXIT_TOO_MANY_FAILURES
        return EXIT_SOME_FAILED if self.final_failures else EXIT_ALL_FINISHED

