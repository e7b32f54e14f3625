"""Where a search's runs go: its backend, built from its options, and what each run needs.

The engine's side of the backends' registry (:mod:`hpsearch.backends`): ``--run_cluster
--scheduler=NAME`` builds the scheduler ``NAME`` of :data:`~hpsearch.backends.SCHEDULERS`,
handing its functions only their part of the options (``own(entry.job, options)``);
otherwise runs go to local GPUs, or to ``--num_jobs`` CPU slots (default: one per CPU this
process may use) when ``--visible_gpus=-1`` or no GPU is found. ``hpsearch wrap``'s driver job
is rendered here too.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpsearch.backends import scheduler
from hpsearch.backends.base import Backend
from hpsearch.backends.gpus.admission import GpuLimits, parse_mib
from hpsearch.backends.gpus.backend import GpuBackend
from hpsearch.backends.gpus.options import GpuOptions
from hpsearch.backends.gpus.probe import GpuUnavailable, open_gpu_source
from hpsearch.backends.local import LocalBackend
from hpsearch.engine.options import SearchOptions
from hpsearch.errors import UsageError
from hpsearch.options_decl import own
from hpsearch.runs.launchers import torchrun_refusal
from hpsearch.runs.model import Resources
from hpsearch.runs.preload import PreloadOptions
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.resources import ResourceOptions, ResourceRules, Shape

if TYPE_CHECKING:  # imported where used: a local search never loads them
    from hpsearch.backends.cluster.backend import ClusterSettings
    from hpsearch.backends.ssh.backend import SshBackend


def job_resources(options: SearchOptions) -> Resources:
    """What each cluster job asks for, as the scheduler's flags (its directives) say."""
    entry = scheduler(options.scheduler)
    return entry.load(entry.resources)(own(entry.job, options),
                                       parse_mib(options.gpu_memory_per_run))


def resources_of(options: SearchOptions) -> Resources:
    """What a run of the search ``options`` describe needs when it declares nothing: on a
    cluster what its job asks for (:func:`job_resources`; a packed job's run: one of its
    GPUs, if it has any, and one CPU), locally and on SSH hosts one GPU (none with
    ``--visible_gpus=-1``);
    ``--gpu_memory_per_run`` is every run's expected GPU memory. Raises ``ValueError`` (one
    line) for a value only a caller other than the CLI can pass."""
    gpu_memory = parse_mib(options.gpu_memory_per_run)
    if options.run_cluster and not options.on_hosts:
        job = job_resources(options)
        if options.runs_per_job is not None:
            return Resources(gpus=min(1, job.gpus), cpus=1, memory=None,
                             time_limit=job.time_limit, gpu_memory_mib=gpu_memory)
        return job
    return Resources(gpus=0 if options.cpu_only else 1, gpu_memory_mib=gpu_memory)


@dataclass(frozen=True)
class ResourcePlan:
    """What each run of a search needs: ``base`` (the backend's and the scheduler flags'
    :func:`resources_of`), under the search file's rule that matches the run's configuration
    (``rules``), under the ``--*_per_run`` flags (``flags``), each setting only what it
    names. ``launcher`` is every run's (``--launcher``, else the search's ``launcher:``)."""

    base: Resources
    rules: ResourceRules = ResourceRules()
    flags: Shape = Shape()
    launcher: str | None = None

    def of(self, config: Mapping[str, Any]) -> Resources:
        """What the run of ``config`` needs."""
        return self._of(self.rules.shape_of(config))

    def possible(self) -> list[Resources]:
        """Every shape a run may get: each rule's, and the one of a run no rule matches."""
        return [self._of(s) for s in [*self.rules.shapes(), Shape()]]

    def _of(self, shape: Shape) -> Resources:
        return dataclasses.replace(self.base, **self.flags.over(shape).fields(),
                                   launcher=self.launcher)


def resource_plan(spec: SearchSpec, options: SearchOptions) -> ResourcePlan:
    """The :class:`ResourcePlan` of ``spec`` run with ``options``."""
    flags = own(ResourceOptions, options)
    return ResourcePlan(resources_of(options), spec.resources, flags.shape(),
                        flags.launcher or spec.launcher)


def check_resources(plan: ResourcePlan, backend: Backend) -> None:
    """UsageError (one line) when a run of some shape ``plan`` may give can never run on
    ``backend`` (more GPUs than the machine, more CPUs than the slots, ...)."""
    for resources in plan.possible():
        why = backend.refusal(resources)
        if why is not None:
            raise UsageError(f"resources nothing here can run: {why}; lower the run's "
                             "resources (resources: in the search file, _RESOURCES, "
                             "--gpus_per_run, --cpus_per_run) or run it where there are more")


def check_launcher(plan: ResourcePlan, argv: Sequence[str]) -> None:
    """UsageError (one line) when the search's launcher cannot start its command ``argv``
    (``launcher: torchrun`` and a command that is not Python)."""
    why = torchrun_refusal(argv) if plan.launcher == "torchrun" else None
    if why is not None:
        raise UsageError(why)


def cluster_settings(options: SearchOptions) -> tuple[ClusterSettings, Any]:
    """What a cluster backend's constructor takes of ``options`` (checked): the cluster
    machinery's settings and its scheduler's own (the entry's ``settings(options)``)."""
    from hpsearch.backends.cluster.backend import ClusterSettings

    cluster = ClusterSettings(
        out_dir=options.out_dir, num_jobs=options.num_jobs, runs_per_job=options.runs_per_job,
        walltime_warning=options.walltime_warning, job_setup=tuple(options.job_setup),
        job_template=options.job_template, timeout=options.timeout,
        gpu_limits=GpuLimits(allowed_load=options.allowed_load,
                             allowed_memory=options.allowed_memory,
                             max_num_jobs_per_gpu=options.max_num_jobs_per_gpu,
                             sim_startup_time=options.sim_startup_time),
        resources=job_resources(options), preload=own(PreloadOptions, options))
    entry = scheduler(options.scheduler)
    cluster = dataclasses.replace(cluster, directives=entry.load(entry.directives))
    return cluster, entry.load(entry.settings)(own(entry.job, options))


