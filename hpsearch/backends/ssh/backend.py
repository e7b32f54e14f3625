"""Run the search on workstations over SSH: each host's GPUs admitted as local GPUs are.

:class:`SshBackend` starts each run detached on a host through the one job wrapper
(:mod:`~hpsearch.backends.ssh.remote`: its own session, so it survives the connection; job id
``<host>:<pid>``) and learns its end from ``exit_code`` in the run directory, which every host
sees (the search directory is on a shared filesystem, as
:mod:`~hpsearch.backends.ssh.startcheck` makes sure at start). Each host
(:mod:`~hpsearch.backends.ssh.machines`) has its own
:class:`~hpsearch.backends.gpus.admission.GpuAdmission` (the local GPUs' policy, with
``--allowed_memory``, ``--allowed_load``, ``--max_num_jobs_per_gpu``, ``--sim_startup_time``;
the host's ``gpus`` as its visible GPUs) and CPU slots, fed by a background
:class:`~hpsearch.backends.gpus.backend.Sampler` whose one ssh command per sample (the probe)
gives the host's GPUs and which of our runs still have a process. A run needing N GPUs starts
on one host where N GPUs admit it at once, with ``CUDA_VISIBLE_DEVICES`` listing them; runs go
to the host with the most free slots first.

A host that does not answer is retried with back-off (1 s, doubling, at most 10 s). Once it
has not answered for ``--host_grace`` seconds, its runs that left no exit code are reported
``lost`` (the driver runs them again elsewhere, not charged); when it answers again, what is
left of them there is killed (SIGKILL to their process groups) and the host takes runs again.
Stop = SIGTERM to the run's process group on its host, SIGKILL after the grace period. After
``kill -9`` of the driver the same command reattaches: a run whose ``started_at`` names its job
and whose session is alive is watched again, nothing runs twice.

A run that can be preloaded (a function objective; a script with ``--preload``) forks from a
zygote on its host that imported its code once (:mod:`~hpsearch.backends.ssh.zygotes`; one
:class:`~hpsearch.runs.preload.ZygotePool` per host, started as the driver starts); the rest
start through the host's agent. While a host's first zygote imports and no run goes there,
its room is 0.

A run of K nodes (``launcher: torchrun``) takes K hosts, one wrapper on each, with its own
record directory (:mod:`~hpsearch.backends.ssh.nodes`; the backend's part of it:
:mod:`~hpsearch.backends.ssh.multinode`); its job id names each node's wrapper
(``gpu1:4242+gpu2:5151``), so ``hpsearch cancel`` reaches every node.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import selectors
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hpsearch.backends.base import Backend, Ended
from hpsearch.backends.gpus.admission import GpuAdmission, GpuLimits
from hpsearch.backends.gpus.backend import Sampler, by_session, gpu_column
from hpsearch.backends.gpus.probe import GpuUnavailable
from hpsearch.backends.ssh.agent import Agent, NotOneLine
from hpsearch.backends.ssh.connection import Ssh, Unreachable
from hpsearch.backends.ssh.hosts import Host
from hpsearch.backends.ssh.machines import PROBE_INTERVAL, Active, HostSource, Machine
from hpsearch.backends.ssh.multinode import NodeRuns
from hpsearch.backends.ssh.nodes import NODE_JOBS, node_dir
from hpsearch.backends.ssh.remote import (
    HostState,
    Start,
    parse_pids,
    signal_argv,
    start_argv,
)
from hpsearch.backends.ssh.zygotes import Fork, OnHost, PreloadedRuns
from hpsearch.runs.files import StartRecord, read_exit, read_start
from hpsearch.runs.launchers import launch_of
from hpsearch.runs.model import Resources, Run
from hpsearch.runs.preload import PreloadOptions, ZygotePool

#: seconds between SIGTERM and SIGKILL when a run is stopped
KILL_GRACE = 5.0
#: least seconds between two writes of the status file while only the runs changed (a
#: host's change of state is written at once)
STATUS_PERIOD = 1.0
#: seconds between two looks at the active runs' exit files while runs are going
EXIT_FILE_PERIOD = 0.01
#: seconds between two looks at a host's zygote that runs wait for
ZYGOTE_PERIOD = 0.05


class SshBackend(NodeRuns, PreloadedRuns, Backend):
    """Runs on ``hosts`` (each with the first probe's ``states``) through ``ssh``; ``limits``:
    the GPU admission's settings; ``resources``: what a run not yet submitted is taken to
    need; ``python``: the search's interpreter (a host's ``python`` replaces it in its runs'
    argv); ``grace``: seconds a host may not answer before its runs are given up;
    ``status_file``: where the hosts' state is written for ``hpsearch status``;
    ``preload``: which runs fork from a zygote on their host (None: none do)."""

    name = "ssh"
    durable_intents = True

    def __init__(self, ssh: Ssh, hosts: Sequence[Host], states: Mapping[str, HostState],
                 limits: GpuLimits, *, resources: Resources | None = None,
                 python: str = "", timeout: float | None = None, grace: float = 60.0,
                 gpus: bool = True, num_jobs: int | None = None,
                 status_file: Path | None = None, say: Callable[[str], None] = print,
                 preload: PreloadOptions | None = None) -> None:
        self.ssh = ssh
        self.resources = resources or Resources()
        self.python, self.timeout, self.grace = python, timeout, grace
        self.status_file, self.say = status_file, say
        self.num_jobs = num_jobs
        self._active: dict[str, Active] = {}
        self._followers: dict[str, list[Active]] = {}  # nodes 1.. of a run of several
        self._machines: list[Machine] = []
        self._status_dirty, self._status_written = False, 0.0
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        for host in hosts:
            state = states[host.name]
            policy = GpuAdmission(GpuLimits(**{**limits.__dict__, "visible_gpus": host.gpus}))
            policy.observe(state.gpus, time.monotonic())
            zygotes = None if preload is None or not preload.enabled else \
                ZygotePool(preload, say=say, where=OnHost(ssh, host))
            self._machines.append(Machine(host, HostSource(ssh, host, state, gpus), policy,
                                           host.slots or state.cpus, Agent(ssh, host), zygotes))
        for machine in self._machines:
            machine.sampler = Sampler(machine.source, PROBE_INTERVAL)
            self._selector.register(machine.sampler.read_fd, selectors.EVENT_READ)
            machine.sampler.start()
        self._write_status()

    # -- what the hosts hold --------------------------------------------------------
    def describe(self) -> list[str]:
        """``gpu1 (GPUs 0,1; 8 slots)`` for each host."""
        return [f"{m.name} (GPUs {','.join(map(str, m.policy.candidates())) or 'none'}; "
                f"{m.slots} slot{'s' if m.slots != 1 else ''})" for m in self._machines]

    def refusal(self, resources: Resources) -> str | None:
        if resources.nodes > 1 and resources.launcher != "torchrun":
            return (f"runs of {resources.nodes} nodes cannot run on SSH hosts without "
                    "launcher: torchrun (which starts one node on each of them)")
        if resources.nodes > 1:
            holding = sum(self._holds(m, resources) for m in self._machines)
            if holding < resources.nodes:
                return (f"{resources.nodes} nodes per run, but {holding} of the SSH hosts "
                        f"can each hold a node of {resources.gpus} GPU(s) and "
                        f"{resources.cpus} CPU(s)")
            return None
        if not any(self._holds(m, resources) for m in self._machines):
            most_gpus = max(len(m.policy.candidates()) for m in self._machines)
            most_slots = max(m.slots for m in self._machines)
            return (f"{resources.gpus} GPU(s) and {resources.cpus} CPU(s) per run, but the "
                    f"largest host has {most_gpus} GPU(s) and {most_slots} slot(s)")
        return None

    @staticmethod
    def _holds(machine: Machine, resources: Resources) -> bool:
        return (resources.gpus <= len(machine.policy.candidates())
                and resources.cpus <= machine.slots)

    def _free_slots(self, machine: Machine) -> int:
        return machine.slots - sum(a.run.resources.cpus for a in self._everyone()
                                   if a.machine is machine)

    def _everyone(self) -> list[Active]:
        """Every node of every active run."""
        return [n for a in self._active.values() for n in self._nodes_of(a)]

    def _nodes_of(self, active: Active) -> list[Active]:
        """The run's nodes: ``active`` and, for a run of several, the others."""
        return [active, *self._followers.get(active.run.run_id, ())]

    def _usable(self) -> list[Machine]:
        """Hosts answering, most free slots first."""
        return sorted((m for m in self._machines if m.answering),
                      key=lambda m: -self._free_slots(m))

    def room(self) -> int:
        """How many runs of the search's shape the answering hosts take now."""
        self._refresh()
        now = time.monotonic()
        room = sum(self._trial_room(m, now) for m in self._usable()) // self.resources.nodes
        return min(self._cap_left(), room)

    def _cap_left(self) -> int:
        """Runs ``num_jobs`` lets start now."""
        return (1 << 30) if self.num_jobs is None else max(0, self.num_jobs - len(self._active))

    def _trial_room(self, machine: Machine, now: float) -> int:
        if self._held(machine):
            return 0
        cpus = max(1, self.resources.cpus)
        cap = max(0, self._free_slots(machine)) // cpus
        if self.resources.gpus == 0 or cap == 0:
            return cap
        trial = copy.deepcopy(machine.policy)
        room = 0
        while room < cap:
            gpus = trial.choose_many(now, need=self.resources.gpu_memory_mib,
                                     count=self.resources.gpus)
            if gpus is None:
                break
            for gpu in gpus:
                trial.launched(gpu, f"trial-{room}", None, now, self.resources.gpu_memory_mib)
            room += 1
        return room

    # -- starting -------------------------------------------------------------------
    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        """Place each run on the first answering host (most free slots first) whose slots
        and GPUs take it now, then start each host's runs with one ssh command, all hosts at
        once; a run not placed or whose host failed is left out of the answer."""
        self._refresh()
        now = time.monotonic()
        planned: dict[int, list[tuple[Run, list[int]]]] = {}
        taken: dict[int, int] = {}
        spread: list[tuple[Run, list[tuple[int, list[int]]]]] = []
        for run in runs:
            if sum(map(len, planned.values())) + len(spread) >= self._cap_left():
                continue
            if run.resources.nodes > 1:
                nodes = self._place_nodes(run, now, taken)
                if nodes is not None:
                    spread.append((run, nodes))
                continue
            for machine in self._usable():
                index = self._machines.index(machine)
                if self._free_slots(machine) - taken.get(index, 0) < run.resources.cpus:
                    continue
                gpus: list[int] | None = []
                need = run.resources.gpu_memory_mib
                if run.resources.gpus:
                    gpus = machine.policy.choose_many(now, run.run_id, need, run.resources.gpus)
                if gpus is None:
                    continue
                for gpu in gpus:
                    machine.policy.launched(gpu, run.run_id, None, now, need)
                planned.setdefault(index, []).append((run, gpus))
                taken[index] = taken.get(index, 0) + run.resources.cpus
                break
        started = self._start_planned(planned, now)
        for run, nodes in spread:
            started.update(self._start_nodes(run, nodes, now))
        return started

    def _env(self, run: Run, gpus: list[int]) -> dict[str, str]:
        env = {**run.env, "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}
        if gpus:
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        if run.resources.cpus > 1:
            env["HPSEARCH_CPUS"] = str(run.resources.cpus)
        return env

    def _python(self, run: Run, host: Host) -> str:
        """The interpreter of ``run`` on ``host``: the host's ``python`` where the run's
        command starts with the search's."""
        return self._python_of(run.argv[0], host)

    def _python_of(self, program: str, host: Host) -> str:
        return host.python if host.python and program == self.python else program

    def _argv(self, run: Run, host: Host, endpoint: str | None = None) -> list[str]:
        """The argv of ``run`` on ``host``, as its launcher starts it (``endpoint``: the
        rendezvous of a run of several nodes)."""
        argv = (self._python(run, host), *run.argv[1:]) if run.argv else run.argv
        return launch_of(dataclasses.replace(run, argv=argv)).argv(endpoint)

    def _start_planned(self, planned: Mapping[int, list[tuple[Run, list[int]]]],
                       now: float) -> dict[str, str]:
        """Start each host's planned runs: those that can be preloaded as forks of the host's
        zygote (:class:`PreloadedRuns`), the others through its agent
        (:mod:`~hpsearch.backends.ssh.agent`; a run it cannot take: one ssh command for the
        host), all hosts at once, then read their pids; a host that failed is said and its
        runs are left out."""
        sent: dict[int, Agent | subprocess.Popen[str]] = {}
        failed: dict[int, str] = {}
        forks: list[Fork] = []
        planned = {index: self._ask_forks(self._machines[index], placed, forks)
                   for index, placed in planned.items()}
        for index, placed in planned.items():
            machine = self._machines[index]
            starts = [Start(str(run.run_dir), run.launch, machine.name, str(run.cwd),
                            self._argv(run, machine.host), self._env(run, gpus))
                      for run, gpus in placed]
            if not starts:
                continue
            try:
                machine.agent.send(starts)
                sent[index] = machine.agent
            except NotOneLine:
                sent[index] = self.ssh.start(machine.host, start_argv(starts))
            except Unreachable as exc:
                failed[index] = str(exc)
        started = self._forked(forks, now)
        for index, placed in planned.items():
            machine = self._machines[index]
            if not placed:
                continue
            try:
                if index in failed:
                    raise Unreachable(failed[index])
                way = sent[index]
                pids = (way.receive(len(placed)) if isinstance(way, Agent)
                        else parse_pids(self.ssh.finish(way).stdout, len(placed)))
            except (Unreachable, ValueError) as exc:
                for run, _gpus in placed:
                    machine.policy.ended(run.run_id)
                self.say(f"host {machine.name}: could not start runs ({exc})")
                continue
            for (run, gpus), pid in zip(placed, pids, strict=True):
                for gpu in gpus:
                    machine.policy.launched(gpu, run.run_id, pid, now,
                                            run.resources.gpu_memory_mib)
                self._active[run.run_id] = Active(
                    run, machine, pid, now, gpus, self._deadline(now),
                    self._env(run, gpus))
                started[run.run_id] = f"{machine.name}:{pid}"
        self._status_dirty = self._status_dirty or bool(started)
        return started

    def _deadline(self, now: float) -> float | None:
        return None if self.timeout is None else now + self.timeout

    def launch_env(self, run_id: str) -> Mapping[str, str]:
        active = self._active.get(run_id)
        return active.env if active is not None else {}

    # -- watching -------------------------------------------------------------------
    def _refresh(self) -> None:
        """Feed each host's policy its latest sample; give up the runs of a host that has
        not answered for the grace period; take back a host that answers again."""
        now = time.monotonic()
        for machine in self._machines:
            assert machine.sampler is not None
            taken = machine.sampler.take()
            if taken is not None and not isinstance(taken[1], GpuUnavailable):
                began, samples = taken
                wrappers = {a.pid for a in self._everyone() if a.machine is machine}
                sessions = machine.source.latest[1].sessions
                machine.policy.observe(by_session(samples, wrappers, sessions.get), began)
                if machine.down:
                    self._take_back(machine)
            failing = machine.source.failing_since
            if failing is not None and not machine.down and now - failing >= self.grace:
                machine.down = True
                self.say(f"host {machine.name} has not answered for {self.grace:g} s "
                         f"({machine.source.error}); its runs run again elsewhere")
                self._write_status()

    def _take_back(self, machine: Machine) -> None:
        """A host that answers again: kill what is left there of the runs given up."""
        if machine.orphans:
            try:
                self.ssh.run(machine.host, signal_argv("KILL", sorted(machine.orphans)))
            except Unreachable:
                return
            machine.orphans.clear()
        machine.down = False
        self.say(f"host {machine.name} answers again; it takes runs again")
        self._write_status()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._wake_write, b"w")

    def wait(self, timeout: float) -> None:
        """Until a host's sample comes, :meth:`wake`, or ``timeout``; while runs go, at most
        :data:`EXIT_FILE_PERIOD` (their ends are read from their exit files)."""
        if self._active:
            timeout = min(timeout, EXIT_FILE_PERIOD)
        if any(self._held(m) for m in self._machines):
            timeout = min(timeout, ZYGOTE_PERIOD)
        for key, _events in self._selector.select(timeout):
            if key.fd == self._wake_read:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_read, 512):
                        pass

    def poll(self) -> list[Ended]:
        self._refresh()
        now = time.monotonic()
        ended: list[Ended] = []
        kills: dict[int, list[int]] = {}
        for active in list(self._active.values()):
            if active.kill_at is None and active.deadline is not None and now >= active.deadline:
                active.reason = f"timeout after {self.timeout:g}s"
                self._signal([active], "TERM")
                active.kill_at = now + KILL_GRACE
            elif active.kill_at is not None and now >= active.kill_at:
                for node in self._nodes_of(active):
                    kills.setdefault(self._machines.index(node.machine), []).append(node.pid)
                active.kill_at = now + KILL_GRACE
            end = self._end_of_nodes(active) if active.run.run_id in self._followers \
                else self._end_of(active)
            if end is not None:
                ended.append(end)
                self._forget(active)
        for index, pids in kills.items():
            self._send(self._machines[index], "KILL", pids)
        self._status_dirty = self._status_dirty or bool(ended)
        if self._status_dirty and now >= self._status_written + STATUS_PERIOD:
            self._write_status()
        return ended

    def _end_of(self, active: Active) -> Ended | None:
        """How the run ended, or None while it goes on (as far as we know)."""
        run, machine = active.run, active.machine
        record = read_exit(run.run_dir, run.launch)
        if record is not None and active.reason is None:
            return Ended.recorded(run.run_id, record, self._extra(active))
        if record is not None:
            return Ended(run.run_id, None, active.reason, extra=self._extra(active),
                         wall_time=record.wall_time)
        if machine.down:
            machine.orphans.add(active.pid)
            return Ended(run.run_id, None, f"host {machine.name} did not answer",
                         lost=True, extra=self._extra(active))
        seen_at, state = machine.source.latest
        if seen_at <= active.started or state.alive(active.pid):
            return None
        record = read_exit(run.run_dir, run.launch)  # written just before the probe?
        if record is not None:
            return Ended.recorded(run.run_id, record, self._extra(active))
        reason = active.reason or ("killed" if active.kill_at is not None
                                   else f"its wrapper on {machine.name} ended without an "
                                   "exit code")
        return Ended(run.run_id, None, reason, extra=self._extra(active))

    @staticmethod
    def _extra(active: Active) -> dict[str, object]:
        extra: dict[str, object] = {"gpu": gpu_column(active.gpus)} if active.gpus else {}
        return {**extra, "preloaded": 1} if active.preloaded else extra

    def _forget(self, active: Active) -> None:
        for node in self._nodes_of(active):
            node.machine.policy.ended(active.run.run_id)
        del self._active[active.run.run_id]
        self._followers.pop(active.run.run_id, None)

    # -- stopping -------------------------------------------------------------------
    def _send(self, machine: Machine, signal_name: str, pids: Sequence[int]) -> None:
        """One ssh command: ``signal_name`` to these runs' process groups on ``machine``
        (a host that does not answer is left to the grace period)."""
        if pids and not machine.down:
            with contextlib.suppress(Unreachable):
                self.ssh.run(machine.host, signal_argv(signal_name, pids))

    def _signal(self, actives: Sequence[Active], signal_name: str) -> None:
        """``signal_name`` to every node of these runs, one ssh command per host."""
        by_machine: dict[int, list[int]] = {}
        for active in (n for a in actives for n in self._nodes_of(a)):
            by_machine.setdefault(self._machines.index(active.machine), []).append(active.pid)
        for index, pids in by_machine.items():
            self._send(self._machines[index], signal_name, pids)

    def stop(self, run_ids: Sequence[str], grace: float) -> None:
        targets = [a for r in run_ids if (a := self._active.get(r)) is not None
                   and a.kill_at is None]
        self._signal(targets, "TERM")
        now = time.monotonic()
        for active in targets:
            active.kill_at = now + grace

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        """SIGTERM the runs' process groups, SIGKILL those without an exit code after
        :data:`KILL_GRACE`; forget them."""
        targets = [a for a in self._active.values() if run_ids is None or a.run.run_id in run_ids]
        self._signal(targets, "TERM")
        give_up = time.monotonic() + KILL_GRACE
        left = [n for a in targets for n in self._nodes_of(a)]
        while left and time.monotonic() < give_up:
            time.sleep(0.05)
            left = [a for a in left if read_exit(a.files, a.run.launch) is None]
        by_machine: dict[int, list[int]] = {}
        for node in left:
            by_machine.setdefault(self._machines.index(node.machine), []).append(node.pid)
        for index, pids in by_machine.items():
            self._send(self._machines[index], "KILL", pids)
        for active in targets:
            self._forget(active)
        self._write_status()

    # -- restart --------------------------------------------------------------------
    def resolve(self, key: str, runs: Sequence[Run]) -> dict[str, str]:
        """Which runs of an unanswered launch started: those whose ``started_at`` names it
        (the wrapper writes it as it starts, long before a new driver asks); a run of
        several nodes with the job of each node that started."""
        found = {}
        for run in runs:
            starts = [read_start(node_dir(run.run_dir, node))
                      for node in range(run.resources.nodes)]
            jobs = [s.job for s in starts if s is not None and s.launch == key]
            if starts[0] is not None and starts[0].launch == key:
                found[run.run_id] = NODE_JOBS.join(jobs)
        return found

    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        """Adopt runs of a killed driver: a run with an exit code is over; one on a host
        of this search is watched again (the probes tell if it still runs); one on a host
        no longer listed is lost."""
        ended = []
        now = time.monotonic()
        by_name = {m.name: m for m in self._machines}
        for run_id, (run, job_id) in jobs.items():
            record = read_exit(run.run_dir, run.launch)
            name, _, pid = job_id.split(NODE_JOBS)[0].rpartition(":")
            machine = by_name.get(name)
            if record is not None:
                ended.append(Ended.recorded(run_id, record))
            elif machine is None or not pid.isdigit():
                ended.append(Ended(run_id, None, f"its host {name} is not one of --hosts",
                                   lost=True))
            else:
                self._active[run_id] = self._adopt(run, machine, int(pid),
                                                   read_start(run.run_dir), now)
                followers = self._reattach_nodes(run, by_name, now)
                if followers:
                    self._followers[run_id] = followers
        self._write_status()
        return ended

    def _adopt(self, run: Run, machine: Machine, pid: int, start: StartRecord | None,
               now: float, node: int = 0) -> Active:
        """Node ``node`` of a killed driver's run, watched again: the GPUs its ``started_at``
        lists taken on its host's policy."""
        listed = start.cuda_visible_devices.split(",") if start is not None else []
        gpus = [int(v) for v in listed if v.isdigit()]
        for gpu in gpus:
            machine.policy.launched(gpu, run.run_id, pid, now, run.resources.gpu_memory_mib)
        return Active(run, machine, pid, now, gpus, self._deadline(now), node=node)

    # -- status ---------------------------------------------------------------------
    def _write_status(self) -> None:
        """:data:`~hpsearch.backends.ssh.options.STATUS_FILE`: each host's state and the runs
        it holds (``hpsearch status`` shows them); written whole, then renamed."""
        self._status_dirty, self._status_written = False, time.monotonic()
        if self.status_file is None or not self.status_file.parent.is_dir():
            return
        hosts = {m.name: {"state": "not answering" if m.down else "up",
                          "error": m.source.error if m.down else "",
                          "runs": sorted({a.run.run_id for a in self._everyone()
                                          if a.machine is m})}
                 for m in self._machines}
        temporary = self.status_file.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps({"hosts": hosts}) + "\n")
            temporary.replace(self.status_file)
        except OSError:
            pass

    def close(self) -> None:
        for machine in self._machines:
            machine.agent.close()
            if machine.zygotes is not None:
                machine.zygotes.close()
            if machine.sampler is not None:
                self._selector.unregister(machine.sampler.read_fd)
                machine.sampler.stop()
        self._selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)
