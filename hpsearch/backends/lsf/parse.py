"""Pure parsers of what IBM Spectrum LSF's commands print (bsub, bjobs, bparams).

Each function's docstring shows the exact text it reads; the tests feed them the texts quoted
from IBM's documentation (``tests/data/lsf/``). Nothing here runs a command.
"""

from __future__ import annotations

import re
from typing import NamedTuple

#: ``bjobs -o`` fields asked for, in this order; a delimiter because EXIT_REASON may hold spaces.
BJOBS_FIELDS = ("jobid", "jobindex", "stat", "exit_code", "exit_reason")
BJOBS_DELIMITER = "|"
BJOBS_FORMAT = " ".join(BJOBS_FIELDS) + f" delimiter='{BJOBS_DELIMITER}'"

#: LSF job states (``bjobs`` STAT column) by what they mean for a run.
PENDING_STATES = frozenset({"PEND", "PSUSP"})
FINISHED_STATES = frozenset({"DONE", "EXIT"})

#: how :func:`classify_exit` names an element the run limit (``-W``) ended
TIMEOUT_STATES = frozenset({"TERM_RUNLIMIT"})
#: ... and one preemption ended ("TERM_PREEMPT: Job killed after preemption")
PREEMPTED_STATES = frozenset({"TERM_PREEMPT"})
#: ends of a packed worker element that leave its unfinished runs blameless: killed by its
#: owner or an administrator (bkill), "TERM_ZOMBIE: Job exited while LSF is not available"
#: (its host crashed), or it ended by itself (``DONE``) with runs it claimed but never started
LOST_STATES = frozenset({"killed", "TERM_ZOMBIE", "DONE"})

DEFAULT_MAX_JOB_ARRAY_SIZE = 1000

_SUBMITTED = re.compile(r"Job <(\d+)> is submitted to (?:default )?queue")
_MAX_ARRAY = re.compile(r"^\s*MAX_JOB_ARRAY_SIZE\s*=\s*(\d+)\s*$", re.MULTILINE)
#: stderr lines of bjobs/bkill that only say a job is unknown or over: not a failure
_BENIGN = re.compile(r"is not found|^No (unfinished )?job found|No matching job found"
                     r"|Job has already finished")
#: words of bsub's answers when the cluster is busy or its daemons are down: worth a retry
_BUSY = re.compile(r"threshold|not responding|LSF is down|try again|timed? ?out",
                   re.IGNORECASE)


class BjobsRow(NamedTuple):
    """One job or array element as ``bjobs -o`` shows it (``-`` becomes None)."""

    stat: str
    exit_code: int | None
    exit_reason: str | None


def parse_bsub_job_id(text: str) -> str:
    """The job id from bsub's answer.

    Reads ``Job <1234> is submitted to queue <normal>.`` or
    ``Job <1234> is submitted to default queue <normal>.`` (other lines, e.g. site
    esub messages, may surround it). Raises ValueError when no such line is there.
    """
    match = _SUBMITTED.search(text)
    if match is None:
        raise ValueError(f"no job id in bsub's answer: {text.strip()!r}")
    return match.group(1)


def _dash(value: str) -> str | None:
    value = value.strip()
    return None if value in ("", "-") else value


def parse_bjobs(text: str, delimiter: str | None = BJOBS_DELIMITER) -> dict[str, BjobsRow]:
    """Rows of ``bjobs -a -noheader -o "jobid jobindex stat exit_code exit_reason delimiter='|'"``.

    Reads lines such as::

        1234|0|DONE|-|-
        1235|3|EXIT|3|-
        1235|4|EXIT|140|TERM_RUNLIMIT
        1236|1|PEND|-|-

    JOBID and JOBINDEX become the key: ``"1234"`` for a plain job (index 0), ``"1235[3]"``
    for an array element. ``-`` (LSF's empty field) becomes None. With ``delimiter=None`` the
    columns are split on blanks and EXIT_REASON takes the rest of the line. Lines that are not
    rows (``No unfinished job found``, ``Job <99> is not found``) are skipped.
    """
    rows: dict[str, BjobsRow] = {}
    for line in text.splitlines():
        parts = (line.split(delimiter, 4) if delimiter is not None
                 else line.split(None, 4))
        if len(parts) < 3:
            continue
        job_id, index, stat = (p.strip() for p in parts[:3])
        if not job_id.isdigit() or not index.isdigit() or not stat.isalpha():
            continue
        code = _dash(parts[3]) if len(parts) > 3 else None
        reason = _dash(parts[4]) if len(parts) > 4 else None
        key = job_id if index == "0" else f"{job_id}[{index}]"
        rows[key] = BjobsRow(stat, int(code) if code and code.lstrip("-").isdigit() else None,
                             reason)
    return rows


