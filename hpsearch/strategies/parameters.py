"""What a sampler chooses: the spec's parameters and conditions, as choices and draws.

Shared by the random, quasi-random and Optuna strategies, so that all of them read a
search space the same way:

* a list (or a categorical distribution) is a choice among its values; a one-element list
  is a fixed value and is never drawn;
* any other :class:`~hpsearch.spec.distributions.Distribution` is drawn from;
* conditions apply after the base parameters are drawn, in order, as hypnettorch's grid
  applies them (:func:`.gridspace.apply_conditions`), except that a matching condition
  sets each replaced key to ONE value drawn uniformly from its replace list instead of
  fanning out to every combination. A replace list of one value simply sets it, so a
  condition whose replace lists all hold one value is deterministic::

      conditions = [({"optimizer": ["sgd"]}, {"momentum": [0.0, 0.9], "nesterov": [True]})]
      # a draw with optimizer=sgd gets momentum 0.0 or 0.9 (one of them) and nesterov=True

The configuration handed out lists the parameters in the spec's order, then the keys only
conditions set (:meth:`SearchSpec.config_keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hpsearch.spec.distributions import Condition, Distribution, ParameterValues
from hpsearch.spec.gridmodule import SearchSpec


@dataclass(frozen=True)
class Parameter:
    """One parameter: ``choices`` to pick among, or a ``distribution`` to draw from."""

    name: str
    choices: tuple[Any, ...] | None = None
    distribution: Distribution | None = None

    @property
    def fixed(self) -> bool:
        return self.choices is not None and len(self.choices) == 1

    def from_unit(self, u: float) -> Any:
        """The value at unit number ``u`` in [0, 1): choice ``floor(u * len)`` or a quantile."""
        if self.choices is not None:
            return pick(self.choices, u)
        assert self.distribution is not None
        return self.distribution.from_unit(u)


def pick(values: tuple[Any, ...] | list[Any], u: float) -> Any:
    """``values[floor(u * len(values))]`` for ``u`` in [0, 1)."""
    return values[min(int(u * len(values)), len(values) - 1)]


def as_parameter(name: str, values: ParameterValues) -> Parameter:
    if isinstance(values, Distribution):
        if values.is_categorical:
            assert values.categories is not None
            return Parameter(name, choices=tuple(values.categories))
        return Parameter(name, distribution=values)
    return Parameter(name, choices=tuple(values))


def parameters_of(spec: SearchSpec) -> list[Parameter]:
    return [as_parameter(name, values) for name, values in spec.parameters.items()]


def drawn_condition_keys(conditions: list[Condition]) -> list[tuple[int, str]]:
    """``(condition index, key)`` of every replace list with more than one value."""
    return [(i, key) for i, (_match, replace) in enumerate(conditions)
            for key, values in replace.items() if len(values) > 1]


def apply_drawn_conditions(config: dict[str, Any], conditions: list[Condition],
                           draw: Callable[[int, str, list[Any]], Any]) -> dict[str, Any]:
    """``config`` after every condition in order; ``draw(i, key, values)`` picks one value
    of a replace list with several (see the module docstring)."""
    config = dict(config)
    for i, (match, replace) in enumerate(conditions):
        if all(k in config and config[k] in allowed for k, allowed in match.items()):
            for key, values in replace.items():
                config[key] = values[0] if len(values) == 1 else draw(i, key, values)
    return config


def ordered(config: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """``config`` with its keys in ``keys``' order (the spec's :meth:`config_keys`)."""
    return {k: config[k] for k in keys if k in config}
