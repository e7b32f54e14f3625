"""The files in a run's record directory: the contract between the job wrapper and the driver.

``<out_dir>/runs/<run_id>/`` holds::

    run.json      {"run_id": ..., "trial": 7, "config": {...}, "argv": [...], "cwd": ...,
                   "attempt": 2, "launch": "k3f9a1c2"}     rewritten before each attempt
                  (+ "internal" and "lineage" when the strategy gave them: what adopting
                  the run into a lost journal needs)
    command.sh    the exact command (environment included), shell-quoted, to re-run it by hand
                  (not for a point handed out by ``hpsearch serve``: no command runs here)
    started_at    written by the wrapper when the command starts (its mtime: the start time)::

                      launch=k3f9a1c2
                      job=node1:4242
                      host=node1
                      cuda_visible_devices=0
                      cpus=4                (a cluster job's CPUs; empty for a local run)

    stdout.log    the command's standard output
    stderr.log    the command's standard error
    exit_code     "<exit status> <launch key>\\n", written by the wrapper when the command ends
                  (its mtime: the end time); 128+N for a command killed by signal N. When the
                  wrapper itself got SIGTERM, SIGINT or SIGHUP while the command ran (a
                  scheduler's cancel, requeue or preemption signals every process of the job;
                  the local backend signals the run's process group), a third word names the
                  first: "143 k3f9a1c2 TERM\\n", "0 k3f9a1c2 TERM\\n" (a sim that saved its work
                  and exited 0). A scheduler signals the processes one by one: a command that
                  died of its signal before the wrapper got its own leaves no word; its
                  status, 128+N, says it. A wrapper that cannot write it (a full disk)
                  ends without it: that run's end is unknown, not failed
    walltime_warning  "<launch key>\\n": the job's time-limit warning reached this attempt
                  (the cluster job script, or the packed worker, then sent it SIGTERM)
    reason        optional: one line a failing command left to say why (the function
                  objective's runner writes the exception's last line: ``ValueError: bad lr``)
    out/          the sim's own output directory (passed as --<_OUT_ARG>)
    nodes/<i>/    a run of several nodes started by one wrapper per node (SSH hosts): node
                  i's started_at, exit_code, stdout.log and stderr.log (node 0's are the
                  run's own, above)
    attempts/<n>/ the files of the n-th earlier start: started_at, exit_code, stdout.log,
                  stderr.log, reason, nodes/ and the summary file, moved here before the next
                  attempt

Every launch has a key (``k`` and 8 hex digits, unique in the search) that the wrapper
writes into both files, so an exit file from an earlier attempt is never taken for the
current one. The driver moves an earlier attempt's files aside before the next attempt
starts (:func:`retire_attempt`); every backend runs the same wrapper
(:mod:`hpsearch.runs.wrapper`). A scheduler that requeues a job starts its script again with
the same launch: the wrapper then finds ``started_at`` of that launch, moves that start's
files to ``attempts/<n>/`` itself and runs the command as launch ``<key>.<r>`` (its r-th
restart: ``k3f9a1c2.1``, see :func:`split_launch`). A reader takes a file only once it
ends with a newline (each is one short write). A run directory with ``run.json`` but no
``started_at`` never started.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.spec.reserved import (
    ATTEMPT_FILES,
    ATTEMPTS_DIR,
    COMMAND_FILE,
    EXIT_FILE,
    NODES_DIR,  # noqa: F401  (re-exported, as SIM_OUT_DIR)
    REASON_FILE,
    RUN_FILE,
    SIM_OUT_DIR,  # noqa: F401  (re-exported: a run directory's readers import it from here)
    STARTED_FILE,
    STDERR_FILE,
    WARNING_FILE,
)

#: the folder of the run directories in a search directory
RUNS_DIR = "runs"
#: the longest reason text taken from a REASON_FILE
MAX_REASON_CHARS = 300

#: what PyTorch/CUDA print when a run runs out of GPU memory
OOM_MARKERS = (b"CUDA out of memory", b"CUDA error: out of memory")
#: how much of the end of ``stderr.log`` is read for its reason and its out-of-memory word
STDERR_TAIL_BYTES = 1 << 16

#: the last line of a Python traceback: ``ValueError: lr must be positive``,
#: ``torch.OutOfMemoryError: CUDA out of memory. ...``, ``KeyboardInterrupt``
_EXCEPTION_LINE = re.compile(r"(?:\[[^\]]*\]:?\s*)*"  # [rank0]: as torchrun prefixes it
                             r"(?:[A-Za-z_]\w*\.)*[A-Z]\w*"
                             r"(?:Error|Exception|Interrupt|Exit|Failure)(?::\s.*)?")
#: what the kernel, a shell or a library says when memory ran out or a process was killed
_FATAL_WORDS = re.compile(r"\bKilled\b|out of memory", re.IGNORECASE)
#: a line of a traceback that names no error: its header, a frame, a frame's code or marker
_FRAME_LINE = re.compile(r"\s|Traceback \(most recent call last\)")
#: terminal escape sequences (colours, cursor moves): dropped from a reason
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
#: the control characters left after that: shown as escapes
#: control characters a terminal would act on: all but newline and tab
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class StartRecord:
    """What ``started_at`` says: which launch started, as which job, where, when."""

    launch: str
    job: str
    host: str
    cuda_visible_devices: str
    started_at: float
    cpus: str = ""


@dataclass(frozen=True)
class ExitRecord:
    """What ``exit_code`` (and ``started_at``) say about an ended command; ``signal``: the
    signal the wrapper got while the command ran (``TERM``, ``INT``, ``HUP``), else None."""

    exit_code: int
    launch: str
    ended_at: float
    started_at: float | None
    signal: str | None = None

    @property
    def signalled(self) -> bool:
        """Died of a signal, or ended after the wrapper was signalled: the scheduler may
        have a word on why."""
        return self.exit_code > 128 or self.signal is not None

    @property
    def wall_time(self) -> float | None:
        return None if self.started_at is None else max(0.0, self.ended_at - self.started_at)


def link_whole(path: Path, text: str, draft: Path) -> int | None:
    """Create ``path`` holding ``text`` unless it exists: written whole to ``draft`` (a name
    of the caller's own, fsync'd), then ``link``\\ ed to ``path``. Returns the new file's
    inode, or None when ``path`` exists (someone else won). Atomic on local filesystems and
    on NFS, where a link whose reply got lost is recognised by the draft's link count of 2.
    The draft is removed either way. Raises OSError for any other failure."""
    with open(draft, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    try:
        try:
            os.link(draft, path)
        except FileExistsError:
            return None
        except OSError:  # NFS: the link may have been made although the reply got lost
            if os.stat(draft).st_nlink != 2:
                raise
        return os.stat(draft).st_ino
    finally:
        os.unlink(draft)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_small(tmp, text)
    os.replace(tmp, path)


def write_small(path: Path | str, text: str) -> None:
    """``text`` (UTF-8) as the whole file, in one open, write and close, as the job wrapper
    writes ``started_at`` and ``exit_code``: their readers take a file only once it ends
    with a newline, so these need no temporary file and rename (a served search writes
    them by the thousand, from threads that share the interpreter with its server)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        data = text.encode()
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def command_text(argv: Iterable[str], cwd: Path, env: Mapping[str, str]) -> str:
    """``command.sh``: the run's command as a shell script a user can run by hand."""
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
    return f"#!/bin/sh\n{exports}cd {shlex.quote(str(cwd))} && exec {shlex.join(argv)}\n"


