"""The Slurm backend: runs become tasks of job arrays submitted with ``sbatch``.

Job ids are array task ids, ``"<array job id>_<task>"`` (e.g. ``"1234_7"``). One
``squeue --states=all`` call per poll covers every watched array; ``scancel`` gets every
job id in one call. See :mod:`hpsearch.backends.cluster.backend` for the shared logic and
:mod:`hpsearch.backends.slurm.parse` for the text read from Slurm's commands.
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from hpsearch.backends import templating
from hpsearch.backends.base import BackendError
from hpsearch.backends.cluster.backend import ClusterBackend, ClusterSettings
from hpsearch.backends.cluster.scheduler import QueryFailed, SubmitRefused, SubmitUnclear, Task
from hpsearch.backends.slurm import parse as sp
from hpsearch.backends.slurm.options import SlurmJob
from hpsearch.runs.model import Resources

ARRAY_TEMPLATE = "slurm/templates/slurm_array.sbatch.j2"
DRIVER_TEMPLATE = "slurm/templates/slurm_driver.sbatch.j2"
#: Slurm's defaults, used when ``scontrol show config`` does not answer
DEFAULT_MAX_ARRAY_SIZE = 1001
DEFAULT_MAX_JOB_COUNT = 10000
#: options the array template sets itself
_RESERVED = {"array", "job-name", "output", "error", "wrap"}
_COMMAND_TIMEOUT = 120.0


@lru_cache(maxsize=1)
def sbatch_option_names() -> frozenset[str]:
    """sbatch's long option names (``mem-per-gpu``...), from simple-slurm's list."""
    text = resources.files("simple_slurm").joinpath("arguments.txt").read_text()
    return frozenset(line.split(",")[0].strip().replace("_", "-")
                     for line in text.splitlines() if line.strip())


def _parse_extra(item: str) -> tuple[str, str | None]:
    """``"mem-per-cpu=2G"`` / ``"--exclusive"`` -> (``"mem-per-cpu"``, ``"2G"`` / None)."""
    key, sep, value = item.partition("=")
    key = key.strip().lstrip("-").replace("_", "-")
    return key, (value if sep else None)


def _check_key(key: str, item: str) -> None:
    names = sbatch_option_names()
    if key in _RESERVED:
        raise ValueError(f"--sbatch_option {item!r}: hpsearch sets --{key} itself; "
                         "leave it out")
    if key not in names:
        close = difflib.get_close_matches(key, sorted(names), n=3, cutoff=0.6)
        hint = (f"; did you mean {', '.join('--' + c for c in close)}?" if close
                else "; see `sbatch --help` for the option names")
        raise ValueError(f"--sbatch_option {item!r}: sbatch has no option --{key}{hint}")


def time_minutes(num_hours: float) -> int:
    """``--num_hours`` as whole minutes for ``--time`` (rounded up; 0.5 -> 30)."""
    return max(1, math.ceil(round(num_hours * 60, 6)))


def slurm_directives(options: SlurmJob) -> list[str]:
    """The ``#SBATCH`` options the flags ask for, e.g. ``["--time=240", "--mem=8G"]``.

    An empty flag value leaves its directive out (``--slurm_gres=`` -> no ``--gres``).
    ``--sbatch_option KEY=VALUE`` adds ``--KEY=VALUE`` (``KEY`` alone: a bare flag) and
    replaces a directive of the same name. Raises ``ValueError`` (one line) for an
    option sbatch does not know.
    """
    chosen: dict[str, str | None] = {}
    if options.num_hours and options.num_hours > 0:
        chosen["time"] = str(time_minutes(options.num_hours))
    for key, value in (("mem", options.slurm_mem), ("gres", options.slurm_gres),
                       ("partition", options.slurm_partition), ("qos", options.slurm_qos),
                       ("constraint", options.slurm_constraint)):
        if value:
            chosen[key] = value
    for item in options.sbatch_options:
        key, value = _parse_extra(item)
        _check_key(key, item)
        chosen[key] = value
    directives = []
    for key, value in chosen.items():
        if value is not None and ("\n" in value or not value.strip()):
            raise ValueError(f"sbatch option --{key}: value {value!r} is empty or spans lines")
        directives.append(f"--{key}" if value is None
                          else f"--{key}={shlex.quote(value.strip())}")
    return directives


def directive_values(directives: Sequence[str]) -> dict[str, str]:
    """``["--time=240", "--gres='gpu:1'", "--exclusive"]`` -> ``{"time": "240", "gres":
    "gpu:1", "exclusive": ""}``: each directive's value, unquoted (the last one of a name)."""
    values = {}
    for directive in directives:
        key, _, value = directive.removeprefix("--").partition("=")
        values[key] = " ".join(shlex.split(value))
    return values


