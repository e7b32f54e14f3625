"""Pure parsers of what PBS's commands print: OpenPBS / PBS Professional and Torque.

Each function's docstring shows the exact text it reads; the tests feed them those texts
(``tests/test_pbs_parse.py``). Nothing here runs a command. A job is read as a flat record
of its attributes, nested names joined with a dot (``resources_used.walltime``), whichever
of the two layouts it came in: OpenPBS's ``qstat -f -F json`` or Torque's ``qstat -f`` text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from hpsearch.backends.accounting import hours

Record = dict[str, str]

#: PBS job states (``job_state``) of a job waiting to start: queued, held, waiting for its
#: start time, in transit between servers
PENDING_STATES = frozenset({"Q", "H", "W", "T"})
#: how :func:`job_state` names a job that ended: the time limit, a signal (qdel), its own
#: exit status (``exit status N``), or success (``F``)
TIMEOUT_STATES = frozenset({"walltime exceeded"})
KILLED = "killed"
FINISHED = "F"
#: ends of a packed worker's job that leave its unfinished runs blameless: qdel, or it
#: ended by itself with runs it claimed but never started
LOST_STATES = frozenset({KILLED, FINISHED})
#: OpenPBS's ``max_array_size`` default (server attribute)
DEFAULT_MAX_ARRAY_SIZE = 10000
#: the states of a job that is over: OpenPBS ``F`` (finished, with job history) and ``X``
#: (a finished subjob), Torque ``C`` (completed)
_OVER = frozenset({"F", "X", "C"})
_JOB_ID = re.compile(r"^(\d+(?:\[\d*\])?)(?:\.\S+)?$")
#: stderr lines of qstat/qdel/qsig that only say a job is unknown or over: not a failure
_BENIGN = re.compile(r"Unknown Job Id|Job has finished|has finished, use -x|"
                     r"Request invalid for state of job|job already finished", re.IGNORECASE)
#: words of qsub's answers when the server is busy or down: worth a retry
_BUSY = re.compile(r"cannot connect to server|Connection refused|timed? ?out|"
                   r"Maximum number of jobs already in queue|would exceed .*limit|"
                   r"try again", re.IGNORECASE)


def short_id(job_id: str) -> str:
    """A job id without its server: ``"1234[7].pbs01.example"`` -> ``"1234[7]"``, ``"1234.pbs"``
    -> ``"1234"``; the same job whatever host name a command appends."""
    match = _JOB_ID.match(job_id.strip())
    return match.group(1) if match else job_id.strip()


def parse_qsub_job_id(text: str) -> str:
    """The job id qsub prints on success: its last line, e.g. (an array, then a plain job)::

        1234[].pbs01
        1235.pbs01

    Raises ValueError when that line is no job id.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or not _JOB_ID.match(lines[-1]):
        raise ValueError(f"no job id in qsub's answer: {text.strip()!r}")
    return lines[-1]


def _flatten(attrs: Mapping[str, Any], prefix: str = "") -> Record:
    flat: Record = {}
    for key, value in attrs.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def parse_qstat_json(text: str) -> dict[str, Record]:
    """Jobs of OpenPBS's ``qstat -f -F json -t -x <ids>``, by :func:`short_id`; reads::

        {
            "timestamp":1700000000,
            "pbs_version":"23.06.06",
            "pbs_server":"pbs01",
            "Jobs":{
                "1234[].pbs01":{
                    "Job_Name":"hps-out-k1",
                    "job_state":"B",
                    "array":"True",
                    "array_indices_submitted":"1-3",
                    "array_indices_remaining":"3"
                },
                "1234[1].pbs01":{
                    "job_state":"X",
                    "Exit_status":0,
                    "resources_used":{"ncpus":1, "walltime":"00:00:05"},
                    "Resource_List":{"ngpus":1, "walltime":"01:00:00"}
                }
            }
        }

    Nested attributes are flattened (``resources_used.walltime``). No ``Jobs`` (qstat found
    none) reads as no job; text that is not JSON raises ValueError.
    """
    data = json.loads(text) if text.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("qstat -F json answered no JSON object")
    jobs = data.get("Jobs") or {}
    return {short_id(job_id): _flatten(attrs) for job_id, attrs in jobs.items()
            if isinstance(attrs, Mapping)}


