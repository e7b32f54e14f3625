"""Pick the backend for a search from its options.

``--run_cluster --scheduler=slurm|lsf`` selects a cluster backend; otherwise runs go to
local GPUs, or to ``--num_jobs`` CPU slots when ``--visible_gpus=-1`` or no GPU is found.
"""

from __future__ import annotations

from collections.abc import Callable

from hpsearch.backends.base import Backend
from hpsearch.backends.local import LocalBackend, kill_local_jobs
from hpsearch.errors import UsageError
from hpsearch.options import SearchOptions


def make_backend(options: SearchOptions, say: Callable[[str], None]) -> Backend:
    """The backend for ``options``; ``say`` reports choices the user should know of."""
    if options.run_cluster:
        raise UsageError(f"--run_cluster --scheduler={options.scheduler} is not yet "
                         "supported; run locally without --run_cluster")
    if options.visible_gpus.strip() != "-1":
        say("GPU scheduling is not yet supported; running on CPU slots "
            "(pass --visible_gpus=-1 to silence this)")
    return LocalBackend(options.num_jobs or 1, options.timeout)


def cancel_jobs(backend_name: str, job_ids: list[str]) -> int:
    """Cancel jobs a search's journal lists, from outside the driver; returns the count."""
    if not job_ids:
        return 0
    return kill_local_jobs(job_ids)
