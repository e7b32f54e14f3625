"""Distributions a parameter may be drawn from: hpogrid's sampling methods, stdlib only.

A search file spells one as a mapping, in either of hpogrid's two spellings::

    lr:    {method: loguniform, low: 1.0e-5, high: 1.0e-1}
    lr:    {method: loguniform, dimension: {low: 1.0e-5, high: 1.0e-1, base: 10}}

and a grid module as a call of the helpers below (``from hpsearch.space import loguniform``)::

    grid = {"lr": loguniform(1e-5, 1e-1), "layers": uniformint(1, 4), "act": ["relu", "tanh"]}

=============  ==========================  ===================================================
method         dimension                   a value is
=============  ==========================  ===================================================
categorical    categories                  one of ``categories``
uniform        low, high                   uniform in [low, high]
uniformint     low, high                   an integer, uniform in [low, high] (both included)
quniform       low, high, q                round(uniform(low, high) / q) * q
loguniform     low, high, base (e)         log-uniform in [low, high] (low > 0)
qloguniform    low, high, q, base (e)      round(loguniform(low, high) / q) * q
normal         mu, sigma                   normal with mean mu, standard deviation sigma
qnormal        mu, sigma, q                round(normal(mu, sigma) / q) * q
lognormal      mu, sigma, base (e)         base ** normal(mu, sigma)
qlognormal     mu, sigma, q, base (e)      round(lognormal(mu, sigma) / q) * q
=============  ==========================  ===================================================

Every value honours its bounds and ``q``: a rounded value is a multiple of ``q`` inside
[low, high] (the nearest multiple inside when rounding would leave the range); a q-method
whose ``q`` and bounds are all integers yields ints, as ``uniformint`` does. The base of a
log-uniform distribution does not change it (log-uniform is log-uniform in any base); it is
accepted because hpogrid spells it.

Each distribution maps a unit number ``u`` in [0, 1) onto a value (:meth:`Distribution.from_unit`,
the inverse of its distribution function), which is how random and quasi-random strategies
draw, and how Optuna's samplers see the unbounded normal family (as ``u``).

:data:`ParameterValues` (a list or a distribution) and :data:`Condition` are the types of a
search's parameters and conditions, for every module of :mod:`hpsearch.spec`.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from typing import Any

from hpsearch.errors import UsageError

#: every method, in hpogrid's order
METHODS = ("categorical", "uniform", "uniformint", "quniform", "loguniform", "qloguniform",
           "normal", "qnormal", "lognormal", "qlognormal")
#: the keys each method takes (besides ``method``); the first ones are required
_REQUIRED = {
    "categorical": ("categories",), "uniform": ("low", "high"),
    "uniformint": ("low", "high"), "quniform": ("low", "high", "q"),
    "loguniform": ("low", "high"), "qloguniform": ("low", "high", "q"),
    "normal": ("mu", "sigma"), "qnormal": ("mu", "sigma", "q"),
    "lognormal": ("mu", "sigma"), "qlognormal": ("mu", "sigma", "q"),
}
_OPTIONAL = {"loguniform": ("base",), "qloguniform": ("base",), "lognormal": ("base",),
             "qlognormal": ("base",), "categorical": ("grid_search",)}
_STANDARD_NORMAL = NormalDist()
#: how close to 0 and 1 the unit number of a normal-family draw may come
_UNIT_EPS = 1e-12
#: the largest |z| of a normal-family draw (the quantile at 1 - _UNIT_EPS)
_Z_MAX = _STANDARD_NORMAL.inv_cdf(1.0 - _UNIT_EPS)
#: logarithms of the largest and of the smallest normal positive float
_LOG_LARGEST = math.log(sys.float_info.max)
_LOG_TINIEST = math.log(sys.float_info.min)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _multiple(k: int, q: float) -> float:
    """``k * q`` without binary noise: 3 * 0.05 -> 0.15, not 0.15000000000000002."""
    return float(Decimal(k) * Decimal(repr(q)))


@dataclass(frozen=True)
class Distribution:
    """One parameter's distribution; build it with the helpers or :func:`parse_distribution`."""

    method: str
    low: float | None = None
    high: float | None = None
    q: float | None = None
    mu: float | None = None
    sigma: float | None = None
    base: float = math.e
    categories: tuple[Any, ...] | None = None

    # -- what kind of parameter -------------------------------------------------------
    @property
    def is_categorical(self) -> bool:
        return self.method == "categorical"

    @property
    def is_log(self) -> bool:
        """Log-scaled (plots use a log axis, samplers a log-uniform prior)."""
        return self.method in ("loguniform", "qloguniform", "lognormal", "qlognormal")

    @property
    def is_int(self) -> bool:
        """Yields ints: ``uniformint``, or a q-method with integer q and bounds."""
        if self.method == "uniformint":
            return True
        if self.q is None:
            return False
        numbers = [self.q] + [v for v in (self.low, self.high) if v is not None]
        return all(float(v).is_integer() for v in numbers)

    @property
    def is_bounded(self) -> bool:
        return self.low is not None and self.high is not None

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value a bounded distribution yields (after ``q``)."""
        assert self.low is not None and self.high is not None
        if self.q is None:
            return self.low, self.high
        first, last = self._multiples()
        return _multiple(first, self.q), _multiple(last, self.q)

    def _multiples(self) -> tuple[int, int]:
        assert self.q is not None and self.low is not None and self.high is not None
        return math.ceil(self.low / self.q - 1e-9), math.floor(self.high / self.q + 1e-9)

    # -- drawing ----------------------------------------------------------------------
    def from_unit(self, u: float) -> Any:
        """The value at quantile ``u`` (0 <= u < 1) of this distribution."""
        u = min(max(u, 0.0), math.nextafter(1.0, 0.0))
        method = self.method
        if method == "categorical":
            assert self.categories is not None
            return self.categories[min(int(u * len(self.categories)), len(self.categories) - 1)]
        if method == "uniformint":
            assert self.low is not None and self.high is not None
            low, high = int(self.low), int(self.high)
            return min(low + int(u * (high - low + 1)), high)
        if method in ("uniform", "quniform"):
            assert self.low is not None and self.high is not None
            return self._rounded(self.low + u * (self.high - self.low))
        if method in ("loguniform", "qloguniform"):
            assert self.low is not None and self.high is not None
            log_low, log_high = math.log(self.low), math.log(self.high)
            return self._rounded(math.exp(log_low + u * (log_high - log_low)))
        assert self.mu is not None and self.sigma is not None
        z = _STANDARD_NORMAL.inv_cdf(min(max(u, _UNIT_EPS), 1.0 - _UNIT_EPS))
        normal = self.mu + self.sigma * z
        if method in ("normal", "qnormal"):
            return self._rounded(normal)
        try:
            return self._rounded(self.base ** normal)
        except OverflowError:
            return self._rounded(math.inf)

    def sample(self, rng: random.Random) -> Any:
        """One value drawn with ``rng``."""
        return self.from_unit(rng.random())

    def _rounded(self, value: float) -> Any:
        """``value`` on this distribution's grid of ``q`` multiples (and bounds), typed."""
        if self.q is None:
            if self.is_bounded:
                assert self.low is not None and self.high is not None
                value = min(max(value, self.low), self.high)
            return value
        if not math.isfinite(value):
            return value
        k = round(value / self.q)
        if self.is_bounded:
            first, last = self._multiples()
            k = min(max(k, first), last)
        result = _multiple(k, self.q)
        return int(result) if self.is_int else result

    # -- storage ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The search-file spelling: ``{"method": "loguniform", "low": 1e-05, ...}``."""
        data: dict[str, Any] = {"method": self.method}
        for key in _REQUIRED[self.method] + _OPTIONAL.get(self.method, ()):
            if key == "grid_search":
                continue
            value = getattr(self, key)
            data[key] = list(value) if key == "categories" else value
        return data

    def describe(self) -> str:
        """``loguniform(1e-05, 0.1)``, ``lognormal(0, 1, base=10)``: for messages and
        reports; two distributions that differ are described differently."""
        if self.categories is not None:
            return f"categorical({list(self.categories)!r})"
        args = [_number_text(getattr(self, k)) for k in _REQUIRED[self.method]]
        if self.base != math.e:
            args.append(f"base={_number_text(self.base)}")
        return f"{self.method}({', '.join(args)})"


