"""Stopping a process group: SIGTERM, a grace period, then SIGKILL for what is left.

A run (and an external generator's call) runs in a process group of its own, so that the
stop reaches everything it started. The local backend stops its runs this way, and the
external generator its calls past their time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable


def group_alive(pgid: int) -> bool:
    """Does a process of the group ``pgid`` still exist (one of another user's counts)?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to the group ``pgid``; a group that is gone (or not ours) is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_groups(pgids: Iterable[int], grace: float) -> None:
    """SIGTERM each process group, SIGKILL what is left of them after ``grace`` seconds."""
    pgids = list(pgids)
    for pgid in pgids:
        signal_group(pgid, signal.SIGTERM)
    give_up = time.monotonic() + grace
    while time.monotonic() < give_up and any(group_alive(p) for p in pgids):
        time.sleep(0.02)
    for pgid in pgids:
        signal_group(pgid, signal.SIGKILL)
