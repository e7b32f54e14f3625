"""Random and quasi-random strategies: resumable exactly, QMC more even, conditions drawn."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from hpsearch.spec.searchfile import spec_from_mapping
from hpsearch.strategies.base import Outcome, Proposal, Strategy
from hpsearch.strategies.halton import ScrambledHalton
from hpsearch.strategies.sampled import QmcStrategy, RandomStrategy
from hpsearch.strategies.seeding import derive_seed

SPACE = {
    "lr": {"method": "loguniform", "low": 1e-5, "high": 1e-1},
    "width": {"method": "qloguniform", "low": 16, "high": 1024, "q": 16},
    "opt": ["adam", "sgd"],
    "epochs": 10,
    "z": {"method": "normal", "mu": 0, "sigma": 1},
}
CONDITIONS = [[{"opt": ["sgd"]}, {"momentum": [0.0, 0.5, 0.9], "nesterov": [True]}]]


def spec(parameters: dict, conditions: list | None = None, algorithm: str = "random"):
    return spec_from_mapping({"script": "train.py", "metrics": ["loss"], "algorithm": algorithm,
                              "parameters": parameters, "conditions": conditions or []},
                             "test", Path("."), check_script=False)


STRATEGIES = {"random": RandomStrategy, "qmc": QmcStrategy}


def search(make: type[Strategy], restart_every: int | None, trials: int = 20) -> list[dict]:
    """One trial at a time; with ``restart_every``, a fresh strategy restored from the
    journal (JSON-round-tripped as the driver's is) after every that many trials."""
    proposals: list[Proposal] = []
    outcomes: list[Outcome] = []
    strategy = make(spec(SPACE, CONDITIONS), 5, trials)
    strategy.restore([], [])
    while not strategy.done:
        (proposal,) = strategy.ask(1)
        proposals.append(proposal)
        outcomes.append(Outcome(proposal.trial, "finished", [proposal.config["lr"]]))
        strategy.tell(outcomes[-1])
        if restart_every and len(proposals) % restart_every == 0:
            strategy = make(spec(SPACE, CONDITIONS), 5, trials)
            strategy.restore(list(proposals), list(outcomes))
    return [p.config for p in proposals]


def test_derive_seed_is_fixed_text_hashing() -> None:
    assert derive_seed(42, 7) == derive_seed(42, 7) == 3187097368
    assert derive_seed(42, 7) != derive_seed(42, 8) != derive_seed(43, 7)
    assert derive_seed(42, 7, stream="halton") != derive_seed(42, 7)
    assert all(0 <= derive_seed(s, t) < 2**32 for s in range(5) for t in range(50))


def test_derive_seed_ignores_pythonhashseed() -> None:
    code = "from hpsearch.strategies.seeding import derive_seed; print(derive_seed(42, 7))"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={"PYTHONHASHSEED": h, "PYTHONPATH": "."}
                              ).stdout for h in ("1", "2")}
    assert outputs == {f"{derive_seed(42, 7)}\n"}


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("every", [1, 3, 7])
def test_resume_reproduces_the_sequence(name: str, every: int) -> None:
    assert search(STRATEGIES[name], every) == search(STRATEGIES[name], None)


@pytest.mark.parametrize("name", STRATEGIES)
def test_ask_in_any_chunks_preview_and_budget(name: str) -> None:
    make = STRATEGIES[name]
    whole = make(spec(SPACE), 9, 10).ask(100)
    strategy = make(spec(SPACE), 9, 10)
    chunks = strategy.ask(3) + strategy.ask(0) + strategy.ask(4) + strategy.ask(5)
    assert chunks == whole and [p.trial for p in whole] == list(range(10))
    assert strategy.done and strategy.total == 10 and strategy.ask(2) == []
    assert not strategy.adaptive and not strategy.busy
    assert make(spec(SPACE), 9, 10).preview(4) == (whole[:4], None)
    assert make(spec(SPACE), 9, 3).preview(10) == (make(spec(SPACE), 9, 3).ask(3), None)


