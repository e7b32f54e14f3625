"""One thread that runs a strategy's slow jobs strictly in the order they were handed in.

The driver's thread hands in jobs (``tell`` this outcome, compute this many proposals) and
goes on at once; the jobs run one after another in this thread, so with one run at a
time the sampler sees exactly the sequence of events an uninterrupted search would. A job
that raises stops the thread; the next :meth:`OrderedWorker.check` or
:meth:`OrderedWorker.submit` in the driver's thread raises it there as a one-line
:class:`~hpsearch.errors.BackendError`, e.g.::

    sampler tpe failed: ValueError: The value nan is not acceptable
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from hpsearch.errors import BackendError

#: how long :meth:`OrderedWorker.close` waits for a job that is running (the thread is a
#: daemon: one that is still busy then does not keep the process alive)
CLOSE_WAIT_S = 5.0


class OrderedWorker:
    """Runs submitted jobs in submission order in one daemon thread named ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except BaseException as exc:  # anything a sampler raises must reach the driver
                self._error = exc
                return

    def check(self) -> None:
        """Raise a job's exception here, in the caller's thread, as a BackendError."""
        if self._error is not None:
            text = " ".join(str(self._error).split())
            raise BackendError(f"{self.name} failed: {type(self._error).__name__}: "
                               f"{text}") from self._error

    def submit(self, job: Callable[[], None]) -> None:
        self.check()
        self._jobs.put(job)

    def close(self) -> None:
        """Drop the jobs not started yet and stop the thread."""
        self._closed.set()
        self._jobs.put(None)
        self._thread.join(CLOSE_WAIT_S)
