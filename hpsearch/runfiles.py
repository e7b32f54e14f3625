"""The files in a run's record directory, the contract between job wrappers and the driver.

``<out_dir>/runs/<run_id>/`` holds::

    run.json     {"run_id": ..., "index": ..., "config": {...}, "argv": [...], "cwd": ...}
    command.sh   the exact command, shell-quoted, to re-run the run by hand
    stdout.log   the run's standard output
    stderr.log   the run's standard error
    started_at   "<epoch seconds>\\n" or empty (then its mtime), written when the command starts
    exit_code    "<exit status> [<epoch seconds at the end>]\\n", written last
    out/         the sim's own output directory (passed as --<_OUT_ARG>)

Every job wrapper -- the local backend's, the Slurm and LSF job scripts -- writes
``started_at`` before and ``exit_code`` after the command, e.g. ``"0 1732350000.25"`` or
``"137\\n"`` for a run killed by SIGKILL (exit status 128+N, as a shell says); without the
second field the file's mtime is the end time. A reader takes the file only once it ends
with a newline (it is one short write, or written elsewhere and renamed). A run directory
with ``run.json`` but no ``exit_code`` is a run that never ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNS_DIR = "runs"
RUN_FILE = "run.json"
COMMAND_FILE = "command.sh"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
STARTED_FILE = "started_at"
EXIT_FILE = "exit_code"
SIM_OUT_DIR = "out"

#: what PyTorch/CUDA print when a run runs out of GPU memory
OOM_MARKERS = (b"CUDA out of memory", b"CUDA error: out of memory")


@dataclass(frozen=True)
class ExitRecord:
    """What ``exit_code`` (and ``started_at``) say about a finished command."""

    exit_code: int
    ended_at: float
    started_at: float | None

    @property
    def wall_time(self) -> float | None:
        return None if self.started_at is None else self.ended_at - self.started_at


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def write_run_record(run_dir: Path, run_id: str, index: int, config: dict[str, Any],
                     argv: list[str], cwd: Path) -> None:
    """Create the record directory with ``run.json`` and ``command.sh``.

    Plain writes, not renames: written before the run starts, by the one driver; a file
    torn by a killed driver is unreadable (``read_run_record`` -> None) and rewritten when
    the run starts again.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run_id, "index": index, "config": config, "argv": argv,
              "cwd": str(cwd)}
    _write(run_dir / RUN_FILE, json.dumps(record, default=repr) + "\n")
    _write(run_dir / COMMAND_FILE,
           f"#!/bin/sh\ncd {shlex.quote(str(cwd))} && exec {shlex.join(argv)}\n")


def read_run_record(run_dir: Path) -> dict[str, Any] | None:
    """The ``run.json`` of a run directory, or None if it is missing or torn."""
    try:
        with open(run_dir / RUN_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def clear_exit(run_dir: Path) -> None:
    """Forget a previous attempt's end before the run starts again."""
    for name in (EXIT_FILE, STARTED_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(run_dir / name)


def _read_started(path: Path) -> float | None:
    """``started_at``: the epoch seconds it holds, or its mtime when it is empty."""
    try:
        with open(path) as f:
            text = f.read().strip()
        return float(text.replace(",", ".")) if text else os.path.getmtime(path)
    except (OSError, ValueError):
        return None


def read_exit(run_dir: Path) -> ExitRecord | None:
    """Parse ``exit_code`` (``"<status> <epoch>\\n"``); None if absent, partial or unreadable.

    A decimal comma (``$EPOCHREALTIME`` in some locales) is read as a point.
    """
    try:
        with open(run_dir / EXIT_FILE) as f:
            text = f.read()
        if not text.endswith("\n"):
            return None
        fields = text.replace(",", ".").split()
        exit_code = int(fields[0])
        ended_at = float(fields[1]) if len(fields) > 1 else os.path.getmtime(run_dir / EXIT_FILE)
    except (OSError, ValueError, IndexError):
        return None
    return ExitRecord(exit_code, ended_at, _read_started(run_dir / STARTED_FILE))


def stderr_says_oom(run_dir: Path) -> bool:
    """True when the last 64 KiB of ``stderr.log`` report CUDA out of memory."""
    try:
        with open(run_dir / STDERR_FILE, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 65536))
            tail = f.read()
    except OSError:
        return False
    return any(marker in tail for marker in OOM_MARKERS)
