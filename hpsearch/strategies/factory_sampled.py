"""The strategy for every algorithm but ``grid``: random, qmc and Optuna's samplers."""

from __future__ import annotations

from hpsearch.spec import SearchSpec
from hpsearch.strategies.base import Strategy
from hpsearch.strategies.optuna_samplers import SAMPLERS, OptunaStrategy
from hpsearch.strategies.sampled import QmcStrategy, RandomStrategy


def make_sampled_strategy(spec: SearchSpec, seed: int, num_trials: int, parallel: int
                          ) -> Strategy:
    """``spec.algorithm``'s strategy; ``parallel`` is how many runs may be in flight."""
    if spec.algorithm == "random":
        return RandomStrategy(spec, seed, num_trials)
    if spec.algorithm == "qmc":
        return QmcStrategy(spec, seed, num_trials)
    if spec.algorithm in SAMPLERS:
        return OptunaStrategy(spec, seed, num_trials, parallel, own_process=True)
    raise ValueError(f"make_sampled_strategy: no sampled strategy for {spec.algorithm!r}")
