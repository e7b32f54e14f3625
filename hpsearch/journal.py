"""The search journal: an append-only JSON-lines file, the truth about a search.

``<out_dir>/journal.jsonl`` holds one event a line, e.g.::

    {"ev": "start", "t": 1732350000.1, "host": "node1", "pid": 4242,
     "backend": "local"}
    {"ev": "submit", "t": ..., "run": "3f2a9c0d1b7e", "index": 0, "config": {"lr": 0.1},
     "job": "4711_0", "attempt": 1}
    {"ev": "end", "t": ..., "run": "3f2a9c0d1b7e", "status": "finished", "exit": 0,
     "reason": null, "metrics": {"acc": 0.93, "finished": 1.0}, "wall": 12.5, "extra": {}}
    {"ev": "lost", "t": ..., "run": "3f2a9c0d1b7e", "reason": "driver restarted"}
    {"ev": "stop", "t": ..., "reason": "done"}

One driver writes it (see :class:`DriverLock`); events are buffered and written once per
driver loop iteration, so a ``kill -9`` of the driver loses nothing it recorded; they are
fsync'd at most once per ``sync_interval`` seconds (and on close), so a machine crash loses at
most that much journal -- the run directories still hold every run's exit code, and
``hpsearch collect`` rebuilds the table from them. Replay rebuilds every run's state; a torn
last line (``kill -9`` mid-write) is ignored, and cut off before the next driver appends.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError

JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = ".hpsearch.lock"


@dataclass
class RunState:
    """What the journal says about one run."""

    run_id: str
    index: int
    config: dict[str, Any]
    status: str = "pending"  # pending | running | finished | failed
    attempts: int = 0
    job_id: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    wall_time: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def replay(path: Path) -> dict[str, RunState]:
    """Every run the journal knows, by run id, in first-submitted order."""
    runs: dict[str, RunState] = {}
    if not path.exists():
        return runs
    with open(path, "rb") as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a torn line from a killed driver
            apply_event(runs, event)
    return runs


def apply_event(runs: dict[str, RunState], event: dict[str, Any]) -> None:
    kind = event.get("ev")
    run_id = event.get("run")
    if kind == "submit":
        state = runs.get(run_id)
        if state is None:
            state = runs[run_id] = RunState(run_id, event.get("index", -1),
                                            event.get("config", {}))
        state.status = "running"
        state.attempts = event.get("attempt", state.attempts + 1)
        state.job_id = event.get("job")
        state.reason = None
    elif kind == "end" and run_id in runs:
        state = runs[run_id]
        state.status = event["status"]
        state.exit_code = event.get("exit")
        state.reason = event.get("reason")
        state.metrics = event.get("metrics") or {}
        state.wall_time = event.get("wall")
        state.extra = event.get("extra") or {}
    elif kind == "lost" and run_id in runs:
        state = runs[run_id]
        state.status = "pending"
        state.attempts = max(0, state.attempts - 1)
        state.reason = event.get("reason")


class Journal:
    """Appends events; ``flush`` writes and fsyncs what was appended since the last flush."""

    def __init__(self, path: Path, sync_interval: float = 1.0) -> None:
        self.path = path
        self.sync_interval = sync_interval
        self._next_sync = 0.0
        self._cut_torn_tail()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._pending: list[str] = []
        self._unsynced = False

    def _cut_torn_tail(self) -> None:
        try:
            with open(self.path, "rb+") as f:
                data = f.read()
                if data and not data.endswith(b"\n"):
                    f.truncate(data.rfind(b"\n") + 1)
        except FileNotFoundError:
            pass

    def append(self, kind: str, **fields: Any) -> None:
        event = {"ev": kind, "t": round(time.time(), 3), **fields}
        self._pending.append(json.dumps(event, default=repr) + "\n")

    def flush(self, sync: bool = False) -> None:
        """Write what was appended; fsync if ``sync`` or the sync interval has passed."""
        if self._pending:
            data = "".join(self._pending).encode()
            self._pending.clear()
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
            self._unsynced = True
        if self._unsynced and (sync or time.monotonic() >= self._next_sync):
            os.fsync(self._fd)
            self._unsynced = False
            self._next_sync = time.monotonic() + self.sync_interval

    def close(self) -> None:
        self.flush(sync=True)
        os.close(self._fd)


class DriverLock:
    """One driver per search directory: an ``O_CREAT|O_EXCL`` lock file with host and pid.

    Works on NFS, where ``fcntl`` locks often do not. A lock left by a dead driver on this
    host is taken over; one from another host is refused (its liveness cannot be checked).
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / LOCK_FILE
        self.host = socket.gethostname()

    def acquire(self) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and not self._is_stale(holder):
                    raise UsageError(
                        f"another hpsearch driver (pid {holder.get('pid')} on host "
                        f"{holder.get('host')}) is running this search in {self.path.parent};"
                        f" wait for it, stop it, or if it is gone delete {self.path}") from None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": self.host, "pid": os.getpid(), "t": time.time()}, f)
            return
        raise UsageError(f"could not take the lock {self.path}; delete it if no driver runs")

    def _holder(self) -> dict[str, Any] | None:
        try:
            with open(self.path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None  # torn or vanished: treat as stale

    def _is_stale(self, holder: dict[str, Any]) -> bool:
        if holder.get("host") != self.host:
            return False
        try:
            os.kill(int(holder.get("pid", 0)), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError, TypeError):
            return False
        return False

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
