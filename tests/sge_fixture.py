"""A session fixture that starts the real single-node Grid Engine cell (scripts/sge/start.sh).

Import ``sge_cell`` into a test module. Set ``HPSEARCH_SKIP_SGE=1`` to skip those tests;
otherwise a cell that cannot start FAILS them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

START = Path(__file__).resolve().parent.parent / "scripts" / "sge" / "start.sh"


@pytest.fixture(scope="session")
def sge_cell() -> str:
    """Start (or find running) the local Grid Engine cell; return start.sh's message."""
    if os.environ.get("HPSEARCH_SKIP_SGE") == "1":
        pytest.skip("HPSEARCH_SKIP_SGE=1: tests against the local Grid Engine skipped")
    done = subprocess.run([str(START)], capture_output=True, text=True, timeout=600,
                          check=False)
    if done.returncode != 0:
        pytest.fail(f"{START} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()
