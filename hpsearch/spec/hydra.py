"""Hydra apps as they are: parameters as Hydra overrides, the search space from the app's sweeper.

**Overrides** (``arg_format: hydra``). A run of a Hydra app gets its parameters as Hydra's
command-line overrides, each one argv word, then where Hydra writes its outputs::

    <python> my_app.py model.lr=0.01 optimizer=adam '+extra=1' hydra.run.dir=<run>/out
        hydra.job.chdir=False

A name is the config key as given (``model.lr``, dotted for a nested key); one the app's
primary config lacks gets ``+`` (Hydra refuses to set an absent key without it), when the
config is known (``hydra_config``, or ``from_hydra``); otherwise every override is plain
``key=value``. Values are written in Hydra's override grammar: ``true``/``false``/``null``,
numbers as Python spells them (``1e-05``, ``inf``), lists ``[1,2]``, mappings ``{a:1}``, and a
string bare when Hydra reads it back as that same string, else single-quoted (``'a b'``,
``'1'``, ``'it\\'s'``). ``hydra.run.dir`` is the run's output directory (where the app's
``.hydra/`` and its outputs go, and where hpsearch reads its summary file), and
``hydra.job.chdir=False`` keeps the app in ``--run_cwd``.

**The search space** (``from_hydra: conf/config.yaml``). An app configured for the
hydra-optuna-sweeper carries its search in ``hydra.sweeper``; it becomes the search file's
settings (:func:`sweeper_settings`), the overrides read with Hydra's own parser:

==============================  ===================================================
``hydra.sweeper.params``        hpsearch
==============================  ===================================================
``interval(a, b)``              ``uniform`` in [a, b]
``int(interval(a, b))``         ``uniformint`` in [a, b]
``tag(log, interval(a, b))``    ``loguniform`` (with ``int(...)``: integers, q = 1)
``choice(a, b, ...)``, ``a,b``  a list (categorical)
``range(a, b, step)``           the values a, a+step, ... up to b *included*, as the Optuna
                                sweeper draws them (Hydra's basic sweeper stops before b)
a single value                  that value in every run
==============================  ===================================================

``direction`` -> ``direction``, ``n_trials`` -> ``num_trials``, the sampler (its
``_target_``, or ``override hydra/sweeper/sampler: X`` in the defaults) -> ``algorithm``
(:data:`SAMPLERS`), its ``seed`` -> ``seed``. Anything the search file sets itself wins (a
parameter it names replaces the sweeper's of that name).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.spec.datafile import load_yaml
from hpsearch.spec.values import strip_wrapping_quotes

#: the override that names where Hydra writes (a run's output directory)
HYDRA_RUN_DIR = "hydra.run.dir="
#: the argument formats a script takes its parameters in
ARG_FORMATS = ("flags", "hydra")
#: the Optuna sweeper's samplers -> ours: ``(name in the defaults, class name, algorithm)``
SAMPLERS = (("tpe", "TPESampler", "tpe"), ("random", "RandomSampler", "random"),
            ("cmaes", "CmaEsSampler", "cmaes"), ("nsgaii", "NSGAIISampler", "nsga2"))
#: the most values a ``range(...)`` may stand for (it becomes a list)
MAX_RANGE_VALUES = 10000
#: a string Hydra reads back as itself without quotes
_BARE = re.compile(r"[A-Za-z_/][\w\-./]*")
#: bare words Hydra reads as something other than a string
_NOT_STRINGS = {"true", "false", "null", "nan", "inf"}
#: a run of backslashes before a quote or the end: doubled inside a quoted value
_BACKSLASHES = re.compile(r"(\\+)(?='|$)")


# -- overrides ------------------------------------------------------------------------
def override_value(value: Any) -> str:
    """``value`` in Hydra's override grammar (module docstring)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value) if not math.isinf(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    text = strip_wrapping_quotes(str(value))
    if _BARE.fullmatch(text) and text.lower() not in _NOT_STRINGS:
        return text
    return "'" + _BACKSLASHES.sub(r"\1\1", text).replace("'", "\\'") + "'"


