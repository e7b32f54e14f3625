"""Run the search's commands as child processes of the driver, N at a time.

Each run is the job wrapper (:mod:`hpsearch.runs.wrapper`) started in its own session, so
the run's whole process tree shares one process group whose id is the wrapper's pid; its
job id is ``<host>:<pid>``. The wrapper writes ``started_at`` and ``exit_code``, so a run
that ends while no driver watches (the driver was ``kill -9``-ed) is still recorded, and a
restarted driver adopts runs still going (a live process whose ``/proc/<pid>/cmdline`` is
our wrapper for that run directory).

A run is over when its process group is empty. Stopping a run (timeout, Ctrl-C, cancel)
sends SIGTERM to the group, waits :data:`KILL_GRACE` seconds, then sends SIGKILL, so a sim
that ignores SIGTERM does not outlive the search; once the wrapper has ended, whatever the
sim left running in its group is killed.

The driver wakes within milliseconds of a run's end: ``wait`` blocks on pidfds (a forked
run's, until its wrapper ended: then on its zygote's word of how it ended, which comes when
the zygote has reaped it -- a zygote importing what its runs imported tells it only after).

A run that can be preloaded (:mod:`hpsearch.runs.preload`: a function objective, or a script
with ``--preload``) is instead forked from a zygote that imported its code once; its forked
wrapper keeps every rule above (own session, the same files, adopted after a restart).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hpsearch.backends.accounting import Ledger, hold_of, hours, measured
from hpsearch.backends.base import Backend, Ended
from hpsearch.runs.files import ExitRecord, StartRecord, read_exit, read_start
from hpsearch.runs.launchers import launch_of
from hpsearch.runs.model import Resources, Run
from hpsearch.runs.preload import (
    HELD,
    Forked,
    PreloadOptions,
    ZygotePool,
    forked_run_dir,
    note_preloaded,
)
from hpsearch.runs.processes import group_alive as _group_alive
from hpsearch.runs.processes import signal_group as _signal_group
from hpsearch.runs.processes import stop_groups
from hpsearch.runs.wrapper import local_argv, wrapper_run_dir

#: seconds between SIGTERM and SIGKILL when a run is stopped
KILL_GRACE = 5.0
#: the reason of a run whose wrapper ended on its own without an exit file: it could not
#: write it (a killed wrapper has a signal for its status)
UNRECORDED = "its exit status could not be written to exit_code"


@dataclass
class _Active:
    run: Run
    pid: int
    pidfd: int | None
    popen: subprocess.Popen[bytes] | Forked | None  # None: adopted after a restart
    deadline: float | None
    env: Mapping[str, str] = field(default_factory=dict)
    kill_at: float | None = None
    reason: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    #: the zygote output awaited for how this forked run's wrapper ended (it has ended)
    word_fd: int | None = None


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def _wrapper_of(pid: int) -> str | None:
    """The run directory of our live wrapper (or forked wrapper) with this pid; None for any
    other pid."""
    cmdline = _cmdline(pid)
    if cmdline is None:
        return None
    return wrapper_run_dir(cmdline) or forked_run_dir(pid, cmdline)


def _wrappers_by_run_dir(run_dirs: set[str]) -> dict[str, int]:
    """Live wrapper pids on this host for the given run directories (one /proc pass)."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                run_dir = _wrapper_of(int(entry.name))
                if run_dir in run_dirs:
                    found[run_dir] = int(entry.name)
    return found


def parse_job_id(job_id: str) -> tuple[str, int] | None:
    """``"node1:4242"`` -> ``("node1", 4242)``; None for anything else."""
    host, _, pid = job_id.rpartition(":")
    return (host, int(pid)) if host and pid.isdigit() else None


def kill_local_jobs(job_ids: Iterable[str]) -> int:
    """Stop the live local jobs of this host among ``job_ids`` (from outside the driver)."""
    host = socket.gethostname()
    pids = []
    for job_id in job_ids:
        parsed = parse_job_id(job_id)
        if parsed is not None and parsed[0] == host and _wrapper_of(parsed[1]) is not None:
            pids.append(parsed[1])
    stop_groups(pids, KILL_GRACE)
    return len(pids)


