"""A restarted driver and the jobs of the one before: watched again, never submitted twice.

Which launch was submitted, and watching those jobs again.

:func:`resolve` answers for a launch the journal never saw answered: the scheduler is asked
once for an array of the launch's job name; else the runs' ``started_at`` files (and a pack's
claims) tell which runs started. :func:`reattach` watches the jobs a previous driver submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hpsearch.backends.base import BackendError, Ended
from hpsearch.backends.cluster import claims, packing
from hpsearch.backends.cluster.scheduler import Calls, QueryFailed, Scheduler
from hpsearch.backends.cluster.sweeps import Sweeper
from hpsearch.backends.cluster.watchlist import UNCLAIMED, Pack, Watchlist
from hpsearch.runs.files import read_start, split_launch
from hpsearch.runs.model import Run


def resolve(scheduler: Scheduler, calls: Calls, key: str, job_name: str, folder: Path,
            runs: Sequence[Run]) -> dict[str, str]:
    """``{run_id: job_id}`` of the ``runs`` of launch ``key`` (job name ``job_name``, pack
    folder ``folder`` if packed) that were submitted: ask the scheduler once for the array,
    else trust ``started_at`` and the pack's claims."""
    calls.scheduler += 1
    try:
        array_id = scheduler._find_array(job_name)
    except QueryFailed as exc:
        raise BackendError(f"cannot tell whether launch {key} was submitted: {exc}; "
                           "run the same command again once the scheduler answers") from exc
    packed = (folder / claims.QUEUE_FILE).exists()
    if array_id is not None:
        return {run.run_id: array_id if packed else scheduler.task_job_id(array_id, task)
                for task, run in enumerate(runs)}
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
        array = scheduler.array_of(next(iter(started.values())))
        return {run.run_id: array for run in runs}
    return started


def reattach(jobs: Mapping[str, tuple[Run, str]], scheduler: Scheduler, watchlist: Watchlist,
             sweeper: Sweeper, pack_folder: Callable[[str], Path]) -> list[Ended]:
    """Watch ``jobs`` (``{run_id: (run, job_id)}``) a previous driver submitted; return
    those over. ``pack_folder``: the pack folder of a launch key.

    Their arrays' throttles are taken to be ``num_jobs`` (the most a previous driver set),
    so the cap holds whatever the previous driver did.
    """
    packs: dict[str, Pack | None] = {}
    for run, job_id in jobs.values():
        key = split_launch(run.launch)[0]
        if key not in packs:
            packs[key] = _reopen(key, scheduler.array_of(job_id), scheduler, watchlist,
                                 pack_folder(key))
        w = watchlist.watch(run, job_id, scheduler.array_of(job_id), packs[key])
        start = read_start(run.run_dir)  # started before: not reported again
        w.started = start is not None and split_launch(start.launch)[0] == key
        if packs[key] is not None:
            w.state = UNCLAIMED
    for pack in filter(None, packs.values()):
        packing.read_claims(pack, watchlist.runs)
    ended = []
    for run_id, w in list(watchlist.runs.items()):
        if run_id in jobs and (w.pack is None or run_id in w.pack.claims):
            ended += sweeper.look(run_id, w)
    return ended


def _reopen(key: str, array_id: str, scheduler: Scheduler, watchlist: Watchlist,
            folder: Path) -> Pack | None:
    """The pack of launch ``key`` (None for a launch of runs); its runs per job count in
    the arrays' cap from now on."""
    found = packing.reopen(folder, key, array_id, scheduler)
    if found is None:
        return None
    pack, runs_per_job = found
    watchlist.arrays.per_job = max(watchlist.arrays.per_job, runs_per_job)
    return pack
