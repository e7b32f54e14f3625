"""Random and quasi-random search: ``algorithm: random`` and ``algorithm: qmc``.

Both map one point ``u`` of the unit cube per trial onto a configuration, one dimension per
parameter that is not fixed (in the spec's order), then one per ``(condition, key)`` whose
replace list holds several values:

* a list (or categorical distribution) of ``m`` values takes value ``floor(u * m)``;
* a distribution takes its quantile ``u`` (:meth:`Distribution.from_unit`);
* a one-element list is fixed: it takes no dimension and no randomness;
* conditions follow :mod:`hpsearch.strategies.parameters`: a matching condition sets each
  replaced key to one value of its replace list, picked by that key's own dimension (a
  condition that does not match leaves its dimensions unused).

``random``: trial ``k``'s point is ``random.Random(derive_seed(seed, k))`` drawn once per
dimension. ``qmc``: trial ``k``'s point is point ``k + 1`` of a scrambled Halton sequence
(:mod:`hpsearch.strategies.halton`) seeded by ``seed``, which covers the space more evenly
than random points do. Either way a trial depends on (seed, trial number) only, so a
resumed search proposes exactly what an uninterrupted one would, whatever ran in parallel;
results are never used (``adaptive`` is False).
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.base import Outcome, Proposal, Strategy
from hpsearch.strategies.halton import ScrambledHalton
from hpsearch.strategies.parameters import (
    apply_drawn_conditions,
    drawn_condition_keys,
    ordered,
    parameters_of,
    pick,
)
from hpsearch.strategies.seeding import derive_seed


class UnitSpace:
    """The search space as the unit cube of :attr:`dims` dimensions (see the docstring)."""

    def __init__(self, spec: SearchSpec) -> None:
        self._parameters = parameters_of(spec)
        self._conditions = spec.conditions
        self._keys = spec.config_keys()
        drawn = [p.name for p in self._parameters if not p.fixed]
        self._slot = {name: i for i, name in enumerate(drawn)}
        self._condition_slot = {ik: len(drawn) + j for j, ik in enumerate(
            drawn_condition_keys(spec.conditions))}
        self.dims = len(drawn) + len(self._condition_slot)

    def config(self, point: Sequence[float]) -> dict[str, Any]:
        assert len(point) == self.dims
        # a fixed parameter takes no dimension: any u gives its one value
        base = {p.name: p.from_unit(point[self._slot[p.name]] if p.name in self._slot else 0.0)
                for p in self._parameters}

        def draw(i: int, key: str, values: list[Any]) -> Any:
            return pick(values, point[self._condition_slot[(i, key)]])

        return ordered(apply_drawn_conditions(base, self._conditions, draw), self._keys)


class UnitCubeStrategy(Strategy):
    """Proposes ``num_trials`` configurations, trial ``k`` from :meth:`point` ``(k)``."""

    adaptive = False

    def __init__(self, spec: SearchSpec, seed: int, num_trials: int) -> None:
        self._space = UnitSpace(spec)
        self._seed = seed
        self._num_trials = num_trials
        self._next = 0

    @abstractmethod
    def point(self, trial: int) -> list[float]:
        """Trial ``trial``'s point of the unit cube."""

    def proposal(self, trial: int) -> Proposal:
        return Proposal(trial, self._space.config(self.point(trial)))

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        if [p.trial for p in proposals] != list(range(len(proposals))):
            raise ValueError("restore needs the proposals in trial order 0, 1, 2, ...")
        self._next = len(proposals)

    def ask(self, n: int) -> list[Proposal]:
        stop = min(self._next + max(n, 0), self._num_trials)
        out = [self.proposal(k) for k in range(self._next, stop)]
        self._next = max(self._next, stop)
        return out

    def tell(self, outcome: Outcome) -> None:
        """Results do not change what comes next."""

    @property
    def done(self) -> bool:
        return self._next >= self._num_trials

    @property
    def total(self) -> int:
        return self._num_trials

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        return [self.proposal(k) for k in range(min(n, self._num_trials))], None


class RandomStrategy(UnitCubeStrategy):
    """``algorithm: random``: independent uniform points, one generator per trial."""

    def point(self, trial: int) -> list[float]:
        rng = random.Random(derive_seed(self._seed, trial))
        return [rng.random() for _ in range(self._space.dims)]


class QmcStrategy(UnitCubeStrategy):
    """``algorithm: qmc``: points of a scrambled Halton sequence."""

    def __init__(self, spec: SearchSpec, seed: int, num_trials: int) -> None:
        super().__init__(spec, seed, num_trials)
        self._halton = ScrambledHalton(self._space.dims, seed)

    def point(self, trial: int) -> list[float]:
        return self._halton.point(trial + 1)
