"""The Grid Engine backend: runs become tasks of array jobs submitted with ``qsub``.

Grid Engine numbers array tasks from 1, so the run of base task ``t`` (0-based, see
:class:`ClusterBackend`) is task ``t + 1`` and its job id is ``"<job>.<t + 1>"`` (e.g.
``"1234.3"``, as qstat and qdel spell it). One ``qstat -xml`` call per poll covers every
watched array (it lists the user's jobs still waiting or running); a task it no longer lists and
whose run left no exit file is looked up in ``qacct -j <job>`` (its exit status, its
``failed`` code: the time limit, a deletion), once. ``qdel`` gets every job id in one call.
A run's GPU- and CPU-hours are what ``qacct -j`` accounted for its task, once the qmaster
flushed its accounting file (:mod:`hpsearch.backends.cluster.hours`).
Jobs are submitted with ``-notify``: qdel sends SIGUSR2 before its SIGKILL (after the
queue's ``notify`` time), which the job script turns into SIGTERM for the run; the time-limit
warning is the soft limit ``s_rt``, whose SIGUSR1 the script turns into SIGURG (see
:mod:`hpsearch.runs.wrapper`). Texts read from Grid Engine's commands are parsed in
:mod:`hpsearch.backends.sge.parse`.
"""

from __future__ import annotations

import getpass
import math
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.backends import templating
from hpsearch.backends.base import BackendError
from hpsearch.backends.cluster.backend import ClusterBackend, ClusterSettings
from hpsearch.backends.cluster.scheduler import QueryFailed, SubmitRefused, SubmitUnclear, Task
from hpsearch.backends.sge import parse as gp
from hpsearch.backends.sge.options import SgeJob
from hpsearch.runs.model import Resources

ARRAY_TEMPLATE = "sge/templates/sge_array.sh.j2"
DRIVER_TEMPLATE = "sge/templates/sge_driver.sh.j2"
LOG_DIR = "sge_logs"
DEFAULT_PE = "smp"
#: how many runs may be queued at once when the cluster sets no max_u_jobs / max_jobs
DEFAULT_MAX_QUEUED = 10000
#: qsub options the templates set themselves
_RESERVED = {"N", "t", "tc", "o", "e", "j", "S", "V", "notify", "terse", "sync", "b", "now"}
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: what a word of a ``#$`` line may hold (qsub reads those lines itself, no shell does)
_WORD = re.compile(r"[^\s'\"\\#]+")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)([KMGT]?)B?", re.IGNORECASE)
_COMMAND_TIMEOUT = 120.0
_MIB = 1024 ** 2
#: the state of a task qstat no longer lists and qacct does not know yet
ENDING = "ENDING"
#: seconds a task qstat no longer lists waits for qacct's word before it is judged gone
ACCOUNTING_WAIT = 60.0
#: seconds an ended run's hours wait for qacct beyond the accounting file's ``flush_time``
#: (the execd reports the job's end to the qmaster first)
HOURS_MARGIN = 10.0


def memory_bytes(text: str) -> int | None:
    """``--sge_mem`` in bytes: ``"8G"`` -> 8 GiB, ``"500M"``; a bare number is bytes (as
    Grid Engine reads it); empty, ``0`` or anything else -> None."""
    match = _MEMORY.fullmatch(text.strip())
    if not match or float(match.group(1)) == 0:
        return None
    unit = match.group(2).upper()
    return math.ceil(float(match.group(1)) * 1024 ** ("KMGT".index(unit) + 1 if unit else 0))


def hms(seconds: float) -> str:
    """Seconds as ``h_rt`` takes them, ``H:MM:SS`` (rounded up; 5400 -> ``1:30:00``)."""
    total = max(1, math.ceil(round(seconds, 6)))
    return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"


def rt_seconds(value: str) -> float | None:
    """An ``h_rt`` value in seconds: ``1:30:00`` -> 5400, ``90`` -> 90; None if no time."""
    parts = value.strip().split(":")
    if len(parts) > 3 or not all(p.isdigit() for p in parts):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return float(seconds) or None


