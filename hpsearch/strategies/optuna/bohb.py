"""BOHB (``algorithm: bohb``): Hyperband whose new configurations come from a model.

As in Falkner et al. (2018): the brackets, budgets and promotions are Hyperband's
(:mod:`hpsearch.strategies.hyperband`); a new configuration ``c`` is drawn at random with
probability 1/3 (a generator seeded by ``(seed, c)`` decides), and otherwise from a density
model of the results at the largest budget that has at least ``d + 2`` of them (``d``: the
dimensions of the space) -- Optuna's multivariate TPE, seeded by ``(seed, c)``, over a study
of every configuration with a result, ranked: first those with a result at that budget, by
it, then those that stopped below it (they were not promoted there), by the budget they
reached and their result at it. (Fitted on the largest budget's results alone, the model
would see only promoted, good configurations, call the worse of them bad, and steer away
from the good region.) With no budget that has enough results, the draw is random.

Every configuration is drawn through Optuna (its random sampler for the random ones), and
its ``internal`` keeps Optuna's raw parameters (``params``), which the model is fitted on
after a restore too.
"""

from __future__ import annotations

import random
from typing import Any

import optuna
from optuna.samplers import RandomSampler, TPESampler

from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.hyperband import HyperbandStrategy
from hpsearch.strategies.optuna.space import OptunaSpace
from hpsearch.strategies.optuna.strategy import silence_optuna
from hpsearch.strategies.seeding import derive_seed

#: the share of new configurations drawn at random (BOHB's rho)
RANDOM_FRACTION = 1 / 3


class BohbStrategy(HyperbandStrategy):
    """``algorithm: bohb`` (see the module docstring)."""

    def __init__(self, spec: SearchSpec, seed: int, num_trials: int) -> None:
        super().__init__(spec, seed, num_trials)
        silence_optuna()
        self._optuna_space = OptunaSpace(spec)
        self._min_points = len(self._optuna_space.base) + 2

    def _results_to_model(self) -> list[tuple[dict[str, Any], float]]:
        """``(params, rank)`` of every configuration with a result, ranked for the model
        at the largest budget with enough results: those with a result there by it, then
        those that stopped below it (worse: they were not promoted), by the budget they
        reached and their result there. Empty: no budget has enough results yet."""
        reached: dict[int, dict[float, float]] = {}  # configuration -> budget -> value
        for bracket in self._brackets:
            for rung, entries in enumerate(bracket.rungs):
                budget = float(self._budget.at(rung, bracket.s))
                for entry in entries:
                    if entry.value is not None and "params" in self._raw[entry.config]:
                        reached.setdefault(entry.config, {})[budget] = entry.value
        counts: dict[float, int] = {}
        for values in reached.values():
            for budget in values:
                counts[budget] = counts.get(budget, 0) + 1
        enough = [b for b, n in counts.items() if n >= self._min_points]
        if not enough:
            return []
        target = max(enough)

        def key(config: int) -> tuple[int, float, float]:
            values = reached[config]
            if target in values:
                return 0, 0.0, values[target]
            below = max(b for b in values if b < target) if any(
                b < target for b in values) else min(values)
            return 1, -below, values[below]

        ranked = sorted(reached, key=lambda c: (key(c), c))
        return [(self._raw[c]["params"], float(rank)) for rank, c in enumerate(ranked)]

    def draw(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        seed = derive_seed(self._seed, index, "bohb")
        results = [] if random.Random(seed).random() < RANDOM_FRACTION \
            else self._results_to_model()
        sampler = TPESampler(seed=seed, n_startup_trials=0, multivariate=True) if results \
            else RandomSampler(seed=seed)
        study = optuna.create_study(sampler=sampler, direction="minimize")
        for params, value in results:  # values are to be minimized already
            study.add_trial(optuna.trial.create_trial(
                params=params, value=value, distributions={
                    name: self._optuna_space.distribution(name) for name in params}))
        trial = study.ask(fixed_distributions=self._optuna_space.base)
        config = self._optuna_space.config(trial)
        return config, {"params": {k: v.item() if hasattr(v, "item") else v
                                   for k, v in trial.params.items()}}
