"""A session fixture that starts the real single-node Slurm cluster (scripts/slurm/start.sh).

Import ``slurm_cluster`` into a test module. Set ``HPSEARCH_SKIP_SLURM=1`` to skip those
tests; otherwise a cluster that cannot start FAILS them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

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