def resource_directives(resources: Resources, pe: str = DEFAULT_PE) -> list[str]:
    """The ``#$`` options that ask Grid Engine for ``resources``: ``-pe <pe> N`` for more than
    one CPU (``pe``: the parallel environment, ``--sge_pe``), ``-l h_vmem=<MiB>M`` (memory per
    slot: Grid Engine multiplies it by the slots), ``-l gpu=N``, ``-l h_rt=H:MM:SS``::

        Resources(gpus=1, cpus=4, memory=8 GiB, time_limit=3600)
        -> ["-pe smp 4", "-l h_vmem=2048M", "-l gpu=1", "-l h_rt=1:00:00"]
    """
    directives = []
    cpus = max(1, resources.cpus)
    if cpus > 1:
        directives.append(f"-pe {pe} {cpus}")
    if resources.memory:
        directives.append(f"-l h_vmem={math.ceil(resources.memory / cpus / _MIB)}M")
    if resources.gpus:
        directives.append(f"-l gpu={resources.gpus}")
    if resources.time_limit:
        directives.append(f"-l h_rt={hms(resources.time_limit)}")
    return directives


def _words(flag: str, value: str) -> list[str]:
    """A value's words for a ``#$`` line; ValueError (one line) for one qsub could misread."""
    words = value.split()
    if not words or not all(_WORD.fullmatch(w) for w in words):
        raise ValueError(f"{flag}: value {value!r} is empty or holds quotes, a backslash, # or "
                         "a newline; give plain words (e.g. A=lab, l=h_vmem=4G, pe=smp 4)")
    return words


def _word(flag: str, value: str) -> str:
    """A value that must be one word (a queue, a parallel environment's name)."""
    words = _words(flag, value)
    if len(words) != 1:
        raise ValueError(f"{flag}={value!r}: expected one name, without blanks")
    return words[0]


def qsub_option_directives(options: SgeJob) -> list[str]:
    """``--qsub_option`` items as ``#$`` options: ``A=lab`` -> ``-A lab``, ``pe=smp 4`` ->
    ``-pe smp 4`` (a value's words are qsub's arguments), ``r=y``; ``KEY`` alone is a bare
    flag (``-R``... ). A leading ``-`` is dropped. Raises ``ValueError`` (one line) for a key
    that is no option name, one the templates set themselves, or a value qsub could misread."""
    directives = []
    for item in options.qsub_options:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not _KEY.fullmatch(key):
            raise ValueError(f"--qsub_option {item!r}: expected KEY=VALUE or a bare flag "
                             "such as A=lab or R")
        if key in _RESERVED:
            raise ValueError(f"--qsub_option {item!r}: hpsearch sets -{key} itself; leave it "
                             "out")
        words = _words(f"--qsub_option {key}", value) if sep else []
        directives.append(" ".join([f"-{key}", *words]))
    return directives


def time_limit_of(directives: Sequence[str]) -> float | None:
    """Seconds of the last ``-l h_rt=...`` among ``directives`` (None: no limit)."""
    limit = None
    for directive in directives:
        if directive.startswith("-l "):
            for request in directive[3:].split(","):
                key, _, value = request.partition("=")
                if key.strip() == "h_rt":
                    limit = rt_seconds(value)
    return limit


def run_resources(options: SgeJob, gpu_memory_mib: int | None) -> Resources:
    """What each run's job asks Grid Engine for: ``--sge_gpus``, ``--sge_cpus``, ``--sge_mem``
    (the job's, over its slots), one node, ``--num_hours``; ``gpu_memory_mib``:
    ``--gpu_memory_per_run``."""
    return Resources(gpus=options.sge_gpus, cpus=options.sge_cpus,
                     memory=memory_bytes(options.sge_mem), nodes=1,
                     time_limit=options.num_hours * 3600 if options.num_hours else None,
                     gpu_memory_mib=gpu_memory_mib)


def sge_directives(options: SgeJob) -> list[str]:
    """Every ``#$`` option the flags ask for: the resources (:func:`resource_directives`),
    ``-q`` (``--sge_queue``), then the ``--qsub_option`` items (qsub lets a later one win).
    Raises ``ValueError`` (one line) for a value qsub could misread."""
    if options.sge_mem.strip() and memory_bytes(options.sge_mem) is None:
        raise ValueError(f"--sge_mem={options.sge_mem}: expected a size such as 8G or 500M")
    return [*resource_directives(run_resources(options, None), sge_pe(options)),
            *queue_directives(options)]


def sge_pe(options: SgeJob) -> str:
    """The parallel environment of runs of several CPUs (``--sge_pe``)."""
    return _word("--sge_pe", options.sge_pe) if options.sge_pe.strip() else DEFAULT_PE


def queue_directives(options: SgeJob) -> list[str]:
    """The ``#$`` options that are not resources: ``-q`` (``--sge_queue``), then the
    ``--qsub_option`` items."""
    queue = [f"-q {_word('--sge_queue', options.sge_queue)}"] if options.sge_queue.strip() \
        else []
    return queue + qsub_option_directives(options)


