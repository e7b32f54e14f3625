"""GPU-hours and CPU-hours: each results row's, and the totals by how the runs ended.

The ``gpu_hours`` and ``cpu_hours`` of every results row, and the totals ``hpsearch status`` and
the report show.

**Measured** (always there): an attempt holds its resources from its start to its end as its
run directory records them -- ``started_at`` (its mtime: the start; ``cuda_visible_devices=``:
its GPUs; ``cpus=``: the CPUs of its job, 1 when the line is empty) to ``exit_code`` (its
mtime: the end). **Where several runs held a resource at once, its time is split evenly
between them at each moment**: a GPU's time between the runs on that GPU, a packed job's
CPUs between the runs in the job. Two runs of a packed job on one GPU::

    run a  |-----------|               2 s alone, 4 s with b: 2 + 4/2 = 4 GPU-seconds
    run b        |-----------|         4 s with a, 2 s alone: 4/2 + 2 = 4 GPU-seconds
           0  1  2  3  4  5  6  7  8   the GPU was busy 8 s: the runs' shares add up to it

Only runs of one packed job, or of one machine's local GPUs, share: any other cluster job has
its resources to itself, and so has a local CPU slot (one CPU).

**Accounted** (Slurm with accounting storage): the run of a one-run job is charged what
``sacct`` says its job held (:func:`hpsearch.backends.slurm.parse.parse_sacct`), elapsed seconds
times the job's ``gres/gpu`` and ``cpu``. Without accounting storage ``sacct`` answers ``Slurm
accounting storage is disabled`` (exit 1) and the measured hours stand.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hpsearch.runs.files import ExitRecord, StartRecord

#: what ``cuda_visible_devices`` holds when a job got no GPU
NO_GPUS = ("", "-1", "NoDevFiles")
#: the columns every results row gets
COLUMNS = ("gpu_hours", "cpu_hours")


@dataclass(frozen=True)
class Hold:
    """What one attempt held, when: ``end`` None while it runs."""

    start: float
    end: float | None
    gpus: tuple[str, ...]
    cpus: float

    def live_at(self, moment: float) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


def hold_of(start: StartRecord, end: ExitRecord | None, with_gpus: bool = True) -> Hold:
    """The hold of an attempt from its ``started_at`` and, once over, ``exit_code``;
    ``with_gpus`` False for a local CPU slot (it inherits the user's CUDA_VISIBLE_DEVICES)."""
    devices = start.cuda_visible_devices.strip()
    gpus = tuple(d.strip() for d in devices.split(",")) \
        if with_gpus and devices not in NO_GPUS else ()
    try:
        cpus = max(1.0, float(start.cpus)) if start.cpus else 1.0
    except ValueError:
        cpus = 1.0
    return Hold(start.started_at, None if end is None else end.ended_at, gpus, cpus)


def measured(hold: Hold, others: Iterable[Hold], share_cpus: bool) -> tuple[float, float]:
    """``(gpu_hours, cpu_hours)`` of an ended ``hold``, split with ``others`` (holds of the
    same job or machine) at each moment they overlap; CPUs are split only when
    ``share_cpus`` (a packed job's)."""
    assert hold.end is not None
    end = max(hold.start, hold.end)
    overlapping = [o for o in others if o.start < end and (o.end is None or o.end > hold.start)]
    cuts = sorted({hold.start, end, *(o.start for o in overlapping if hold.start < o.start < end),
                   *(o.end for o in overlapping if o.end is not None and hold.start < o.end < end)})
    gpu = cpu = 0.0
    for a, b in itertools.pairwise(cuts):
        live = [o for o in overlapping if o.live_at((a + b) / 2)]
        gpu += sum((b - a) / (1 + sum(g in o.gpus for o in live)) for g in hold.gpus)
        cpu += (b - a) * hold.cpus / (1 + (len(live) if share_cpus else 0))
    return gpu / 3600, cpu / 3600


@dataclass
class Ledger:
    """The holds of ended runs, by place (a packed job, a machine), kept while a run still
    going there may have overlapped them."""

    share_cpus: bool
    ended: dict[str, list[Hold]] = field(default_factory=dict)

    def charge(self, place: str, hold: Hold, active: Iterable[Hold]) -> dict[str, float]:
        """``{"gpu_hours": ..., "cpu_hours": ...}`` of ``hold`` (ended) at ``place``, where
        ``active`` are the holds of the runs going on there."""
        active = list(active)
        kept = self.ended.setdefault(place, [])
        gpu, cpu = measured(hold, kept + active, self.share_cpus)
        kept.append(hold)
        oldest = min((h.start for h in active), default=math.inf)
        self.ended[place] = [h for h in kept if h.end is not None and h.end > oldest]
        if not self.ended[place]:
            del self.ended[place]
        return hours(gpu, cpu)


def hours(gpu: float, cpu: float) -> dict[str, float]:
    """The result columns, rounded to a second's worth."""
    return {"gpu_hours": round(gpu, 6), "cpu_hours": round(cpu, 6)}


# -- totals ---------------------------------------------------------------------------------
def add(usage: Mapping[str, list[float]] | None, status: str,
        extra: Mapping[str, Any] | None) -> dict[str, list[float]] | None:
    """``usage`` (``{status: [gpu_hours, cpu_hours]}`` over a run's attempts) with an
    attempt that ended ``status`` added, from its end's ``extra`` (None: nothing known)."""
    if not extra or "gpu_hours" not in extra:
        return dict(usage) if usage else None
    total = {k: list(v) for k, v in (usage or {}).items()}
    gpu, cpu = total.get(status, [0.0, 0.0])
    total[status] = [round(gpu + float(extra["gpu_hours"]), 6),
                     round(cpu + float(extra.get("cpu_hours") or 0.0), 6)]
    return total


def run_total(usage: Mapping[str, list[float]] | None) -> dict[str, float]:
    """A run's row: its attempts' hours added up (empty when nothing is known)."""
    if not usage:
        return {}
    return hours(sum(v[0] for v in usage.values()), sum(v[1] for v in usage.values()))


def search_totals(usages: Iterable[Mapping[str, list[float]] | None]) -> dict[str, list[float]]:
    """``{status: [gpu_hours, cpu_hours]}`` over the attempts of every run."""
    totals: dict[str, list[float]] = {}
    for usage in usages:
        for status, (gpu, cpu) in (usage or {}).items():
            sums = totals.setdefault(status, [0.0, 0.0])
            sums[0] += gpu
            sums[1] += cpu
    return totals


def describe(totals: Mapping[str, list[float]], index: int = 0) -> str:
    """``"12.4 (failed 0.5, pruned 1.25, preempted 0.3)"``: the total of column ``index``
    (0: GPU-hours, 1: CPU-hours) and what went to attempts that did not finish (4
    significant digits)."""
    total = sum(v[index] for v in totals.values())
    lost = [f"{s} {totals[s][index]:.4g}" for s in ("failed", "pruned", "preempted")
            if s in totals and totals[s][index]]
    return f"{total:.4g}" + (f" ({', '.join(lost)})" if lost else "")
