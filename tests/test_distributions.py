"""Every sampling method's values honour bounds, q and type, and follow their distribution.

Four routes draw them: ``Distribution.sample``, the random and the quasi-random strategy,
and Optuna's start-up trials as TPE proposes them (through hpsearch's mapping onto Optuna's
distributions). Continuous methods: the Kolmogorov-Smirnov statistic against the exact CDF;
discrete ones: chi-square against the exact pmf. A check passes below its 0.1 % critical
value (ratio < 1); the fixed seeds stay below 0.75 of it, quasi-random draws below 0.05.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from hpsearch.spec import distributions as d
from hpsearch.spec.searchfile import spec_from_mapping
from hpsearch.strategies.optuna.samplers import OptunaStrategy
from hpsearch.strategies.sampled import QmcStrategy, RandomStrategy

ALPHA = 1e-3
Z = NormalDist()

CASES: dict[str, d.Distribution] = {
    "uniform": d.uniform(-2.0, 3.0),
    "loguniform": d.loguniform(1e-4, 1e-1),
    "normal": d.normal(1.0, 2.0),
    "lognormal": d.lognormal(0.0, 0.5, base=10),
    "uniformint": d.uniformint(-3, 4),
    "quniform": d.quniform(0.1, 1.0, 0.25),
    "qloguniform": d.qloguniform(16, 1024, 16),
    "qnormal": d.qnormal(0.0, 2.0, 0.5),
    "qlognormal": d.qlognormal(0.0, 1.0, 1.0),
    "categorical": d.categorical(["a", "b", "c"]),
}
INT_METHODS = {"uniformint", "qloguniform", "qlognormal"}


# -- exact distributions ---------------------------------------------------------------------
def cdf(dist: d.Distribution) -> Callable[[float], float]:
    if dist.method == "uniform":
        return lambda x: (x - dist.low) / (dist.high - dist.low)
    if dist.method == "loguniform":
        return lambda x: math.log(x / dist.low) / math.log(dist.high / dist.low)
    normal = NormalDist(dist.mu, dist.sigma)
    if dist.method == "normal":
        return normal.cdf
    return lambda x: normal.cdf(math.log(x) / math.log(dist.base))  # lognormal


def cell(dist: d.Distribution, k: int) -> tuple[float, float]:
    """The values that round to multiple ``k`` of q, clamped into the bounds."""
    first, last = dist._multiples() if dist.is_bounded else (-math.inf, math.inf)
    lo = dist.low if k == first else (k - 0.5) * dist.q
    hi = dist.high if k == last else (k + 0.5) * dist.q
    return lo, hi


def pmf(dist: d.Distribution) -> dict[Any, float]:
    """hyperopt's pmf: ``round(x / q) * q`` gives the end multiples half a cell."""
    if dist.method == "categorical":
        return {c: 1 / len(dist.categories) for c in dist.categories}
    if dist.method == "uniformint":
        n = int(dist.high - dist.low) + 1
        return {int(dist.low) + i: 1 / n for i in range(n)}
    if dist.is_bounded:
        first, last = dist._multiples()
        scale = math.log if dist.is_log else (lambda x: x)
        width = scale(dist.high) - scale(dist.low)
        return {value(dist, k): (scale(cell(dist, k)[1]) - scale(cell(dist, k)[0])) / width
                for k in range(first, last + 1)}
    normal = NormalDist(dist.mu, dist.sigma)
    if dist.method == "qnormal":
        ks = range(math.floor((dist.mu - 8 * dist.sigma) / dist.q),
                   math.ceil((dist.mu + 8 * dist.sigma) / dist.q) + 1)
        return {value(dist, k): normal.cdf(cell(dist, k)[1]) - normal.cdf(cell(dist, k)[0])
                for k in ks}
    # qlognormal: k >= 0; multiple 0 takes (0, q/2)
    def log_cdf(x: float) -> float:
        return 0.0 if x <= 0 else normal.cdf(math.log(x) / math.log(dist.base))
    return {value(dist, k): log_cdf(cell(dist, k)[1]) - log_cdf(cell(dist, k)[0])
            for k in range(0, 2000)}


def optuna_pmf(dist: d.Distribution) -> dict[Any, float]:
    """Optuna's start-up draws: every multiple of q alike; ints on a log scale from
    [k_lo - 1/2, k_hi + 1/2]."""
    if dist.method == "quniform":
        first, last = dist._multiples()
        return {value(dist, k): 1 / (last - first + 1) for k in range(first, last + 1)}
    if dist.method == "qloguniform":
        first, last = dist._multiples()
        width = math.log((last + 0.5) / (first - 0.5))
        return {value(dist, k): math.log((k + 0.5) / (k - 0.5)) / width
                for k in range(first, last + 1)}
    return pmf(dist)


def value(dist: d.Distribution, k: int) -> Any:
    return dist._rounded(k * dist.q)


# -- statistics ------------------------------------------------------------------------------
def ks_statistic(samples: list[float], f: Callable[[float], float]) -> float:
    xs = sorted(samples)
    n = len(xs)
    return max(max((i + 1) / n - f(x), f(x) - i / n) for i, x in enumerate(xs))


def ks_limit(n: int) -> float:
    return math.sqrt(-0.5 * math.log(ALPHA / 2)) / math.sqrt(n)


