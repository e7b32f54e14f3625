"""Early stopping: decide from a run's intermediate results whether it goes on.

A pruner sees each run's points ``(step, value)`` -- ``value`` is the search's objective
as the run reported it at ``step`` -- and answers for the newest point: go on, or prune.
It never touches files or backends; the driver journals every decision before it takes
effect (``rung`` and ``prune`` events) and hands those back on a restart, so a resumed
search does not decide again what it decided before.

=========  =====================================================================================
pruner     rule
=========  =====================================================================================
asha       Asynchronous successive halving. Rungs at ``min_resource * reduction_factor**k``
           steps (up to ``max_resource``). The first time a run reports at or past a rung, it
           goes on if its value at the rung is among the best ``1 / reduction_factor`` of the
           values every run had at that rung so far (itself included; with fewer than
           ``reduction_factor`` of them, it must be the best), else it is pruned. A run's
           value at a rung is its last point at or before the rung's step: a run first read
           past a rung (a sim that rewrites its summary, read now and then) has none there,
           and enters that rung unscored (neither pruned there nor a competitor there).
hyperband  Several ASHA brackets, bracket ``b`` with its first rung at
           ``min_resource * reduction_factor**b``; a run is in bracket ``trial % brackets``
           (``brackets = floor(log_rf(max_resource / min_resource)) + 1``) and competes only
           with the runs of its bracket.
median     After ``warmup_steps`` and once ``min_trials`` runs have finished, a run is pruned
           when its value at its newest step is worse than the median of the values the
           finished runs reported at that step (their last value at or before it).
none       Every run goes to its end.
=========  =====================================================================================

The declaration (a pruner's name and its options, as a search says them) is
:class:`hpsearch.spec.pruning.PrunerSpec`.
"""

from __future__ import annotations

import math
import statistics
from abc import ABC, abstractmethod
from dataclasses import dataclass

from hpsearch.spec.pruning import PrunerSpec


@dataclass(frozen=True)
class Decision:
    """What a pruner decided once a run reported new points.

    ``rungs`` (ASHA, Hyperband) are the rungs the points crossed, each with the run's value
    there: ``(rung, value)`` is journaled whether the run goes on or not, so a restart knows
    the rung's values and does not decide that crossing again. ``prune`` is the reason to
    stop the run, or None.
    """

    rungs: tuple[tuple[int, float], ...] = ()
    prune: str | None = None


class Pruner(ABC):
    """See the module docstring. ``minimize`` is the objective's direction."""

    def __init__(self, spec: PrunerSpec, minimize: bool) -> None:
        self.spec = spec
        self.minimize = minimize

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.minimize else a > b

    def restore_rung(self, run_id: str, trial: int, rung: int, value: float) -> None:  # noqa: B027
        """A rung crossing the journal holds (decided by an earlier driver); rungless
        pruners ignore it."""

    @abstractmethod
    def consider(self, run_id: str, trial: int, points: list[tuple[float, float]]
                 ) -> Decision:
        """The decision on the newest of a run's points (``points`` in step order)."""

    def finished(self, run_id: str, trial: int, points: list[tuple[float, float]]
                 ) -> tuple[tuple[int, float], ...]:
        """A run finished with these points: the median pruner compares later runs with
        them; ASHA and Hyperband enter the rungs they crossed that were not decided while
        the run ran (it ended between two reads) and return those, to be journaled."""
        return ()


class NoPruner(Pruner):
    def consider(self, run_id: str, trial: int, points: list[tuple[float, float]]
                 ) -> Decision:
        return Decision()


