"""Preloaded runs, the driver's side: which runs fork from a zygote, and a backend's zygotes.

A run whose command is a function objective (``<python> -m hpsearch.objective_runner
train.py:fn ...``) -- or, with ``--preload``, a Python script (``<python> train.py ...``) -- is
started as a fork of a zygote (:mod:`hpsearch.runs.zygote`) that imported its code once,
instead of a fresh interpreter that imports it again: the same run directory files, process
group, environment, timeout and stop as a run of the shell wrapper, without the import's
seconds. ``--no_preload`` starts every run as a process of its own.

A backend keeps one zygote per interpreter, working directory and target (:class:`ZygotePool`),
shared by its slots: a fork takes milliseconds, and one import serves every slot. Its zygotes
run on this machine (:class:`Here`), or, for the SSH hosts' backend, one pool per host, on
that host (:class:`Where`: the zygote's argv wrapped in ssh). A zygote is replaced

* when the target file changed (its size, mtime or inode): it is retired at once, and runs
  start as processes of their own until the new one has imported it;
* after :data:`MAX_RUNS` runs, or once it grew by :data:`MAX_GROWTH_MIB` MiB since it was
  ready: a new one imports in the background while the old one still forks;
* when it died: a new one is started, unless :data:`MAX_DEATHS` died in a row (then one line
  says so and the search's runs are processes of their own).

While a backend's first zygote imports and no run is going, the backend's room is 0: its
runs wait for the import (the driver's loop does not). A zygote whose import failed, or
initialised CUDA or JAX's runtime (a fork could not use it),
says so in one line; the search's runs are then processes of their own, so an import error
is reported by each run as before. A retired zygote takes no more runs and exits once its runs
ended; every zygote dies with its driver (``PR_SET_PDEATHSIG``), while its runs, like any
run, outlive a killed driver and are adopted by the next one (:func:`forked_run_dir`).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from hpsearch.options_decl import option
from hpsearch.runs import zygote as zygote_process
from hpsearch.runs.files import read_run_record, write_atomic
from hpsearch.runs.model import Run
from hpsearch.spec.invocation import RUNNER_MODULE
from hpsearch.spec.reserved import RUN_FILE

#: the zygote's module, as its command line names it
ZYGOTE_MODULE = zygote_process.__name__
#: runs a zygote forks before a fresh one replaces it
MAX_RUNS = 1000
#: MiB a zygote may grow by (resident memory since it was ready) before it is replaced
MAX_GROWTH_MIB = 256
#: zygotes of one target that may die in a row before its runs stop being preloaded
MAX_DEATHS = 3
#: seconds a backend with no run going holds its runs back while a new zygote imports; past
#: that, and whenever runs are going, a run that finds its zygote importing starts on its own
FIRST_WAIT = 600.0
#: seconds runs wait for a zygote that learns its runs' imports; past that they start on their own
LEARN_WAIT = 120.0
#: seconds a fork request may take to be answered before the zygote counts as dead
FORK_ANSWER = 30.0


def _refuse_both(values: dict[str, Any]) -> None:
    if values["preload"] and values["no_preload"]:
        raise ValueError("--preload and --no_preload contradict each other; give one of them")


@dataclass(frozen=True, kw_only=True)
class PreloadOptions:
    """Whether runs are forked from a process that imported their code once."""

    TITLE: ClassVar[str] = "Preloaded runs"
    preload: bool = option(
        False, "Also fork the runs of a Python script (not only of a function objective) from "
        "a process that imported the script's top-level imports once; each run executes the "
        "script as __main__ (runpy) in its own forked process.")
    no_preload: bool = option(
        False, "Start every run as a fresh Python process (by default a function objective's "
        "runs are forked from a process that imported its file once).")

    check_together = staticmethod(_refuse_both)

    @property
    def scripts(self) -> bool:
        return self.preload

    @property
    def enabled(self) -> bool:
        return not self.no_preload


def preload_target(argv: Sequence[str], scripts: bool) -> tuple[str, str] | None:
    """``("function", "train.py:fn")`` for a function objective's argv, ``("script",
    "train.py")`` for a script's (when ``scripts``); None for a command that cannot be
    preloaded (interpreter flags, ``-m module``, not Python)."""
    if len(argv) >= 4 and argv[1] == "-m" and argv[2] == RUNNER_MODULE:
        return "function", argv[3]
    if scripts and len(argv) >= 2 and argv[1].endswith(".py") and not argv[1].startswith("-"):
        return "script", argv[1]
    return None


def forked_run_dir(pid: int, cmdline: bytes) -> str | None:
    """The run directory of a forked wrapper (its ``/proc/<pid>/cwd``), given its
    ``/proc/<pid>/cmdline`` (its zygote's: ``<python>\\0-m\\0hpsearch.runs.zygote\\0...``) and
    that ``/proc/<pid>/comm`` reads ``hpsearch-run``; None for any other process."""
    parts = cmdline.split(b"\0")
    if len(parts) < 3 or parts[1:3] != [b"-m", ZYGOTE_MODULE.encode()]:
        return None
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            if f.read().strip() != zygote_process.WRAPPER_NAME.encode():
                return None
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def note_preloaded(run: Run) -> None:
    """``"preloaded": true`` in the run's ``run.json`` (the record of its current launch)."""
    record = read_run_record(run.run_dir)
    if record is not None and record.get("launch") == run.launch:
        with contextlib.suppress(OSError):
            write_atomic(run.run_dir / RUN_FILE, json.dumps({**record, "preloaded": True}) + "\n")


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class Where(Protocol):
    """Where a pool's zygotes run: :class:`Here`, or an SSH host
    (:class:`~hpsearch.backends.ssh.zygotes.OnHost`)."""

    #: where, for messages: ``""`` here, `` on gpu2`` on a host
    place: str
    #: whether the zygote is an SSH host's: a request's env is what the run gets on top of
    #: the zygote's own environment (the host's), not the whole of it
    remote: bool

    def start(self, python: str, cwd: str, kind: str, target: str) -> subprocess.Popen[bytes]:
        """Start the zygote of ``target`` (``<python> -m hpsearch.runs.zygote ...`` in
        ``cwd``), its stdin, stdout and stderr pipes."""
        ...


class Here:
    """Zygotes on this machine, children of the driver that die with it."""

    place = ""
    remote = False

    def start(self, python: str, cwd: str, kind: str, target: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [python, "-m", ZYGOTE_MODULE, str(os.getpid()), kind, target], cwd=cwd,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)


def _word(line: bytes) -> dict[str, Any] | None:
    """A line of a zygote's output as its JSON object; None for a line that is none (what a
    host's login files print before the zygote starts)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


class Zygote:
    """One zygote process, seen from the driver: its state and its answers."""

    def __init__(self, python: str, cwd: str, kind: str, target: str,
                 where: Where | None = None) -> None:
        self.kind, self.target = kind, target
        self.file = os.path.join(cwd, target.rpartition(":")[0] if kind == "function" else target)
        self.stamp = _stamp(self.file)
        self.popen = (where or Here()).start(python, cwd, kind, target)
        assert self.popen.stdout is not None and self.popen.stdin is not None
        assert self.popen.stderr is not None
        self.out = self.popen.stdout.fileno()
        os.set_blocking(self.out, False)
        os.set_blocking(self.popen.stderr.fileno(), False)
        self.state = "starting"  # -> ready | fallback | dead; retired: stdin closed
        self.started = time.monotonic()
        self.learning_since: float | None = None
        self.retired = False
        self.reason = ""
        self.runs = 0
        self.rss_ready = 0.0  # MiB resident once ready (and once it learned imports) ...
        self.rss = 0.0  # ... and at its latest word
        self._pending = b""
        self._pids: list[int] = []
        self.ended: dict[int, int] = {}

    def read(self, timeout: float = 0.0) -> None:
        """Take in what the zygote said (waiting up to ``timeout`` for a first word)."""
        if self.state == "dead":
            return
        if timeout > 0:
            select.select([self.out], [], [], timeout)
        while True:
            try:
                data = os.read(self.out, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.popen.wait()
                if self.state != "fallback":
                    self.state = "dead"
                return
            self._pending += data
            *lines, self._pending = self._pending.split(b"\n")
            for line in lines:
                message = _word(line)
                if message is not None:
                    self._take(message)

    def _take(self, message: dict[str, Any]) -> None:
        self.rss = float(message.get("rss_mib", self.rss))
        if "ready" in message:
            self.state, self.rss_ready = "ready", self.rss
        elif "fallback" in message:
            self.state, self.reason = "fallback", str(message["fallback"])
            self.learning_since = None
        elif "learning" in message:
            self.learning_since = time.monotonic()
        elif "pid" in message:
            self._pids.append(int(message["pid"]))
        elif "learned" in message:  # imports its runs made: growth that is no leak
            self.rss_ready = self.rss
            self.learning_since = None
        elif "ended" in message:
            self.ended[int(message["ended"])] = int(message["status"])

    def importing(self) -> bool:
        """Still importing, for less than :data:`FIRST_WAIT` seconds."""
        self.read()
        return self.state == "starting" and time.monotonic() - self.started < FIRST_WAIT

    def learning(self) -> bool:
        """Importing what its runs imported, for less than :data:`LEARN_WAIT` seconds."""
        self.read()
        since = self.learning_since
        return since is not None and self.state == "ready" and \
            time.monotonic() - since < LEARN_WAIT

    def fork(self, request: dict[str, Any]) -> int | None:
        """The pid of the wrapper forked for ``request``; None when the zygote is gone."""
        return self.answer() if self.ask(request) else None

    def ask(self, request: dict[str, Any]) -> bool:
        """Ask for a fork for ``request`` (its pid: :meth:`answer`); False when the zygote
        is gone. Several asked at once are answered in order."""
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write((json.dumps(request) + "\n").encode())
            self.popen.stdin.flush()
        except OSError:
            self.kill()
            return False
        return True

    def answer(self) -> int | None:
        """The pid of the wrapper forked for the oldest request not yet answered; None when
        the zygote died or gave no answer within :data:`FORK_ANSWER` seconds (it is killed)."""
        give_up = time.monotonic() + FORK_ANSWER
        while not self._pids and self.state == "ready" and time.monotonic() < give_up:
            self.read(0.5)
        if not self._pids:
            self.kill()
            return None
        self.runs += 1
        return self._pids.pop(0)

    def last_words(self) -> str:
        """The last line the zygote's process wrote to stderr before it ended (what Python
        says when it cannot start it: ``No module named hpsearch``), or ``""``."""
        assert self.popen.stderr is not None
        with contextlib.suppress(OSError, TypeError, ValueError):
            said = (self.popen.stderr.read() or b"").decode(errors="replace").splitlines()
            return next((line.strip() for line in reversed(said) if line.strip()), "")
        return ""

    def status_of(self, pid: int) -> int | None:
        """The exit status of the wrapper ``pid`` once it ended (-N: killed by signal N)."""
        self.read()
        if pid in self.ended:
            return self.ended.pop(pid)
        if self.state == "dead" and not os.path.exists(f"/proc/{pid}"):
            return 0  # its zygote died first: how it ended is unknown (its exit_code says)
        return None

    def changed(self) -> bool:
        return _stamp(self.file) != self.stamp

    def worn(self, max_runs: int, max_growth_mib: float) -> bool:
        return self.runs >= max_runs or self.rss - self.rss_ready > max_growth_mib

    def retire(self) -> None:
        """Take no more runs; the zygote exits once its runs ended."""
        if not self.retired and self.popen.stdin is not None:
            self.retired = True
            with contextlib.suppress(OSError):
                self.popen.stdin.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self.read()
        self.state = "dead" if self.state != "fallback" else self.state


class Held:
    """What :meth:`ZygotePool.spawn` answers for a run to hold back while its zygote imports."""


#: the one :class:`Held`
HELD = Held()


class Forked:
    """A forked run's wrapper as the backend watches it: what ``subprocess.Popen`` offers."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.status_of(self.pid)
        return self.returncode

    def wait(self) -> int:
        while self.poll() is None:
            self.zygote.read(0.05)
        assert self.returncode is not None
        return self.returncode


