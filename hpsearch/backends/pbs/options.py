"""PBS's options: what each job asks qsub for, and which PBS it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hpsearch.backends.cluster.options import ClusterOptions, QsubOptions
from hpsearch.options_decl import option

#: the PBS flavours: OpenPBS / PBS Professional (``qsub -J``, ``qstat -F json``), Torque
#: (``qsub -t``, ``qstat -f`` text)
FLAVORS = ("openpbs", "torque")
#: how an array's runs are held to ``--num_jobs``: its own limit (OpenPBS's
#: ``max_run_subjobs``, Torque's ``%K``), or arrays no larger than the free slots
THROTTLES = ("subjobs", "ranges")


@dataclass(frozen=True, kw_only=True)
class PbsOptions:
    """The qsub options of every job (``native``: qsub's own name of the setting, which
    echo-opt's ``pbs: batch:`` uses)."""

    TITLE: ClassVar[str] = "PBS"
    pbs_flavor: str = option(
        "openpbs", "PBS: openpbs (OpenPBS, PBS Professional: qsub -J, qstat -F json) or "
        "torque (qsub -t, qstat -f text).", choices=FLAVORS)
    pbs_throttle: str = option(
        "subjobs", "PBS: how --num_jobs holds an array: subjobs (its max_run_subjobs, Torque "
        "its %K slot limit) or ranges (for servers without one: arrays no larger than the "
        "free slots).", choices=THROTTLES)
    pbs_ncpus: int = option(1, "PBS: CPUs of each job (-l select=1:ncpus=N; Torque ppn=N).",
                            low=1, native="ncpus")
    pbs_ngpus: int = option(1, "PBS: GPUs of each job (-l select=...:ngpus=G; Torque gpus=G; "
                            "0: none).", low=0, native="ngpus")
    pbs_mem: str = option("8gb", "PBS: memory of each job (-l select=...:mem=M, e.g. 8gb, "
                          "500mb; empty: omit).", native="mem")
    pbs_queue: str = option("", "PBS: qsub -q queue.", show_default=False, native="q")


@dataclass(frozen=True, kw_only=True)
class PbsJob(ClusterOptions, QsubOptions, PbsOptions):
    """What PBS's functions read of a search's options: the options every cluster scheduler
    takes, the qsub pass-through and PBS's own (the registry hands them
    ``own(PbsJob, options)``)."""


def for_driver(options: Any, mem: str, partition: str | None) -> dict[str, Any]:
    """The changes that make the runs' PBS options those of the driver's own job
    (``hpsearch wrap``): its memory (``8G`` -> ``8gb``) and queue, one CPU, no GPU."""
    pbs_mem = mem.lower() + "b" if mem[-1:].upper() in "KMGT" and mem[:-1].isdigit() else mem
    return {"pbs_mem": pbs_mem, "pbs_ngpus": 0, "pbs_ncpus": 1,
            "pbs_queue": options.pbs_queue if partition is None else partition}
