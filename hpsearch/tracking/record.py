"""What a tracking sink is handed: one search (:class:`SearchInfo`), one ended run (`RunRecord`).

A sink (:class:`Sink`) is told about the search once (:meth:`Sink.open`), then each run once its
verdict is final (:meth:`Sink.log`). The values come from the search directory (the journal, each
run's curve and summary), never from inside the training process, so a run logs the same whether
it ran locally, on a cluster or as a served point, and a search that already ended can be
exported the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class SinkError(Exception):
    """A sink could not write (a server down, a full disk): one line; the search goes on and
    the record is offered again later."""


@dataclass(frozen=True)
class SearchInfo:
    """The search a sink logs: ``name`` (the search directory's name: the experiment, group or
    parent run), ``out_dir``, the objectives as ``{metric: "minimize" | "maximize"}`` and the
    parameter names in their declared order."""

    name: str
    out_dir: Path
    objectives: Mapping[str, str]
    parameters: tuple[str, ...]


@dataclass(frozen=True)
class RunRecord:
    """One run whose verdict is final, as every sink logs it.

    ``status`` is the results table's (``finished``, ``failed``, ``pruned``, ``preempted``, ...)
    and ``reason`` its ``failure_reason`` (empty when finished). ``metrics`` are the summary's
    final values (numbers only), ``curve`` the intermediate reports as ``(step, {metric:
    value})`` in step order (finite numbers only). ``tags`` hold the rest as text: ``search``,
    ``trial``, ``attempts``, ``backend``, ``job_id``, ``host``, ``gpu_hours``, ``cpu_hours``
    where known. ``started``/``ended`` are Unix times (None: unknown)."""

    run_id: str
    config: Mapping[str, Any]
    status: str
    reason: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    curve: tuple[tuple[int, Mapping[str, float]], ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None


class Sink(Protocol):
    """A tracking library's writer. ``name`` is its ``--log_to`` word. Every method raises
    :class:`SinkError` (one line) when it cannot write; :meth:`log` may be called again with a
    record it already wrote (after a crash between writing and noting it) and must then leave
    one run, not two."""

    name: str

    def open(self, search: SearchInfo) -> None: ...

    def log(self, record: RunRecord) -> None: ...

    def close(self) -> None: ...
