"""``rerun_best`` (Auptimizer's ``save_model``, issue 26 item 5): once every run ended, the
best configuration (among the runs that keep the constraints) runs once more with the values
given; the rerun is journaled like a trial, so a restored strategy never proposes it again,
and the wrapped sampler never sees it. The whole flow through the CLI is
``tests/test_auptimizer.py::test_save_model_runs_the_best_configuration_once_more_after_the_search``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_points import ask_one, journal_copy

from hpsearch.errors import UsageError
from hpsearch.spec.gridmodule import resolve_algorithm
from hpsearch.spec.searchfile import spec_from_mapping
from hpsearch.strategies import make_strategy
from hpsearch.strategies.base import Outcome, Proposal
from hpsearch.strategies.rerun_best import KEY


class Options:
    random_seed = 3
    deterministic_search = False
    num_searches = -1
    dont_generate_full_grid = False
    num_jobs = 1
    run_cluster = False
    cpu_only = True
    cpu_slots = 1
    out_dir = Path("out")
    run_cwd = Path(".")


def spec(**settings):
    data = {"script": "train.py", "metrics": ["loss", "mem"], "algorithm": "tpe",
            "num_trials": 8, "algorithm_options": {"n_startup_trials": 3},
            "parameters": {"x": {"method": "uniform", "low": -1, "high": 1}},
            "rerun_best": {"save_model": True, "epochs": 50}, **settings}
    return resolve_algorithm(spec_from_mapping(data, "s", Path("."), check_script=False),
                             None, None, None)


def outcome(p: Proposal) -> Outcome:
    """loss x**2, memory x: the constraint mem <= 0 keeps x <= 0 only."""
    return Outcome(p.trial, "finished", [p.config["x"] ** 2], violations=[p.config["x"]])


def run_all(strategy) -> tuple[list[Proposal], list[Outcome]]:
    proposals, outcomes = [], []
    strategy.restore([], [])
    while not strategy.done:
        for p in ask_one(strategy):
            proposals.append(p)
            outcomes.append(outcome(p))
            strategy.tell(outcomes[-1])
    return proposals, outcomes


def test_the_best_feasible_configuration_reruns_once_with_the_values_and_never_again():
    strategy = make_strategy(spec(), Options())
    try:
        proposals, outcomes = run_all(strategy)
        assert len(proposals) == 8 and strategy.total == 9
        (rerun,) = strategy.finish(outcomes)
        feasible = [o for o in outcomes if o.violations[0] <= 0]
        best = min(feasible, key=lambda o: o.values[0])
        assert rerun.trial == 8 and rerun.internal == {KEY: best.trial}
        assert rerun.config == {"x": proposals[best.trial].config["x"], "save_model": True,
                                "epochs": 50}
        assert strategy.finish(outcomes) == []
        strategy.tell(Outcome(8, "finished", [0.0]))  # not the sampler's trial: not told
    finally:
        strategy.close()
    again = make_strategy(spec(), Options())
    try:  # the journal holds the rerun: the sampler is rebuilt without it
        again.restore(*journal_copy([*proposals, rerun], [*outcomes, Outcome(8, "finished",
                                                                             [0.0])], True))
        assert again.done and again.finish(outcomes) == []
    finally:
        again.close()


def test_no_finished_run_reruns_nothing_and_says_so():
    strategy = make_strategy(spec(algorithm="random", algorithm_options={}), Options())
    proposals, _ = run_all(strategy)
    assert strategy.finish([Outcome(p.trial, "failed") for p in proposals]) == []
    assert "no run finished" in (strategy.stop_note or "")


@pytest.mark.parametrize("settings, words", [
    ({"rerun_best": [1]}, "rerun_best must be a mapping of name -> value"),
    ({"rerun_best": {"out_dir": "x"}}, "rerun_best must not set 'out_dir'"),
    ({"rerun_best": {"a b": 1}}, "is not a flag name or key path"),
    ({"objective": ["loss", "mem"], "algorithm": "nsga2", "algorithm_options": {}},
     "rerun_best runs the best configuration again, but this search has 2 objectives"),
])
def test_bad_rerun_best_is_one_line(settings, words):
    with pytest.raises(UsageError) as err:
        spec(**settings)
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)