@dataclass(frozen=True)
class HydraArgs:
    """How a run of a Hydra app gets its parameters. ``known``: the key paths of the app's
    composed primary config (dotted), None when the config is not known; ``opaque``: key
    paths under which any key counts as present (a config group whose file was not read)."""

    known: frozenset[str] | None = None
    opaque: frozenset[str] = frozenset()

    def present(self, name: str) -> bool:
        """Whether the app's config has key ``name`` (unknown config: assumed so)."""
        if self.known is None or name in self.known:
            return True
        parts = name.split(".")
        return any(".".join(parts[:i]) in self.opaque for i in range(1, len(parts)))

    def words(self, config: Mapping[str, Any]) -> list[str]:
        """The overrides of one configuration."""
        return [f"{'' if self.present(name) else '+'}{name}={override_value(value)}"
                for name, value in config.items()]

    @staticmethod
    def output_words(sim_out_dir: Path) -> list[str]:
        """Where Hydra writes (the run's output directory), the app staying in its cwd."""
        return [f"{HYDRA_RUN_DIR}{override_value(str(sim_out_dir))}", "hydra.job.chdir=False"]


def check_arg_format(value: Any, where: str) -> str:
    if value not in ARG_FORMATS:
        raise UsageError(f"{where} {value!r} is not an argument format; use "
                         f"{' or '.join(ARG_FORMATS)}")
    return str(value)


def hydra_args(config_file: Path | None) -> HydraArgs:
    """The override rules of an app whose primary config is ``config_file`` (None: unknown):
    its keys, and those of the configs its ``defaults`` list selects where they can be read."""
    if config_file is None:
        return HydraArgs()
    data = read_config(config_file)
    known: set[str] = set()
    opaque: set[str] = set()
    _paths(_without(data, "defaults", "hydra"), "", known)
    for group, package, option in _defaults(data):
        path = config_file.parent / (group or "") / f"{option}.yaml"
        if group is None and not path.is_file():
            return HydraArgs()  # a config merged at the top that we cannot read: keys unknown
        prefix = package.replace("/", ".") if package is not None else ""
        if prefix:
            known.add(prefix)
        if not isinstance(option, str) or not path.is_file():
            opaque.add(prefix)
            continue
        _paths(read_config(path), f"{prefix}." if prefix else "", known)
    return HydraArgs(frozenset(known), frozenset(opaque))


def read_config(path: Path) -> dict[str, Any]:
    """A Hydra config file's mapping; a missing or malformed one is a one-line UsageError."""
    if not path.is_file():
        raise UsageError(f"Hydra config {path} does not exist; pass the app's primary config "
                         "(e.g. conf/config.yaml, relative to the search file)")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), f"Hydra config {path}")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read Hydra config {path} ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"Hydra config {path} must hold a mapping, not {type(data).__name__}")
    return data


