"""A search's multi-fidelity settings: ``budget`` (hyperband, bohb) and ``pbt``::

    algorithm: bohb                   # or hyperband
    budget: {parameter: epochs, min: 1, max: 27, eta: 3}

    algorithm: pbt
    pbt: {population: 8, interval: 5, parameter: total_steps, segments: 10,
          quantile: 0.25, resample_probability: 0.25, perturb: [0.8, 1.2]}

``parameter`` names the argument the strategy sets on every run (``--epochs=9``,
``--total_steps=15``): it is not one of ``parameters``. A budget's runs get ``min * eta**k``
(whole numbers when ``min`` and ``max`` are); a PBT segment ``k`` (0, 1, ...) gets
``interval * (k + 1)``, the steps its member has trained at its end. ``quantile``,
``resample_probability`` and ``perturb`` have the defaults shown. A grid module says the
same as Python, ``_BUDGET = {"parameter": "epochs", "min": 1, "max": 27, "eta": 3}`` and
``_PBT = {"population": 8, ...}``. Every problem is one :class:`~hpsearch.errors.UsageError`
line naming it and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hpsearch.errors import UsageError

#: the algorithms that need ``budget``, and the one that needs ``pbt``
BUDGET_ALGORITHMS = ("hyperband", "bohb")
PBT_ALGORITHM = "pbt"
BUDGET_EXAMPLE = "budget: {parameter: epochs, min: 1, max: 27, eta: 3}"
PBT_EXAMPLE = "pbt: {population: 8, interval: 5, parameter: total_steps, segments: 10}"


@dataclass(frozen=True)
class Budget:
    """``budget``: each run gets a budget in ``[low, high]`` as ``parameter``; ``eta`` is
    the factor between two rungs (and the share of a rung promoted, ``1/eta``)."""

    parameter: str
    low: float
    high: float
    eta: float

    @property
    def whole(self) -> bool:
        """Budgets are whole numbers (``min`` and ``max`` both are)."""
        return float(self.low).is_integer() and float(self.high).is_integer()

    @property
    def s_max(self) -> int:
        """The most rungs above the first: ``floor(log_eta(max / min))``."""
        return int(math.floor(math.log(self.high / self.low) / math.log(self.eta) + 1e-9))

    def at(self, rung: int, s: int) -> float | int:
        """The budget of rung ``rung`` of a bracket with ``s`` rungs above its first:
        ``max * eta**(rung - s)``, rounded to a whole number when budgets are."""
        value = self.high * self.eta ** (rung - s)
        return max(1, round(value)) if self.whole else value


@dataclass(frozen=True)
class Pbt:
    """``pbt``: ``population`` members, trained in ``segments`` runs of ``interval``
    steps each; see :mod:`hpsearch.strategies.pbt`."""

    population: int
    interval: int
    parameter: str
    segments: int
    quantile: float = 0.25
    resample_probability: float = 0.25
    perturb: tuple[float, ...] = (0.8, 1.2)


def _number(where: str, raw: dict[str, Any], key: str, ok: Any, what: str,
            default: Any = None) -> Any:
    value = raw.get(key, default)
    if value is None:
        raise UsageError(f"{where} sets no {key}; add {key}: <{what}>")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise UsageError(f"{where}: {key} must be {what}, not {value!r}")
    return value


def _mapping(where: str, raw: Any, keys: tuple[str, ...], example: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise UsageError(f"{where} must be a mapping such as {{{example.split('{', 1)[1]}, "
                         f"not {raw!r}")
    unknown = [str(k) for k in raw if k not in keys]
    if unknown:
        raise UsageError(f"{where}: unknown key {', '.join(map(repr, unknown))}; valid keys "
                         f"are {', '.join(keys)}")
    return raw


def _parameter_name(where: str, raw: dict[str, Any]) -> str:
    name = raw.get("parameter")
    if not isinstance(name, str) or not name.isidentifier():
        raise UsageError(f"{where}: parameter must name the argument the runs get (such as "
                         f"epochs), not {name!r}")
    return name


def parse_budget(raw: Any, where: str) -> Budget:
    """``budget`` (see the module docstring)."""
    raw = _mapping(where, raw, ("parameter", "min", "max", "eta"), BUDGET_EXAMPLE)
    name = _parameter_name(where, raw)
    low = _number(where, raw, "min", lambda v: 0 < v < math.inf, "a number > 0")
    high = _number(where, raw, "max", lambda v: low <= v < math.inf, f"a number >= min ({low})")
    eta = _number(where, raw, "eta", lambda v: 1 < v < math.inf, "a number > 1 (3 is usual)")
    return Budget(name, low, high, eta)


def parse_pbt(raw: Any, where: str) -> Pbt:
    """``pbt`` (see the module docstring)."""
    raw = _mapping(where, raw, ("population", "interval", "parameter", "segments",
                                "quantile", "resample_probability", "perturb"), PBT_EXAMPLE)
    whole = "a whole number >= {}"
    population = _number(where, raw, "population", lambda v: isinstance(v, int) and v >= 2,
                         whole.format(2))
    interval = _number(where, raw, "interval", lambda v: isinstance(v, int) and v >= 1,
                       whole.format(1))
    segments = _number(where, raw, "segments", lambda v: isinstance(v, int) and v >= 1,
                       whole.format(1))
    name = _parameter_name(where, raw)
    quantile = _number(where, raw, "quantile", lambda v: 0 < v <= 0.5,
                       "a share in (0, 0.5]", 0.25)
    resample = _number(where, raw, "resample_probability", lambda v: 0 <= v <= 1,
                       "a probability in [0, 1]", 0.25)
    perturb = raw.get("perturb", [0.8, 1.2])
    if not (isinstance(perturb, list) and perturb and all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < math.inf
            for f in perturb)):
        raise UsageError(f"{where}: perturb must be a list of factors > 0 such as [0.8, 1.2], "
                         f"not {perturb!r}")
    return Pbt(population, interval, name, segments, float(quantile), float(resample),
               tuple(float(f) for f in perturb))


def check_schedule(algorithm: str, budget: Budget | None, pbt: Pbt | None,
                   has_conditions: bool) -> None:
    """The settings fit ``algorithm``: ``budget`` exactly for hyperband and bohb, ``pbt``
    exactly for pbt (which takes no conditions)."""
    if algorithm in BUDGET_ALGORITHMS and budget is None:
        raise UsageError(f"algorithm {algorithm} needs a budget (budget: in a search file, "
                         f"_BUDGET in a grid module), e.g. {BUDGET_EXAMPLE}")
    if budget is not None and algorithm not in BUDGET_ALGORITHMS:
        raise UsageError(f"budget is for algorithm hyperband or bohb, not {algorithm}; "
                         "remove budget (_BUDGET) or set one of them")
    if algorithm == PBT_ALGORITHM and pbt is None:
        raise UsageError(f"algorithm pbt needs pbt settings (pbt: in a search file, _PBT in "
                         f"a grid module), e.g. {PBT_EXAMPLE}")
    if pbt is not None and algorithm != PBT_ALGORITHM:
        raise UsageError(f"pbt settings are for algorithm pbt, not {algorithm}; remove pbt "
                         "(_PBT) or set algorithm pbt")
    if pbt is not None and has_conditions:
        raise UsageError("algorithm pbt takes no conditions (it perturbs each parameter on "
                         "its own); drop conditions or pick another algorithm")
