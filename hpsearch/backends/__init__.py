"""Pick the backend for a search from its options.

``--run_cluster --scheduler=slurm|lsf`` selects a cluster backend; otherwise runs go to
local GPUs, or to ``--num_jobs`` CPU slots (default: one per CPU this process may use) when
``--visible_gpus=-1`` or no GPU is found.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

from hpsearch.backends.base import Backend
from hpsearch.backends.cluster.backend import ClusterSettings
from hpsearch.backends.gpus.admission import GpuLimits, parse_visible_gpus
from hpsearch.backends.gpus.backend import GpuBackend
from hpsearch.backends.gpus.probe import GpuUnavailable, open_gpu_source
from hpsearch.backends.local import LocalBackend, kill_local_jobs
from hpsearch.backends.lsf.backend import LsfSettings, bsub_options, lsf_resources
from hpsearch.backends.resources import resources_of
from hpsearch.backends.slurm.backend import SlurmSettings, slurm_directives
from hpsearch.engine.options import SearchOptions
from hpsearch.errors import UsageError


def cluster_settings(options: SearchOptions) -> tuple[ClusterSettings,
                                                     SlurmSettings | LsfSettings]:
    """What a cluster backend's constructor takes of ``options`` (checked): the cluster
    machinery's settings and its scheduler's own."""
    cluster = ClusterSettings(
        out_dir=options.out_dir, num_jobs=options.num_jobs, runs_per_job=options.runs_per_job,
        walltime_warning=options.walltime_warning, job_setup=tuple(options.job_setup),
        job_template=options.job_template, timeout=options.timeout,
        gpu_limits=GpuLimits(allowed_load=options.allowed_load,
                             allowed_memory=options.allowed_memory,
                             max_num_jobs_per_gpu=options.max_num_jobs_per_gpu,
                             sim_startup_time=options.sim_startup_time))
    if options.scheduler == "slurm":
        return cluster, SlurmSettings(tuple(slurm_directives(options)))
    return cluster, LsfSettings(options.num_hours, lsf_resources(options),
                                options.lsf_queue.strip(), options.lsf_gpu.strip(),
                                tuple(bsub_options(options)))


def make_cluster_backend(options: SearchOptions) -> Backend:
    """The Slurm or LSF backend, its settings checked before anything is submitted.

    Unless ``--dry_run`` (which only renders scripts), the scheduler's commands must be
    on PATH.
    """
    if options.scheduler == "slurm":
        from hpsearch.backends.slurm.backend import SlurmBackend as backend_class
        from hpsearch.backends.slurm.backend import validate_slurm_options as validate
    elif options.scheduler == "lsf":
        from hpsearch.backends.lsf.backend import LsfBackend as backend_class
        from hpsearch.backends.lsf.backend import validate_lsf_options as validate
    else:
        raise UsageError(f"--scheduler={options.scheduler} is not supported; use "
                         "--scheduler=slurm or --scheduler=lsf")
    try:
        validate(options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    missing = [c for c in backend_class.commands if shutil.which(c) is None]
    if missing and not options.dry_run:
        raise UsageError(f"{missing[0]} is not on PATH: run hpsearch on a login node of your "
                         f"{options.scheduler} cluster (or in a job there), or drop "
                         "--run_cluster")
    return backend_class(*cluster_settings(options))


def make_backend(options: SearchOptions, say: Callable[[str], None]) -> Backend:
    """The backend for ``options``; ``say`` reports choices the user should know of."""
    if options.run_cluster:
        return make_cluster_backend(options)
    if options.cpu_only:
        return cpu_backend(options, say)
    try:
        limits = GpuLimits(allowed_load=options.allowed_load,
                           allowed_memory=options.allowed_memory,
                           max_num_jobs_per_gpu=options.max_num_jobs_per_gpu,
                           sim_startup_time=options.sim_startup_time,
                           visible_gpus=parse_visible_gpus(options.visible_gpus))
        resources = resources_of(options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        backend = GpuBackend(open_gpu_source(), limits, options.num_jobs, options.timeout, say,
                             resources=resources)
    except GpuUnavailable as exc:
        say(f"{exc} (pass --visible_gpus=-1 to silence this)")
        return cpu_backend(options, say)
    present = backend.policy.gpus()
    missing = [i for i in limits.visible_gpus or () if i not in present]
    if missing:
        raise UsageError(f"--visible_gpus={options.visible_gpus}: GPU {missing[0]} does not "
                         f"exist; this machine has GPU(s) {','.join(map(str, present))}")
    if not backend.fits_at_all():
        raise UsageError(f"--gpu_memory_per_run={options.gpu_memory_per_run} is more than "
                         f"--allowed_memory={options.allowed_memory} of any GPU allows "
                         f"({backend.policy.largest_cap_mib()} MiB); lower one or raise the other")
    say(f"GPUs {','.join(map(str, backend.policy.candidates()))} via "
        f"{backend.source.description}")
    return backend


def cpu_backend(options: SearchOptions, say: Callable[[str], None]) -> LocalBackend:
    """Runs on :attr:`SearchOptions.cpu_slots` CPU slots; the count is said when it is not
    ``--num_jobs``'s."""
    slots = options.cpu_slots
    if options.num_jobs is None:
        say(f"--num_jobs not given: {slots} CPU slot{'s' if slots != 1 else ''} (the CPUs "
            "this process may use)")
    return LocalBackend(slots, options.timeout)


