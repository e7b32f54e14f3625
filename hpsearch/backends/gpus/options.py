"""The local GPU backend's options: which GPUs, and when one takes another run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hpsearch.backends.gpus.admission import GpuLimits, parse_mib, parse_visible_gpus
from hpsearch.options_decl import option


def _check_mib(value: str | None) -> None:
    parse_mib(value)


def _check_gpus(value: str) -> None:
    parse_visible_gpus(value)


@dataclass(frozen=True, kw_only=True)
class GpuOptions:
    """How runs share this machine's GPUs (also inside a packed cluster job). A bad GPU flag
    is refused also when no GPU backend runs (``--visible_gpus=-1``, ``--run_cluster``)."""

    TITLE: ClassVar[str] = "Local GPUs"
    visible_gpus: str = option(
        "", "Comma-separated GPU indices to use; empty: all; -1: no GPU, run on --num_jobs CPU "
        "slots.", check=_check_gpus)
    allowed_load: float = option(
        0.5, "A GPU takes a run only while its (smoothed) load is at most this.",
        low=0, high=1, low_open=True)
    allowed_memory: float = option(
        0.5, "A GPU takes a run only while its used+reserved memory share stays at most this.",
        low=0, high=1, low_open=True)
    sim_startup_time: float = option(
        60.0, "Seconds a GPU waits after a launch before taking another run (lifted early once "
        "the run's memory is visible).", low=0, flag_default=60)
    max_num_jobs_per_gpu: int = option(
        1, "Most runs of this search per GPU at once (default 1; in a packed job, "
        "--runs_per_job).", low=1, flag_default=None)
    gpu_memory_per_run: str | None = option(
        None, "GPU memory one run needs, e.g. 4GiB, 4096MiB or 4096 (MiB) (default: learned "
        "from earlier runs).", check=_check_mib)

    @staticmethod
    def check_together(values: dict[str, Any]) -> None:
        """``--max_num_jobs_per_gpu`` not given: 1, or in a packed job ``--runs_per_job``."""
        values["max_num_jobs_per_gpu"] = (values["max_num_jobs_per_gpu"]
                                          or values.get("runs_per_job") or 1)

    def limits(self) -> GpuLimits:
        """The machine's admission settings these options give (what a run needs comes with
        the run)."""
        return GpuLimits(allowed_load=self.allowed_load, allowed_memory=self.allowed_memory,
                         max_num_jobs_per_gpu=self.max_num_jobs_per_gpu,
                         sim_startup_time=self.sim_startup_time,
                         visible_gpus=parse_visible_gpus(self.visible_gpus))
