"""``warm_start``: the finished runs of earlier searches, told to the strategy before it asks.

On a search's first start each directory named is read through its journal (the same replay
a resume does, :func:`hpsearch.engine.journal.replay`); a finished run whose configuration
fits this search's space (:func:`hpsearch.spec.points.fit`) and which has a finite value of
every objective becomes a :class:`~hpsearch.spec.points.WarmResult`. The rest are counted
and named in one line::

    warm_start: 12 finished runs of 2 searches are told to tpe; 3 left out (2 do not fit
    the space, e.g. run 3f2a9c0d1b7e: lr=0.5 is outside loguniform(1e-05, 0.1); 1 without
    a value of val_loss, e.g. run 0b7e...)

What was told is written to ``<out_dir>/warm_start.json`` once the search directory is
taken (:func:`save_warm_results`); a resumed search reads that file instead of the earlier
searches, which may have gained runs since, so its strategy is told exactly what the first
start told it (and a sampler proposes what it proposed then).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from hpsearch.engine.journal import JOURNAL_FILE, replay
from hpsearch.errors import UsageError
from hpsearch.runs.files import write_atomic
from hpsearch.runs.summary import objective_values
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.points import WarmResult, fit

WARM_FILE = "warm_start.json"


def warm_started(spec: SearchSpec, out_dir: Path) -> tuple[SearchSpec, str | None]:
    """``spec`` with its ``warm_results``, and the line that says what they are (None when
    the search has no ``warm_start``, or resumes: its results come from ``out_dir``)."""
    if not spec.warm_start:
        return spec, None
    saved = out_dir / WARM_FILE
    if saved.is_file():
        return dataclasses.replace(spec, warm_results=_read(saved)), None
    results, line = _collect(spec)
    return dataclasses.replace(spec, warm_results=tuple(results)), line


def save_warm_results(spec: SearchSpec, out_dir: Path) -> None:
    """Keep what the strategy is told (the search directory is taken): a resume reads it."""
    saved = out_dir / WARM_FILE
    if spec.warm_start and not saved.is_file():
        rows = [{"config": r.config, "values": list(r.values)} for r in spec.warm_results]
        write_atomic(saved, json.dumps({"searches": list(spec.warm_start), "runs": rows},
                                       indent=1) + "\n")


def _read(path: Path) -> tuple[WarmResult, ...]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return tuple(WarmResult(dict(row["config"]), tuple(float(v) for v in row["values"]))
                     for row in data["runs"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read {path} ({type(exc).__name__}: {exc}); it holds the "
                         "warm-start runs this search was told: restore it, or start the "
                         "search in a new --out_dir") from None


def _collect(spec: SearchSpec) -> tuple[list[WarmResult], str]:
    results: list[WarmResult] = []
    unfit: list[str] = []
    valueless: list[str] = []
    keys = spec.config_keys()
    for name in spec.warm_start:
        folder = Path(name)
        if not (folder / JOURNAL_FILE).is_file():
            raise UsageError(f"warm_start: {name} is not a search directory (no "
                             f"{JOURNAL_FILE}); name the --out_dir of an earlier search")
        for state in sorted(replay(folder / JOURNAL_FILE).runs.values(),
                            key=lambda s: s.trial):
            if state.status != "finished":
                continue
            config, why = fit(state.config, spec.parameters, spec.conditions, keys)
            values = objective_values(state.metrics, spec.objectives)
            if config is None:
                unfit.append(f"run {state.run_id} of {name}: {why}")
            elif values is None or not all(math.isfinite(v) for v in values):
                valueless.append(f"run {state.run_id} of {name}")
            else:
                results.append(WarmResult(config, tuple(values)))
    return results, _line(spec, results, unfit, valueless)


def _line(spec: SearchSpec, results: list[WarmResult], unfit: list[str],
          valueless: list[str]) -> str:
    searches = len(spec.warm_start)
    text = (f"warm_start: {len(results)} finished run(s) of {searches} search(es) are told to "
            f"{spec.algorithm}")
    left = []
    if unfit:
        left.append(f"{len(unfit)} do not fit the space, e.g. {unfit[0]}")
    if valueless:
        left.append(f"{len(valueless)} without a value of {', '.join(spec.objectives)}, e.g. "
                    f"{valueless[0]}")
    if spec.algorithm in ("random", "qmc"):
        text += " (which proposes without looking at results: they change nothing)"
    return text + (f"; {len(unfit) + len(valueless)} left out ({'; '.join(left)})"
                   if left else "")
