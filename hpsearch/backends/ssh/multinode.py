"""The SSH backend's runs of K nodes: placed, started, judged and adopted.

What :class:`~hpsearch.backends.ssh.backend.SshBackend` does for a run of K nodes
(:mod:`~hpsearch.backends.ssh.nodes`): place it on K hosts, start one wrapper on each, judge it
once every node ended, adopt its other nodes after a restart.

:class:`NodeRuns` is a part of the backend: its methods read the backend's hosts
(``_machines``, ``_usable``, ``_free_slots``), its runs (``_active``, ``_followers``,
``_nodes_of``), how it starts, signals and adopts a run (``_python``, ``_argv``, ``_env``,
``_deadline``, ``_send``, ``_adopt``), ``ssh`` and ``say``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence

from hpsearch.backends.base import Ended
from hpsearch.backends.ssh.agent import Agent, NotOneLine
from hpsearch.backends.ssh.connection import Ssh, Unreachable
from hpsearch.backends.ssh.machines import Active, Machine
from hpsearch.backends.ssh.nodes import NODE_JOBS, address_of, free_port, node_dir, worst
from hpsearch.backends.ssh.remote import Start, parse_pids, start_argv
from hpsearch.runs.files import ExitRecord, read_exit, read_start
from hpsearch.runs.model import Run


class NodeRuns:
    """The backend's runs of several nodes (module docstring)."""

    ssh: Ssh
    say: Callable[[str], None]
    _machines: list[Machine]
    _active: dict[str, Active]
    _followers: dict[str, list[Active]]
    _status_dirty: bool

    def _place_nodes(self, run: Run, now: float, taken: dict[int, int]
                     ) -> list[tuple[int, list[int]]] | None:
        """K distinct answering hosts whose slots and GPUs take one node of ``run`` now,
        as ``(host index, GPUs)``, their slots counted in ``taken``; None when fewer do."""
        need = run.resources.gpu_memory_mib
        nodes: list[tuple[int, list[int]]] = []
        for machine in self._usable():
            index = self._machines.index(machine)
            if self._free_slots(machine) - taken.get(index, 0) < run.resources.cpus:
                continue
            gpus: list[int] | None = []
            if run.resources.gpus:
                gpus = machine.policy.choose_many(now, run.run_id, need, run.resources.gpus)
            if gpus is None:
                continue
            nodes.append((index, gpus))
            if len(nodes) == run.resources.nodes:
                for index, gpus in nodes:
                    taken[index] = taken.get(index, 0) + run.resources.cpus
                    for gpu in gpus:
                        self._machines[index].policy.launched(gpu, run.run_id, None, now, need)
                return nodes
        return None

    def _start_nodes(self, run: Run, nodes: Sequence[tuple[int, list[int]]],
                     now: float) -> dict[str, str]:
        """Start one wrapper per node of ``run`` (module docstring), all hosts at once
        through their agents, with the rendezvous on the first host; ``{run_id: job_id}``
        once every node started, else ``{}`` (the nodes that did start are killed)."""
        machines = [self._machines[index] for index, _gpus in nodes]
        first = machines[0].host
        try:
            port = free_port(self.ssh, first, self._python(run, first))
            endpoint = f"{address_of(self.ssh, first)}:{port}"
        except (Unreachable, ValueError) as exc:
            return self._not_started(run, machines, [], exc)
        sent: list[Agent | subprocess.Popen[str] | Unreachable] = []
        for node, ((_index, gpus), machine) in enumerate(zip(nodes, machines, strict=True)):
            files = node_dir(run.run_dir, node)
            files.mkdir(parents=True, exist_ok=True)
            start = Start(str(files), run.launch, machine.name, str(run.cwd),
                          self._argv(run, machine.host, endpoint), self._env(run, gpus))
            try:
                machine.agent.send([start])
                sent.append(machine.agent)
            except NotOneLine:
                sent.append(self.ssh.start(machine.host, start_argv([start])))
            except Unreachable as exc:
                sent.append(exc)
        pids: list[int | None] = []
        failure: Exception | None = None
        for way in sent:
            try:
                if isinstance(way, Unreachable):
                    raise way
                pids.append(way.receive(1)[0] if isinstance(way, Agent)
                            else parse_pids(self.ssh.finish(way).stdout, 1)[0])
            except (Unreachable, ValueError) as exc:
                pids.append(None)
                failure = exc
        if failure is not None:
            started = [(m, pid) for m, pid in zip(machines, pids, strict=True) if pid]
            return self._not_started(run, machines, started, failure)
        actives = []
        for node, ((_index, gpus), machine, pid) in enumerate(
                zip(nodes, machines, pids, strict=True)):
            assert pid is not None
            for gpu in gpus:
                machine.policy.launched(gpu, run.run_id, pid, now, run.resources.gpu_memory_mib)
            actives.append(Active(run, machine, pid, now, gpus, self._deadline(now),
                                   self._env(run, gpus), node=node))
        self._active[run.run_id] = actives[0]
        self._followers[run.run_id] = actives[1:]
        self._status_dirty = True
        return {run.run_id: NODE_JOBS.join(f"{m.name}:{pid}"
                                           for m, pid in zip(machines, pids, strict=True))}

    def _not_started(self, run: Run, machines: Sequence[Machine],
                     started: Sequence[tuple[Machine, int]], why: Exception) -> dict[str, str]:
        """A run of several nodes that could not start on every host: what started of it is
        killed, its GPUs freed; ``{}``."""
        for machine, pid in started:
            self._send(machine, "KILL", [pid])
        for machine in machines:
            machine.policy.ended(run.run_id)
        self.say(f"run {run.run_id}: could not start its {len(machines)} nodes ({why})")
        return {}

    def _end_of_nodes(self, active: Active) -> Ended | None:
        """How a run of several nodes ended, once every node ended; None while one goes on.
        A node's host given up costs the run: the other nodes are killed, it is lost."""
        run, nodes = active.run, self._nodes_of(active)
        down = [n for n in nodes if n.machine.down]
        if down:
            for node in nodes:
                if node.machine.down:
                    node.machine.orphans.add(node.pid)
                else:
                    self._send(node.machine, "KILL", [node.pid])
            return Ended(run.run_id, None, f"host {down[0].machine.name} did not answer",
                         lost=True, extra=self._extra(active))
        records: list[tuple[str, ExitRecord | None]] = []
        for node in nodes:
            record = read_exit(node.files, run.launch)
            if record is None:
                seen_at, state = node.machine.source.latest
                if seen_at <= node.started or state.alive(node.pid):
                    return None
                record = read_exit(node.files, run.launch)  # written just before the probe?
            records.append((node.machine.name, record))
        first = records[0][1]
        wall_time = first.wall_time if first is not None else None
        if active.reason is not None:
            return Ended(run.run_id, None, active.reason, extra=self._extra(active),
                         wall_time=wall_time)
        bad = worst(records)
        if bad is None and first is not None:
            return Ended.recorded(run.run_id, first, self._extra(active))
        index, why = bad if bad is not None else (0, "")
        failed = records[index][1]
        return Ended(run.run_id, failed.exit_code if failed is not None else None, why,
                     extra=self._extra(active), wall_time=wall_time)

    def _reattach_nodes(self, run: Run, by_name: Mapping[str, Machine],
                        now: float) -> list[Active]:
        """The other nodes of a run of several, from their ``started_at`` (``job=<host>:
        <pid>``) in ``nodes/<i>/``; a node whose host is not one of the search's is left to
        its rendezvous (it fails with the run)."""
        followers = []
        for node in range(1, run.resources.nodes):
            start = read_start(node_dir(run.run_dir, node))
            if start is None or start.launch != run.launch:
                continue
            name, _, pid = start.job.rpartition(":")
            machine = by_name.get(name)
            if machine is None or not pid.isdigit():
                continue
            followers.append(self._adopt(run, machine, int(pid), start, now, node))
        return followers
