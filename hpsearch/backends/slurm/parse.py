"""Pure functions that read what Slurm's commands print (no subprocesses here).

Every function shows the exact text it reads; ``tests/data/slurm/`` holds that text as the
real tools (Slurm 22.05) printed it, and ``tests/test_slurm_parse.py`` reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hpsearch.backends.accounting import hours

#: the ``squeue`` output format this module reads: job id (``1234_7`` for an array task,
#: with ``--array``), state, reason, separated by ``|``
SQUEUE_FORMAT = "%i|%T|%r"

#: job states after which a job never runs again
FINAL_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT", "SPECIAL_EXIT", "REVOKED",
})

#: job states of a job waiting to start (it cannot have written an exit file yet)
QUEUED_STATES = frozenset({"PENDING", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
                           "REQUEUED"})

#: final states of a job its time limit (or deadline) ended
TIMEOUT_STATES = frozenset({"TIMEOUT", "DEADLINE"})
#: the final state of a job preemption ended (``PreemptMode=CANCEL``; with ``REQUEUE`` the
#: job is ``PENDING`` again and starts over by itself)
PREEMPTED_STATES = frozenset({"PREEMPTED"})
#: final states of a packed worker job that leave its unfinished runs blameless: cancelled
#: (scancel), its node failed or never booted, or it ended by itself, e.g. after the
#: time-limit warning, with runs it had claimed but not started
LOST_STATES = frozenset({"CANCELLED", "NODE_FAIL", "BOOT_FAIL", "COMPLETED"})

#: sbatch refusals that mean "not now": nothing was queued, submit again later
_REFUSED = (
    "QOSMaxSubmitJobPerUserLimit",
    "AssocMaxSubmitJobLimit",
    "job submit limit",
    "Slurm temporarily unable to accept job",
    "Resource temporarily unavailable",
    "Unable to contact slurm controller",
)
#: sbatch failures after which the job may or may not have been queued
_UNCLEAR = ("Socket timed out",)


@dataclass(frozen=True)
class JobState:
    """One line of ``squeue``: a job's state and the reason Slurm gives."""

    state: str
    reason: str

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def parse_sbatch_parsable(text: str) -> str:
    """The job id from ``sbatch --parsable`` output.

    ``sbatch --parsable`` prints the job id, followed by ``;<cluster>`` on a multi-cluster
    setup::

        1234
        1234;cluster_a
    """
    line = text.strip().splitlines()[-1] if text.strip() else ""
    job_id = line.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise ValueError(f"sbatch printed no job id: {text.strip()!r}")
    return job_id


def parse_squeue(text: str) -> dict[str, JobState]:
    """``{job_id: JobState}`` from ``squeue --noheader --array --format='%i|%T|%r'``.

    With ``--array`` every task of an array is one line, even the pending ones::

        2_3|CANCELLED|None
        2_0|COMPLETED|None
        2_1|FAILED|NonZeroExitCode
        2_7|PENDING|JobArrayTaskLimit
        2_6|RUNNING|None

    Tasks still held in one record are listed as a range (``49_[2-9%2]``, expanded here
    to ``49_2`` ... ``49_9``), and an array cancelled before any task was split off is
    one line under the array's own id (``47|CANCELLED|None``), kept as ``47``; see
    :func:`task_state` to look a task up.
    """
    states = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 3:
            continue
        job_id, state, reason = (f.strip() for f in fields)
        job_state = JobState(state.split()[0] if state else "UNKNOWN", reason)
        for one in _expand(job_id):
            states[one] = job_state
    return states


def _expand(job_id: str) -> list[str]:
    """``49_[2-4,7%2]`` -> ``["49_2", "49_3", "49_4", "49_7"]``; other ids unchanged."""
    match = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job_id)
    if not match:
        return [job_id]
    array_id, spec = match.groups()
    tasks = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        tasks.extend(range(int(first), int(last or first) + 1))
    return [f"{array_id}_{t}" for t in tasks]


