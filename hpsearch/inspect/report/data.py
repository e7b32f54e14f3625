"""The report's data: one JSON object the page's script draws every plot from.

Runs are stored once, column by column (index ``i`` is ``view.runs[i]``, trial order);
every plot refers to them by index::

    {"objectives": ["loss"], "directions": ["minimize"], "metrics": ["loss", "acc"],
     "t0": 1732350000.0,                  # epoch seconds; times below are relative to it
     "params": [{"name": "lr", "axis": "log"},
                {"name": "opt", "axis": "category", "categories": ["adam", "sgd"]}],
     "runs": {"trial": [0, 1], "id": ["3f2a9c0d1b7e", ...], "status": ["finished", ...],
              "p": {"lr": [0.01, null], "opt": [1, 0], ...},   # a category: its index;
                                                                # null: the run lacks the key
              "m": {"loss": [0.41, null], ...},
              "step": [27, 3, null],                   # the last step the run reported
              "end": [12.5, null]},                    # end of the last start (seconds)
     "scored": [0, 3, ...],               # finished, a number for every objective
     "pruned": [1, ...],                  # pruned, a number (its last) for the first one
     "infeasible": {"run": [3, ...],      # scored runs that break a constraint, and the
                    "broken": ["mem <= 16.0", ...]},  # constraints each one breaks
     "steps": [1, 2, 3, ...],             # the steps the history can show values at
     "pareto": [3, ...] | null,           # the Pareto front (several objectives only)
     "curves": [{"run": 0, "step": [1, 2], "m": {"loss": [0.9, 0.5]}}],
     "bars": {"run": [...], "lane": [...], "start": [...], "end": [...], "last": [...],
              "queued": [...], "job": [...]},   # queued: submission time, or null
     "lanes": ["slot 1", "slot 2"],
     "importance": {"method": "...", "values": [["lr", 0.7], ...], "note": null,
                    "basis": "the final values of 30 finished runs"},
     "lineage": {"kind": "budget", "parameter": "epochs",   # or "pbt"; null: neither
                 "from": [null, 0, ...],          # the run each run continues (an index)
                 "group": [0, 0, ...],            # its bracket (budget) or member (pbt)
                 "level": [0, 1, ...],            # its rung (budget) or segment (pbt)
                 "at": [1, 3, ...]}}              # its budget, or its steps at its end

Only parameters that vary are plotted. Axis of a parameter: a distribution's scale
(``log`` for the log-scaled methods, else ``linear``); a list is a ``category`` axis (its
numbers ascending, other values in declared order), unless it holds more than
:data:`MAX_CATEGORIES` distinct numbers (then ``linear``, or ``log`` when all are positive
and span 3 decades). Non-finite numbers are null. A search with more than
:data:`MAX_CURVE_POINTS` curve points in all keeps every curve's first and last point and
an even share of the rest. ``steps`` are the distinct steps of the curves, at most
:data:`MAX_STEP_CHOICES` of them (evenly picked, the first and last kept).

``lineage`` is a multi-fidelity search's (hyperband, bohb: the brackets; pbt: the members
and the runs they continued), from each run's journaled lineage and the budget parameter
``search.json`` names.

A pruned run's values are its last reports (what the driver recorded when it stopped it),
at its last step: the plots show them apart from the finished runs' final values. So are
the infeasible runs of a search with ``constraints``: the best shown is the best feasible one.
"""

from __future__ import annotations

import math
from typing import Any

from hpsearch.engine.pareto import pareto_front
from hpsearch.inspect.importance import METHOD, importance
from hpsearch.inspect.report.timeline import lay_out
from hpsearch.inspect.view import Parameter, RunView, SearchView, display
from hpsearch.runs.summary import is_number
from hpsearch.spec.constraints import Constraint

MAX_CATEGORIES = 12
MAX_CURVE_POINTS = 400_000
MAX_STEP_CHOICES = 100


