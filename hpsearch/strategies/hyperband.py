"""Hyperband by budget (``algorithm: hyperband``), asynchronous, as in Li et al. (2018).

The budget is an argument of every run (``budget: {parameter: epochs, min: 1, max: 27,
eta: 3}``), not a long run that is pruned: a configuration promoted to a larger budget runs
again with it, and with ``HPSEARCH_RESUME_FROM`` set to its run at the lower budget (its
proposal's ``lineage["continues"]``), so a script that checkpoints goes on from there.

Brackets, with ``s_max = floor(log_eta(max / min))``: bracket ``k`` (0, 1, ...) has
``s = s_max - k mod (s_max + 1)`` rungs above its first; its first rung takes
``n = ceil((s_max + 1) / (s + 1) * eta**s)`` new configurations, rung ``i`` at most
``floor(n / eta**i)`` of them, at budget ``max * eta**(i - s)``. With ``min: 1, max: 27,
eta: 3``: 27 configurations at 1, 9 at 3, 3 at 9, 1 at 27; then 12 at 3, 4 at 9, 1 at 27;
6 at 9, 2 at 27; 4 at 27; then again.

Promotions are asynchronous (no rung waits for its last run: a slot is never idle while
work is ready). While new configurations are left, rung ``i`` promotes what Li et al.'s
synchronous rung would -- its best ``capacity(i + 1)`` -- each as soon as no run of the
rung still to end can push it out: a configuration ranked ``r`` (0: the best) among the
results of the rung is promoted once ``r < capacity(i + 1) - pending``, ``pending`` being
the runs of the rung not ended yet or not started yet (its room less those ended; a run
that failed below shrinks the room above). Meanwhile free slots take new configurations,
so brackets overlap. Promoting ASHA's way instead (the best ``floor(k / eta)`` of the
``k`` ended) fills a rung of fixed room with whichever ended first: on
``scripts/bench/bench_multifidelity.py`` that made hyperband slower than random search.
Once no new configuration is left, a slot would wait for that certainty, so ASHA's rule
applies too. A failed run, a pruned one or one without a finite value is never promoted.
Each ask takes promotions first (the highest rung first, older brackets first), then a new
configuration for the open bracket; ``num_trials`` is the number of new configurations.

Every decision is a function of the proposals and outcomes: ``internal`` holds
``{"config": <index of the configuration>, "bracket": k, "rung": i}``, so :meth:`restore`
rebuilds the brackets, promotions included, from the journal alone. A new configuration
``c`` is drawn from a generator seeded by ``(seed, c)`` (:class:`HyperbandStrategy`) or
from a model of the results (:mod:`hpsearch.strategies.optuna.bohb`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hpsearch.spec.fidelity import Budget
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.base import Outcome, Proposal, Strategy
from hpsearch.strategies.sampled import UnitSpace
from hpsearch.strategies.seeding import derive_seed


@dataclass
class Entry:
    """One run of a configuration at one rung."""

    trial: int
    config: int
    rung: int
    #: the result, lower is better (a maximized objective negated); None: none (yet)
    value: float | None = None
    ended: bool = False
    promoted: bool = False


@dataclass
class Bracket:
    """One bracket: ``s`` rungs above its first, ``size`` configurations in its first."""

    index: int
    s: int
    size: int
    rungs: list[list[Entry]] = field(default_factory=list)

    def capacity(self, rung: int, eta: float) -> int:
        """How many configurations rung ``rung`` holds at most: ``floor(size / eta**rung)``."""
        return int(math.floor(self.size / eta ** rung + 1e-9))

    def room(self, rung: int, eta: float) -> int:
        """The most runs rung ``rung`` will ever hold: its capacity, less the runs below it
        that ended without a result."""
        if rung == 0:
            return self.size
        failed = sum(1 for e in self.rungs[rung - 1] if e.ended and e.value is None)
        return min(self.capacity(rung, eta), self.room(rung - 1, eta) - failed)

    def promotable(self, rung: int, eta: float, eager: bool) -> Entry | None:
        """The best configuration of ``rung`` that may go up now, if any: one that no run
        still to end can push out of the best ``capacity(rung + 1)``, or, when ``eager``,
        one among the best ``floor(k / eta)`` of the ``k`` that ended (ASHA's rule)."""
        if rung >= self.s or len(self.rungs[rung + 1]) >= self.capacity(rung + 1, eta):
            return None
        above = self.capacity(rung + 1, eta)
        ended = [e for e in self.rungs[rung] if e.ended]
        quota = above - (self.room(rung, eta) - len(ended))
        if eager:
            quota = max(quota, int(math.floor(len(ended) / eta + 1e-9)))
        ranked = sorted((e for e in ended if e.value is not None),
                        key=lambda e: (e.value, e.trial))
        return next((e for e in ranked[:max(quota, 0)] if not e.promoted), None)


def bracket_plan(budget: Budget, index: int) -> tuple[int, int]:
    """``(s, n)`` of bracket ``index`` (see the module docstring)."""
    s_max = budget.s_max
    s = s_max - index % (s_max + 1)
    return s, int(math.ceil((s_max + 1) / (s + 1) * budget.eta ** s - 1e-9))


class HyperbandStrategy(Strategy):
    """``algorithm: hyperband``: random configurations (see the module docstring)."""

    adaptive = True

    def __init__(self, spec: SearchSpec, seed: int, num_trials: int) -> None:
        assert spec.budget is not None
        self._spec = spec
        self._budget = spec.budget
        self._seed = seed
        self._num_configs = num_trials
        self._sign = 1.0 if spec.directions[0] == "minimize" else -1.0
        self._space = UnitSpace(spec)
        self._configs: list[dict[str, Any]] = []  # the drawn configurations, budget aside
        self._raw: list[dict[str, Any]] = []  # what the model needs of each (internal)
        self._brackets: list[Bracket] = []
        self._entries: dict[int, Entry] = {}
        self._next_trial = 0

    # -- drawing ----------------------------------------------------------------------
    def draw(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Configuration ``index`` (budget aside) and what :meth:`restore` needs of it."""
        rng = random.Random(derive_seed(self._seed, index, "hyperband"))
        return self._space.config([rng.random() for _ in range(self._space.dims)]), {}

    # -- the brackets -----------------------------------------------------------------
    def _bracket(self, index: int) -> Bracket:
        while len(self._brackets) <= index:
            s, n = bracket_plan(self._budget, len(self._brackets))
            self._brackets.append(Bracket(len(self._brackets), s, n,
                                          [[] for _ in range(s + 1)]))
        return self._brackets[index]

    def _open_bracket(self) -> Bracket:
        """The bracket whose first rung takes the next new configuration."""
        if self._brackets and len(self._brackets[-1].rungs[0]) < self._brackets[-1].size:
            return self._brackets[-1]
        return self._bracket(len(self._brackets))

    def _promotable(self) -> tuple[Bracket, Entry] | None:
        eager = len(self._configs) >= self._num_configs  # no new configuration is left
        for rung in reversed(range(self._budget.s_max)):
            for bracket in self._brackets:
                entry = bracket.promotable(rung, self._budget.eta, eager)
                if entry is not None:
                    return bracket, entry
        return None

    def _add(self, trial: int, config: int, bracket: Bracket, rung: int) -> Entry:
        entry = Entry(trial, config, rung)
        bracket.rungs[rung].append(entry)
        self._entries[trial] = entry
        self._next_trial = max(self._next_trial, trial + 1)
        return entry

    def _proposal(self, entry: Entry, bracket: Bracket, parent: Entry | None) -> Proposal:
        config = {**self._configs[entry.config],
                  self._budget.parameter: self._budget.at(entry.rung, bracket.s)}
        lineage: dict[str, Any] = {"bracket": bracket.index, "rung": entry.rung}
        if parent is not None:
            lineage["continues"] = parent.trial
        internal = {"config": entry.config, "bracket": bracket.index, "rung": entry.rung,
                    **self._raw[entry.config]}
        return Proposal(entry.trial, config, internal, lineage=lineage)

    def _next(self) -> Proposal | None:
        found = self._promotable()
        if found is not None:
            bracket, parent = found
            parent.promoted = True
            entry = self._add(self._next_trial, parent.config, bracket, parent.rung + 1)
            return self._proposal(entry, bracket, parent)
        if len(self._configs) >= self._num_configs:
            return None
        bracket = self._open_bracket()
        config, raw = self.draw(len(self._configs))
        self._configs.append(config)
        self._raw.append(raw)
        entry = self._add(self._next_trial, len(self._configs) - 1, bracket, 0)
        return self._proposal(entry, bracket, None)

    # -- the seam ---------------------------------------------------------------------
    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        for proposal in proposals:
            internal = proposal.internal
            if not {"config", "bracket", "rung"} <= set(internal):
                raise ValueError(f"cannot restore a {self._spec.algorithm} search from "
                                 f"proposal {proposal.trial}: it holds no bracket")
            index, rung = int(internal["config"]), int(internal["rung"])
            bracket = self._bracket(int(internal["bracket"]))
            if rung == 0:
                config = {k: v for k, v in proposal.config.items()
                          if k != self._budget.parameter}
                while len(self._configs) <= index:
                    self._configs.append({})
                    self._raw.append({})
                self._configs[index] = config
                self._raw[index] = {k: v for k, v in internal.items()
                                    if k not in ("config", "bracket", "rung")}
            else:
                parent = next(e for e in bracket.rungs[rung - 1] if e.config == index)
                parent.promoted = True
            self._add(proposal.trial, index, bracket, rung)
        for outcome in outcomes:
            self.tell(outcome)

    def ask(self, n: int) -> list[Proposal]:
        out = []
        while len(out) < n:
            proposal = self._next()
            if proposal is None:
                break
            out.append(proposal)
        return out

    def tell(self, outcome: Outcome) -> None:
        entry = self._entries.get(outcome.trial)
        if entry is None:
            return
        entry.ended = True
        values = outcome.values
        if outcome.status == "finished" and values and math.isfinite(values[0]):
            entry.value = self._sign * float(values[0])

    @property
    def done(self) -> bool:
        return (len(self._configs) >= self._num_configs
                and all(e.ended for e in self._entries.values())
                and self._promotable() is None)

    @property
    def total(self) -> int:
        """The runs of the brackets if every run finishes (an estimate)."""
        runs, left, index = 0, self._num_configs, 0
        while left > 0:
            s, n = bracket_plan(self._budget, index)
            count = min(n, left)
            left -= count
            for rung in range(s + 1):
                runs += count
                count = min(int(math.floor(n / self._budget.eta ** (rung + 1) + 1e-9)),
                            int(math.floor(count / self._budget.eta + 1e-9)))
            index += 1
        return runs

    @property
    def total_is_estimate(self) -> bool:
        return not self.done

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        fresh = type(self)(self._spec, self._seed, self._num_configs)
        return fresh.ask(n), "promotions to larger budgets follow from the results"
