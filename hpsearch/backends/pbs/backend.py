"""The PBS backend: runs become subjobs of job arrays submitted with ``qsub``.

Two flavours (``--pbs_flavor``): OpenPBS / PBS Professional (``qsub -J 1-N``, throttled by
the array's ``max_run_subjobs``; ``qstat -f -F json -t -x``) and Torque (``qsub -t 1-N%K``;
``qstat -f -t`` text). Subjobs are numbered from 1: the run of base task ``t`` (0-based, see
:class:`ClusterBackend`) is subjob ``t + 1``, job id ``"1234[3].server"`` of the array
``"1234[].server"`` that qsub printed. OpenPBS refuses or mishandles one-subjob arrays on some
versions, so a launch of one run (or one packed worker) is a plain job there (``"1235.server"``).

Where the server has no ``max_run_subjobs`` (before OpenPBS 20 / PBS Pro 2020),
``--pbs_throttle=ranges`` holds ``--num_jobs`` by submitting no array larger than the free
slots, unthrottled. One ``qstat`` per poll covers every watched array; ``qdel`` and ``qsig -s
TERM`` get every job id in one call. PBS sends no warning before the walltime limit, so the
job script arms its own (SIGURG to itself ``--walltime_warning`` seconds before it). Texts
read from PBS's commands are parsed in :mod:`hpsearch.backends.pbs.parse`.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.backends import templating
from hpsearch.backends.base import BackendError
from hpsearch.backends.cluster.backend import ClusterBackend, ClusterSettings
from hpsearch.backends.cluster.scheduler import QueryFailed, SubmitRefused, SubmitUnclear, Task
from hpsearch.backends.pbs import parse as pp
from hpsearch.backends.pbs.options import PbsJob
from hpsearch.runs.model import Resources

ARRAY_TEMPLATE = "pbs/templates/pbs_array.qsub.j2"
DRIVER_TEMPLATE = "pbs/templates/pbs_driver.qsub.j2"
LOG_DIR = "pbs_logs"
#: how many jobs may be queued at once; a busy server's refusals lower it (see the base)
DEFAULT_MAX_QUEUED = 10000
#: qsub's options, by flavour (``man qsub``: OpenPBS 23, Torque 6): those that take a value,
#: and the bare flags
_VALUED = {"openpbs": set("aAceJlmMNoPpqrRSuvWc"), "torque": set("aAbcCdDeFjklLmMNopPqrStTuvwW")}
_BARE = {"openpbs": set("hIVXzf"), "torque": set("fhInVxXz")}
#: options the templates set themselves: job name, log files, the array
_RESERVED = {"N", "o", "e", "J", "t"}
_KEY = re.compile(r"[A-Za-z]")
_MEM = re.compile(r"(\d+)\s*([kmgt]?)(b|w)?", re.IGNORECASE)
_COMMAND_TIMEOUT = 120.0


def memory_bytes(mem: str) -> int | None:
    """A PBS size in bytes: ``"8gb"`` -> 8 GiB, ``"500mb"``, ``"128GB"``; a bare number is
    bytes (PBS's unit); ``""`` -> None. Raises ValueError for anything else."""
    if not mem.strip():
        return None
    match = _MEM.fullmatch(mem.strip())
    if match is None:
        raise ValueError(f"--pbs_mem={mem}: not a PBS size such as 8gb or 500mb")
    return int(match.group(1)) * 1024 ** " kmgt".index(match.group(2).lower() or " ")


def pbs_size(size: int) -> str:
    """Bytes as PBS writes a size: ``8 GiB`` -> ``"8gb"``, in the largest unit that divides
    it (else whole kb, rounded up)."""
    for power, unit in ((4, "tb"), (3, "gb"), (2, "mb"), (1, "kb")):
        if size % 1024 ** power == 0:
            return f"{size // 1024 ** power}{unit}"
    return f"{math.ceil(size / 1024)}kb"


def walltime(seconds: float) -> str:
    """Seconds as ``-l walltime=`` takes them: ``43200`` -> ``"12:00:00"`` (rounded up)."""
    total = max(1, math.ceil(round(seconds, 6)))
    return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}"


