"""Population based training on batch jobs (``algorithm: pbt``), in generations.

``pbt: {population: P, interval: I, parameter: total_steps, segments: S, quantile: q,
resample_probability: p, perturb: [0.8, 1.2]}``: each of the ``P`` members trains in ``S``
segments, each segment a run of its own (no job lives longer than a segment, so a walltime
never cuts a member). Segment ``g`` of member ``m`` is trial ``g * P + m``; it gets
``total_steps = I * (g + 1)`` (the steps trained at its end) and, from segment 1 on,
``HPSEARCH_RESUME_FROM`` with the output directory of the run it continues (its
``lineage["continues"]``), where a script that checkpoints finds the weights.

Segment 0 draws each member's configuration at random (a generator seeded by
``(seed, m)``). Segment ``g + 1`` is decided once every run of segment ``g`` ended: the
members ranked by their result (failed ones last), the bottom ``max(1, floor(q * P))``
(and any failed member) *exploit*: each continues from a member of the top as many
(picked at random) with that member's hyperparameters *explored* -- each parameter
resampled from its distribution with probability ``p``, else a number multiplied by a
factor of ``perturb`` (kept in its bounds, on its grid), a list's value moved to a
neighbour. The others continue from their own run with their own hyperparameters. One
generator seeded by ``(seed, g + 1)`` makes these draws, member by member, so a segment's
proposals are a function of the previous segment's results: a resumed search proposes
exactly what an uninterrupted one does, whatever ran in parallel.

Results columns (the proposal's lineage): ``member``, ``segment``, ``continues`` (the trial
whose run this one continued: the member's own last one, or the top member's it exploited).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from hpsearch.spec.fidelity import Pbt
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.base import Outcome, Proposal, Strategy
from hpsearch.strategies.parameters import Parameter, parameters_of
from hpsearch.strategies.sampled import UnitSpace
from hpsearch.strategies.seeding import derive_seed


def perturbed(parameter: Parameter, value: Any, rng: random.Random, settings: Pbt) -> Any:
    """``value`` explored: resampled, or multiplied by a factor, or a neighbouring choice."""
    if rng.random() < settings.resample_probability:
        return parameter.from_unit(rng.random())
    if parameter.choices is not None:
        choices = list(parameter.choices)
        at = choices.index(value) if value in choices else 0
        return choices[min(max(at + rng.choice((-1, 1)), 0), len(choices) - 1)]
    dist = parameter.distribution
    assert dist is not None
    factor = rng.choice(settings.perturb)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if dist.method == "uniformint":
        assert dist.low is not None and dist.high is not None
        return min(max(round(value * factor), int(dist.low)), int(dist.high))
    return dist._rounded(value * factor)


class PbtStrategy(Strategy):
    """``algorithm: pbt`` (see the module docstring)."""

    adaptive = True

    def __init__(self, spec: SearchSpec, seed: int) -> None:
        assert spec.pbt is not None
        self._spec = spec
        self._settings = spec.pbt
        self._seed = seed
        self._sign = 1.0 if spec.directions[0] == "minimize" else -1.0
        self._space = UnitSpace(spec)
        self._parameters = [p for p in parameters_of(spec) if not p.fixed]
        self._size = self._settings.population
        self._configs: dict[int, dict[str, Any]] = {}  # trial -> hyperparameters
        self._values: dict[int, float | None] = {}  # trial -> result (lower is better)
        self._planned: list[Proposal] = []  # the next proposals of the current segment
        self._next = 0

    @property
    def _total(self) -> int:
        return self._size * self._settings.segments

    def _segment_ready(self, segment: int) -> bool:
        """Every run of the segment before ``segment`` ended."""
        first = (segment - 1) * self._size
        return all(t in self._values for t in range(first, first + self._size))

    def _plan(self, segment: int) -> list[Proposal]:
        """The proposals of ``segment`` (see the module docstring)."""
        if segment == 0:
            out = []
            for m in range(self._size):
                rng = random.Random(derive_seed(self._seed, m, "pbt"))
                config = self._space.config([rng.random() for _ in range(self._space.dims)])
                out.append(self._proposal(m, segment, config, None))
            return out
        rng = random.Random(derive_seed(self._seed, segment, "pbt-exploit"))
        previous = [(segment - 1) * self._size + m for m in range(self._size)]
        ranked = sorted(previous, key=lambda t: (self._values[t] is None,
                                                 self._values[t] or 0.0, t))
        cut = max(1, int(math.floor(self._settings.quantile * self._size + 1e-9)))
        top = [t for t in ranked[:cut] if self._values[t] is not None]
        exploit = set(ranked[-cut:]) | {t for t in previous if self._values[t] is None}
        out = []
        for m, own in enumerate(previous):
            if own in exploit and top and own not in top:
                donor = rng.choice(top)
                config = {k: v for k, v in self._configs[donor].items()}
                for parameter in self._parameters:
                    config[parameter.name] = perturbed(parameter, config[parameter.name], rng,
                                                       self._settings)
                out.append(self._proposal(m, segment, config, donor))
            else:
                out.append(self._proposal(m, segment, dict(self._configs[own]), own))
        return out

    def _proposal(self, member: int, segment: int, config: dict[str, Any],
                  continues: int | None) -> Proposal:
        trial = segment * self._size + member
        lineage: dict[str, Any] = {"member": member, "segment": segment}
        if continues is not None:
            lineage["continues"] = continues
        steps = self._settings.interval * (segment + 1)
        return Proposal(trial, {**config, self._settings.parameter: steps},
                        {"member": member, "segment": segment}, lineage=lineage)

    def _remember(self, proposal: Proposal) -> None:
        self._configs[proposal.trial] = {k: v for k, v in proposal.config.items()
                                         if k != self._settings.parameter}

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        if [p.trial for p in proposals] != list(range(len(proposals))):
            raise ValueError("restore needs the proposals in trial order 0, 1, 2, ...")
        for proposal in proposals:
            self._remember(proposal)
        self._next = len(proposals)
        for outcome in outcomes:
            self.tell(outcome)

    def ask(self, n: int) -> list[Proposal]:
        out: list[Proposal] = []
        while len(out) < n and self._next < self._total:
            segment, member = divmod(self._next, self._size)
            if not self._planned:
                if segment > 0 and not self._segment_ready(segment):
                    break  # the segment waits for the last runs of the one before
                self._planned = self._plan(segment)[member:]
            proposal = self._planned.pop(0)
            self._remember(proposal)
            out.append(proposal)
            self._next += 1
        return out

    def tell(self, outcome: Outcome) -> None:
        values = outcome.values
        finite = outcome.status == "finished" and values and math.isfinite(values[0])
        self._values[outcome.trial] = self._sign * float(values[0]) if finite and values \
            else None

    @property
    def done(self) -> bool:
        return self._next >= self._total

    @property
    def total(self) -> int:
        return self._total

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        first = self._plan(0)[:n]
        return first, "later segments follow from the results"