def chi_square(samples: list[Any], probabilities: dict[Any, float]) -> tuple[float, float]:
    """The statistic and its limit; cells expecting < 5 draws are pooled."""
    n = len(samples)
    counts = Counter(samples)
    assert set(counts) <= set(probabilities), set(counts) - set(probabilities)
    stat, pooled_obs, pooled_exp, cells = 0.0, 0, 0.0, 0
    for v, p in probabilities.items():
        if n * p >= 5:
            stat += (counts[v] - n * p) ** 2 / (n * p)
            cells += 1
        else:
            pooled_obs += counts[v]
            pooled_exp += n * p
    if pooled_exp > 0:
        stat += (pooled_obs - pooled_exp) ** 2 / pooled_exp
        cells += 1
    df = cells - 1
    z = Z.inv_cdf(1 - ALPHA)  # Wilson-Hilferty
    limit = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
    return stat, limit


def check_values(name: str, dist: d.Distribution, samples: list[Any],
                 probabilities: Callable[[d.Distribution], dict[Any, float]] = pmf) -> float:
    """Assert bounds, q and type, then the fit; returns statistic / limit."""
    for v in samples:
        if dist.method == "categorical":
            assert v in dist.categories
            continue
        assert type(v) is (int if name in INT_METHODS else float), (name, v)
        if dist.is_bounded:
            assert dist.low <= v <= dist.high, (name, v)
        if dist.q is not None:
            assert abs(v / dist.q - round(v / dist.q)) < 1e-9, (name, v)
    if dist.method in ("uniform", "loguniform", "normal", "lognormal"):
        return ks_statistic(samples, cdf(dist)) / ks_limit(len(samples))
    stat, limit = chi_square(samples, probabilities(dist))
    return stat / limit


def spec_of(cases: dict[str, d.Distribution], algorithm: str, options: dict | None = None):
    parameters = {name: dist.to_json() for name, dist in cases.items()}
    return spec_from_mapping({"script": "train.py", "metrics": ["loss"],
                              "parameters": parameters, "algorithm": algorithm,
                              "algorithm_options": options or {}}, "test", Path("."),
                             check_script=False)


def strategy_samples(strategy: Any, n: int) -> dict[str, list[Any]]:
    proposals, _note = strategy.preview(n)
    assert len(proposals) == n
    return {name: [p.config[name] for p in proposals] for name in CASES}


# -- the tests -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CASES)
def test_distribution_sample(name: str) -> None:
    rng = random.Random(20240601)
    dist = CASES[name]
    assert check_values(name, dist, [dist.sample(rng) for _ in range(4000)]) < 1


def test_random_strategy_samples() -> None:
    samples = strategy_samples(RandomStrategy(spec_of(CASES, "random"), 7, 3000), 3000)
    ratios = {name: check_values(name, CASES[name], samples[name]) for name in CASES}
    assert max(ratios.values()) < 1, ratios


def test_qmc_strategy_samples() -> None:
    """QMC points are more even than random ones: far inside every limit."""
    samples = strategy_samples(QmcStrategy(spec_of(CASES, "qmc"), 7, 3000), 3000)
    ratios = {name: check_values(name, CASES[name], samples[name]) for name in CASES}
    assert max(ratios.values()) < 0.1, ratios


def test_tpe_startup_samples() -> None:
    """TPE's start-up trials draw from Optuna's priors of the mapped distributions."""
    n = 600
    strategy = OptunaStrategy(spec_of(CASES, "tpe", {"n_startup_trials": n}), 7, n, 1)
    samples = strategy_samples(strategy, n)
    strategy.close()
    ratios = {name: check_values(name, CASES[name], samples[name], optuna_pmf)
              for name in CASES}
    assert max(ratios.values()) < 1, ratios
    # the chi-square sees the difference at the ends: Optuna's draws fail hyperopt's pmf
    assert check_values("quniform", CASES["quniform"], samples["quniform"]) > 2


def test_quniform_ends_have_half_weight() -> None:
    probabilities = pmf(CASES["quniform"])  # multiples 0.25 .. 1.0 of [0.1, 1.0]
    assert probabilities[1.0] == pytest.approx(0.125 / 0.9)
    assert probabilities[0.5] == pytest.approx(0.25 / 0.9)
    assert probabilities[0.25] == pytest.approx((0.375 - 0.1) / 0.9)


@pytest.mark.parametrize("name", ["quniform", "qloguniform", "qnormal", "qlognormal"])
def test_pmf_sums_to_one(name: str) -> None:
    assert sum(pmf(CASES[name]).values()) == pytest.approx(1.0, abs=1e-9)


def test_describe_is_short_and_tells_different_distributions_apart() -> None:
    def text(**raw: Any) -> str:
        return d.parse_distribution("p", raw).describe()

    assert text(method="loguniform", low=1e-5, high=0.1) == "loguniform(1e-05, 0.1)"
    assert text(method="uniformint", low=1, high=8) == "uniformint(1, 8)"
    assert text(method="uniform", low=0.1234567, high=1) == "uniform(0.1234567, 1)"
    assert text(method="lognormal", mu=0, sigma=1, base=10) == "lognormal(0, 1, base=10)"
    assert text(method="lognormal", mu=0, sigma=1) == "lognormal(0, 1)"
