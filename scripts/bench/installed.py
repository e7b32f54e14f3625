"""The hpsearch every benchmark measures: the installed package, never the checkout.

A bench script has its own folder (``scripts/bench``) first on ``sys.path``, so its
``import hpsearch`` finds the installed package; ``python -m hpsearch`` would put the current
folder first, and a bench started in the repository would then time the checkout, not what
users install. So the benches import this module
before hpsearch, which stops with one line when ``import hpsearch`` would find no package or
the checkout (``PYTHONPATH`` set to it), and start hpsearch with :data:`HPSEARCH`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
#: the command running the installed hpsearch (``-P``: the current folder stays off sys.path)
HPSEARCH = [sys.executable, "-P", "-m", "hpsearch"]


def _check_installed() -> None:
    found = importlib.util.find_spec("hpsearch")
    if found is None or found.origin is None:
        sys.exit("hpsearch is not installed in this Python: pip install . in the repository "
                 "(or bash scripts/setup_venv.sh .) first")
    if Path(found.origin).resolve().parent == CHECKOUT / "hpsearch":
        sys.exit(f"import hpsearch finds the checkout ({found.origin}), not the installed "
                 "package: unset PYTHONPATH and pip install . first")


def fake_gpu_path() -> str:
    """``PATH`` for a bench on fake GPUs: ``tests/fakes`` (its ``nvidia-smi``) first, then this
    interpreter's folder, so the fake's ``#!/usr/bin/env python3`` is this Python rather than a
    version manager's shim (pyenv's adds 0.08 s to each call; a real nvidia-smi is a binary),
    as the test command's ``PATH`` has it."""
    return os.pathsep.join([str(CHECKOUT / "tests" / "fakes"), str(Path(sys.executable).parent),
                            os.environ["PATH"]])


_check_installed()
