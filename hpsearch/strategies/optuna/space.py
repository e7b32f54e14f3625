"""Our search space as Optuna sees it, so that its samplers model each parameter's scale.

=============  ==========================================  ================================
ours           Optuna's distribution                       the run gets
=============  ==========================================  ================================
list           ``CategoricalDistribution`` of the indices  the value at that index
uniform        ``FloatDistribution(low, high)``            the float
loguniform     ``FloatDistribution(low, high, log=True)``  the float
quniform       ``FloatDistribution(lo, hi, step=q)``        the multiple of q (lo, hi: the
                                                           first and last multiple inside)
uniformint     ``IntDistribution(low, high)``              the int
qloguniform    ``IntDistribution(lo/q, hi/q, log=True)``   ``k * q`` (int when q and the
                                                           bounds are)
normal family  ``FloatDistribution(1e-9, 1 - 1e-9)``       the quantile ``u`` of ours
=============  ==========================================  ================================

A categorical distribution of a grid module counts as a list; a one-element list is fixed
and not shown to Optuna. The normal family (normal, qnormal, lognormal, qlognormal) is
unbounded, so Optuna samples its quantile ``u`` uniformly and
:meth:`Distribution.from_unit` maps it back: the prior stays the normal one. A condition's
replace list with several values is a categorical parameter named ``"<key>@<condition
index>"``, suggested only when the condition matches (define-by-run).

Optuna's random start-up draws give every multiple of ``q`` the same weight; hyperopt's
``round(uniform / q) * q`` gives the two end multiples half of it. The model-based trials
after the start-up ones are Optuna's to shape anyway.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hpsearch.errors import UsageError
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.points import same_value
from hpsearch.strategies.parameters import (
    Parameter,
    apply_drawn_conditions,
    drawn_condition_keys,
    ordered,
    parameters_of,
)

#: how close Optuna's unit number for the normal family comes to 0 and 1
UNIT_EPS = 1e-9
_NORMAL_FAMILY = ("normal", "qnormal", "lognormal", "qlognormal")


def to_optuna(parameter: Parameter) -> BaseDistribution:
    """The Optuna distribution of a parameter that is not fixed (see the table)."""
    if parameter.choices is not None:
        return CategoricalDistribution(list(range(len(parameter.choices))))
    dist = parameter.distribution
    assert dist is not None
    if dist.method in _NORMAL_FAMILY:
        return FloatDistribution(UNIT_EPS, 1.0 - UNIT_EPS)
    low, high = dist.bounds()
    if dist.method == "uniformint":
        return IntDistribution(int(low), int(high))
    if dist.method == "qloguniform":
        assert dist.q is not None
        return IntDistribution(round(low / dist.q), round(high / dist.q), log=True)
    return FloatDistribution(low, high, log=dist.is_log, step=dist.q)


def from_optuna(parameter: Parameter, raw: Any) -> Any:
    """The value a run gets for Optuna's value ``raw`` of ``parameter``."""
    if parameter.choices is not None:
        return parameter.choices[raw]
    dist = parameter.distribution
    assert dist is not None
    if dist.method in _NORMAL_FAMILY:
        return dist.from_unit(raw)
    if dist.method == "qloguniform":
        assert dist.q is not None
        raw = raw * dist.q
    return dist._rounded(raw)  # on the distribution's grid, typed as its values are


def to_raw(parameter: Parameter, value: Any) -> Any:
    """Optuna's value of ``value`` (a value of ``parameter``: :func:`hpsearch.spec.points.fit`
    said so), the inverse of :func:`from_optuna`."""
    if parameter.choices is not None:
        return next(i for i, c in enumerate(parameter.choices) if same_value(c, value))
    dist = parameter.distribution
    assert dist is not None
    if dist.method in _NORMAL_FAMILY:
        assert dist.mu is not None and dist.sigma is not None
        normal = value if dist.method in ("normal", "qnormal") else \
            math.log(value) / math.log(dist.base)
        u = NormalDist().cdf((normal - dist.mu) / dist.sigma)
        return min(max(u, UNIT_EPS), 1.0 - UNIT_EPS)
    if dist.method == "uniformint":
        return int(value)
    if dist.method == "qloguniform":
        assert dist.q is not None
        return round(value / dist.q)
    return float(value)


def condition_name(index: int, key: str) -> str:
    return f"{key}@{index}"


class OptunaSpace:
    """Parameters and conditions of a spec, named and distributed for Optuna."""

    def __init__(self, spec: SearchSpec) -> None:
        self._parameters = parameters_of(spec)
        self._conditions = spec.conditions
        self._keys = spec.config_keys()
        self._by_name = {p.name: p for p in self._parameters if not p.fixed}
        #: what every trial is asked first, in the spec's order
        self.base = {name: to_optuna(p) for name, p in self._by_name.items()}
        for i, key in drawn_condition_keys(spec.conditions):
            name = condition_name(i, key)
            if name in spec.parameters:
                raise UsageError(f"parameter {name!r} has the name hpsearch gives condition "
                                 f"{i}'s choice of {key!r}; rename the parameter")
            values = spec.conditions[i][1][key]
            self._by_name[name] = Parameter(name, choices=tuple(values))

    def distribution(self, name: str) -> BaseDistribution:
        """The Optuna distribution of the parameter Optuna calls ``name``."""
        return to_optuna(self._by_name[name])

    def config(self, trial: optuna.Trial) -> dict[str, Any]:
        """The run's configuration for an asked trial (whose ``base`` is suggested);
        conditions that match suggest their choices now."""
        raw = trial.params
        # a fixed parameter is not Optuna's: any u gives its one value
        base = {p.name: from_optuna(p, raw[p.name]) if p.name in self.base else p.from_unit(0.0)
                for p in self._parameters}

        def draw(i: int, key: str, values: list[Any]) -> Any:
            name = condition_name(i, key)
            return from_optuna(self._by_name[name],
                               trial.suggest_categorical(name, list(range(len(values)))))

        return ordered(apply_drawn_conditions(base, self._conditions, draw), self._keys)

    def raw(self, config: dict[str, Any]) -> dict[str, Any]:
        """Optuna's parameters of a configuration that fits the space (an initial point, a
        warm-start run): the ``base`` ones, and the choices of the conditions it matches."""
        params = {name: to_raw(self._by_name[name], config[name]) for name in self.base}

        def draw(i: int, key: str, values: list[Any]) -> Any:
            name = condition_name(i, key)
            params[name] = to_raw(self._by_name[name], config[key])
            return config[key]

        apply_drawn_conditions({p.name: config[p.name] for p in self._parameters},
                               self._conditions, draw)
        return params