def task_state(states: dict[str, JobState], job_id: str) -> JobState | None:
    """The state of array task ``job_id`` (``"47_1"``) in :func:`parse_squeue`'s answer:
    its own line, else its array's one-line record (``47``), else None (unknown)."""
    if job_id in states:
        return states[job_id]
    return states.get(job_id.split("_", 1)[0]) if "_" in job_id else None


def squeue_knows_none(stderr: str) -> bool:
    """True when ``squeue -j`` failed because none of the job ids is known (any more)::

        slurm_load_jobs error: Invalid job id specified
    """
    return "Invalid job id specified" in stderr


def parse_scontrol_config(text: str) -> dict[str, str]:
    """``{name: value}`` from ``scontrol show config``, whose lines read::

        MaxArraySize            = 1001
        MaxJobCount             = 10000
        MinJobAge               = 600 sec
    """
    config = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and " " not in name.strip():
            config[name.strip()] = value.strip()
    return config


def config_int(config: dict[str, str], name: str, default: int) -> int:
    """The leading integer of a config value (``"600 sec"`` -> 600), else ``default``."""
    match = re.match(r"\d+", config.get(name, ""))
    return int(match.group()) if match else default


def sbatch_failure_kind(stderr: str) -> str | None:
    """``"unclear"`` when sbatch failed without knowing whether the job was queued,
    ``"refused"`` when it refused for a reason that passes (a submit limit, a busy
    controller), None for errors in the job itself.

    A controller that did not answer in time (the job may have been queued)::

        sbatch: error: Batch job submission failed: Socket timed out on send/recv operation

    A QOS/association submit limit (one line, wrapped here)::

        sbatch: error: QOSMaxSubmitJobPerUserLimit
        sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job
        submit limit, user's size and/or time limits)

    Errors in the job itself (unknown partition, bad option)::

        sbatch: error: invalid partition specified: nosuchpart
        sbatch: error: Batch job submission failed: Invalid partition name specified
    """
    if any(marker in stderr for marker in _UNCLEAR):
        return "unclear"
    if any(marker in stderr for marker in _REFUSED):
        return "refused"
    return None


def parse_squeue_array_ids(text: str) -> list[str]:
    """Array job ids from ``squeue --noheader --states=all --name=NAME --format=%F``::

        4711
        4711

    (one line per record; a plain job prints its own id). Sorted, each once.
    """
    ids = {line.strip() for line in text.splitlines() if line.strip().isdigit()}
    return sorted(ids, key=int)


def sbatch_error_line(stderr: str) -> str:
    """The most telling line of sbatch's error output, for a one-line message.

    ``sbatch: error: Batch job submission failed: Invalid job array specification``
    becomes ``Batch job submission failed: Invalid job array specification``.
    """
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return "sbatch failed without a message"
    failed = [ln for ln in lines if "submission failed" in ln]
    line = failed[-1] if failed else lines[0]
    return re.sub(r"^sbatch:\s*(error:\s*)?", "", line)


def parse_time_limit(text: str) -> int | None:
    """Seconds of an sbatch ``--time`` value; None for none (``0``, ``UNLIMITED``) or a value
    that is no time. sbatch's man page: "Acceptable time formats include "minutes",
    "minutes:seconds", "hours:minutes:seconds", "days-hours", "days-hours:minutes" and
    "days-hours:minutes:seconds"."::

        90 -> 5400    1:30 -> 90    2:00:00 -> 7200    1-12 -> 129600    1-0:30:00 -> 88200
    """
    text = text.strip().strip("'\"")
    days, dash, rest = text.partition("-")
    if not dash:
        days, rest = "0", text
    parts = rest.split(":")
    if not days.isdigit() or not all(p.isdigit() for p in parts) or len(parts) > 3:
        return None
    numbers = [int(p) for p in parts]
    if dash:  # days-hours[:minutes[:seconds]]
        numbers += [0] * (3 - len(numbers))
        seconds = int(days) * 86400 + numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
    elif len(numbers) == 1:
        seconds = numbers[0] * 60
    elif len(numbers) == 2:
        seconds = numbers[0] * 60 + numbers[1]
    else:
        seconds = numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
    return seconds or None


