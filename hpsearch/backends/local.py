"""Run the search's commands as child processes of the driver, N at a time.

Each run is started as ``/bin/sh -c WRAPPER hpsearch-run <run_dir> <argv...>`` in its own
session (process group), with the working directory ``--run_cwd``. The wrapper text is a
constant; the run's argv reaches it only as positional parameters, so no grid value is
ever read by a shell. The wrapper creates ``started_at`` and, when the command ends,
writes ``exit_code`` (both files' mtimes are the times), like every cluster job script
does, so a run that ends while no driver watches (the driver was ``kill -9``-ed) is still
recorded, and a restarted driver adopts runs still going.

The driver wakes within milliseconds of a run's end: ``wait`` blocks on pidfds.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hpsearch.backends.base import Backend, Ended, Run
from hpsearch.runfiles import clear_exit, read_exit

#: $1 is the run directory, the rest is the run's argv. POSIX sh: it starts in a fraction
#: of bash's time, and ``:``/``echo`` are builtins, so it forks nothing but the command.
WRAPPER = r"""d=$1; shift
: > "$d/started_at"
"$@" > "$d/stdout.log" 2> "$d/stderr.log" < /dev/null
c=$?
echo "$c" > "$d/exit_code"
exit $c
"""
KILL_GRACE = 5.0


WRAPPER_NAME = "hpsearch-run"


def wrapper_argv(run: Run) -> list[str]:
    return ["/bin/sh", "-c", WRAPPER, WRAPPER_NAME, str(run.run_dir), *run.argv]


def wrapper_run_dir(pid: int) -> str | None:
    """The run directory of a live wrapper process, from ``/proc/<pid>/cmdline``.

    A wrapper's command line reads ``/bin/sh\\0-c\\0<WRAPPER>\\0hpsearch-run\\0<run_dir>\\0...``.
    None when the pid is gone, a zombie, or not one of our wrappers (a reused pid).
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            parts = f.read().split(b"\0")
    except OSError:
        return None
    if len(parts) > 4 and parts[3] == WRAPPER_NAME.encode():
        return parts[4].decode(errors="replace")
    return None


@dataclass
class _Active:
    run: Run
    pid: int
    pidfd: int | None
    popen: subprocess.Popen[bytes] | None  # None for a process adopted after a restart
    deadline: float | None
    kill_at: float | None = None
    reason: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def _live_pid(job_id: str, host: str, run_dir: str | None = None) -> int | None:
    """The pid of a local job (``"<host>:<pid>"``) whose wrapper still runs on ``host``
    (for ``run_dir``, when given); else None."""
    job_host, _, pid_text = job_id.partition(":")
    pid_text = pid_text.split(":", 1)[0]
    if job_host != host or not pid_text.isdigit():
        return None
    found = wrapper_run_dir(int(pid_text))
    if found is None or run_dir is not None and found != run_dir:
        return None
    return int(pid_text)


def kill_local_jobs(job_ids: list[str]) -> int:
    """SIGTERM the process groups of live local jobs on this host; returns how many."""
    host = socket.gethostname()
    killed = 0
    for job_id in job_ids:
        pid = _live_pid(job_id, host)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
                killed += 1
    return killed


