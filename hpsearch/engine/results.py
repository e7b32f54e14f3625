"""The results table: one row per run, sorted by the performance key, written atomically.

``<out_dir>/search_results.csv`` keeps hypnettorch's name and ``;`` separator. Columns: the
configuration's keys, every summary keyword, then ``status`` (finished / failed / pruned / running
/ launching / pending / cancelled), ``attempts``, ``failure_reason``, ``wall_time`` (seconds),
``run_id``, ``run_dir``, ``job_id``, ``trial`` (proposal order), and backend columns such as
``gpu``. Finished and running runs come first, by the performance key in the declared direction (no
value last); pruned runs follow, by their last report (its step in ``steps``); failed runs come
last (:func:`sort_key`; ``hpsearch status`` ranks alike). With ``constraints``
(:mod:`hpsearch.spec.constraints`) ``feasible`` (1/0) marks each finished run, and the finished
runs that break one follow the feasible ones. ``gpu_hours`` and ``cpu_hours`` add up
every attempt of the run (:mod:`hpsearch.backends.accounting`). With several objectives the rows
are sorted by the first, and ``pareto`` (1/0) marks the finished runs of the Pareto front.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.backends.accounting import run_total
from hpsearch.engine.journal import RunState
from hpsearch.engine.pareto import pareto_front
from hpsearch.runs.files import RUNS_DIR
from hpsearch.runs.summary import MAX_TEXT
from hpsearch.spec.constraints import Constraint, feasible
from hpsearch.spec.reserved import STATUS_COLUMNS
from hpsearch.spec.values import render_value

RESULTS_FILE = "search_results.csv"
#: sort groups: finished (feasible), running and pending runs by value; then finished runs
#: that break a constraint; then pruned; then failed
_INFEASIBLE = 1
_GROUP = {"pruned": 2, "failed": 3}


@dataclass(frozen=True)
class TableLayout:
    config_keys: list[str]
    keywords: list[str]
    performance_key: str
    ascending: bool
    objectives: list[str] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)
    constraints: tuple[Constraint, ...] = ()

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1


def mark_pareto(rows: list[dict[str, Any]], layout: TableLayout) -> None:
    """Set ``pareto`` to 1 on the finished rows of the Pareto front, 0 on the others."""
    finished = [(row, [row.get(k) for k in layout.objectives]) for row in rows
                if row.get("status") == "finished"]
    finished = [(row, values) for row, values in finished if all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)
        for v in values)]
    front = set(pareto_front([values for _, values in finished], layout.directions))
    for i, (row, _) in enumerate(finished):
        row["pareto"] = 1 if i in front else 0


def row_of(state: RunState, out_dir: Path) -> dict[str, Any]:
    row: dict[str, Any] = {k: render_value(v) if isinstance(v, str) else v
                           for k, v in state.config.items()}
    row.update((k, v) for k, v in state.metrics.items()  # a journal of an older version
               if not (isinstance(v, str) and len(v) > MAX_TEXT))  # may hold a huge text
    row.update(status=state.status, attempts=state.attempts, failure_reason=state.reason,
               wall_time=None if state.wall_time is None else round(state.wall_time, 3),
               run_id=state.run_id, run_dir=str(out_dir / RUNS_DIR / state.run_id),
               job_id=state.job_id, trial=state.trial)
    if state.lineage:
        row.update(state.lineage)
    if state.extra:
        row.update({k: v for k, v in state.extra.items() if k != "job_id"})
    row.update(run_total(state.usage))  # every attempt's, not only the last one's
    return row


def sort_key(status: str, value: Any, ascending: bool, feasible: bool = True
             ) -> tuple[int, int, float]:
    """Where a run sorts: finished, running and pending runs first, then finished runs that
    break a constraint (``feasible`` False), then pruned runs (by their last report: a value
    from an earlier step is not a final value), failed runs last; within each group, runs
    with a number first, by it in the direction."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and not math.isnan(value) else None
    group = _INFEASIBLE if status == "finished" and not feasible else _GROUP.get(status, 0)
    if number is None:
        return group, 1, 0.0
    return group, 0, number if ascending else -number


def _sort_key(row: dict[str, Any], layout: TableLayout) -> tuple[int, int, float]:
    return sort_key(row.get("status", ""), row.get(layout.performance_key), layout.ascending,
                    row.get("feasible") != 0)


def build_table(rows: Iterable[dict[str, Any]], layout: TableLayout
                ) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns (config keys, keywords, status columns, then any others) and sorted rows."""
    rows = list(rows)
    if layout.constraints:
        for row in rows:
            if row.get("status") == "finished":
                row["feasible"] = int(feasible(row, layout.constraints))
    rows.sort(key=lambda row: _sort_key(row, layout))
    if layout.multi_objective:
        mark_pareto(rows, layout)
    columns = list(dict.fromkeys(layout.config_keys + layout.keywords + list(STATUS_COLUMNS)
                                 + ["trial"]))
    known = set(columns)
    for row in rows:
        for column in row:
            if column not in known:
                known.add(column)
                columns.append(column)
    return columns, rows


def write_table(table: tuple[list[str], list[dict[str, Any]]], path: Path) -> None:
    """Write ``;``-separated CSV atomically (readers see the old or the new table)."""
    columns, rows = table
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, delimiter=";", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


class ResultsWriter:
    """Keeps the CSV current during a search at a bounded cost.

    Rewriting a sorted table costs time proportional to its rows, so it is rewritten at most
    once per ``max(min_interval, 20 x the last write's duration)``: the share of the driver's
    time spent on the table stays under 5 % however long the search grows.
    """

    def __init__(self, out_dir: Path, layout: TableLayout, min_interval: float = 2.0) -> None:
        self.out_dir = out_dir
        self.path = out_dir / RESULTS_FILE
        self.layout = layout
        self.min_interval = min_interval
        self._next_write = 0.0
        self._dirty = False

    def changed(self) -> None:
        self._dirty = True

    def maybe_write(self, states: dict[str, RunState], force: bool = False) -> None:
        now = time.monotonic()
        if not self._dirty or (not force and now < self._next_write):
            return
        write_table(build_table((row_of(s, self.out_dir) for s in states.values()),
                                self.layout), self.path)
        took = time.monotonic() - now
        self._next_write = time.monotonic() + max(self.min_interval, 20 * took)
        self._dirty = False
