"""The best runs as a table that fits a terminal: ``hpsearch report --terminal``.

The report's summary shows the same table.

Columns, in the order they are given room: rank, trial, the objectives, the parameters
that vary, the wall time, the other metrics, the run id. A column that does not fit the
width (100 by default) is left out and named below the table; no column holds a path.
Numbers keep 4 significant digits (``0.9312``, ``1e-05``, ``1.235e+04``); wall times read
``12.3s``, ``4.5m``, ``2.1h``; a cell is at most 16 characters (longer text ends in ``~``)::

    rank  trial  acc_test  lr    l2     batch_size  epochs  wall  loss_test  run
       1     25      0.96  1     0.01          128      20  0.3s     0.1201  7388391772ae
"""

from __future__ import annotations

from hpsearch.inspect.collect import best_finished
from hpsearch.inspect.view import SearchView, display
from hpsearch.runs.summary import is_number

MAX_CELL = 16


def number(value: object) -> str:
    """``0.93121`` -> ``0.9312``; ints as they are; other values as text."""
    if isinstance(value, bool) or not is_number(value):
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _cell(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "~"


def best_rows(view: SearchView, top: int
              ) -> tuple[list[str], list[list[str]], list[bool]]:
    """Every column (in the order of room), the ``top`` best finished runs' cells, and
    which columns hold numbers (right-aligned)."""
    key, ascending = view.objectives[0], view.directions[0] == "minimize"
    constraints = view.record.layout.constraints
    best = best_finished(view.record.states.values(), key, ascending, constraints)[:top]
    params = [p.name for p in view.parameters if p.varies]
    others = [m for m in view.metrics if m not in view.objectives]
    marked = ["feasible"] if constraints else []
    columns = ["rank", "trial", *view.objectives, *marked, *params, "wall", *others, "run"]
    numeric = [True] * (2 + len(view.objectives)) + [False] * len(marked)
    numeric += [all(is_number(display(s.config.get(p))) for s in best) for p in params]
    numeric += [True] * (1 + len(others)) + [False]
    rows = []
    for rank, state in enumerate(best, 1):
        cells = [str(rank), str(state.trial)]
        cells += [number(state.metrics.get(k)) for k in view.objectives]
        if constraints:
            broken = [c.text() for c in constraints if not c.holds(state.metrics)]
            cells.append("no: " + ", ".join(broken) if broken else "yes")
        cells += [number(display(state.config.get(p))) for p in params]
        cells.append(duration(state.wall_time))
        cells += [number(state.metrics.get(k)) for k in others]
        cells.append(state.run_id)
        rows.append([_cell(c) for c in cells])
    return [_cell(c) for c in columns], rows, numeric


def render(view: SearchView, top: int, width: int = 100) -> str:
    """The table as text no wider than ``width``, with a line naming what did not fit."""
    columns, rows, numeric = best_rows(view, top)
    if not rows:
        return "no finished run yet\n"
    widths = [max(len(columns[j]), *(len(r[j]) for r in rows)) for j in range(len(columns))]
    shown, used, left_out = [], -2, []
    for j, w in enumerate(widths):
        if used + 2 + w <= width:
            shown.append(j)
            used += 2 + w
        else:
            left_out.append(columns[j])

    def line(cells: list[str]) -> str:
        return "  ".join(cells[j].rjust(widths[j]) if numeric[j] else cells[j].ljust(widths[j])
                         for j in shown).rstrip() + "\n"

    out = line(columns) + "".join(line(r) for r in rows)
    if left_out:
        out += f"(not shown, too wide: {', '.join(left_out)})\n"
    return out
