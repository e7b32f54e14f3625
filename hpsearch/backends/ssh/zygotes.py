"""Preloaded runs on SSH hosts: each host's zygotes, started over ssh.

A host's runs that can be preloaded (:mod:`hpsearch.runs.preload`: a function objective, or a
script with ``--preload``) fork from a zygote on that host, which imported their code once,
instead of each starting a fresh interpreter there. :class:`OnHost` starts it through the
host's shared connection::

    ssh ... -- gpu1 /bin/sh -c 'cd -- "$0" || exit 126
    exec "$@"' /lab/sims /usr/bin/python3 -m hpsearch.runs.zygote - function train.py:fn

(the words quoted, :func:`~hpsearch.backends.ssh.connection.remote_command`; ``-``: a zygote
that ends when its stdin, the ssh channel, closes: when the driver retires it, kills its ssh
client, or ends, even by ``kill -9``). Its fork requests and answers go over that channel
(:mod:`hpsearch.runs.zygote`); its runs are in sessions of their own, each wrapper's pid the
job id's ``<pid>``, and end with an exit file, as the runs the agent starts.

:class:`PreloadedRuns` is the SSH backend's part of it (its methods read the backend's hosts,
runs and how it starts a run, as :class:`~hpsearch.backends.ssh.multinode.NodeRuns` does).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Sequence
from pathlib import Path

from hpsearch.backends.ssh.connection import Ssh
from hpsearch.backends.ssh.hosts import Host
from hpsearch.backends.ssh.machines import Active, Machine
from hpsearch.runs.model import Run
from hpsearch.runs.preload import HELD, ZYGOTE_MODULE, Zygote, note_preloaded
from hpsearch.runs.zygote import REMOTE

#: enters the runs' directory, then runs the zygote (``$0``: the directory)
_IN_DIRECTORY = 'cd -- "$0" || exit 126\nexec "$@"'


class OnHost:
    """Zygotes on ``host``, through ``ssh`` (a :class:`~hpsearch.runs.preload.Where`)."""

    remote = True

    def __init__(self, ssh: Ssh, host: Host) -> None:
        self.ssh, self.host = ssh, host
        self.place = f" on {host.name}"

    def start(self, python: str, cwd: str, kind: str, target: str) -> subprocess.Popen[bytes]:
        self.ssh.calls += 1
        argv = ["/bin/sh", "-c", _IN_DIRECTORY, cwd, python, "-m", ZYGOTE_MODULE, REMOTE,
                kind, target]
        return subprocess.Popen(self.ssh.argv(self.host, argv), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)


#: a run asked of a host's zygote: the host, the run, its GPUs, the zygote
Fork = tuple[Machine, Run, list[int], Zygote]


class PreloadedRuns:
    """The SSH backend's preloaded runs (module docstring)."""

    _machines: list[Machine]
    _active: dict[str, Active]

    def prepare(self, argv: Sequence[str], cwd: Path, launcher: str | None) -> None:
        """Start the zygote of the runs of ``argv`` on every host (each with the host's
        ``python``), so that they import while the driver starts; runs through a launcher
        fork from none."""
        for machine in self._machines:
            if machine.zygotes is not None and not launcher and argv:
                machine.zygotes.prepare([self._python_of(argv[0], machine.host), *argv[1:]],
                                        cwd)

    def _held(self, machine: Machine) -> bool:
        """The host's runs wait for its zygote (:meth:`ZygotePool.busy`)."""
        return machine.zygotes is not None and machine.zygotes.busy(self._running_on(machine))

    def _running_on(self, machine: Machine) -> bool:
        return any(a.machine is machine for a in self._everyone())

    def _ask_forks(self, machine: Machine, placed: list[tuple[Run, list[int]]],
                   forks: list[Fork]) -> list[tuple[Run, list[int]]]:
        """Ask the host's zygote for a fork of each of ``placed`` that can be preloaded
        (added to ``forks``); a run held for its zygote is unplaced; the rest are left for
        the agent."""
        if machine.zygotes is None:
            return placed
        hold = not self._running_on(machine)
        rest = []
        for run, gpus in placed:
            hosted = dataclasses.replace(run, argv=self._argv(run, machine.host))
            zygote = None if run.resources.launcher else \
                machine.zygotes.zygote_for(hosted, hold)
            if zygote is HELD:
                machine.policy.ended(run.run_id)
            elif isinstance(zygote, Zygote) and zygote.ask(machine.zygotes.request(
                    hosted, self._env(run, gpus), machine.name, "")):
                forks.append((machine, run, gpus, zygote))
            else:
                rest.append((run, gpus))
        return rest

    def _forked(self, forks: Sequence[Fork], now: float) -> dict[str, str]:
        """The runs the zygotes forked (their answers, in the order asked); a run whose
        zygote died before it answered is left out (it starts again on a later submit)."""
        started = {}
        for machine, run, gpus, zygote in forks:
            pid = zygote.answer()
            if pid is None:
                machine.policy.ended(run.run_id)
                continue
            note_preloaded(run)
            for gpu in gpus:
                machine.policy.launched(gpu, run.run_id, pid, now, run.resources.gpu_memory_mib)
            self._active[run.run_id] = Active(run, machine, pid, now, gpus, self._deadline(now),
                                              self._env(run, gpus), preloaded=True)
            started[run.run_id] = f"{machine.name}:{pid}"
        return started