def resource_directives(resources: Resources, flavor: str = "openpbs") -> list[str]:
    """The ``#PBS`` resource requests of a job that runs ``resources``.

    OpenPBS: ``-l select=1:ncpus=N[:ngpus=G][:mem=M]`` and ``-l walltime=HH:MM:SS``;
    Torque (``flavor="torque"``): ``-l nodes=1:ppn=N[:gpus=G]``, ``-l mem=M`` and the same
    walltime. No GPUs, no memory (None) or no time limit leave their part out.
    """
    mem = None if resources.memory is None else pbs_size(resources.memory)
    gpus = resources.gpus
    nodes = resources.nodes
    if flavor == "torque":
        lines = [f"-l nodes={nodes}:ppn={resources.cpus}" + (f":gpus={gpus}" if gpus else "")]
        lines += [f"-l mem={mem}"] if mem else []
    else:
        lines = [f"-l select={nodes}:ncpus={resources.cpus}" + (f":ngpus={gpus}" if gpus else "")
                 + (f":mem={mem}" if mem else "")]
    if resources.time_limit:
        lines.append(f"-l walltime={walltime(resources.time_limit)}")
    return lines


def qsub_items(options: PbsJob) -> list[tuple[str, str | None]]:
    """``--qsub_option`` items as ``(KEY, VALUE)`` (VALUE None: a bare flag); a leading
    ``-`` is dropped (``-A=lab`` -> ``("A", "lab")``). Raises ``ValueError`` (one line) for
    an option qsub of the flavour does not have, one the templates set themselves, a flag
    given a value, or an empty value or one that spans lines."""
    items: list[tuple[str, str | None]] = []
    flavor = options.pbs_flavor
    for item in options.qsub_options:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not _KEY.fullmatch(key):
            raise ValueError(f"--qsub_option {item!r}: expected KEY=VALUE with a one-letter "
                             "qsub option, such as A=myaccount or l=walltime=1:00:00")
        if key in _RESERVED:
            raise ValueError(f"--qsub_option {item!r}: hpsearch sets -{key} itself; leave it out")
        if key not in _VALUED[flavor] | _BARE[flavor]:
            raise ValueError(f"--qsub_option {item!r}: qsub ({flavor}) has no option -{key}; "
                             "see `man qsub` for the options")
        if key in _BARE[flavor]:
            if sep:
                raise ValueError(f"--qsub_option {item!r}: -{key} takes no value; "
                                 f"give --qsub_option={key}")
            items.append((key, None))
            continue
        if not sep or not value.strip() or "\n" in value or "\0" in value:
            raise ValueError(f"--qsub_option {item!r}: -{key} needs a value on one line, "
                             f"e.g. --qsub_option={key}=VALUE")
        items.append((key, value.strip()))
    return items


def _given_walltime(items: Sequence[tuple[str, str | None]]) -> float | None:
    """Seconds of a ``--qsub_option=l=walltime=...`` among ``items`` (the last one)."""
    found = None
    for key, value in items:
        for part in (value or "").split(",") if key == "l" else ():
            name, _, amount = part.partition("=")
            if name.strip() == "walltime":
                found = pp.seconds(amount)
    return None if found is None else float(found)


def run_resources(options: PbsJob, gpu_memory_mib: int | None) -> Resources:
    """What each run's job asks PBS for: ``--pbs_ngpus`` GPUs, ``--pbs_ncpus`` CPUs,
    ``--pbs_mem`` memory, one node, ``--num_hours`` (or a ``--qsub_option=l=walltime=...``);
    ``gpu_memory_mib``: ``--gpu_memory_per_run``."""
    limit = _given_walltime(qsub_items(options))
    if limit is None and options.num_hours:
        limit = options.num_hours * 3600
    return Resources(gpus=options.pbs_ngpus, cpus=options.pbs_ncpus,
                     memory=memory_bytes(options.pbs_mem), nodes=1, time_limit=limit,
                     gpu_memory_mib=gpu_memory_mib)


