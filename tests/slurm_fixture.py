"""A session fixture that starts the real single-node Slurm cluster (scripts/slurm/start.sh).

Import ``slurm_cluster`` into a test module (and ``timeout_search``, the shared slow
search, see there). Set ``HPSEARCH_SKIP_SLURM=1`` to skip those
tests; otherwise a cluster that cannot start FAILS them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Search, run_hpsearch, start_hpsearch, write_search

START = Path(__file__).resolve().parent.parent / "scripts" / "slurm" / "start.sh"


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """Start (or find running) the local cluster; return start.sh's message."""
    if os.environ.get("HPSEARCH_SKIP_SLURM") == "1":
        pytest.skip("HPSEARCH_SKIP_SLURM=1: tests against the local Slurm cluster skipped")
    done = subprocess.run([str(START)], capture_output=True, text=True, timeout=600,
                          check=False)
    if done.returncode != 0:
        pytest.fail(f"{START} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


@dataclass
class TimeoutSearch:
    """A CLI search of one run that outlives its one-minute limit, running in the background."""

    search: Search
    proc: subprocess.Popen[str]


#: the one time-limit search of this session: each module importing ``timeout_search``
#: gets its own copy of the fixture, so the search itself is kept here
_TIMEOUT_SEARCH: list[TimeoutSearch] = []


@pytest.fixture(scope="session")
def timeout_search(slurm_cluster, tmp_path_factory) -> Iterator[TimeoutSearch]:
    """``python -m hpsearch ... --num_hours=1/60`` over one run sleeping 10 minutes.

    Slurm's smallest time limit is one minute and the run is reported TIMEOUT about
    95 s after submission here, so this search is started once per session by the first
    Slurm test module that asks for it (``test_slurm_backend.py``'s module fixture does)
    and checked by the last test of ``test_slurm_search.py``: the wait overlaps the
    other tests.
    """
    if _TIMEOUT_SEARCH:
        yield _TIMEOUT_SEARCH[0]
        return
    root = tmp_path_factory.mktemp("timeout_search")
    search = write_search(root, {"x": [1.0], "sleep": [600]})
    proc = start_hpsearch([
        "--grid_module=hpconf", "--run_cwd=proj", f"--out_dir={search.out_dir}",
        "--run_cluster", "--scheduler=slurm", "--slurm_gres=", "--slurm_mem=50M",
        f"--num_hours={1 / 60!r}"], cwd=root, stdout=subprocess.DEVNULL)
    _TIMEOUT_SEARCH.append(TimeoutSearch(search, proc))
    yield _TIMEOUT_SEARCH[0]
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        run_hpsearch(["cancel", str(search.out_dir)], cwd=root)