def make_cluster_backend(options: SearchOptions) -> Backend:
    """The scheduler's backend, its settings checked before anything is submitted.

    Unless ``--dry_run`` (which only renders scripts), the scheduler's commands must be
    on PATH.
    """
    entry = scheduler(options.scheduler)
    try:
        entry.load(entry.validate)(own(entry.job, options))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    backend_class = entry.load(entry.backend)
    missing = [c for c in backend_class.commands if shutil.which(c) is None]
    if missing and not options.dry_run:
        raise UsageError(f"{missing[0]} is not on PATH: run hpsearch on a login node of your "
                         f"{options.scheduler} cluster (or in a job there), or drop "
                         "--run_cluster")
    return backend_class(*cluster_settings(options))


def checked_backend(spec: SearchSpec, options: SearchOptions,
                    say: Callable[[str], None]) -> Backend:
    """:func:`make_backend` for ``spec``, once its launcher can start the search's command
    and every shape of run it may give can run there (:func:`check_launcher`,
    :func:`check_resources`: UsageError, one line, the backend closed)."""
    backend = make_backend(with_spec_preload(options, spec), say)
    try:
        plan = resource_plan(spec, options)
        check_launcher(plan, spec.command.argv_prefix(options.python))
        check_resources(plan, backend)
    except UsageError:
        backend.close()
        raise
    return backend


def with_spec_preload(options: SearchOptions, spec: SearchSpec) -> SearchOptions:
    """``options`` with the search file's ``preload: true`` as ``--preload`` (unless
    ``--no_preload``: a flag given wins over the file)."""
    if spec.preload and not options.no_preload and not options.preload:
        return dataclasses.replace(options, preload=True)
    return options


def make_backend(options: SearchOptions, say: Callable[[str], None]) -> Backend:
    """The backend for ``options``; ``say`` reports choices the user should know of."""
    if options.on_hosts:
        return make_ssh_backend(options, say)
    if options.run_cluster:
        return make_cluster_backend(options)
    if options.cpu_only:
        return cpu_backend(options, say)
    try:
        limits = own(GpuOptions, options).limits()
        # a run not yet proposed is taken to need what the flags give every run
        resources = dataclasses.replace(resources_of(options),
                                        **own(ResourceOptions, options).shape().fields())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        backend = GpuBackend(open_gpu_source(), limits, options.num_jobs, options.timeout, say,
                             resources=resources, preload=own(PreloadOptions, options))
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


def make_ssh_backend(options: SearchOptions, say: Callable[[str], None]) -> SshBackend:
    """Runs on the SSH hosts ``--hosts``/``--hosts_file`` name, once every host answered and
    sees the search directory (one line naming the hosts that do not, before anything runs).
    The ssh configuration: ``--ssh_config``, else ``$HPSEARCH_SSH_CONFIG``, else ssh's own."""
    from hpsearch.backends.ssh.backend import SshBackend
    from hpsearch.backends.ssh.connection import Ssh, Unreachable
    from hpsearch.backends.ssh.hosts import hosts_of
    from hpsearch.backends.ssh.options import SSH_CONFIG_ENV, STATUS_FILE, SshOptions
    from hpsearch.backends.ssh.startcheck import check_shared, probe_all

    given = own(SshOptions, options)
    if options.run_cluster and options.scheduler != "ssh":
        raise UsageError(f"--hosts/--hosts_file run the search on SSH hosts, --run_cluster "
                         f"--scheduler={options.scheduler} on a cluster; give one of them")
    try:
        hosts = hosts_of(given.hosts, given.hosts_file)
        limits = own(GpuOptions, options).limits()
        resources = dataclasses.replace(resources_of(options),
                                        **own(ResourceOptions, options).shape().fields())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if shutil.which("ssh") is None:
        raise UsageError("ssh is not on PATH: install the OpenSSH client (Debian: "
                         "apt-get install openssh-client) to run on --hosts")
    try:
        ssh = Ssh(given.ssh_config or os.environ.get(SSH_CONFIG_ENV) or None)
    except Unreachable as exc:  # the connection sockets' directory is not ours alone
        raise UsageError(str(exc)) from None
    states = probe_all(ssh, hosts, gpus=not options.cpu_only)
    check_shared(ssh, hosts, options.out_dir)
    backend = SshBackend(ssh, hosts, states, limits, resources=resources, python=options.python,
                         timeout=options.timeout, grace=given.host_grace,
                         gpus=not options.cpu_only, num_jobs=options.num_jobs,
                         status_file=options.out_dir / STATUS_FILE, say=say,
                         preload=own(PreloadOptions, options))
    say("SSH hosts: " + "; ".join(backend.describe()))
    return backend


def cpu_backend(options: SearchOptions, say: Callable[[str], None]) -> LocalBackend:
    """Runs on :attr:`SearchOptions.cpu_slots` CPU slots; the count is said when it is not
    ``--num_jobs``'s."""
    slots = options.cpu_slots
    if options.num_jobs is None:
        say(f"--num_jobs not given: {slots} CPU slot{'s' if slots != 1 else ''} (the CPUs "
            "this process may use)")
    return LocalBackend(slots, options.timeout, preload=own(PreloadOptions, options), say=say)




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
        return entry.load(entry.driver_script)(own(entry.job, options), argv, cwd)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
