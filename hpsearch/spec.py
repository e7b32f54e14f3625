"""Load a grid module (hypnettorch's ``hpsearch_config_template.py`` format) into a SearchSpec.

A grid module defines::

    grid = {"lr": [1e-3, 1e-4], "use_bn": [False, True], "name": ['"example string"']}
    conditions = [({"use_bn": [True]}, {"lr": [1e-2]})]
    _SCRIPT_NAME = "train.py"                      # run in --run_cwd
    _SUMMARY_FILENAME = "performance_overview.txt"  # written by the sim in its out dir
    _SUMMARY_KEYWORDS = ["acc_test", "finished"]    # must contain "finished"
    _OUT_ARG = "out_dir"                            # optional, default "out_dir"
    _SUMMARY_PARSER_HANDLE = None                   # optional custom parser
    _PERFORMANCE_KEY = None                         # optional, default: first keyword
    _PERFORMANCE_SORT_ASC = False                   # optional
    _PERFORMANCE_EVAL_HANDLE = None                 # accepted, unused
    _ARGPARSE_HANDLE = None                         # accepted, unused

Every problem is a :class:`~hpsearch.errors.UsageError` naming the attribute and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from hpsearch.errors import UsageError

Condition = tuple[dict[str, list[Any]], dict[str, list[Any]]]


@dataclass(frozen=True)
class SearchSpec:
    grid: dict[str, list[Any]]
    conditions: list[Condition]
    script_name: str
    summary_filename: str
    summary_keywords: list[str]
    out_arg: str
    performance_key: str
    performance_sort_asc: bool
    summary_parser: Callable[..., dict[str, Any]] | None
    module_file: Path | None
    dropped_conditions: list[str] = field(default_factory=list)


def _import_grid_module(name: str, run_cwd: Path) -> ModuleType:
    """Import by file path (``x/y.py``) or by dotted name from the cwd or ``run_cwd``."""
    path = Path(name)
    try:
        if name.endswith(".py") or "/" in name:
            if not path.is_file():
                raise UsageError(f"grid module file {name} does not exist; pass an existing "
                                 ".py file or a dotted module name")
            mod_spec = importlib.util.spec_from_file_location("_hpsearch_grid_module", path)
            assert mod_spec is not None and mod_spec.loader is not None
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
            return module
        for folder in (str(run_cwd.resolve()), str(Path.cwd())):  # the cwd ends up first
            while folder in sys.path:
                sys.path.remove(folder)
            sys.path.insert(0, folder)
        return importlib.import_module(name)
    except UsageError:
        raise
    except ModuleNotFoundError as exc:
        raise UsageError(f"cannot import grid module {name!r} ({exc}); pass a dotted name "
                         "importable from the current directory or --run_cwd, or a path "
                         "to the .py file") from None
    except Exception as exc:  # the user's module raised while importing
        raise UsageError(f"grid module {name!r} failed while importing: "
                         f"{type(exc).__name__}: {exc}; fix the module") from None


def _check_value_lists(where: str, values: Any) -> dict[str, list[Any]]:
    if not isinstance(values, dict):
        raise UsageError(f"{where} must be a dict of name -> list of values, "
                         f"not {type(values).__name__}")
    for key, vals in values.items():
        if not isinstance(key, str) or not key:
            raise UsageError(f"{where} has a key {key!r} that is not a non-empty string")
        if not isinstance(vals, list):
            raise UsageError(f"{where}[{key!r}] must be a list of values, not "
                             f"{type(vals).__name__} (write [{vals!r}])")
        if not vals:
            raise UsageError(f"{where}[{key!r}] is an empty list; give at least one value "
                             "or remove the key")
    return values


def _check_conditions(raw: Any, grid: dict[str, list[Any]]) -> tuple[list[Condition], list[str]]:
    if not isinstance(raw, (list, tuple)):
        raise UsageError("conditions must be a list of (match_dict, replace_dict) tuples")
    kept: list[Condition] = []
    dropped: list[str] = []
    for i, cond in enumerate(raw):
        if not (isinstance(cond, (list, tuple)) and len(cond) == 2):
            raise UsageError(f"conditions[{i}] must be a (match_dict, replace_dict) tuple")
        match = _check_value_lists(f"conditions[{i}][0]", cond[0])
        replace = _check_value_lists(f"conditions[{i}][1]", cond[1])
        missing = [k for k in match if k not in grid]
        if missing:
            dropped.append(f"condition {i} can not be enforced: key {missing[0]!r} is not "
                           f"in the grid -- {cond!r}")
            continue
        kept.append((match, replace))
    return kept, dropped


def _load_grid_config(path: Path) -> dict[str, Any]:
    """hypnettorch's ``--grid_config``: a pickle holding ``grid`` and/or ``conditions``."""
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise UsageError(f"cannot read --grid_config {path}: {exc}; pass a pickle file "
                         "holding a dict with 'grid' and/or 'conditions'") from None
    if not isinstance(data, dict):
        raise UsageError(f"--grid_config {path} must hold a dict with 'grid' and/or "
                         "'conditions'")
    return data