#: a parameter: the values a grid walks (or a sampler chooses among), or a distribution
ParameterValues = list[Any] | Distribution
#: a grid condition ``(match, replace)``: both map parameter names to value lists
Condition = tuple[dict[str, list[Any]], dict[str, list[Any]]]


def _number_text(value: float) -> str:
    """``1e-05``, ``0.1``, ``3``: short, and exact (``repr``) where short would round."""
    text = f"{value:g}"
    return text if float(text) == value else repr(value)


def parse_distribution(name: str, raw: dict[str, Any]) -> Distribution:
    """A distribution from its search-file mapping; a bad one is a one-line UsageError.

    Accepts ``{method: M, <dimension keys>}`` and hpogrid's ``{method: M, dimension: {...}}``.
    """
    where = f"parameter {name!r}"
    if "method" not in raw:
        raise UsageError(f"{where} is a mapping without 'method'; give one of "
                         f"{', '.join(METHODS)}, a list of values, or a single value")
    method = raw["method"]
    if method not in METHODS:
        raise UsageError(f"{where}: method {method!r} does not exist; use one of "
                         f"{', '.join(METHODS)}")
    dims = dict(raw)
    dims.pop("method")
    if "dimension" in dims:
        nested = dims.pop("dimension")
        if not isinstance(nested, dict):
            raise UsageError(f"{where}: 'dimension' must be a mapping such as "
                             "{low: 0, high: 1}")
        dims.update(nested)
    allowed = _REQUIRED[method] + _OPTIONAL.get(method, ())
    unknown = [k for k in dims if k not in allowed]
    if unknown:
        raise UsageError(f"{where}: {method} takes {', '.join(allowed)}, not "
                         f"{', '.join(map(str, unknown))}")
    missing = [k for k in _REQUIRED[method] if k not in dims]
    if missing:
        raise UsageError(f"{where}: {method} needs {', '.join(_REQUIRED[method])}; "
                         f"{', '.join(missing)} is missing")
    if method == "categorical":
        return categorical(dims["categories"], name=name)
    dims.pop("grid_search", None)
    return _checked(name, Distribution(method, **_num(name, **dims)))


