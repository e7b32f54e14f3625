"""The multi-fidelity strategies: hyperband and bohb by budget, pbt by segments."""

from __future__ import annotations

from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.base import Strategy


def make_fidelity_strategy(spec: SearchSpec, seed: int, num_trials: int) -> Strategy:
    """``spec.algorithm``'s strategy; ``num_trials``: new configurations (not for pbt,
    whose runs are its population times its segments)."""
    if spec.algorithm == "pbt":
        from hpsearch.strategies.pbt import PbtStrategy

        return PbtStrategy(spec, seed)
    if spec.algorithm == "bohb":
        from hpsearch.strategies.optuna.bohb import BohbStrategy

        return BohbStrategy(spec, seed, num_trials)
    from hpsearch.strategies.hyperband import HyperbandStrategy

    return HyperbandStrategy(spec, seed, num_trials)
