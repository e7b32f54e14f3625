"""``initial_points``, ``forbid`` and warm-start results in the strategies (issue 26 items 3
and 4), in-process: what each strategy proposes first, that it never proposes a forbidden
configuration, that it gives up on ``forbid`` after a bounded number of draws with one line,
and that a strategy rebuilt from its journal (proposals and outcomes through JSON) goes on
with exactly the sequence of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

from hpsearch.errors import UsageError
from hpsearch.spec.gridmodule import resolve_algorithm
from hpsearch.spec.points import FORBIDDEN_DRAWS, WarmResult, fit, forbidden
from hpsearch.spec.searchfile import spec_from_mapping
from hpsearch.strategies.base import Outcome, Proposal, Strategy
from hpsearch.strategies.factory_sampled import make_sampled_strategy
from hpsearch.strategies.grid import GridStrategy
from hpsearch.strategies.optuna.process import SamplerProcess
from hpsearch.strategies.optuna.samplers import OptunaStrategy

SPACE: dict[str, Any] = {
    "lr": {"method": "loguniform", "low": 1e-4, "high": 1e-1},
    "width": {"method": "qloguniform", "low": 16, "high": 256, "q": 16},
    "z": {"method": "normal", "mu": 0, "sigma": 1},
    "opt": ["adam", "sgd"],
    "epochs": 3,
}
CONDITIONS = [[{"opt": ["sgd"]}, {"momentum": [0.0, 0.9]}]]
POINTS = [{"lr": 0.001, "width": 128, "z": 0.5, "opt": "adam"},
          {"lr": 0.01, "width": 256, "z": -1.0, "opt": "sgd", "momentum": 0.9}]
#: half of what a sampler draws is forbidden
FORBID = [{"opt": ["sgd"], "momentum": [0.0]}, {"opt": ["adam"], "width": [16, 32, 48, 64]}]
WAIT_S = 120


def spec(algorithm: str = "random", trials: int = 12, **settings: Any):
    data = {"script": "train.py", "metrics": ["loss"], "algorithm": algorithm,
            "num_trials": trials, "parameters": SPACE, "conditions": CONDITIONS,
            "initial_points": POINTS, "forbid": FORBID, **settings}
    data = {k: v for k, v in data.items() if v is not None}
    loaded = spec_from_mapping(data, "search file s.yaml", Path("."), check_script=False)
    return resolve_algorithm(loaded, None, None, None)


def loss(config: dict[str, Any]) -> float:
    return (math.log10(config["lr"]) + 2.5) ** 2 + config["z"] ** 2 / 10 + (
        0.5 if config["opt"] == "sgd" else 0.0)


def make(the_spec, own_process: bool = False) -> Strategy:
    if the_spec.algorithm in ("random", "qmc"):
        return make_sampled_strategy(the_spec, 7, the_spec.num_trials, 1)
    return OptunaStrategy(the_spec, 7, the_spec.num_trials, 1,
                          process=SamplerProcess() if own_process else None)


def ask_one(strategy: Strategy) -> list[Proposal]:
    deadline = time.monotonic() + WAIT_S
    while True:
        got = strategy.ask(1)
        if got or strategy.done:
            return got
        assert time.monotonic() < deadline, "no proposal came"
        time.sleep(0.002)


def run(the_spec, restart_every: int | None = None, own_process: bool = False
        ) -> tuple[list[Proposal], Strategy]:
    """One trial at a time; every ``restart_every`` trials a fresh strategy is rebuilt from
    the journal's copy of the proposals and outcomes."""
    proposals: list[Proposal] = []
    outcomes: list[Outcome] = []
    strategy = make(the_spec, own_process)
    strategy.restore([], [])
    try:
        while not strategy.done:
            batch = ask_one(strategy)
            for p in batch:
                proposals.append(p)
                outcomes.append(Outcome(p.trial, "finished", [loss(p.config)]))
                strategy.tell(outcomes[-1])
            if restart_every and len(proposals) % restart_every == 0 and not strategy.done:
                strategy.close()
                strategy = make(the_spec, own_process)
                strategy.restore(*journal_copy(proposals, outcomes, strategy.adaptive))
    finally:
        strategy.close()
    return proposals, strategy


def sequence(proposals: list[Proposal]) -> list[tuple[Any, ...]]:
    """What a resume must reproduce: each trial's configuration and Optuna parameters, and
    the parameters of the forbidden draws before it (not CMA-ES's pickled optimizer, which
    holds memory ``np.empty`` left: see tests/test_strategies_optuna.py)."""
    return [(p.trial, p.config, p.internal.get("params"),
             [s["params"] for s in p.internal.get("skipped", [])]) for p in proposals]


