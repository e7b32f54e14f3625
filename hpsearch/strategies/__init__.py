"""Strategies: what proposes the configurations of a search (ask / tell), made by one function.

The grid (:mod:`.grid`), random and quasi-random sampling (:mod:`.sampled`), Optuna's
model-based samplers (:mod:`.optuna`), an external generator command (:mod:`.external`),
Hyperband and BOHB by budget (:mod:`.hyperband`) and PBT by segments (:mod:`.pbt`).

:func:`make_strategy` picks one from the search's algorithm; the seam they share is
:mod:`hpsearch.strategies.base`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.strategies.base import Strategy

__all__ = ["StrategyOptions", "make_strategy", "parallelism"]


class StrategyOptions(Protocol):
    """What a strategy is made from besides the spec: the search's flags it reads (the
    engine's ``SearchOptions`` has them; a strategy never sees a backend's)."""

    @property
    def random_seed(self) -> int: ...

    @property
    def deterministic_search(self) -> bool: ...

    @property
    def num_searches(self) -> int: ...

    @property
    def dont_generate_full_grid(self) -> bool: ...

    @property
    def num_jobs(self) -> int | None: ...

    @property
    def run_cluster(self) -> bool: ...

    @property
    def cpu_only(self) -> bool: ...

    @property
    def cpu_slots(self) -> int: ...

    @property
    def out_dir(self) -> Path: ...

    @property
    def run_cwd(self) -> Path: ...


def parallelism(options: StrategyOptions) -> int:
    """How many runs may be in flight at once (what a sampler plans for)."""
    if options.num_jobs is not None:
        return options.num_jobs
    if options.run_cluster:
        return 8
    return options.cpu_slots if options.cpu_only else 1  # GPUs: not known before the probe


def make_strategy(spec: SearchSpec, options: StrategyOptions, ahead: int | None = None
                  ) -> Strategy:
    """The strategy of ``spec.algorithm``; ``--random_seed`` seeds it unless the search
    file set a seed (an explicit ``--random_seed`` already replaced that). ``ahead`` is how
    many proposals are kept in flight when it is not :func:`parallelism` (a served search's
    ``num_points_per_generation``): what a sampler plans for, a generator's ``%NUM_POINTS``.
    A spec with ``rerun_best`` gets it wrapped (:mod:`hpsearch.strategies.rerun_best`)."""
    strategy = _make(spec, options, ahead)
    if spec.rerun_best is None:
        return strategy
    from hpsearch.strategies.rerun_best import RerunBest

    return RerunBest(strategy, spec.rerun_best, spec.performance_sort_asc)


def _make(spec: SearchSpec, options: StrategyOptions, ahead: int | None) -> Strategy:
    seed = options.random_seed if spec.seed is None else spec.seed
    parallel = parallelism(options) if ahead is None else ahead
    if spec.algorithm == "grid":
        from hpsearch.strategies.grid import GridStrategy

        return GridStrategy(spec, seed=seed, deterministic=options.deterministic_search,
                            num_searches=options.num_searches,
                            random_picks=options.dont_generate_full_grid)
    assert spec.num_trials is not None
    if spec.algorithm == "external":
        from hpsearch.strategies.external import ExternalGenerator

        return ExternalGenerator(spec, spec.num_trials, parallel, options.out_dir,
                                 options.run_cwd)
    if spec.algorithm in ("hyperband", "bohb", "pbt"):
        from hpsearch.strategies.factory_fidelity import make_fidelity_strategy

        return make_fidelity_strategy(spec, seed, spec.num_trials)
    from hpsearch.strategies.factory_sampled import make_sampled_strategy

    return make_sampled_strategy(spec, seed, spec.num_trials, parallel)
