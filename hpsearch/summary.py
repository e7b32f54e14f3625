"""Read a run's performance summary file into metrics, and judge whether the run finished.

The summary file (``_SUMMARY_FILENAME`` in the sim's output dir) has one keyword a line,
followed by a number or a list of numbers, in any order::

    acc_test 0.9312
    loss_test 1.5e-03
    acc_per_task [0.91, 0.95]
    finished 1

A single number becomes a float (``-1e-3``, ``nan``, ``inf`` included); several become the
text ``"0.91,0.95"``. Lines with other words are ignored. A run is finished only when its
command exited 0 and ``finished`` reads 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NUMBER = re.compile(
    r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf(?:inity)?\b|nan\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """``failure`` is None for a finished run, else the reason it failed."""

    metrics: dict[str, Any]
    failure: str | None


def parse_value(text: str) -> float | str | None:
    """``"0.93"`` -> 0.93, ``"[1, 2e-3]"`` -> ``"1,0.002"``, no number -> None."""
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    if len(numbers) == 1:
        return float(numbers[0])
    return ",".join(numbers)


def parse_summary_text(text: str, keywords: list[str]) -> dict[str, float | str]:
    """Metrics for the keywords found in ``text`` (first occurrence of each wins)."""
    wanted = set(keywords)
    metrics: dict[str, float | str] = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] in wanted and parts[0] not in metrics:
            value = parse_value(parts[1])
            if value is not None:
                metrics[parts[0]] = value
    return metrics


def _from_custom_parser(handle: Callable[..., dict[str, Any]], sim_out_dir: Path,
                        index: int) -> dict[str, float | str]:
    """hypnettorch's ``_SUMMARY_PARSER_HANDLE(out_dir, run_index)`` -> {key: [value]}."""
    raw = handle(str(sim_out_dir), index)
    metrics: dict[str, float | str] = {}
    for key, value in dict(raw).items():
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        parsed = value if isinstance(value, (int, float)) else parse_value(str(value))
        if parsed is not None:
            metrics[key] = float(parsed) if isinstance(parsed, (int, float)) else parsed
    return metrics


def judge_run(sim_out_dir: Path, summary_filename: str, keywords: list[str],
              performance_key: str, exit_code: int | None,
              parser: Callable[..., dict[str, Any]] | None = None, index: int = 0) -> Verdict:
    """Metrics and finished/failed verdict for one ended run. Never raises."""
    try:
        if parser is not None:
            metrics = _from_custom_parser(parser, sim_out_dir, index)
        else:
            with open(sim_out_dir / summary_filename, errors="replace") as f:
                metrics = parse_summary_text(f.read(), keywords)
    except FileNotFoundError:
        metrics, problem = {}, f"summary file {summary_filename} missing"
    except Exception as exc:  # a custom parser's or the file system's error
        metrics, problem = {}, f"summary unreadable: {type(exc).__name__}: {exc}"
    else:
        problem = None
        missing = [k for k in keywords if k not in metrics]
        finished = metrics.get("finished")
        if missing:
            problem = f"summary lacks {', '.join(missing)}"
        elif not (isinstance(finished, float) and finished == 1.0):
            problem = f"summary says finished {finished}"
        elif not isinstance(metrics.get(performance_key), float):
            problem = f"performance key {performance_key} is not a number"
    if exit_code is not None and exit_code != 0:
        return Verdict(metrics, f"exit status {exit_code}")
    return Verdict(metrics, problem)
