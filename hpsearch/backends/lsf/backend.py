"""The IBM Spectrum LSF backend: runs become elements of job arrays submitted with ``bsub``.

Each array script goes to ``bsub`` on standard input (``bsub < script``, as an argv call
without a shell); its ``#BSUB`` lines carry the options. LSF numbers array elements from 1
in every array, so the run of base task ``t`` (0-based, see :class:`ClusterBackend`) is
element ``t + 1`` and its job id is ``"<array id>[<t + 1>]"`` (e.g. ``"1234[3]"``). One
``bjobs -a`` call per poll covers every watched array; ``bkill`` gets every job id in one
call. Texts read from LSF's commands are parsed in :mod:`hpsearch.backends.lsf.parse`.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.backends import templating
from hpsearch.backends.base import BackendError
from hpsearch.backends.cluster.backend import ClusterBackend, ClusterSettings
from hpsearch.backends.cluster.scheduler import QueryFailed, SubmitRefused, SubmitUnclear, Task
from hpsearch.backends.lsf import parse as lp
from hpsearch.backends.lsf.options import LsfJob
from hpsearch.runs.model import Resources
from hpsearch.spec.values import strip_wrapping_quotes

ARRAY_TEMPLATE = "lsf/templates/lsf_array.bsub.j2"
DRIVER_TEMPLATE = "lsf/templates/lsf_driver.bsub.j2"
LOG_DIR = "lsf_logs"
#: how many runs may be queued at once; a busy cluster's refusals lower it (see the base)
DEFAULT_MAX_QUEUED = 10000
#: options the templates set themselves (job name, log files)
_RESERVED = {"J", "o", "oo", "e", "eo"}
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_COMMAND_TIMEOUT = 120.0


def lsf_resources(options: LsfJob) -> str:
    """``--resources`` as ``-R`` takes it: ``'"rusage[mem=8000]"'`` -> ``rusage[mem=8000]``.

    hypnettorch's default carries its own quotes (it pasted the value into a shell line);
    one pair wrapping the whole value is dropped.
    """
    return strip_wrapping_quotes((options.resources or "").strip()).strip()


def _check_value(flag: str, value: str) -> None:
    if not value.strip() or "\n" in value or "\0" in value:
        raise ValueError(f"{flag}: value {value!r} is empty or spans lines; give a value "
                         "or leave the option out")


def bsub_options(options: LsfJob) -> list[str]:
    """``--bsub_option`` items as the templates take them: ``"KEY=VALUE"`` or ``"KEY"``.

    A leading ``-`` is dropped (``-P=proj`` -> ``P=proj``). Raises ``ValueError`` (one
    line) for a key that is not an option name, one the templates set themselves, or an
    empty value.
    """
    items = []
    for item in options.bsub_options:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not _KEY.fullmatch(key):
            raise ValueError(f"--bsub_option {item!r}: expected KEY=VALUE or a bare flag "
                             "such as P=myproject or x")
        if key in _RESERVED:
            raise ValueError(f"--bsub_option {item!r}: hpsearch sets -{key} itself; leave it out")
        if sep:
            _check_value(f"--bsub_option {key}", value)
        items.append(f"{key}={value.strip()}" if sep else key)
    return items


def job_time_limit(items: Sequence[str], num_hours: float | None) -> float | None:
    """``-W`` in seconds: a ``--bsub_option=W=[hour:]minute`` among ``items``
    (:func:`bsub_options`), else ``num_hours``; None: no limit (or one that is no time)."""
    given = [o.partition("=")[2] for o in items if o.partition("=")[0] == "W"]
    if not given:
        return num_hours * 3600 if num_hours else None
    hours, _, minutes = given[-1].split("/")[0].rpartition(":")
    try:
        return (int(hours or 0) * 60 + int(minutes)) * 60.0
    except ValueError:
        return None


def run_resources(options: LsfJob, gpu_memory_mib: int | None) -> Resources:
    """What each run's job asks LSF for: GPUs of ``-gpu`` (``--lsf_gpu`` or ``--bsub_option
    gpu=...``), else those ``-R`` reserves (``--resources``: hypnettorch's default
    ``rusage[mem=8000, ngpus_excl_p=1]`` -> 1); ``-n`` CPUs (1); one node; ``-W``
    (:func:`job_time_limit`); ``gpu_memory_mib``: ``--gpu_memory_per_run``. Its memory is
    left None: the unit of ``rusage[mem=...]`` is the cluster's setting
    (``LSF_UNIT_FOR_LIMITS``)."""
    items = bsub_options(options)
    given = dict(o.partition("=")[::2] for o in items)
    gpu = given.get("gpu", options.lsf_gpu.strip())
    cpus = given.get("n", "")
    return Resources(
        gpus=lp.gpu_count(gpu) if gpu else lp.rusage_gpus(lsf_resources(options)),
        cpus=int(cpus) if cpus.isdigit() else 1, memory=None, nodes=1,
        time_limit=job_time_limit(items, options.num_hours), gpu_memory_mib=gpu_memory_mib)


def resource_directives(resources: Resources) -> list[str]:
    """The bsub options (``--bsub_option`` items, ``KEY=VALUE``) that ask for ``resources``:
    ``gpu=num=N`` (none for 0 GPUs), ``n=<CPUs x nodes>``, ``R=span[hosts=1]`` (one node) or
    ``R=span[ptile=<CPUs>]`` (several), ``W=<minutes>``; e.g. ``["gpu=num=2", "n=4",
    "R=span[hosts=1]", "W=60"]``. Memory is left to ``--resources``'s ``rusage[mem=...]``
    (its unit is the cluster's ``LSF_UNIT_FOR_LIMITS``)."""
    items = [f"gpu=num={resources.gpus}"] if resources.gpus else []
    items.append(f"n={resources.cpus * resources.nodes}")
    items.append("R=span[hosts=1]" if resources.nodes == 1 else f"R=span[ptile={resources.cpus}]")
    if resources.time_limit is not None:
        items.append(f"W={max(1, math.ceil(resources.time_limit / 60))}")
    return items


#: the bsub options that ask for each field of Resources (see :func:`shape_context`)
_ASKING = {"gpus": {"gpu"}, "cpus": {"n", "R"}, "nodes": {"n", "R"}, "time_limit": {"W"}}


def shape_context(settings: LsfSettings, base: Resources, resources: Resources,
                  directives: Callable[[Resources], list[str]]) -> dict[str, Any]:
    """What the array template is given for runs needing ``resources``, where the flags
    ask for ``base``: the flags' ``lsf_gpu`` and ``bsub_options``, with every option asking
    for a field ``resources`` changes replaced by ``directives(resources)``'s (``--lsf_gpu``
    gives way to ``gpu=num=N``)."""
    changed = [name for name in _ASKING if getattr(base, name) != getattr(resources, name)]
    replaced = set().union(*(_ASKING[name] for name in changed))
    options = [o for o in settings.bsub_options if o.partition("=")[0] not in replaced]
    options += [o for o in directives(resources) if o.partition("=")[0] in replaced]
    return {"lsf_gpu": "" if "gpu" in replaced else settings.gpu,
            "cpus": next((o.partition("=")[2] for o in options if o.startswith("n=")), 1),
            "bsub_options": [o for o in options if not o.startswith("n=")]}


def validate_lsf_options(options: LsfJob) -> None:
    """Check every ``#BSUB`` value the flags produce; ``ValueError`` (one line) if bad."""
    bsub_options(options)
    resources = lsf_resources(options)
    if resources and ("\n" in resources or '"' in resources or "'" in resources):
        raise ValueError(f"--resources={options.resources!r}: a resource requirement may be "
                         "wrapped in one pair of quotes but hold none inside, nor a newline")
    for flag, value in (("--lsf_queue", options.lsf_queue), ("--lsf_gpu", options.lsf_gpu)):
        if value and ("\n" in value or not value.strip()):
            _check_value(flag, value)
    if options.job_template is not None:
        templating.load_template(ARRAY_TEMPLATE, options.job_template)


def safe_job_name(text: str) -> str:
    """A job name LSF's ``-J "name[1-N]%k"`` takes: letters, digits, ``_.-`` only."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64] or "hpsearch"


def render_lsf_driver_script(options: LsfJob, argv: Sequence[str], cwd: Path,
                             name: str = "hpsearch-driver") -> str:
    """The wrapper job running the driver itself (``hpsearch wrap --scheduler lsf``).

    Submit with ``bsub < script``. It gets the time limit (``-W``), ``-R`` from
    ``--resources`` (``hpsearch wrap`` passes ``rusage[mem=<driver_mem>]``), the queue and
    the extra ``--bsub_option`` items, but no ``-gpu``: the driver needs no GPU, its runs
    ask for their own. Its LSF log files go to ``cwd``, which exists when it is submitted
    (``--out_dir`` may not yet, and LSF drops output it cannot write).
    """
    validate_lsf_options(options)
    return templating.render(DRIVER_TEMPLATE, {
        "name": safe_job_name(name),
        "log_dir": str(Path(cwd).resolve()),
        "num_hours": options.num_hours,
        "resources": lsf_resources(options),
        "lsf_queue": options.lsf_queue.strip(),
        "bsub_options": bsub_options(options),
        "job_setup": list(options.job_setup),
        "cwd": str(Path(cwd).resolve()),
        "argv": list(argv),
    })


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          timeout=_COMMAND_TIMEOUT, check=False)


def bkill(job_ids: Sequence[str], signal_name: str | None = None) -> int:
    """Kill ``job_ids`` (``"1234"``, ``"1234[3]"``) with one ``bkill`` -- or, given
    ``signal_name``, send them that signal (``bkill -s TERM``); the count it reached.

    Ids LSF no longer knows or that already ended are not an error. Raises
    ``BackendError`` when bkill is missing or reports another failure.
    """
    if not job_ids:
        return 0
    try:
        done = _run(["bkill", *(["-s", signal_name] if signal_name else []), *job_ids])
    except FileNotFoundError as exc:
        raise BackendError("bkill not found: is this an LSF login node?") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"bkill did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
    errors = lp.scheduler_errors(done.stderr)
    if done.returncode != 0 and errors:
        raise BackendError(f"bkill: {errors[0]}")
    return done.stdout.count("is being terminated") + done.stdout.count("is being signaled")


@dataclass(frozen=True)
class LsfSettings:
    """What the LSF backend reads of a search's options, as the templates take them."""

    num_hours: float | None  # -W (--num_hours), unless a W among bsub_options
    resources: str  # -R (--resources, see lsf_resources)
    queue: str  # -q (--lsf_queue)
    gpu: str  # -gpu (--lsf_gpu)
    bsub_options: tuple[str, ...]  # --bsub_option items (see bsub_options)


def lsf_settings(options: LsfJob) -> LsfSettings:
    """The LSF backend's settings that ``options`` give (ValueError, one line, if bad)."""
    return LsfSettings(options.num_hours, lsf_resources(options), options.lsf_queue.strip(),
                       options.lsf_gpu.strip(), tuple(bsub_options(options)))


class LsfBackend(ClusterBackend):
    """Runs as LSF job array elements; see the module docstring."""

    name = "lsf"
    commands = ("bsub", "bjobs", "bkill", "bmod")
    log_dir_name = LOG_DIR
    final_states = lp.FINISHED_STATES
    queued_states = lp.PENDING_STATES
    timeout_states = lp.TIMEOUT_STATES
    preempted_states = lp.PREEMPTED_STATES
    lost_states = lp.LOST_STATES

    def __init__(self, cluster: ClusterSettings, lsf: LsfSettings, **kwargs) -> None:
        self.lsf = lsf
        super().__init__(cluster, **kwargs)

    def time_limit(self) -> float | None:
        """``-W`` in seconds: ``--num_hours``, or a ``--bsub_option=W=[hour:]minute``."""
        return job_time_limit(self.lsf.bsub_options, self.lsf.num_hours)

    def is_final(self, state: str) -> bool:
        """DONE, or an EXIT element by the reason ``_query`` gave it (``TERM_RUNLIMIT``...)."""
        return (state in self.final_states or state == "killed"
                or state.startswith(("TERM_", "exit status")))

    def render_array(self, tasks: Sequence[Task], job_name: str, throttle: int) -> str:
        """The array of ``tasks`` (runs of one shape), with the options of that shape
        (:func:`shape_context`)."""
        shape = shape_context(self.lsf, self.settings.resources, tasks[0].run.resources,
                              self.settings.directives) if tasks else {}
        return self._render([t.task + 1 for t in tasks], job_name, throttle,
                            {**self.run_context(tasks, "index", 1), **shape})

    def render_workers(self, count: int, job_name: str, throttle: int,
                       worker: Mapping[str, Any]) -> str:
        return self._render(list(range(1, count + 1)), job_name, throttle,
                            {"runs": [], "worker": dict(worker)})

    def _render(self, indices: list[int], job_name: str, throttle: int,
                body: dict[str, Any]) -> str:
        """The array script; the time-limit warning is ``-wa URG -wt <minutes>`` (LSF
        counts it in whole minutes: rounded up), sent to every process of the job."""
        return templating.render(ARRAY_TEMPLATE, {
            "name": safe_job_name(job_name),
            "indices": _index_list(indices),
            "num_jobs": throttle,
            "log_dir": str(self.log_dir.resolve()),
            "num_hours": self.lsf.num_hours,
            "warning_minutes": math.ceil(self.warning / 60),
            "resources": self.lsf.resources,
            "lsf_queue": self.lsf.queue,
            "lsf_gpu": self.lsf.gpu,
            "bsub_options": list(self.lsf.bsub_options),
            "job_setup": list(self.settings.job_setup),
            "worker": None,
            **body,
        }, self.settings.job_template)

    def task_job_id(self, array_id: str, task: int) -> str:
        return f"{array_id}[{task + 1}]"

    def array_of(self, job_id: str) -> str:
        return job_id.split("[", 1)[0]

    def _submit_array(self, script: Path) -> str:
        try:
            done = _run(["bsub"], stdin=script.read_text())
        except subprocess.TimeoutExpired as exc:
            raise SubmitUnclear(f"bsub did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        except FileNotFoundError as exc:
            raise BackendError("bsub not found: is this an LSF login node?") from exc
        answer = (done.stderr.strip() or done.stdout.strip()).splitlines()
        message = f"bsub < {script}: {answer[-1] if answer else done.returncode}"
        if done.returncode != 0:
            if lp.bsub_retryable(done.stderr + done.stdout):
                raise SubmitRefused(message)
            raise BackendError(message)
        try:
            return lp.parse_bsub_job_id(done.stdout)
        except ValueError as exc:
            raise SubmitUnclear(f"{message} ({exc})") from exc

    def _find_array(self, job_name: str) -> str | None:
        """``bjobs -a -noheader -J <name> -o "jobid"``: the array's id, once per element."""
        try:
            done = _run(["bjobs", "-a", "-noheader", "-J", safe_job_name(job_name),
                         "-o", "jobid"])
        except subprocess.TimeoutExpired as exc:
            raise QueryFailed(f"bjobs did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        errors = lp.scheduler_errors(done.stderr)
        if done.returncode != 0 and errors:
            raise QueryFailed(f"bjobs: {errors[0]}")
        ids = sorted({ln.strip() for ln in done.stdout.splitlines() if ln.strip().isdigit()},
                     key=int)
        return ids[0] if ids else None

    def _set_throttle(self, array_id: str, throttle: int) -> None:
        """``bmod -J "%<n>" <array id>``: LSF's way to change an array's job slot limit."""
        try:
            done = _run(["bmod", "-J", f"%{throttle}", array_id])
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"bmod: {exc}") from exc
        errors = lp.scheduler_errors(done.stderr)
        if done.returncode != 0 and errors:
            raise BackendError(f"bmod: {errors[0]}")

    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        """States by job id: LSF's STAT, but an EXIT element by why it ended.

        ``TERM_RUNLIMIT``, ``TERM_MEMLIMIT``, ``killed``, ``exit status 3``... (see
        :func:`~hpsearch.backends.lsf.parse.classify_exit`), which becomes the run's reason.
        """
        arrays = sorted({self.array_of(j) for j in job_ids}, key=int)
        try:
            done = _run(["bjobs", "-a", "-noheader", "-o", lp.BJOBS_FORMAT, *arrays])
        except subprocess.TimeoutExpired as exc:
            raise QueryFailed(f"bjobs did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        except FileNotFoundError as exc:
            raise BackendError("bjobs not found: is this an LSF login node?") from exc
        errors = lp.scheduler_errors(done.stderr)
        if done.returncode != 0 and errors:
            raise QueryFailed(f"bjobs: {errors[0]}")
        rows = lp.parse_bjobs(done.stdout)
        return {job_id: lp.classify_exit(row) or row.stat
                for job_id in job_ids if (row := rows.get(job_id)) is not None}

    def _cancel_jobs(self, job_ids: Sequence[str]) -> None:
        bkill(job_ids)

    def _signal_jobs(self, job_ids: Sequence[str], signal_name: str) -> None:
        bkill(job_ids, signal_name)

    def _read_limits(self) -> tuple[int, int]:
        try:
            done = _run(["bparams", "-a"])
        except (OSError, subprocess.TimeoutExpired):
            return lp.DEFAULT_MAX_JOB_ARRAY_SIZE, DEFAULT_MAX_QUEUED
        size = (lp.parse_max_job_array_size(done.stdout) if done.returncode == 0
                else lp.DEFAULT_MAX_JOB_ARRAY_SIZE)
        return max(1, size), DEFAULT_MAX_QUEUED


def _index_list(indices: Sequence[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3,5"`` (LSF's ``start-end`` index list)."""
    parts: list[str] = []
    start = prev = None
    for i in sorted(indices):
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)