def write_run_record(run_dir: Path, record: dict[str, Any], argv: Iterable[str], cwd: Path,
                     env: Mapping[str, str], command: bool = True) -> None:
    """Create the record directory with ``run.json`` and (``command``) ``command.sh``
    (before a launch)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_small(run_dir / RUN_FILE, json.dumps(record) + "\n")
    if command:
        write_command(run_dir, argv, cwd, env)


def write_command(run_dir: Path, argv: Iterable[str], cwd: Path, env: Mapping[str, str]) -> None:
    """``command.sh``, e.g. again once the backend chose the run's GPU."""
    write_small(run_dir / COMMAND_FILE, command_text(argv, cwd, env))


def read_run_record(run_dir: Path) -> dict[str, Any] | None:
    """The ``run.json`` of a run directory, or None if it is missing or torn."""
    try:
        with open(run_dir / RUN_FILE) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _read_complete(path: Path, limit: int = 1 << 16) -> tuple[str, float] | None:
    """The text of a file the wrapper finished writing (its first ``limit`` bytes: these
    files are a line or a few), with its mtime; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        mtime = os.fstat(fd).st_mtime
        text = os.read(fd, limit).decode()
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
    return (text, mtime) if text.endswith("\n") else None


def read_start(run_dir: Path) -> StartRecord | None:
    """Parse ``started_at`` (``key=value`` lines, see the module docstring)."""
    got = _read_complete(run_dir / STARTED_FILE)
    if got is None:
        return None
    text, mtime = got
    fields = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
    if "launch" not in fields:
        return None
    return StartRecord(fields["launch"], fields.get("job", ""), fields.get("host", ""),
                       fields.get("cuda_visible_devices", ""), mtime, fields.get("cpus", ""))


def split_launch(key: str) -> tuple[str, int]:
    """``"k3f9a1c2"`` -> ``("k3f9a1c2", 0)``; ``"k3f9a1c2.2"`` (the launch's job started a
    third time by its scheduler) -> ``("k3f9a1c2", 2)``."""
    base, dot, restart = key.rpartition(".")
    return (base, int(restart)) if dot and restart.isdigit() else (key, 0)


def read_exit(run_dir: Path, launch: str | None = None,
              start: StartRecord | None = None) -> ExitRecord | None:
    """Parse ``exit_code`` (``"<status> <launch key>[ <signal>]\\n"``); None when absent,
    partial, unreadable, or (given ``launch``) written by another launch than ``launch``.
    ``start``: the ``started_at`` already read (else it is read here)."""
    got = _read_complete(run_dir / EXIT_FILE)
    if got is None:
        return None
    text, mtime = got
    fields = text.split()
    try:
        exit_code = int(fields[0])
    except (ValueError, IndexError):
        return None
    key = fields[1] if len(fields) > 1 else ""
    if launch is not None and key != launch:
        return None
    start = start or read_start(run_dir)
    started = start.started_at if start is not None and start.launch == key else None
    return ExitRecord(exit_code, key, mtime, started, fields[2] if len(fields) > 2 else None)


def write_start(run_dir: Path, launch: str, job: str, host: str) -> StartRecord:
    """``started_at`` as the wrapper writes it, for a run that is not a process (a point
    handed out over HTTP by ``hpsearch serve``); the file's mtime is the start. Returns
    what :func:`read_start` would read (the clock's time for the mtime)."""
    write_small(run_dir / STARTED_FILE,
                f"launch={launch}\njob={job}\nhost={host}\ncuda_visible_devices=\n")
    return StartRecord(launch, job, host, "", time.time())


def write_exit(run_dir: Path, exit_code: int, launch: str) -> None:
    """``exit_code`` as the wrapper writes it (see :func:`write_start`)."""
    write_small(run_dir / EXIT_FILE, f"{exit_code} {launch}\n")


def retire_attempt(run_dir: Path, also: Iterable[Path] = ()) -> Path | None:
    """Move the files of the run's last start (and ``also``) to ``attempts/<n>/``.

    ``n`` counts the starts moved so far (1, 2, ...). Returns the folder, or None when
    there was nothing to move. Safe to repeat after a crash halfway.
    """
    try:
        with os.scandir(run_dir) as entries:  # one call, not a stat for each file
            names = {entry.name for entry in entries}
    except FileNotFoundError:
        return None
    present = [run_dir / name for name in ATTEMPT_FILES if name in names]
    if not present:
        return None
    present += [path for path in also if path.exists()]
    attempts = run_dir / ATTEMPTS_DIR
    attempts.mkdir(exist_ok=True)
    n = 1 + sum(1 for entry in os.scandir(attempts) if entry.name.isdigit())
    target = attempts / str(n)
    target.mkdir()
    for path in present:
        os.replace(path, target / path.name)
    return target


def read_reason(run_dir: Path) -> str | None:
    """The first line of the attempt's ``reason`` file (at most MAX_REASON_CHARS, see
    :func:`clean_reason`), or None."""
    try:
        with open(run_dir / REASON_FILE, errors="replace") as f:
            line = f.readline(MAX_REASON_CHARS)
    except OSError:
        return None
    return clean_reason(line) or None


def clean_reason(text: str) -> str:
    """``text`` as one line fit for a results cell: terminal escape sequences dropped,
    whitespace runs made one space, other control characters written as escapes (ESC ->
    ``\\x1b``), at most MAX_REASON_CHARS characters."""
    return printable(" ".join(_ESCAPE_SEQUENCE.sub("", text).split()))[:MAX_REASON_CHARS]


def printable(text: str) -> str:
    """``text`` with every control character but newline and tab written as an escape
    (ESC -> ``\\x1b``): what a run said reaches the terminal or a table as text, never as a
    command (a colour, a cleared screen, a moved cursor, a changed window title)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def read_stderr_tail(run_dir: Path) -> bytes:
    """The last STDERR_TAIL_BYTES of the attempt's ``stderr.log`` (empty when unreadable)."""
    try:
        with open(run_dir / STDERR_FILE, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - STDERR_TAIL_BYTES))
            return f.read()
    except OSError:
        return b""