class SuccessiveHalving(Pruner):
    """ASHA; Hyperband is several of its brackets (see :class:`Hyperband`)."""

    def __init__(self, spec: PrunerSpec, minimize: bool, first_rung: float | None = None
                 ) -> None:
        super().__init__(spec, minimize)
        self.eta = float(spec.options["reduction_factor"])
        self.first = float(first_rung if first_rung is not None
                           else spec.options["min_resource"])
        self.top = spec.options["max_resource"]
        self.rung_values: dict[int, list[float]] = {}
        self.crossed: dict[str, int] = {}  # run -> highest rung decided

    def _rung_of(self, step: float) -> int | None:
        """The highest rung at or below ``step`` (None below the first rung)."""
        if step < self.first:
            return None
        rung = int(math.floor(math.log(step / self.first, self.eta) + 1e-9))
        if self.top is not None:
            last = int(math.floor(math.log(self.top / self.first, self.eta) + 1e-9))
            rung = min(rung, last)
        return rung

    def restore_rung(self, run_id: str, trial: int, rung: int, value: float) -> None:
        if not math.isnan(value):
            self.rung_values.setdefault(rung, []).append(value)
        self.crossed[run_id] = max(self.crossed.get(run_id, -1), rung)

    def _at(self, rung: int) -> float:
        return self.first * self.eta ** rung

    def _at_rung(self, rung: int, points: list[tuple[float, float]]
                 ) -> tuple[float, float] | None:
        """The run's ``(step, value)`` at a rung: its last point at or before the rung's step
        (None: it was first read past the rung)."""
        at = self._at(rung)
        before = [p for p in points if p[0] <= at + 1e-9]
        return before[-1] if before else None

    def consider(self, run_id: str, trial: int, points: list[tuple[float, float]]
                 ) -> Decision:
        """Decide each rung the points crossed since the last decision, in order, on the
        run's value at the rung (see :meth:`_at_rung`; a rung with none is not entered)."""
        newest = self._rung_of(points[-1][0])
        if newest is None:
            return Decision()
        step = points[-1][0]
        crossed: list[tuple[int, float]] = []
        for rung in range(self.crossed.get(run_id, -1) + 1, newest + 1):
            self.crossed[run_id] = rung
            point = self._at_rung(rung, points)
            if point is None:
                continue
            value, at = point[1], self._at(rung)
            crossed.append((rung, value))
            if math.isnan(value):
                return Decision(tuple(crossed), f"pruned at step {step:g}: rung {rung} "
                                f"({at:g} steps) reported NaN")
            values = self.rung_values.setdefault(rung, [])
            values.append(value)
            keep = max(1, int(len(values) // self.eta))
            ranked = sorted(values, reverse=not self.minimize)
            if self._better(ranked[keep - 1], value):
                return Decision(tuple(crossed), (
                    f"pruned at step {step:g}: rung {rung} ({at:g} steps), not among the "
                    f"best {keep} of {len(values)}"))
        return Decision(tuple(crossed))

    def finished(self, run_id: str, trial: int, points: list[tuple[float, float]]
                 ) -> tuple[tuple[int, float], ...]:
        newest = self._rung_of(points[-1][0]) if points else None
        if newest is None:
            return ()
        crossed = []
        for rung in range(self.crossed.get(run_id, -1) + 1, newest + 1):
            self.crossed[run_id] = rung
            point = self._at_rung(rung, points)
            if point is not None:
                self.restore_rung(run_id, trial, rung, point[1])
                crossed.append((rung, point[1]))
        return tuple(crossed)


class Hyperband(Pruner):
    def __init__(self, spec: PrunerSpec, minimize: bool) -> None:
        super().__init__(spec, minimize)
        eta = float(spec.options["reduction_factor"])
        low, top = float(spec.options["min_resource"]), float(spec.options["max_resource"])
        count = int(math.floor(math.log(top / low, eta) + 1e-9)) + 1
        self.brackets = [SuccessiveHalving(spec, minimize, low * eta ** b) for b in range(count)]

    def _bracket(self, trial: int) -> SuccessiveHalving:
        return self.brackets[trial % len(self.brackets)]

    def restore_rung(self, run_id: str, trial: int, rung: int, value: float) -> None:
        self._bracket(trial).restore_rung(run_id, trial, rung, value)

    def consider(self, run_id: str, trial: int, points: list[tuple[float, float]]
                 ) -> Decision:
        return self._bracket(trial).consider(run_id, trial, points)

    def finished(self, run_id: str, trial: int, points: list[tuple[float, float]]
                 ) -> tuple[tuple[int, float], ...]:
        return self._bracket(trial).finished(run_id, trial, points)


class Median(Pruner):
    def __init__(self, spec: PrunerSpec, minimize: bool) -> None:
        super().__init__(spec, minimize)
        self.warmup = float(spec.options["warmup_steps"])
        self.min_trials = int(spec.options["min_trials"])
        self.curves: dict[str, list[tuple[float, float]]] = {}

    def finished(self, run_id: str, trial: int, points: list[tuple[float, float]]
                 ) -> tuple[tuple[int, float], ...]:
        if points:
            self.curves[run_id] = points
        return ()

    def consider(self, run_id: str, trial: int, points: list[tuple[float, float]]
                 ) -> Decision:
        step, value = points[-1]
        if step < self.warmup or len(self.curves) < self.min_trials:
            return Decision()
        others = [v for curve in self.curves.values() if (v := _value_at(curve, step))
                  is not None]
        if len(others) < self.min_trials:
            return Decision()
        median = statistics.median(others)
        if math.isnan(value) or self._better(median, value):
            return Decision(prune=f"pruned at step {step:g}: {value:.6g} is worse than the "
                                  f"median {median:.6g} of {len(others)} finished runs")
        return Decision()


def _value_at(curve: list[tuple[float, float]], step: float) -> float | None:
    """The last value a curve reported at or before ``step``."""
    found = None
    for s, v in curve:
        if s > step:
            break
        found = v
    return found


def make_pruner(spec: PrunerSpec, minimize: bool) -> Pruner:
    classes = {"none": NoPruner, "asha": SuccessiveHalving, "hyperband": Hyperband,
               "median": Median}
    return classes[spec.name](spec, minimize)
