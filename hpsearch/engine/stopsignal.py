"""Waiting for SIGINT or SIGTERM: how a process that listens (``serve``, ``report --serve``) ends.

::

    with stop_signals() as stop:
        ...start serving...
        signum = stop.wait(alive=thread.is_alive)   # the signal's number (SIGTERM: it died)
        ...shut down; exit status 128 + signum...

The handlers are in place only inside the ``with``; the previous ones come back after it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

#: seconds between two looks at whether the server still runs
LOOK_INTERVAL = 0.5


class StopSignal:
    """The first SIGINT or SIGTERM the process got inside :func:`stop_signals`."""

    def __init__(self) -> None:
        self.caught: list[int] = []
        self.event = threading.Event()

    def wait(self, alive: Callable[[], bool] = lambda: True) -> int:
        """Block until a signal (or until ``alive()`` is false); the signal's number,
        SIGTERM when none came."""
        while not self.event.wait(LOOK_INTERVAL) and alive():
            pass
        return self.caught[0] if self.caught else signal.SIGTERM


@contextlib.contextmanager
def stop_signals() -> Iterator[StopSignal]:
    """SIGINT and SIGTERM set the :class:`StopSignal` instead of raising, while inside."""
    stop = StopSignal()

    def on_signal(signum: int, _frame: object) -> None:
        stop.caught.append(signum)
        stop.event.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
