"""The SSH hosts as the SSH backend keeps them, and the runs going on them.

Each host's probe (:class:`HostSource`, with its back-off), its GPU policy and slots
(:class:`Machine`), and each node of a run going there (:class:`Active`), as
:class:`~hpsearch.backends.ssh.backend.SshBackend` keeps them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hpsearch.backends.gpus.admission import GpuAdmission
from hpsearch.backends.gpus.backend import Sampler
from hpsearch.backends.gpus.probe import GpuSample, GpuUnavailable
from hpsearch.backends.ssh.agent import Agent
from hpsearch.backends.ssh.connection import Ssh, Unreachable
from hpsearch.backends.ssh.hosts import Host
from hpsearch.backends.ssh.nodes import node_dir
from hpsearch.backends.ssh.remote import HostState, parse_probe, probe_argv
from hpsearch.runs.model import Run
from hpsearch.runs.preload import ZygotePool

#: seconds between two probes of a host
PROBE_INTERVAL = 0.5
#: seconds before the first retry of a host that did not answer, doubled each time ...
RETRY_FIRST = 1.0
#: ... up to this
RETRY_MOST = 10.0

class HostSource:
    """The probe of one host, as a :class:`~hpsearch.backends.gpus.probe.GpuSource` for a
    :class:`Sampler`: :meth:`sample` answers the host's GPUs (those ``host.gpus`` names) and
    keeps the whole answer in :attr:`latest`; a host that did not answer is not asked again
    before its back-off ends (:attr:`failing_since`: since when it has not answered)."""

    def __init__(self, ssh: Ssh, host: Host, state: HostState, gpus: bool = True) -> None:
        self.ssh, self.host, self.argv = ssh, host, probe_argv(gpus)
        self.description = f"nvidia-smi on {host.name}"
        self.latest: tuple[float, HostState] = (time.monotonic(), state)
        self.failing_since: float | None = None
        self.error = ""
        self._retry_at = 0.0
        self._backoff = RETRY_FIRST

    def sample(self, indices: Sequence[int] | None = None) -> list[GpuSample]:
        began = time.monotonic()
        if began < self._retry_at:
            raise GpuUnavailable(self.error)
        try:
            state = parse_probe(self.ssh.run(self.host, self.argv).stdout)
        except (Unreachable, ValueError) as exc:
            self.error = str(exc)
            if self.failing_since is None:
                self.failing_since = began
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(2 * self._backoff, RETRY_MOST)
            raise GpuUnavailable(self.error) from None
        self.latest = (began, state)
        self.failing_since, self._backoff, self._retry_at = None, RETRY_FIRST, 0.0
        return state.gpus


@dataclass
class Machine:
    """One host as the backend keeps it."""

    host: Host
    source: HostSource
    policy: GpuAdmission
    slots: int
    agent: Agent
    zygotes: ZygotePool | None = None  # None: no run is preloaded
    sampler: Sampler | None = None
    down: bool = False  # its runs were given up; it takes no run until it answers
    orphans: set[int] = field(default_factory=set)  # wrappers of runs given up there

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def answering(self) -> bool:
        return self.source.failing_since is None and not self.down


@dataclass
class Active:
    run: Run
    machine: Machine
    pid: int
    started: float
    gpus: list[int]
    deadline: float | None
    env: Mapping[str, str] = field(default_factory=dict)
    kill_at: float | None = None
    reason: str | None = None
    node: int = 0  # which node of the run (0: its only one, or the first of several)
    preloaded: bool = False  # forked from the host's zygote

    @property
    def files(self) -> Path:
        """Where its wrapper writes ``started_at`` and ``exit_code``."""
        return node_dir(self.run.run_dir, self.node)
