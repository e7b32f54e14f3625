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

**Queued, then started.** A submitted run waits in the queue (:meth:`waits_to_start`) until
its ``started_at`` appears (the wrapper writes it before the command), which
:meth:`started` then reports once. A run not seen started has its ``started_at`` read in
place of its exit file (there is no exit file without it), and its exit file too while the
scheduler says it runs: a waiting run costs one look, as before, and a run one more, once.

**Packed launches** (``--runs_per_job N``): the launch's runs go into a queue on the shared
filesystem (:mod:`hpsearch.backends.cluster.claims`) and the array holds ``ceil(runs / N)`` workers
(:mod:`hpsearch.backends.cluster.worker`), each running up to N of them at once; ``--num_jobs``
counts jobs, so up to ``num_jobs x N`` runs run at once. A run's job is its array until a worker's
claim names the job that took it. Its exit file is read like any run's. A worker that ended (the
scheduler says so) leaves its claimed runs without an exit code, and the runs no worker took, to be
run again: they are reported ``lost`` (not charged), unless the job's end was the time limit or
preemption (see below) or a failure of the job itself (``FAILED``, ``OUT_OF_MEMORY``: charged, with
that reason). Stopping a packed run is a file the worker reads (``stops/<run_id>``), not a
scheduler call.

**Cut short by the scheduler.** An exit file whose command died of a signal, or was written
after the wrapper itself got SIGTERM/SIGINT/SIGHUP (cancel, requeue, preemption and the time
limit signal every process of a job), waits for the scheduler's word, as above -- unless the
packed worker itself stopped the run (its ``reason``, the ``walltime_warning``, or a stop the
driver asked for). A job the time limit ended (``timeout_states``) or whose run got the
time-limit warning is reported with ``cut="timeout"``, one preemption ended
(``preempted_states``) with ``cut="preempted"``. A job the scheduler requeued starts its
script again with the same launch: the wrapper then runs as ``<key>.<r>``. Seeing that key
in ``started_at`` or ``exit_code`` (``started_at`` is read for runs whose exit waits for the
scheduler's word and for runs the scheduler put back in its queue), the backend reports
``Ended(restarted=<key>.<r>)`` for each restart and goes on watching the run under that key.

Subclasses supply the scheduler commands: :meth:`_submit_array`, :meth:`_query`,
:meth:`_find_array`, :meth:`_set_throttle`, :meth:`_cancel_jobs`, :meth:`_read_limits`,
:meth:`render_array`, :meth:`render_workers`, :meth:`task_job_id`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.backends.accounting import Ledger, hold_of, hours, measured
from hpsearch.backends.base import Backend, BackendError, Ended, Run
from hpsearch.backends.cluster import claims
from hpsearch.engine.options import SearchOptions
from hpsearch.runs.files import (
    ATTEMPTS_DIR,
    REASON_FILE,
    ExitRecord,
    read_exit,
    read_start,
    split_launch,
    was_warned,
)
from hpsearch.runs.wrapper import RUN_FUNCTION, TASK_FUNCTION

DEFAULT_NUM_JOBS = 8
LOG_DIR = "slurm_logs"
#: scheduler states in which a job ended normally (a signal death is not explained by them)
_PLAIN_ENDS = frozenset({"COMPLETED", "DONE", "GONE"})
#: states of a packed run this backend gives itself: no worker holds it yet; one does
_UNCLAIMED, _CLAIMED = "UNCLAIMED", "CLAIMED"
#: the time-limit warning when the job's limit is long enough (see :func:`walltime_warning`)
DEFAULT_WALLTIME_WARNING = 300


def walltime_warning(options: SearchOptions, limit: float | None) -> int:
    """Seconds before a job's time limit at which its runs get SIGTERM to save their work
    (``--walltime_warning``); 0, no warning, when the flag is 0, the job has no limit, or
    its limit (``limit`` seconds) is not longer than twice that."""
    seconds = int(options.walltime_warning)
    return seconds if seconds > 0 and limit and limit > 2 * seconds else 0


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
class _Pack:
    """A packed launch: its queue's folder and the array of workers that claim its runs."""

    key: str
    folder: Path
    tasks: list[str]  # the workers' job ids
    claims: dict[str, str] = field(default_factory=dict)  # run id -> the worker that took it


@dataclass
class _Watched:
    run: Run
    job_id: str
    array_id: str
    state: str = "SUBMITTED"  # the scheduler's last word; SUBMITTED = not asked yet
    gone_at: float | None = None  # when the scheduler first said it is over/unknown
    signal_exit: ExitRecord | None = None  # signalled: waiting for the scheduler's word
    stop_grace: float | None = None  # asked to stop: SIGTERM not sent yet, grace to give
    kill_at: float | None = None  # SIGTERM sent: cancelled for good at this moment
    pack: _Pack | None = None  # the packed launch the run belongs to
    requeued: bool = False  # its job ran, then the scheduler put it back in its queue
    started: bool = False  # its started_at (of this launch) was seen


@dataclass
class _Array:
    throttle: int
    per: int = 1  # runs one job of the array runs at once (--runs_per_job)
    run_ids: set[str] = field(default_factory=set)


class ClusterBackend(Backend):
    """Job arrays on a batch scheduler; see the module docstring."""

    name = "cluster"
    durable_intents = True
    #: the scheduler's commands this backend runs; all must be on PATH
    commands: tuple[str, ...] = ()
    #: where the scheduler's own --output/--error files go, under out_dir
    log_dir_name = LOG_DIR

    #: scheduler states of a job the time limit ended
    timeout_states: frozenset[str] = frozenset()
    #: scheduler states of a job preemption ended (it will not start again by itself)
    preempted_states: frozenset[str] = frozenset()
    #: final states of a worker job that leave its unfinished runs blameless: they are given
    #: back and run again (cancelled, node failure, the worker stopped taking runs)
    lost_states: frozenset[str] = frozenset()
    #: whether the scheduler's signals to a job (cancel, requeue) reach every process of it,
    #: those in sessions of their own too (a packed run's); else the worker passes them on
    signals_every_process = False

    def __init__(self, options: SearchOptions, *, min_interval: float = 1.0,
                 max_interval: float = 30.0, exit_grace: float = 3.0,
                 file_interval: float = 1.0,
                 submit_backoff: float = 2.0, submit_patience: float = 600.0,
                 max_query_failures: int = 30,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self.num_jobs = options.num_jobs or DEFAULT_NUM_JOBS
        #: runs one job runs at once: --runs_per_job (packed), else 1
        self.per_job = options.runs_per_job or 1
        self.packed = options.runs_per_job is not None
        self.warning = walltime_warning(options, self.time_limit())
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
        self._starts: dict[str, str] = {}  # run id -> job: seen started, not reported yet
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
        self._ledger = Ledger(share_cpus=True)  # what the runs of a packed job shared
        self._accounting = self.accounts_jobs  # until it said it keeps no accounts
        self._one_run_jobs: set[str] = set()  # ended runs of one-run jobs, to account
        #: accounting calls so far (sacct asks slurmdbd, not the controller: not counted
        #: as scheduler calls)
        self.accounting_calls = 0

    # -- scheduler hooks -----------------------------------------------------------------
    @abstractmethod
    def render_array(self, tasks: Sequence[Task], job_name: str, throttle: int) -> str:
        """The job script running ``tasks`` as one array, at most ``throttle`` at once."""

    @staticmethod
    def run_context(tasks: Sequence[Task], index_name: str, first: int) -> dict[str, Any]:
        """The template variables of an array of runs: the job wrapper's functions and each
        run (its array index, counted from ``first``, under ``index_name``)."""
        return {"run_function": RUN_FUNCTION, "task_function": TASK_FUNCTION,
                "runs": [{index_name: t.task + first, "run_id": t.run.run_id,
                          "launch": t.run.launch, "run_dir": str(Path(t.run.run_dir).resolve()),
                          "cwd": str(Path(t.run.cwd).resolve()), "argv": list(t.run.argv),
                          "env": dict(t.run.env)} for t in tasks]}

    @abstractmethod
    def render_workers(self, count: int, job_name: str, throttle: int,
                       worker: Mapping[str, Any]) -> str:
        """The job script of an array of ``count`` packed workers, at most ``throttle`` at
        once; ``worker``: ``{"argv": [python, "-m", "hpsearch.worker", pack folder], "runs":
        how many runs the pack holds, "runs_per_job": N}``."""

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

    def time_limit(self) -> float | None:
        """Seconds a job may run (``--num_hours``, unless an option of the scheduler's own
        sets it); None: no limit."""
        return self.options.num_hours * 3600 if self.options.num_hours else None

    #: whether :meth:`_account` asks the scheduler's accounting (Slurm's sacct)
    accounts_jobs = False

    def _account(self, job_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """``{job_id: {"gpu_hours", "cpu_hours"}}`` as the scheduler's accounting has them
        (ONE call); ``{}`` when it keeps none."""
        return {}

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
        """The most runs that may be running now: ``sum(min(unended, throttle x per job))``."""
        return sum(min(len(a.run_ids), a.throttle * a.per) for a in self._arrays.values())

    def free_slots(self) -> int:
        return max(0, self.num_jobs * self.per_job - self._in_use())

    def room(self) -> int:
        """How many runs the next array may hold: none while ``num_jobs`` runs may be
        running; else up to the max array size and the job-count limit (or a submit limit
        the scheduler enforced) minus the runs queued now."""
        if self.free_slots() == 0:
            return 0
        per_array, max_jobs = self.limits()
        cap = max_jobs if self._queue_cap is None else min(max_jobs, self._queue_cap)
        return max(0, min(per_array * self.per_job, cap * self.per_job - len(self._watched)))

    def job_ids(self) -> dict[str, str]:
        """``{run_id: job_id}`` of the runs being watched."""
        return {run_id: w.job_id for run_id, w in self._watched.items()}

    def _waiting(self, w: _Watched) -> bool:
        """Not started as far as we know: queued, not asked about yet, or no worker's."""
        return w.state in self.queued_states or w.state in ("SUBMITTED", _UNCLAIMED)

    def queued(self) -> int:
        return sum(1 for w in self._watched.values() if self._waiting(w) and not w.started)

    def running(self) -> set[str] | None:
        """Runs seen started, by the last query or their ``started_at`` (their reports are
        worth reading)."""
        return {run_id for run_id, w in self._watched.items()
                if w.started or not self._waiting(w)}

    def waits_to_start(self, run_id: str) -> bool:
        w = self._watched.get(run_id)
        return w is not None and not w.started

    def started(self) -> dict[str, str]:
        starts, self._starts = self._starts, {}
        return starts

    def _note_start(self, run_id: str, w: _Watched, job: str) -> None:
        """The run started (as job ``job``): reported once by :meth:`started`."""
        w.started = True
        self._starts[run_id] = job or w.job_id


    # -- submit ----------------------------------------------------------------------------
    def job_name(self, key: str) -> str:
        return f"hps-{Path(self.options.out_dir).resolve().name[:40]}-{key}"

    def _tasks(self, runs: Sequence[Run]) -> list[Task]:
        return [Task(i, run) for i, run in enumerate(runs)]

    def dry_run_scripts(self, runs: Sequence[Run]) -> list[str]:
        """The job scripts ``submit`` would write for ``runs`` (``--dry_run``)."""
        per_array, _ = self.limits()
        chunk = per_array * self.per_job
        return [self._script(runs[i:i + chunk], "KEY", self.num_jobs)
                for i in range(0, len(runs), chunk)]

    def _script(self, runs: Sequence[Run], key: str, throttle: int) -> str:
        """The job script of one launch: an array of its runs, or of packed workers."""
        if not self.packed:
            return self.render_array(self._tasks(runs), self.job_name(key), throttle)
        folder = claims.pack_dir(Path(self.options.out_dir).resolve(), key)
        return self.render_workers(self._workers(len(runs)), self.job_name(key), throttle, {
            "argv": [sys.executable, "-m", "hpsearch.worker", str(folder)],
            "runs": len(runs), "runs_per_job": self.per_job})

    def _workers(self, runs: int) -> int:
        return math.ceil(runs / self.per_job)

    def _write_queue(self, runs: Sequence[Run], key: str) -> Path:
        """The packed launch's ``queue.json`` (before its array is submitted)."""
        options = self.options
        folder = claims.pack_dir(Path(options.out_dir).resolve(), key)
        claims.write_queue(folder, claims.Queue(
            key, self.per_job, self._workers(len(runs)), options.timeout, self.warning,
            self.signals_every_process,
            {"allowed_load": options.allowed_load, "allowed_memory": options.allowed_memory,
             "max_num_jobs_per_gpu": options.max_num_jobs_per_gpu,
             "sim_startup_time": options.sim_startup_time,
             "gpu_memory_per_run": options.gpu_memory_per_run},
            tuple(dataclasses.replace(r, run_dir=Path(r.run_dir).resolve(),
                                      cwd=Path(r.cwd).resolve()) for r in runs)))
        return folder

    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        """Submit ``runs`` (at most ``room()``) as one array; return ``{run_id: job_id}``
        (a packed launch's runs: the array's id, until a worker claims them).

        A refusal for a submit limit or a time-out is retried with back-off; while other
        runs are queued, the refused runs are handed back instead (not started, not failed)
        and the queue cap is lowered to what the scheduler accepted.
        """
        runs = list(runs)[: self.room()]
        if not runs:
            return {}
        throttle = min(self.num_jobs, math.ceil(self.free_slots() / self.per_job))
        name = self.job_name(key)
        folder = self._write_queue(runs, key) if self.packed else None
        self.script_dir.mkdir(parents=True, exist_ok=True)
        script = self.script_dir / f"{name}.sh"
        script.write_text(self._script(runs, key, throttle))
        array_id = self._submit_with_retry(script, name)
        if array_id is None:
            return {}
        self._arrays[array_id] = _Array(throttle, self.per_job)
        submitted = {}
        if folder is not None:
            pack = _Pack(key, folder, [self.task_job_id(array_id, i)
                                       for i in range(self._workers(len(runs)))])
            for run in runs:
                self._watch(run, array_id, array_id, pack)
                submitted[run.run_id] = array_id
        for t in self._tasks(runs) if folder is None else ():
            job_id = self.task_job_id(array_id, t.task)
            self._watch(t.run, job_id, array_id)
            submitted[t.run.run_id] = job_id
        self._interval = self.min_interval
        self._next_query = self._clock() + self.min_interval
        # the sweep before that query is the first look at the new runs' files
        self._next_file_check = max(self._next_file_check, self._next_query)
        return submitted

    def _watch(self, run: Run, job_id: str, array_id: str, pack: _Pack | None = None) -> None:
        self._watched[run.run_id] = _Watched(run, job_id, array_id, pack=pack)
        per = 1 if pack is None else self.per_job
        self._arrays.setdefault(array_id, _Array(self.num_jobs, per)).run_ids.add(run.run_id)

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
        """What the run directories say: exit files of all watched runs (``full``) or of
        those that may have run; restarts of requeued jobs; the packs' new claims."""
        for pack in {id(w.pack): w.pack for w in self._watched.values()
                     if w.pack is not None and w.run.run_id not in w.pack.claims}.values():
            self._read_claims(pack)
        ended = []
        for run_id, w in list(self._watched.items()):
            if w.signal_exit is not None or w.requeued:
                self.file_checks += 1
                ended += self._restarts(w, read_start(w.run.run_dir))
            unclaimed = w.pack is not None and run_id not in w.pack.claims
            if w.signal_exit is not None or unclaimed or (
                    not full and w.state in self.queued_states and not w.requeued):
                continue
            if not w.started and not self._look_for_start(run_id, w) and self._waiting(w):
                continue  # still queued: no exit file without a started_at
            self.file_checks += 1
            ended += self._look(run_id, w)
        self._next_file_check = self._clock() + self.file_interval
        return ended

    def _read_claims(self, pack: _Pack) -> None:
        """Which of the pack's runs a worker took since the last look (one listing)."""
        for run_id in claims.claimed(pack.folder) - set(pack.claims):
            record = claims.read_claim(pack.folder, run_id)
            if record is None:
                continue
            pack.claims[run_id] = record["job"]
            w = self._watched.get(run_id)
            if w is not None and w.pack is pack:
                w.job_id = record["job"]
                if w.state in (_UNCLAIMED, "SUBMITTED"):
                    w.state = _CLAIMED

    def _look_for_start(self, run_id: str, w: _Watched) -> bool:
        """Whether the run's ``started_at`` (of its launch) is there now (one look)."""
        self.file_checks += 1
        start = read_start(w.run.run_dir)
        if start is None or split_launch(start.launch)[0] != split_launch(w.run.launch)[0]:
            return False
        self._note_start(run_id, w, start.job)
        return True

    def _look(self, run_id: str, w: _Watched) -> list[Ended]:
        """The run's exit file, if it is this launch's (or a restart's): reported now, or
        kept until the scheduler says why the job ended."""
        record = read_exit(w.run.run_dir)
        if record is None or split_launch(record.launch)[0] != split_launch(w.run.launch)[0]:
            return []
        if not w.started:  # it ran: its started_at could not be written, or was not read
            self._note_start(run_id, w, w.job_id)
        ended = self._restarts(w, record)
        if record.launch != w.run.launch:
            return ended  # an older start's file, retired by now
        if record.signalled and not (w.pack is not None and self._worker_stopped(w)):
            w.signal_exit = record  # reported once the scheduler said why
            return ended
        self._unwatch(run_id)
        warned = was_warned(w.run.run_dir, w.run.launch)
        return [*ended, Ended.recorded(run_id, record, {"job_id": w.job_id,
                                                        **self._usage(w, w.run.run_dir, record)},
                                       cut="timeout" if warned else None)]

    def _usage(self, w: _Watched, folder: Path, record: ExitRecord) -> dict[str, float]:
        """``gpu_hours`` and ``cpu_hours`` of the start whose files are in ``folder``
        (:mod:`hpsearch.backends.accounting`): a job's own, or for a packed run, split with the
        runs of its job that held its GPU and CPUs at the same time."""
        start = read_start(folder)
        if start is None or start.launch != record.launch:
            return {}
        hold = hold_of(start, record)
        if w.pack is None:
            self._one_run_jobs.add(w.run.run_id)  # the scheduler may account its job
            return hours(*measured(hold, [], share_cpus=False))
        others = [hold_of(s, None) for r, job in w.pack.claims.items()
                  if job == w.job_id and r != w.run.run_id and r in self._watched
                  and (s := read_start(self._watched[r].run.run_dir)) is not None
                  and s.job == w.job_id]
        return self._ledger.charge(w.job_id, hold, others)

    def _cut_usage(self, w: _Watched) -> dict[str, float]:
        """The usage of the start a requeue cut short: its files are in the run's latest
        ``attempts/<n>/`` (the wrapper moved them there)."""
        folder = w.run.run_dir / ATTEMPTS_DIR
        try:
            latest = max((int(p.name) for p in folder.iterdir() if p.name.isdigit()), default=0)
        except OSError:
            return {}
        record = read_exit(folder / str(latest), w.run.launch) if latest else None
        return {} if record is None else self._usage(w, folder / str(latest), record)

    def _worker_stopped(self, w: _Watched) -> bool:
        """Whether the packed worker itself stopped the run: for its ``--timeout`` (its
        ``reason``), the job's time-limit warning, or a stop the driver asked for."""
        return ((w.run.run_dir / REASON_FILE).exists()
                or was_warned(w.run.run_dir, w.run.launch)
                or (w.pack is not None and w.run.run_id in claims.stop_requests(w.pack.folder)))

    def _restarts(self, w: _Watched, record: Any) -> list[Ended]:
        """``Ended(restarted=...)`` for each start of the run's job that the scheduler made
        again since the launch we watch (``record``: its ``started_at`` or ``exit_code``)."""
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
                               extra={"job_id": w.job_id, **self._cut_usage(w)},
                               wall_time=cut.wall_time if cut else None,
                               restarted=f"{base}.{now}"))
            w.run = dataclasses.replace(w.run, launch=f"{base}.{now}", attempt=w.run.attempt + 1)
            w.signal_exit, w.requeued, w.gone_at = None, False, None
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
        return self._accounted(ended)

    def _accounted(self, ended: list[Ended]) -> list[Ended]:
        """The ends of one-run jobs with their usage as the scheduler accounted it, where it
        keeps accounts: one call for all of them (to the accounting daemon, not the
        controller); once it answered that it keeps none, never asked again."""
        jobs = [e.extra["job_id"] for e in ended if e.run_id in self._one_run_jobs
                and e.restarted is None]
        self._one_run_jobs.difference_update(e.run_id for e in ended)
        if not jobs or not self._accounting:
            return ended
        self.accounting_calls += 1
        accounts = self._account(jobs)
        self._accounting = bool(accounts)
        return [dataclasses.replace(e, extra={**e.extra, **accounts[e.extra["job_id"]]})
                if e.restarted is None and e.extra.get("job_id") in accounts else e
                for e in ended]

    def stop(self, run_ids: Sequence[str], grace: float) -> None:
        """Mark the runs; the next poll sends them SIGTERM in one call (see the poll). A
        packed run's worker is asked through the pack's ``stops/`` instead."""
        for run_id in run_ids:
            w = self._watched.get(run_id)
            if w is not None and w.pack is not None:
                claims.request_stop(w.pack.folder, [run_id], grace)
            elif w is not None and w.kill_at is None:
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
            states = self._query(sorted({j for w in asking for j in self._ids_of(w)}))
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
            state = self._state_of(w, states)
            if state != w.state:
                changed = True
                if state in self.queued_states and not self._waiting(w):
                    w.requeued = True  # it ran; now it waits to start again
                w.state = state
            if state == "GONE" or self.is_final(state):
                w.gone_at = now
        return changed

    def _ids_of(self, w: _Watched) -> list[str]:
        """The jobs to ask about for ``w``: its own, or every worker of its pack while no
        worker claimed it."""
        if w.pack is None or w.run.run_id in w.pack.claims:
            return [w.job_id]
        return w.pack.tasks

    def _state_of(self, w: _Watched, states: Mapping[str, str]) -> str:
        """The scheduler's word on ``w``: its job's state; for a run no worker claimed,
        ``GONE`` once every worker is over, else ``UNCLAIMED``."""
        ids = self._ids_of(w)
        if ids == [w.job_id]:
            return states.get(w.job_id, "GONE")
        over = [states.get(t, "GONE") for t in ids]
        if all(s == "GONE" or self.is_final(s) for s in over):  # a failure of theirs, if any
            return next((s for s in over if s not in self.lost_states), "GONE")
        return _UNCLAIMED

    def _gone(self, run_id: str, w: _Watched) -> Ended:
        """The end of a run the scheduler says is over."""
        self._unwatch(run_id)
        extra = {"job_id": w.job_id}
        record = w.signal_exit or read_exit(w.run.run_dir, w.run.launch)  # a late file
        state = w.state
        cut = ("timeout" if state in self.timeout_states
               or was_warned(w.run.run_dir, w.run.launch)
               else "preempted" if state in self.preempted_states else None)
        if w.pack is not None and cut is None and state in self.lost_states | {"GONE"} and (
                record is None or record.signalled):
            why = (f"its job {w.job_id} ended ({state}) before the run did"
                   if run_id in w.pack.claims else f"no job of launch {w.pack.key} took it")
            return Ended(run_id, None, why, lost=True, extra=extra)
        if record is not None:
            if not w.started:
                self._note_start(run_id, w, w.job_id)
            reason = None if state in _PLAIN_ENDS or not record.signalled else state
            extra.update(self._usage(w, w.run.run_dir, record))
            return Ended.recorded(run_id, record, extra, reason, cut=cut)
        reason = "gone from the queue" if state == "GONE" else state
        return Ended(run_id, None, reason, extra=extra, cut=cut)

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
        folder = claims.pack_dir(Path(self.options.out_dir).resolve(), key)
        packed = (folder / claims.QUEUE_FILE).exists()
        if array_id is not None:
            return {t.run.run_id: array_id if packed else self.task_job_id(array_id, t.task)
                    for t in self._tasks(runs)}
        started = {}
        for run in runs:
            start = read_start(run.run_dir)
            if start is not None and split_launch(start.launch)[0] == key and start.job:
                started[run.run_id] = start.job
        for run_id in claims.claimed(folder) if packed else ():
            record = claims.read_claim(folder, run_id)
            if record is not None:
                started[run_id] = record["job"]
        if packed and started:  # a worker ran: the array was submitted, with every run
            array = self.array_of(next(iter(started.values())))
            return {run.run_id: array for run in runs}
        return started

    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        """Watch jobs a previous driver submitted (never resubmitted); report those over.

        Their arrays' throttles are taken to be ``num_jobs`` (the most a previous driver
        set), so the cap holds whatever the previous driver did.
        """
        packs: dict[str, _Pack | None] = {}
        for run_id, (run, job_id) in jobs.items():
            key = split_launch(run.launch)[0]
            if key not in packs:
                packs[key] = self._reattach_pack(key, self.array_of(job_id))
            self._watch(run, job_id, self.array_of(job_id), packs[key])
            start = read_start(run.run_dir)  # started before: not reported again
            self._watched[run_id].started = (start is not None
                                             and split_launch(start.launch)[0] == key)
            if packs[key] is not None:
                self._watched[run_id].state = _UNCLAIMED
        for pack in filter(None, packs.values()):
            self._read_claims(pack)
        ended = []
        for run_id, w in list(self._watched.items()):
            if run_id in jobs and (w.pack is None or run_id in w.pack.claims):
                ended += self._look(run_id, w)
        self._next_query = 0.0
        return ended

    def _reattach_pack(self, key: str, array_id: str) -> _Pack | None:
        """The pack of launch ``key`` from its ``queue.json``; None for a launch of runs."""
        folder = claims.pack_dir(Path(self.options.out_dir).resolve(), key)
        try:
            queue = claims.read_queue(folder)
        except (OSError, ValueError, KeyError):
            return None
        self.per_job = max(self.per_job, queue.runs_per_job)
        return _Pack(key, folder, [self.task_job_id(array_id, i) for i in range(queue.workers)])

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        """Cancel the jobs of ``run_ids`` (all watched when None) with one command. A packed
        run is stopped through its pack (no worker starts it then); a worker array goes
        when all its runs do."""
        ids = list(self._watched) if run_ids is None else [
            r for r in run_ids if r in self._watched]
        job_ids = [self._watched[r].job_id for r in ids if self._watched[r].pack is None]
        for run_id in ids:
            w = self._watched[run_id]
            if w.pack is not None:
                claims.request_stop(w.pack.folder, [run_id], 0)
        job_ids += sorted({self._watched[r].array_id for r in ids
                           if self._watched[r].pack is not None
                           and self._arrays[self._watched[r].array_id].run_ids <= set(ids)})
        if job_ids:
            self.scheduler_calls += 1
            self._cancel_jobs(job_ids)
        for run_id in ids:
            self._unwatch(run_id)
