"""Options every cluster scheduler takes, and those of the driver's own job.

The jobs' time, template, setup lines, packing and time-limit handling; the driver's own job
is ``hpsearch wrap``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from hpsearch.options_decl import option


def existing_template(value: str | None) -> Path | None:
    """``--job_template`` resolved; ValueError when the file is not there."""
    if not value:
        return None
    if not Path(value).is_file():
        raise ValueError(f"--job_template={value} does not exist; pass an existing jinja2 file "
                         "or leave it out to use the built-in one")
    return Path(value).resolve()


def job_setup_lines(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--job_setup`` values as job-script lines; ``@FILE`` stands for the file's lines."""
    lines: list[str] = []
    for value in values:
        if value.startswith("@"):
            try:
                text = Path(value[1:]).read_text()
            except OSError as exc:
                raise ValueError(f"--job_setup={value}: cannot read {value[1:]} "
                                 f"({exc.strerror}); pass @ and an existing file, or the line "
                                 "itself") from None
            lines += [ln for ln in text.splitlines() if ln.strip()]
        elif "\n" in value or "\0" in value:
            raise ValueError(f"--job_setup={value!r} spans lines; give one --job_setup per line "
                             "or --job_setup=@file")
        else:
            lines.append(value)
    return tuple(lines)


def option_key(item: str) -> str:
    """``"--mem_per_cpu=2G"`` -> ``"mem-per-cpu"``: an option's name as sbatch/bsub spell it."""
    return item.partition("=")[0].strip().lstrip("-").replace("_", "-")


@dataclass(frozen=True, kw_only=True)
class ClusterOptions:
    """What every cluster job gets, whatever the scheduler."""

    TITLE: ClassVar[str] = "Cluster jobs"
    num_hours: float = option(
        24.0, "Time limit of each cluster job, in hours (fractions allowed).", low=0,
        low_open=True, flag_default=24)
    job_template: Path | None = option(
        None, "Your own jinja2 job-script template for the cluster backend.", path=True,
        convert=existing_template)
    job_setup: tuple[str, ...] = option(
        (), "Cluster: a line the job script runs before the command, e.g. 'module load cuda' "
        "or 'conda activate env' (repeatable; @FILE: the file's lines); the driver's own job "
        "(hpsearch wrap) runs them too.", metavar="LINE", convert=job_setup_lines)
    runs_per_job: int | None = option(
        None, "Cluster: pack up to N runs into each job; a worker in the job runs them N at "
        "once on the job's GPUs (the GPU admission flags apply) and takes the next run as one "
        "ends. --num_jobs then counts jobs.", low=1, needs="run_cluster",
        needs_note=" (local runs share GPUs through --max_num_jobs_per_gpu)")
    continue_on_timeout: int = option(
        0, "Cluster: run a run that hit its job's time limit again, up to K times, with "
        "HPSEARCH_RESUMED=1 (not counted as --retries).", low=0, needs="run_cluster",
        needs_note=" (local runs have no scheduler time limit)")
    walltime_warning: float = option(
        300.0, "Cluster: seconds before a job's time limit at which its runs get SIGTERM to "
        "save their work (0: none; none when --num_hours is not longer than twice this).",
        low=0, flag_default=300)
    cancel_on_interrupt: bool = option(
        False, "Cluster: Ctrl-C/SIGTERM on the driver also cancels the queued and running jobs "
        "(default: leave them; a restart reattaches).")


@dataclass(frozen=True, kw_only=True)
class QsubOptions:
    """What the schedulers whose submit command is ``qsub`` (Grid Engine, PBS) pass through to
    it: one declaration for both, each scheduler's job type includes it."""

    TITLE: ClassVar[str] = "qsub (Grid Engine, PBS)"
    qsub_options: tuple[str, ...] = option(
        (), "Grid Engine/PBS: any other qsub option, e.g. --qsub_option=A=lab (repeatable).",
        flag="qsub_option", metavar="KEY=VALUE", native="*")


@dataclass(frozen=True, kw_only=True)
class DriverJob:
    """The driver's own batch job, which ``hpsearch wrap`` writes."""

    TITLE: ClassVar[str] = "The driver's job"
    driver_hours: float = option(120.0, "Time limit of the driver's own job, in hours.", low=0,
                                 low_open=True, flag_default=120)
    driver_mem: str = option(
        "8G", "Memory of the driver's own job: Slurm --mem, LSF -R rusage[mem=...] (8G becomes "
        "8GB there), PBS mem= (8gb).")
    driver_partition: str | None = option(
        None, "Slurm partition (LSF, PBS queue) of the driver's own job (default: the runs' "
        "--slurm_partition / --lsf_queue / --pbs_queue).")
