"""``hpsearch export OUT_DIR --format json|csv|optuna [-o FILE]``: the runs for other tools.

* ``json`` (default ``OUT_DIR/export.json``)::

      {"format": "hpsearch-export", "version": 1,
       "search": {"out_dir": "/abs/out/q", "objectives": ["loss"], "directions": ["minimize"],
                  "algorithm": "tpe", "parameters": {"lr": {"method": "loguniform", ...}}},
       "runs": [{"trial": 0, "run_id": "000000-3f2a9c0d", "status": "finished",
                 "config": {"lr": 0.01}, "metrics": {"loss": 0.41, "finished": 1},
                 "attempts": 1, "reason": null, "wall_time": 12.5, "job_id": "node1:4711",
                 "starts": [{"start": 1732350000.1, "end": 1732350012.6, "host": "node1",
                             "gpus": 0}],
                 "curve": [{"step": 1, "t": 1732350001.0, "loss": 0.9}], "extra": {}}]}

  Times are epoch seconds; NaN and infinities are null; runs in trial order.
* ``csv`` (default ``OUT_DIR/export.csv``): the results table of ``search_results.csv``
  (same columns, same order) with ``,`` as separator, for tools that expect plain CSV.
* ``optuna`` (default ``OUT_DIR/optuna_journal.log``): an Optuna journal file holding one
  study named after the search directory (see :mod:`hpsearch.inspect.optuna_study`)::

      optuna-dashboard OUT_DIR/optuna_journal.log
      storage = optuna.storages.JournalStorage(
          optuna.storages.journal.JournalFileBackend("OUT_DIR/optuna_journal.log"))
      study = optuna.load_study(study_name="q", storage=storage)

* ``mlflow`` (and every other ``--log_to`` sink, :data:`hpsearch.tracking.SINKS`): every run
  that ended, logged where ``--log_to mlflow`` logs (``MLFLOW_TRACKING_URI``, else
  ``OUT_DIR/mlflow.db``), as the driver logs it (:func:`hpsearch.engine.sinks.run_record`).
  Exporting again leaves one MLflow run per run (updated where the search changed since).

Each file is replaced whole; nothing else in the search directory changes (but a sink's own
store, when it keeps it there).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from hpsearch.engine.journal import ENDED
from hpsearch.engine.results import build_table
from hpsearch.engine.sinks import run_record, search_info
from hpsearch.errors import SearchError, UsageError
from hpsearch.inspect.collect import read_search
from hpsearch.inspect.view import SearchView, load_view
from hpsearch.tracking import SINKS, make_sinks
from hpsearch.tracking.record import SinkError

DEFAULT_FILES = {"json": "export.json", "csv": "export.csv", "optuna": "optuna_journal.log"}


def _clean(value: Any) -> Any:
    """``value`` with NaN and infinities as None, all the way down."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def as_json(view: SearchView) -> dict[str, Any]:
    meta = view.meta
    search = {"out_dir": str(view.out_dir), "objectives": view.objectives,
              "directions": view.directions, "algorithm": meta.get("algorithm"),
              "parameters": meta.get("parameters")}
    runs = []
    for run in view.runs:
        s = run.state
        runs.append({"trial": s.trial, "run_id": s.run_id, "status": s.status,
                     "config": s.config, "metrics": s.metrics, "attempts": s.attempts,
                     "reason": s.reason, "wall_time": s.wall_time, "job_id": s.job_id,
                     "starts": [{"start": p.start, "end": p.end, "host": p.host,
                                 "gpus": p.gpus} for p in run.spans],
                     "curve": run.curve, "extra": s.extra or {}})
    return _clean({"format": "hpsearch-export", "version": 1, "search": search, "runs": runs})


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _csv_text(out_dir: Path, grid_module: str | None) -> tuple[str, int]:
    record = read_search(out_dir, grid_module)
    columns, rows = build_table(record.rows(), record.layout)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue(), len(rows)


def to_sink(out_dir: Path, name: str, grid_module: str | None) -> None:
    """Log every run of the search that ended to the sink ``name``; prints how many."""
    [sink] = make_sinks([name], out_dir)
    view = load_view(out_dir, grid_module)
    search = search_info(out_dir, view.objectives, view.directions,
                         [p.name for p in view.parameters])
    backend = str(view.meta.get("backend") or "local")
    runs = [run for run in view.runs if run.state.status in ENDED]
    try:
        sink.open(search)
        for run in runs:
            sink.log(run_record(run.state, run.run_dir, search.name, backend))
        sink.close()
    except SinkError as exc:
        raise SearchError(f"export to {name}: {exc}") from None
    sys.stdout.write(f"{out_dir}: {len(runs)} runs logged to {name}\n")


def export(out_dir: Path, fmt: str, output: Path | None, grid_module: str | None) -> Path:
    """Write the export; prints where, and returns the path (for a sink: ``out_dir``)."""
    if fmt in SINKS:
        if output is not None:
            raise UsageError(f"--format {fmt} logs where --log_to {fmt} does, not to a file; "
                             "leave out -o")
        to_sink(out_dir, fmt, grid_module)
        return out_dir
    path = output if output is not None else out_dir / DEFAULT_FILES[fmt]
    try:
        if fmt == "csv":
            text, count = _csv_text(out_dir, grid_module)
            _write(path, text)
            what = f"{count} runs"
        else:
            view = load_view(out_dir, grid_module)
            what = f"{len(view.runs)} runs"
            if fmt == "json":
                _write(path, json.dumps(as_json(view), indent=1) + "\n")
            else:
                from hpsearch.inspect.optuna_study import write_journal

                name = write_journal(view, path)
                what += f" as the Optuna study {name!r} (optuna-dashboard {path})"
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror}); pass -o PATH somewhere you "
                         "can write") from None
    sys.stdout.write(f"{path}: {what}\n")
    return path
