"""Optuna's samplers as strategies: exact resume, parallel slots, a slow or failing sampler.

A simulated search runs in-process: proposals are asked until they come (the sampler
works in its own thread), a deterministic objective answers, and a "restart" builds a
fresh strategy from the journal (proposals and outcomes round-tripped through JSON).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import children_running
from optuna.distributions import FloatDistribution, IntDistribution

from hpsearch.errors import BackendError, UsageError
from hpsearch.spec.distributions import normal, qloguniform, quniform, uniformint
from hpsearch.spec.searchfile import spec_from_mapping
from hpsearch.strategies.base import Outcome, Proposal
from hpsearch.strategies.factory_sampled import make_sampled_strategy
from hpsearch.strategies.optuna import strategy as optuna_search
from hpsearch.strategies.optuna.process import SamplerProcess
from hpsearch.strategies.optuna.samplers import OptunaStrategy, sampler_options
from hpsearch.strategies.optuna.space import from_optuna, to_optuna
from hpsearch.strategies.parameters import Parameter

HAVE_GP = all(importlib.util.find_spec(m) for m in ("torch", "scipy"))
needs_gp = pytest.mark.skipif(not HAVE_GP, reason="gp needs torch and scipy "
                              "(pip install 'hpsearch[gp]')")

SPACE = {
    "lr": {"method": "loguniform", "low": 1e-4, "high": 1e-1},
    "x": {"method": "uniform", "low": -1, "high": 1},
    "width": {"method": "qloguniform", "low": 16, "high": 256, "q": 16},
    "z": {"method": "qnormal", "mu": 0, "sigma": 1, "q": 0.5},
    "opt": ["adam", "sgd"],
    "epochs": 3,
}
CONDITIONS = [[{"opt": ["sgd"]}, {"momentum": [0.0, 0.9]}]]
#: small settings so that every sampler leaves its start-up phase in a few trials
ALGORITHMS: dict[str, dict[str, Any]] = {
    "tpe": {"options": {"n_startup_trials": 4}, "trials": 14, "objectives": 1},
    "cmaes": {"options": {"popsize": 4}, "trials": 14, "objectives": 1},
    "nsga2": {"options": {"population_size": 4}, "trials": 14, "objectives": 2},
    "gp": {"options": {"n_startup_trials": 3}, "trials": 8, "objectives": 1},
}
ALGORITHM_PARAMS = [pytest.param(a, marks=needs_gp) if a == "gp" else a for a in ALGORITHMS]
WAIT_S = 120  # how long a test waits for a proposal before it calls the sampler stuck


def spec(algorithm: str, options: dict | None = None, objectives: int = 1,
         parameters: dict | None = None, conditions: list | None = None):
    return spec_from_mapping({
        "script": "train.py", "metrics": ["loss", "size"], "algorithm": algorithm,
        "objective": ["loss", "size"][:objectives], "direction": "minimize",
        "algorithm_options": options or {}, "parameters": parameters or SPACE,
        "conditions": CONDITIONS if conditions is None else conditions},
        "test", Path("."), check_script=False)


def child_if(own_process: bool) -> SamplerProcess | None:
    """A spawned sampler process for a strategy that computes in its own process."""
    return SamplerProcess() if own_process else None


def strategy_for(algorithm: str, parallel: int = 1, own_process: bool = False,
                 **changes: Any) -> OptunaStrategy:
    settings = {**ALGORITHMS[algorithm], **changes}
    return OptunaStrategy(spec(algorithm, settings["options"], settings["objectives"]), 7,
                          settings["trials"], parallel, process=child_if(own_process))


def collect(strategy: OptunaStrategy, n: int) -> list[Proposal]:
    """Ask until ``n`` proposals came (the driver polls like this)."""
    got: list[Proposal] = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < n:
        got += strategy.ask(n - len(got))
        assert time.monotonic() < deadline, "no proposal came"
        if len(got) < n:
            time.sleep(0.002)
    return got


def outcome(proposal: Proposal, objectives: int) -> Outcome:
    """Deterministic: some trials fail, some are pruned, the rest finish."""
    c = proposal.config
    loss = (math.log10(c["lr"]) + 2.5) ** 2 + (c["x"] - 0.3) ** 2 + c["z"] ** 2 / 10 + (
        0.2 if c["opt"] == "sgd" else 0.0) + c.get("momentum", 0.0) / 10
    values = [loss, c["width"] / 256][:objectives]
    if proposal.trial % 6 == 5:
        return Outcome(proposal.trial, "failed")
    if proposal.trial % 6 == 4 and objectives == 1:
        return Outcome(proposal.trial, "pruned", [loss * 2], {0: loss * 3, 1: loss * 2})
    return Outcome(proposal.trial, "finished", values)


def journal_copy(proposals: list[Proposal], outcomes: list[Outcome]
                 ) -> tuple[list[Proposal], list[Outcome]]:
    """What a driver reads back from its JSON journal."""
    ps = [Proposal(**json.loads(json.dumps(dataclasses.asdict(p)))) for p in proposals]
    os = [Outcome(o.trial, o.status, o.values, {int(k): v for k, v in json.loads(
        json.dumps(o.intermediate)).items()}) for o in outcomes]
    return ps, os


def search(algorithm: str, restart_every: int | None = None, in_flight: int = 1,
           own_process: bool = False, **changes: Any) -> list[Proposal]:
    settings = {**ALGORITHMS[algorithm], **changes}
    proposals: list[Proposal] = []
    outcomes: list[Outcome] = []
    strategy = strategy_for(algorithm, in_flight, own_process, **changes)
    strategy.restore([], [])
    try:
        while not strategy.done:
            batch = collect(strategy, min(in_flight, settings["trials"] - len(proposals)))
            if in_flight > 1:
                assert len({json.dumps(p.config, sort_keys=True) for p in batch}) == len(batch)
            proposals += batch
            for p in batch:
                outcomes.append(outcome(p, settings["objectives"]))
                strategy.tell(outcomes[-1])
            if restart_every and len(proposals) % restart_every == 0 and not strategy.done:
                strategy.close()
                strategy = strategy_for(algorithm, in_flight, own_process, **changes)
                strategy.restore(*journal_copy(proposals, outcomes))
    finally:
        strategy.close()
    return proposals


@cache
def uninterrupted(algorithm: str) -> tuple[Proposal, ...]:
    return tuple(search(algorithm))


# -- exact resume --------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHM_PARAMS)
@pytest.mark.parametrize("every", [1, 3, 7])
def test_resume_reproduces_the_sequence(algorithm: str, every: int) -> None:
    resumed = search(algorithm, every)
    assert [p.config for p in resumed] == [p.config for p in uninterrupted(algorithm)]
    assert [comparable(p) for p in resumed] == [comparable(p) for p in uninterrupted(algorithm)]


def comparable(proposal: Proposal) -> dict:
    """The journaled sampler state, less CMA-ES's pickled optimizer: the ``cmaes`` package
    keeps a history buffer made by ``np.empty`` (never read before it is filled), so the
    pickle holds whatever memory was there."""
    attrs = {k: v for k, v in proposal.internal["system_attrs"].items() if ":optimizer:" not in k}
    return {**proposal.internal, "system_attrs": attrs}


def test_tpe_s_one_sampler_seeded_anew_proposes_what_new_samplers_do(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """TPE asks every trial through one sampler whose random states are seeded anew: the
    same proposals as a new sampler per trial (were another Optuna to keep more state in
    its sampler, this fails)."""
    sampler = optuna.samplers.TPESampler(seed=1)
    assert len(optuna_search._random_states(sampler)) == 2  # the states are still there
    for in_flight in (1, 3):
        reseeded = search("tpe", in_flight=in_flight, trials=24)
        with monkeypatch.context() as patch:
            patch.setattr(optuna_search, "_RANDOM_STATES", {})
            new_ones = search("tpe", in_flight=in_flight, trials=24)
        assert [comparable(p) for p in reseeded] == [comparable(p) for p in new_ones]
        assert [p.config for p in reseeded] == [p.config for p in new_ones]


def test_nsga2_s_parent_population_is_journaled_with_the_proposal_that_chose_it() -> None:
    """The study attributes an ask set (NSGA-II caches each generation's parents there)
    go into the journal, so a restored study holds them too."""
    chosen = [p.internal["study_attrs"] for p in uninterrupted("nsga2") if
              p.internal["study_attrs"]]
    assert chosen and all(key.startswith("NSGAIISampler:parent") for attrs in chosen
                          for key in attrs), chosen


def test_resume_in_another_process() -> None:
    """A restarted driver is a new process (another PYTHONHASHSEED): same sequence."""
    code = ("import json, sys; sys.path.insert(0, 'tests'); import test_strategies_optuna as t;"
            " print(json.dumps([p.config for p in t.search('tpe', 5)]))")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": "3",
                                            "PYTHONPATH": "."})
    assert json.loads(child.stdout) == [p.config for p in uninterrupted("tpe")]


@pytest.mark.parametrize(("algorithm", "option", "free"), [
    ("tpe", "n_startup_trials", 4), ("cmaes", "n_startup_trials", 1),
    ("nsga2", "population_size", 4)])
def test_searches_leave_the_start_up_phase(algorithm: str, option: str, free: int) -> None:
    """The resume tests cover model-based proposals, not only random start-up draws: past
    the start-up trials the search differs from one that stays in its start-up phase."""
    trials = ALGORITHMS[algorithm]["trials"]
    options = {**ALGORITHMS[algorithm]["options"], option: trials}
    if algorithm == "nsga2":
        options["population_size"] = trials
    start_up_only = strategy_for(algorithm, options=options)
    random_draws, _note = start_up_only.preview(trials)
    start_up_only.close()
    searched = uninterrupted(algorithm)
    assert [p.config for p in searched[:free]] == [p.config for p in random_draws[:free]]
    assert all(a.config != b.config for a, b in zip(searched[free:], random_draws[free:],
                                                    strict=True))


def test_multi_objective_tpe_resumes() -> None:
    assert [p.config for p in search("tpe", 3, objectives=2)] == [
        p.config for p in search("tpe", objectives=2)]


@pytest.mark.parametrize("algorithm", ["cmaes", pytest.param("gp", marks=needs_gp)])
def test_only_lists_fall_back_to_random_draws(algorithm: str) -> None:
    lists = {"act": ["relu", "tanh", "gelu"], "n": [1, 2, 3, 4]}
    strategy = OptunaStrategy(spec(algorithm, parameters=lists, conditions=[]), 2, 6, 1)
    for _ in range(6):
        (p,) = collect(strategy, 1)
        strategy.tell(Outcome(p.trial, "finished", [p.config["n"]]))
    assert strategy.done
    strategy.close()


def test_restore_refuses_a_changed_space() -> None:
    proposals = list(uninterrupted("tpe")[:3])
    narrower = dict(SPACE, x={"method": "uniform", "low": 0.9, "high": 1})
    for parameters in ({k: v for k, v in SPACE.items() if k != "x"}, narrower):
        strategy = OptunaStrategy(spec("tpe", parameters=parameters), 7, 14, 1)
        with pytest.raises(UsageError, match=r"cannot resume: trial \d of the journal does "
                           r"not fit the search space .*; resume with the search file"):
            strategy.restore(*journal_copy(proposals, []))
        strategy.close()


def test_config_order_and_values() -> None:
    for p in uninterrupted("tpe"):
        keys = ["lr", "x", "width", "z", "opt", "epochs"]
        assert list(p.config) == keys + (["momentum"] if p.config["opt"] == "sgd" else [])
        assert type(p.config["width"]) is int and p.config["width"] % 16 == 0
        assert p.config["z"] % 0.5 == 0 and p.config["epochs"] == 3
        assert 1e-4 <= p.config["lr"] <= 1e-1


# -- parallel slots -------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHM_PARAMS)
def test_two_in_flight_never_equal(algorithm: str) -> None:
    """``search`` asserts that the two pending proposals of every batch differ."""
    assert len(search(algorithm, in_flight=2)) == ALGORITHMS[algorithm]["trials"]


def test_tpe_constant_liar_with_parallel_runs() -> None:
    assert sampler_options("tpe", {}, 2) == {"constant_liar": True}
    assert sampler_options("tpe", {"constant_liar": False}, 2) == {"constant_liar": False}
    assert sampler_options("tpe", {"n_startup_trials": 3}, 1) == {"n_startup_trials": 3}


@pytest.mark.parametrize("algorithm,options", [
    ("tpe", {}), ("tpe", {"multivariate": False}), ("tpe", {"group": True}), ("cmaes", {})])
def test_shared_search_space_caches_propose_what_a_fresh_sampler_would(
        monkeypatch: pytest.MonkeyPatch, algorithm: str, options: dict) -> None:
    """The per-trial samplers share their search-space caches; with each sampler building
    its own from every trial, the search is the same (4 runs in flight, failures and
    pruned trials among them)."""
    def run() -> list[Proposal]:
        base = ALGORITHMS[algorithm]["options"]
        return search(algorithm, in_flight=4, trials=40, options={**base, **options})

    shared = run()
    monkeypatch.setattr(optuna_search, "_SPACE_CACHES", ())
    fresh = run()
    assert [comparable(p) for p in shared] == [comparable(p) for p in fresh]


# -- dry runs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHM_PARAMS)
def test_preview_is_what_the_search_proposes_first(algorithm: str) -> None:
    strategy = strategy_for(algorithm)
    proposals, note = strategy.preview(100)
    strategy.close()
    free = {"tpe": 4, "cmaes": 1, "nsga2": 4, "gp": 3}[algorithm]
    assert len(proposals) == free and "depend on the results" in note
    first = uninterrupted(algorithm)[:free]
    assert [(p.config, comparable(p)) for p in proposals] == [(p.config, comparable(p))
                                                              for p in first]
    assert [p.config for p in search(algorithm, in_flight=2)[:free]] == [
        p.config for p in first]


def test_preview_of_a_search_that_is_all_start_up() -> None:
    strategy = strategy_for("tpe", trials=3)
    proposals, note = strategy.preview(10)
    strategy.close()
    assert len(proposals) == 3 and note is None


# -- the worker thread ----------------------------------------------------------------------
ONE = {"x": {"method": "uniform", "low": 0, "high": 1}}


def test_slow_sampler_does_not_block(monkeypatch: pytest.MonkeyPatch) -> None:
    original = optuna.samplers.RandomSampler.sample_independent

    def slow(self: Any, *args: Any) -> Any:
        time.sleep(2)
        return original(self, *args)

    strategy = OptunaStrategy(spec("tpe", parameters=ONE, conditions=[]), 1, 3, 1)
    monkeypatch.setattr(optuna.samplers.RandomSampler, "sample_independent", slow)
    started = time.monotonic()
    assert strategy.ask(1) == []
    assert time.monotonic() - started < 0.2
    assert strategy.busy
    assert strategy.ask(1) == [] and strategy.busy  # asking again orders nothing more
    (proposal,) = collect(strategy, 1)
    assert proposal.trial == 0 and not strategy.busy
    strategy.close()


def test_sampler_error_surfaces_in_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, *args: Any) -> Any:
        raise ValueError("boom\nsecond line")

    strategy = OptunaStrategy(spec("tpe", parameters=ONE, conditions=[]), 1, 3, 1)
    monkeypatch.setattr(optuna.samplers.RandomSampler, "sample_independent", broken)
    deadline = time.monotonic() + WAIT_S
    with pytest.raises(BackendError) as info:
        while time.monotonic() < deadline:
            strategy.ask(1)
            time.sleep(0.002)
    assert str(info.value) == "sampler tpe failed: ValueError: boom second line"
    with pytest.raises(BackendError):
        strategy.tell(Outcome(0, "failed"))
    strategy.close()


# -- the sampler process ----------------------------------------------------------------------
def sampler_children() -> set[int]:
    """Pids of this process's children that are sampler processes."""
    return set(children_running(os.getpid(), b"hpsearch.strategies.optuna.process"))


@pytest.mark.parametrize(("algorithm", "restart_every"), [
    ("tpe", None), ("tpe", 5), ("cmaes", None), ("nsga2", 5),
    pytest.param("gp", 5, marks=needs_gp)])
def test_the_sampler_process_proposes_what_this_process_does(algorithm: str,
                                                              restart_every: int | None):
    """The same calls in the same order: the same proposals, restarts included."""
    before = sampler_children()
    got = search(algorithm, restart_every=restart_every, own_process=True)
    assert [(p.trial, p.config) for p in got] == [
        (p.trial, p.config) for p in uninterrupted(algorithm)]
    assert sampler_children() == before  # closed with its strategy


def test_a_resume_that_does_not_fit_is_the_same_one_line_from_the_sampler_process() -> None:
    first = search("tpe")[:3]
    narrower = {**SPACE, "x": {"method": "uniform", "low": 5, "high": 6}}
    messages = []
    for own_process in (False, True):
        strategy = OptunaStrategy(spec("tpe", parameters=narrower), 7, 14, 1,
                                  process=child_if(own_process))
        with pytest.raises(UsageError) as info:
            strategy.restore(*journal_copy(first, []))
        strategy.close()
        messages.append(str(info.value))
    assert messages[0] == messages[1] and messages[0].startswith("cannot resume: trial ")


def test_a_sampler_process_that_dies_is_one_line_in_the_driver() -> None:
    before = sampler_children()
    strategy = OptunaStrategy(spec("tpe", parameters=ONE, conditions=[]), 1, 30, 1,
                              process=SamplerProcess())
    collect(strategy, 1)
    (child,) = sampler_children() - before
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + WAIT_S
    with pytest.raises(BackendError) as info:
        while time.monotonic() < deadline:
            strategy.ask(1)
            time.sleep(0.002)
    assert str(info.value) == ("sampler tpe failed: BackendError: the tpe sampler's process "
                               "ended (exit status -9); run the same command again to resume")
    strategy.close()


def test_a_tell_the_sampler_cannot_take_is_the_next_ask_s_error_in_both_processes() -> None:
    """A record is not answered by the sampler process: its error is raised by the next
    call, the same one line as in this process."""
    messages = []
    for own_process in (False, True):
        strategy = OptunaStrategy(spec("tpe", parameters=ONE, conditions=[]), 1, 30, 1,
                                  process=child_if(own_process))
        collect(strategy, 1)
        strategy.tell(Outcome(7, "finished", [0.5]))  # trial 7 was never proposed
        deadline = time.monotonic() + WAIT_S
        with pytest.raises(BackendError) as info:
            while time.monotonic() < deadline:
                strategy.ask(1)
                time.sleep(0.002)
        strategy.close()
        messages.append(str(info.value))
    assert messages[0] == messages[1], messages
    assert messages[0].startswith("sampler tpe failed: ") and "\n" not in messages[0]


def test_a_driver_whose_sampler_computes_in_its_own_process_does_not_import_optuna() -> None:
    """Its start is then the child's import, not that and its own one after the other;
    algorithm_options to check bring Optuna in."""
    code = """if True:
        import sys
        from pathlib import Path
        from hpsearch.spec.searchfile import spec_from_mapping
        from hpsearch.strategies.factory_sampled import make_sampled_strategy
        def strategy(options):
            spec = spec_from_mapping({"script": "t.py", "metrics": ["loss"], "objective": "loss",
                                      "algorithm": "tpe", "algorithm_options": options,
                                      "parameters": {"x": {"method": "uniform", "low": 0,
                                                           "high": 1}}},
                                     "test", Path("."), check_script=False)
            s = make_sampled_strategy(spec, 1, 5, 2)
            s.restore([], [])
            s.close()
            return "optuna" in sys.modules
        print(strategy({}), strategy({"n_startup_trials": 3}))
    """
    child = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                           check=True, timeout=WAIT_S)
    assert child.stdout.split() == ["False", "True"], child.stderr