def qsub_refusal(directives: Sequence[str]) -> str | None:
    """What qsub says against ``directives``, asked without submitting anything (``qsub -w v``:
    "verify" against an empty cluster); None when it takes them, when qsub is not here, or
    when the qmaster did not answer (the submission will find out)."""
    if shutil.which("qsub") is None:
        return None
    argv = ["qsub", "-w", "v", "-b", "y", "-terse",
            *(w for d in directives for w in d.split()), "/bin/true"]
    try:
        done = _run(argv)
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = done.stderr + done.stdout
    if done.returncode == 0 or gp.qsub_retryable(answer) or gp.qsub_unclear(answer):
        return None
    return gp.qsub_error(answer)


def validate_sge_options(options: SgeJob) -> None:
    """Check every ``#$`` option the flags produce, and ask qsub whether it takes them;
    ``ValueError`` (one line) if not."""
    directives = sge_directives(options)
    if options.job_template is not None:
        templating.load_template(ARRAY_TEMPLATE, options.job_template)
    refusal = qsub_refusal(directives)
    if refusal is not None:
        raise ValueError(f"qsub refuses the jobs' options ({' '.join(directives)}): {refusal}; "
                         "fix --sge_queue, --sge_pe, --sge_cpus, --sge_mem, --sge_gpus or "
                         "--qsub_option")