def _without(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def _paths(node: Any, prefix: str, into: set[str]) -> None:
    """Every key path of ``node`` (a mapping), dotted, into ``into``."""
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        into.add(f"{prefix}{key}")
        _paths(value, f"{prefix}{key}.", into)


def _defaults(data: Mapping[str, Any]) -> list[tuple[str | None, str | None, Any]]:
    """What a primary config's ``defaults`` list merges in: ``(group, package, option)``
    (``model/enc: small`` -> ``("model/enc", "model/enc", "small")``; ``group@pkg``: the
    package ``pkg``; a plain config name: ``(None, None, name)``, merged at the top).
    ``_self_``, ``hydra/...`` and ``override`` entries are left out: they add no keys."""
    chosen: list[tuple[str | None, str | None, Any]] = []
    for entry in data.get("defaults") or []:
        if isinstance(entry, str):
            if entry != "_self_":
                chosen.append((None, None, entry))
            continue
        if not isinstance(entry, Mapping):
            continue
        for key, option in entry.items():
            words = str(key).split()
            group, _, package = words[-1].partition("@")
            if words[0] != "override" and not group.startswith("hydra"):
                chosen.append((group, package or group, option))
    return chosen


# -- the sweeper's search space -------------------------------------------------------
def sweeper_settings(config_file: Path, where: str, given: Collection[str] = ()
                     ) -> dict[str, Any]:
    """The search-file settings an Optuna-sweeper config stands for (module docstring), but
    those in ``given`` (the search file sets them itself)."""
    data = read_config(config_file)
    sweeper = (data.get("hydra") or {}).get("sweeper") if isinstance(
        data.get("hydra"), Mapping) else None
    if not isinstance(sweeper, Mapping) or not isinstance(sweeper.get("params"), Mapping) \
            or not sweeper["params"]:
        raise UsageError(f"{where}: {config_file} has no hydra.sweeper.params (the Optuna "
                         "sweeper's search space); add it there, or give parameters: in the "
                         "search file and arg_format: hydra instead of from_hydra")
    settings: dict[str, Any] = {"parameters": {
        str(name): _parameter(str(name), raw, config_file) for name, raw in
        sweeper["params"].items()}}
    if "direction" in sweeper:
        settings["direction"] = sweeper["direction"]
    if sweeper.get("n_trials") is not None:
        settings["num_trials"] = sweeper["n_trials"]
    if "algorithm" not in given:
        settings["algorithm"], seed = _sampler(data, sweeper, config_file)
        if seed is not None:
            settings["seed"] = seed
    return {k: v for k, v in settings.items() if k not in given}


def _parameter(name: str, raw: Any, config_file: Path) -> Any:
    """One ``hydra.sweeper.params`` entry as a search-file parameter, read by Hydra's parser."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
        from hydra.errors import HydraException
    except ImportError:
        raise UsageError("from_hydra reads the sweeper's search space with Hydra's own parser, "
                         "which is not installed: pip install 'hpsearch[hydra]'") from None

    text = override_value(raw) if not isinstance(raw, str) else raw
    where = f"{config_file}: hydra.sweeper.params.{name}"
    try:
        override = OverridesParser.create().parse_overrides([f"{name}={text}"])[0]
    except HydraException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{where} = {text!r} is not a sweep Hydra reads ({first}); use "
                         "interval(a,b), tag(log, interval(a,b)), int(interval(a,b)), "
                         "choice(...), range(a,b,step) or a,b,c") from None
    value = override.value()
    if not override.is_sweep_override():
        return [value]
    if isinstance(value, ChoiceSweep):
        return list(value.list)
    if isinstance(value, IntervalSweep):
        return _interval(value, where)
    if isinstance(value, RangeSweep) and not value.shuffle:
        return _range(value, where)
    raise UsageError(f"{where} = {text!r}: the sweep {type(value).__name__} has no counterpart "
                     "here; use interval(a,b), tag(log, interval(a,b)), int(interval(a,b)), "
                     "choice(...), range(a,b,step) or a,b,c")


def _interval(value: Any, where: str) -> dict[str, Any]:
    unknown = sorted(set(value.tags) - {"log"})
    if unknown:
        raise UsageError(f"{where}: tag {', '.join(unknown)} means nothing to hpsearch; "
                         "only tag(log, interval(a,b)) is read")
    integer = isinstance(value.start, int) and isinstance(value.end, int)
    if "log" in value.tags:
        return {"method": "qloguniform", "low": value.start, "high": value.end, "q": 1} \
            if integer else {"method": "loguniform", "low": value.start, "high": value.end}
    return {"method": "uniformint" if integer else "uniform", "low": value.start,
            "high": value.end}


def _range(value: Any, where: str) -> Any:
    start, stop, step = value.start, value.stop, value.step
    if not step or (stop - start) / step < 0:
        raise UsageError(f"{where}: range({start}, {stop}, {step}) holds no value; fix its "
                         "bounds or step")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if all(isinstance(v, int) for v in (start, stop, step)) and step == 1:
        return {"method": "uniformint", "low": start, "high": stop}
    if count > MAX_RANGE_VALUES:
        raise UsageError(f"{where}: range({start}, {stop}, {step}) holds {count} values (at "
                         f"most {MAX_RANGE_VALUES}); use interval(a,b)")
    integer = all(isinstance(v, int) for v in (start, stop, step))
    return [start + i * step if integer else round(start + i * step, 12) for i in range(count)]


def _sampler(data: Mapping[str, Any], sweeper: Mapping[str, Any], config_file: Path
             ) -> tuple[str, int | None]:
    """Our algorithm for the sweeper's sampler (TPE when none is named) and its seed."""
    sampler = sweeper.get("sampler")
    seed = sampler.get("seed") if isinstance(sampler, Mapping) else None
    target = str(sampler.get("_target_", "")) if isinstance(sampler, Mapping) else ""
    name = target.rsplit(".", 1)[-1] if target else None
    for entry in data.get("defaults") or []:
        if isinstance(entry, Mapping):
            for key, option in entry.items():
                if str(key).split()[-1] == "hydra/sweeper/sampler" and name is None:
                    name = str(option)
    for word, class_name, algorithm in SAMPLERS:
        if name in (None, word, class_name):
            return algorithm, seed
    known = ", ".join(f"{word} ({class_name})" for word, class_name, _ in SAMPLERS)
    raise UsageError(f"{config_file}: the sweeper's sampler {name!r} has no counterpart here; "
                     f"use one of {known}, or set algorithm: in the search file")
