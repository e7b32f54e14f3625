"""Building a search's driver: the one way ``hpsearch`` and ``hpsearch serve`` start a search.

Both take the search directory and make the driver that runs it here.

Called once everything was checked (the search, the flags, the backend, that the directory holds
this search or none): only from here on is anything written to the directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpsearch.backends.base import Backend
from hpsearch.engine.driver import Driver
from hpsearch.engine.journal import JOURNAL_FILE, replay
from hpsearch.engine.lock import DriverLock
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.progress import Progress
from hpsearch.engine.searchdir import layout_of_spec, write_description
from hpsearch.engine.sinks import Tracking, search_info
from hpsearch.engine.warmstart import save_warm_results
from hpsearch.errors import UsageError
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.base import Strategy
from hpsearch.tracking import make_sinks
from hpsearch.tracking.record import Sink


def sinks_of(spec: SearchSpec, options: SearchOptions) -> list[Sink]:
    """The tracking sinks of the search (its file's ``log_to``, then ``--log_to``), made but
    not opened: UsageError (one line) for an unknown one or a missing extra, before anything
    is written."""
    return make_sinks((*spec.log_to, *options.log_to), options.out_dir)


def build_driver(spec: SearchSpec, options: SearchOptions, strategy: Strategy,
                 backend: Backend, meta: dict[str, Any],
                 progress: Callable[[], Progress], sinks: list[Sink] | None = None) -> Driver:
    """Take ``--out_dir`` (create it, take its lock), read its journal, record the search
    (``meta``: ``search.json``, with a copy of its source), and build the driver that runs it,
    telling its user through ``progress()`` (made once the directory is taken: it may write
    there), its ended runs logged to ``sinks`` (None: :func:`sinks_of` the search).

    The driver holds the lock from then on: its owner releases ``driver.lock`` after
    :meth:`Driver.run`. When any step fails the lock is given back (a directory that cannot
    be taken, or a journal that cannot be read, is a one-line UsageError).
    """
    sinks = sinks_of(spec, options) if sinks is None else sinks
    lock = take_search_dir(options.out_dir)
    try:
        history = replay(options.out_dir / JOURNAL_FILE)
        write_description(options.out_dir, meta, spec)
        save_warm_results(spec, options.out_dir)
        tracking = Tracking(sinks, options.out_dir, search_info(
            options.out_dir, spec.objectives, spec.directions, spec.config_keys()),
            options.backend_name) if sinks else None
        return Driver(spec, options, strategy, backend, layout_of_spec(spec), progress(), lock,
                      history, tracking)
    except BaseException:
        lock.release()
        raise


def take_search_dir(out_dir: Path) -> DriverLock:
    """Create ``out_dir`` and take its lock (a one-line UsageError when either fails)."""
    lock = DriverLock(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as exc:
        raise UsageError(f"cannot use --out_dir={out_dir}: {exc.strerror}; pass a "
                         "directory you can write to") from None
    return lock
