"""The backends' registry: the table of cluster schedulers and the choice of a search's backend.

:data:`SCHEDULERS` holds one entry per scheduler; :func:`make_backend` picks a search's backend.

``--run_cluster --scheduler=NAME`` selects the scheduler ``NAME`` of the table; otherwise runs
go to local GPUs, or to ``--num_jobs`` CPU slots (default: one per CPU this process may use)
when ``--visible_gpus=-1`` or no GPU is found. A scheduler is a sub-package
(``backends/<name>/``: its backend, its output parsers, its options, its templates) plus one
line of :data:`SCHEDULERS`; nothing else names it.
"""

from __future__ import annotations

import dataclasses
import importlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from hpsearch.backends.base import Backend, BackendError
from hpsearch.backends.gpus.admission import parse_mib
from hpsearch.backends.gpus.backend import GpuBackend
from hpsearch.backends.gpus.options import GpuOptions
from hpsearch.backends.gpus.probe import GpuUnavailable, open_gpu_source
from hpsearch.backends.local import LocalBackend, kill_local_jobs
from hpsearch.backends.lsf import options as lsf_options
from hpsearch.backends.slurm import options as slurm_options
from hpsearch.errors import UsageError
from hpsearch.options_decl import option, own
from hpsearch.runs.model import Resources

if TYPE_CHECKING:
    from hpsearch.engine.options import SearchOptions


@dataclass(frozen=True)
class Scheduler:
    """One cluster scheduler: its option declarations and its code.

    The code is named ``"module:attribute"`` and imported when a search uses this scheduler
    (``hpsearch --help`` and a local search load no scheduler's code): ``backend``, the
    :class:`Backend` class, built from the options, whose ``commands`` must be on PATH;
    ``validate(options)`` raises ValueError (one line) for options the scheduler refuses;
    ``cancel(job_ids)`` cancels jobs from outside the driver (the count it reached, or None: all of
    them) with ``cancel_command``; ``resources(options, gpu_memory_mib)`` is the
    :class:`~hpsearch.runs.model.Resources` each run's job asks for, read from its directives;
    ``driver_script(options, argv, cwd)`` renders the driver's own batch job (``hpsearch wrap``)
    with the options ``for_driver`` changes.
    """

    options: type
    for_driver: Callable[[Any, str, str | None], dict[str, Any]]
    backend: str
    validate: str
    cancel_command: str
    cancel: str
    driver_script: str
    resources: str

    def load(self, ref: str) -> Any:
        """The attribute ``"module:attribute"`` names."""
        module, _, attribute = ref.partition(":")
        return getattr(importlib.import_module(module), attribute)


#: every cluster scheduler, by its ``--scheduler`` name
SCHEDULERS: dict[str, Scheduler] = {
    "slurm": Scheduler(
        slurm_options.SlurmOptions, slurm_options.for_driver,
        backend="hpsearch.backends.slurm.backend:SlurmBackend",
        validate="hpsearch.backends.slurm.backend:validate_slurm_options",
        cancel_command="scancel", cancel="hpsearch.backends.slurm.backend:scancel",
        driver_script="hpsearch.backends.slurm.backend:render_driver_script",
        resources="hpsearch.backends.slurm.backend:run_resources"),
    "lsf": Scheduler(
        lsf_options.LsfOptions, lsf_options.for_driver,
        backend="hpsearch.backends.lsf.backend:LsfBackend",
        validate="hpsearch.backends.lsf.backend:validate_lsf_options",
        cancel_command="bkill", cancel="hpsearch.backends.lsf.backend:bkill",
        driver_script="hpsearch.backends.lsf.backend:render_lsf_driver_script",
        resources="hpsearch.backends.lsf.backend:run_resources"),
}


