"""LSF's options: what each job asks bsub for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hpsearch.backends.cluster.options import ClusterOptions, option_key
from hpsearch.options_decl import option


@dataclass(frozen=True, kw_only=True)
class LsfOptions:
    """The bsub options of every job."""

    TITLE: ClassVar[str] = "LSF"
    resources: str = option('"rusage[mem=8000, ngpus_excl_p=1]"',
                            "LSF: bsub -R resource requirement.", native="R")
    lsf_queue: str = option("", "LSF: bsub -q queue.", show_default=False, native="q")
    lsf_gpu: str = option("", "LSF: bsub -gpu requirement, e.g. 'num=1:mode=exclusive_process'.",
                          show_default=False, native="gpu")
    bsub_options: tuple[str, ...] = option(
        (), "LSF: any other bsub option, e.g. --bsub_option=P=myproject (repeatable).",
        flag="bsub_option", metavar="KEY=VALUE", native="*")



@dataclass(frozen=True, kw_only=True)
class LsfJob(ClusterOptions, LsfOptions):
    """What LSF's functions read of a search's options: the options every cluster scheduler
    takes and LSF's own (the registry hands them ``own(LsfJob, options)``)."""

def for_driver(options: Any, mem: str, partition: str | None) -> dict[str, Any]:
    """The changes that make the runs' LSF options those of the driver's own job
    (``hpsearch wrap``): its memory (LSF spells units KB, MB, GB, TB) and queue, no GPU."""
    lsf_mem = mem + "B" if mem[-1:].upper() in "KMGT" and mem[:-1].isdigit() else mem
    return {"resources": f"rusage[mem={lsf_mem}]", "lsf_gpu": "",
            "lsf_queue": options.lsf_queue if partition is None else partition,
            "bsub_options": tuple(o for o in options.bsub_options if option_key(o) != "gpu")}