def scheduler_errors(stderr: str) -> list[str]:
    """The stderr lines of ``bjobs`` / ``bkill`` that report a real failure.

    Lines that only say a job is unknown or already over are left out::

        Job <123> is not found
        No unfinished job found
        Job <1234[3]>: No matching job found
        Job <1234>: Job has already finished
    """
    return [line.strip() for line in stderr.splitlines()
            if line.strip() and not _BENIGN.search(line)]


def bsub_retryable(stderr: str) -> bool:
    """Whether bsub's refusal is a passing one (busy or restarting cluster), e.g.::

        Pending job threshold reached. Retrying in 60 seconds...
        LSF is down; Please wait...
        batch system daemon not responding ... still trying

    Anything else (a bad option, an index above MAX_JOB_ARRAY_SIZE) is not retried.
    """
    return bool(_BUSY.search(stderr))


def parse_max_job_array_size(text: str) -> int:
    """MAX_JOB_ARRAY_SIZE from ``bparams -a``; 1000 (LSF's default) when it is not shown.

    Reads the parameter line of the ``bparams -a`` listing::

            MAX_JOB_ARRAY_SIZE = 1000
    """
    match = _MAX_ARRAY.search(text)
    return int(match.group(1)) if match else DEFAULT_MAX_JOB_ARRAY_SIZE


def classify_exit(row: BjobsRow) -> str | None:
    """Why an element ended, for the results table; None unless its STAT is EXIT.

    ``TERM_RUNLIMIT`` / ``TERM_MEMLIMIT`` (killed at the ``-W`` / ``-M`` limit), ``killed``
    (``TERM_OWNER``, ``TERM_ADMIN``, ``TERM_FORCE_*``: bkill by the user or an admin),
    ``TERM_<other>`` as LSF names it, else ``exit status <code>`` from EXIT_CODE, worded as
    the driver words an exit file (``exit status unknown`` when LSF shows none).
    """
    if row.stat != "EXIT":
        return None
    reason = (row.exit_reason or "").upper()
    if "RUNLIMIT" in reason or "RUN TIME LIMIT" in reason:
        return "TERM_RUNLIMIT"
    if "MEMLIMIT" in reason or "MEMORY USAGE LIMIT" in reason:
        return "TERM_MEMLIMIT"
    if re.search(r"TERM_(FORCE_)?(OWNER|ADMIN)|KILLED BY (OWNER|ROOT|LSF ADMIN)", reason):
        return "killed"
    term = re.search(r"TERM_[A-Z_]+", reason)
    if term:
        return term.group(0)
    return (f"exit status {row.exit_code}" if row.exit_code is not None
            else "exit status unknown")


def gpu_count(requirement: str) -> int:
    """GPUs a ``-gpu`` requirement asks for: ``"num=2:mode=shared"`` -> 2; one without
    ``num`` (``"-"``: LSF's default, ``"mode=exclusive_process"``) -> 1."""
    for part in requirement.split(":"):
        key, _, value = part.partition("=")
        if key.strip() == "num" and value.strip().isdigit():
            return int(value)
    return 1


def rusage_gpus(requirement: str) -> int:
    """GPUs an ``-R`` resource requirement reserves: ``"rusage[mem=8000, ngpus_excl_p=1]"``
    -> 1 (``ngpus``, ``ngpus_shared``, ``ngpus_excl_t``, ``ngpus_excl_p``); none named -> 0."""
    match = re.search(r"\bngpus(?:_shared|_excl_[tp])?\s*=\s*(\d+)", requirement)
    return int(match.group(1)) if match else 0
