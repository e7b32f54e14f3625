"""The search directory: what a search leaves on disk besides its runs and journal.

``<out_dir>/search.json`` describes the search so that ``collect``, ``status``, ``retry``
and ``report`` can read the directory without the grid module, and so that a command
pointing another search at it is refused::

    {"version": 2, "source_kind": "grid_module", "source": "sims.quadratic.hpsearch_config",
     "source_file": "/abs/.../hpsearch_config.py", "script_name": "quadratic.py",
     "summary_filename": "performance_overview.txt", "summary_keywords": ["loss", "finished"],
     "objectives": ["loss"], "directions": ["minimize"], "performance_key": "loss",
     "performance_sort_asc": true, "out_arg": "out_dir", "arg_format": "flags",
     "config_keys": ["x", "y"],
     "custom_parser": false, "algorithm": "grid", "parameters": {...}, "total": 96,
     "total_is_estimate": false, "run_cwd": "/abs/sims/quadratic", "backend": "local",
     "command": ["--grid_module=...", "--run_cwd=...", ...], "cwd": "/abs/where/it/started"}

A copy of the grid module (or search file) is kept next to it under its own file name
(``source_<name>`` when that name is one of the directory's own, e.g. ``search.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

from hpsearch.engine.journal import JOURNAL_FILE
from hpsearch.engine.lock import LOCK_PREFIX
from hpsearch.engine.results import TableLayout
from hpsearch.engine.tokens import REPORT_TOKEN_FILE, TOKEN_FILE
from hpsearch.errors import UsageError
from hpsearch.runs.files import write_atomic
from hpsearch.spec.constraints import parse_constraint
from hpsearch.spec.distributions import parse_distribution
from hpsearch.spec.gridmodule import SearchSpec

SEARCH_FILE = "search.json"
#: what may not change between the runs of one search directory (with the words for it)
IDENTITY = {
    "source": "grid module / search file", "script_name": "script",
    "summary_filename": "summary file", "summary_keywords": "summary keywords",
    "objectives": "objective", "directions": "direction", "out_arg": "out_arg",
    "algorithm": "algorithm", "arg_format": "arg_format", "schedule": "budget / pbt settings",
}
#: how many parameter changes a refusal names before "and N more"
MAX_NAMED_CHANGES = 3


def layout_of(meta: dict[str, Any]) -> TableLayout:
    return TableLayout(list(meta["config_keys"]), list(meta["summary_keywords"]),
                       meta["performance_key"], bool(meta["performance_sort_asc"]),
                       list(meta.get("objectives") or [meta["performance_key"]]),
                       list(meta.get("directions") or []),
                       tuple(parse_constraint(text, meta["summary_keywords"], "search.json")
                             for text in meta.get("constraints") or ()))


def layout_of_spec(spec: SearchSpec) -> TableLayout:
    return TableLayout(_config_columns(spec), spec.summary_keywords, spec.performance_key,
                       spec.performance_sort_asc, spec.objectives, spec.directions,
                       spec.constraints)


def schedule_of(spec: SearchSpec) -> dict[str, Any] | None:
    """A multi-fidelity search's settings as ``search.json`` keeps them: ``{"budget":
    {"parameter": "epochs", "low": 1, ...}}`` or ``{"pbt": {...}}`` (None: neither)."""
    if spec.budget is not None:
        return {"budget": dataclasses.asdict(spec.budget)}
    if spec.pbt is not None:
        return {"pbt": {**dataclasses.asdict(spec.pbt), "perturb": list(spec.pbt.perturb)}}
    return None


def _config_columns(spec: SearchSpec) -> list[str]:
    """The results' configuration columns: the parameters, then what the algorithm sets
    (a budget, a PBT segment's steps)."""
    schedule = spec.budget or spec.pbt
    return spec.config_keys() + ([schedule.parameter] if schedule is not None else [])


def describe(spec: SearchSpec, source: str, run_cwd: Path, backend: str,
             command: list[str], cwd: Path, total: int | None, estimate: bool) -> dict[str, Any]:
    return {"version": 2, "source_kind": spec.source_kind, "source": source,
            "source_file": str(spec.source_file) if spec.source_file else None,
            "script_name": spec.script_name, "summary_filename": spec.summary_filename,
            "summary_keywords": spec.summary_keywords, "objectives": spec.objectives,
            "directions": spec.directions, "performance_key": spec.performance_key,
            "performance_sort_asc": spec.performance_sort_asc, "out_arg": spec.out_arg,
            "arg_format": "hydra" if spec.command.hydra is not None else "flags",
            "config_keys": _config_columns(spec), "custom_parser": spec.summary_parser is not None,
            "algorithm": spec.algorithm, "parameters": spec.parameters_json(), "total": total,
            "schedule": schedule_of(spec),
            "total_is_estimate": estimate, "run_cwd": str(run_cwd), "backend": backend,
            "command": command, "cwd": str(cwd),
            **({"constraints": [c.text() for c in spec.constraints]} if spec.constraints
               else {})}


def check_same_search(old: dict[str, Any] | None, new: dict[str, Any], out_dir: Path) -> None:
    """Refuse (one line) to continue ``old`` with a command describing another search."""
    if old is None:
        return
    for key, words in IDENTITY.items():
        if key in old and old[key] != new[key]:
            raise UsageError(
                f"{out_dir} holds a search whose {words} is {_show(old[key])}, not "
                f"{_show(new[key])}: pass a new --out_dir for a new search, or --force_out_dir "
                "to continue this one with the changed setting")
    if new["algorithm"] != "grid" and old.get("parameters") not in (None, new["parameters"]):
        changed = parameter_changes(old["parameters"], new["parameters"])
        raise UsageError(f"{out_dir} holds a {new['algorithm']} search over other parameters "
                         f"({changed}): pass a new --out_dir, or --force_out_dir to continue it "
                         "with the changed parameters")


def parameter_changes(old: Any, new: dict[str, Any], named: int = MAX_NAMED_CHANGES) -> str:
    """What differs between two searches' parameters (``search.json`` spellings), the first
    ``named`` changes named: ``parameter lr: loguniform(0.0001, 0.1) -> loguniform(1e-05,
    0.1); added: momentum``, then ``and N more``."""
    if not isinstance(old, dict):
        return "the recorded parameters cannot be read"
    changed = [f"parameter {name}: {_values_text(name, old[name])} -> "
               f"{_values_text(name, new[name])}"
               for name in old if name in new and old[name] != new[name]]
    added = [name for name in new if name not in old]
    removed = [name for name in old if name not in new]
    parts, left = [], named
    for label, items in (("", changed), ("added: ", added), ("removed: ", removed)):
        shown = items[:left]
        left -= len(shown)
        if shown:
            parts += shown if not label else [label + ", ".join(shown)]
    more = len(changed) + len(added) + len(removed) - named
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _values_text(name: str, values: Any) -> str:
    """A parameter's values as the user wrote them: ``loguniform(1e-05, 0.1)`` for a
    distribution, ``[16, 32]`` for a list."""
    if isinstance(values, dict):
        try:
            return parse_distribution(name, values).describe()
        except (UsageError, TypeError, ValueError):  # not one this version reads: its JSON
            pass
    return json.dumps(values)


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def copy_name(source: Path) -> str:
    """The name the copy of a grid module / search file gets in the search directory: its
    own, unless that is a name of the directory's own files (``search.json``...)."""
    ours = {SEARCH_FILE, JOURNAL_FILE, "search_results.csv", "report.html", "runs", TOKEN_FILE,
            REPORT_TOKEN_FILE}
    return f"source_{source.name}" if source.name in ours or source.name.startswith(
        LOCK_PREFIX) else source.name


def write_description(out_dir: Path, meta: dict[str, Any], spec: SearchSpec) -> None:
    """Record the search and keep a copy of its grid module or search file."""
    write_atomic(out_dir / SEARCH_FILE, json.dumps(meta, indent=1) + "\n")
    if spec.source_file is not None and spec.source_file.is_file():
        shutil.copyfile(spec.source_file, out_dir / copy_name(spec.source_file))


def read_description(out_dir: Path) -> dict[str, Any] | None:
    try:
        with open(out_dir / SEARCH_FILE) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and "config_keys" in meta else None


def is_search_dir(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a search, or a driver is starting one there right now (its
    lock files are ``.hpsearch.*``)."""
    if (out_dir / SEARCH_FILE).exists() or (out_dir / JOURNAL_FILE).exists():
        return True
    return any(entry.name.startswith(LOCK_PREFIX) for entry in os.scandir(out_dir))
