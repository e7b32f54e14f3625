"""The run timeline: every start of every run as a bar on a lane, so idle capacity shows.

A lane is what ran one command at a time: a local CPU slot (``slot 2``), a GPU (``GPU 0``; with
``--max_num_jobs_per_gpu`` above 1, ``GPU 0 · 2`` for its second place), or a place on a
cluster node (``node7 · 3``: the third job that ran on node7 at once). The journal does not
record slots, so spans are packed onto lanes greedily: by start time, each on the first lane
of its group that is free by then. With ``--num_jobs=N`` CPU slots that gives at most N
lanes; on a cluster, as many lanes per node as jobs overlapped there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hpsearch.inspect.view import SearchView


@dataclass(frozen=True)
class Bar:
    """One span on its lane; ``run`` indexes ``view.runs``."""

    run: int
    lane: int
    start: float
    end: float
    last: bool
    queued_from: float | None  # when the job was submitted, if it waited in a queue
    job: str


def _group(backend: str, host: str, devices: str, gpus: int) -> str:
    if backend == "local":
        return f"GPU {devices}" if gpus else "slot"
    return host or "job"


def _natural(text: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def lay_out(view: SearchView) -> tuple[list[Bar], list[str]]:
    """The bars and the lane names (in display order, top to bottom)."""
    backend = view.meta.get("backend", "local")
    spans = [(i, span) for i, run in enumerate(view.runs) for span in run.spans]
    spans.sort(key=lambda item: item[1].start)
    free_at: dict[str, list[float]] = {}
    placed = []
    for i, span in spans:
        group = _group(backend, span.host, span.devices, span.gpus)
        end = span.end if span.end is not None else view.now
        lanes = free_at.setdefault(group, [])
        place = next((k for k, free in enumerate(lanes) if free <= span.start), len(lanes))
        if place == len(lanes):
            lanes.append(end)
        lanes[place] = end
        placed.append((i, span, group, place, end))
    names = []
    index: dict[tuple[str, int], int] = {}
    for group in sorted(free_at, key=lambda g: (not g.startswith("GPU"), _natural(g))):
        single = len(free_at[group]) == 1 and group.startswith("GPU")
        for k in range(len(free_at[group])):
            index[group, k] = len(names)
            names.append(group if single else f"{group}{' ' if group == 'slot' else ' · '}{k + 1}")
    bars = []
    for i, span, group, place, end in placed:
        submitted = view.runs[i].state.submitted_at
        queued = submitted if span.last and submitted is not None \
            and submitted < span.start - 1.0 else None
        bars.append(Bar(i, index[group, place], span.start, end, span.last, queued, span.job))
    return bars, names
