"""What a batch scheduler must provide to the cluster machinery: its commands, its states.

A scheduler backend (:mod:`hpsearch.backends.slurm.backend`, :mod:`hpsearch.backends.lsf.backend`)
implements :class:`Scheduler`'s hooks -- one scheduler command each, in its own formats -- and
the machinery of :mod:`hpsearch.backends.cluster` (arrays, sweeps, packing, requeue, stopping,
reattach) calls nothing else of it. :class:`Calls` counts what that costs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.backends.base import BackendError
from hpsearch.runs.launchers import FREE_PORT_SCRIPT, launch_of
from hpsearch.runs.model import Resources, Run
from hpsearch.runs.wrapper import RUN_FUNCTION, TASK_FUNCTION


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
class Calls:
    """What the cluster machinery cost so far, by kind of call."""

    #: scheduler commands: queries, submissions, lookups, throttle changes, stops, cancels
    scheduler: int = 0
    #: exit and start files looked at (one stat each)
    files: int = 0
    #: submissions (each also a scheduler call)
    submits: int = 0
    #: stopping calls (signals and cancels of pruned runs): at most one per poll
    stops: int = 0
    #: accounting calls (sacct asks slurmdbd, not the controller: not scheduler calls)
    accounting: int = 0


class Scheduler(ABC):
    """The hooks a batch scheduler implements: one command each (see the module docstring)."""

    #: the scheduler's commands the backend runs; all must be on PATH
    commands: tuple[str, ...] = ()
    #: scheduler states after which a job never runs again
    final_states: frozenset[str] = frozenset()
    #: scheduler states of a job waiting to start: its exit file is not looked for between
    #: sweeps
    queued_states: frozenset[str] = frozenset()
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
    #: whether :meth:`_account` asks the scheduler's accounting (Slurm's sacct)
    accounts_jobs = False
    #: the command :meth:`_account` reads, as the ``hours_from`` result column names it
    accounted_by = ""
    #: seconds after a job's end within which its accounts appear (0: at once or never)
    accounting_wait = 0.0
    #: whether its job script starts a K-node ``launcher: torchrun`` run on every node of the
    #: job (through one ``srun``), the rendezvous endpoint found inside the job
    launches_nodes = False
    _limits_cache: tuple[int, int] | None = None

    def node_refusal(self, resources: Resources, packed: bool, name: str) -> str | None:
        """Why jobs of this scheduler (``name``; ``packed``: packed jobs) cannot start a
        K-node ``launcher: torchrun`` run on K nodes, or None."""
        if resources.nodes <= 1 or resources.launcher != "torchrun":
            return None
        if packed:
            return (f"launcher: torchrun on {resources.nodes} nodes per run, but packed runs "
                    "share one node of their job (drop --runs_per_job)")
        if not self.launches_nodes:
            return (f"launcher: torchrun on {resources.nodes} nodes per run, but {name} jobs "
                    "start it on one node only (use --scheduler=slurm, or nodes: 1)")
        return None

    @abstractmethod
    def render_array(self, tasks: Sequence[Task], job_name: str, throttle: int) -> str:
        """The job script running ``tasks`` as one array, at most ``throttle`` at once."""

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

    def _account(self, job_ids: Sequence[str]) -> dict[str, dict[str, float]] | None:
        """``{job_id: {"gpu_hours", "cpu_hours"}}`` as the scheduler's accounting has them
        (ONE call, counted in ``calls.accounting``; Grid Engine: one per array), leaving out
        the jobs it does not know (yet); None when it keeps no accounts (it is not asked
        again)."""
        return None

    @abstractmethod
    def time_limit(self) -> float | None:
        """Seconds a job may run (``--num_hours``, unless an option of the scheduler's own
        sets it); None: no limit."""

    @abstractmethod
    def task_job_id(self, array_id: str, task: int) -> str:
        """The id of one array task, e.g. ``1234_7`` on Slurm."""

    @abstractmethod
    def array_of(self, job_id: str) -> str:
        """The array id of a task id (``1234_7`` -> ``1234`` on Slurm)."""

    def is_final(self, state: str) -> bool:
        """Whether a job in ``state`` (as ``_query`` names it) never runs again."""
        return state in self.final_states

    def limits(self) -> tuple[int, int]:
        """(max tasks per array, max jobs queued), asked of the scheduler once."""
        if self._limits_cache is None:
            self._limits_cache = self._read_limits()
        return self._limits_cache

    @classmethod
    def run_context(cls, tasks: Sequence[Task], index_name: str, first: int) -> dict[str, Any]:
        """The template variables of an array of runs: the job wrapper's functions and each
        run (its array index, counted from ``first``, under ``index_name``). A run's ``argv``
        is its command as its launcher starts it (:mod:`hpsearch.runs.launchers`); for a
        K-node torchrun run (``rendezvous``) the words before the endpoint are its
        ``launch_head``, ``argv`` the words after it, ``python`` its interpreter."""
        return {"run_function": RUN_FUNCTION, "task_function": TASK_FUNCTION,
                "free_port_script": FREE_PORT_SCRIPT,
                "runs": [{index_name: t.task + first, "run_id": t.run.run_id,
                          "launch": t.run.launch, "run_dir": str(Path(t.run.run_dir).resolve()),
                          "cwd": str(Path(t.run.cwd).resolve()), "env": dict(t.run.env),
                          **cls._command_context(t.run)} for t in tasks]}

    @classmethod
    def _command_context(cls, run: Run) -> dict[str, Any]:
        launch = launch_of(run, srun=cls.launches_nodes)
        if not launch.rendezvous:
            return {"argv": launch.argv(), "rendezvous": False}
        return {"argv": list(launch.tail), "launch_head": list(launch.head),
                "rendezvous": True, "python": run.argv[0]}
