"""What the backends' table (:data:`hpsearch.backends.SCHEDULERS`) names of the SSH hosts.

SSH hosts are no batch scheduler: runs go there with ``--hosts``/``--hosts_file`` (or
``--run_cluster --scheduler=ssh`` with one of them); there are no job scripts, no directives
and no driver job (``hpsearch wrap``). ``hpsearch cancel`` reaches a run's host by the name in
its job id (``gpu1:4242``; a run of several nodes: each node's host, ``gpu1:4242+gpu2:5151``)
with the ssh configuration of ``$HPSEARCH_SSH_CONFIG`` (else ``~/.ssh/config``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hpsearch.backends.base import BackendError
from hpsearch.backends.ssh.backend import KILL_GRACE
from hpsearch.backends.ssh.connection import Ssh, Unreachable
from hpsearch.backends.ssh.hosts import Host
from hpsearch.backends.ssh.nodes import NODE_JOBS
from hpsearch.backends.ssh.options import SSH_CONFIG_ENV, SshOptions
from hpsearch.backends.ssh.remote import stop_argv
from hpsearch.runs.model import Resources


def validate(options: SshOptions) -> None:
    """``--scheduler=ssh`` needs the hosts."""
    if not options.on_hosts:
        raise ValueError("--scheduler=ssh (or an Auptimizer file's resource node) runs on "
                         "SSH hosts: name them with --hosts (e.g. --hosts=gpu1,gpu2) or "
                         "--hosts_file")


def run_resources(options: SshOptions, gpu_memory_mib: int | None) -> Resources:
    """What the table asks of a scheduler's jobs; SSH hosts run no jobs, and their runs take
    a local run's shape (:func:`hpsearch.engine.placement.resources_of`): one GPU."""
    return Resources(gpus=1, gpu_memory_mib=gpu_memory_mib)


def settings(options: SshOptions) -> SshOptions:
    return options


def directives(resources: Resources) -> list[str]:
    """No job script, so no directive."""
    return []


def driver_script(options: SshOptions, argv: Sequence[str], cwd: Path) -> str:
    raise ValueError("hpsearch wrap: SSH hosts have no scheduler to run the driver; run "
                     "hpsearch itself on a machine that reaches them")


def cancel(job_ids: Sequence[str]) -> int:
    """Stop the runs' process groups (job ids ``<host>:<pid>``): SIGTERM, SIGKILL after
    :data:`~hpsearch.backends.ssh.backend.KILL_GRACE` seconds, one ssh command per host; the
    count of runs on hosts that answered. BackendError when none answered."""
    ssh = Ssh(os.environ.get(SSH_CONFIG_ENV) or None)
    by_host: dict[str, list[int]] = {}
    for node_job in (part for job_id in job_ids for part in job_id.split(NODE_JOBS)):
        name, _, pid = node_job.rpartition(":")
        if name and pid.isdigit():
            by_host.setdefault(name, []).append(int(pid))
    reached, failed = 0, []
    for name, pids in by_host.items():
        try:
            ssh.run(Host(name, name), stop_argv(pids, KILL_GRACE))
            reached += len(pids)
        except Unreachable as exc:
            failed.append(f"{name} ({exc})")
    if failed and not reached:
        raise BackendError(f"cannot reach SSH host(s) {'; '.join(failed)} to cancel the "
                           "search's runs there")
    return reached