#: the command each scheduler cancels with
_CANCEL_COMMAND = {"slurm": "scancel", "lsf": "bkill"}


def check_cancel_commands(backend_name: str) -> None:
    """UsageError (one line) when this machine cannot cancel the backend's jobs."""
    command = _CANCEL_COMMAND.get(backend_name)
    if command is not None and shutil.which(command) is None:
        raise UsageError(f"{command} is not on PATH, so the search's {backend_name} jobs "
                         "cannot be cancelled from here: run hpsearch cancel on a login node "
                         "of the cluster")


def cancel_jobs(backend_name: str, job_ids: list[str]) -> int:
    """Cancel jobs a search's journal lists, from outside the driver; returns the count."""
    if not job_ids:
        return 0
    if backend_name == "slurm":
        from hpsearch.backends.base import BackendError
        from hpsearch.backends.slurm.backend import scancel

        try:
            scancel(job_ids)
        except BackendError as exc:
            raise UsageError(str(exc)) from None
        return len(job_ids)
    if backend_name == "lsf":
        from hpsearch.backends.base import BackendError
        from hpsearch.backends.lsf.backend import bkill

        try:
            return bkill(job_ids)
        except BackendError as exc:
            raise UsageError(str(exc)) from None
    return kill_local_jobs(job_ids)


#: sbatch / bsub options that ask for GPUs: the driver's own job drops them
_GPU_SBATCH = {"gres", "gpus", "gpus-per-node", "gpus-per-task", "gpus-per-socket",
               "gpu-bind", "gpu-freq", "cpus-per-gpu", "mem-per-gpu"}
_GPU_BSUB = {"gpu"}


def driver_options(options: SearchOptions, hours: float, mem: str,
                   partition: str | None) -> SearchOptions:
    """The runs' options turned into those of the driver's own job (``hpsearch wrap``):
    its time, memory and partition/queue, no GPU request of any spelling, and no time-limit
    warning (the driver saves its state all the time; it is no packed worker)."""
    def key(item: str) -> str:
        return item.partition("=")[0].strip().lstrip("-").replace("_", "-")

    lsf_mem = mem + "B" if mem[-1:].upper() in "KMGT" and mem[:-1].isdigit() else mem
    return dataclasses.replace(
        options, num_hours=hours, slurm_mem=mem, slurm_gres="", lsf_gpu="", walltime_warning=0,
        runs_per_job=None,
        resources=f"rusage[mem={lsf_mem}]",  # LSF spells units KB, MB, GB, TB
        slurm_partition=options.slurm_partition if partition is None else partition,
        lsf_queue=options.lsf_queue if partition is None else partition,
        sbatch_options=tuple(o for o in options.sbatch_options if key(o) not in _GPU_SBATCH),
        bsub_options=tuple(o for o in options.bsub_options if key(o) not in _GPU_BSUB))


def driver_script(options: SearchOptions, argv: list[str], cwd: Path) -> str:
    """The batch job that runs the driver itself (``hpsearch wrap``)."""
    if options.scheduler == "slurm":
        from hpsearch.backends.slurm.backend import render_driver_script

        try:
            return render_driver_script(options, argv, cwd)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if options.scheduler == "lsf":
        from hpsearch.backends.lsf.backend import render_lsf_driver_script

        try:
            return render_lsf_driver_script(options, argv, cwd)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    raise UsageError(f"hpsearch wrap: --scheduler={options.scheduler} is not supported; "
                     "use --scheduler=slurm or --scheduler=lsf")