def _checked(name: str, dist: Distribution) -> Distribution:
    """Raise a one-line UsageError when ``dist``'s numbers cannot work together."""
    where = f"parameter {name!r} ({dist.method})"
    if dist.low is not None and dist.high is not None and not dist.low < dist.high:
        raise UsageError(f"{where}: low ({dist.low:g}) must be less than high ({dist.high:g})")
    if dist.method in ("loguniform", "qloguniform") and dist.low is not None and dist.low <= 0:
        raise UsageError(f"{where}: low ({dist.low:g}) must be > 0 for a log scale; use "
                         "uniform for ranges that reach 0")
    if dist.q is not None and dist.q <= 0:
        raise UsageError(f"{where}: q ({dist.q:g}) must be > 0")
    if dist.sigma is not None and dist.sigma <= 0:
        raise UsageError(f"{where}: sigma ({dist.sigma:g}) must be > 0")
    if dist.base <= 0 or dist.base == 1:
        raise UsageError(f"{where}: base ({dist.base:g}) must be > 0 and not 1")
    if dist.method == "uniformint":
        assert dist.low is not None and dist.high is not None
        if not (float(dist.low).is_integer() and float(dist.high).is_integer()):
            raise UsageError(f"{where}: low and high must be integers")
    _check_reach(where, dist)
    if dist.q is not None and dist.is_bounded:
        first, last = dist._multiples()
        if first > last:
            raise UsageError(f"{where}: no multiple of q ({dist.q:g}) lies in "
                             f"[{dist.low:g}, {dist.high:g}]; lower q or widen the range")
    return dist