def stderr_reason(tail: bytes) -> str | None:
    """The line of a stderr tail that says why the command failed: the last Python
    exception line (``ValueError: lr must be positive``, the end of a traceback), ``Killed``
    or an out-of-memory line, else the last line that is no traceback frame; cleaned
    (:func:`clean_reason`). None when stderr said nothing."""
    last = None
    for raw in reversed(tail.decode(errors="replace").splitlines()):
        line = "" if _FRAME_LINE.match(raw) else clean_reason(raw)
        if _EXCEPTION_LINE.fullmatch(line) or _FATAL_WORDS.search(line):
            return line
        last = last or line or None
    return last


def tail_lines(path: Path, count: int, max_bytes: int = 16384) -> list[str]:
    """The last ``count`` non-empty lines of a text file (read from its last ``max_bytes``)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            data = f.read()
    except OSError:
        return []
    lines = [ln.rstrip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-count:]


def says_oom(tail: bytes) -> bool:
    """Whether a stderr tail (:func:`read_stderr_tail`) reports CUDA out of memory."""
    return any(marker in tail for marker in OOM_MARKERS)


def stderr_says_oom(run_dir: Path) -> bool:
    """True when the end of ``stderr.log`` reports CUDA out of memory."""
    return says_oom(read_stderr_tail(run_dir))


def note_warning(run_dir: Path, launch: str) -> None:
    """``walltime_warning`` for the attempt of ``launch`` (the packed worker's note; the job
    scripts write the same line with ``printf``)."""
    write_small(run_dir / WARNING_FILE, f"{launch}\n")


def was_warned(run_dir: Path, launch: str) -> bool:
    """Whether the time-limit warning reached the attempt of ``launch`` (or of a restart of
    its job: ``walltime_warning`` names the launch as the job script knew it)."""
    got = _read_complete(run_dir / WARNING_FILE)
    return got is not None and split_launch(got[0].strip())[0] == split_launch(launch)[0]
