"""``constraints``: bounds on metrics that a run must keep to count (a search file's setting).

::

    metrics: [val_loss, memory_gb, latency_ms]
    constraints: ["memory_gb <= 16", "latency_ms < 20"]

Each constraint is ``<metric> <op> <number>`` with ``op`` one of ``<=``, ``<``, ``>=``, ``>``
and the metric one of the search's metrics. A run is *feasible* when every constraint holds
of its metrics; a missing or NaN value counts as broken. The best run shown (the results
table's order, ``status``, the report) is the best feasible one. Optuna's tpe and nsga2
are told each constraint's :meth:`Constraint.violation`:
how far the value lies past its bound, <= 0 when it holds (``inf`` for a missing value), as
Optuna's ``constraints_func`` expects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpsearch.errors import UsageError

_CONSTRAINT = re.compile(r"\s*(?P<metric>\S+?)\s*(?P<op><=|>=|<|>)\s*(?P<bound>\S+)\s*")


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, e.g. ``memory_gb <= 16.0``."""

    metric: str
    op: str
    bound: float

    def text(self) -> str:
        return f"{self.metric} {self.op} {self.bound!r}"

    def _value(self, metrics: Mapping[str, Any]) -> float | None:
        value = metrics.get(self.metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(
                value):
            return float(value)
        return None

    def holds(self, metrics: Mapping[str, Any]) -> bool:
        value = self._value(metrics)
        if value is None:
            return False
        return {"<=": value <= self.bound, "<": value < self.bound,
                ">=": value >= self.bound, ">": value > self.bound}[self.op]

    def violation(self, metrics: Mapping[str, Any]) -> float:
        """How far past the bound (<= 0: within it; ``inf``: no value)."""
        value = self._value(metrics)
        if value is None:
            return math.inf
        return value - self.bound if self.op in ("<=", "<") else self.bound - value


def feasible(metrics: Mapping[str, Any], constraints: Sequence[Constraint]) -> bool:
    return all(c.holds(metrics) for c in constraints)


def parse_constraint(text: Any, metrics: Sequence[str], where: str) -> Constraint:
    match = _CONSTRAINT.fullmatch(text) if isinstance(text, str) else None
    bound = _number(match.group("bound")) if match else None
    if match is None or bound is None:
        raise UsageError(f"{where}: constraint {text!r} must read '<metric> <= <number>' (or "
                         "<, >=, >), e.g. 'memory_gb <= 16'")
    if match.group("metric") not in metrics:
        raise UsageError(f"{where}: constraint {text!r} names {match.group('metric')!r}, which "
                         f"is not among the metrics {list(metrics)}; add it to metrics")
    return Constraint(match.group("metric"), match.group("op"), bound)


def parse_constraints(raw: Any, metrics: Sequence[str], where: str
                      ) -> tuple[Constraint, ...]:
    """``constraints``: one text or a list of them."""
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise UsageError(f"{where}: constraints must be a list such as ['memory_gb <= 16'], "
                         f"not {raw!r}")
    return tuple(parse_constraint(item, metrics, where) for item in items)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