def load_spec(grid_module: str, run_cwd: Path, grid_config: Path | None = None,
              check_script: bool = True) -> SearchSpec:
    """Import and validate a grid module; ``grid_config`` overrides grid/conditions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = _import_grid_module(grid_module, run_cwd)
    attrs = vars(module)
    overrides = _load_grid_config(grid_config) if grid_config is not None else {}

    if "grid" not in attrs and "grid" not in overrides:
        raise UsageError(f"grid module {grid_module!r} defines no 'grid'; add "
                         "grid = {'name': [values, ...]}")
    grid = _check_value_lists("grid", overrides.get("grid", attrs.get("grid")))
    if not grid:
        raise UsageError("grid is empty; add at least one name -> list of values")
    conditions, dropped = _check_conditions(
        overrides.get("conditions", attrs.get("conditions", [])), grid)

    def required_str(name: str) -> str:
        value = attrs.get(name)
        if not isinstance(value, str) or not value:
            raise UsageError(f"grid module {grid_module!r} must set {name} to a non-empty "
                             "string")
        return value

    script_name = required_str("_SCRIPT_NAME")
    summary_filename = required_str("_SUMMARY_FILENAME")
    keywords = attrs.get("_SUMMARY_KEYWORDS")
    if not (isinstance(keywords, (list, tuple)) and all(isinstance(k, str) for k in keywords)):
        raise UsageError("_SUMMARY_KEYWORDS must be a list of strings, e.g. "
                         "['acc_test', 'finished']")
    if "finished" not in keywords:
        raise UsageError("_SUMMARY_KEYWORDS must contain 'finished' (the sim writes "
                         "'finished 1' when done)")
    out_arg = attrs.get("_OUT_ARG") or "out_dir"
    if not isinstance(out_arg, str):
        raise UsageError("_OUT_ARG must be a string such as 'out_dir'")
    if out_arg in grid:
        raise UsageError(f"grid must not contain {out_arg!r}: hpsearch sets --{out_arg} "
                         "for every run")
    perf_key = attrs.get("_PERFORMANCE_KEY") or keywords[0]
    if perf_key not in keywords:
        raise UsageError(f"_PERFORMANCE_KEY {perf_key!r} is not among _SUMMARY_KEYWORDS "
                         f"{list(keywords)}; add it there or pick one of them")
    parser = attrs.get("_SUMMARY_PARSER_HANDLE")
    if parser is not None and not callable(parser):
        raise UsageError("_SUMMARY_PARSER_HANDLE must be a function or None")
    if check_script and not (run_cwd / script_name).is_file():
        raise UsageError(f"_SCRIPT_NAME {script_name!r} not found in --run_cwd "
                         f"{run_cwd}; set --run_cwd to the folder holding the script")
    module_file = getattr(module, "__file__", None)
    return SearchSpec(
        grid=grid, conditions=conditions, script_name=script_name,
        summary_filename=summary_filename, summary_keywords=list(keywords),
        out_arg=out_arg, performance_key=perf_key,
        performance_sort_asc=bool(attrs.get("_PERFORMANCE_SORT_ASC", False)),
        summary_parser=parser, module_file=Path(module_file) if module_file else None,
        dropped_conditions=dropped)