def journal_copy(proposals: list[Proposal], outcomes: list[Outcome], adaptive: bool
                 ) -> tuple[list[Proposal], list[Outcome]]:
    ps = [Proposal(**json.loads(json.dumps(dataclasses.asdict(p)))) for p in proposals]
    return ps, [Outcome(o.trial, o.status, o.values, violations=o.violations)
                for o in outcomes] if adaptive else []


# -- the spec -------------------------------------------------------------------------------
def test_initial_points_are_completed_in_the_spec_s_order():
    s = spec()
    assert s.initial_points[0] == {"lr": 0.001, "width": 128, "z": 0.5, "opt": "adam",
                                   "epochs": 3}
    assert list(s.initial_points[1]) == ["lr", "width", "z", "opt", "epochs", "momentum"]


@pytest.mark.parametrize("point, words", [
    ({"lr": 0.5, "width": 64, "z": 0, "opt": "adam"}, "lr=0.5 is outside loguniform"),
    ({"lr": 0.01, "width": 60, "z": 0, "opt": "adam"}, "width=60 is not a multiple of q=16"),
    ({"lr": 0.01, "width": 64, "z": 0, "opt": "rmsprop"}, "opt='rmsprop' is not among"),
    ({"lr": 0.01, "width": 64, "opt": "adam"}, "z is missing"),
    ({"lr": 0.01, "width": 64, "z": 0, "opt": "sgd"}, "momentum is missing (one of"),
    ({"lr": 0.01, "width": 64, "z": 0, "opt": "adam", "momentum": 0.9},
     "momentum is not a parameter of the search (or no condition sets it)"),
    ({"lr": 0.01, "width": 64, "z": 0, "opt": "adam", "epochs": 4}, "epochs=4 is not among"),
    ({"lr": "fast", "width": 64, "z": 0, "opt": "adam"}, "lr='fast' is not a finite number"),
    ({"lr": 0.01, "width": 32, "z": 0, "opt": "adam"}, "is forbidden by forbid"),
])
def test_a_point_that_does_not_fit_is_one_line(point, words):
    with pytest.raises(UsageError) as err:
        spec(initial_points=[POINTS[0], point])
    assert words in str(err.value) and "initial_points[1]" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("settings, words", [
    ({"forbid": {"opt": ["sgd"]}}, "forbid must be a list of mappings"),
    ({"forbid": [{"colour": ["red"]}]}, "forbid[0] names 'colour', which is not a parameter"),
    ({"forbid": [{}]}, "forbid[0] must be a non-empty mapping"),
    ({"initial_points": {"lr": 0.1}}, "initial_points must be a list of configurations"),
    ({"warm_start": [3]}, "warm_start must be a search directory or a list of them"),
    ({"algorithm": "grid", "parameters": {"opt": ["adam", "sgd"]}, "conditions": [],
      "forbid": None, "initial_points": [{"opt": "sgd"}]}, "initial_points is for the samplers"),
    ({"algorithm": "grid", "parameters": {"opt": ["adam", "sgd"]}, "conditions": [],
      "initial_points": None, "forbid": None, "warm_start": "out/a"},
     "warm_start is for the samplers"),
    ({"trials": 1}, "2 initial_points but 1 trials"),
])
def test_bad_settings_are_one_line(settings, words):
    with pytest.raises(UsageError) as err:
        spec(**settings)
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_fit_and_forbidden():
    s = spec()
    config, why = fit({"lr": 0.01, "width": 32, "z": 3.0, "opt": "adam"}, s.parameters,
                      s.conditions, s.config_keys())
    assert why == "" and config is not None and forbidden(config, list(s.forbid))
    assert not forbidden({**config, "width": 80}, list(s.forbid))
    assert not forbidden({"opt": True}, [{"opt": [1]}])  # True is not 1


# -- random and qmc -------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["random", "qmc"])
def test_sampled_strategies_propose_the_points_first_then_nothing_forbidden(algorithm):
    s = spec(algorithm, trials=40)
    proposals, _ = run(s)
    assert [p.config for p in proposals[:2]] == list(s.initial_points)
    assert len(proposals) == 40 and [p.trial for p in proposals] == list(range(40))
    assert not any(forbidden(p.config, list(s.forbid)) for p in proposals)
    assert len({json.dumps(p.config, sort_keys=True) for p in proposals}) == 40
    assert run(s, restart_every=3)[0] == proposals


