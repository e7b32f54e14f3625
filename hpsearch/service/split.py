"""``hpsearch serve`` with backend flags: the service's own backend and the external one.

A new run goes to the own backend (local slots, GPUs, Slurm, LSF) while it has room, else
to the pool of points handed out over HTTP, so workers add capacity to a normal search.
Each run stays where it went: a run on the own backend is ``running`` for HTTP clients and
takes no report; the journal's job id (``external`` or the backend's own) says where a run
of a previous service went when it is reattached.

Stopping the service stops the own backend's local runs as a normal search does; points
leased to workers are then journaled ``lost`` with them (the driver stops all its runs
alike) and are handed out again after a restart -- a late report from the first worker is
still taken while the point is not reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hpsearch.backends.base import Backend, Ended
from hpsearch.runs.model import Run
from hpsearch.service.backend import EXTERNAL_JOB, ExternalBackend

#: how long one wait on the own backend may block before the external side is looked at
WAKE_S = 0.05


class SplitBackend(Backend):
    def __init__(self, own: Backend, external: ExternalBackend) -> None:
        self.own = own
        self.external = external
        self.name = own.name
        self.durable_intents = own.durable_intents
        self.runs_commands = own.runs_commands  # a run may go to either: it may need one
        self.runs_outlive_driver = own.runs_outlive_driver  # an interrupt stops them as own's

    def room(self) -> int:
        return self.own.room() + self.external.room()

    def free_slots(self) -> int:
        return self.own.free_slots() + self.external.free_slots()

    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        mine = list(runs[:self.own.room()])
        jobs = self.own.submit(mine, key) if mine else {}
        self.external.run_elsewhere([r for r in mine if r.run_id in jobs])
        jobs.update(self.external.submit(runs[len(mine):], key))
        return jobs

    def poll(self) -> list[Ended]:
        return self.own.poll() + self.external.poll()

    def wait(self, timeout: float) -> None:
        if not self.external.take_wake():
            self.own.wait(min(timeout, WAKE_S))

    def resolve(self, key: str, runs: Sequence[Run]) -> dict[str, str]:
        jobs = self.external.resolve(key, runs)
        jobs.update(self.own.resolve(key, [r for r in runs if r.run_id not in jobs]))
        return jobs

    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        theirs = {k: v for k, v in jobs.items() if v[1] == EXTERNAL_JOB}
        mine = {k: v for k, v in jobs.items() if k not in theirs}
        self.external.run_elsewhere([run for run, _job in mine.values()])
        return self.own.reattach(mine) + self.external.reattach(theirs)

    def stop(self, run_ids: Sequence[str], grace: float) -> None:
        self.own.stop(run_ids, grace)

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        self.own.cancel(run_ids)
        self.external.cancel(run_ids)

    def launch_env(self, run_id: str) -> Mapping[str, str]:
        return self.own.launch_env(run_id)

    def queued(self) -> int:
        return self.own.queued() + self.external.queued()

    def waits_to_start(self, run_id: str) -> bool:
        return self.own.waits_to_start(run_id)

    def started(self) -> dict[str, str]:
        return self.own.started()

    def wake(self) -> None:
        self.external.wake()
        self.own.wake()

    def close(self) -> None:
        self.own.close()
        self.external.close()
