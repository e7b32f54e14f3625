"""Every setting of a search, as validated from the command line.

The CLI (:mod:`hpsearch.cli.app`) builds one :class:`SearchOptions`; the driver and the backends
read it and never look at ``sys.argv``. Flag names follow hypnettorch's ``hpsearch`` where it
has one; the rest are ours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SearchOptions:
    # where and how runs execute
    out_dir: Path
    run_cwd: Path
    python: str
    # which configurations
    num_searches: int = -1
    dont_generate_full_grid: bool = False
    deterministic_search: bool = False
    random_seed: int = 42
    # run policy
    num_jobs: int | None = None
    timeout: float | None = None
    retries: int = 0
    max_failures: int | None = None
    fail_fast: int = 5
    prune_grace: float = 60.0
    rerun_failed: bool = False
    force_out_dir: bool = False
    dry_run: bool = False
    # local GPUs
    visible_gpus: str = ""
    allowed_load: float = 0.5
    allowed_memory: float = 0.5
    sim_startup_time: float = 60.0
    max_num_jobs_per_gpu: int = 1
    gpu_memory_per_run: str | None = None
    # clusters
    run_cluster: bool = False
    scheduler: str = "lsf"
    num_hours: float = 24.0
    job_template: Path | None = None
    job_setup: tuple[str, ...] = field(default_factory=tuple)
    cancel_on_interrupt: bool = False
    slurm_mem: str = "8G"
    slurm_gres: str = "gpu:1"
    slurm_partition: str = ""
    slurm_qos: str = ""
    slurm_constraint: str = ""
    sbatch_options: tuple[str, ...] = field(default_factory=tuple)
    resources: str = '"rusage[mem=8000, ngpus_excl_p=1]"'
    lsf_queue: str = ""
    lsf_gpu: str = ""
    bsub_options: tuple[str, ...] = field(default_factory=tuple)
    # using cluster jobs well
    runs_per_job: int | None = None  # pack runs into jobs (None: one job per run)
    continue_on_timeout: int = 0
    walltime_warning: float = 300.0

    @property
    def backend_name(self) -> str:
        """``local`` (CPU slots or GPUs) or the cluster scheduler's name."""
        return self.scheduler if self.run_cluster else "local"

    @property
    def cpu_only(self) -> bool:
        """``--visible_gpus=-1``: runs go to CPU slots, no GPU is looked for."""
        return self.visible_gpus.strip() == "-1"

    @property
    def cpu_slots(self) -> int:
        """How many runs local CPU slots take at once: ``--num_jobs``, or (not given) one per
        CPU this process may use (its affinity mask); a run takes one CPU."""
        return self.num_jobs or len(os.sched_getaffinity(0))
