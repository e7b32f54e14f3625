"""Read what active runs report while they run, a little at a time.

Two ways a run reports (see :mod:`hpsearch.runs.curves` for the files):

* ``hpsearch.report(step=..., **metrics)`` lines in ``out/hpsearch_report.jsonl``: read from
  where the last read stopped;
* a summary file the sim rewrites during training (hypnettorch's habit: ``finished 0``
  until the end): read again whenever its size or mtime changed; a version holding the
  step keyword (``pruner_options: {step: epoch}``) is a point, which the driver appends to
  ``<run_dir>/curve.jsonl`` so that ``collect`` and ``report`` see it too.

A line or a summary whose step is not a finite whole number is left out (see
:mod:`hpsearch.runs.curves`); :meth:`IntermediateReader.problem` says so once per run, for the
driver's one warning. :meth:`IntermediateReader.update` costs one ``stat`` per file when
nothing changed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.runs.curves import DRIVER_CURVE_FILE, read_curve, split_points
from hpsearch.runs.reporter import REPORT_FILE, step_problem
from hpsearch.runs.summary import SummaryFormat, is_number, parse_summary_text


@dataclass
class _Seen:
    offset: int = 0  # bytes of the report file read so far
    summary: tuple[int, float] | None = None  # (size, mtime) of the summary last read
    points: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # what was left out, until the driver warned of it
    warned: bool = False


class IntermediateReader:
    """Points of the runs it is asked about, kept while they run."""

    def __init__(self, fmt: SummaryFormat, step_key: str) -> None:
        self.fmt = fmt
        self.step_key = step_key
        self._seen: dict[str, _Seen] = {}

    def start(self, run_id: str, run_dir: Path) -> None:
        """Begin (or, after a restart, resume) watching a run: what its files hold counts."""
        seen = self._seen[run_id] = _Seen(points=read_curve(run_dir))
        report = run_dir / "out" / REPORT_FILE
        try:
            seen.offset = report.stat().st_size
        except OSError:
            seen.offset = 0

    def forget(self, run_id: str) -> None:
        self._seen.pop(run_id, None)

    def points(self, run_id: str) -> list[dict[str, Any]]:
        return self._seen[run_id].points if run_id in self._seen else []

    def problem(self, run_id: str) -> str | None:
        """What of the run's reports was left out, the first time only (None after that)."""
        seen = self._seen.get(run_id)
        if seen is None or seen.warned or seen.problem is None:
            return None
        seen.warned = True
        return seen.problem

    def update(self, run_id: str, run_dir: Path, sim_out_dir: Path) -> bool:
        """Read what the run wrote since; True when it brought new points."""
        seen = self._seen.setdefault(run_id, _Seen())
        new = self._read_report(seen, sim_out_dir / REPORT_FILE)
        point = self._read_summary(seen, sim_out_dir / self.fmt.filename)
        if point is not None:
            new.append(point)
            with open(run_dir / DRIVER_CURVE_FILE, "a") as f:
                f.write(json.dumps(point) + "\n")
        seen.points.extend(new)
        if new:
            seen.points.sort(key=lambda p: p["step"])
        return bool(new)

    def _read_report(self, seen: _Seen, path: Path) -> list[dict[str, Any]]:
        try:
            with open(path, "rb") as f:
                f.seek(seen.offset)
                data = f.read()
        except OSError:
            return []
        seen.offset += data.rfind(b"\n") + 1  # a line being written waits
        points, problem = split_points(data)
        if problem is not None:
            seen.problem = seen.problem or f"{path.name}: {problem}"
        return points

    def _read_summary(self, seen: _Seen, path: Path) -> dict[str, Any] | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        stamp = (stat.st_size, stat.st_mtime)
        if stamp == seen.summary:
            return None
        seen.summary = stamp
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return None
        metrics = parse_summary_text(text, [*self.fmt.keywords, self.step_key])
        step = metrics.pop(self.step_key, None)
        if step is None:
            return None
        problem = step_problem(step)
        if problem is not None:
            seen.problem = seen.problem or f"{path.name}: {self.step_key} {problem}"
            return None
        values = {k: v for k, v in metrics.items() if is_number(v)}
        if any(p["step"] == step and all(p.get(k) == v for k, v in values.items())
               for p in seen.points[-3:]):
            return None
        return {"step": step, "t": round(time.time(), 3), **values}
