"""Packed launches (``--runs_per_job N``) as the backend sees them.

The queue, the workers' array, their claims, and what the scheduler's word on the workers means
for each run.

The launch's runs go into a queue on the shared filesystem (:mod:`hpsearch.backends.cluster.
claims`) and the array holds ``ceil(runs / N)`` workers (:mod:`hpsearch.backends.cluster.worker`),
each running up to N of them at once; ``--num_jobs`` counts jobs, so up to ``num_jobs x N`` runs
run at once. A run's job is its array until a worker's claim names the job that took it. A
worker that ended (the scheduler says so) leaves its claimed runs without an exit code, and the
runs no worker took, to be run again: they are reported ``lost`` (not charged), unless the job's
end was the time limit or preemption or a failure of the job itself (``FAILED``,
``OUT_OF_MEMORY``: charged, with that reason). Stopping a packed run is a file the worker reads
(``stops/<run_id>``), not a scheduler call.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from hpsearch.backends.cluster import claims
from hpsearch.backends.cluster.scheduler import Scheduler
from hpsearch.backends.cluster.watchlist import CLAIMED, SUBMITTED, UNCLAIMED, Pack, Watched
from hpsearch.backends.gpus.admission import GpuLimits
from hpsearch.runs.files import REASON_FILE, was_warned
from hpsearch.runs.model import Resources, Run
from hpsearch.runs.preload import PreloadOptions


def workers(runs: int, per_job: int) -> int:
    """How many workers a launch of ``runs`` runs gets."""
    return math.ceil(runs / per_job)


def workers_script(scheduler: Scheduler, folder: Path, runs: int, per_job: int,
                   job_name: str, throttle: int) -> str:
    """The job script of the workers' array of the pack in ``folder``."""
    return scheduler.render_workers(workers(runs, per_job), job_name, throttle, {
        "argv": [sys.executable, "-m", "hpsearch.worker", str(folder)],
        "runs": runs, "runs_per_job": per_job})


def refusal(job: Resources, run: Resources) -> str | None:
    """Why a packed job of shape ``job`` cannot hold a run of shape ``run`` (more GPUs or
    CPUs than the job has: a packed job's runs share its resources), or None."""
    if run.gpus > job.gpus:
        return (f"{run.gpus} GPUs per run, but each packed job has {job.gpus} "
                "(--runs_per_job runs share the job's GPUs: ask the job for more)")
    if run.cpus > job.cpus:
        return f"{run.cpus} CPUs per run, but each packed job has {job.cpus} (ask the job for more)"
    return None


def write_queue(folder: Path, key: str, runs: Sequence[Run], per_job: int,
                timeout: float | None, limits: GpuLimits, warning: int,
                signals_every_process: bool, preload: PreloadOptions) -> None:
    """The packed launch's ``queue.json`` (before its array is submitted): its runs, and
    how a worker runs them (``timeout``: each run's; ``limits``: the GPU admission's;
    ``warning``: the time-limit warning's seconds; ``preload``: which runs fork from a
    zygote); the GPU memory each run needs is the runs' (the same for every run of a launch,
    for now)."""
    claims.write_queue(folder, claims.Queue(
        key, per_job, workers(len(runs), per_job), timeout, warning, signals_every_process,
        {"allowed_load": limits.allowed_load, "allowed_memory": limits.allowed_memory,
         "max_num_jobs_per_gpu": limits.max_num_jobs_per_gpu,
         "sim_startup_time": limits.sim_startup_time,
         "gpu_memory_per_run": runs[0].resources.gpu_memory_mib},
        tuple(dataclasses.replace(r, run_dir=Path(r.run_dir).resolve(),
                                  cwd=Path(r.cwd).resolve()) for r in runs), preload))


def reopen(folder: Path, key: str, array_id: str,
           scheduler: Scheduler) -> tuple[Pack, int] | None:
    """The pack of launch ``key`` from its ``queue.json`` and its runs per job; None for a
    launch of runs."""
    try:
        queue = claims.read_queue(folder)
    except (OSError, ValueError, KeyError):
        return None
    tasks = [scheduler.task_job_id(array_id, i) for i in range(queue.workers)]
    return Pack(key, folder, tasks), queue.runs_per_job


def read_claims(pack: Pack, watched: Mapping[str, Watched]) -> None:
    """Which of the pack's runs a worker took since the last look (one listing)."""
    for run_id in claims.claimed(pack.folder) - set(pack.claims):
        record = claims.read_claim(pack.folder, run_id)
        if record is None:
            continue
        pack.claims[run_id] = record["job"]
        w = watched.get(run_id)
        if w is not None and w.pack is pack:
            w.job_id = record["job"]
            if w.state in (UNCLAIMED, SUBMITTED):
                w.state = CLAIMED


def worker_stopped(w: Watched) -> bool:
    """Whether the packed worker itself stopped the run: for its ``--timeout`` (its
    ``reason``), the job's time-limit warning, or a stop the driver asked for."""
    return ((w.run.run_dir / REASON_FILE).exists()
            or was_warned(w.run.run_dir, w.run.launch)
            or (w.pack is not None and w.run.run_id in claims.stop_requests(w.pack.folder)))


def ids_of(w: Watched) -> list[str]:
    """The jobs to ask about for ``w``: its own, or every worker of its pack while no
    worker claimed it."""
    if w.pack is None or w.run.run_id in w.pack.claims:
        return [w.job_id]
    return w.pack.tasks


def state_of(w: Watched, states: Mapping[str, str], scheduler: Scheduler) -> str:
    """The scheduler's word on ``w``: its job's state; for a run no worker claimed,
    ``GONE`` once every worker is over, else ``UNCLAIMED``."""
    ids = ids_of(w)
    if ids == [w.job_id]:
        return states.get(w.job_id, "GONE")
    over = [states.get(t, "GONE") for t in ids]
    if all(s == "GONE" or scheduler.is_final(s) for s in over):  # a failure of theirs, if any
        return next((s for s in over if s not in scheduler.lost_states), "GONE")
    return UNCLAIMED
