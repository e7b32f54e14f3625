"""What each run of a search needs (:class:`~hpsearch.runs.model.Resources`), from its flags.

Every run of a search needs the same today (the compute issue makes it vary per run). On a
cluster, the scheduler's module reads what its jobs ask for from its own flags
(:func:`hpsearch.backends.slurm.backend.run_resources`,
:func:`hpsearch.backends.lsf.backend.run_resources`); a local run takes one GPU, or none with
``--visible_gpus=-1``. ``--gpu_memory_per_run`` is every run's expected GPU memory.
"""

from __future__ import annotations

from hpsearch.backends.gpus.admission import parse_mib
from hpsearch.backends.lsf import backend as lsf
from hpsearch.backends.slurm import backend as slurm
from hpsearch.engine.options import SearchOptions
from hpsearch.runs.model import Resources


def resources_of(options: SearchOptions) -> Resources:
    """What each run of the search ``options`` describe needs. Raises ``ValueError`` (one
    line) for a value the flags' checks let through only when not built by the CLI."""
    gpu_memory = parse_mib(options.gpu_memory_per_run)
    if options.run_cluster and options.scheduler == "slurm":
        return slurm.run_resources(options, gpu_memory)
    if options.run_cluster and options.scheduler == "lsf":
        return lsf.run_resources(options, gpu_memory)
    return Resources(gpus=0 if options.cpu_only else 1, gpu_memory_mib=gpu_memory)
