"""The small interface every backend (local, gpus, slurm, lsf) implements.

The driver owns the search: which runs to start, retries, the journal, the run
directories' lifecycle and the results. A backend only starts runs, tells which of them
ended, and stops them. It never imports the driver, and the driver never parses scheduler
output.

Every backend starts a run through the one job wrapper (:mod:`hpsearch.runs.wrapper`), which
writes ``<run_dir>/started_at`` and ``<run_dir>/exit_code`` carrying the launch's key, so
completion is learned from the run directory first; a backend asks its scheduler only about
runs without such a file, in one call per poll.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.errors import BackendError  # noqa: F401  (re-exported: backends import it from here)
from hpsearch.runs.files import ExitRecord
from hpsearch.runs.model import Resources, Run


@dataclass(frozen=True)
class Ended:
    """A run whose job is over, as the backend saw it.

    ``exit_code`` is the command's exit status as a shell reports it (128+N for signal N),
    or None when the job ended without the wrapper recording one (killed by the scheduler,
    node failure, ...). ``reason`` then says why, in the scheduler's words (``TIMEOUT``,
    ``CANCELLED``, ``OUT_OF_MEMORY``, ``TERM_RUNLIMIT``, ...); with an exit code it explains
    it (a signal the scheduler sent). ``lost`` marks a run that never got to run to an end
    through no fault of its own (a driver restart found it orphaned, a submission vanished,
    the packed job that held it was cancelled): the driver runs it again without counting an
    attempt. ``extra`` holds backend facts that become result columns (e.g. ``{"gpu": 1}``).
    ``wall_time`` is the command's duration when the run directory recorded it.

    ``cut`` says the scheduler cut the attempt short: ``"timeout"`` (the job's time limit,
    or its warning, reached it) or ``"preempted"``; unless it finished anyway, the driver
    records it ``preempted`` and runs it again, not charged (a timeout only within
    ``--continue_on_timeout``). ``restarted`` is set when the scheduler started the run's
    job again by itself (a requeue): the attempt is over, cut short, and the next one runs
    already, as this launch key (``k3f9a1c2.1``); the backend goes on watching it.

    ``unrecorded`` marks a run whose wrapper ended on its own but could not write
    ``exit_code`` (a full disk, an unwritable run directory): how it ended is unknown, so
    it is not failed -- unless its summary says it finished, the driver runs it again, not
    charged, and stops the search, whose disk needs the user first.
    """

    run_id: str
    exit_code: int | None
    reason: str | None = None
    lost: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    wall_time: float | None = None
    cut: str | None = None
    restarted: str | None = None
    unrecorded: bool = False

    @classmethod
    def recorded(cls, run_id: str, record: ExitRecord, extra: Mapping[str, Any] | None = None,
                 reason: str | None = None, cut: str | None = None) -> Ended:
        """A run whose wrapper wrote ``exit_code``: its status and duration from there."""
        return cls(run_id, record.exit_code, reason, extra=extra or {},
                   wall_time=record.wall_time, cut=cut)


class Backend(ABC):
    """Start runs, report their end, stop them.

    Call order: ``resolve`` and ``reattach`` once (after a restart), then any number of
    rounds of ``room`` / ``submit`` / ``wait`` / ``poll``; ``cancel`` and ``close`` at the end.
    """

    #: short name used in the journal and in messages ("local", "slurm", ...)
    name: str = "base"
    #: fsync the journal before each submission (a machine crash must not forget a job
    #: that runs elsewhere); local runs die with the machine anyway
    durable_intents: bool = False
    #: its runs execute their argv (the driver writes ``command.sh`` to run one by hand)
    runs_commands: bool = True
    #: its runs go on without the driver (a scheduler's jobs, points leased to workers): an
    #: interrupted driver leaves them for the next one to reattach (unless
    #: ``--cancel_on_interrupt``); False: they end with it, so it always stops them
    runs_outlive_driver: bool = True

    @abstractmethod
    def room(self) -> int:
        """How many more runs may be submitted right now (0 = none)."""

    def free_slots(self) -> int:
        """How many submitted runs could start at once now (what an adaptive strategy asks
        for); by default the same as :meth:`room`."""
        return self.room()

    @abstractmethod
    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        """Start ``runs`` (at most ``room()``) as one launch named ``key``; return
        ``{run_id: job_id}``. A run missing from the answer was not started."""

    @abstractmethod
    def poll(self) -> list[Ended]:
        """Return the runs that ended since the last call (each reported once)."""

    def prepare(self, argv: Sequence[str], cwd: Path, launcher: str | None) -> None:  # noqa: B027
        """Before the search's first run: its runs will start as ``argv`` followed by their
        own words, in ``cwd``, through ``launcher`` (None: as they are). A backend may get
        ready for them meanwhile (a zygote imports their code); by default nothing happens."""

    @abstractmethod
    def wait(self, timeout: float) -> None:
        """Block until a run may have ended, :meth:`wake` was called, or ``timeout``
        seconds passed."""

    def wake(self) -> None:  # noqa: B027  (a backend whose waits are short may keep it)
        """Make the ``wait`` in progress, or the next one, return now. Thread-safe: a
        strategy's worker calls it when a proposal is ready. By default nothing happens and
        the wait ends at its timeout (the driver waits at most 0.05 s while proposals are
        being computed)."""

    @abstractmethod
    def resolve(self, key: str, runs: Sequence[Run]) -> dict[str, str]:
        """For a launch a previous driver journaled but never saw answered: ``{run_id:
        job_id}`` of those of ``runs`` that did start (ask the scheduler once). The driver
        then journals them and hands them to :meth:`reattach`; the rest run again."""

    @abstractmethod
    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        """Adopt jobs a previous driver submitted: ``{run_id: (run, job_id)}``.

        Returns the runs already over: those whose wrapper wrote an exit code while no
        driver watched, and those this backend cannot watch again (reported ``lost``, so
        the driver runs them again). The rest it watches and reports through ``poll``.
        """

    @abstractmethod
    def stop(self, run_ids: Sequence[str], grace: float) -> None:
        """Ask these runs to stop (SIGTERM, or the scheduler's way of sending it, in ONE
        call), and end them for good once ``grace`` seconds passed; they stay watched and
        ``poll`` reports them when they are over."""

    @abstractmethod
    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        """Stop the given runs (all active ones when None) and forget them: the driver
        records them itself."""

    def launch_unit(self) -> int:
        """How many runs a launch should hold when more are on their way: what one job runs
        (``--runs_per_job``; a launch of fewer pays a job's start for each of them); 1 by
        default."""
        return 1

    def choices(self) -> int:
        """How many queued runs beyond :meth:`room` :meth:`submit` should be offered, to
        pick those that fit now (runs of several sizes: a smaller one may start where a
        larger one cannot); 0 by default."""
        return 0

    def refusal(self, resources: Resources) -> str | None:
        """Why a run needing ``resources`` can never run here (one line naming what it asks
        and what there is), checked before anything is submitted; None: it can."""
        return None

    def dry_run_scripts(self, runs: Sequence[Run]) -> list[str] | None:
        """What ``--dry_run`` shows of ``runs``: the job scripts :meth:`submit` would write;
        None (the default): each run's command line."""
        return None

    def launch_env(self, run_id: str) -> Mapping[str, str]:
        """The environment variables a started run got on top of the driver's (its own and
        the backend's, e.g. ``CUDA_VISIBLE_DEVICES``), when the backend chose some."""
        return {}

    def queued(self) -> int:
        """How many of the active runs wait in a queue (not running yet)."""
        return 0

    def waits_to_start(self, run_id: str) -> bool:
        """Whether a run just submitted waits in a queue: :meth:`started` says when it
        starts. By default a submitted run has started."""
        return False

    def started(self) -> dict[str, str]:
        """``{run_id: job_id}`` of the runs :meth:`waits_to_start` named that started since
        the last call (each reported once, before :meth:`poll` reports its end)."""
        return {}

    def running(self) -> set[str] | None:
        """The active runs known to be running now; None: every active run."""
        return None

    def close(self) -> None:  # noqa: B027
        """Release resources; called once when the driver exits."""
