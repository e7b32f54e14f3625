"""A run of K nodes on SSH hosts (``launcher: torchrun``, ``nodes: K``): one wrapper per host.

The backend places the run on K distinct hosts that each take one node's GPUs and CPUs, asks
the first host for a free port (:func:`free_port`: one ssh command, the run's own Python binds
port 0 there) and resolves that host's address as ssh does (:func:`address_of`: ``ssh -G``,
so an alias of ``~/.ssh/config`` becomes its ``HostName``). Each node then starts, detached
like any run, the same torchrun argv with the c10d rendezvous ``<address>:<port>``
(:mod:`hpsearch.runs.launchers`), its wrapper writing into its own record directory
(:func:`node_dir`): node 0 into the run's, node i into ``<run_dir>/nodes/<i>/``, so every node
has its own ``started_at``, ``exit_code`` and logs. The run has ended once every node ended;
its verdict is the worst (:func:`worst`); a stop signals every node's process group on its
host; a host that stops answering costs the whole run (the others are killed, the run runs
again elsewhere, not charged). The run's job id names every node's wrapper, node 0's first:
``gpu1:4242+gpu2:5151``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from hpsearch.backends.ssh.connection import Ssh
from hpsearch.backends.ssh.hosts import Host
from hpsearch.runs.files import NODES_DIR, ExitRecord
from hpsearch.runs.launchers import FREE_PORT_SCRIPT

#: what joins the job ids (``<host>:<pid>``) of a run's nodes into the run's job id
NODE_JOBS = "+"


def node_dir(run_dir: Path, node: int) -> Path:
    """The record directory of node ``node`` of a run: the run's own for node 0."""
    return run_dir if node == 0 else run_dir / NODES_DIR / str(node)


def address_of(ssh: Ssh, host: Host) -> str:
    """The address ssh connects to for ``host`` (``ssh -G``'s ``hostname``, the ssh
    configuration applied); the host's own address when ssh cannot say."""
    argv = ["ssh", *(["-F", ssh.config] if ssh.config else []), "-G", host.address]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return host.address
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "hostname" and value.strip():
            return value.strip()
    return host.address


def free_port(ssh: Ssh, host: Host, python: str) -> int:
    """A TCP port free on ``host`` now, found by its ``python``;
    :class:`~hpsearch.backends.ssh.connection.Unreachable` when the host does not answer,
    ValueError when it printed no port."""
    done = ssh.run(host, [python, "-c", FREE_PORT_SCRIPT])
    words = done.stdout.split()
    if done.returncode != 0 or len(words) != 1 or not words[0].isdigit():
        raise ValueError(f"{python} on {host.name} found no free port "
                         f"({(done.stderr.strip().splitlines() or ['no answer'])[-1]})")
    return int(words[0])


def worst(nodes: Sequence[tuple[str, ExitRecord | None]]) -> tuple[int, str] | None:
    """The first node (``(name, its exit record or None: none written)``, node 0 first)
    that did not exit 0, as ``(index, why)``; None when every node exited 0."""
    for index, (name, record) in enumerate(nodes):
        if record is None:
            return index, f"node {index} ({name}) ended without an exit code"
        if record.exit_code != 0:
            return index, f"node {index} ({name}) exited with status {record.exit_code}"
    return None

