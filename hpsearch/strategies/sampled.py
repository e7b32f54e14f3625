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
results are never used (``adaptive`` is False). ``initial_points`` come first, and
``forbid`` is drawn around (:class:`UnitCubeStrategy`); ``warm_start`` results teach these
strategies nothing (they never use results).
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.points import FORBIDDEN_DRAWS, exhausted_note, forbidden
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
    """Proposes ``num_trials`` configurations: the spec's ``initial_points`` first, then
    trial ``k`` from :meth:`point` ``(k - len(initial_points))``. A point ``forbid``
    rejects is drawn again, at random from ``derive_seed(seed, k, "redraw:<r>")`` (the
    same on every resume); after :data:`FORBIDDEN_DRAWS` rejected draws the strategy
    proposes no more and says so (:attr:`stop_note`)."""

    adaptive = False

    def __init__(self, spec: SearchSpec, seed: int, num_trials: int) -> None:
        self._space = UnitSpace(spec)
        self._seed = seed
        self._num_trials = num_trials
        self._initial = list(spec.initial_points)
        self._forbid = list(spec.forbid)
        self._next = 0
        self._note: str | None = None

    @abstractmethod
    def point(self, trial: int) -> list[float]:
        """Trial ``trial``'s point of the unit cube."""

    def proposal(self, trial: int) -> Proposal | None:
        """Trial ``trial``'s proposal; None when ``forbid`` rejected every draw."""
        if trial < len(self._initial):
            return Proposal(trial, self._initial[trial])
        config = self._space.config(self.point(trial - len(self._initial)))
        for redraw in range(1, FORBIDDEN_DRAWS):
            if not forbidden(config, self._forbid):
                return Proposal(trial, config)
            rng = random.Random(derive_seed(self._seed, trial, f"redraw:{redraw}"))
            config = self._space.config([rng.random() for _ in range(self._space.dims)])
        return None if forbidden(config, self._forbid) else Proposal(trial, config)

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        if [p.trial for p in proposals] != list(range(len(proposals))):
            raise ValueError("restore needs the proposals in trial order 0, 1, 2, ...")
        self._next = len(proposals)

    def ask(self, n: int) -> list[Proposal]:
        out: list[Proposal] = []
        while len(out) < n and not self.done:
            proposal = self.proposal(self._next)
            if proposal is None:
                self._note = exhausted_note(self._next)
                break
            out.append(proposal)
            self._next += 1
        return out

    def tell(self, outcome: Outcome) -> None:
        """Results do not change what comes next."""

    @property
    def done(self) -> bool:
        return self._next >= self._num_trials or self._note is not None

    @property
    def stop_note(self) -> str | None:
        return self._note

    @property
    def total(self) -> int:
        return self._num_trials

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        out = []
        for trial in range(min(n, self._num_trials)):
            proposal = self.proposal(trial)
            if proposal is None:
                return out, exhausted_note(trial)
            out.append(proposal)
        return out, None


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