class LocalBackend(Backend):
    """``slots`` runs at once on this machine; ``timeout`` seconds per run (None: no limit)."""

    name = "local"

    def __init__(self, slots: int, timeout: float | None = None) -> None:
        self.slots = slots
        self.timeout = timeout
        self.host = socket.gethostname()
        self._active: dict[str, _Active] = {}
        self._selector = selectors.DefaultSelector()

    # -- starting -------------------------------------------------------------------
    def room(self) -> int:
        return max(0, self.slots - len(self._active))

    def run_env(self, run: Run) -> Mapping[str, str] | None:
        """Environment for one run; None inherits the driver's. GPU backends override."""
        return None

    def submit(self, runs: Sequence[Run]) -> dict[str, str]:
        started = {}
        for run in runs:
            started[run.run_id] = self._launch(run, self.run_env(run))
        return started

    def _launch(self, run: Run, env: Mapping[str, str] | None) -> str:
        clear_exit(run.run_dir)
        popen = subprocess.Popen(wrapper_argv(run), cwd=run.cwd, stdin=subprocess.DEVNULL,
                                 start_new_session=True,
                                 env=None if env is None else {**os.environ, **env})
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self._track(_Active(run, popen.pid, self._pidfd(popen.pid), popen, deadline))
        return f"{self.host}:{popen.pid}"

    def _pidfd(self, pid: int) -> int | None:
        try:
            return os.pidfd_open(pid)
        except (AttributeError, OSError):
            return None

    def _track(self, active: _Active) -> None:
        self._active[active.run.run_id] = active
        if active.pidfd is not None:
            self._selector.register(active.pidfd, selectors.EVENT_READ)

    def _untrack(self, active: _Active) -> None:
        del self._active[active.run.run_id]
        if active.pidfd is not None:
            self._selector.unregister(active.pidfd)
            os.close(active.pidfd)

    # -- watching -------------------------------------------------------------------
    def wait(self, timeout: float) -> None:
        if not self._active:
            time.sleep(min(timeout, 0.05))
            return
        now = time.monotonic()
        for active in self._active.values():
            for moment in (active.deadline, active.kill_at):
                if moment is not None:
                    timeout = min(timeout, max(0.0, moment - now))
        if any(a.pidfd is None for a in self._active.values()):
            timeout = min(timeout, 0.05)
        self._selector.select(timeout)

    def poll(self) -> list[Ended]:
        ended = []
        now = time.monotonic()
        for active in list(self._active.values()):
            if active.kill_at is None and active.deadline is not None and now >= active.deadline:
                active.reason = f"timeout after {self.timeout:g}s"
                self._signal(active, signal.SIGTERM)
                active.kill_at = now + KILL_GRACE
            elif active.kill_at is not None and now >= active.kill_at:
                self._signal(active, signal.SIGKILL)
                active.kill_at = now + KILL_GRACE
            if not self._is_over(active):
                continue
            self._untrack(active)
            ended.append(self._outcome(active))
        return ended

    def _is_over(self, active: _Active) -> bool:
        if active.popen is not None:
            return active.popen.poll() is not None
        return (wrapper_run_dir(active.pid) is None
                or read_exit(active.run.run_dir) is not None)

    def _outcome(self, active: _Active) -> Ended:
        run_id = active.run.run_id
        record = read_exit(active.run.run_dir)
        if active.reason is not None:
            return Ended(run_id, None, active.reason, extra=active.extra)
        if record is not None:
            return Ended.recorded(run_id, record, active.extra)
        code = active.popen.returncode if active.popen is not None else None
        if code is not None and code < 0:
            return Ended(run_id, None, f"killed by signal {-code}", extra=active.extra)
        return Ended(run_id, None, "ended without an exit code", extra=active.extra)

    def _signal(self, active: _Active, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(active.pid, sig)

    # -- restart and stop -----------------------------------------------------------
    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        """Adopt runs of a killed driver still going on this host; report the others."""
        ended = []
        for run_id, (run, job_id) in jobs.items():
            pid = _live_pid(job_id, self.host, str(run.run_dir))
            record = read_exit(run.run_dir)
            if record is not None:
                ended.append(Ended.recorded(run_id, record))
            elif pid is not None:
                deadline = None if self.timeout is None else time.monotonic() + self.timeout
                self._track(_Active(run, pid, self._pidfd(pid), None, deadline))
            else:
                ended.append(Ended(run_id, None, "driver restarted", lost=True))
        return ended

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        """SIGTERM the runs' process groups, SIGKILL what is left after a grace period."""
        targets = [a for a in self._active.values() if run_ids is None or a.run.run_id in run_ids]
        for active in targets:
            self._signal(active, signal.SIGTERM)
        give_up = time.monotonic() + KILL_GRACE
        while time.monotonic() < give_up and any(not self._is_over(a) for a in targets):
            time.sleep(0.02)
        for active in targets:
            if not self._is_over(active):
                self._signal(active, signal.SIGKILL)
                if active.popen is not None:
                    active.popen.wait()
            self._untrack(active)

    def close(self) -> None:
        self._selector.close()

