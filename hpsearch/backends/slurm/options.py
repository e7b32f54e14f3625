"""Slurm's options: what each job asks sbatch for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hpsearch.backends.cluster.options import ClusterOptions, option_key
from hpsearch.options_decl import option


@dataclass(frozen=True, kw_only=True)
class SlurmOptions:
    """The sbatch options of every job (``native``: sbatch's own name, which hyper_opt's
    ``slurm: batch:`` uses; ``*``: the flag for any other sbatch option)."""

    TITLE: ClassVar[str] = "Slurm"
    slurm_mem: str = option("8G", "Slurm: sbatch --mem (empty: omit).", native="mem")
    slurm_gres: str = option("gpu:1", "Slurm: sbatch --gres (empty: omit).", native="gres")
    slurm_partition: str = option("", "Slurm: sbatch --partition.", show_default=False,
                                  native="partition")
    slurm_qos: str = option("", "Slurm: sbatch --qos.", show_default=False, native="qos")
    slurm_constraint: str = option("", "Slurm: sbatch --constraint.", show_default=False,
                                   native="constraint")
    sbatch_options: tuple[str, ...] = option(
        (), "Slurm: any other sbatch option, e.g. --sbatch_option=account=lab (repeatable).",
        flag="sbatch_option", metavar="KEY=VALUE", native="*")



@dataclass(frozen=True, kw_only=True)
class SlurmJob(ClusterOptions, SlurmOptions):
    """What Slurm's functions read of a search's options: the options every cluster scheduler
    takes and Slurm's own (the registry hands them ``own(SlurmJob, options)``)."""

#: sbatch options that ask for GPUs: the driver's own job drops them
_GPU_SBATCH = {"gres", "gpus", "gpus-per-node", "gpus-per-task", "gpus-per-socket",
               "gpu-bind", "gpu-freq", "cpus-per-gpu", "mem-per-gpu"}


def for_driver(options: Any, mem: str, partition: str | None) -> dict[str, Any]:
    """The changes that make the runs' Slurm options those of the driver's own job
    (``hpsearch wrap``): its memory and partition, no GPU request of any spelling."""
    return {"slurm_mem": mem, "slurm_gres": "",
            "slurm_partition": options.slurm_partition if partition is None else partition,
            "sbatch_options": tuple(o for o in options.sbatch_options
                                    if option_key(o) not in _GPU_SBATCH)}