def run_resources(options: SlurmJob, gpu_memory_mib: int | None) -> Resources:
    """What each run's job asks Slurm for, as the directives the flags produce say
    (``--slurm_gres gpu:1``: 1 GPU; ``--slurm_mem 8G``: 8 GiB; ``--num_hours 24``: a day):
    GPUs of ``--gres`` and ``--gpus``, ``--cpus-per-task`` (1), ``--mem``, ``--nodes`` (1),
    ``--time``; ``gpu_memory_mib``: ``--gpu_memory_per_run``."""
    given = directive_values(slurm_directives(options))
    limit = sp.parse_time_limit(given.get("time", ""))
    return Resources(
        gpus=sp.gres_gpus(given.get("gres", "")) + sp.leading_count(given.get("gpus", ""), 0),
        cpus=sp.leading_count(given.get("cpus-per-task", ""), 1),
        memory=sp.memory_bytes(given.get("mem", "")),
        nodes=sp.leading_count(given.get("nodes", ""), 1),
        time_limit=None if limit is None else float(limit),
        gpu_memory_mib=gpu_memory_mib)


def resource_directives(resources: Resources) -> list[str]:
    """The ``#SBATCH`` options that ask for ``resources``: ``--gres=gpu:N`` (none for 0 GPUs),
    ``--cpus-per-task``, ``--mem`` (MiB, rounded up), ``--nodes``, ``--time`` (minutes,
    rounded up), e.g. ``["--gres=gpu:2", "--cpus-per-task=4", "--mem=65536M", "--nodes=1",
    "--time=60"]``."""
    directives = [f"--gres=gpu:{resources.gpus}"] if resources.gpus else []
    directives.append(f"--cpus-per-task={resources.cpus}")
    if resources.memory is not None:
        directives.append(f"--mem={-(-resources.memory // 1024 ** 2)}M")
    directives.append(f"--nodes={resources.nodes}")
    if resources.time_limit is not None:
        directives.append(f"--time={max(1, math.ceil(resources.time_limit / 60))}")
    return directives


#: the sbatch options that ask for each field of Resources: a shape that changes the field
#: replaces every one of them the flags gave
_ASKING = {"gpus": {"gres", "gpus", "gpus-per-node", "gpus-per-task"},
           "cpus": {"cpus-per-task"}, "memory": {"mem", "mem-per-cpu", "mem-per-gpu"},
           "nodes": {"nodes"}, "time_limit": {"time"}}


#: a ``--gres`` directive naming one GPU type: ``--gres=gpu:a100:1`` (quoted or not)
_TYPED_GRES = re.compile(r"^--gres='?gpu:([\w.-]+):\d+'?$")