def array_ranges(indices: list[int]) -> str:
    """Compress array task indices into Slurm's ``--array`` syntax: [0,1,2,5] -> ``0-2,5``."""
    parts: list[str] = []
    ordered = sorted(set(indices))
    start = prev = None
    for i in ordered + [None]:
        if start is not None and (i is None or i != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return ",".join(parts)


#: the ``sacct`` fields :func:`parse_sacct` reads, in this order
SACCT_FORMAT = "JobID,ElapsedRaw,AllocTRES"
_TRES_GPU = re.compile(r"(?:^|,)gres/gpu(?::[^=,]+)?=(\d+)")


def tres_count(tres: str, name: str) -> int:
    """A count of an ``AllocTRES`` text: ``"billing=1,cpu=4,gres/gpu=2,mem=8G,node=1"`` ->
    ``cpu`` 4, ``gres/gpu`` 2. GPUs listed by type as well (``gres/gpu:a100=1,gres/gpu=1``)
    count once: the untyped total when there is one, else the typed ones added up."""
    if name == "gres/gpu":
        plain = re.search(r"(?:^|,)gres/gpu=(\d+)", tres)
        return int(plain.group(1)) if plain else sum(int(n) for n in _TRES_GPU.findall(tres))
    match = re.search(rf"(?:^|,){re.escape(name)}=(\d+)", tres)
    return int(match.group(1)) if match else 0


def parse_sacct(text: str) -> dict[str, dict[str, float]]:
    """``{job_id: {"gpu_hours", "cpu_hours"}}`` from ``sacct --parsable2 --noheader
    --format=JobID,ElapsedRaw,AllocTRES -j ...``, whose lines read (a job, then its steps,
    which are left out)::

        8117657_3|65|billing=64,cpu=9,gres/cpu=9,gres/gpu:a100_3g.20gb=1,gres/gpu=1,mem=60G,node=1
        8117657_3.batch|65|cpu=9,gres/cpu=9,gres/gpu:a100_3g.20gb=1,gres/gpu=1,mem=60G,node=1
        8117657_3.extern|65|billing=64,cpu=9,gres/cpu=9,gres/gpu=1,mem=60G,node=1

    A job that has not started has no ``AllocTRES`` (an empty field): it is left out too.
    """
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or "." in parts[0] or not parts[1].isdigit() or not parts[2]:
            continue
        elapsed = int(parts[1]) / 3600
        found[parts[0]] = hours(elapsed * tres_count(parts[2], "gres/gpu"),
                                elapsed * tres_count(parts[2], "cpu"))
    return found


def gres_gpus(gres: str) -> int:
    """GPUs a ``--gres`` value asks for (``name[:type][:count]``, comma-separated):
    ``"gpu:1"`` -> 1, ``"gpu:a100:2"`` -> 2, ``"gpu"`` -> 1, ``"gpu:2,tmpfs:10G"`` -> 2;
    ``""`` or no ``gpu`` -> 0."""
    total = 0
    for item in gres.split(","):
        parts = item.strip().split(":")
        if parts[0] == "gpu":
            total += int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return total


def leading_count(text: str, default: int) -> int:
    """The count a ``--gpus``, ``--cpus-per-task`` or ``--nodes`` value starts or ends with:
    ``"a100:2"`` -> 2, ``"4"`` -> 4, ``"1-2"`` (a range of nodes) -> 1; ``default`` when it
    names none."""
    last = text.strip().split(":")[-1]
    match = re.match(r"\d+", last)
    return int(match.group()) if match else default


def memory_bytes(mem: str) -> int | None:
    """``--mem`` in bytes: ``"8G"`` -> 8 GiB, ``"500M"``, ``"500"`` (Slurm's unit is MiB)
    -> 500 MiB; ``"0"`` (all of a node's memory) or anything else -> None."""
    match = re.fullmatch(r"(\d+)([KMGT]?)B?", mem.strip(), re.IGNORECASE)
    if not match or int(match.group(1)) == 0:
        return None
    return int(match.group(1)) * 1024 ** ("KMGT".index(match.group(2).upper() or "M") + 1)