def _check_value(flag: str, value: str) -> None:
    if "\n" in value or "\0" in value or (value and not value.strip()):
        raise ValueError(f"{flag}: value {value!r} is empty or spans lines; give a value "
                         "or leave the option out")


def pbs_directives(options: PbsJob) -> list[str]:
    """Every ``#PBS`` line of a job the flags ask for (after name, logs and array): the
    resources (:func:`resource_directives`), then :func:`queue_directives`."""
    return [*resource_directives(run_resources(options, None), options.pbs_flavor),
            *queue_directives(options)]


def queue_directives(options: PbsJob) -> list[str]:
    """The ``#PBS`` lines of a job that are not its resources: ``-q``, then each
    ``--qsub_option`` (quoted)."""
    _check_value("--pbs_queue", options.pbs_queue)
    lines = [f"-q {templating.shquote(options.pbs_queue.strip())}"] \
        if options.pbs_queue.strip() else []
    return lines + [f"-{key}" if value is None else f"-{key} {templating.shquote(value)}"
                    for key, value in qsub_items(options)]


def validate_pbs_options(options: PbsJob) -> None:
    """Check every ``#PBS`` line the flags produce; ``ValueError`` (one line) if bad."""
    pbs_directives(options)
    if options.job_template is not None:
        templating.load_template(ARRAY_TEMPLATE, options.job_template)


def render_pbs_driver_script(options: PbsJob, argv: Sequence[str], cwd: Path,
                             job_name: str = "hpsearch-driver") -> str:
    """The wrapper job running the driver itself (``hpsearch wrap --scheduler pbs``);
    submit with ``qsub <file>``. ``options`` are the driver's own (no GPU, its own time,
    memory and queue); its PBS log files go to ``cwd``, which exists when it is submitted."""
    return templating.render(DRIVER_TEMPLATE, {
        "job_name": job_name,
        "log_dir": str(Path(cwd).resolve()),
        "directives": pbs_directives(options),
        "job_setup": list(options.job_setup),
        "cwd": str(cwd),
        "argv": list(argv),
    })


def _run(argv: list[str], name: str) -> subprocess.CompletedProcess[str]:
    """Run a PBS command; BackendError when it is not there."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT,
                              check=False)
    except FileNotFoundError as exc:
        raise BackendError(f"{name} not found: is this a PBS login node?") from exc


def _jobs_command(name: str, job_ids: Sequence[str], *options: str) -> int:
    """``<name> [options] <ids>`` (qdel, qsig) in one call; the count of ids it reached.
    Ids PBS no longer knows or that already ended are not an error."""
    if not job_ids:
        return 0
    try:
        done = _run([name, *options, *job_ids], name)
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"{name} did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
    errors = pp.scheduler_errors(done.stderr)
    if done.returncode != 0 and errors:
        raise BackendError(f"{name}: {errors[0]}")
    return max(0, len(job_ids) - sum(1 for ln in done.stderr.splitlines() if ln.strip()))


def qdel(job_ids: Sequence[str]) -> int:
    """Delete ``job_ids`` with one ``qdel`` (running ones get SIGTERM, then SIGKILL)."""
    return _jobs_command("qdel", job_ids)


@dataclass(frozen=True)
class PbsSettings:
    """What the PBS backend reads of a search's options, as the templates take them."""

    flavor: str  # --pbs_flavor
    throttle: str  # --pbs_throttle
    directives: tuple[str, ...]  # queue_directives; the resources' come from each array's runs
    time_limit: float | None  # seconds: --num_hours, or a --qsub_option=l=walltime=...


def pbs_settings(options: PbsJob) -> PbsSettings:
    """The PBS backend's settings that ``options`` give (ValueError, one line, if bad)."""
    return PbsSettings(options.pbs_flavor, options.pbs_throttle,
                       tuple(queue_directives(options)),
                       run_resources(options, None).time_limit)


