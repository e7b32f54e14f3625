"""Pure parsers of what Grid Engine's commands print (qsub, qstat -xml, qacct -j, qconf).

Each function's docstring shows the exact text it reads; the tests feed them text captured
from Debian 12's gridengine 8.1.9 (``tests/data/sge/``). Nothing here runs a command.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import NamedTuple

from hpsearch.backends.accounting import hours

#: qstat's state letters of a job waiting to start: ``qw``, held ``hqw``, rescheduled ``Rq``
#: (a requeued job), ``w`` alone; a job in error (:data:`ERROR_STATES`) is none of them
QUEUED_STATES = frozenset({"qw", "hqw", "Rq", "hRwq", "Rqw", "hRqw", "w"})
#: qstat's states of a job in error (qstat(1): ``Eqw``, ``Ehqw``, ``EhRqw``): it waits for an
#: administrator and never starts by itself
ERROR_STATES = frozenset({"Eqw", "Ehqw", "EhRqw"})
#: how :func:`classify_qacct` names an end the time limit (``h_rt``) caused
TIMEOUT_STATES = frozenset({"TIMEOUT"})
#: ... a job deleted by its owner or an administrator (``qdel``)
KILLED = "killed"
#: ... a job that ended by itself with exit status 0
DONE = "DONE"
#: ends of a packed worker job that leave its unfinished runs blameless: deleted, or it
#: ended by itself with runs it claimed but never started
LOST_STATES = frozenset({KILLED, DONE})

#: Grid Engine's defaults, used when ``qconf -sconf`` does not answer
DEFAULT_MAX_AJ_TASKS = 75000
#: seconds between the qmaster's writes of its accounting file (``flush_time``)
DEFAULT_FLUSH_TIME = 15.0

#: qacct's ``failed`` codes of a job the time limit ended (sge_status.h: 37 "qmaster
#: enforced h_rt, h_cpu, or h_vmem limit", 24/25 the execd's own limits)
_LIMIT_CODES = frozenset({24, 25, 37})
#: ... of a job that was deleted (100 "assumedly after job" with exit status 137: SIGKILL)
_DELETED_CODE = 100

_TERSE = re.compile(r"^\s*(\d+)(?:\.\d+-\d+:\d+)?\s*$", re.MULTILINE)
_MAX_AJ = re.compile(r"^max_aj_tasks\s+(\d+)\s*$", re.MULTILINE)
#: ``reporting_params`` of ``qconf -sconf``, with its continuation lines (``\`` at a line's end)
_REPORTING = re.compile(r"^reporting_params\s+((?:.*\\\n)*.*)$", re.MULTILINE)
#: the GPU requests of a ``category``: ``-l gpu=1,h_rt=600``
_GPU_REQUEST = re.compile(r"(?:^|[\s,])gpu=(\d+)")
#: words of qsub's refusals that pass: the qmaster is busy, restarting, or over a job limit
_BUSY = re.compile(r"unable to contact qmaster|commlib error|failed receiving gdi request|"
                   r"try again|timed? ?out|are allowed per user|exceed", re.IGNORECASE)
#: lines of qdel and qalter that say a job was deleted, or is unknown or over: not a failure
_BENIGN = re.compile(r"does not exist|is already in deletion|has registered the job|"
                     r"has deleted job|modified task concurrency", re.IGNORECASE)


class QstatJob(NamedTuple):
    """One ``job_list`` entry of ``qstat -xml``: a job, or tasks of an array job."""

    number: str
    name: str
    state: str
    tasks: tuple[int, ...]  # () for a job that is no array


def parse_qsub_terse(text: str) -> str:
    """The job id from ``qsub -terse``'s answer: ``2.1-4:1`` (an array of tasks 1 to 4, step
    1) -> ``"2"``; ``11`` (a single job) -> ``"11"``. Raises ValueError when no such line is
    there (other lines, e.g. a site's JSV messages, may surround it)."""
    match = _TERSE.search(text)
    if match is None:
        raise ValueError(f"no job id in qsub's answer: {text.strip()!r}")
    return match.group(1)


def task_ids(text: str) -> tuple[int, ...]:
    """A qstat ``tasks`` field as task numbers: ``"3"`` -> (3,), ``"3,4"`` -> (3, 4),
    ``"5-9:2"`` -> (5, 7, 9), ``"1-3:1,7"`` -> (1, 2, 3, 7); empty -> ()."""
    ids: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        ids += range(int(first), int(last or first) + 1, int(step or 1))
    return tuple(ids)


def parse_qstat_xml(text: str) -> list[QstatJob]:
    """The jobs of ``qstat -xml``: running ones under ``queue_info``, waiting ones under
    ``job_info``, each a ``job_list`` such as::

        <job_list state="running">
          <JB_job_number>1</JB_job_number>
          <JB_name>hps-test</JB_name>
          <state>r</state>
          <tasks>2</tasks>
        </job_list>
        <job_list state="pending">
          <JB_job_number>1</JB_job_number>
          <JB_name>hps-test</JB_name>
          <state>qw</state>
          <tasks>3,4</tasks>
        </job_list>

    (a job that is no array has no ``tasks``). Raises ValueError for text that is no XML.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"qstat -xml printed no XML: {exc}") from None
    return [QstatJob((entry.findtext("JB_job_number") or "").strip(),
                     (entry.findtext("JB_name") or "").strip(),
                     (entry.findtext("state") or "").strip(),
                     task_ids(entry.findtext("tasks") or ""))
            for entry in root.iter("job_list")]


def task_states(jobs: list[QstatJob]) -> dict[str, str]:
    """``{"<job>.<task>": state}`` (``{"<job>": state}`` for a job that is no array) of
    :func:`parse_qstat_xml`'s jobs: ``1.3 -> "qw"``."""
    states: dict[str, str] = {}
    for job in jobs:
        if not job.tasks:
            states[job.number] = job.state
        for task in job.tasks:
            states[f"{job.number}.{task}"] = job.state
    return states


class QacctRecord(NamedTuple):
    """What ``qacct -j`` says of one ended job or task."""

    failed: int
    failed_text: str
    exit_status: int
    wallclock: float  # seconds
    slots: int
    category: str  # the job's requests, e.g. "-l gpu=1,h_rt=3600 -pe smp 4"


def _number(value: str) -> float:
    """The number a qacct value starts with: ``5s`` -> 5, ``137   (Killed)`` -> 137."""
    match = re.match(r"\d+(?:\.\d+)?", value)
    return float(match.group(0)) if match else 0.0


def parse_qacct(text: str) -> dict[str, QacctRecord]:
    """Records of ``qacct -j <job>``, keyed ``"<jobnumber>.<taskid>"`` (``"<jobnumber>"``
    when ``taskid`` is ``undefined``: no array). Each record follows a line of ``=``::

        ==============================================================
        qname        all.q
        jobname      hps-test
        jobnumber    1
        taskid       1
        slots        1
        failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit
        exit_status  137                  (Killed)
        ru_wallclock 5s
        category     -l h_rt=3

    (``ru_wallclock`` is ``5`` in older releases, ``5s`` in 8.1.9; ``taskid`` is
    ``undefined`` for a job that is no array). ``qacct`` lists every
    start of a task that was started again; the last one wins.
    """
    records: dict[str, QacctRecord] = {}
    for block in re.split(r"^=+\s*$", text, flags=re.MULTILINE):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                fields[key] = value.strip()
        number = fields.get("jobnumber", "")
        if not number.isdigit():
            continue
        task = fields.get("taskid", "undefined")
        failed, _, failed_text = fields.get("failed", "0").partition(":")
        key = number if not task.isdigit() else f"{number}.{task}"
        records[key] = QacctRecord(
            int(_number(failed)), failed_text.strip(),
            int(_number(fields.get("exit_status", "0"))),
            _number(fields.get("ru_wallclock", "0")),
            int(_number(fields.get("slots", "1"))) or 1, fields.get("category", "NONE"))
    return records


def qacct_usage(record: QacctRecord) -> dict[str, float]:
    """``{"gpu_hours", "cpu_hours"}`` of an ended job or task: its ``ru_wallclock`` times the
    ``gpu=N`` its ``category`` asked for (what ``--sge_gpus`` asks: a consumable per job) and
    times its ``slots``::

        slots        2
        ru_wallclock 3600s
        category     -l gpu=1,h_rt=7200,h_vmem=500M -pe smp 2
        -> {"gpu_hours": 1.0, "cpu_hours": 2.0}
    """
    gpus = sum(int(m.group(1)) for m in _GPU_REQUEST.finditer(record.category))
    return hours(record.wallclock * gpus / 3600, record.wallclock * record.slots / 3600)


def classify_qacct(record: QacctRecord) -> str:
    """Why a job ended, for the results table: ``TIMEOUT`` (``failed`` 37: the ``h_rt``
    limit), ``killed`` (``failed`` 100 with exit status 137: qdel's SIGKILL), ``failed <code>:
    <text>`` for another ``failed`` code (the job never ran, or its prolog failed), else
    ``DONE``: the job script ended by itself, with its run's exit status (which the run's exit
    file tells; a run that died of a signal is no scheduler's doing then)."""
    if record.failed in _LIMIT_CODES:
        return "TIMEOUT"
    if record.failed == _DELETED_CODE and record.exit_status > 128:
        return KILLED
    if record.failed:
        return f"failed {record.failed}: {record.failed_text}".strip()
    return DONE


def parse_max_aj_tasks(text: str) -> int:
    """``max_aj_tasks`` of ``qconf -sconf`` (the most tasks of one array job); 75000 (Grid
    Engine's default) when it is not shown, 0 (no limit) as that default too::

        max_aj_instances             2000
        max_aj_tasks                 75000
    """
    match = _MAX_AJ.search(text)
    size = int(match.group(1)) if match else 0
    return size or DEFAULT_MAX_AJ_TASKS


def parse_reporting(text: str) -> tuple[bool, float]:
    """(whether the qmaster writes the accounting file qacct reads, how often it writes it:
    ``flush_time`` in seconds) from ``qconf -sconf``'s ``reporting_params``; Grid Engine's
    defaults (accounting, every 15 s) where the line is not shown::

        reporting_params             accounting=true reporting=false \\
                                     flush_time=00:00:01 joblog=false sharelog=00:00:00
    """
    match = _REPORTING.search(text)
    params = dict(word.partition("=")[::2] for word in
                  (match.group(1).replace("\\", " ").split() if match else []))
    flush = [int(p) for p in params.get("flush_time", "").split(":") if p.isdigit()]
    seconds = float(flush[0] * 3600 + flush[1] * 60 + flush[2]) if len(flush) == 3 \
        else DEFAULT_FLUSH_TIME
    return params.get("accounting", "true").lower() in ("true", "1"), seconds


def error_lines(text: str) -> list[str]:
    """The lines of qstat, qdel or qalter (both streams: qdel says all on stdout) that report
    a real failure; those that say a job was deleted, or is unknown or already over, are left
    out (qdel exits 1 when any job was unknown)::

        root has registered the job-array task 20.1 for deletion
        denied: job "99999" does not exist
        job "20" task "1" does not exist
        job 19 is already in deletion
    """
    return [line.strip() for line in text.splitlines()
            if line.strip() and not _BENIGN.search(line)]


def qsub_error(stderr: str) -> str:
    """The line of qsub's refusal that says why, without its ``Exiting.``::

        Unable to run job: unknown resource "nosuch"
        Exiting.
    """
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and ln.strip() != "Exiting."]
    return lines[0] if lines else "no answer"


def qsub_unclear(stderr: str) -> bool:
    """Whether qsub failed without knowing if the qmaster queued the job::

        Unable to run job: Error reading answer list from qmaster
    """
    return "error reading answer list" in stderr.lower()


def qsub_retryable(stderr: str) -> bool:
    """Whether qsub's refusal passes: the qmaster did not answer or is over a job limit::

        error: commlib error: got select error (Connection refused)
        unable to contact qmaster using port 6444 on host "localhost"
        Unable to run job: job rejected: Only 100 jobs are allowed per user (current job count: 100)

    Anything else (an unknown resource or queue, a bad option) is not retried.
    """
    return bool(_BUSY.search(stderr))
