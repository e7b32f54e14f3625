"""What the driver runs on a host: the probe, the start of runs, signals to their groups.

Each is an argv (:func:`~hpsearch.backends.ssh.connection.remote_command` quotes every word);
the shell code in it is constant, values reach it as positional parameters.

**The probe** (:func:`probe_argv`; one ssh command per host per sample) prints four sections::

    @gpus
    0, GPU-8957c40c-..., NVIDIA GeForce RTX 3090, 5137, 24576, 100     (nvidia-smi --query-gpu)
    @apps
    114687, GPU-8957c40c-..., 19135                          (nvidia-smi --query-compute-apps)
    @procs
      4242   4242 Ss                                            (ps -eo pid=,sid=,stat=)
    @cpus
    16                                                          (nproc)

``@gpus`` reads ``@none`` on a host without ``nvidia-smi`` (or whose nvidia-smi fails): no
GPU. ``@procs`` (``/proc/<pid>/stat`` lines on a host without ``ps``) tells which of our runs
still has a process (a run's wrapper leads its own session, the session id is the wrapper's
pid, the job id's ``<pid>``) and whose session a GPU process belongs to; a zombie (state
``Z``: ended, not yet reaped) counts as gone.

**A start** runs each wrapper (:mod:`hpsearch.runs.wrapper`) detached, in a session of its
own (``setsid``: it survives the connection), stdio on ``/dev/null``, and prints its pid,
one line per run, in order::

    setsid env CUDA_VISIBLE_DEVICES=0 ... /bin/sh -c <RUN_FUNCTION> hpsearch-run <run_dir>
        <launch> '' <host> <cwd> <argv...> </dev/null >/dev/null 2>&1 & echo $!

(a background job of a shell without job control is no group leader, so ``setsid`` makes the
session without forking: ``$!`` is the wrapper's pid).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hpsearch.backends.gpus.probe import (
    APP_FIELDS,
    GPU_FIELDS,
    GpuSample,
    parse_csv,
    samples_from_rows,
)
from hpsearch.backends.ssh.connection import remote_command
from hpsearch.runs.wrapper import LOCAL_NAME, LOCAL_SCRIPT

_SMI = "--format=csv,noheader,nounits"
_GPU_LINES = (
    f"nvidia-smi --query-gpu={','.join(GPU_FIELDS)} {_SMI} 2>/dev/null || echo @none\n"
    "echo @apps\n"
    f"nvidia-smi --query-compute-apps={','.join(APP_FIELDS)} {_SMI} 2>/dev/null\n")
_REST = ("echo @procs\n"
         "ps -eo pid=,sid=,stat= 2>/dev/null || cat /proc/[0-9]*/stat 2>/dev/null\n"
         "echo @cpus\n"
         "nproc 2>/dev/null || echo 1\n")


def probe_argv(gpus: bool = True) -> list[str]:
    """The probe's argv; without ``gpus`` (a search on CPU slots, ``--visible_gpus=-1``)
    it does not run ``nvidia-smi`` and its ``@gpus`` section reads ``@none``."""
    script = "echo @gpus\n" + (_GPU_LINES if gpus else "echo @none\necho @apps\n") + _REST
    return ["/bin/sh", "-c", script, "hpsearch-probe"]


@dataclass(frozen=True)
class HostState:
    """One probe's answer: the host's GPUs (all of them), each process's session, its CPUs."""

    gpus: list[GpuSample]
    sessions: Mapping[int, int]
    cpus: int

    def alive(self, wrapper: int) -> bool:
        """Whether a process of the run whose wrapper had pid ``wrapper`` is left."""
        return wrapper in self._leaders

    @property
    def _leaders(self) -> frozenset[int]:
        return frozenset(self.sessions.values())


