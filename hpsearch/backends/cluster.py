"""What every batch-scheduler backend (Slurm, LSF) shares.

A :class:`ClusterBackend` submits each launch as one job array (one script, rendered from a
template) named ``hps-<out_dir name>-<launch key>``, remembers ``{run_id: job_id}``, and
learns that a run ended from its run directory first (``exit_code`` with the launch's key).
Only runs without that file are asked about, in ONE scheduler query per poll, and no more
often than ``min_interval`` seconds (1 s); the interval doubles up to ``max_interval``
(30 s) while nothing changes and resets on change.

**At most ``--num_jobs`` runs at once, across arrays.** Each array gets a throttle (Slurm
``%N``, LSF ``%N``); an array with ``u`` runs not yet ended and throttle ``t`` runs at most
``min(u, t)``, so the backend keeps the sum of those under ``num_jobs``: a new array's
throttle is what is left (no new array while nothing is left), and when older arrays drain,
the throttle of a waiting one is raised (in a poll that made no query: one scheduler call
per poll at most).

**Submissions are idempotent.** The launch key is in the array's job name. When a
submission fails in a way that leaves open whether the array was queued (no answer in
time, ``Socket timed out``), the scheduler is asked once for a job of that name before
submitting again; a restarted driver does the same for a launch the journal never saw
answered (:meth:`resolve`), also looking at the runs' ``started_at`` files.

A job that left the queue (or reached a final state) without an ``exit_code`` file is
given ``exit_grace`` seconds for the file to show up (shared filesystems lag); then it is
reported as ``Ended(run_id, None, <scheduler state>)``. An exit file saying the command
died of a signal (status > 128) is reported once the scheduler has said why
(``TIMEOUT``, ``CANCELLED``, ``TERM_RUNLIMIT``...), with that as the reason.

The exit files cost one ``stat`` each, which adds up with thousands of queued runs on
NFS, so they are read sparingly: every run's file just before each scheduler query (a
"sweep", at most as often as the queries), and between queries, at most once per
``file_interval`` (1 s), only the files of runs the last query did not report as queued.

Subclasses supply the scheduler commands: :meth:`_submit_array`, :meth:`_query`,
:meth:`_find_array`, :meth:`_set_throttle`, :meth:`_cancel_jobs`, :meth:`_read_limits`,
:meth:`render_array`, :meth:`task_job_id`.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hpsearch.backends.base import Backend, BackendError, Ended, Run
from hpsearch.options import SearchOptions
from hpsearch.runfiles import ExitRecord, read_exit, read_start

DEFAULT_NUM_JOBS = 8
LOG_DIR = "slurm_logs"
#: scheduler states in which a job ended normally (a signal death is not explained by them)
_PLAIN_ENDS = frozenset({"COMPLETED", "DONE", "GONE"})


class SubmitRefused(BackendError):
    """The scheduler refused a submission for a passing reason (a submit limit, a busy
    controller); nothing was queued."""


class SubmitUnclear(BackendError):
    """A submission failed without saying whether the array was queued (no answer in time)."""


class QueryFailed(BackendError):
    """The scheduler query did not answer (controller down or busy)."""


@dataclass(frozen=True)
class Task:
    """One run inside an array script: its array index and the run."""

    task: int
    run: Run


@dataclass
class _Watched:
    run: Run
    job_id: str
    array_id: str
    state: str = "SUBMITTED"  # the scheduler's last word; SUBMITTED = not asked yet
    gone_at: float | None = None  # when the scheduler first said it is over/unknown
    signal_exit: ExitRecord | None = None  # died of a signal: waiting for the reason
    stop_grace: float | None = None  # asked to stop: SIGTERM not sent yet, grace to give
    kill_at: float | None = None  # SIGTERM sent: cancelled for good at this moment


@dataclass
class _Array:
    throttle: int
    run_ids: set[str] = field(default_factory=set)


class ClusterBackend(Backend):
    """Job arrays on a batch scheduler; see the module docstring."""

    name = "cluster"
    durable_intents = True
    #: the scheduler's commands this backend runs; all must be on PATH
    commands: tuple[str, ...] = ()
    #: where the scheduler's own --output/--error files go, under out_dir
    log_dir_name = LOG_DIR

    def __init__(self, options: SearchOptions, *, min_interval: float = 1.0,
                 max_interval: float = 30.0, exit_grace: float = 3.0,
                 file_interval: float = 1.0,
                 submit_backoff: float = 2.0, submit_patience: float = 600.0,
                 max_query_failures: int = 30,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self.num_jobs = options.num_jobs or DEFAULT_NUM_JOBS
        self.min_interval = max(1.0, min_interval)
        self.max_interval = max(self.min_interval, max_interval)
        self.exit_grace = exit_grace
        self.file_interval = file_interval
        self.submit_backoff = submit_backoff
        self.submit_patience = submit_patience
        self.max_query_failures = max_query_failures
        self._clock = clock
        self._sleep = sleep
        self._watched: dict[str, _Watched] = {}
        self._arrays: dict[str, _Array] = {}
        self._interval = self.min_interval
        self._next_query = 0.0
        self._next_file_check = 0.0
        self._found: list[Ended] = []  # read from exit files by wait(), reported by poll()
        self._query_failures = 0
        self._queue_cap: int | None = None  # lowered when the scheduler refuses for a limit
        self._limits_cache: tuple[int, int] | None = None
        #: scheduler commands run so far: queries, submissions, lookups, throttle changes
        self.scheduler_calls = 0
        #: exit files looked at so far (one stat each)
        self.file_checks = 0
        self.submit_calls = 0
        #: stopping calls (signals and cancels of pruned runs): at most one per poll
        self.stop_calls = 0
        self.log_dir = Path(options.out_dir) / self.log_dir_name
        self.script_dir = self.log_dir / "scripts"

    # -- scheduler hooks -----------------------------------------------------------------
    @abstractmethod
    def render_array(self, tasks: Sequence[Task], job_name: str, throttle: int) -> str:
        """The job script running ``tasks`` as one array, at most ``throttle`` at once."""

    @abstractmethod
    def _submit_array(self, script: Path) -> str:
        """Submit one array script; return its array job id. Raise SubmitRefused when the
        scheduler refused for now, SubmitUnclear when it may or may not have queued it."""

    @abstractmethod
    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        """``{job_id: state}`` for the given task ids, in ONE call; unknown ids are left out.

        Raise QueryFailed when the scheduler did not answer.
        """

    @abstractmethod
    def _find_array(self, job_name: str) -> str | None:
        """The id of the array named ``job_name`` if the scheduler knows one (ONE call)."""

    @abstractmethod
    def _set_throttle(self, array_id: str, throttle: int) -> None:
        """Let at most ``throttle`` tasks of the array run at once (ONE call)."""

    @abstractmethod
    def _cancel_jobs(self, job_ids: Sequence[str]) -> None:
        """Cancel the given jobs in one command."""

    @abstractmethod
    def _signal_jobs(self, job_ids: Sequence[str], signal_name: str) -> None:
        """Send ``signal_name`` (``TERM``) to every process of the given jobs, one command."""

    @abstractmethod
    def _read_limits(self) -> tuple[int, int]:
        """(largest number of tasks in one array, largest number of queued jobs)."""

    @abstractmethod
    def task_job_id(self, array_id: str, task: int) -> str:
        """The id of one array task, e.g. ``1234_7`` on Slurm."""

    @abstractmethod
    def array_of(self, job_id: str) -> str:
        """The array id of a task id (``1234_7`` -> ``1234`` on Slurm)."""

    # -- limits and room -------------------------------------------------------------------
    def limits(self) -> tuple[int, int]:
        """(max tasks per array, max jobs queued), asked of the scheduler once."""
        if self._limits_cache is None:
            self._limits_cache = self._read_limits()
        return self._limits_cache

    def _in_use(self) -> int:
        """The most runs that may be running now: ``sum(min(unended, throttle))``."""
        return sum(min(len(a.run_ids), a.throttle) for a in self._arrays.values())

    def free_slots(self) -> int:
        return max(0, self.num_jobs - self._in_use())

    def room(self) -> int:
        """How many runs the next array may hold: none while ``num_jobs`` runs may be
        running; else up to the max array size and the job-count limit (or a submit limit
        the scheduler enforced) minus the runs queued now."""
        if self.free_slots() == 0:
            return 0
        per_array, max_jobs = self.limits()
        cap = max_jobs if self._queue_cap is None else min(max_jobs, self._queue_cap)
        return max(0, min(per_array, cap - len(self._watched)))

    def job_ids(self) -> dict[str, str]:
        """``{run_id: job_id}`` of the runs being watched."""
        return {run_id: w.job_id for run_id, w in self._watched.items()}

    def queued(self) -> int:
        return sum(1 for w in self._watched.values()
                   if w.state in self.queued_states or w.state == "SUBMITTED")

    def running(self) -> set[str] | None:
        """Runs the last query saw started (their reports are worth reading)."""
        return {run_id for run_id, w in self._watched.items()
                if w.state not in self.queued_states and w.state != "SUBMITTED"}

    # -- submit ----------------------------------------------------------------------------
    def job_name(self, key: str) -> str:
        return f"hps-{Path(self.options.out_dir).resolve().name[:40]}-{key}"

    def _tasks(self, runs: Sequence[Run]) -> list[Task]:
        return [Task(i, run) for i, run in enumerate(runs)]

    def dry_run_scripts(self, runs: Sequence[Run]) -> list[str]:
        """The job scripts ``submit`` would write for ``runs`` (``--dry_run``)."""
        per_array, _ = self.limits()
        return [self.render_array(self._tasks(runs[i:i + per_array]), self.job_name("KEY"),
                                  self.num_jobs) for i in range(0, len(runs), per_array)]

    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        """Submit ``runs`` (at most ``room()``) as one array; return ``{run_id: job_id}``.

        A refusal for a submit limit or a time-out is retried with back-off; while other
        runs are queued, the refused runs are handed back instead (not started, not failed)
        and the queue cap is lowered to what the scheduler accepted.
        """
        runs = list(runs)[: self.room()]
        if not runs:
            return {}
        throttle = min(self.num_jobs, self.free_slots())
        tasks = self._tasks(runs)
        name = self.job_name(key)
        self.script_dir.mkdir(parents=True, exist_ok=True)
        script = self.script_dir / f"{name}.sh"
        script.write_text(self.render_array(tasks, name, throttle))
        array_id = self._submit_with_retry(script, name)
        if array_id is None:
            return {}
        self._arrays[array_id] = _Array(throttle)
        submitted = {}
        for t in tasks:
            job_id = self.task_job_id(array_id, t.task)
            self._watch(t.run, job_id, array_id)
            submitted[t.run.run_id] = job_id
        self._interval = self.min_interval
        self._next_query = self._clock() + self.min_interval
        # the sweep before that query is the first look at the new runs' files
        self._next_file_check = max(self._next_file_check, self._next_query)
        return submitted

    def _watch(self, run: Run, job_id: str, array_id: str) -> None:
        self._watched[run.run_id] = _Watched(run, job_id, array_id)
        self._arrays.setdefault(array_id, _Array(self.num_jobs)).run_ids.add(run.run_id)

    def _unwatch(self, run_id: str) -> _Watched:
        w = self._watched.pop(run_id)
        array = self._arrays.get(w.array_id)
        if array is not None:
            array.run_ids.discard(run_id)
            if not array.run_ids:
                del self._arrays[w.array_id]
        return w

    def _submit_with_retry(self, script: Path, name: str) -> str | None:
        delay = self.submit_backoff
        waited = 0.0
        while True:
            self.submit_calls += 1
            self.scheduler_calls += 1
            try:
                return self._submit_array(script)
            except SubmitUnclear as exc:
                self.scheduler_calls += 1
                try:
                    found = self._find_array(name)
                except QueryFailed:
                    found = None
                if found is not None:
                    return found
                problem: BackendError = exc
            except SubmitRefused as exc:
                if self._watched:
                    self._queue_cap = max(1, len(self._watched))
                    return None
                problem = exc
            if waited >= self.submit_patience:
                raise BackendError(f"{problem} (still failing after {waited:.0f} s)") \
                    from problem
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, 60.0)

    # -- poll ------------------------------------------------------------------------------
    #: scheduler states after which a job never runs again (subclasses set theirs)
    final_states: frozenset[str] = frozenset()
    #: scheduler states of a job waiting to start: its exit file is not looked for
    #: between sweeps (subclasses set theirs)
    queued_states: frozenset[str] = frozenset()

    def is_final(self, state: str) -> bool:
        """Whether a job in ``state`` (as ``_query`` names it) never runs again."""
        return state in self.final_states

    def _read_files(self, full: bool) -> list[Ended]:
        """Runs whose exit file exists: all watched (``full``) or those that may have run."""
        ended = []
        for run_id, w in list(self._watched.items()):
            if w.signal_exit is not None or (not full and w.state in self.queued_states):
                continue
            self.file_checks += 1
            record = read_exit(w.run.run_dir, w.run.launch)
            if record is None:
                continue
            if record.exit_code > 128:
                w.signal_exit = record  # reported once the scheduler said why
                continue
            self._unwatch(run_id)
            ended.append(Ended.recorded(run_id, record, {"job_id": w.job_id}))
        self._next_file_check = self._clock() + self.file_interval
        return ended

    def _query_due(self, now: float) -> bool:
        return now >= self._next_query and any(
            w.gone_at is None for w in self._watched.values())

    def poll(self) -> list[Ended]:
        """Runs that ended: exit files first, then one scheduler query when it is due."""
        ended, self._found = self._found, []
        now = self._clock()
        if self._query_due(now):
            ended += self._read_files(full=True)
        elif now >= self._next_file_check:
            ended += self._read_files(full=False)
        changed = bool(ended)
        asking = [w for w in self._watched.values() if w.gone_at is None]
        queried = bool(asking) and now >= self._next_query
        if queried:
            changed = self._ask(asking, now) or changed
            self._interval = (self.min_interval if changed
                              else min(self._interval * 2, self.max_interval))
            self._next_query = now + self._interval
        for run_id, w in list(self._watched.items()):
            if w.gone_at is not None and (now - w.gone_at >= self.exit_grace
                                          or w.signal_exit is not None):
                ended.append(self._gone(run_id, w))
        if not queried:  # at most one scheduler call per poll
            self._raise_throttle()
        self._stop_or_kill(now)
        return ended

    def stop(self, run_ids: Sequence[str], grace: float) -> None:
        """Mark the runs; the next poll sends them SIGTERM in one call (see the poll)."""
        for run_id in run_ids:
            w = self._watched.get(run_id)
            if w is not None and w.kill_at is None:
                w.stop_grace = grace

    def _stop_or_kill(self, now: float) -> None:
        """At most one stopping call per poll: cancel the runs whose grace is over, else
        send SIGTERM to the runs asked to stop."""
        due = [w for w in self._watched.values()
               if w.kill_at is not None and now >= w.kill_at and w.gone_at is None]
        if due:
            self.scheduler_calls += 1
            self.stop_calls += 1
            self._cancel_jobs([w.job_id for w in due])
            for w in due:
                w.kill_at = None
            return
        asked = [w for w in self._watched.values() if w.stop_grace is not None]
        if asked:
            self.scheduler_calls += 1
            self.stop_calls += 1
            self._signal_jobs([w.job_id for w in asked], "TERM")
            for w in asked:
                w.kill_at, w.stop_grace = now + w.stop_grace, None

    def _ask(self, asking: list[_Watched], now: float) -> bool:
        """One scheduler query about ``asking``; True when a state changed."""
        try:
            states = self._query([w.job_id for w in asking])
            self._query_failures = 0
        except QueryFailed as exc:
            self._query_failures += 1
            if self._query_failures >= self.max_query_failures:
                raise BackendError(f"scheduler query failed {self._query_failures} "
                                   f"times in a row: {exc}") from exc
            return False
        finally:
            self.scheduler_calls += 1
        changed = False
        for w in asking:
            state = states.get(w.job_id, "GONE")
            if state != w.state:
                changed = True
                w.state = state
            if state == "GONE" or self.is_final(state):
                w.gone_at = now
        return changed

    def _gone(self, run_id: str, w: _Watched) -> Ended:
        """The end of a run the scheduler says is over."""
        self._unwatch(run_id)
        extra = {"job_id": w.job_id}
        record = w.signal_exit or read_exit(w.run.run_dir, w.run.launch)  # a late file
        if record is not None:
            reason = None if w.state in _PLAIN_ENDS or not record.exit_code > 128 else w.state
            return Ended.recorded(run_id, record, extra, reason)
        reason = "gone from the queue" if w.state == "GONE" else w.state
        return Ended(run_id, None, reason, extra=extra)

    def _raise_throttle(self) -> None:
        """Give slots older arrays no longer need to the oldest array that waits for them."""
        spare = self.num_jobs - self._in_use()
        if spare <= 0:
            return
        for array_id, array in self._arrays.items():
            if len(array.run_ids) > array.throttle:
                new = min(array.throttle + spare, len(array.run_ids), self.num_jobs)
                self.scheduler_calls += 1
                try:
                    self._set_throttle(array_id, new)
                except BackendError:
                    return  # keep the old throttle: slower, never over the cap
                array.throttle = new
                return

    def wait(self, timeout: float) -> None:
        """Sleep until an exit file appears, a query is due, or ``timeout`` passed.

        Exit files are looked at once per ``file_interval``, only those of runs that may
        have run (see the module docstring); what is found is reported by the next poll.
        """
        deadline = self._clock() + max(0.0, timeout)
        while not self._found:
            now = self._clock()
            due = [self._next_query] if any(
                w.gone_at is None for w in self._watched.values()) else []
            due += [w.gone_at + self.exit_grace for w in self._watched.values()
                    if w.gone_at is not None]
            due += [w.kill_at for w in self._watched.values() if w.kill_at is not None]
            if any(w.stop_grace is not None for w in self._watched.values()):
                due.append(now)
            until = min([deadline, *due])
            if now >= until:
                return
            if now >= self._next_file_check:
                self._found = self._read_files(full=False)
                continue
            self._sleep(min(self._next_file_check, until) - now)

    # -- restart / cancel ------------------------------------------------------------------
    def resolve(self, key: str, runs: Sequence[Run]) -> dict[str, str]:
        """Ask the scheduler once for the array of launch ``key``; else trust ``started_at``."""
        self.scheduler_calls += 1
        try:
            array_id = self._find_array(self.job_name(key))
        except QueryFailed as exc:
            raise BackendError(f"cannot tell whether launch {key} was submitted: {exc}; "
                               "run the same command again once the scheduler answers") \
                from exc
        if array_id is not None:
            return {t.run.run_id: self.task_job_id(array_id, t.task) for t in self._tasks(runs)}
        started = {}
        for run in runs:
            start = read_start(run.run_dir)
            if start is not None and start.launch == key and start.job:
                started[run.run_id] = start.job
        return started

    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        """Watch jobs a previous driver submitted (never resubmitted); report those over.

        Their arrays' throttles are taken to be ``num_jobs`` (the most a previous driver
        set), so the cap holds whatever the previous driver did.
        """
        ended = []
        for run_id, (run, job_id) in jobs.items():
            record = read_exit(run.run_dir, run.launch)
            if record is not None and record.exit_code <= 128:
                ended.append(Ended.recorded(run_id, record, {"job_id": job_id}))
            else:
                self._watch(run, job_id, self.array_of(job_id))
                self._watched[run_id].signal_exit = record
        self._next_query = 0.0
        return ended

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        """Cancel the jobs of ``run_ids`` (all watched when None) with one command."""
        ids = list(self._watched) if run_ids is None else [
            r for r in run_ids if r in self._watched]
        job_ids = [self._watched[r].job_id for r in ids]
        if job_ids:
            self.scheduler_calls += 1
            self._cancel_jobs(job_ids)
        for run_id in ids:
            self._unwatch(run_id)
