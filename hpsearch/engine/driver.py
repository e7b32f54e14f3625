"""The search loop: ask the strategy while the backend has room, journal, launch, record, tell.

Every state change goes through :meth:`Driver._event`, which appends it to the journal and
applies it to the in-memory states with the same function replay uses, so what the driver
believes and what a restarted driver will believe cannot drift apart. Every action is
journaled before it takes effect: a proposal (``trial``) before it is queued, a launch
(``launch``, with its key) before its command starts -- flushed to the file first, and
fsync'd for a cluster.

The driver owns each run directory's lifecycle: before an attempt it moves the previous
attempt's files to ``attempts/<n>/`` and writes ``run.json`` (and the run's patched config
file, when the search has a config template); the backend's wrapper then
writes ``started_at`` and ``exit_code`` with the launch's key.

Restart rules (the journal is replayed first, then the run directories are checked):

* a run directory whose ``exit_code`` says it ended is adopted even if the journal lost it
  (a truncated or deleted journal never re-runs a finished run); one that started is
  watched again;
* a launch the journal never saw answered is resolved with the backend (did it start?);
* runs submitted by a previous driver are handed to the backend's ``reattach``;
* finished runs are never run again; failed runs are run again while their attempts are
  within ``--retries`` (``--rerun_failed`` / ``hpsearch retry`` give them a new budget);
  preempted runs are run again (not charged);
* the strategy is rebuilt from the journal's proposals and outcomes.

**Cut short by the scheduler** (:attr:`Ended.cut`): an attempt that did not finish is
recorded ``preempted`` -- not charged to ``--retries`` -- and run again, when preemption
ended it, or its job's time limit while ``--continue_on_timeout`` has continuations left
(then it is ``failed``, as any other). A job the scheduler requeued runs again by itself
(:attr:`Ended.restarted`): the driver journals the preempted end and that restart as a
launch of its own. Every attempt after a cut one gets ``HPSEARCH_RESUMED=1``.

A run that continues another (a configuration promoted to a larger budget, a PBT segment:
its proposal's ``lineage`` names the trial) gets ``HPSEARCH_RESUME_FROM=<that run's output
directory>``, where a script that checkpoints finds its checkpoint.

Every run gets ``HPSEARCH_SEARCH`` (the search directory's name), from which the job wrapper
names it for W&B and MLflow (:data:`hpsearch.runs.wrapper.TRACKING_DEFAULTS`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from hpsearch.backends.base import Backend, Ended
from hpsearch.engine.intermediate import IntermediateReader
from hpsearch.engine.journal import (
    ENDED,
    JOURNAL_FILE,
    History,
    Journal,
    RunState,
    apply_event,
    compact,
)
from hpsearch.engine.lock import DriverLock
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.placement import resource_plan
from hpsearch.engine.policy import (
    FAIL_FAST,
    FAILED,
    FINISHED,
    LOST,
    PREEMPTED,
    PRUNED,
    UNRECORDED,
    Attempt,
    Decision,
    Policy,
    Standing,
)
from hpsearch.engine.progress import Counts, Progress
from hpsearch.engine.pruners import make_pruner
from hpsearch.engine.results import ResultsWriter, TableLayout
from hpsearch.engine.sinks import Tracking
from hpsearch.errors import SearchError
from hpsearch.runs.curves import DRIVER_CURVE_FILE, read_curve
from hpsearch.runs.files import (
    EXIT_FILE,
    RUNS_DIR,
    STDERR_FILE,
    read_exit,
    read_run_record,
    read_start,
    retire_attempt,
    tail_lines,
    write_atomic,
    write_command,
    write_run_record,
)
from hpsearch.runs.model import Run, make_run, run_id_of
from hpsearch.runs.reporter import OUT_DIR_VARIABLE, REPORT_FILE, STOP_FILE, STOP_SEEN_FILE
from hpsearch.runs.summary import (
    SummaryFormat,
    Verdict,
    failure_kind,
    is_number,
    judge,
    objective_values,
)
from hpsearch.runs.wrapper import SEARCH_VARIABLE
from hpsearch.spec.constraints import Constraint, feasible
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.values import storable_config
from hpsearch.strategies.base import Outcome, Proposal, Strategy

#: the output directory of the run that a run continues (a promotion, a PBT segment)
RESUME_FROM_VARIABLE = "HPSEARCH_RESUME_FROM"
#: exit statuses of the driver
EXIT_ALL_FINISHED = 0
EXIT_SOME_FAILED = 1
EXIT_STOPPED_FOR_FAILURES = 3
#: lines of a failed run's stderr shown the first time its reason appears
STDERR_LINES = 5
#: seconds between two reads of the running runs' intermediate reports: 0.25, or 2 ms per
#: active run when more run (a read costs a stat or two per run; on NFS they add up)
REPORT_INTERVAL = 0.25
REPORT_INTERVAL_PER_RUN = 0.002


def summary_format(spec: SearchSpec) -> SummaryFormat:
    return SummaryFormat(spec.summary_filename, spec.summary_keywords, spec.objectives,
                         spec.summary_parser)


class Driver:
    """Runs one search in one search directory, from start or from where a previous driver
    stopped, until the strategy is done and no run is active, or it is told to stop.

    It owns the journal (the only writer; every state change goes through :meth:`_event`), the
    in-memory run states replayed from it (``states``), the results table, the run
    directories' lifecycle, the strategy's asks and tells, the pruner's decisions and the
    counts shown by ``progress``; the backend only starts, watches and stops runs, and the
    lock (taken by :func:`~hpsearch.engine.build.build_driver`) says the directory is its own.

    Its loop (:meth:`run`): restore (adopt run directories, resolve unanswered launches,
    rebuild the strategy and the pruner, reattach), then per turn: record the runs that ended
    (:meth:`_record`: verdict, :class:`~hpsearch.engine.policy.Policy`, effects), read the
    active runs' reports and prune, ask the strategy for as many runs as the backend has room
    for and launch them, wait for the backend. A stop (a signal, fail-fast, --max_failures, a
    lost lock) ends the loop and cancels the active runs -- except those of a lost lock (left
    to the other driver), and on an interrupt those that outlive the driver (a scheduler's
    jobs, unless --cancel_on_interrupt), which the next driver reattaches.

    Invariants: an action is journaled before it takes effect (a proposal before it is
    queued, a launch before it starts, a prune before the stop); a run is in ``active`` from
    its submission until its end is recorded, once; an attempt's end is told to the strategy
    only when the run ended for good; what the driver believes is what a replay of its
    journal gives.
    """

    def __init__(self, spec: SearchSpec, options: SearchOptions, strategy: Strategy,
                 backend: Backend, layout: TableLayout, progress: Progress, lock: DriverLock,
                 history: History, tracking: Tracking | None = None) -> None:
        self.spec = spec
        self.options = options
        self.resources = resource_plan(spec, options)  # what each run needs, by its config
        self.strategy = strategy
        self.backend = backend
        strategy.call_when_ready(backend.wake)  # a proposal computed ends the wait for it
        self.progress = progress
        self.lock = lock
        self.out_dir = options.out_dir
        self.fmt = summary_format(spec)
        self.policy = Policy.of(options)
        self.history = history
        self.states: dict[str, RunState] = history.runs
        self.journal = Journal(self.out_dir / JOURNAL_FILE)
        self.results = ResultsWriter(self.out_dir, layout)
        self.active: dict[str, Run] = {}
        self.ready: deque[str] = deque()
        self.stop_reason: str | None = None
        self.stop_detail: str | None = None
        self.signal_number: int | None = None
        self.reasons_seen: set[str] = set()  # failure kinds of this session's attempts
        self.failed_attempts = 0  # this session's (for --fail_fast)
        self.tally = {"finished": 0, "failed": 0, "pruned": 0}  # failed: for good
        self.pruner = make_pruner(spec.pruner, spec.performance_sort_asc)
        self.reader = IntermediateReader(self.fmt, spec.pruner.step_key) \
            if spec.pruner.active else None
        self._next_report_read = 0.0
        #: set once the journal's runs are restored and reattached (or the driver ended
        #: before): what a previous driver left is known from then on (a service answers
        #: only after it)
        self.restored = threading.Event()
        #: the tracking sinks every run whose verdict is final is handed to (None: none)
        self.tracking = tracking
        #: trial -> run id, for the runs that others continue (built when one is first
        #: needed, then kept up to date by _propose)
        self._trial_runs: dict[int, str] = {}

    # -- bookkeeping ----------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> None:
        apply_event(self.history, self.journal.append(kind, **fields))
        if kind not in ("start", "stop"):  # those change no row of the results
            self.results.changed()

    def _recount(self) -> None:
        """Count ended runs from scratch (once, after the journal was replayed)."""
        self.tally = {"finished": 0, "failed": 0, "pruned": 0}
        for state in self.states.values():
            if state.status in ("finished", "pruned"):
                self.tally[state.status] += 1
            elif self.policy.failed_for_good(state):
                self.tally["failed"] += 1

    def _counts(self) -> None:
        known = self.strategy.total
        total = None if known is None else max(known, len(self.states))
        self.progress.set_counts(Counts(
            self.tally["finished"], self.tally["failed"], self.tally["pruned"],
            len(self.active), self.backend.queued(), total, self.strategy.total_is_estimate))

    def _run_of(self, state: RunState) -> Run:
        run = make_run(state.run_id, state.trial, state.config, state.args,
                       out_dir=self.out_dir, run_cwd=self.options.run_cwd,
                       python=self.options.python, command=self.spec.command,
                       out_arg=self.spec.out_arg,
                       resources=self.resources.of(state.config))
        return dataclasses.replace(run, attempt=max(1, state.attempts), launch=state.launch or "")

    # -- proposals ------------------------------------------------------------------
    def _propose(self, proposal: Proposal) -> None:
        run_id = proposal.run_id or run_id_of(proposal.config, proposal.trial)
        config = storable_config(proposal.config)
        fields: dict[str, Any] = {"trial": proposal.trial, "run": run_id, "config": config}
        args = self.spec.command.render(proposal.config)
        if self.spec.command.render(config) != args:
            fields["args"] = args
        if proposal.internal:
            fields["internal"] = proposal.internal
        if proposal.lineage:
            fields["lineage"] = proposal.lineage
        self._event("trial", **fields)
        if self._trial_runs:  # kept up to date once built (see _resume_from)
            self._trial_runs[proposal.trial] = run_id
        self.ready.append(run_id)

    def _fill(self) -> None:
        """Launch what the backend has room for: queued runs first, then new proposals."""
        room = self.backend.free_slots() if self.strategy.adaptive else self.backend.room()
        if room <= 0:
            return
        room += self.backend.choices()  # runs offered to pick from (the rest come back)
        if len(self.ready) < room and not self.strategy.done:
            for proposal in self.strategy.ask(room - len(self.ready)):
                self._propose(proposal)
        batch = []
        while self.ready and len(batch) < room:
            run_id = self.ready.popleft()
            if self.states[run_id].status in ("pending", "failed", "cancelled", "preempted"):
                batch.append(run_id)
        if self.strategy.busy and len(batch) < room:  # more on the way: whole jobs only
            whole = len(batch) - len(batch) % self.backend.launch_unit()
            self.ready.extendleft(reversed(batch[whole:]))
            batch = batch[:whole]
        if batch:
            started = self._launch(batch)
            self._counts()
            if 0 < started < len(batch):  # some came back: offer again what is left now
                self._fill()  # (ends: each pass starts a run)

    # -- launching and recording ----------------------------------------------------
    def _launch(self, batch: list[str]) -> int:
        """Submit ``batch`` as one launch; how many of its runs started (the rest are
        queued again, first)."""
        key = "k" + secrets.token_hex(4)
        runs = []
        for run_id in batch:
            state = self.states[run_id]
            run = dataclasses.replace(self._run_of(state), attempt=state.attempts + 1,
                                      launch=key)
            runs.append(dataclasses.replace(run, env={
                "HPSEARCH_RUN_ID": run.run_id, "HPSEARCH_TRIAL": str(run.trial),
                "HPSEARCH_ATTEMPT": str(run.attempt), SEARCH_VARIABLE: self.out_dir.name,
                OUT_DIR_VARIABLE: str(run.sim_out_dir),
                **({"HPSEARCH_RESUMED": "1"} if state.cut else {}),
                **self._resume_from(state)}))
        self._event("launch", key=key, runs=[[r.run_id, r.attempt] for r in runs])
        self.journal.flush(sync=self.backend.durable_intents)  # the intent, before the action
        for run in runs:
            self._prepare(run)
        jobs = self.backend.submit(runs, key)
        self._event("submit", key=key, jobs=jobs)
        # runs not started go back to the front of the queue, in their order
        self.ready.extendleft(reversed([r.run_id for r in runs if r.run_id not in jobs]))
        for run in runs:
            if run.run_id not in jobs:
                continue
            self.active[run.run_id] = run
            if self.reader is not None:
                self.reader.start(run.run_id, run.run_dir)
            env = self.backend.launch_env(run.run_id)
            if env and env != run.env:
                with contextlib.suppress(OSError):  # informational only
                    write_command(run.run_dir, run.argv, run.cwd, env)
            state = "queued" if self.backend.waits_to_start(run.run_id) else "started"
            self.progress.event(f"run {run.run_id} #{run.trial} {state} (job "
                                f"{jobs[run.run_id]}, attempt {run.attempt})",
                                counts_changed=False)
        return len(jobs)

    def _resume_from(self, state: RunState) -> dict[str, str]:
        """``HPSEARCH_RESUME_FROM``: the output directory of the run that ``state``'s run
        continues (its lineage's ``continues``, a trial), for a run that continues one."""
        parent = (state.lineage or {}).get("continues")
        if parent is None:
            return {}
        if parent not in self._trial_runs:
            self._trial_runs = {s.trial: s.run_id for s in self.states.values()}
        run_id = self._trial_runs.get(parent)
        if run_id is None:
            return {}
        return {RESUME_FROM_VARIABLE: str(self._run_of(self.states[run_id]).sim_out_dir)}

    def _announce_starts(self, starts: dict[str, str]) -> None:
        """Say which queued runs started (``{run_id: job}``: the backend saw their
        ``started_at``)."""
        for run_id, job in starts.items():
            run = self.active.get(run_id)
            if run is not None:
                self.progress.event(f"run {run_id} #{run.trial} started (job {job}, attempt "
                                    f"{run.attempt})", counts_changed=False)
        if starts:
            self._counts()

    def _prepare(self, run: Run) -> None:
        """The run directory before an attempt: earlier files aside, a fresh record (and the
        run's patched config file, from its journaled config)."""
        record = {"run_id": run.run_id, "trial": run.trial, "config": dict(run.config),
                  "argv": list(run.argv), "cwd": str(run.cwd), "attempt": run.attempt,
                  "launch": run.launch}
        state = self.states[run.run_id]
        for key in ("internal", "lineage"):  # what adopting it needs to rebuild the strategy
            if getattr(state, key):
                record[key] = getattr(state, key)
        config_file = self.spec.command.config_file
        try:
            retire_attempt(run.run_dir, [run.sim_out_dir / self.spec.summary_filename,
                                         run.sim_out_dir / REPORT_FILE,
                                         run.sim_out_dir / STOP_FILE,
                                         run.sim_out_dir / STOP_SEEN_FILE,
                                         run.run_dir / DRIVER_CURVE_FILE])
            write_run_record(run.run_dir, record, run.argv, run.cwd, run.env,
                             command=self.backend.runs_commands)
            if config_file is not None:
                write_atomic(config_file.path_in(run.run_dir), config_file.patched(run.config))
        except OSError as exc:
            raise SearchError(f"cannot write the run directory {run.run_dir}: {exc.strerror}; "
                              "nothing was lost: free space or fix its permissions, then run "
                              "the same command again to resume") from None

    def _record(self, ended: Ended) -> None:
        """An attempt ended: its verdict (:func:`judge`), the policy's decision
        (:meth:`Policy.decide`), then the decision's effects."""
        run = self.active.pop(ended.run_id, None)
        if run is None:
            return
        if ended.restarted is not None:
            self._restarted(run, ended)
            return
        state = self.states[run.run_id]
        points = self._last_points(run)
        verdict = judge(run.run_dir, run.sim_out_dir, self.fmt, ended.exit_code, ended.reason,
                        run.trial)
        decision = self._decide(run, state, ended, verdict)
        if decision.status == LOST:
            self._give_back(run, ended, decision)
        else:
            self._carry_out(decision, run, state, ended, verdict, points)

    def _carry_out(self, decision: Decision, run: Run, state: RunState, ended: Ended,
                   verdict: Verdict, points: list[dict[str, Any]]) -> None:
        """The effects of a decision on an attempt that ended: its end journaled, a failure
        shown, the run queued again or counted and told to the strategy, the search stopped,
        the progress line."""
        reason = self._recorded_reason(state, verdict.reason, decision.status, ended.cut)
        self._journal_end(run, ended, verdict.metrics, decision.status, reason, points)
        if decision.status == FAILED:
            self._note_failure(run, verdict.reason or "failed")
        if decision.again:
            self.ready.append(run.run_id)
        if decision.status == FINISHED and feasible(verdict.metrics, self.spec.constraints):
            self.progress.offer_best(verdict.metrics.get(self.spec.performance_key))
        if decision.final:
            self.tally[decision.status] += 1
            self._tell(state)
            if self.tracking is not None:
                self.tracking.offer(state)
        if decision.stop is not None:
            self._stop_search(decision.stop, run, verdict.reason or "failed")
        self._counts()
        self.progress.event(self._ended_text(run, state, decision, verdict, reason),
                            ended=True, duration=ended.wall_time)

    def _decide(self, run: Run, state: RunState, ended: Ended, verdict: Verdict) -> Decision:
        """The policy's decision on an attempt that ended, from what is known of it and of
        the search."""
        pruning = state.prune is not None
        attempt = Attempt(verdict.status, verdict.reason, ended.lost, ended.unrecorded,
                          ended.cut, pruning,
                          saw_stop=pruning and (run.sim_out_dir / STOP_SEEN_FILE).exists(),
                          charged=run.attempt - state.budget_start, continued=state.continued)
        return self.policy.decide(attempt, Standing(
            self.tally["finished"], self.tally["failed"], self.failed_attempts,
            self.reasons_seen, self.stop_reason is not None))

    def _last_points(self, run: Run) -> list[dict[str, Any]]:
        """The intermediate reports of a run that ended (what it wrote last included); the
        reader forgets it."""
        if self.reader is None:
            return []
        self.reader.update(run.run_id, run.run_dir, run.sim_out_dir)
        self._warn_of_reports(run)
        points = self.reader.points(run.run_id)
        self.reader.forget(run.run_id)
        return points

    def _give_back(self, run: Run, ended: Ended, decision: Decision) -> None:
        """A lost attempt: journaled as given back (not charged), run again -- or, when its
        exit status could not be written, the search stops for the user to fix the disk."""
        self._event("lost", runs=[run.run_id], reason=ended.reason)
        if decision.stop == UNRECORDED:
            raise SearchError(
                f"the exit status of run {run.run_id} could not be written to "
                f"{run.run_dir / EXIT_FILE} (is the disk full?); nothing was lost: free "
                "space or fix its permissions, then run the same command again to resume "
                "(that run runs again)")
        if decision.again:
            self.ready.append(run.run_id)

    def _recorded_reason(self, state: RunState, reason: str | None, status: str,
                         cut: str | None) -> str | None:
        """The reason journaled for an ended attempt: the prune's for a pruned run, the
        verdict's otherwise (a continued time limit says how many continuations it used)."""
        if status == PRUNED:
            return state.prune
        if status == PREEMPTED and cut == "timeout":
            return (f"{reason}; continued ({state.continued + 1} of "
                    f"--continue_on_timeout={self.policy.continue_on_timeout})")
        return reason

    def _journal_end(self, run: Run, ended: Ended, metrics: dict[str, Any], status: str,
                     reason: str | None, points: list[dict[str, Any]]) -> None:
        """Journal the attempt's end: a pruned run's values are its last report's; a
        finished run's rungs it crossed between two reads count first, as in ASHA."""
        extra = dict(ended.extra)
        job = extra.pop("job_id", None)
        if points:
            extra["steps"] = points[-1]["step"]
        if status == PRUNED and points:
            metrics = {**metrics, **self._reported_metrics(points[-1])}
        if status == FINISHED:
            for rung, value in self.pruner.finished(run.run_id, run.trial,
                                                    self._objective_points(points)):
                self._event("rung", run=run.run_id, rung=rung, value=value)
        self._event("end", run=run.run_id, status=status, attempt=run.attempt,
                    exit=ended.exit_code, reason=reason, metrics=metrics,
                    wall=ended.wall_time, extra=extra, **({"job": job} if job else {}),
                    **({"cut": ended.cut} if ended.cut and status != FINISHED else {}))

    def _ended_text(self, run: Run, state: RunState, decision: Decision, verdict: Verdict,
                    reason: str | None) -> str:
        """The progress line of an ended attempt."""
        head = f"run {run.run_id} #{run.trial}"
        if decision.status == PREEMPTED:
            return f"{head} {reason}; it runs again"
        if decision.status == PRUNED:
            return f"{head} {reason}"
        if decision.status == FINISHED:
            key = self.spec.performance_key
            text = f"{head} finished {key}={verdict.metrics.get(key)}"
            if verdict.stopped:
                return text + f" ({verdict.stopped} after its summary said finished)"
            if state.prune is not None:
                return text + " (it ended before its prune took effect)"
            return text
        if decision.again:
            return f"{head} failed ({verdict.reason}), will retry"
        return f"{head} failed ({verdict.reason})"

    def _reported_metrics(self, point: dict[str, Any]) -> dict[str, Any]:
        """A report's values that are results columns: the summary keywords' numbers."""
        return {k: v for k, v in point.items() if k in self.fmt.keywords and k not in (
            "step", "t") and is_number(v)}

    def _restarted(self, run: Run, ended: Ended) -> None:
        """The scheduler started the run's job again: journal the cut attempt as preempted,
        and the restart as the launch it is (the backend watches it already)."""
        assert ended.restarted is not None
        job = ended.extra.get("job_id")
        self._event("end", run=run.run_id, status="preempted", attempt=run.attempt,
                    exit=ended.exit_code, reason=ended.reason, metrics={},
                    wall=ended.wall_time, cut="preempted",
                    extra={k: v for k, v in ended.extra.items() if k != "job_id"},
                    **({"job": job} if job else {}))
        again = dataclasses.replace(run, launch=ended.restarted, attempt=run.attempt + 1)
        self._event("launch", key=again.launch, runs=[[run.run_id, again.attempt]])
        self._event("submit", key=again.launch, jobs={run.run_id: job or "?"})
        self.active[run.run_id] = again
        if self.reader is not None:
            self.reader.start(run.run_id, run.run_dir)
        self.progress.event(f"run {run.run_id} #{run.trial} {ended.reason}: its job {job} "
                            f"started again (attempt {again.attempt})", counts_changed=False)

    def _finish(self) -> bool:
        """Journal and queue what the strategy proposes once every run ended (rerun_best);
        whether it proposed anything."""
        finished = [outcome_of(s, self.spec.objectives, None, self.spec.constraints)
                    for s in sorted(self.states.values(), key=lambda s: s.trial)
                    if s.status == "finished"]
        proposals = self.strategy.finish(finished)
        for proposal in proposals:
            self._propose(proposal)
        return bool(proposals)

    def _tell(self, state: RunState) -> None:
        self.strategy.tell(outcome_of(state, self.spec.objectives, self._intermediate,
                                      self.spec.constraints))

    # -- early stopping -------------------------------------------------------------
    def _objective_points(self, points: list[dict[str, Any]]) -> list[tuple[float, float]]:
        """``(step, objective)`` of the points that report the objective as a number."""
        key = self.spec.performance_key
        return [(float(p["step"]), float(p[key])) for p in points if is_number(p.get(key))]

    def _intermediate(self, state: RunState) -> dict[int, float]:
        """The objective by step, from the run's curve (what a sampler is told of it)."""
        points = read_curve(self.out_dir / RUNS_DIR / state.run_id)
        return {int(step): value for step, value in self._objective_points(points)}

    def _watch_reports(self) -> None:
        """Read what running runs reported since; journal the pruner's decisions, then
        stop the pruned runs (one backend call for all of them)."""
        assert self.reader is not None
        running = self.backend.running()
        stops = []
        for run_id, run in self.active.items():
            state = self.states[run_id]
            if state.prune is not None or (running is not None and run_id not in running):
                continue
            new = self.reader.update(run_id, run.run_dir, run.sim_out_dir)
            self._warn_of_reports(run)
            if not new:
                continue
            points = self._objective_points(self.reader.points(run_id))
            if not points:
                continue
            decision = self.pruner.consider(run_id, run.trial, points)
            for rung, value in decision.rungs:
                self._event("rung", run=run_id, rung=rung, value=value)
            if decision.prune is not None:
                self._event("prune", run=run_id, step=points[-1][0], reason=decision.prune)
                stops.append(run)
        if stops:
            self.journal.flush(sync=self.backend.durable_intents)  # decided before done
            self._stop_runs(stops)

    def _warn_of_reports(self, run: Run) -> None:
        """Say once per run that some of its reports were left out (bad data costs that
        report, never the search)."""
        assert self.reader is not None
        problem = self.reader.problem(run.run_id)
        if problem is not None:
            self.progress.message(f"warning: run {run.run_id} #{run.trial}: a report was left "
                                  f"out ({problem}); said once a run")

    def _stop_runs(self, runs: list[Run]) -> None:
        """Tell pruned runs to stop: the flag ``should_stop()`` reads, then SIGTERM."""
        for run in runs:
            with contextlib.suppress(OSError):
                run.sim_out_dir.mkdir(parents=True, exist_ok=True)
                (run.sim_out_dir / STOP_FILE).write_text(self.states[run.run_id].prune or "")
            self.progress.event(f"run {run.run_id} #{run.trial} {self.states[run.run_id].prune};"
                                " stopping it", counts_changed=False)
        self.backend.stop([run.run_id for run in runs], self.options.prune_grace)

    def _note_failure(self, run: Run, reason: str) -> None:
        """Remember a failed attempt's kind of reason (what --fail_fast compares) and show
        why it failed the first time each kind appears (its numbers aside)."""
        kind = failure_kind(reason)
        self.failed_attempts += 1
        if kind not in self.reasons_seen:
            self.reasons_seen.add(kind)
            log = run.run_dir / STDERR_FILE
            self.progress.message(f"run {run.run_id} #{run.trial} failed: {reason}; its "
                                  f"stderr: {log}")
            self.progress.detail(tail_lines(log, STDERR_LINES))

    def _fail_fast_hint(self, n: int, reason: str, stderr: Path) -> str:
        """What to do when the first runs failed alike and none finished: the mistake is in
        the script (``hpsearch retry`` runs them again once it is fixed) or in the search
        (runs from the old search file would fail again: the same command with
        ``--force_out_dir`` goes on with the fixed one)."""
        source = "search file" if self.spec.source_kind == "search_file" else "grid module"
        return (f"the first {n} runs all failed ({reason}) and none finished, so the mistake "
                f"is likely in the script or the {source} (see {stderr}): after fixing the "
                f"script, run them again with: hpsearch retry {self.out_dir}; after fixing "
                f"the {source}, run the same command with --force_out_dir (or a new "
                "--out_dir); --fail_fast=0 goes on regardless")

    def _stop_search(self, why: str, run: Run, reason: str) -> None:
        """The policy stops the search for failures (``why``: fail-fast, after ``run``
        failed with ``reason``, or --max_failures); the loop ends at its next turn."""
        self.stop_reason = why
        if why == FAIL_FAST:
            self.stop_detail = self._fail_fast_hint(self.policy.fail_fast, reason,
                                                    run.run_dir / STDERR_FILE)
        else:
            self.stop_detail = (f"stopped after {self.tally['failed']} failed runs "
                                "(--max_failures)")

    # -- restart --------------------------------------------------------------------
    def _restore(self) -> None:
        for warning in self.history.warnings:
            self.progress.message(f"warning: {warning}")
        self._adopt_run_dirs()
        for key, pairs in list(self.history.unresolved.items()):
            self._resolve(key, pairs)
        self._restore_strategy()
        self._restore_pruner()
        self._reattach()
        if self.options.rerun_failed:
            again = [s.run_id for s in self.states.values() if s.status == "failed"]
            if again:
                self._event("rerun", runs=again)
                self.progress.message(f"running {len(again)} failed run(s) again "
                                      "(--rerun_failed)")
        self.ready.clear()
        for state in sorted(self.states.values(), key=lambda s: s.trial):
            if state.run_id in self.active:
                continue
            if state.status in ("pending", "cancelled", "preempted") or (
                    state.status == "failed" and self.policy.retries_left(state)):
                self.ready.append(state.run_id)
            elif state.status == "finished" and feasible(state.metrics, self.spec.constraints):
                self.progress.offer_best(state.metrics.get(self.spec.performance_key))
        self._recount()
        self._offer_ended()

    def _offer_ended(self) -> None:
        """Hand the sinks every run that ended for good (each logs those it has no note
        of: what a killed driver left unlogged)."""
        if self.tracking is None:
            return
        for state in sorted(self.states.values(), key=lambda s: s.trial):
            if state.run_id not in self.active and (state.status in ("finished", "pruned")
                                                    or self.policy.failed_for_good(state)):
                self.tracking.offer(state)

    def _adopt_run_dirs(self) -> None:
        """Bring run directories the journal lost (or never heard of) into the journal."""
        runs_dir = self.out_dir / RUNS_DIR
        try:
            entries = os.scandir(runs_dir)
        except FileNotFoundError:
            return
        settled = ENDED | {"running", "launching"}
        with entries:
            names = sorted(e.name for e in entries if (
                e.name not in self.states or self.states[e.name].status not in settled)
                and e.is_dir())
        adopted = 0
        for name in names:
            run_dir = runs_dir / name
            record = read_run_record(run_dir)
            if record is None or record.get("run_id") != name:
                continue
            start, ended = read_start(run_dir), read_exit(run_dir)
            last = (ended.launch if ended else start.launch if start else None)
            if last is None or name in self.states and self.states[name].launch == last:
                continue  # never started, or the journal gave that launch back itself
            if name not in self.states:
                self._event("trial", trial=int(record.get("trial", self.history.next_trial())),
                            run=name, config=record.get("config") or {},
                            args=record.get("argv", [])[self._args_offset():],
                            **{k: record[k] for k in ("internal", "lineage")
                               if isinstance(record.get(k), dict)})
            attempt = int(record.get("attempt", 1))
            key = last or "adopted"
            self._event("launch", key=key, runs=[[name, attempt]])
            self._event("submit", key=key, jobs={name: start.job if start else "?"})
            adopted += 1
        if adopted:
            self.progress.message(f"adopted {adopted} run director{'y' if adopted == 1 else 'ies'}"
                                  " the journal did not know as ended or running")

    def _args_offset(self) -> int:
        """Where a run's argument words start in its recorded argv."""
        return len(self.spec.command.argv_prefix(self.options.python)) + 1

    def _resolve(self, key: str, pairs: list[tuple[str, int]]) -> None:
        runs = [dataclasses.replace(self._run_of(self.states[run_id]), attempt=attempt,
                                    launch=key) for run_id, attempt in pairs]
        jobs = self.backend.resolve(key, runs)
        self._event("submit", key=key, jobs=jobs)
        if jobs:
            self.progress.message(f"a launch the last driver left unanswered started "
                                  f"{len(jobs)} of {len(runs)} run(s); watching them")

    def _reattach(self) -> None:
        in_flight = {}
        for state in self.states.values():
            if state.status == "running" and state.job_id is not None:
                run = self._run_of(state)
                in_flight[run.run_id] = (run, state.job_id)
                self.active[run.run_id] = run
        if in_flight:
            self.progress.message(f"reattaching to {len(in_flight)} run(s) of a previous driver")
            for run_id, (run, _job) in in_flight.items():
                if self.reader is not None:
                    self.reader.start(run_id, run.run_dir)
            for ended in self.backend.reattach(in_flight):
                self._record(ended)
        pruned = [self.active[r] for r in in_flight if r in self.active
                  and self.states[r].prune is not None]
        if pruned:  # decided before the restart: stop them again
            self._stop_runs(pruned)

    def _restore_pruner(self) -> None:
        """The pruner's rungs from the journal; for the median, the finished runs' curves."""
        if not self.spec.pruner.active:
            return
        for state in self.states.values():
            for rung, value in state.rungs or ():
                self.pruner.restore_rung(state.run_id, state.trial, int(rung), value)
            if state.status == "finished" and self.spec.pruner.name == "median":
                self.pruner.finished(state.run_id, state.trial, self._objective_points(
                    read_curve(self.out_dir / RUNS_DIR / state.run_id)))

    def _restore_strategy(self) -> None:
        self.strategy.restore(*restore_inputs(self.states, self.spec.objectives,
                                              self.policy,
                                              self.strategy.restored_with_outcomes,
                                              self._intermediate, self.spec.constraints))
        withdrawn = self.strategy.withdrawn()
        if withdrawn:
            gone = [s.run_id for s in self.states.values()
                    if s.trial in withdrawn and s.status == "pending"]
            if gone:
                self._event("withdraw", runs=gone)
                self.progress.message(f"{len(gone)} proposal(s) of the earlier grid that never "
                                      "ran are not in the grid any more: dropped")

    # -- signals --------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.interrupt(signum)

    def interrupt(self, signum: int) -> None:
        """Stop as SIGINT/SIGTERM would: from a signal handler, or from another thread (a
        driver that runs outside the main thread, e.g. in ``hpsearch serve``, installs no
        handlers: its owner calls this)."""
        if self.stop_reason is None:
            self.stop_reason = "interrupted"
            self.signal_number = signum
            self.progress.stop()
            self.progress.message(f"{signal.Signals(signum).name}: stopping; run the same "
                                  "command again to resume")

    def _stop_active(self) -> None:
        if not self.active:
            return
        cancel = (not self.backend.runs_outlive_driver or self.options.cancel_on_interrupt
                  or self.stop_reason in ("max_failures", "fail_fast"))
        if not cancel:
            queued = self.backend.queued()
            self.progress.message(
                f"{len(self.active)} job(s) stay on {self.backend.name} ({queued} queued, "
                f"{len(self.active) - queued} running): the same command reattaches to "
                f"them; hpsearch cancel {self.out_dir} cancels them")
            return
        ids = list(self.active)
        self.backend.cancel(ids)
        for run_id in ids:
            run = self.active[run_id]
            record = read_exit(run.run_dir, run.launch)
            if record is not None and not record.signalled:  # it ended on its own first
                self._record(Ended(run_id, record.exit_code, None,
                                   wall_time=record.wall_time))
            else:  # lost, unless its summary says it finished (it was tearing down)
                self._record(Ended(run_id, None, f"driver {self.stop_reason}", lost=True,
                                   wall_time=record.wall_time if record is not None else None))

    # -- the loop -------------------------------------------------------------------
    def run(self) -> int:
        main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
        try:
            return self._loop()
        finally:
            self.restored.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.strategy.close()
            self.backend.close()
            try:
                self.journal.close()
                self._compact()
            finally:
                with contextlib.suppress(OSError):  # a full disk: the journal has it all
                    self.results.maybe_write(self.states, force=True)
                if self.tracking is not None:  # last: what the search knows is written
                    self.tracking.close(self.progress.message)

    def _compact(self) -> None:
        """Compact the journal of a search that ended with nothing in flight, unless it is
        compact already (one event per run)."""
        idle = not self.active and not self.history.unresolved and self.stop_reason is None
        if idle and self.history.run_events > len(self.states):
            with contextlib.suppress(OSError):  # the journal as it is stays the truth
                compact(self.out_dir / JOURNAL_FILE, self.history)

    def _loop(self) -> int:
        self._event("start", host=socket.gethostname(), pid=os.getpid(),
                    backend=self.backend.name)
        self._restore()
        self.restored.set()
        self.backend.prepare(self.spec.command.argv_prefix(self.options.python),
                             self.options.run_cwd, self.resources.launcher)
        self._counts()
        ended: list[Ended] = []
        while True:
            if self.lock.lost and self.stop_reason is None:
                self.stop_reason = "lock_lost"
                self.stop_detail = ("another driver took over this search's lock; this one "
                                    "stops (its runs are left to the other)")
            starts = self.backend.started()  # said before the run's own end, after the
            ending = {end.run_id for end in ended}  # others' (that made room for it)
            self._announce_starts({r: j for r, j in starts.items() if r in ending})
            for end in ended:  # told before the next ask: a sampler proposes from every
                self._record(end)  # result there is (and a resumed search the same way)
            self._announce_starts({r: j for r, j in starts.items() if r not in ending})
            pruning = self.spec.pruner.active and self.stop_reason is None and bool(self.active)
            if pruning:
                now = time.monotonic()
                if now >= self._next_report_read:
                    self._next_report_read = now + max(
                        REPORT_INTERVAL, REPORT_INTERVAL_PER_RUN * len(self.active))
                    self._watch_reports()
            if self.stop_reason is None:
                self._fill()
            if self.stop_reason is not None or (
                    self.strategy.done and not self.ready and not self.active):
                if self.stop_reason is None and self._finish():
                    continue
                break
            self.journal.flush()
            self.results.maybe_write(self.states)
            if self.tracking is not None:
                self.tracking.pump(self.progress.message)
            self.progress.draw()
            timeout = 0.05 if self.strategy.busy else 1.0
            if self.spec.pruner.active and self.active:  # awake for the next read of the
                # reports (runs launched just now included: their first step is worth reading)
                timeout = min(timeout, max(0.0, self._next_report_read - time.monotonic()))
            self.backend.wait(timeout)
            ended = self.backend.poll()
        if self.stop_reason is not None:
            self.progress.stop()
        if self.stop_reason not in (None, "lock_lost"):
            self._stop_active()
        self._event("stop", reason=self.stop_reason or "done")
        self.journal.flush()
        self._counts()
        self.progress.finish()
        return self._exit_status()

    def _exit_status(self) -> int:
        if self.stop_detail:
            self.progress.message(self.stop_detail)
        if self.strategy.stop_note:
            self.progress.message(self.strategy.stop_note)
        if self.stop_reason == "interrupted":
            return 128 + (self.signal_number or signal.SIGINT)
        if self.stop_reason in ("max_failures", "fail_fast"):
            return EXIT_STOPPED_FOR_FAILURES
        if self.stop_reason == "lock_lost":
            return EXIT_SOME_FAILED
        failed = self.tally["failed"]
        if failed:
            earlier = "" if self.failed_attempts else " earlier (their --retries are spent)"
            self.progress.message(f"{failed} run(s) failed{earlier}; after fixing the sim, "
                                  f"run them again with: hpsearch retry {self.out_dir}")
        return EXIT_SOME_FAILED if failed else EXIT_ALL_FINISHED


def outcome_of(state: RunState, objectives: list[str],
               intermediate: Callable[[RunState], dict[int, float]] | None = None,
               constraints: Sequence[Constraint] = ()) -> Outcome:
    """What the strategy is told about an ended run (a pruned run with its curve, a
    finished one with how far it is past each constraint)."""
    values = objective_values(state.metrics, objectives)
    if state.status == "finished" and values is None:
        return Outcome(state.trial, "failed")
    curve = intermediate(state) if intermediate and state.status == "pruned" else {}
    violations = [c.violation(state.metrics) for c in constraints] if constraints and \
        state.status == "finished" else None
    return Outcome(state.trial, state.status, values, curve, violations)


def restore_inputs(states: dict[str, RunState], objectives: list[str], policy: Policy,
                   with_outcomes: bool,
                   intermediate: Callable[[RunState], dict[int, float]] | None = None,
                   constraints: Sequence[Constraint] = ()
                   ) -> tuple[list[Proposal], list[Outcome]]:
    """What a strategy is rebuilt from: every journaled proposal in trial order, and
    (``with_outcomes``: :attr:`Strategy.restored_with_outcomes`) the outcomes of the runs
    that ended for good (a failed run with retries left is not told)."""
    ordered = sorted(states.values(), key=lambda s: s.trial)
    proposals = [Proposal(s.trial, s.config, s.internal or {}, run_id=s.run_id,
                          lineage=s.lineage or {}) for s in ordered]
    outcomes = [outcome_of(s, objectives, intermediate, constraints) for s in ordered
                if with_outcomes and (
        s.status in ("finished", "pruned") or policy.failed_for_good(s))]
    return proposals, outcomes