class PbsBackend(ClusterBackend):
    """Runs as PBS subjobs; see the module docstring."""

    name = "pbs"
    commands = ("qsub", "qstat", "qdel", "qsig", "qalter", "qselect")
    log_dir_name = LOG_DIR
    queued_states = pp.PENDING_STATES
    timeout_states = pp.TIMEOUT_STATES
    lost_states = pp.LOST_STATES
    accounts_jobs = True
    accounted_by = "qstat"

    def __init__(self, cluster: ClusterSettings, pbs: PbsSettings, **kwargs) -> None:
        self.pbs = pbs
        super().__init__(cluster, **kwargs)

    def time_limit(self) -> float | None:
        return self.pbs.time_limit

    def is_final(self, state: str) -> bool:
        return pp.is_over(state)

    def room(self) -> int:
        """As the base's; with ``--pbs_throttle=ranges`` no more than the free slots: an
        array PBS does not throttle then never runs more than ``--num_jobs`` at once."""
        room = super().room()
        if self.pbs.throttle == "ranges":
            room = min(room, self.arrays.free_slots())
        return room

    def render_array(self, tasks: Sequence[Task], job_name: str, throttle: int) -> str:
        """The array of ``tasks`` (runs of one shape: see the cluster backend), asking for
        that shape's resources."""
        resources = tasks[0].run.resources if tasks else self.settings.resources
        return self._render(len(tasks), job_name, throttle, self.run_context(tasks, "index", 1),
                            resources)

    def render_workers(self, count: int, job_name: str, throttle: int,
                       worker: Mapping[str, Any]) -> str:
        return self._render(count, job_name, throttle, {"runs": [], "worker": dict(worker)},
                            self.settings.resources)

    def _render(self, count: int, job_name: str, throttle: int, body: dict[str, Any],
                resources: Resources) -> str:
        directives = [*resource_directives(resources, self.pbs.flavor), *self.pbs.directives]
        return templating.render(ARRAY_TEMPLATE, {
            "flavor": self.pbs.flavor,
            "job_name": safe_job_name(job_name),
            "count": count,
            "throttle": throttle if self.pbs.throttle == "subjobs" else 0,
            "log_dir": str(self.log_dir.resolve()),
            "directives": directives,
            "time_limit": math.ceil(self.pbs.time_limit or 0),
            "warning": self.warning,
            "job_setup": list(self.settings.job_setup),
            "worker": None,
            **body,
        }, self.settings.job_template)

    def task_job_id(self, array_id: str, task: int) -> str:
        return array_id.replace("[]", f"[{task + 1}]") if "[]" in array_id else array_id

    def array_of(self, job_id: str) -> str:
        return re.sub(r"\[\d+\]", "[]", job_id)

    def _submit_array(self, script: Path) -> str:
        try:
            done = _run(["qsub", str(script)], "qsub")
        except subprocess.TimeoutExpired as exc:
            raise SubmitUnclear(f"qsub did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        answer = (done.stderr.strip() or done.stdout.strip()).splitlines()
        message = f"qsub {script}: {answer[-1] if answer else done.returncode}"
        if done.returncode != 0:
            if pp.qsub_retryable(done.stderr + done.stdout):
                raise SubmitRefused(message)
            raise BackendError(message)
        try:
            return pp.parse_qsub_job_id(done.stdout)
        except ValueError as exc:
            raise SubmitUnclear(f"{message} ({exc})") from exc

    def _qstat(self, job_ids: Sequence[str], subjobs: bool = True) -> dict[str, pp.Record]:
        """The records of ``job_ids`` (and, ``subjobs``, of their subjobs: ``-t``) in ONE
        qstat call, by short id; OpenPBS's finished jobs too (``-x``: job history)."""
        openpbs = self.pbs.flavor == "openpbs"
        argv = ["qstat", "-f", *(["-F", "json"] if openpbs else []),
                *(["-t"] if subjobs else []), *(["-x"] if openpbs else []), *job_ids]
        try:
            done = _run(argv, "qstat")
        except subprocess.TimeoutExpired as exc:
            raise QueryFailed(f"qstat did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        errors = pp.scheduler_errors(done.stderr)
        if done.returncode != 0 and errors:
            raise QueryFailed(f"qstat: {errors[0]}")
        try:
            return (pp.parse_qstat_json(done.stdout) if openpbs
                    else pp.parse_attribute_blocks(done.stdout))
        except ValueError as exc:
            raise QueryFailed(f"qstat: {exc}") from exc

    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        """States by job id (:func:`~hpsearch.backends.pbs.parse.job_state`): PBS's
        ``job_state`` while a job is not over, then how it ended (``walltime exceeded``,
        ``killed``, ``exit status 3``, ``F``), which becomes the run's reason."""
        records = self._qstat(sorted({self.array_of(j) for j in job_ids}))
        return {job_id: state for job_id in job_ids
                if (state := pp.array_state(records, pp.short_id(job_id))) is not None}

    def _account(self, job_ids: Sequence[str]) -> dict[str, dict[str, float]] | None:
        """GPU- and CPU-hours from each ended job's ``resources_used`` (one ``qstat -f`` of
        those jobs, without ``-t``; :func:`~hpsearch.backends.pbs.parse.usage`: none for a
        job under a second); None when PBS knows none of them (it keeps no finished jobs: no
        job history) or did not answer."""
        self.calls.accounting += 1
        try:
            records = self._qstat(list(job_ids), subjobs=False)
        except (BackendError, OSError):
            return None
        if not records:
            return None
        return {job_id: found for job_id in job_ids
                if (record := records.get(pp.short_id(job_id))) is not None
                and (found := pp.usage(record)) is not None}

    def _find_array(self, job_name: str) -> str | None:
        """``qselect -N <name>`` (OpenPBS: ``-x`` too, finished jobs): the job's id."""
        argv = ["qselect", "-N", safe_job_name(job_name),
                *(["-x"] if self.pbs.flavor == "openpbs" else [])]
        try:
            done = _run(argv, "qselect")
        except (BackendError, subprocess.TimeoutExpired) as exc:
            raise QueryFailed(f"qselect: {exc}") from exc
        ids = [ln.strip() for ln in done.stdout.splitlines() if ln.strip()]
        return ids[0] if ids else None

    def _set_throttle(self, array_id: str, throttle: int) -> None:
        """``qalter -W max_run_subjobs=<n> <array>`` (OpenPBS), ``qalter -t %<n> <array>``
        (Torque); nothing with ``--pbs_throttle=ranges`` (no array is throttled then)."""
        if self.pbs.throttle == "ranges" or "[]" not in array_id:
            return
        change = (["-W", f"max_run_subjobs={throttle}"] if self.pbs.flavor == "openpbs"
                  else ["-t", f"%{throttle}"])
        try:
            done = _run(["qalter", *change, array_id], "qalter")
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"qalter did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        errors = pp.scheduler_errors(done.stderr)
        if done.returncode != 0 and errors:
            raise BackendError(f"qalter: {errors[0]}")

    def _cancel_jobs(self, job_ids: Sequence[str]) -> None:
        qdel(job_ids)

    def _signal_jobs(self, job_ids: Sequence[str], signal_name: str) -> None:
        _jobs_command("qsig", job_ids, "-s", signal_name)

    def _read_limits(self) -> tuple[int, int]:
        """``max_array_size`` of ``qstat -B -f [-F json]``; 10000 when it does not answer."""
        openpbs = self.pbs.flavor == "openpbs"
        try:
            done = _run(["qstat", "-B", "-f", *(["-F", "json"] if openpbs else [])], "qstat")
            servers = ((pp.parse_server_json(done.stdout) if openpbs
                        else pp.parse_attribute_blocks(done.stdout, "Server"))
                       if done.returncode == 0 else {})
        except (BackendError, OSError, ValueError, subprocess.TimeoutExpired):
            servers = {}
        return pp.max_array_size(servers), DEFAULT_MAX_QUEUED


def safe_job_name(text: str) -> str:
    """A job name qsub's ``-N`` takes: letters, digits, ``_.-`` only, starting with a letter,
    at most 236 characters (OpenPBS's limit; Torque takes as many)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:236]
    return name if name[:1].isalpha() else f"h{name}"[:236]
