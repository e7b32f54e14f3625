"""A search's pruner as the search declares it: its name and its options, checked.

``pruner_options``: ``step`` (the keyword holding the step, default ``step``),
``min_resource`` (1), ``max_resource`` (asha: none, no last rung; hyperband: 81),
``reduction_factor`` (3), ``warmup_steps`` (median: 0), ``min_trials`` (median: 5). Every
algorithm works with every pruner; a search with several objectives takes none.

The pruners' rules are :mod:`hpsearch.engine.pruners`; a search declares one by name
(``pruner: asha``, ``_PRUNER = "asha"``) and the driver makes it with
:func:`hpsearch.engine.pruners.make_pruner`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpsearch.errors import UsageError

PRUNERS = ("none", "asha", "hyperband", "median")
#: every option and its default; None: "none" (asha's max_resource)
DEFAULTS: dict[str, Any] = {"step": "step", "min_resource": 1, "max_resource": None,
                            "reduction_factor": 3, "warmup_steps": 0, "min_trials": 5}
_HYPERBAND_MAX_RESOURCE = 81


@dataclass(frozen=True)
class PrunerSpec:
    """A pruner's name and its options, checked; ``options`` holds every option."""

    name: str = "none"
    options: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULTS))

    @property
    def step_key(self) -> str:
        return str(self.options["step"])

    @property
    def active(self) -> bool:
        return self.name != "none"


def parse_pruner(name: Any, options: Any, where: str) -> PrunerSpec:
    """A checked PrunerSpec; a bad name or option is a one-line UsageError."""
    name = "none" if name is None else name
    if name not in PRUNERS:
        raise UsageError(f"{where}: pruner {name!r} does not exist; use one of "
                         f"{', '.join(PRUNERS)}")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise UsageError(f"{where}: pruner_options must be a mapping such as "
                         "{min_resource: 1, reduction_factor: 3}")
    unknown = [k for k in options if k not in DEFAULTS]
    if unknown:
        raise UsageError(f"{where}: pruner option {unknown[0]!r} does not exist; use "
                         f"{', '.join(DEFAULTS)}")
    merged = {**DEFAULTS, **options}
    if name == "hyperband" and merged["max_resource"] is None:
        merged["max_resource"] = _HYPERBAND_MAX_RESOURCE
    if not (isinstance(merged["step"], str) and merged["step"]):
        raise UsageError(f"{where}: pruner option step must name a keyword, such as epoch")
    for key, low in (("min_resource", 0), ("reduction_factor", 1), ("warmup_steps", -1),
                     ("min_trials", 0)):
        value = merged[key]
        if not _number(value) or value <= low:
            raise UsageError(f"{where}: pruner option {key} must be a number > {low}, not "
                             f"{value!r}")
    top = merged["max_resource"]
    if top is not None and (not _number(top) or top < merged["min_resource"]):
        raise UsageError(f"{where}: pruner option max_resource must be a number >= "
                         f"min_resource ({merged['min_resource']}), not {top!r}")
    return PrunerSpec(name, merged)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)