def test_options_refused_close_the_sampler_process_spawned_for_them() -> None:
    before = sampler_children()
    with pytest.raises(UsageError, match="tpe has no option 'n_startup'"):
        make_sampled_strategy(spec("tpe", {"n_startup": 3}), 1, 5, 2)
    assert sampler_children() == before


class Activation:
    """A grid value of a class the sampler process cannot import (it lives in this test)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


def test_values_the_sampler_process_cannot_take_are_sampled_here() -> None:
    before = sampler_children()
    choices = [Activation("relu"), Activation("tanh")]
    strategy = OptunaStrategy(spec("tpe", parameters={"act": choices, **ONE}, conditions=[]),
                              1, 3, 1, process=SamplerProcess())
    proposals = collect(strategy, 3)
    assert sampler_children() == before  # the child refused the search and is gone
    strategy.close()
    assert all(p.config["act"] in choices for p in proposals)


def test_close_stops_the_thread() -> None:
    strategy = OptunaStrategy(spec("tpe", parameters=ONE, conditions=[]), 1, 3, 1)
    collect(strategy, 1)
    strategy.close()
    assert not any(t.name == "sampler tpe" and t.is_alive() for t in threading.enumerate())


# -- options and set-up ---------------------------------------------------------------------
@pytest.mark.parametrize(("algorithm", "options", "expected"), [
    ("tpe", {"n_startup": 3}, "algorithm_options: tpe has no option 'n_startup'; valid ones "
     "are consider_prior"),
    ("cmaes", {"population": 3}, "valid ones are x0, sigma0, n_startup_trials"),
    ("nsga2", {"seed": 3}, "seed is the search's own seed"),
    ("tpe", {"n_startup_trials": "ten"}, "tpe's n_startup_trials must be of type int (its "
     "default is 10), not 'ten'"),
    ("nsga2", {"population_size": 1}, "algorithm_options for nsga2 are not accepted ("),
])
def test_bad_options(algorithm: str, options: dict, expected: str) -> None:
    with pytest.raises(UsageError) as info:
        OptunaStrategy(spec(algorithm, options), 1, 5, 1)
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_gp_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(UsageError) as info:
        OptunaStrategy(spec("gp"), 1, 5, 1)
    assert str(info.value) == "algorithm gp needs torch and scipy: pip install 'hpsearch[gp]'"


def test_factory_dispatches() -> None:
    for algorithm in ("tpe", "cmaes", "nsga2"):
        strategy = make_sampled_strategy(spec(algorithm), 1, 5, 2)
        assert isinstance(strategy, OptunaStrategy) and strategy.adaptive
        assert strategy.total == 5 and not strategy.done
        strategy.close()
    assert type(make_sampled_strategy(spec("qmc"), 1, 5, 2)).__name__ == "QmcStrategy"
    assert type(make_sampled_strategy(spec("random"), 1, 5, 2)).__name__ == "RandomStrategy"


def test_mapping_onto_optuna() -> None:
    def param(dist: Any) -> Parameter:
        return Parameter("p", distribution=dist)

    q = param(quniform(0.1, 1.0, 0.25))
    assert to_optuna(q) == FloatDistribution(0.25, 1.0, step=0.25)
    assert from_optuna(q, 0.7500000000000001) == 0.75
    w = param(qloguniform(16, 1024, 16))
    assert to_optuna(w) == IntDistribution(1, 64, log=True)
    assert from_optuna(w, 3) == 48 and type(from_optuna(w, 3)) is int
    n = param(normal(1.0, 2.0))
    assert to_optuna(n) == FloatDistribution(1e-9, 1 - 1e-9)
    assert from_optuna(n, 0.5) == 1.0
    assert to_optuna(param(uniformint(-3, 4))) == IntDistribution(-3, 4)
    c = Parameter("c", choices=(None, (1, 2), "a"))
    assert to_optuna(c).choices == (0, 1, 2) and from_optuna(c, 1) == (1, 2)