def safe_job_name(text: str) -> str:
    """A job name qsub's ``-N`` takes: no ``/ : @ \\ * ?`` nor blanks, not starting with a
    digit."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:100] or "hpsearch"
    return name if not name[0].isdigit() else f"j{name}"


def render_driver_script(options: SgeJob, argv: Sequence[str], cwd: Path,
                         job_name: str = "hpsearch-driver") -> str:
    """The wrapper job running the driver itself (``hpsearch wrap --scheduler sge``).

    ``options`` are the driver's own (no GPU, one slot, its own time, memory and queue).
    Its own output goes to ``cwd``, which exists when it is submitted.
    """
    validate_sge_options(options)
    return templating.render(DRIVER_TEMPLATE, {
        "job_name": safe_job_name(job_name),
        "log_dir": str(Path(cwd).resolve()),
        "directives": sge_directives(options),
        "job_setup": list(options.job_setup),
        "cwd": str(cwd),
        "argv": list(argv),
    })


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT,
                          check=False)


def qdel(job_ids: Sequence[str]) -> None:
    """Delete ``job_ids`` (``"1234.3"``, ``"1234"``) with one ``qdel``. A job submitted with
    ``-notify`` gets SIGUSR2 first, SIGKILL after the queue's ``notify`` time.

    Jobs already over are no error (:func:`~hpsearch.backends.sge.parse.error_lines`). Raises
    ``BackendError`` when qdel is missing or reports another failure.
    """
    if not job_ids:
        return
    try:
        done = _run(["qdel", *job_ids])
    except FileNotFoundError as exc:
        raise BackendError("qdel not found: is this a Grid Engine submit host?") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"qdel did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
    errors = gp.error_lines(f"{done.stdout}\n{done.stderr}")
    if done.returncode != 0 and errors:
        raise BackendError(f"qdel: {errors[0]}")


@dataclass(frozen=True)
class SgeSettings:
    """What the Grid Engine backend reads of a search's options: the ``#$`` options of its
    jobs (:func:`sge_directives`)."""

    directives: tuple[str, ...]
    #: what an array of runs of a declared shape asks for besides that shape's resources
    #: (:func:`queue_directives`), and the parallel environment it asks CPUs of
    queue_directives: tuple[str, ...]
    pe: str


def sge_settings(options: SgeJob) -> SgeSettings:
    """The Grid Engine backend's settings that ``options`` give (ValueError, one line, if
    bad)."""
    return SgeSettings(tuple(sge_directives(options)), tuple(queue_directives(options)),
                       sge_pe(options))


class SgeBackend(ClusterBackend):
    """Runs as Grid Engine array tasks; see the module docstring."""

    name = "sge"
    commands = ("qsub", "qstat", "qdel")
    log_dir_name = LOG_DIR
    queued_states = gp.QUEUED_STATES
    timeout_states = gp.TIMEOUT_STATES
    lost_states = gp.LOST_STATES
    accounted_by = "qacct"

    def __init__(self, cluster: ClusterSettings, sge: SgeSettings, **kwargs) -> None:
        self.sge = sge
        self.directives = list(sge.directives)
        self._missing_since: dict[str, float] = {}  # tasks qstat stopped listing, since when
        self._sconf: str | None = None  # what qconf -sconf printed, asked once
        super().__init__(cluster, **kwargs)

    @property
    def accounts_jobs(self) -> bool:  # type: ignore[override]
        """Whether the qmaster writes its accounting file (``reporting_params``'s
        ``accounting``, :func:`~hpsearch.backends.sge.parse.parse_reporting`)."""
        return gp.parse_reporting(self._global_config())[0]

    @property
    def accounting_wait(self) -> float:  # type: ignore[override]
        """The accounting file's ``flush_time`` and :data:`HOURS_MARGIN`."""
        return gp.parse_reporting(self._global_config())[1] + HOURS_MARGIN

    def _global_config(self) -> str:
        """``qconf -sconf`` (the cluster's global configuration), asked once; empty when it
        did not answer (Grid Engine's defaults hold then)."""
        if self._sconf is None:
            try:
                done = _run(["qconf", "-sconf"])
            except (OSError, subprocess.TimeoutExpired):
                done = None
            self._sconf = done.stdout if done is not None and done.returncode == 0 else ""
        return self._sconf

    def time_limit(self) -> float | None:
        """The ``-l h_rt`` directive's seconds (``--num_hours``, or ``--qsub_option
        l=h_rt=...``)."""
        return time_limit_of(self.directives)

    def is_final(self, state: str) -> bool:
        """An end ``qacct`` told (:func:`~hpsearch.backends.sge.parse.classify_qacct`), or a
        job in error (``Eqw``: it waits for an administrator, never starting by itself)."""
        return (state in (gp.DONE, gp.KILLED) or state in self.timeout_states
                or state.startswith("failed ") or state in gp.ERROR_STATES)

    def render_array(self, tasks: Sequence[Task], job_name: str, throttle: int) -> str:
        """The array of ``tasks`` (runs of one shape: see the cluster backend); a shape other
        than the flags' asks for its own resources."""
        directives = self.directives
        if tasks and tasks[0].run.resources != self.settings.resources:
            directives = [*resource_directives(tasks[0].run.resources, self.sge.pe),
                          *self.sge.queue_directives]
        return self._render([t.task + 1 for t in tasks], job_name, throttle,
                            self.run_context(tasks, "task", 1), directives)

    def render_workers(self, count: int, job_name: str, throttle: int,
                       worker: Mapping[str, Any]) -> str:
        return self._render(list(range(1, count + 1)), job_name, throttle,
                            {"runs": [], "worker": dict(worker)}, self.directives)

    def _render(self, tasks: list[int], job_name: str, throttle: int,
                body: dict[str, Any], directives: list[str]) -> str:
        """The array script (tasks ``first-last``: an array's tasks are consecutive). The
        time-limit warning is the soft limit ``-l s_rt``, ``warning`` seconds before
        ``h_rt``."""
        limit = self.time_limit()
        return templating.render(ARRAY_TEMPLATE, {
            "job_name": safe_job_name(job_name),
            "tasks": f"{min(tasks)}-{max(tasks)}",
            "throttle": throttle,
            "log_dir": str(self.log_dir.resolve()),
            "soft_limit": hms(limit - self.warning) if self.warning and limit else "",
            "directives": directives,
            "job_setup": list(self.settings.job_setup),
            "worker": None,
            **body,
        }, self.settings.job_template)

    def task_job_id(self, array_id: str, task: int) -> str:
        return f"{array_id}.{task + 1}"

    def array_of(self, job_id: str) -> str:
        return job_id.split(".", 1)[0]

    def _submit_array(self, script: Path) -> str:
        try:
            done = _run(["qsub", "-terse", str(script)])
        except subprocess.TimeoutExpired as exc:
            raise SubmitUnclear(f"qsub did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        except FileNotFoundError as exc:
            raise BackendError("qsub not found: is this a Grid Engine submit host?") from exc
        if done.returncode != 0:
            message = f"qsub {script}: {gp.qsub_error(done.stderr + done.stdout)}"
            if gp.qsub_unclear(done.stderr):
                raise SubmitUnclear(message)
            if gp.qsub_retryable(done.stderr + done.stdout):
                raise SubmitRefused(message)
            raise BackendError(message)
        try:
            return gp.parse_qsub_terse(done.stdout)
        except ValueError as exc:
            raise SubmitUnclear(f"qsub {script}: {exc}") from exc

    def _qstat(self) -> list[gp.QstatJob]:
        """``qstat -xml -u <user>``: this user's jobs that wait or run (one call; some sites
        list every user's jobs by default)."""
        try:
            done = _run(["qstat", "-xml", "-u", getpass.getuser()])
        except subprocess.TimeoutExpired as exc:
            raise QueryFailed(f"qstat did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        except FileNotFoundError as exc:
            raise BackendError("qstat not found: is this a Grid Engine submit host?") from exc
        if done.returncode != 0:
            raise QueryFailed(f"qstat: {done.stderr.strip() or done.returncode}")
        try:
            return gp.parse_qstat_xml(done.stdout)
        except ValueError as exc:
            raise QueryFailed(str(exc)) from exc

    def _find_array(self, job_name: str) -> str | None:
        name = safe_job_name(job_name)
        ids = sorted({j.number for j in self._qstat() if j.name == name}, key=int)
        return ids[0] if ids else None

    def _set_throttle(self, array_id: str, throttle: int) -> None:
        """``qalter -tc <n> <job>``: Grid Engine's way to change an array's task limit."""
        try:
            done = _run(["qalter", "-tc", str(throttle), array_id])
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"qalter: {exc}") from exc
        errors = gp.error_lines(f"{done.stdout}\n{done.stderr}")
        if done.returncode != 0 and errors:
            raise BackendError(f"qalter: {errors[0]}")

    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        """States by job id: qstat's state letters (``qw``, ``r``, ``t``, ``Eqw``...) for
        the tasks it lists. A task it no longer lists is ``ENDING`` the first time (its exit
        file, written as it ended, is read before the next query); after that, why it ended
        as ``qacct -j`` says (:func:`~hpsearch.backends.sge.parse.classify_qacct`), one call
        per array, counted as accounting -- ``ENDING`` while qacct does not know it yet (the
        accounting file is written every ``flush_time``, 15 s by default), for at most
        :data:`ACCOUNTING_WAIT` seconds; then it is left out (gone)."""
        states = gp.task_states(self._qstat())
        now = self._clock()
        missing = [j for j in job_ids if j not in states]
        self._missing_since = {j: self._missing_since.get(j, now) for j in missing}
        asked = [j for j in missing if self._missing_since[j] < now]
        for array in sorted({self.array_of(j) for j in asked}, key=int):
            states.update({job: gp.classify_qacct(record)
                           for job, record in self._qacct(array).items() if job not in states})
        for job in missing:
            if job not in states and now - self._missing_since[job] < ACCOUNTING_WAIT:
                states[job] = ENDING
        return {job_id: states[job_id] for job_id in job_ids if job_id in states}

    def _account(self, job_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Each ended task's hours as ``qacct -j <job>`` has them, one call per array
        (:func:`~hpsearch.backends.sge.parse.qacct_usage`); tasks it does not know yet are
        left out."""
        found = {}
        for array in sorted({self.array_of(j) for j in job_ids}, key=int):
            records = self._qacct(array)
            found.update({job: gp.qacct_usage(records[job]) for job in job_ids
                          if job in records})
        return found

    def _qacct(self, array_id: str) -> dict[str, gp.QacctRecord]:
        """``qacct -j <job>``'s records (``{}``: not accounted yet, or no accounting)."""
        self.calls.accounting += 1
        try:
            done = _run(["qacct", "-j", array_id])
        except (OSError, subprocess.TimeoutExpired):
            return {}
        return gp.parse_qacct(done.stdout) if done.returncode == 0 else {}

    def _cancel_jobs(self, job_ids: Sequence[str]) -> None:
        qdel(job_ids)

    def _signal_jobs(self, job_ids: Sequence[str], signal_name: str) -> None:
        """Grid Engine sends no chosen signal: ``qdel`` on a ``-notify`` job sends SIGUSR2,
        which the job script passes on to the run as SIGTERM (``signal_name``), then
        SIGKILL after the queue's ``notify`` time."""
        qdel(job_ids)

    def _read_limits(self) -> tuple[int, int]:
        """``max_aj_tasks`` of ``qconf -sconf``; the queue cap: half of ``max_u_jobs`` or
        ``max_jobs`` where one is set."""
        text = self._global_config()
        if not text:
            return gp.DEFAULT_MAX_AJ_TASKS, DEFAULT_MAX_QUEUED
        caps = [int(m.group(1)) for m in re.finditer(r"^max_(?:u_)?jobs\s+(\d+)\s*$", text,
                                                     re.MULTILINE) if int(m.group(1))]
        return (max(1, gp.parse_max_aj_tasks(text)),
                max(1, min(caps) // 2) if caps else DEFAULT_MAX_QUEUED)
