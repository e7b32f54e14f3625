"""Points of a search space the search file names: ``initial_points``, ``forbid``, ``warm_start``.

::

    initial_points:                   # evaluated first, in this order (Optuna's
      - {lr: 0.001, optimizer: adam}  # enqueue_trial); each one must fit the space
      - {lr: 0.01, optimizer: sgd, momentum: 0.9}
    forbid:                           # never proposed: the condition syntax's match part,
      - {optimizer: [sgd], batch_size: [256, 512]}   # a configuration matching every key
    warm_start: [out/earlier_search]  # finished runs of earlier searches told first

A point *fits* the space when it names every parameter that is not fixed (a fixed one may
be left out: it gets its one value), each value lies in its list or distribution (within
the bounds, on the ``q`` grid, an int where the distribution yields ints), and each key only
a condition sets is set by a condition that matches the point, with a value of its replace
list (left out: the only value there is). :func:`fit` says why one does not, in a few words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.spec.distributions import Condition, Distribution, ParameterValues

#: how many configurations a sampler draws for one trial before it gives up on ``forbid``
FORBIDDEN_DRAWS = 100
#: a ``forbid`` entry: parameter name -> the values that match
Forbid = dict[str, list[Any]]


@dataclass(frozen=True)
class WarmResult:
    """A finished run of an earlier search (``warm_start``): its configuration, completed
    as :func:`fit` does, and one value per objective."""

    config: dict[str, Any]
    values: tuple[float, ...]


def fit(config: Mapping[str, Any], parameters: Mapping[str, ParameterValues],
        conditions: list[Condition], keys: list[str]) -> tuple[dict[str, Any] | None, str]:
    """``config`` completed (fixed values and one-value condition keys filled in, ``keys``'
    order) and "", or None and why it does not fit the space (e.g. ``lr=0.5 is above
    loguniform(1e-05, 0.1)``)."""
    full: dict[str, Any] = {}
    for name, values in parameters.items():
        if name not in config:
            if isinstance(values, list) and len(values) == 1:
                full[name] = values[0]
                continue
            return None, f"{name} is missing"
        problem = _value_problem(config[name], values)
        if problem:
            return None, f"{name}={config[name]!r} {problem}"
        full[name] = config[name]
    for match, replace in conditions:
        if all(k in full and full[k] in allowed for k, allowed in match.items()):
            for key, values in replace.items():
                if key in config and config[key] not in values:
                    return None, f"{key}={config[key]!r} is not among {values!r}"
                if key not in config and len(values) > 1:
                    return None, f"{key} is missing (one of {values!r})"
                full[key] = config[key] if key in config else values[0]
    extra = [k for k in config if k not in full]
    if extra:
        return None, f"{extra[0]} is not a parameter of the search (or no condition sets it)"
    return {k: full[k] for k in keys if k in full}, ""


def _value_problem(value: Any, values: ParameterValues) -> str:
    """Why ``value`` is not a value of ``values`` ("" when it is)."""
    if isinstance(values, list):
        return "" if any(same_value(value, v) for v in values) else f"is not among {values!r}"
    assert isinstance(values, Distribution)
    dist = values
    if dist.is_categorical:
        return "" if any(same_value(value, v) for v in dist.categories or ()) else \
            f"is not among {list(dist.categories or ())!r}"
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(
            value):
        return f"is not a finite number ({dist.describe()})"
    if dist.is_int and not float(value).is_integer():
        return f"is not a whole number ({dist.describe()})"
    if dist.is_bounded:
        low, high = dist.bounds()
        if value < low - 1e-12 * abs(low) or value > high + 1e-12 * abs(high):
            return f"is outside {dist.describe()}"
    elif dist.is_log and value <= 0:
        return f"is not above 0 ({dist.describe()})"
    if dist.q is not None and not math.isclose(dist._rounded(value), value, rel_tol=1e-9,
                                               abs_tol=1e-12):
        return f"is not a multiple of q={dist.q} ({dist.describe()})"
    return ""


def same_value(a: Any, b: Any) -> bool:
    """Equal and of one kind (``True`` is not ``1``)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def forbidden(config: Mapping[str, Any], forbid: list[Forbid]) -> bool:
    """``config`` matches every key of some ``forbid`` entry."""
    return any(all(k in config and any(same_value(config[k], v) for v in allowed)
                   for k, allowed in entry.items()) for entry in forbid)


def exhausted_note(trial: int) -> str:
    """The line a sampler leaves when ``forbid`` rejected :data:`FORBIDDEN_DRAWS` draws."""
    return (f"trial {trial}: {FORBIDDEN_DRAWS} configurations drawn in a row were all "
            "forbidden, so the search proposes no more; loosen forbid (or the parameters) "
            "and run the same command again to go on")


def parse_forbid(raw: Any, keys: list[str], where: str) -> list[Forbid]:
    """``forbid``: a list of mappings of parameter name -> list of values (one value: a
    list of it)."""
    if raw is None:
        return []
    example = "forbid: [{optimizer: [sgd], batch_size: [256]}]"
    if not isinstance(raw, list):
        raise UsageError(f"{where}: forbid must be a list of mappings, e.g. {example}")
    entries = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry:
            raise UsageError(f"{where}: forbid[{i}] must be a non-empty mapping of parameter "
                             f"-> values, e.g. {example}")
        unknown = [str(k) for k in entry if k not in keys]
        if unknown:
            raise UsageError(f"{where}: forbid[{i}] names {unknown[0]!r}, which is not a "
                             f"parameter of the search ({', '.join(keys)})")
        entries.append({k: v if isinstance(v, list) else [v] for k, v in entry.items()})
    return entries


def parse_initial_points(raw: Any, parameters: Mapping[str, ParameterValues],
                         conditions: list[Condition], keys: list[str], forbid: list[Forbid],
                         where: str) -> list[dict[str, Any]]:
    """``initial_points``: each configuration completed (:func:`fit`); one that does not
    fit, or is forbidden, is a one-line UsageError naming it."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise UsageError(f"{where}: initial_points must be a list of configurations, e.g. "
                         "initial_points: [{lr: 0.001, optimizer: adam}]")
    points = []
    for i, point in enumerate(raw):
        if not isinstance(point, dict):
            raise UsageError(f"{where}: initial_points[{i}] must be a mapping of parameter -> "
                             f"value, not {point!r}")
        config, why = fit(point, parameters, conditions, keys)
        if config is None:
            raise UsageError(f"{where}: initial_points[{i}] does not fit the search space: "
                             f"{why}; fix the point or the parameters")
        if forbidden(config, forbid):
            raise UsageError(f"{where}: initial_points[{i}] {point!r} is forbidden by forbid; "
                             "drop the point or the forbid entry")
        points.append(config)
    return points


def parse_warm_start(raw: Any, where: str) -> tuple[str, ...]:
    """``warm_start``: a search directory or a list of them (paths as given)."""
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not (isinstance(items, list) and items and all(isinstance(p, str) and p
                                                      for p in items)):
        raise UsageError(f"{where}: warm_start must be a search directory or a list of them, "
                         f"e.g. warm_start: [out/earlier_search], not {raw!r}")
    return tuple(items)
