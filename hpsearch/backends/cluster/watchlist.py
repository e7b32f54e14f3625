"""The runs a cluster backend watches, with what the scheduler and the run files last said.

**Queued, then started.** A submitted run waits in the queue (:meth:`Watchlist.waits_to_start`)
until its ``started_at`` appears (the wrapper writes it before the command), which
:meth:`Watchlist.started` then reports once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hpsearch.backends.cluster.arrays import Arrays
from hpsearch.runs.files import ExitRecord
from hpsearch.runs.model import Run

#: the state of a run the scheduler was not asked about yet
SUBMITTED = "SUBMITTED"
#: states of a packed run the backend gives itself: no worker holds it yet; one does
UNCLAIMED, CLAIMED = "UNCLAIMED", "CLAIMED"


@dataclass
class Pack:
    """A packed launch: its queue's folder and the array of workers that claim its runs."""

    key: str
    folder: Path
    tasks: list[str]  # the workers' job ids
    claims: dict[str, str] = field(default_factory=dict)  # run id -> the worker that took it


@dataclass
class Watched:
    """One watched run and what is known of its job."""

    run: Run
    job_id: str
    array_id: str
    state: str = SUBMITTED  # the scheduler's last word
    gone_at: float | None = None  # when the scheduler first said it is over/unknown
    signal_exit: ExitRecord | None = None  # signalled: waiting for the scheduler's word
    stop_grace: float | None = None  # asked to stop: SIGTERM not sent yet, grace to give
    kill_at: float | None = None  # SIGTERM sent: cancelled for good at this moment
    pack: Pack | None = None  # the packed launch the run belongs to
    requeued: bool = False  # its job ran, then the scheduler put it back in its queue
    started: bool = False  # its started_at (of this launch) was seen


class Watchlist:
    """The watched runs by id (their arrays counted in ``arrays``) and the starts seen."""

    def __init__(self, arrays: Arrays, queued_states: frozenset[str]) -> None:
        self.runs: dict[str, Watched] = {}
        self.arrays = arrays
        self.queued_states = queued_states
        self._starts: dict[str, str] = {}  # run id -> job: seen started, not reported yet

    def watch(self, run: Run, job_id: str, array_id: str, pack: Pack | None = None) -> Watched:
        """Watch ``run`` as job ``job_id`` of ``array_id`` (of ``pack`` when packed)."""
        w = self.runs[run.run_id] = Watched(run, job_id, array_id, pack=pack)
        self.arrays.add_run(array_id, run.run_id, packed=pack is not None)
        return w

    def unwatch(self, run_id: str) -> Watched:
        """Stop watching ``run_id``."""
        w = self.runs.pop(run_id)
        self.arrays.discard_run(w.array_id, run_id)
        return w

    def job_ids(self) -> dict[str, str]:
        """``{run_id: job_id}`` of the runs being watched."""
        return {run_id: w.job_id for run_id, w in self.runs.items()}

    def waiting(self, w: Watched) -> bool:
        """Not started as far as we know: queued, not asked about yet, or no worker's."""
        return w.state in self.queued_states or w.state in (SUBMITTED, UNCLAIMED)

    def queued(self) -> int:
        """How many watched runs wait to start."""
        return sum(1 for w in self.runs.values() if self.waiting(w) and not w.started)

    def running(self) -> set[str]:
        """Runs seen started, by the last query or their ``started_at``."""
        return {run_id for run_id, w in self.runs.items() if w.started or not self.waiting(w)}

    def waits_to_start(self, run_id: str) -> bool:
        """Whether ``run_id`` is watched and not seen started."""
        w = self.runs.get(run_id)
        return w is not None and not w.started

    def note_start(self, run_id: str, w: Watched, job: str) -> None:
        """The run started (as job ``job``): reported once by :meth:`started`."""
        w.started = True
        self._starts[run_id] = job or w.job_id

    def started(self) -> dict[str, str]:
        """``{run_id: job}`` of the runs seen started since the last call."""
        starts, self._starts = self._starts, {}
        return starts