@pytest.mark.parametrize("name", STRATEGIES)
def test_fixed_values_take_no_randomness(name: str) -> None:
    make = STRATEGIES[name]
    plain = make(spec({"x": {"method": "uniform", "low": 0, "high": 1}, "c": [1, 2, 3]}), 1, 5)
    with_fixed = make(spec({"f": "a", "x": {"method": "uniform", "low": 0, "high": 1},
                            "g": [7], "c": [1, 2, 3]}), 1, 5)
    for a, b in zip(plain.ask(5), with_fixed.ask(5), strict=True):
        assert b.config == {"f": "a", "x": a.config["x"], "g": 7, "c": a.config["c"]}


@pytest.mark.parametrize("name", STRATEGIES)
def test_conditions_draw_one_value(name: str) -> None:
    proposals = STRATEGIES[name](spec(SPACE, CONDITIONS, name), 3, 600).ask(600)
    sgd = [p.config for p in proposals if p.config["opt"] == "sgd"]
    adam = [p.config for p in proposals if p.config["opt"] == "adam"]
    assert 200 < len(sgd) < 400
    assert all("momentum" not in c and "nesterov" not in c for c in adam)
    assert all(c["nesterov"] is True for c in sgd)
    counts = Counter(c["momentum"] for c in sgd)
    assert set(counts) == {0.0, 0.5, 0.9} and min(counts.values()) > len(sgd) / 3 - 40
    assert list(sgd[0]) == ["lr", "width", "opt", "epochs", "z", "momentum", "nesterov"]


def test_deterministic_condition() -> None:
    conditions = [[{"opt": ["sgd"]}, {"lr": [0.1]}]]
    for p in RandomStrategy(spec(SPACE, conditions), 3, 40).ask(40):
        assert (p.config["lr"] == 0.1) == (p.config["opt"] == "sgd")


# -- quasi-random: even and stratified -------------------------------------------------------
def l2_star_discrepancy(points: list[list[float]]) -> float:
    """Warnock's formula for the L2-star discrepancy of points in [0, 1)^d."""
    n, d = len(points), len(points[0])
    first = 3.0 ** -d
    second = sum(math.prod((1 - x * x) / 2 for x in p) for p in points) * 2 / n
    third = sum(math.prod(1 - max(a, b) for a, b in zip(p, q, strict=True))
                for p in points for q in points) / n ** 2
    return math.sqrt(first - second + third)


def test_qmc_is_more_even_than_random() -> None:
    square = {"x": {"method": "uniform", "low": 0, "high": 1},
              "y": {"method": "uniform", "low": 0, "high": 1}}
    for seed in range(5):
        qmc = [[p.config["x"], p.config["y"]] for p in QmcStrategy(spec(square), seed,
                                                                   128).ask(128)]
        rnd = [[p.config["x"], p.config["y"]] for p in RandomStrategy(spec(square), seed,
                                                                      128).ask(128)]
        assert l2_star_discrepancy(qmc) < 0.5 * l2_star_discrepancy(rnd), seed
        xs = sorted(p[0] for p in qmc[:64])
        gaps = [b - a for a, b in zip([0.0, *xs], [*xs, 1.0], strict=True)]
        assert max(gaps) < 2.5 / 64  # random points leave gaps near ln(64) / 64


@pytest.mark.parametrize("dim", [0, 1, 2, 5])
def test_halton_stratifies_each_dimension(dim: int) -> None:
    """Points 1 .. b**m - 1 fall into distinct cells of width b**-m, whatever the seed."""
    halton = ScrambledHalton(dim + 1, seed=11)
    base = halton.bases[dim]
    cells = base ** (3 if base < 10 else 2)
    seen = [int(halton.point(i)[dim] * cells) for i in range(1, cells)]
    assert len(set(seen)) == len(seen)
    assert all(0 <= halton.point(i)[dim] < 1 for i in range(1, 50))


def test_halton_seed_scrambles() -> None:
    assert ScrambledHalton(3, 1).point(5) == ScrambledHalton(3, 1).point(5)
    assert ScrambledHalton(3, 1).point(5) != ScrambledHalton(3, 2).point(5)
    assert ScrambledHalton(3, 1).bases == [2, 3, 5]


def test_random_trial_uses_its_own_generator() -> None:
    uniform = {"x": {"method": "uniform", "low": 0, "high": 1}}
    (p,) = RandomStrategy(spec(uniform), 4, 10).ask(10)[6:7]
    assert p.config["x"] == random.Random(derive_seed(4, 6)).random()