def parse_attribute_blocks(text: str, header: str = "Job Id") -> dict[str, Record]:
    """Blocks of ``qstat -f`` text (Torque's ``qstat -f -t``, or ``qstat -B -f`` with
    ``header="Server"``), by :func:`short_id` of the header's value; reads::

        Job Id: 1234[1].torque01
            Job_Name = hps-out-k1-1
            job_state = C
            exit_status = 0
            resources_used.walltime = 00:00:05
            Resource_List.nodes = 1:ppn=1:gpus=1
            Resource_List.walltime = 01:00:00

    A line starting with a tab continues the value above it (qstat wraps long values).
    """
    blocks: dict[str, Record] = {}
    current: Record | None = None
    last = ""
    for line in text.splitlines():
        if line.startswith(f"{header}:"):
            current = blocks.setdefault(short_id(line.split(":", 1)[1]), {})
            last = ""
        elif current is not None and line.startswith("\t") and last:
            current[last] += line.strip()
        elif current is not None and " = " in line:
            key, _, value = line.strip().partition(" = ")
            current[key.strip()] = value.strip()
            last = key.strip()
    return blocks


def seconds(duration: str) -> int | None:
    """A PBS duration in seconds: ``"12:00:00"``, ``"05:30"``, ``"90"`` -> 43200, 330, 90;
    None when it is no duration."""
    parts = duration.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    total = 0
    for part in parts:
        total = total * 60 + int(part)
    return total


def exit_status(record: Record) -> int | None:
    """The job's exit status: OpenPBS's ``Exit_status``, Torque's ``exit_status``."""
    value = record.get("Exit_status", record.get("exit_status", "")).strip()
    return int(value) if re.fullmatch(r"-?\d+", value) else None


def job_state(record: Record) -> str:
    """How the backend names the state of a job or subjob.

    A job not over keeps its ``job_state`` (``Q``, ``R``, ``B``: an array that began...).
    One over (``F``, ``X``, Torque ``C``) is named by how it ended: ``walltime exceeded`` when
    it did not exit 0 and ``resources_used.walltime`` reached ``Resource_List.walltime`` (the
    server's kill at the limit), ``killed`` when its exit status is over 256 (PBS reports a
    job ended by a signal as 256 + the signal: qdel's SIGTERM or SIGKILL), ``F`` for 0,
    else ``exit status N`` (a negative N is PBS's own failure to run it), worded as the
    driver words an exit file (``exit status unknown`` when PBS shows none).
    """
    state = record.get("job_state", "").strip()
    if state not in _OVER:
        return state
    code = exit_status(record)
    used = seconds(record.get("resources_used.walltime", ""))
    limit = seconds(record.get("Resource_List.walltime", ""))
    if code != 0 and used is not None and limit and used >= limit:
        return "walltime exceeded"
    if code is None:
        return "exit status unknown"
    if code > 256:
        return KILLED
    return FINISHED if code == 0 else f"exit status {code}"


def is_over(state: str) -> bool:
    """Whether a state :func:`job_state` gave is one of a job that never runs again."""
    return state in (FINISHED, KILLED, "exit status unknown") or state in TIMEOUT_STATES \
        or state.startswith("exit status ")