def shape_directives(flags: Sequence[str], base: Resources, resources: Resources,
                     directives: Callable[[Resources], list[str]]) -> list[str]:
    """The directives of an array of runs needing ``resources``: those the flags give
    (``flags``, which ask for ``base``), with every option asking for a field ``resources``
    changes replaced by ``directives(resources)``'s of it. The flags' own choices hold
    where a run's declaration says nothing (``--slurm_gres=gpu:a100:1`` stays as given for
    runs of one GPU, and a run of two asks ``--gres=gpu:a100:2``)."""
    changed = [name for name in _ASKING if getattr(base, name) != getattr(resources, name)]
    replaced = set().union(*(_ASKING[name] for name in changed))
    kept = [d for d in flags if d.removeprefix("--").partition("=")[0] not in replaced]
    ours = [d for d in directives(resources)
            if d.removeprefix("--").partition("=")[0] in replaced]
    typed = next((m for d in flags if (m := _TYPED_GRES.match(d))), None)
    if typed is not None:  # keep the GPU type the flags name: gpu:a100:1 -> gpu:a100:2
        ours = [f"--gres=gpu:{typed.group(1)}:{resources.gpus}" if d.startswith("--gres=gpu:")
                else d for d in ours]
    return kept + ours


def validate_slurm_options(options: SlurmJob) -> None:
    """Check every sbatch directive the flags produce; ``ValueError`` (one line) if bad."""
    slurm_directives(options)
    if options.job_template is not None:
        templating.load_template(ARRAY_TEMPLATE, options.job_template)


def render_driver_script(options: SlurmJob, argv: Sequence[str], cwd: Path,
                         job_name: str = "hpsearch-driver") -> str:
    """The wrapper job running the driver itself (``hpsearch wrap --scheduler slurm``).

    ``options`` are the driver's own (:func:`hpsearch.backends.driver_options`: no GPU
    request, its own time, memory and partition). Its own
    output goes to ``cwd`` (Slurm does not create a missing ``--output`` folder, and
    ``--out_dir`` may not exist yet when the job starts).
    """
    return templating.render(DRIVER_TEMPLATE, {
        "job_name": job_name,
        "log_dir": str(Path(cwd).resolve()),
        "directives": slurm_directives(options),
        "job_setup": list(options.job_setup),
        "cwd": str(cwd),
        "argv": list(argv),
    })


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT,
                          check=False)


#: what ``scancel --signal=...`` says of a job that ended before the signal reached it: on
#: stderr, ``scancel: error: Kill job error on job id 507: Invalid job id specified`` (the
#: job is over) or ``... already completing or completed``; or nothing, and its exit status
#: is Slurm's ESLURM_ALREADY_DONE (2021) as a process's status, 2021 % 256 = 229 (the job
#: is completing). Either way there is nothing left to signal.
_ENDED_MESSAGES = ("Invalid job id specified", "already completing or completed")
_ALREADY_DONE_STATUS = 2021 % 256


def _only_ended_jobs(done: subprocess.CompletedProcess[str]) -> bool:
    """Whether a failed ``scancel`` failed only for jobs that had ended already."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    if not lines:
        return done.returncode == _ALREADY_DONE_STATUS
    return all(any(message in line for message in _ENDED_MESSAGES) for line in lines)


def scancel(job_ids: Sequence[str], *options: str) -> None:
    """Cancel ``job_ids`` (``"1234_7"``, ``"1234"``) with one ``scancel`` call (``options``
    first, e.g. ``--signal=TERM --full`` to send a signal instead).

    Jobs already over or forgotten are no error: ``scancel 77 78 99999`` with 78
    completed and 99999 unknown exits 0 silently (Slurm 22.05); with ``--signal`` it
    fails for them (:data:`_ENDED_MESSAGES`), which is no error either: a pruned run whose
    job ended as the signal went out is judged from its files like any other.
    """
    if not job_ids:
        return
    try:
        done = _run(["scancel", *options, *job_ids])
    except FileNotFoundError as exc:
        raise BackendError("scancel not found: is this a Slurm login node?") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"scancel did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
    if done.returncode != 0 and not _only_ended_jobs(done):
        raise BackendError(f"scancel: {done.stderr.strip() or done.returncode}")


@dataclass(frozen=True)
class SlurmSettings:
    """What the Slurm backend reads of a search's options: the ``#SBATCH`` directives of
    its jobs (:func:`slurm_directives`: ``--time``, ``--mem``, ``--gres``, ``--partition``,
    ``--qos``, ``--constraint``, ``--sbatch_option``)."""

    directives: tuple[str, ...]


def slurm_settings(options: SlurmJob) -> SlurmSettings:
    """The Slurm backend's settings that ``options`` give (ValueError, one line, if bad)."""
    return SlurmSettings(tuple(slurm_directives(options)))


