"""What every batch-scheduler backend (Slurm, LSF) shares: :class:`ClusterBackend`.

A :class:`ClusterBackend` submits each launch as one job array (one script, rendered from a
template) named ``hps-<out_dir name>-<launch key>``, remembers ``{run_id: job_id}``, and
learns that a run ended from its run directory first (``exit_code`` with the launch's key).
Only runs without that file are asked about, in ONE scheduler query per poll, and no more
often than ``min_interval`` seconds (1 s); the interval doubles up to ``max_interval``
(30 s) while nothing changes and resets on change. Between queries, exit files are looked at
at most once per ``file_interval`` (1 s).

The class wires the machinery together; each job lives in a module of its own:

- :mod:`~hpsearch.backends.cluster.scheduler`: the hooks a scheduler implements (one command
  each: submit, query, find, throttle, signal, cancel, limits, render), which a subclass
  (:mod:`hpsearch.backends.slurm.backend`, :mod:`hpsearch.backends.lsf.backend`) provides;
- :mod:`~hpsearch.backends.cluster.arrays`: the arrays' throttles under ``--num_jobs``, and
  submission with retries (idempotent by job name);
- :mod:`~hpsearch.backends.cluster.watchlist`: the watched runs, queued then started;
- :mod:`~hpsearch.backends.cluster.sweeps`: exit-file sweeps, the query, the verdicts;
- :mod:`~hpsearch.backends.cluster.requeue`: the time limit, its warning, preemption, requeues;
- :mod:`~hpsearch.backends.cluster.packing`: packed launches (``--runs_per_job``);
- :mod:`~hpsearch.backends.cluster.hours`: GPU- and CPU-hours of each attempt;
- :mod:`~hpsearch.backends.cluster.stopping`: SIGTERM, grace, cancel;
- :mod:`~hpsearch.backends.cluster.reattach`: a restarted driver's launches and jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hpsearch.backends.base import Backend, Ended
from hpsearch.backends.cluster import claims, packing, reattach, stopping
from hpsearch.backends.cluster.arrays import Arrays, Submitter
from hpsearch.backends.cluster.hours import Charges
from hpsearch.backends.cluster.requeue import walltime_warning
from hpsearch.backends.cluster.scheduler import Calls, Scheduler, Task
from hpsearch.backends.cluster.sweeps import Sweeper
from hpsearch.backends.cluster.watchlist import Pack, Watchlist
from hpsearch.backends.gpus.admission import GpuLimits
from hpsearch.runs.model import Resources, Run
from hpsearch.runs.preload import PreloadOptions

DEFAULT_NUM_JOBS = 8
LOG_DIR = "slurm_logs"


@dataclass(frozen=True)
class ClusterSettings:
    """What the cluster machinery reads of a search's options (every scheduler's)."""

    out_dir: Path
    num_jobs: int | None = None  # --num_jobs: jobs at once (None: DEFAULT_NUM_JOBS)
    runs_per_job: int | None = None  # --runs_per_job: packed launches (None: one run a job)
    walltime_warning: float = 300.0  # --walltime_warning: seconds
    job_setup: tuple[str, ...] = ()  # --job_setup: lines a job script runs first
    job_template: Path | None = None  # --job_template: the user's own job script template
    timeout: float | None = None  # --timeout: a packed run's, which its worker enforces
    gpu_limits: GpuLimits = GpuLimits()  # a packed worker's GPU admission
    #: what a run asks of its job when it declares nothing: the scheduler flags' directives
    resources: Resources = Resources()
    #: the scheduler's directives asking for a shape (the registry's ``directives``)
    directives: Callable[[Resources], list[str]] = lambda resources: []
    preload: PreloadOptions = PreloadOptions()  # which runs a packed worker forks from a zygote


class ClusterBackend(Backend, Scheduler):
    """Job arrays on a batch scheduler; see the module docstring."""

    name = "cluster"
    durable_intents = True
    #: where the scheduler's own --output/--error files go, under out_dir
    log_dir_name = LOG_DIR

    def __init__(self, settings: ClusterSettings, *, min_interval: float = 1.0,
                 max_interval: float = 30.0, exit_grace: float = 3.0,
                 file_interval: float = 1.0,
                 submit_backoff: float = 2.0, submit_patience: float = 600.0,
                 max_query_failures: int = 30,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.packed = settings.runs_per_job is not None
        self.warning = walltime_warning(settings.walltime_warning, self.time_limit())
        self.min_interval = max(1.0, min_interval)
        self.max_interval = max(self.min_interval, max_interval)
        self.exit_grace = exit_grace
        self.file_interval = file_interval
        self._clock = clock
        self._sleep = sleep
        self._interval = self.min_interval
        self._next_query = 0.0
        self._next_file_check = 0.0
        self._found: list[Ended] = []  # read from exit files by wait(), reported by poll()
        self.calls = Calls()  # what it cost so far: scheduler commands, file looks, ...
        self.arrays = Arrays(settings.num_jobs or DEFAULT_NUM_JOBS, settings.runs_per_job or 1)
        self.watchlist = Watchlist(self.arrays, self.queued_states)
        self.submitter = Submitter(self, self.calls, self.arrays, sleep, submit_backoff,
                                   submit_patience)
        self.charges = Charges(self.watchlist, self, self._clock)
        self.sweeper = Sweeper(self, self.watchlist, self.calls, self.charges,
                               max_query_failures)
        self.log_dir = Path(settings.out_dir) / self.log_dir_name
        self.script_dir = self.log_dir / "scripts"

    # -- room and state ----------------------------------------------------------------------
    def free_slots(self) -> int:
        return self.arrays.free_slots()

    def refusal(self, resources: Resources) -> str | None:
        """Why its jobs cannot hold the run: :meth:`node_refusal`, :func:`packing.refusal`."""
        return self.node_refusal(resources, self.packed, self.name) or (
            packing.refusal(self.settings.resources, resources) if self.packed else None)

    def launch_unit(self) -> int:
        return self.arrays.per_job

    def room(self) -> int:
        """How many runs the next array may hold (:meth:`Arrays.room`)."""
        return self.arrays.room(self.limits(), len(self.watchlist.runs))

    def job_ids(self) -> dict[str, str]:
        """``{run_id: job_id}`` of the runs being watched."""
        return self.watchlist.job_ids()

    def queued(self) -> int:
        return self.watchlist.queued()

    def running(self) -> set[str] | None:
        """Runs seen started, by the last query or their ``started_at`` (their reports are
        worth reading)."""
        return self.watchlist.running()

    def waits_to_start(self, run_id: str) -> bool:
        return self.watchlist.waits_to_start(run_id)

    def started(self) -> dict[str, str]:
        return self.watchlist.started()

    # -- submit ----------------------------------------------------------------------------
    def job_name(self, key: str) -> str:
        return f"hps-{Path(self.settings.out_dir).resolve().name[:40]}-{key}"

    def _pack_folder(self, key: str) -> Path:
        return claims.pack_dir(Path(self.settings.out_dir).resolve(), key)

    def dry_run_scripts(self, runs: Sequence[Run]) -> list[str]:
        """The job scripts ``submit`` would write for ``runs`` (``--dry_run``): one array
        per shape."""
        per_array, _ = self.limits()
        chunk = per_array * self.arrays.per_job
        scripts = []
        for shape in dict.fromkeys(r.resources for r in runs):
            same = [r for r in runs if self.packed or r.resources == shape]
            scripts += [self._script(same[i:i + chunk], "KEY", self.arrays.num_jobs)
                        for i in range(0, len(same), chunk)]
            if self.packed:
                break
        return scripts

    def _script(self, runs: Sequence[Run], key: str, throttle: int) -> str:
        """The job script of one launch: an array of its runs, or of packed workers."""
        if not self.packed:
            tasks = [Task(i, run) for i, run in enumerate(runs)]
            return self.render_array(tasks, self.job_name(key), throttle)
        return packing.workers_script(self, self._pack_folder(key), len(runs),
                                      self.arrays.per_job, self.job_name(key), throttle)

    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        """Submit ``runs`` (at most ``room()``) as one array; return ``{run_id: job_id}``
        (a packed launch's runs: the array's id, until a worker claims them).

        One array holds runs of one shape (:class:`~hpsearch.runs.model.Resources`: its
        directives ask for it): the runs of the first run's shape go, the others are handed
        back (not started), for the next launch. A packed launch takes every shape: its
        workers place each run on their job's GPUs.

        A refusal for a submit limit or a time-out is retried with back-off; while other
        runs are queued, the refused runs are handed back instead (not started, not failed)
        and the queue cap is lowered to what the scheduler accepted.
        """
        runs = [r for r in runs if self.packed or r.resources == runs[0].resources]
        runs = runs[: self.room()]
        if not runs:
            return {}
        throttle = self.arrays.new_throttle()
        name = self.job_name(key)
        folder = self._pack_folder(key) if self.packed else None
        if folder is not None:
            packing.write_queue(folder, key, runs, self.arrays.per_job, self.settings.timeout,
                                self.settings.gpu_limits, self.warning,
                                self.signals_every_process, self.settings.preload)
        self.script_dir.mkdir(parents=True, exist_ok=True)
        script = self.script_dir / f"{name}.sh"
        script.write_text(self._script(runs, key, throttle))
        array_id = self.submitter.submit(script, name, len(self.watchlist.runs))
        if array_id is None:
            return {}
        self.arrays.add(array_id, throttle)
        submitted = self._watch_launch(runs, key, array_id, folder)
        self._interval = self.min_interval
        self._next_query = self._clock() + self.min_interval
        # the sweep before that query is the first look at the new runs' files
        self._next_file_check = max(self._next_file_check, self._next_query)
        return submitted

    def _watch_launch(self, runs: list[Run], key: str, array_id: str,
                      folder: Path | None) -> dict[str, str]:
        """Watch the runs of a launch just submitted as ``array_id``: each as its task, or
        a packed launch's as the array (``folder``: the pack's) until a worker claims it."""
        if folder is None:
            return {run.run_id: self.watchlist.watch(
                run, self.task_job_id(array_id, task), array_id).job_id
                for task, run in enumerate(runs)}
        pack = Pack(key, folder, [self.task_job_id(array_id, i) for i in
                                  range(packing.workers(len(runs), self.arrays.per_job))])
        return {run.run_id: self.watchlist.watch(run, array_id, array_id, pack).job_id
                for run in runs}

    # -- poll ------------------------------------------------------------------------------
    def _sweep(self, full: bool) -> list[Ended]:
        """Read the run files (:meth:`Sweeper.read_files`); the next look is due in
        ``file_interval``."""
        ended = self.sweeper.read_files(full)
        self._next_file_check = self._clock() + self.file_interval
        return ended

    def poll(self) -> list[Ended]:
        """Runs that ended: exit files first, then one scheduler query when it is due."""
        ended, self._found = self._found, []
        watched = self.watchlist.runs
        now = self._clock()
        if now >= self._next_query and any(w.gone_at is None for w in watched.values()):
            ended += self._sweep(full=True)
        elif now >= self._next_file_check:
            ended += self._sweep(full=False)
        changed = bool(ended)
        asking = [w for w in watched.values() if w.gone_at is None]
        queried = bool(asking) and now >= self._next_query
        if queried:
            changed = self.sweeper.ask(asking, now) or changed
            self._interval = (self.min_interval if changed
                              else min(self._interval * 2, self.max_interval))
            self._next_query = now + self._interval
        for run_id, w in list(watched.items()):
            if w.gone_at is not None and (now - w.gone_at >= self.exit_grace
                                          or w.signal_exit is not None):
                ended.append(self.sweeper.gone(run_id, w))
        if not queried:  # at most one scheduler call per poll
            self.arrays.raise_throttle(self, self.calls)
        stopping.stop_or_kill(self.watchlist, self, self.calls, now)
        return self.charges.accounted(ended)

    def wait(self, timeout: float) -> None:
        """Sleep until an exit file appears, a query or the accounts of a held end are due
        (:meth:`Charges.due`), or ``timeout`` passed.

        Exit files are looked at once per ``file_interval``, only those of runs that may
        have run (see :mod:`~hpsearch.backends.cluster.sweeps`); what is found is reported by
        the next poll.
        """
        deadline = self._clock() + max(0.0, timeout)
        watched = self.watchlist.runs
        while not self._found:
            now = self._clock()
            due = [self._next_query] if any(w.gone_at is None for w in watched.values()) else []
            due += [w.gone_at + self.exit_grace for w in watched.values()
                    if w.gone_at is not None]
            due += [w.kill_at for w in watched.values() if w.kill_at is not None]
            if (held := self.charges.due()) is not None:
                due.append(held)
            if any(w.stop_grace is not None for w in watched.values()):
                due.append(now)
            until = min([deadline, *due])
            if now >= until:
                return
            if now >= self._next_file_check:
                self._found = self._sweep(full=False)
                continue
            self._sleep(min(self._next_file_check, until) - now)

    # -- stop, restart, cancel -------------------------------------------------------------
    def stop(self, run_ids: Sequence[str], grace: float) -> None:
        """Mark the runs; the next poll sends them SIGTERM in one call (see the poll). A
        packed run's worker is asked through the pack's ``stops/`` instead."""
        stopping.stop(self.watchlist, run_ids, grace)

    def resolve(self, key: str, runs: Sequence[Run]) -> dict[str, str]:
        """Ask the scheduler once for the array of launch ``key``; else trust ``started_at``."""
        return reattach.resolve(self, self.calls, key, self.job_name(key),
                                self._pack_folder(key), runs)

    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        """Watch jobs a previous driver submitted (never resubmitted); report those over."""
        ended = reattach.reattach(jobs, self, self.watchlist, self.sweeper, self._pack_folder)
        self._next_query = 0.0
        return ended

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        """Cancel the jobs of ``run_ids`` (all watched when None) with one command."""
        stopping.cancel(self.watchlist, self, self.calls, run_ids)