class LocalBackend(Backend):
    """``slots`` runs at once on this machine; ``timeout`` seconds per run (None: no limit).
    ``job_label``: what each run's ``started_at`` names as its job (default: ``<host>:<pid>``
    of its wrapper; the packed worker gives its cluster job's id). ``preload``: whether (and
    which) runs fork from a zygote (None: none do); ``say`` tells the user why not."""

    name = "local"
    runs_outlive_driver = False  # its runs are the driver's children
    #: whether a run's CUDA_VISIBLE_DEVICES are GPUs it got (a CPU slot inherits the user's)
    measures_gpus = False

    def __init__(self, slots: int, timeout: float | None = None,
                 grace: float = KILL_GRACE, job_label: str = "",
                 preload: PreloadOptions | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.slots = slots
        self.timeout = timeout
        self.grace = grace
        self.job_label = job_label
        self.host = socket.gethostname()
        self._active: dict[str, _Active] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()  # wake(): a byte; wait() drains it
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._words: dict[int, int] = {}  # a zygote's output fd -> runs awaiting its word
        self._ledger = Ledger(share_cpus=False)
        self._zygotes = None if preload is None or not preload.enabled else \
            ZygotePool(preload, **({"say": say} if say is not None else {}))

    # -- starting -------------------------------------------------------------------
    def prepare(self, argv: Sequence[str], cwd: Path, launcher: str | None) -> None:
        """Start the zygote the runs will fork from (:meth:`ZygotePool.prepare`), so that it
        imports their code while the driver starts (the strategy's process, a restart's
        reading) rather than after the first proposal; runs through a launcher fork from
        none."""
        if self._zygotes is not None and not launcher:
            self._zygotes.prepare(argv, cwd)

    def _free_slots(self) -> int:
        """Slots no run holds: a run of ``cpus=K`` holds K."""
        return self.slots - sum(a.run.resources.cpus for a in self._active.values())

    def room(self) -> int:
        return 0 if self._held() else max(0, self._free_slots())

    def _held(self) -> bool:
        """Runs wait for a zygote (:meth:`ZygotePool.busy`): it learns what its runs imported,
        or nothing runs and it imports the runs' code."""
        return self._zygotes is not None and self._zygotes.busy(bool(self._active))

    def refusal(self, resources: Resources) -> str | None:
        if resources.nodes > 1:
            return (f"{resources.nodes} nodes per run, but a local run spans this machine "
                    "only (run it on --run_cluster --scheduler=slurm or on --hosts with "
                    "launcher: torchrun, or give it nodes: 1)")
        if resources.cpus > self.slots:
            return (f"{resources.cpus} CPUs per run, but the search has {self.slots} CPU "
                    "slot(s) (--num_jobs)")
        return None

    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        """Start each run whose CPUs the free slots hold (a run of ``cpus=K`` takes K), in
        order; a run not started (no room, or its zygote imports: :meth:`_launch`) is left
        out of the answer."""
        started = {}
        for run in runs:
            if run.resources.cpus <= self._free_slots():
                env = {**run.env, "HPSEARCH_CPUS": str(run.resources.cpus)} \
                    if run.resources.cpus > 1 else run.env
                job = self._launch(run, env)
                if job is not None:
                    started[run.run_id] = job
        return started

    def _launch(self, run: Run, env: Mapping[str, str]) -> str | None:
        """Start the run: its job id; None when it waits for its zygote's imports."""
        launcher = run.resources.launcher
        forked = None if self._zygotes is None or launcher else self._zygotes.spawn(
            run, env, self.host, self.job_label, hold=not self._active)
        if forked is HELD:
            return None
        if isinstance(forked, Forked):
            note_preloaded(run)
            self._track(_Active(run, forked.pid, self._pidfd(forked.pid), forked,
                                self._deadline(), env, extra={"preloaded": 1}))
            return f"{self.host}:{forked.pid}"
        argv = local_argv(str(run.run_dir), run.launch, self.host, str(run.cwd),
                          launch_of(run).argv(), self.job_label)
        popen = subprocess.Popen(argv, cwd=run.cwd, stdin=subprocess.DEVNULL,
                                 start_new_session=True,
                                 env={**os.environ, **env} if env else None)
        self._track(_Active(run, popen.pid, self._pidfd(popen.pid), popen, self._deadline(),
                            env))
        return f"{self.host}:{popen.pid}"

    def launch_env(self, run_id: str) -> Mapping[str, str]:
        active = self._active.get(run_id)
        return active.env if active is not None else {}

    def _deadline(self) -> float | None:
        return None if self.timeout is None else time.monotonic() + self.timeout

    def _pidfd(self, pid: int) -> int | None:
        try:
            return os.pidfd_open(pid)
        except (AttributeError, OSError):
            return None

    def _track(self, active: _Active) -> None:
        self._active[active.run.run_id] = active
        if active.pidfd is not None:
            self._selector.register(active.pidfd, selectors.EVENT_READ, active)

    def _untrack(self, active: _Active) -> None:
        del self._active[active.run.run_id]
        if active.word_fd is not None:
            self._words[active.word_fd] -= 1
            if not self._words[active.word_fd]:
                del self._words[active.word_fd]
                self._selector.unregister(active.word_fd)
        elif active.pidfd is not None:
            self._selector.unregister(active.pidfd)
        if active.pidfd is not None:
            os.close(active.pidfd)

    def _await_word(self, active: _Active, forked: Forked) -> None:
        """A forked run's wrapper ended, and how comes in its zygote's word: watch the
        zygote's output instead of the pidfd (readable from now on: a loop on it would spin
        while the zygote learns its runs' imports)."""
        assert active.pidfd is not None
        self._selector.unregister(active.pidfd)
        fd = active.word_fd = forked.zygote.out
        if fd not in self._words:
            self._words[fd] = 0
            self._selector.register(fd, selectors.EVENT_READ)
        self._words[fd] += 1

    # -- watching -------------------------------------------------------------------
    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._wake_write, b"w")

    def wait(self, timeout: float) -> None:
        if not self._active:
            self._select(min(timeout, 0.05))
            return
        now = time.monotonic()
        for active in self._active.values():
            for moment in (active.deadline, active.kill_at):
                if moment is not None:
                    timeout = min(timeout, max(0.0, moment - now))
            if active.pidfd is None or (active.popen is not None
                                        and active.popen.returncode is not None):
                timeout = min(timeout, 0.05)  # watching a group, not one pid
            elif active.word_fd is not None and isinstance(active.popen, Forked):
                if active.popen.poll() is not None:  # its word was read with another's
                    timeout = 0.0
                elif active.popen.zygote.state == "dead":  # its word will never come
                    timeout = min(timeout, 0.05)
        self._select(timeout)

    def _select(self, timeout: float) -> None:
        """Until a watched run's pidfd or the wake-up pipe is readable, or ``timeout``."""
        for key, _events in self._selector.select(timeout):
            if key.fd == self._wake_read:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_read, 512):
                        pass
            elif isinstance(key.data, _Active) and isinstance(key.data.popen, Forked):
                self._await_word(key.data, key.data.popen)

    def poll(self) -> list[Ended]:
        ended = []
        now = time.monotonic()
        for active in list(self._active.values()):
            if active.kill_at is None and active.deadline is not None and now >= active.deadline:
                active.reason = f"timeout after {self.timeout:g}s"
                self._stop(active, now)
            elif active.kill_at is not None and now >= active.kill_at:
                _signal_group(active.pid, signal.SIGKILL)
                active.kill_at = now + self.grace
            if not self._is_over(active):
                continue
            self._untrack(active)
            ended.append(self._outcome(active))
        return ended

    def _stop(self, active: _Active, now: float, grace: float | None = None) -> None:
        _signal_group(active.pid, signal.SIGTERM)
        active.kill_at = now + (self.grace if grace is None else grace)

    def stop(self, run_ids: Sequence[str], grace: float) -> None:
        now = time.monotonic()
        for run_id in run_ids:
            active = self._active.get(run_id)
            if active is not None and active.kill_at is None:
                self._stop(active, now, grace)

    def _wrapper_done(self, active: _Active) -> bool:
        if active.popen is not None:
            return active.popen.poll() is not None
        return _wrapper_of(active.pid) != str(active.run.run_dir)

    def _is_over(self, active: _Active) -> bool:
        """The wrapper ended and nothing of the run's process group is left."""
        if not self._wrapper_done(active):
            return False
        if _group_alive(active.pid):
            _signal_group(active.pid, signal.SIGKILL)  # what the sim left behind
            return not _group_alive(active.pid)
        return True

    def _outcome(self, active: _Active) -> Ended:
        run_id = active.run.run_id
        start = read_start(active.run.run_dir)  # read once: the exit's and the usage's
        record = read_exit(active.run.run_dir, active.run.launch, start)
        if active.reason is not None:  # stopped by its timeout
            return Ended(run_id, None, active.reason, extra=active.extra,
                         wall_time=record.wall_time if record is not None else None)
        if record is not None:
            return Ended.recorded(run_id, record, {**active.extra,
                                                   **self._usage(active.run, record, start)})
        if active.popen is None:  # adopted after a restart: how its wrapper ended is unknown
            return Ended(run_id, None, "ended without an exit code", lost=True,
                         extra=active.extra)
        code = active.popen.returncode
        if code is not None and code < 0:
            return Ended(run_id, None, f"killed by signal {-code}", extra=active.extra)
        return Ended(run_id, None, UNRECORDED, lost=True, unrecorded=True, extra=active.extra)

    def _usage(self, run: Run, record: ExitRecord,
               start: StartRecord | None) -> dict[str, float]:
        """The run's ``gpu_hours`` and ``cpu_hours`` (:mod:`hpsearch.backends.accounting`) from
        its exit and its ``started_at``: one CPU, and its GPU's time split with the runs that
        were on it at once."""
        if start is None or start.launch != record.launch:
            return {}
        hold = hold_of(start, record, self.measures_gpus)
        if not hold.gpus:
            return hours(*measured(hold, [], share_cpus=False))
        others = [hold_of(s, None) for a in self._active.values() if a.run.run_id != run.run_id
                  and (s := read_start(a.run.run_dir)) is not None]
        return self._ledger.charge(self.host, hold, others)

    # -- restart and stop -----------------------------------------------------------
    def resolve(self, key: str, runs: Sequence[Run]) -> dict[str, str]:
        """Which runs of an unanswered launch started: by ``started_at``, else by a live
        wrapper for their run directory (it may not have written ``started_at`` yet)."""
        started: dict[str, str] = {}
        unknown = []
        for run in runs:
            start = read_start(run.run_dir)
            if start is not None and start.launch == key:
                started[run.run_id] = start.job
            else:
                unknown.append(run)
        if unknown:
            live = _wrappers_by_run_dir({str(run.run_dir) for run in unknown})
            for run in unknown:
                if str(run.run_dir) in live:
                    started[run.run_id] = f"{self.host}:{live[str(run.run_dir)]}"
        return started

    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        """Adopt runs of a killed driver still going on this host; report the others."""
        ended = []
        for run_id, (run, job_id) in jobs.items():
            record = read_exit(run.run_dir, run.launch)
            parsed = parse_job_id(job_id)
            alive = parsed is not None and parsed[0] == self.host \
                and _wrapper_of(parsed[1]) == str(run.run_dir)
            if record is not None and not (alive and _group_alive(parsed[1])):
                ended.append(Ended.recorded(run_id, record))
            elif alive:
                assert parsed is not None
                self._track(_Active(run, parsed[1], self._pidfd(parsed[1]), None,
                                    self._deadline()))
            else:
                ended.append(Ended(run_id, None, "driver restarted", lost=True))
        return ended

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        """SIGTERM the runs' process groups, SIGKILL what is left after the grace period."""
        targets = [a for a in self._active.values() if run_ids is None or a.run.run_id in run_ids]
        for active in targets:
            _signal_group(active.pid, signal.SIGTERM)
        give_up = time.monotonic() + self.grace
        while time.monotonic() < give_up and any(not self._is_over(a) for a in targets):
            time.sleep(0.02)
        for active in targets:
            if not self._is_over(active):
                _signal_group(active.pid, signal.SIGKILL)
                if active.popen is not None:
                    active.popen.wait()
            self._untrack(active)

    def close(self) -> None:
        if self._zygotes is not None:
            self._zygotes.close()
        self._selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)
