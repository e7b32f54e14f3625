"""The backends' registry: the table of cluster schedulers, and cancelling a search's jobs.

:data:`SCHEDULERS` holds one entry per scheduler; :mod:`hpsearch.engine.placement` builds a
search's backend from it (``--run_cluster --scheduler=NAME``), or a local one. A scheduler is a
sub-package
(``backends/<name>/``: its backend, its output parsers, its options, its templates) plus one
line of :data:`SCHEDULERS`; nothing else names it.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from hpsearch.backends.base import BackendError
from hpsearch.backends.local import kill_local_jobs
from hpsearch.backends.lsf import options as lsf_options
from hpsearch.backends.pbs import options as pbs_options
from hpsearch.backends.sge import options as sge_options
from hpsearch.backends.slurm import options as slurm_options
from hpsearch.backends.ssh import options as ssh_options
from hpsearch.errors import UsageError
from hpsearch.options_decl import option


@dataclass(frozen=True)
class Scheduler:
    """One cluster scheduler: its option declarations and its code.

    ``options`` declares the scheduler's own flags; ``job`` is what its functions below are
    handed of a search's options (its own and every cluster scheduler's, e.g. ``SlurmJob``).

    The code is named ``"module:attribute"`` and imported when a search uses this scheduler
    (``hpsearch --help`` and a local search load no scheduler's code): ``backend``, the
    :class:`Backend` class, built from the options, whose ``commands`` must be on PATH;
    ``validate(options)`` raises ValueError (one line) for options the scheduler refuses;
    ``cancel(job_ids)`` cancels jobs from outside the driver (the count it reached, or None: all of
    them) with ``cancel_command``; ``resources(options, gpu_memory_mib)`` is the
    :class:`~hpsearch.runs.model.Resources` each run's job asks for, read from its directives;
    ``settings(options)`` the scheduler's own part of what its backend's constructor takes;
    ``directives(resources)`` the job-script options asking for one run's
    :class:`~hpsearch.runs.model.Resources` (an array of runs of a declared shape gets them in
    place of the flags' own options for what the shape changes);
    ``driver_script(options, argv, cwd)`` renders the driver's own batch job (``hpsearch wrap``)
    with the options ``for_driver`` changes. ``batch`` is False for one that runs no batch
    jobs (SSH hosts): its ``driver_script`` refuses ``hpsearch wrap`` in one line.
    """

    options: type
    job: type
    for_driver: Callable[[Any, str, str | None], dict[str, Any]]
    backend: str
    validate: str
    cancel_command: str
    cancel: str
    driver_script: str
    resources: str
    settings: str
    directives: str
    batch: bool = True

    def load(self, ref: str) -> Any:
        """The attribute ``"module:attribute"`` names."""
        module, _, attribute = ref.partition(":")
        return getattr(importlib.import_module(module), attribute)


#: every cluster scheduler, by its ``--scheduler`` name
SCHEDULERS: dict[str, Scheduler] = {
    "slurm": Scheduler(
        slurm_options.SlurmOptions, slurm_options.SlurmJob, slurm_options.for_driver,
        backend="hpsearch.backends.slurm.backend:SlurmBackend",
        validate="hpsearch.backends.slurm.backend:validate_slurm_options",
        cancel_command="scancel", cancel="hpsearch.backends.slurm.backend:scancel",
        driver_script="hpsearch.backends.slurm.backend:render_driver_script",
        resources="hpsearch.backends.slurm.backend:run_resources",
        settings="hpsearch.backends.slurm.backend:slurm_settings",
        directives="hpsearch.backends.slurm.backend:resource_directives"),
    "lsf": Scheduler(
        lsf_options.LsfOptions, lsf_options.LsfJob, lsf_options.for_driver,
        backend="hpsearch.backends.lsf.backend:LsfBackend",
        validate="hpsearch.backends.lsf.backend:validate_lsf_options",
        cancel_command="bkill", cancel="hpsearch.backends.lsf.backend:bkill",
        driver_script="hpsearch.backends.lsf.backend:render_lsf_driver_script",
        resources="hpsearch.backends.lsf.backend:run_resources",
        settings="hpsearch.backends.lsf.backend:lsf_settings",
        directives="hpsearch.backends.lsf.backend:resource_directives"),
    "pbs": Scheduler(
        pbs_options.PbsOptions, pbs_options.PbsJob, pbs_options.for_driver,
        backend="hpsearch.backends.pbs.backend:PbsBackend",
        validate="hpsearch.backends.pbs.backend:validate_pbs_options",
        cancel_command="qdel", cancel="hpsearch.backends.pbs.backend:qdel",
        driver_script="hpsearch.backends.pbs.backend:render_pbs_driver_script",
        resources="hpsearch.backends.pbs.backend:run_resources",
        settings="hpsearch.backends.pbs.backend:pbs_settings",
        directives="hpsearch.backends.pbs.backend:resource_directives"),
    "sge": Scheduler(
        sge_options.SgeOptions, sge_options.SgeJob, sge_options.for_driver,
        backend="hpsearch.backends.sge.backend:SgeBackend",
        validate="hpsearch.backends.sge.backend:validate_sge_options",
        cancel_command="qdel", cancel="hpsearch.backends.sge.backend:qdel",
        driver_script="hpsearch.backends.sge.backend:render_driver_script",
        resources="hpsearch.backends.sge.backend:run_resources",
        settings="hpsearch.backends.sge.backend:sge_settings",
        directives="hpsearch.backends.sge.backend:resource_directives"),
    "ssh": Scheduler(
        ssh_options.SshOptions, ssh_options.SshOptions, ssh_options.for_driver,
        backend="hpsearch.backends.ssh.backend:SshBackend",
        validate="hpsearch.backends.ssh.table:validate",
        cancel_command="ssh", cancel="hpsearch.backends.ssh.table:cancel",
        driver_script="hpsearch.backends.ssh.table:driver_script",
        resources="hpsearch.backends.ssh.table:run_resources",
        settings="hpsearch.backends.ssh.table:settings",
        directives="hpsearch.backends.ssh.table:directives", batch=False),
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