def _check_reach(where: str, dist: Distribution) -> None:
    """Refuse numbers whose draws a float cannot hold: a range wider than the largest float
    (``uniform(-1e308, 1e308)`` would draw 1e308 every time), a normal family reaching
    infinity (``lognormal`` with ``mu=1000`` would pass ``inf``) or 0 (a lognormal), a ``q``
    so small that a value counted in multiples of it is infinite."""
    if dist.is_bounded:
        assert dist.low is not None and dist.high is not None
        if not math.isfinite(dist.high - dist.low):
            raise UsageError(f"{where}: the range [{dist.low:g}, {dist.high:g}] is wider than "
                             "a float can hold; narrow it")
        reach = max(abs(dist.low), abs(dist.high))
    else:
        assert dist.mu is not None and dist.sigma is not None
        ends = (dist.mu - _Z_MAX * dist.sigma, dist.mu + _Z_MAX * dist.sigma)
        if not all(math.isfinite(end) for end in ends):
            raise UsageError(f"{where}: mu ({dist.mu:g}) and sigma ({dist.sigma:g}) give "
                             "draws beyond the largest float; bring mu closer to 0 or lower "
                             "sigma")
        reach = max(abs(end) for end in ends)
        if dist.method in ("lognormal", "qlognormal"):
            powers = sorted(end * math.log(dist.base) for end in ends)
            if powers[0] < _LOG_TINIEST or powers[1] > _LOG_LARGEST:
                raise UsageError(f"{where}: {dist.base:g} ** normal({dist.mu:g}, "
                                 f"{dist.sigma:g}) draws values that are 0 or infinite as "
                                 "floats; bring mu closer to 0 or lower sigma (the "
                                 "exponent's mean and spread)")
            reach = math.exp(powers[1])
    if dist.q is not None and not math.isfinite(reach / dist.q):
        raise UsageError(f"{where}: q ({dist.q:g}) is too small for values up to {reach:g} "
                         "(their count of multiples of q is infinite); raise q")


def _num(name: str, **values: Any) -> dict[str, float]:
    """``values`` as floats; a value that is not a finite number is a UsageError."""
    for key, value in values.items():
        if not _is_number(value):
            raise UsageError(f"parameter {name!r}: {key} must be a finite number, "
                             f"not {value!r}")
    return {k: float(v) for k, v in values.items()}


# -- the helpers grid modules call ------------------------------------------------------
def categorical(categories: Any, *, name: str = "") -> Distribution:
    where = f"parameter {name!r}" if name else "categorical"
    if not isinstance(categories, (list, tuple)) or not categories:
        raise UsageError(f"{where}: categories must be a non-empty list of values")
    return Distribution("categorical", categories=tuple(categories))


def uniform(low: float, high: float, *, name: str = "") -> Distribution:
    return _checked(name, Distribution("uniform", **_num(name, low=low, high=high)))


def uniformint(low: int, high: int, *, name: str = "") -> Distribution:
    return _checked(name, Distribution("uniformint", **_num(name, low=low, high=high)))


def quniform(low: float, high: float, q: float, *, name: str = "") -> Distribution:
    return _checked(name, Distribution("quniform", **_num(name, low=low, high=high, q=q)))


def loguniform(low: float, high: float, base: float = math.e, *, name: str = ""
               ) -> Distribution:
    return _checked(name, Distribution("loguniform",
                                       **_num(name, low=low, high=high, base=base)))


def qloguniform(low: float, high: float, q: float, base: float = math.e, *, name: str = ""
                ) -> Distribution:
    return _checked(name, Distribution("qloguniform",
                                       **_num(name, low=low, high=high, q=q, base=base)))


def normal(mu: float, sigma: float, *, name: str = "") -> Distribution:
    return _checked(name, Distribution("normal", **_num(name, mu=mu, sigma=sigma)))


def qnormal(mu: float, sigma: float, q: float, *, name: str = "") -> Distribution:
    return _checked(name, Distribution("qnormal", **_num(name, mu=mu, sigma=sigma, q=q)))


def lognormal(mu: float, sigma: float, base: float = math.e, *, name: str = ""
              ) -> Distribution:
    return _checked(name, Distribution("lognormal",
                                       **_num(name, mu=mu, sigma=sigma, base=base)))


def qlognormal(mu: float, sigma: float, q: float, base: float = math.e, *, name: str = ""
               ) -> Distribution:
    return _checked(name, Distribution("qlognormal",
                                       **_num(name, mu=mu, sigma=sigma, q=q, base=base)))
