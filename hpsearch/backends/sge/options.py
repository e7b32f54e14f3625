"""Grid Engine's options: what each job asks qsub for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hpsearch.backends.cluster.options import ClusterOptions, QsubOptions, option_key
from hpsearch.options_decl import option


@dataclass(frozen=True, kw_only=True)
class SgeOptions:
    """The qsub options of every job (``native``: qsub's own name; ``--qsub_option``, declared
    once for Grid Engine and PBS in :class:`QsubOptions`, takes any other)."""

    TITLE: ClassVar[str] = "Grid Engine"
    sge_queue: str = option("", "Grid Engine: qsub -q queue.", show_default=False, native="q")
    sge_pe: str = option("smp", "Grid Engine: the parallel environment of -pe for --sge_cpus "
                         "above 1.", native="pe")
    sge_cpus: int = option(1, "Grid Engine: CPU slots of each job (-pe <--sge_pe> N when above 1).",
                           low=1)
    sge_mem: str = option("", "Grid Engine: memory of each job, e.g. 8G; qsub -l h_vmem gets "
                          "it per slot (empty: omit).", show_default=False)
    sge_gpus: int = option(1, "Grid Engine: GPUs of each job, qsub -l gpu=N (0: omit).", low=0)


@dataclass(frozen=True, kw_only=True)
class SgeJob(ClusterOptions, QsubOptions, SgeOptions):
    """What Grid Engine's functions read of a search's options: the options every cluster
    scheduler takes, the qsub pass-through and Grid Engine's own (the registry hands them
    ``own(SgeJob, options)``)."""


def for_driver(options: Any, mem: str, partition: str | None) -> dict[str, Any]:
    """The changes that make the runs' Grid Engine options those of the driver's own job
    (``hpsearch wrap``): its memory and queue, one slot, no GPU (nor a ``-l gpu`` among the
    ``--qsub_option`` items)."""
    return {"sge_mem": mem, "sge_gpus": 0, "sge_cpus": 1,
            "sge_queue": options.sge_queue if partition is None else partition,
            "qsub_options": tuple(o for o in options.qsub_options
                                  if not (option_key(o) == "l" and "gpu" in o.partition("=")[2]))}