def parse_probe(text: str) -> HostState:
    """Read the probe's output (see the module docstring); ValueError when it is not one."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@") and line[1:] in ("gpus", "apps", "procs", "cpus"):
            current = sections.setdefault(line[1:], [])
        elif current is not None:
            current.append(line)
    if set(sections) != {"gpus", "apps", "procs", "cpus"}:
        raise ValueError("the probe's answer lacks a section")
    gpu_text = "\n".join(sections["gpus"])
    gpus = [] if "@none" in sections["gpus"] else samples_from_rows(
        parse_csv(gpu_text, GPU_FIELDS), parse_csv("\n".join(sections["apps"]), APP_FIELDS))
    sessions = {}
    for line in sections["procs"]:
        pid_sid = _pid_and_session(line)
        if pid_sid is not None:
            sessions[pid_sid[0]] = pid_sid[1]
    cpus = next((int(w) for w in sections["cpus"] if w.strip().isdigit()), 1)
    return HostState(gpus, sessions, max(1, cpus))


def _pid_and_session(line: str) -> tuple[int, int] | None:
    """``"4242 4242 Ss"`` (ps) or ``"4242 (python3) S 4241 4241 4242 ..."``
    (``/proc/<pid>/stat``: after the name in parentheses come state, ppid, pgrp, session) ->
    ``(4242, 4242)``; None for a zombie or a line of neither kind."""
    words = line.split()
    if len(words) == 3 and words[0].isdigit() and words[1].isdigit():
        return None if words[2].startswith("Z") else (int(words[0]), int(words[1]))
    head, paren, tail = line.rpartition(")")
    rest = tail.split()
    pid = head.split(" ", 1)[0]
    if paren and len(rest) > 3 and pid.isdigit() and rest[3].isdigit() and rest[0] != "Z":
        return int(pid), int(rest[3])
    return None


@dataclass(frozen=True)
class Start:
    """One wrapper to start: the run's files, its launch key and host name, the directory
    it runs in, its argv and the environment it gets on top of the host's."""

    run_dir: str
    launch: str
    host: str
    cwd: str
    argv: Sequence[str]
    env: Mapping[str, str]

    def wrapper_argv(self) -> list[str]:
        """``setsid [env K=V ...] /bin/sh -c <wrapper> hpsearch-run ...``."""
        env = ["env", *(f"{k}={v}" for k, v in self.env.items())] if self.env else []
        return ["setsid", *env, "/bin/sh", "-c", LOCAL_SCRIPT, LOCAL_NAME, self.run_dir,
                self.launch, "", self.host, self.cwd, *self.argv]


def start_command(starts: Sequence[Start]) -> str:
    """The remote command that starts ``starts`` detached and prints their pids in order:
    each wrapper's quoted argv, then constant shell text."""
    return "\n".join(f"{remote_command(s.wrapper_argv())} </dev/null >/dev/null 2>&1 & "
                     "echo $!" for s in starts)


def parse_pids(text: str, count: int) -> list[int]:
    """The pids a start printed; ValueError when there are not ``count`` of them."""
    pids = [int(line) for line in text.split() if line.isdigit()]
    if len(pids) != count:
        raise ValueError(f"the host printed {len(pids)} pids for {count} runs")
    return pids


def signal_argv(signal_name: str, pids: Sequence[int]) -> list[str]:
    """``kill -s TERM -- -4242 -4250``: the signal to each run's process group (a group
    that is gone is skipped silently; the exit status is not looked at)."""
    return ["/bin/sh", "-c", 'for g in "$@"; do kill -s "$0" -- "-$g" 2>/dev/null; done; :',
            signal_name, *map(str, pids)]


def stop_argv(pids: Sequence[int], grace: float) -> list[str]:
    """SIGTERM to each run's process group, then, once ``grace`` seconds passed while one of
    them is left, SIGKILL to them all (``hpsearch cancel``: one command per host)."""
    script = ('ticks=$0\n'
              'for g in "$@"; do kill -s TERM -- "-$g" 2>/dev/null; done\n'
              'while [ "$ticks" -gt 0 ]; do\n'
              '    left=\n'
              '    for g in "$@"; do kill -0 -- "-$g" 2>/dev/null && left=1; done\n'
              '    [ -n "$left" ] || exit 0\n'
              '    sleep 0.1; ticks=$((ticks - 1))\n'
              'done\n'
              'for g in "$@"; do kill -s KILL -- "-$g" 2>/dev/null; done; :\n')
    return ["/bin/sh", "-c", script, str(max(1, round(grace * 10))), *map(str, pids)]


def start_argv(starts: Sequence[Start]) -> list[str]:
    """The remote argv that starts ``starts`` on one host (see
    :mod:`~hpsearch.backends.ssh.remote`) and prints their pids."""
    return ["/bin/sh", "-c", start_command(starts), "hpsearch-start"]