class SlurmBackend(ClusterBackend):
    """Runs as Slurm job array tasks; see the module docstring."""

    name = "slurm"
    commands = ("sbatch", "squeue", "scancel")
    final_states = sp.FINAL_STATES
    queued_states = sp.QUEUED_STATES
    timeout_states = sp.TIMEOUT_STATES
    preempted_states = sp.PREEMPTED_STATES
    lost_states = sp.LOST_STATES
    accounts_jobs = True
    accounted_by = "sacct"
    #: slurmstepd signals every process of the job (those of other sessions too), so a
    #: packed run gets scancel's or a requeue's SIGTERM from Slurm itself, and only once
    signals_every_process = True
    #: a K-node torchrun run starts through one srun inside its job (the array template)
    launches_nodes = True

    def __init__(self, cluster: ClusterSettings, slurm: SlurmSettings, **kwargs) -> None:
        self.directives = list(slurm.directives)
        super().__init__(cluster, **kwargs)

    def time_limit(self) -> float | None:
        """The ``--time`` directive's seconds (``--num_hours``, or ``--sbatch_option=time=``)."""
        time = directive_values(self.directives).get("time")
        return sp.parse_time_limit(time) if time else None

    def render_array(self, tasks: Sequence[Task], job_name: str, throttle: int) -> str:
        """The array of ``tasks`` (runs of one shape: see the cluster backend), with the
        directives of that shape (:func:`shape_directives`)."""
        directives = shape_directives(self.directives, self.settings.resources,
                                      tasks[0].run.resources, self.settings.directives) \
            if tasks else self.directives
        return self._render([t.task for t in tasks], job_name, throttle,
                            {**self.run_context(tasks, "task", 0), "directives": directives})

    def render_workers(self, count: int, job_name: str, throttle: int,
                       worker: Mapping[str, Any]) -> str:
        return self._render(list(range(count)), job_name, throttle,
                            {"runs": [], "worker": dict(worker)})

    def _render(self, tasks: list[int], job_name: str, throttle: int,
                body: dict[str, Any]) -> str:
        """The array script. The time-limit warning
        (:func:`~hpsearch.backends.cluster.requeue.walltime_warning`) is ``--signal=B:URG@<s>``
        (before the flags' directives: an ``--sbatch_option=signal=...`` wins): SIGURG to
        the batch shell only, which every shell and program ignores unless it asks for it,
        whereas scancel and requeue send SIGTERM -- so the job script tells the warning from
        the rest, and passes it on to the run as SIGTERM."""
        return templating.render(ARRAY_TEMPLATE, {
            "warning": self.warning,
            "job_name": job_name,
            "array": f"{sp.array_ranges(tasks)}%{throttle}",
            "log_dir": str(self.log_dir.resolve()),
            "directives": self.directives,
            "job_setup": list(self.settings.job_setup),
            "worker": None,
            **body,
        }, self.settings.job_template)

    def task_job_id(self, array_id: str, task: int) -> str:
        return f"{array_id}_{task}"

    def array_of(self, job_id: str) -> str:
        return job_id.split("_", 1)[0]

    def _submit_array(self, script: Path) -> str:
        try:
            done = _run(["sbatch", "--parsable", str(script)])
        except subprocess.TimeoutExpired as exc:
            raise SubmitUnclear(f"sbatch did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        except FileNotFoundError as exc:
            raise BackendError("sbatch not found: is this a Slurm login node?") from exc
        if done.returncode != 0:
            message = f"sbatch {script}: {sp.sbatch_error_line(done.stderr)}"
            kind = sp.sbatch_failure_kind(done.stderr)
            if kind == "unclear":
                raise SubmitUnclear(message)
            if kind == "refused":
                raise SubmitRefused(message)
            raise BackendError(message)
        try:
            return sp.parse_sbatch_parsable(done.stdout)
        except ValueError as exc:
            raise SubmitUnclear(f"sbatch {script}: {exc}") from exc

    def _find_array(self, job_name: str) -> str | None:
        try:
            done = _run(["squeue", "--noheader", "--states=all", f"--name={job_name}",
                         "--format=%F"])
        except subprocess.TimeoutExpired as exc:
            raise QueryFailed(f"squeue did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        if done.returncode != 0:
            raise QueryFailed(f"squeue: {done.stderr.strip() or done.returncode}")
        ids = sp.parse_squeue_array_ids(done.stdout)
        return ids[0] if ids else None

    def _set_throttle(self, array_id: str, throttle: int) -> None:
        """``scontrol update JobId=<array> ArrayTaskThrottle=<n>``.

        With some tasks over it exits 1 although the pending ones took the change::

            59_0-1: Job has already finished
            59_2-3: No error
        """
        try:
            done = _run(["scontrol", "update", f"JobId={array_id}",
                         f"ArrayTaskThrottle={throttle}"])
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"scontrol update: {exc}") from exc
        problems = [ln for ln in done.stderr.splitlines() if ln.strip() and not (
            "already finished" in ln or "No error" in ln)]
        if done.returncode != 0 and problems:
            raise BackendError(f"scontrol update: {problems[0]}")

    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        arrays = sorted({self.array_of(j) for j in job_ids}, key=int)
        try:
            done = _run(["squeue", "--noheader", "--array", "--states=all",
                         f"--jobs={','.join(arrays)}", f"--format={sp.SQUEUE_FORMAT}"])
        except subprocess.TimeoutExpired as exc:
            raise QueryFailed(f"squeue did not answer in {_COMMAND_TIMEOUT:.0f} s") from exc
        if done.returncode != 0:
            if sp.squeue_knows_none(done.stderr):
                return {}
            raise QueryFailed(f"squeue: {done.stderr.strip() or done.returncode}")
        states = sp.parse_squeue(done.stdout)
        return {job_id: state.state for job_id in job_ids
                if (state := sp.task_state(states, job_id)) is not None}

    def _account(self, job_ids: Sequence[str]) -> dict[str, dict[str, float]] | None:
        """``sacct --parsable2 --noheader --format=JobID,ElapsedRaw,AllocTRES -j <ids>``
        (:func:`hpsearch.backends.slurm.parse.parse_sacct`); without accounting storage it answers
        ``Slurm accounting storage is disabled`` and exits 1: None (no accounts)."""
        self.calls.accounting += 1
        try:
            done = _run(["sacct", "--parsable2", "--noheader", f"--format={sp.SACCT_FORMAT}",
                         "-j", ",".join(job_ids)])
        except (OSError, subprocess.TimeoutExpired):
            return None
        return sp.parse_sacct(done.stdout) if done.returncode == 0 else None

    def _cancel_jobs(self, job_ids: Sequence[str]) -> None:
        scancel(job_ids)

    def _signal_jobs(self, job_ids: Sequence[str], signal_name: str) -> None:
        """``scancel --signal=TERM --full``: ``--full`` reaches the batch script's children
        (the run), which plain ``--signal`` (job steps only) and ``--batch`` (the shell
        only) do not."""
        scancel(job_ids, f"--signal={signal_name}", "--full")

    def _read_limits(self) -> tuple[int, int]:
        try:
            done = _run(["scontrol", "show", "config"])
        except (OSError, subprocess.TimeoutExpired):
            return DEFAULT_MAX_ARRAY_SIZE, DEFAULT_MAX_JOB_COUNT // 2
        config = sp.parse_scontrol_config(done.stdout) if done.returncode == 0 else {}
        max_array = sp.config_int(config, "MaxArraySize", DEFAULT_MAX_ARRAY_SIZE)
        max_jobs = sp.config_int(config, "MaxJobCount", DEFAULT_MAX_JOB_COUNT)
        # other users share the job table: queue at most half of it
        return max(1, max_array), max(1, max_jobs // 2)