def array_state(records: Mapping[str, Record], array: str) -> str | None:
    """The state of array ``array`` (short id ``"1234[]"``) as :func:`job_state` names it:
    its own record's, else (Torque's ``qstat -t`` may list the subjobs only) ``R`` while a
    subjob is not over and ``F`` once all are; None when qstat showed none of it."""
    if array in records or not array.endswith("[]"):
        return job_state(records[array]) if array in records else None
    prefix = array[:-1]
    states = [job_state(r) for key, r in records.items() if key.startswith(prefix)]
    if not states:
        return None
    return FINISHED if all(is_over(s) for s in states) else "R"


def _count(text: str, key: str) -> int | None:
    match = re.search(rf"\b{key}=(\d+)", text)
    return int(match.group(1)) if match else None


def usage(record: Record) -> dict[str, float] | None:
    """``{"gpu_hours", "cpu_hours"}`` of a job that ran, from ``resources_used.walltime``
    times its GPUs (``Resource_List.ngpus``; Torque: ``gpus=`` of ``Resource_List.nodes``,
    e.g. ``1:ppn=4:gpus=2``) and CPUs (``resources_used.ncpus``, ``Resource_List.ncpus``,
    or ``ppn=``); None when it has no ``resources_used.walltime``, or one of 0 (PBS counts
    whole seconds: the run's own measure of a job under a second is finer)."""
    used = seconds(record.get("resources_used.walltime", ""))
    if not used:
        return None
    nodes = record.get("Resource_List.nodes", "")
    gpus = record.get("Resource_List.ngpus", "")
    cpus = record.get("resources_used.ncpus", record.get("Resource_List.ncpus", ""))
    gpu_count = int(gpus) if gpus.isdigit() else (_count(nodes, "gpus") or 0)
    cpu_count = int(cpus) if cpus.isdigit() else (_count(nodes, "ppn") or 1)
    elapsed = used / 3600
    return hours(elapsed * gpu_count, elapsed * cpu_count)


def max_array_size(servers: Mapping[str, Record]) -> int:
    """The server's largest array: ``max_array_size`` (OpenPBS) or ``max_job_array_size``
    (Torque) of ``qstat -B -f`` (:func:`parse_attribute_blocks` with ``header="Server"``) or
    of ``qstat -B -f -F json`` (its ``Server`` object), e.g.::

        Server: pbs01
            server_state = Active
            max_array_size = 10000

    10000 (OpenPBS's default) when no server shows one.
    """
    for record in servers.values():
        for key in ("max_array_size", "max_job_array_size"):
            if record.get(key, "").isdigit():
                return max(1, int(record[key]))
    return DEFAULT_MAX_ARRAY_SIZE


def parse_server_json(text: str) -> dict[str, Record]:
    """Servers of ``qstat -B -f -F json``: ``{"Server": {"pbs01": {"max_array_size": 10000,
    ...}}}``, flattened as :func:`parse_qstat_json` flattens jobs."""
    data = json.loads(text) if text.strip() else {}
    servers = data.get("Server") or {} if isinstance(data, dict) else {}
    return {name: _flatten(attrs) for name, attrs in servers.items()
            if isinstance(attrs, Mapping)}


def scheduler_errors(stderr: str) -> list[str]:
    """The stderr lines of qstat / qdel / qsig that report a real failure; those that only
    say a job is unknown or over are left out::

        qstat: Unknown Job Id 1234[].pbs01
        qdel: Job has finished 1235.pbs01
        qstat: 1236.pbs01 Job has finished, use -x or -H to obtain historical job information
        qsig: Request invalid for state of job 1237[2].pbs01
    """
    return [line.strip() for line in stderr.splitlines()
            if line.strip() and not _BENIGN.search(line)]


def qsub_retryable(stderr: str) -> bool:
    """Whether qsub's refusal is a passing one (the server is busy, down, or at a queue
    limit), e.g.::

        qsub: cannot connect to server pbs01 (errno=111)
        qsub: Maximum number of jobs already in queue
        qsub: would exceed queue generic's per-user limit of jobs in 'Q' state

    Anything else (an unknown resource, a bad option) is not retried.
    """
    return bool(_BUSY.search(stderr))