def scheduler_names(sep: str = "|") -> str:
    """``slurm|lsf``: the table's names, for messages."""
    return sep.join(SCHEDULERS)


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where runs go: a cluster scheduler of :data:`SCHEDULERS`, or this machine."""

    TITLE: ClassVar[str] = "Where runs go"
    run_cluster: bool = option(
        False, "Submit runs to a cluster scheduler (see --scheduler).",
        enables=f"cluster jobs: add --run_cluster --scheduler={scheduler_names()}")
    scheduler: str = option("lsf", "The cluster's scheduler.", choices=SCHEDULERS)
    num_jobs: int | None = option(
        None, "Most runs at once: cluster jobs in flight (default 8), CPU slots locally "
        "(default: one per CPU this process may use), a total cap in GPU mode (default none).",
        low=1)


def scheduler(name: str, doing: str = "") -> Scheduler:
    """The table's entry ``name``; UsageError listing the table's names if there is none."""
    entry = SCHEDULERS.get(name)
    if entry is None:
        raise UsageError(f"{doing}--scheduler={name} is not supported; use "
                         + " or ".join(f"--scheduler={n}" for n in SCHEDULERS))
    return entry


def resources_of(options: SearchOptions) -> Resources:
    """What each run of the search ``options`` describe needs (the same for every run today):
    on a cluster what its scheduler's directives ask for, locally one GPU (none with
    ``--visible_gpus=-1``); ``--gpu_memory_per_run`` is every run's expected GPU memory. Raises
    ``ValueError`` (one line) for a value only a caller other than the CLI can pass."""
    gpu_memory = parse_mib(options.gpu_memory_per_run)
    if options.run_cluster:
        entry = scheduler(options.scheduler)
        return entry.load(entry.resources)(options, gpu_memory)
    return Resources(gpus=0 if options.cpu_only else 1, gpu_memory_mib=gpu_memory)


def make_cluster_backend(options: SearchOptions) -> Backend:
    """The scheduler's backend, its settings checked before anything is submitted.

    Unless ``--dry_run`` (which only renders scripts), the scheduler's commands must be
    on PATH.
    """
    entry = scheduler(options.scheduler)
    try:
        entry.load(entry.validate)(options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    backend_class = entry.load(entry.backend)
    missing = [c for c in backend_class.commands if shutil.which(c) is None]
    if missing and not options.dry_run:
        raise UsageError(f"{missing[0]} is not on PATH: run hpsearch on a login node of your "
                         f"{options.scheduler} cluster (or in a job there), or drop "
                         "--run_cluster")
    return backend_class(options)


def make_backend(options: SearchOptions, say: Callable[[str], None]) -> Backend:
    """The backend for ``options``; ``say`` reports choices the user should know of."""
    if options.run_cluster:
        return make_cluster_backend(options)
    if options.cpu_only:
        return cpu_backend(options, say)
    try:
        limits = own(GpuOptions, options).limits()
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


def check_cancel_commands(backend_name: str) -> None:
    """UsageError (one line) when this machine cannot cancel the backend's jobs."""
    entry = SCHEDULERS.get(backend_name)
    if entry is not None and shutil.which(entry.cancel_command) is None:
        raise UsageError(f"{entry.cancel_command} is not on PATH, so the search's "
                         f"{backend_name} jobs cannot be cancelled from here: run hpsearch "
                         "cancel on a login node of the cluster")


def cancel_jobs(backend_name: str, job_ids: Sequence[str]) -> int:
    """Cancel jobs a search's journal lists, from outside the driver; returns the count."""
    if not job_ids:
        return 0
    entry = SCHEDULERS.get(backend_name)
    if entry is None:
        return kill_local_jobs(list(job_ids))
    try:
        reached = entry.load(entry.cancel)(list(job_ids))
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    return len(job_ids) if reached is None else reached


def driver_options(options: SearchOptions, hours: float, mem: str,
                   partition: str | None) -> SearchOptions:
    """The runs' options turned into those of the driver's own job (``hpsearch wrap``):
    its time, memory and partition/queue (the scheduler's ``for_driver``), no GPU request of
    any spelling, and no time-limit warning (the driver saves its state all the time; it is
    no packed worker)."""
    changes = scheduler(options.scheduler, "hpsearch wrap: ").for_driver(options, mem, partition)
    return dataclasses.replace(options, num_hours=hours, walltime_warning=0, runs_per_job=None,
                               **changes)


def driver_script(options: SearchOptions, argv: list[str], cwd: Path) -> str:
    """The batch job that runs the driver itself (``hpsearch wrap``)."""
    entry = scheduler(options.scheduler, "hpsearch wrap: ")
    try:
        return entry.load(entry.driver_script)(options, argv, cwd)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
