"""A run's learning curve: the intermediate results it reported, step by step.

Two sources, merged by step (a later point of the same step wins):

* ``<run_dir>/out/hpsearch_report.jsonl`` -- what the sim wrote with ``hpsearch.report``
  (:mod:`hpsearch.runs.reporter`), one JSON object a line::

      {"step": 3, "t": 1732350000.25, "val_loss": 0.41}

* ``<run_dir>/curve.jsonl`` -- what the driver read from a sim that rewrites its summary file
  during training (``finished 0``), in the same format, the step taken from the keyword the
  pruner's ``step`` option names.

A torn last line (the sim was writing) waits for its end. A point holds numbers only: a line
that is not a JSON object, or whose step is not a finite whole number
(:func:`hpsearch.runs.reporter.step_problem`), is left out, and so is any value that is not a
number (text, lists), whatever its size; :func:`split_points` says what was left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpsearch.runs.files import SIM_OUT_DIR
from hpsearch.runs.reporter import REPORT_FILE, step_problem
from hpsearch.runs.summary import is_number

#: the file the driver keeps the points it read from rewritten summaries in
DRIVER_CURVE_FILE = "curve.jsonl"


def read_points(path: Path) -> list[dict[str, Any]]:
    """The complete, well-formed lines of one curve file (none when it is missing)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    return parse_points(data)


def parse_points(data: bytes) -> list[dict[str, Any]]:
    """The points of ``data``'s complete lines (a torn last line is left for later)."""
    return split_points(data)[0]


def split_points(data: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """The points of ``data``'s complete lines, and why the first line left out was (None:
    every line is a point)."""
    complete = data[:data.rfind(b"\n") + 1]
    problem = None
    try:  # every line well-formed (the common case): one parse for the whole file
        parsed = json.loads(b"[" + complete.rstrip(b"\n").replace(b"\n", b",") + b"]")
    except ValueError:
        parsed = []
        for line in complete.split(b"\n")[:-1]:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                if line.strip():
                    problem = problem or "a line is not JSON"
    points = []
    for line in parsed:
        wrong = _line_problem(line)
        if wrong is not None:
            problem = problem or wrong
            continue
        points.append({k: v for k, v in line.items() if is_number(v)})
    return points, problem


def _line_problem(line: Any) -> str | None:
    """Why a parsed report line is no point (None: it is one)."""
    if not isinstance(line, dict):
        return "a line is not a JSON object"
    if "step" not in line:
        return "a line has no step"
    problem = step_problem(line["step"])
    return None if problem is None else f"step {problem}"


def read_curve(run_dir: Path) -> list[dict[str, Any]]:
    """Every intermediate point of a run, by step (see the module docstring)."""
    by_step: dict[float, dict[str, Any]] = {}
    for path in (run_dir / DRIVER_CURVE_FILE, run_dir / SIM_OUT_DIR / REPORT_FILE):
        for point in read_points(path):
            by_step[point["step"]] = {**by_step.get(point["step"], {}), **point}
    return [by_step[step] for step in sorted(by_step)]
