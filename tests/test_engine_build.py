"""How the engine builds a driver and what it asks a backend to declare (no subprocess).

``build_driver`` is the one way ``hpsearch`` and ``hpsearch serve`` take a search directory;
a backend says itself whether its runs outlive the driver and what a dry run shows of them,
with no test of its class or name in the engine.
"""

from __future__ import annotations

import io
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_driver_loop import FakeBackend, spec_of

from hpsearch.backends.base import Ended, Run
from hpsearch.engine.build import build_driver
from hpsearch.engine.journal import JOURNAL_FILE
from hpsearch.engine.launch import dry_run
from hpsearch.engine.lock import DriverLock
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.progress import Progress
from hpsearch.engine.searchdir import SEARCH_FILE
from hpsearch.errors import UsageError
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.grid import GridStrategy


def options_for(out_dir: Path) -> SearchOptions:
    return SearchOptions(out_dir=out_dir, run_cwd=out_dir, python=sys.executable)


def grid(spec: SearchSpec) -> GridStrategy:
    return GridStrategy(spec, seed=1, deterministic=True)


class Endless(FakeBackend):
    """Runs that never end; the driver's first wait is interrupted as SIGTERM would."""

    def __init__(self, outlive: bool) -> None:
        super().__init__(lambda run, attempt: 0, slots=2)
        self.runs_outlive_driver = outlive
        self.stopping: object = None  # the driver, once built
        self.cancelled: list[str] | None = None

    def poll(self) -> list[Ended]:
        return []

    def wait(self, timeout: float) -> None:
        self.stopping.interrupt(signal.SIGTERM)

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        self.cancelled = list(run_ids or self.active)
        self.active.clear()


def interrupted(out_dir: Path, outlive: bool) -> tuple[Endless, str]:
    """Drive a two-run search on an ``Endless`` backend until its interrupt."""
    spec = spec_of([1, 2, 3])
    backend = Endless(outlive)
    err = io.StringIO()
    driver = build_driver(spec, options_for(out_dir), grid(spec), backend, {"total": 3},
                          lambda: Progress("acc", False, stream=err, live=False))
    backend.stopping = driver
    try:
        assert driver.run() == 128 + signal.SIGTERM
    finally:
        driver.lock.release()
    return backend, err.getvalue()


def test_an_interrupt_stops_the_runs_a_backend_says_end_with_the_driver(tmp_path):
    backend, err = interrupted(tmp_path / "dies", outlive=False)
    assert backend.cancelled is not None and len(backend.cancelled) == 2, err
    assert "stay on" not in err

    backend, err = interrupted(tmp_path / "lives", outlive=True)
    assert backend.cancelled is None
    assert "2 job(s) stay on fake (0 queued, 2 running): the same command reattaches" in err


def test_a_dry_run_shows_the_scripts_a_backend_declares(tmp_path, capsys):
    class Scripted(FakeBackend):
        def dry_run_scripts(self, runs: Sequence[Run]) -> list[str]:
            return [f"#!/bin/sh\n# one job of {len(runs)} runs"]

    spec = spec_of([1, 2])
    dry_run(spec, options_for(tmp_path), grid(spec),
            Scripted(lambda run, attempt: 0))
    out = capsys.readouterr().out
    assert out == "#!/bin/sh\n# one job of 2 runs\n", out

    dry_run(spec, options_for(tmp_path), grid(spec),
            FakeBackend(lambda run, attempt: 0))  # declares none: the command lines
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("sim.py" in line and "--x=" in line for line in lines), lines


def test_build_driver_gives_the_directory_back_when_its_journal_cannot_be_read(tmp_path):
    (tmp_path / JOURNAL_FILE).mkdir()  # a folder where the journal should be
    spec = spec_of([1])
    with pytest.raises(UsageError, match="cannot read the journal"):
        build_driver(spec, options_for(tmp_path), grid(spec),
                     FakeBackend(lambda run, attempt: 0), {"total": 1},
                     lambda: Progress("acc", False, stream=io.StringIO(), live=False))
    assert not (tmp_path / SEARCH_FILE).exists()  # nothing written
    lock = DriverLock(tmp_path)
    lock.acquire()  # free again
    lock.release()