@pytest.mark.parametrize("algorithm", ["random", "qmc"])
def test_a_sampler_gives_up_on_forbid_after_bounded_draws_with_one_line(algorithm):
    s = spec(algorithm, forbid=[{"opt": ["adam"]}, {"opt": ["sgd"]}],
             initial_points=None)
    proposals, strategy = run(s)
    assert proposals == [] and strategy.done
    note = strategy.stop_note
    assert note is not None and f"{FORBIDDEN_DRAWS} configurations drawn in a row" in note
    preview, said = make(s).preview(5)
    assert preview == [] and said == note


def test_grid_skips_forbidden_configurations_and_does_not_count_them():
    s = resolve_algorithm(spec_from_mapping({
        "script": "train.py", "metrics": ["loss"], "parameters": {"a": [1, 2, 3], "b": [0, 1]},
        "forbid": [{"a": [2]}, {"a": [3], "b": [1]}]}, "s", Path("."), check_script=False),
        None, None, None)
    grid = GridStrategy(s, seed=0)
    got = [p.config for p in grid.ask(10)]
    assert grid.total == 3 and sorted((c["a"], c["b"]) for c in got) == [(1, 0), (1, 1), (3, 0)]


# -- Optuna's samplers ----------------------------------------------------------------------
@pytest.mark.parametrize("algorithm, options", [("tpe", {"n_startup_trials": 3}),
                                                ("cmaes", {"popsize": 4}),
                                                ("nsga2", {"population_size": 4})])
def test_optuna_proposes_the_points_first_and_resumes_the_same_sequence(algorithm, options):
    s = spec(algorithm, trials=14, algorithm_options=options)
    proposals, _ = run(s)
    assert [p.config for p in proposals[:2]] == list(s.initial_points)
    assert len(proposals) == 14 and not any(forbidden(p.config, FORBID) for p in proposals)
    assert any(p.internal.get("skipped") for p in proposals), "forbid never hit"
    assert sequence(run(s, restart_every=3)[0]) == sequence(proposals)


def test_the_sampler_process_proposes_what_this_process_does():
    s = spec("tpe", trials=10, algorithm_options={"n_startup_trials": 3})
    assert sequence(run(s, restart_every=4, own_process=True)[0]) == sequence(run(s)[0])


def test_optuna_gives_up_on_forbid_after_bounded_draws_with_one_line():
    s = spec("tpe", forbid=[{"opt": ["adam"]}, {"opt": ["sgd"]}], initial_points=None,
             algorithm_options={"n_startup_trials": 3})
    proposals, strategy = run(s, own_process=True)
    assert proposals == [] and strategy.done
    assert f"{FORBIDDEN_DRAWS} configurations drawn in a row" in (strategy.stop_note or "")


def warm(n: int) -> tuple[WarmResult, ...]:
    """``n`` earlier runs: adam near lr=10^-2.5 is good, sgd is bad."""
    out = []
    for i in range(n):
        opt = "adam" if i % 2 else "sgd"
        config = {"lr": 10 ** (-4 + 3 * i / n), "width": 128, "z": 0.0, "opt": opt,
                  "epochs": 3, **({"momentum": 0.9} if opt == "sgd" else {})}
        out.append(WarmResult(config, (loss(config),)))
    return tuple(out)


def test_warm_results_teach_tpe_and_a_resume_tells_them_alike():
    """TPE told 20 earlier runs leaves its random start-up at once (they count as its
    start-up trials) and follows them: its own proposals favour the optimiser that did well."""
    plain = spec("tpe", trials=12, algorithm_options={"n_startup_trials": 10},
                 initial_points=None, forbid=None)
    warmed = dataclasses.replace(plain, warm_results=warm(20))
    cold, _ = run(plain)
    hot, _ = run(warmed)
    assert cold != hot
    assert sum(p.config["opt"] == "adam" for p in hot) > sum(
        p.config["opt"] == "adam" for p in cold)
    assert sum(p.config["opt"] == "adam" for p in hot) >= 9
    assert run(warmed, restart_every=5, own_process=True)[0] == hot


def test_warm_results_do_not_change_random_search():
    plain = spec("random", trials=8, initial_points=None, forbid=None)
    assert run(dataclasses.replace(plain, warm_results=warm(6)))[0] == run(plain)[0]