def _finite(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if is_number(value):
        return value if math.isfinite(value) else None
    return value


def _categories(parameter: Parameter) -> list[Any]:
    """A list parameter's choices as its axis shows them: numbers ascending, else declared."""
    assert parameter.choices is not None
    choices = parameter.choices
    numeric = all(is_number(c) and not isinstance(c, bool) for c in choices)
    return sorted(choices) if numeric else choices


def _axis(parameter: Parameter) -> dict[str, Any]:
    dist = parameter.distribution
    if dist is not None:
        return {"name": parameter.name, "axis": "log" if dist.is_log else "linear"}
    choices = _categories(parameter)
    numbers = [v for v in choices if is_number(v) and not isinstance(v, bool)]
    if len(numbers) == len(choices) and len(set(numbers)) > MAX_CATEGORIES:
        low, high = min(numbers), max(numbers)
        log = low > 0 and high / low >= 1000
        return {"name": parameter.name, "axis": "log" if log else "linear"}
    return {"name": parameter.name, "axis": "category", "categories": [str(c) for c in choices]}


def _column(parameter: Parameter, axis: dict[str, Any], runs: list[RunView]) -> list[Any]:
    """The runs' values of one parameter; a category's index (None: the run lacks it)."""
    name = parameter.name
    if axis["axis"] != "category":
        return [_finite(display(r.state.config[name])) if name in r.state.config else None
                for r in runs]
    index = {repr(c): k for k, c in enumerate(_categories(parameter))}
    return [index.get(repr(display(r.state.config[name]))) if name in r.state.config else None
            for r in runs]


def _numbers(values: list[Any]) -> list[Any]:
    """Finite numbers as they are, anything else as None (the hot loop of big searches)."""
    return [v if type(v) in (int, float) and v - v == 0 else None for v in values]


def _curves(view: SearchView) -> list[dict[str, Any]]:
    total = sum(len(r.curve) for r in view.runs)
    keep = 1.0 if total <= MAX_CURVE_POINTS else MAX_CURVE_POINTS / total
    curves = []
    for i, run in enumerate(view.runs):
        points = run.curve
        if not points:
            continue
        if keep < 1.0 and len(points) > 2:
            count = max(2, int(len(points) * keep))
            picks = sorted({round(k * (len(points) - 1) / (count - 1)) for k in range(count)})
            points = [points[k] for k in picks]
        names = [k for k in dict.fromkeys(k for p in points for k in p) if k not in ("step", "t")]
        curves.append({"run": i, "step": [p["step"] for p in points],
                       "m": {k: _numbers([p.get(k) for p in points]) for k in names}})
    return curves


def build(view: SearchView) -> dict[str, Any]:
    """The page's data (see the module docstring)."""
    runs = view.runs
    starts = [s.start for r in runs for s in r.spans]
    t0 = min(starts, default=view.now)
    plotted = [p for p in view.parameters if p.varies]
    scored = [i for i, r in enumerate(runs) if r.scored(view.objectives)]
    pruned = [i for i, r in enumerate(runs)
              if r.state.status == "pruned" and r.value(view.objectives[0]) is not None]
    pareto = None
    if len(view.objectives) > 1:
        points = [[runs[i].value(k) for k in view.objectives] for i in scored]
        pareto = [scored[j] for j in pareto_front(points, view.directions)]  # type: ignore[arg-type]
    bars, lanes = lay_out(view)
    found = importance(view)
    axes = {p.name: _axis(p) for p in plotted}
    return {
        "objectives": view.objectives, "directions": view.directions,
        "metrics": view.metrics, "t0": t0,
        "params": list(axes.values()),
        "runs": {
            "trial": [r.state.trial for r in runs], "id": [r.state.run_id for r in runs],
            "status": [r.state.status for r in runs],
            "p": {p.name: _column(p, axes[p.name], runs) for p in plotted},
            "m": {k: [_finite(r.state.metrics.get(k)) for r in runs] for k in view.metrics},
            "step": [_finite(r.last_step()) for r in runs],
            "end": [_rel(max((s.end for s in r.spans if s.end is not None), default=None), t0)
                    for r in runs],
        },
        "scored": scored, "pruned": pruned, "pareto": pareto, "curves": _curves(view),
        "infeasible": _infeasible(runs, scored, view.record.layout.constraints),
        "steps": _step_choices(view),
        "bars": {"run": [b.run for b in bars], "lane": [b.lane for b in bars],
                 "start": [_rel(b.start, t0) for b in bars],
                 "end": [_rel(b.end, t0) for b in bars], "last": [b.last for b in bars],
                 "queued": [_rel(b.queued_from, t0) for b in bars],
                 "job": [b.job for b in bars]},
        "lanes": lanes,
        "importance": {"method": METHOD, "values": [[k, round(v, 4)] for k, v in found.values],
                       "note": found.note, "basis": found.basis},
        "lineage": _lineage(view),
    }


def _infeasible(runs: list[RunView], scored: list[int],
                constraints: tuple[Constraint, ...]) -> dict[str, list[Any]]:
    """The ``infeasible`` entry: the scored runs that break a constraint, and which."""
    broken = [(i, [c.text() for c in constraints if not c.holds(runs[i].state.metrics)])
              for i in scored]
    return {"run": [i for i, texts in broken if texts],
            "broken": [", ".join(texts) for _, texts in broken if texts]}


def _lineage(view: SearchView) -> dict[str, Any] | None:
    """The ``lineage`` entry (see the module docstring)."""
    schedule = view.meta.get("schedule") or {}
    kind = "budget" if "budget" in schedule else "pbt" if "pbt" in schedule else None
    if kind is None:
        return None
    parameter = schedule[kind]["parameter"]
    group, level = ("bracket", "rung") if kind == "budget" else ("member", "segment")
    index = {r.state.trial: i for i, r in enumerate(view.runs)}
    lineages = [r.state.lineage or {} for r in view.runs]
    return {"kind": kind, "parameter": parameter,
            "from": [index.get(x.get("continues")) for x in lineages],
            "group": [x.get(group) for x in lineages], "level": [x.get(level) for x in lineages],
            "at": [_finite(r.state.config.get(parameter)) for r in view.runs]}


def _step_choices(view: SearchView) -> list[float]:
    """The distinct steps of the runs' curves, at most :data:`MAX_STEP_CHOICES` (evenly
    picked, the first and the last kept)."""
    steps = sorted({p["step"] for r in view.runs for p in r.curve})
    if len(steps) <= MAX_STEP_CHOICES:
        return steps
    last = len(steps) - 1
    return [steps[k] for k in sorted({round(j * last / (MAX_STEP_CHOICES - 1))
                                      for j in range(MAX_STEP_CHOICES)})]


def _rel(epoch: float | None, t0: float) -> float | None:
    return None if epoch is None else round(epoch - t0, 3)
