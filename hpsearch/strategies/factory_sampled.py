"""The strategy for every algorithm but ``grid``: random, qmc and Optuna's samplers."""

from __future__ import annotations

from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.base import Strategy
from hpsearch.strategies.sampled import QmcStrategy, RandomStrategy


def make_sampled_strategy(spec: SearchSpec, seed: int, num_trials: int, parallel: int
                          ) -> Strategy:
    """``spec.algorithm``'s strategy; ``parallel`` is how many runs may be in flight."""
    if spec.algorithm == "random":
        return RandomStrategy(spec, seed, num_trials)
    if spec.algorithm == "qmc":
        return QmcStrategy(spec, seed, num_trials)
    # Optuna's samplers compute in a process of their own, spawned first: it imports Optuna
    # while this process goes on (which imports it only to check algorithm_options)
    from hpsearch.strategies.optuna.process import SamplerProcess, SamplerUnavailable

    try:
        process: SamplerProcess | None = SamplerProcess()
    except SamplerUnavailable:
        process = None
    from hpsearch.strategies.optuna.samplers import OptunaStrategy

    return OptunaStrategy(spec, seed, num_trials, parallel, process=process)
