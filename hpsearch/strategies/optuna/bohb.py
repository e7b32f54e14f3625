"""BOHB (``algorithm: bohb``): Hyperband whose new configurations come from a model.

As in Falkner et al. (2018): the brackets, budgets and promotions are Hyperband's
(:mod:`hpsearch.strategies.hyperband`); a new configuration ``c`` is drawn at random with
probability 1/3 (a generator seeded by ``(seed, c)`` decides), and otherwise from a density
model of the results at one budget: the largest budget with at least ``N_min + 2``
results, ``N_min = d + 1`` (``d``: the dimensions of the space), as in the paper's
Algorithm 2 (hpbandster waits for ``2 * (d + 1)``). The model is Optuna's multivariate
TPE, seeded by ``(seed, c)``, fitted on that budget's results alone: the best
``max(d + 1, floor(15% of them))`` make the good density, the rest the bad one, every
result weighing the same (Optuna's default weighs old trials down); of 64 candidates drawn
from the good density, the one with the best ratio of good to bad density is proposed.
With no budget that has enough results, the draw is random. Where the paper differs:
while a budget has fewer than ``2 * (d + 1)`` results its bad density takes ``d + 1``
points all the same, the worst good ones too (Optuna's TPE cannot share a point; its
prior widens a sparse density instead); its kernels are Gaussian ones with a rule-of-thumb
bandwidth (at least 1e-3), widened threefold to draw the candidates; Optuna's TPE has its
own bandwidths and prior. (Those kernels, tried on ``scripts/bench/bench_multifidelity.py``,
narrowed onto the first good region and spent about five times the budget.)

Every configuration is drawn through Optuna (its random sampler for the random ones), and
its ``internal`` keeps Optuna's raw parameters (``params``), which the model is fitted on
after a restore too.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import optuna
from optuna.samplers import RandomSampler, TPESampler

from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.hyperband import HyperbandStrategy
from hpsearch.strategies.optuna.space import OptunaSpace
from hpsearch.strategies.optuna.strategy import silence_optuna
from hpsearch.strategies.seeding import derive_seed

#: the share of new configurations drawn at random (BOHB's rho)
RANDOM_FRACTION = 1 / 3
#: the share of a budget's results that make the good density (at least d + 1 of them)
TOP_SHARE = 0.15
#: the candidates drawn from the good density for each model-based configuration
CANDIDATES = 64


def model_budget(counts: dict[float, int], dims: int) -> float | None:
    """The budget the model is fitted at: the largest with ``N_min + 2`` results or more,
    ``N_min = dims + 1`` (``counts``: results per budget); None: no budget has enough yet."""
    enough = [budget for budget, n in counts.items() if n >= (dims + 1) + 2]
    return max(enough) if enough else None


def good_count(results: int, dims: int) -> int:
    """How many of a budget's ``results`` make the good density:
    ``max(dims + 1, floor(15% of them))``."""
    return max(dims + 1, int(TOP_SHARE * results + 1e-9))


class BohbStrategy(HyperbandStrategy):
    """``algorithm: bohb`` (see the module docstring)."""

    def __init__(self, spec: SearchSpec, seed: int, num_trials: int) -> None:
        super().__init__(spec, seed, num_trials)
        silence_optuna()
        self._optuna_space = OptunaSpace(spec)
        self._dims = len(self._optuna_space.base)

    def _results_to_model(self) -> list[tuple[dict[str, Any], float]]:
        """``(params, value)`` of the results at :func:`model_budget`, in the order their
        runs were proposed (empty: no budget has enough results yet)."""
        by_budget: dict[float, list[tuple[int, int, float]]] = {}
        for bracket in self._brackets:
            for rung, entries in enumerate(bracket.rungs):
                budget = float(self._budget.at(rung, bracket.s))
                by_budget.setdefault(budget, []).extend(
                    (e.trial, e.config, e.value) for e in entries
                    if e.value is not None and "params" in self._raw[e.config])
        target = model_budget({b: len(r) for b, r in by_budget.items()}, self._dims)
        if target is None:
            return []
        return [(self._raw[config]["params"], value)
                for _, config, value in sorted(by_budget[target])]

    def _good(self, results: int) -> int:
        return good_count(results, self._dims)

    def draw(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        seed = derive_seed(self._seed, index, "bohb")
        results = [] if random.Random(seed).random() < RANDOM_FRACTION \
            else self._results_to_model()
        sampler = TPESampler(seed=seed, n_startup_trials=0, multivariate=True,
                             n_ei_candidates=CANDIDATES, gamma=self._good, weights=np.ones) \
            if results else RandomSampler(seed=seed)
        study = optuna.create_study(sampler=sampler, direction="minimize")
        for params, value in results:  # values are to be minimized already
            study.add_trial(optuna.trial.create_trial(
                params=params, value=value, distributions={
                    name: self._optuna_space.distribution(name) for name in params}))
        trial = study.ask(fixed_distributions=self._optuna_space.base)
        config = self._optuna_space.config(trial)
        return config, {"params": {k: v.item() if hasattr(v, "item") else v
                                   for k, v in trial.params.items()}}