def _say(text: str) -> None:
    print(f"hpsearch: {text}", file=sys.stderr, flush=True)


class ZygotePool:
    """The zygotes of one backend, by interpreter, working directory and target (see the
    module docstring); :meth:`spawn` forks a run from the right one, or says to start it as
    a process of its own."""

    def __init__(self, options: PreloadOptions, say: Callable[[str], None] = _say,
                 max_runs: int = MAX_RUNS, max_growth_mib: float = MAX_GROWTH_MIB,
                 where: Where | None = None) -> None:
        self.scripts = options.scripts
        self.say = say
        self.where = where or Here()
        self.max_runs = max_runs
        self.max_growth_mib = max_growth_mib
        self.current: dict[tuple[str, ...], Zygote] = {}
        self.successor: dict[tuple[str, ...], Zygote] = {}
        self.retired: list[Zygote] = []
        self.deaths: dict[tuple[str, ...], int] = {}
        self.given_up: set[tuple[str, ...]] = set()

    def spawn(self, run: Run, env: Mapping[str, str], host: str, job: str,
              hold: bool) -> Forked | Held | None:
        """``run`` forked from its zygote (``env``: what its environment has on top of this
        process's); None: start it as a process of its own; :data:`HELD`: not now, its
        zygote learns its runs' imports, or its new zygote imports (only with ``hold``: no
        run is going, so waiting delays nothing); the backend's room is 0 while
        :meth:`busy`."""
        zygote = self.zygote_for(run, hold)
        if not isinstance(zygote, Zygote):
            return zygote
        pid = zygote.fork(self.request(run, env, host, job))
        return None if pid is None else Forked(zygote, pid)

    def zygote_for(self, run: Run, hold: bool) -> Zygote | Held | None:
        """The ready zygote to fork ``run`` from; None or :data:`HELD` as :meth:`spawn`
        answers them."""
        target = preload_target(run.argv, self.scripts)
        if target is None:
            return None
        key = (run.argv[0], str(run.cwd), *target)
        if key in self.given_up:
            return None
        zygote = self._zygote(key)
        if zygote is None:
            return None
        if zygote.state == "starting":
            return HELD if hold and zygote.importing() else None
        return HELD if zygote.learning() else zygote

    def request(self, run: Run, env: Mapping[str, str], host: str, job: str
                ) -> dict[str, Any]:
        """The zygote's request for ``run`` (see :mod:`hpsearch.runs.zygote`): ``env`` on
        top of this process's environment (a host's zygote: on top of its own)."""
        return {"run_dir": str(run.run_dir), "launch": run.launch, "job": job, "host": host,
                "cwd": str(run.cwd), "argv": list(run.argv),
                "env": dict(env) if self.where.remote else {**os.environ, **env}}

    def prepare(self, argv: Sequence[str], cwd: Path) -> None:
        """Start the zygote that runs of ``argv`` (their words left out) in ``cwd`` will
        fork from (see :meth:`spawn`), if they can be preloaded."""
        target = preload_target(argv, self.scripts)
        if target is not None:
            self._zygote((argv[0], str(cwd), *target))

    def busy(self, running: bool) -> bool:
        """Whether runs wait (see :meth:`spawn`): a zygote learns, or (nothing ``running``) a
        zygote imports."""
        return any(zygote.learning() or (not running and zygote.importing())
                   for zygote in self.current.values())

    def _zygote(self, key: tuple[str, ...]) -> Zygote | None:
        """The zygote for ``key``, ready or importing (started, replaced as the rules say),
        or None."""
        self._tend(key)
        zygote = self.current.get(key)
        if zygote is None and key not in self.given_up:
            zygote = self.current[key] = Zygote(*key, where=self.where)
        return zygote if zygote is not None and zygote.state in ("ready", "starting") else None

    def _tend(self, key: tuple[str, ...]) -> None:
        """Apply the replacement rules to ``key``'s zygotes."""
        for zygote in (self.current.get(key), self.successor.get(key)):
            if zygote is not None:
                zygote.read()
        zygote = self.current.get(key)
        successor = self.successor.get(key)
        if successor is not None and successor.state != "starting":
            del self.successor[key]
            if successor.state == "ready" and zygote is not None and not zygote.changed():
                self._retire(zygote)
                self.current[key] = zygote = successor
            else:
                self._retire(successor)
        if zygote is None:
            return
        target = f"{zygote.target}{self.where.place}"
        if zygote.state == "fallback":
            self.say(f"not preloading {target}: {zygote.reason}; each run starts a fresh "
                     "process")
            self._drop(key, give_up=True)
        elif zygote.state == "dead":
            self.deaths[key] = self.deaths.get(key, 0) + 1
            if self.deaths[key] >= MAX_DEATHS:
                words = zygote.last_words()
                self.say(f"not preloading {target}: its preloaded process ended "
                         f"{MAX_DEATHS} times in a row (exit status "
                         f"{zygote.popen.returncode}{': ' + words if words else ''}); each "
                         "run starts a fresh process")
            self._drop(key, give_up=self.deaths[key] >= MAX_DEATHS)
        elif zygote.changed():
            self._drop(key)
        elif zygote.state == "ready":
            self.deaths.pop(key, None)
            if key not in self.successor and zygote.worn(self.max_runs, self.max_growth_mib):
                self.successor[key] = Zygote(*key, where=self.where)

    def _drop(self, key: tuple[str, ...], give_up: bool = False) -> None:
        self._retire(self.current.pop(key))
        successor = self.successor.pop(key, None)
        if successor is not None:
            self._retire(successor)
        if give_up:
            self.given_up.add(key)

    def _retire(self, zygote: Zygote) -> None:
        zygote.retire()
        self.retired.append(zygote)
        self.retired = [z for z in self.retired if z.popen.poll() is None]

    def close(self) -> None:
        """End every zygote (their runs go on, as runs outlive their driver)."""
        for zygote in [*self.current.values(), *self.successor.values(), *self.retired]:
            zygote.kill()
        self.current.clear()
        self.successor.clear()
        self.retired.clear()
