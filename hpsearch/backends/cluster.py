"""What every batch-scheduler backend (Slurm, LSF) shares.

A :class:`ClusterBackend` submits runs as job arrays (one script per array, rendered from
a template), remembers ``{run_id: job_id}``, and learns that a run ended from its run
directory first (``exit_code``). Only runs without that file are asked about, in ONE
scheduler query per poll, and no more often than ``min_interval`` seconds (1 s); the
interval doubles up to ``max_interval`` (30 s) while nothing changes and resets on change.

A job that left the queue (or reached a final state) without an ``exit_code`` file is
given ``exit_grace`` seconds for the file to show up (shared filesystems lag); then it is
reported as ``Ended(run_id, None, <scheduler state>)``.

The exit files cost one ``stat`` each, which adds up with thousands of queued runs on
NFS, so they are read sparingly: every run's file just before each scheduler query (a
"sweep", at most as often as the queries), and between queries, at most once per
``file_interval`` (1 s), only the files of runs the last query did not report as queued
(``queued_states``: a pending job cannot have finished).

Subclasses supply the scheduler commands: :meth:`_submit_array`, :meth:`_query`,
:meth:`_cancel_jobs`, :meth:`_limits`, :meth:`render_array`.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hpsearch.backends.base import Backend, BackendError, Ended, Run
from hpsearch.options import SearchOptions
from hpsearch.runfiles import read_exit

DEFAULT_NUM_JOBS = 8
LOG_DIR = "slurm_logs"


class SubmitRefused(BackendError):
    """The scheduler refused a submission for a passing reason (submit limit, time-out)."""


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
    state: str = "SUBMITTED"  # the scheduler's last word; SUBMITTED = not asked yet
    gone_at: float | None = None  # when the scheduler first said it is over/unknown


class ClusterBackend(Backend):
    """Job arrays on a batch scheduler; see the module docstring."""

    name = "cluster"
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
        self._interval = self.min_interval
        self._next_query = 0.0
        self._next_file_check = 0.0
        self._found: list[Ended] = []  # read from exit files by wait(), reported by poll()
        self._query_failures = 0
        self._queue_cap: int | None = None  # lowered when the scheduler refuses for a limit
        self._limits_cache: tuple[int, int] | None = None
        self._script_count = 0
        #: scheduler commands run so far: queries (squeue/bjobs) and submissions (sbatch)
        self.scheduler_calls = 0
        #: exit files looked at so far (one stat each)
        self.file_checks = 0
        self.submit_calls = 0
        self.log_dir = Path(options.out_dir) / self.log_dir_name
        self.script_dir = self.log_dir / "scripts"

    # -- scheduler hooks -----------------------------------------------------------------
    @abstractmethod
    def render_array(self, tasks: Sequence[Task], job_name: str) -> str:
        """The job script running ``tasks`` as one array."""

    @abstractmethod
    def _submit_array(self, script: Path) -> str:
        """Submit one array script; return its array job id. Raise SubmitRefused to retry."""

    @abstractmethod
    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        """``{job_id: state}`` for the given task ids, in ONE call; unknown ids are left out.

        Raise QueryFailed when the scheduler did not answer.
        """

    @abstractmethod
    def _cancel_jobs(self, job_ids: Sequence[str]) -> None:
        """Cancel the given jobs in one command."""

    @abstractmethod
    def _read_limits(self) -> tuple[int, int]:
        """(largest number of tasks in one array, largest number of queued jobs)."""

    @abstractmethod
    def task_job_id(self, array_id: str, task: int) -> str:
        """The id of one array task, e.g. ``1234_7`` on Slurm."""

    # -- limits and room -------------------------------------------------------------------
    def limits(self) -> tuple[int, int]:
        """(max tasks per array, max jobs queued), asked of the scheduler once."""
        if self._limits_cache is None:
            self._limits_cache = self._read_limits()
        return self._limits_cache

    def room(self) -> int:
        """How many more runs may be queued: the job-count limit (or a submit limit the
        scheduler enforced) minus the runs queued now. Concurrency is not limited here but
        by the array throttle (``%num_jobs``)."""
        _, max_jobs = self.limits()
        cap = max_jobs if self._queue_cap is None else min(max_jobs, self._queue_cap)
        return max(0, cap - len(self._watched))

    def job_ids(self) -> dict[str, str]:
        """``{run_id: job_id}`` of the runs being watched."""
        return {run_id: w.job_id for run_id, w in self._watched.items()}

    # -- submit ----------------------------------------------------------------------------
    def job_name(self) -> str:
        return f"hps-{Path(self.options.out_dir).resolve().name}"[:64]

    def _arrays(self, runs: Sequence[Run]) -> list[list[Task]]:
        """``runs`` split into arrays of at most the scheduler's max array size."""
        per_array, _ = self.limits()
        return [[Task(i, run) for i, run in enumerate(runs[start:start + per_array])]
                for start in range(0, len(runs), per_array)]

    def dry_run_scripts(self, runs: Sequence[Run]) -> list[str]:
        """The job scripts ``submit`` would write for ``runs`` (``--dry_run``)."""
        return [self.render_array(tasks, self.job_name()) for tasks in self._arrays(runs)]

    def write_array_scripts(self, runs: Sequence[Run]) -> list[tuple[Path, list[Task]]]:
        """Render the scripts for ``runs``, split by the max array size."""
        self.script_dir.mkdir(parents=True, exist_ok=True)
        scripts = []
        for tasks in self._arrays(runs):
            self._script_count += 1
            path = self.script_dir / f"array_{time.time():.0f}_{self._script_count}.sh"
            path.write_text(self.render_array(tasks, self.job_name()))
            scripts.append((path, tasks))
        return scripts

    def submit(self, runs: Sequence[Run]) -> dict[str, str]:
        """Submit ``runs`` (at most ``room()``) as arrays; return ``{run_id: job_id}``.

        A refusal for a submit limit or a time-out is retried with back-off; while other
        runs are queued, the refused runs are handed back instead (not started, not failed)
        and the queue cap is lowered to what the scheduler accepted.
        """
        runs = list(runs)[: self.room()]
        if not runs:
            return {}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        submitted: dict[str, str] = {}
        for script, tasks in self.write_array_scripts(runs):
            array_id = self._submit_with_retry(script)
            if array_id is None:
                break
            for t in tasks:
                job_id = self.task_job_id(array_id, t.task)
                self._watched[t.run.run_id] = _Watched(t.run, job_id)
                submitted[t.run.run_id] = job_id
        if submitted:
            self._interval = self.min_interval
            self._next_query = self._clock() + self.min_interval
            # the sweep before that query is the first look at the new runs' files
            self._next_file_check = max(self._next_file_check, self._next_query)
        return submitted

    def _submit_with_retry(self, script: Path) -> str | None:
        delay = self.submit_backoff
        waited = 0.0
        while True:
            self.submit_calls += 1
            try:
                return self._submit_array(script)
            except SubmitRefused as exc:
                if self._watched:
                    self._queue_cap = max(1, len(self._watched))
                    return None
                if waited >= self.submit_patience:
                    raise BackendError(f"{exc} (still refused after {waited:.0f} s)") from exc
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
            if not full and w.state in self.queued_states:
                continue
            self.file_checks += 1
            record = read_exit(w.run.run_dir)
            if record is not None:
                del self._watched[run_id]
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
        if asking and now >= self._next_query:
            try:
                states = self._query([w.job_id for w in asking])
                self._query_failures = 0
            except QueryFailed as exc:
                self._query_failures += 1
                if self._query_failures >= self.max_query_failures:
                    raise BackendError(f"scheduler query failed {self._query_failures} "
                                       f"times in a row: {exc}") from exc
                states = None
            finally:
                self.scheduler_calls += 1
            if states is not None:
                for w in asking:
                    state = states.get(w.job_id, "GONE")
                    if state != w.state:
                        changed = True
                        w.state = state
                    if state == "GONE" or self.is_final(state):
                        w.gone_at = now
            self._interval = (self.min_interval if changed
                              else min(self._interval * 2, self.max_interval))
            self._next_query = now + self._interval
        for run_id, w in list(self._watched.items()):
            if w.gone_at is not None and now - w.gone_at >= self.exit_grace:
                del self._watched[run_id]
                record = read_exit(w.run.run_dir)  # a late file on a lagging filesystem
                if record is not None:
                    ended.append(Ended.recorded(run_id, record, {"job_id": w.job_id}))
                else:
                    reason = ("gone from the queue" if w.state == "GONE" else w.state)
                    ended.append(Ended(run_id, None, reason, extra={"job_id": w.job_id}))
        return ended

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
            until = min([deadline, *due])
            if now >= until:
                return
            if now >= self._next_file_check:
                self._found = self._read_files(full=False)
                continue
            self._sleep(min(self._next_file_check, until) - now)

    # -- reattach / cancel -----------------------------------------------------------------
    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        """Watch jobs a previous driver submitted (never resubmitted); report those over."""
        ended = []
        for run_id, (run, job_id) in jobs.items():
            record = read_exit(run.run_dir)
            if record is not None:
                ended.append(Ended.recorded(run_id, record, {"job_id": job_id}))
            else:
                self._watched[run_id] = _Watched(run, job_id)
        self._next_query = 0.0
        return ended

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        """Cancel the jobs of ``run_ids`` (all watched when None) with one command.

        They stay watched: ``poll`` reports them once the scheduler says they are over.
        """
        ids = list(self._watched) if run_ids is None else [
            r for r in run_ids if r in self._watched]
        job_ids = [self._watched[r].job_id for r in ids]
        if job_ids:
            self.scheduler_calls += 1
            self._cancel_jobs(job_ids)
            self._interval = self.min_interval
            self._next_query = self._clock()
