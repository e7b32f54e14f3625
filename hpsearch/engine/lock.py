"""One driver per search directory, on NFS too: ``<out_dir>/.hpsearch.lock``.

The lock file holds one JSON line naming its owner::

    {"host": "node1", "pid": 4242, "token": "9f2c61d0a7b3e415", "t": 1732350000.1}

* **Never observable empty.** The owner writes the whole record to a file of its own, then
  ``link``\\ s it to the lock's name; the link either appears with the whole record or fails
  because a lock exists (atomic on local filesystems and on NFS, where a lost reply is
  checked through the link count).
* **A heartbeat.** While it holds the lock, the owner touches it every
  :data:`HEARTBEAT_SECONDS`. A lock whose owner runs on another host is stale once it went
  :data:`STALE_AFTER_SECONDS` without a heartbeat (measured on the filesystem's own clock),
  so a driver job killed at its walltime on node A does not block its resubmitted job on
  node B for more than that. On the owner's own host, a lock is stale as soon as its pid is
  gone (or is no hpsearch process any more).
* **An unreadable lock is held**, never stale: it is refused with a line saying what to do.
* **Only the owner removes it**: release checks that the lock is still the file it linked.
  A stale lock is taken over by renaming it away first, so two drivers that both found it
  stale cannot both win.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.runs.files import link_whole

LOCK_FILE = ".hpsearch.lock"
#: every file the lock makes (the lock, its owner's draft, a stale one moved aside, a clock
#: probe) starts with this
LOCK_PREFIX = ".hpsearch."
#: how often the owner touches its lock
HEARTBEAT_SECONDS = 10.0
#: a lock of another host without a heartbeat for this long is stale
STALE_AFTER_SECONDS = 90.0


@dataclass(frozen=True)
class Holder:
    """The lock as found: its record (None if unreadable), inode and age in seconds."""

    record: dict[str, Any] | None
    inode: int
    age: float

    @property
    def host(self) -> str:
        return str((self.record or {}).get("host", "?"))

    @property
    def pid(self) -> int | None:
        value = (self.record or {}).get("pid")
        return value if isinstance(value, int) else None


def filesystem_now(folder: Path) -> float:
    """The current time on ``folder``'s filesystem clock (an NFS server's, say)."""
    probe = folder / f".hpsearch.clock.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        with open(probe, "w"):
            pass
        return os.stat(probe).st_mtime
    except OSError:
        return time.time()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)


def read_holder(path: Path) -> Holder | None:
    """The lock at ``path``, or None when there is none."""
    try:
        with open(path, "rb") as f:
            stat = os.fstat(f.fileno())
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return Holder(None, -1, 0.0)
    try:
        record = json.loads(data)
    except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError): unreadable
        record = None
    if not (isinstance(record, dict) and isinstance(record.get("host"), str)
            and isinstance(record.get("pid"), int)):
        record = None
    return Holder(record, stat.st_ino, filesystem_now(path.parent) - stat.st_mtime)


def _is_hpsearch_process(pid: int) -> bool | None:
    """True/False for a live pid on this host; None when it does not exist."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"hpsearch" in f.read()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc: the pid exists, we cannot tell more
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return True


def liveness(holder: Holder, host: str | None = None) -> str:
    """``"alive"``, ``"stale"`` or ``"unreadable"`` for a lock found on disk."""
    if holder.record is None:
        return "unreadable"
    if holder.host == (host or socket.gethostname()):
        alive = holder.pid is not None and _is_hpsearch_process(holder.pid)
        return "alive" if alive else "stale"
    return "stale" if holder.age > STALE_AFTER_SECONDS else "alive"


class DriverLock:
    """Take with :meth:`acquire`, give back with :meth:`release`; see the module docstring."""

    def __init__(self, out_dir: Path, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.path = out_dir / LOCK_FILE
        self.host = socket.gethostname()
        self.token = secrets.token_hex(8)
        self.heartbeat = heartbeat
        self._inode: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: set when the lock file stopped being ours (another driver took it over)
        self.lost = False

    def _record(self) -> str:
        return json.dumps({"host": self.host, "pid": os.getpid(), "token": self.token,
                           "t": round(time.time(), 3)}) + "\n"

    def _try_link(self) -> bool:
        inode = link_whole(self.path, self._record(),
                           self.path.with_name(f"{LOCK_FILE}.{self.token}"))
        if inode is None:
            return False
        self._inode = inode
        return True

    def acquire(self) -> None:
        """Take the lock or raise a one-line UsageError naming its holder."""
        for _ in range(5):
            if self._try_link():
                self._start_heartbeat()
                return
            holder = read_holder(self.path)
            if holder is None:
                continue  # released meanwhile: try again
            state = liveness(holder, self.host)
            if state == "unreadable":
                raise UsageError(f"the lock {self.path} holds no readable driver record; if "
                                 "no hpsearch driver runs this search, delete that file")
            if state == "alive":
                age = "" if holder.host == self.host else f", last heartbeat {holder.age:.0f} s ago"
                raise UsageError(
                    f"another hpsearch driver (pid {holder.pid} on host {holder.host}{age}) "
                    f"is running this search in {self.path.parent}; wait for it, stop it "
                    f"(hpsearch cancel), or if it is gone delete {self.path}")
            self._break(holder)
        raise UsageError(f"could not take the lock {self.path}: other drivers keep taking it; "
                         "make sure only one driver runs this search")

    def _break(self, stale: Holder) -> None:
        """Move a stale lock out of the way, unless it changed since it was judged."""
        aside = self.path.with_name(f"{LOCK_FILE}.stale.{self.token}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if os.stat(aside).st_ino == stale.inode:
            os.unlink(aside)
            return
        with contextlib.suppress(FileExistsError):  # we moved a fresh lock: put it back
            os.link(aside, self.path)
        os.unlink(aside)

    def owns(self) -> bool:
        try:
            return self._inode is not None and os.stat(self.path).st_ino == self._inode
        except OSError:
            return False

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="hpsearch-lock-heartbeat",
                                        daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            if not self.owns():
                self.lost = True
                return
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.owns():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self._inode = None
