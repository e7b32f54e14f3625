"""What a search is: a :class:`SearchSpec`, loaded from a grid module or a search file.

A grid module (hypnettorch's ``hpsearch_config_template.py`` format, unchanged) defines::

    grid = {"lr": [1e-3, 1e-4], "use_bn": [False, True], "name": ['"example string"']}
    conditions = [({"use_bn": [True]}, {"lr": [1e-2]})]
    _SCRIPT_NAME = "train.py"                      # run in --run_cwd; may hold interpreter
                                                   # flags and leading words (see below)
    _SUMMARY_FILENAME = "performance_overview.txt"  # written by the sim in its out dir
    _SUMMARY_KEYWORDS = ["acc_test", "finished"]    # must contain "finished"
    _OUT_ARG = "out_dir"                            # optional, default "out_dir"
    _SUMMARY_PARSER_HANDLE = None                   # optional custom parser
    _PERFORMANCE_KEY = None                         # optional, default: first keyword
    _PERFORMANCE_SORT_ASC = False                   # optional; a bool
    _PERFORMANCE_EVAL_HANDLE = None                 # accepted, unused (a warning says so)
    _ARGPARSE_HANDLE = None                         # accepted, unused
    _ALGORITHM = "grid"                             # ours, optional: see hpsearch.strategies
    _NUM_TRIALS = 100                               # ours, optional: trials of a sampler
    _PRUNER = "asha"                                # ours, optional: see hpsearch.engine.pruners
    _PRUNER_OPTIONS = {"step": "epoch"}             # ours, optional
    _CONFIG_TEMPLATE = "model.yml"                  # ours, optional: each run gets a copy
                                                    # with grid keys like "optimizer:lr" set
                                                    # (relative to the module's folder; see
                                                    # hpsearch.spec.configfile)
    _CONFIG_ARG = "config"                          # ours, optional: --config=<the copy>
    _ALLOW_NEW_KEYS = False                         # ours, optional: key paths may be new
    _RESOURCES = [{"when": {"lr": [1e-2]}, "gpus": 2}]  # ours, optional: what each run
                                                    # needs (see hpsearch.spec.resources)
    _BUDGET = {"parameter": "epochs", "min": 1, "max": 27, "eta": 3}  # ours, optional:
                                                    # hyperband, bohb (hpsearch.spec.fidelity)
    _PBT = {"population": 8, "interval": 5, "parameter": "total_steps", "segments": 10}
                                                    # ours, optional: pbt
    _LAUNCHER = "torchrun"                          # ours, optional: how runs start on
                                                    # their nodes (hpsearch.runs.launchers)

A ``grid`` value may also be a distribution (``from hpsearch.space import loguniform``).
A search file (YAML or JSON) says the same in other words; see :mod:`hpsearch.spec.searchfile`.

``_SCRIPT_NAME`` is split like a shell would (it is the module's constant, never a grid
value): ``'-W ignore train_hae.py soft_block_mlp'`` runs ``<python> -W ignore train_hae.py
soft_block_mlp --out_dir=... --lr=...`` -- words before the script are interpreter flags,
the first word naming a file in ``--run_cwd`` is the script, the words after it lead the
arguments. ``-m package.module`` runs a module instead of a file. ``'train.py:my_objective'``
runs a Python function (see :mod:`hpsearch.spec.invocation`).

Every problem is a :class:`~hpsearch.errors.UsageError` naming the attribute and the fix.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import pickle
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, NoReturn

from hpsearch.errors import UsageError
from hpsearch.spec.constraints import Constraint
from hpsearch.spec.distributions import Condition, Distribution, ParameterValues
from hpsearch.spec.fidelity import (
    PBT_ALGORITHM,
    Budget,
    Pbt,
    check_schedule,
    parse_budget,
    parse_pbt,
)
from hpsearch.spec.hydra import check_arg_format
from hpsearch.spec.invocation import ScriptCommand, command_of
from hpsearch.spec.points import Forbid, WarmResult
from hpsearch.spec.pruning import PrunerSpec, parse_pruner
from hpsearch.spec.reserved import RESERVED_COLUMNS
from hpsearch.spec.resources import ResourceRules, parse_launcher, parse_resources
from hpsearch.spec.values import MAX_ARG_BYTES, check_argv_text, render_value, storable

ALGORITHMS = ("grid", "random", "qmc", "tpe", "cmaes", "gp", "nsga2", "external", "hyperband",
              "bohb", "pbt")
DIRECTIONS = ("minimize", "maximize")
@dataclass(frozen=True)
class SearchSpec:
    """Everything a search file or grid module says, validated.

    ``parameters`` keeps the declared order; a list is walked by the grid (and is a
    categorical choice for a sampler), a :class:`Distribution` is sampled, a one-element list
    is a fixed value. ``objectives`` and ``directions`` pair up; the first objective is the
    performance key the results are sorted by.
    """

    parameters: dict[str, ParameterValues]
    conditions: list[Condition]
    script_name: str
    command: ScriptCommand
    summary_filename: str
    summary_keywords: list[str]
    out_arg: str
    objectives: list[str]
    directions: list[str]
    summary_parser: Callable[..., dict[str, Any]] | None = None
    source_file: Path | None = None
    source_kind: str = "grid_module"  # or "search_file"
    algorithm: str = "grid"
    algorithm_options: dict[str, Any] = field(default_factory=dict)
    num_trials: int | None = None
    seed: int | None = None
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    #: ``algorithm: external``: the generator's command line, split into words, with
    #: iDDS's placeholders (see :mod:`hpsearch.strategies.external`), and its time limit
    generator: tuple[str, ...] | None = None
    generator_timeout: float = 600.0
    warnings: list[str] = field(default_factory=list)
    #: the search file's ``log_to``: tracking sinks every ended run is logged to
    log_to: tuple[str, ...] = ()
    #: ``budget`` (hyperband, bohb) and ``pbt`` settings (:mod:`hpsearch.spec.fidelity`)
    budget: Budget | None = None
    pbt: Pbt | None = None
    #: ``resources:`` (``_RESOURCES``): what each run needs, by its configuration
    resources: ResourceRules = field(default_factory=ResourceRules)
    #: ``launcher:`` (``_LAUNCHER``): how each run's command starts on its nodes
    #: (:data:`hpsearch.spec.resources.LAUNCHERS`; None: as it is)
    launcher: str | None = None
    #: ``initial_points`` (completed: :func:`hpsearch.spec.points.fit`), proposed first;
    #: ``forbid``: configurations never proposed; ``warm_start``: earlier search
    #: directories, whose runs :mod:`hpsearch.engine.warmstart` puts in ``warm_results``
    initial_points: tuple[dict[str, Any], ...] = ()
    forbid: tuple[Forbid, ...] = ()
    warm_start: tuple[str, ...] = ()
    warm_results: tuple[WarmResult, ...] = ()
    #: ``constraints``: bounds on metrics a run must keep to be feasible
    constraints: tuple[Constraint, ...] = ()
    #: ``rerun_best``: values the best configuration runs once more with, after the search
    rerun_best: dict[str, Any] | None = None
    #: the search file's ``preload: true``: a script's runs fork from a zygote (``--preload``)
    preload: bool = False

    @property
    def performance_key(self) -> str:
        return self.objectives[0]

    @property
    def performance_sort_asc(self) -> bool:
        return self.directions[0] == "minimize"

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def grid(self) -> dict[str, ParameterValues]:
        """The parameters, under hypnettorch's name for them."""
        return self.parameters

    def parameters_json(self) -> dict[str, Any]:
        """The parameters as JSON: a list of values, or a distribution's search-file
        mapping (``{"method": "loguniform", "low": 1e-05, "high": 0.1}``)."""
        return {name: values.to_json() if isinstance(values, Distribution)
                else [storable(v) for v in values] for name, values in self.parameters.items()}

    def config_keys(self) -> list[str]:
        """Parameter names, then names only conditions set, each once."""
        keys = list(self.parameters)
        for _match, replaced in self.conditions:
            keys.extend(k for k in replaced if k not in keys)
        return keys


# -- checks shared by grid modules and search files ---------------------------------------
def check_value_lists(where: str, values: Any, allow_distributions: bool = False
                      ) -> dict[str, ParameterValues]:
    if not isinstance(values, dict):
        raise UsageError(f"{where} must be a dict of name -> list of values, "
                         f"not {type(values).__name__}")
    for key, vals in values.items():
        if not isinstance(key, str) or not key:
            raise UsageError(f"{where} has a key {key!r} that is not a non-empty string")
        if allow_distributions and isinstance(vals, Distribution):
            continue
        if not isinstance(vals, list):
            raise UsageError(f"{where}[{key!r}] must be a list of values, not "
                             f"{type(vals).__name__} (write [{vals!r}])")
        if not vals:
            raise UsageError(f"{where}[{key!r}] is an empty list; give at least one value "
                             "or remove the key")
    return values


def check_conditions(raw: Any, parameters: dict[str, ParameterValues]
                     ) -> tuple[list[Condition], list[str]]:
    """Valid conditions, and a warning for each one naming a key the grid lacks."""
    if not isinstance(raw, (list, tuple)):
        raise UsageError("conditions must be a list of (match_dict, replace_dict) tuples")
    kept: list[Condition] = []
    dropped: list[str] = []
    for i, cond in enumerate(raw):
        if not (isinstance(cond, (list, tuple)) and len(cond) == 2):
            raise UsageError(f"conditions[{i}] must be a (match_dict, replace_dict) tuple")
        match = check_value_lists(f"conditions[{i}][0]", cond[0])
        replace = check_value_lists(f"conditions[{i}][1]", cond[1])
        missing = [k for k in match if k not in parameters]
        if missing:
            dropped.append(f"condition {i} can not be enforced: key {missing[0]!r} is not "
                           f"in the grid -- {cond!r}")
            continue
        kept.append((match, replace))  # type: ignore[arg-type]
    return kept, dropped


#: a parameter name: words of letters, digits, ``_`` and ``-`` (not leading), joined by ``.``
#: or ``:`` in a config key path (``lr``, ``optimizer.lr``, ``model:layers:0:units``)
_PARAMETER_NAME = re.compile(r"\w[\w-]*(?:[.:]\w[\w-]*)*")


def check_column_name(kind: str, name: str) -> None:
    """Refuse a parameter or metric named like a results column: its values would be lost."""
    if name in RESERVED_COLUMNS:
        raise UsageError(f"{kind} {name!r} has the name of a results column "
                         f"({', '.join(sorted(RESERVED_COLUMNS))}); rename it in the search "
                         "and in the sim")


def check_parameter_name(name: str) -> None:
    """Refuse a name that is no flag name or key path: ``out_dir=/x y`` would become the
    words ``--out_dir=/x y=<value>`` and set another flag."""
    check_argv_text(f"parameter name {name!r}", name)
    if not _PARAMETER_NAME.fullmatch(name):
        raise UsageError(f"parameter name {name!r} is not a flag name or key path: use "
                         "letters, digits, '_' and '-', with '.' or ':' between the keys of a "
                         "config key path (lr, optimizer.lr, model:layers:0); rename it in "
                         "the search and in the sim")
    check_column_name("parameter", name)


def check_metric_name(name: str) -> None:
    """Refuse a metric (summary keyword) that no summary line can carry as its first word,
    that names a path, or that is a results column."""
    if any(c.isspace() or not c.isprintable() or c in "/\\" for c in name) or not name:
        raise UsageError(f"metric {name!r} must be one word of printable characters without "
                         "'/' or '\\' (the first word of a summary line); rename it in the "
                         "search and in the sim")
    check_column_name("metric", name)


def check_summary_filename(name: str, what: str) -> None:
    """Refuse a summary file outside the run's own out dir: every run would read one file."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or not name.isprintable():
        raise UsageError(f"{what} {name!r} must name a file inside the run's out dir (a "
                         "relative path without '..', e.g. 'performance_overview.txt'); "
                         "otherwise every run reads the same file")


def check_names_and_values(parameters: dict[str, ParameterValues], conditions: list[Condition],
                           keywords: list[str], out_arg: str) -> None:
    """Refuse parameter and metric names that no command line or summary line can carry or
    that would overwrite a column or ``--<out_arg>``, and values that no command line can
    carry (NUL, lone surrogates, too long)."""
    for keyword in keywords:
        check_metric_name(keyword)
    names = list(parameters) + [k for _m, replaced in conditions for k in replaced]
    for name in names:
        if name == out_arg:
            raise UsageError(f"grid must not contain {out_arg!r}: hpsearch sets --{out_arg} "
                             "for every run")
        check_parameter_name(name)
        if name in keywords:
            raise UsageError(f"parameter {name!r} is also a summary keyword, so both would "
                             "fill one results column; rename one of them")
    longest = 0
    value_lists = [(k, v) for k, v in parameters.items() if isinstance(v, list)] + [
        item for _m, replaced in conditions for item in replaced.items()]
    for name, values in value_lists:
        widest = 0
        for value in values:
            text = render_value(value)
            check_argv_text(f"a value of parameter {name!r}", text)
            widest = max(widest, len(text.encode()))
        longest += widest + len(name) + 3
    if longest > 16 * MAX_ARG_BYTES:
        raise UsageError(f"the longest values of all parameters add up to {longest} bytes, "
                         "more than a command line holds; pass large values through a file")


def check_schedule_parameters(schedules: dict[str, Budget | Pbt | None],
                              parameters: dict[str, ParameterValues], keywords: list[str],
                              out_arg: str, declared: str) -> None:
    """The argument a ``budget`` or ``pbt`` (``{where it is set: settings}``) sets on every
    run is a name of its own: none of the ``parameters`` (named ``declared`` in the message:
    ``parameters``, ``grid``), nor a keyword or the output argument."""
    for where, schedule in schedules.items():
        if schedule is not None:
            if schedule.parameter in parameters:
                raise UsageError(f"{where}: {schedule.parameter!r} is set by the algorithm "
                                 f"(its budget); remove it from {declared}")
            check_names_and_values({schedule.parameter: [1]}, [], keywords, out_arg)


def check_directions(objectives: list[str], directions: list[str], keywords: list[str],
                     where: str) -> None:
    for objective in objectives:
        if objective not in keywords:
            raise UsageError(f"{where}: objective {objective!r} is not among the metrics "
                             f"{[k for k in keywords if k != 'finished']}; add it there or "
                             "pick one of them")
    for direction in directions:
        if direction not in DIRECTIONS:
            raise UsageError(f"{where}: direction {direction!r} must be minimize or maximize")
    if len(directions) != len(objectives):
        raise UsageError(f"{where}: {len(objectives)} objective(s) but {len(directions)} "
                         "direction(s); give one direction per objective")


def check_algorithm(algorithm: Any, where: str) -> str:
    if algorithm not in ALGORITHMS:
        raise UsageError(f"{where}: algorithm {algorithm!r} does not exist; use one of "
                         f"{', '.join(ALGORITHMS)}")
    return algorithm


# -- grid modules ---------------------------------------------------------------------------
def _import_grid_module(name: str, run_cwd: Path) -> ModuleType:
    """Import by file path (``x/y.py``) or by dotted name from the cwd or ``run_cwd``.

    Whatever the module raises while importing -- an exception, ``SystemExit`` (a module
    that calls ``parse_args()`` or ``sys.exit``), a call of ``os._exit``, any other
    ``BaseException`` but Ctrl-C --
    is a UsageError that quotes the last line the module printed. What a module that imports
    fine prints is passed on.
    """
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed), \
                _os_exit_refused():
            module = _import_module(name, run_cwd)
    except UsageError:
        raise
    except _ExitCalled as exc:
        raise UsageError(f"grid module {name!r} called os._exit({exc.code!r}) while "
                         f"importing{_said(printed)}; guard that code with if __name__ == "
                         "'__main__'") from None
    except ModuleNotFoundError as exc:
        raise UsageError(f"cannot import grid module {name!r} ({exc}); pass a dotted name "
                         "importable from the current directory or --run_cwd, or a path "
                         "to the .py file") from None
    except SystemExit as exc:
        raise UsageError(f"grid module {name!r} called sys.exit({exc.code!r}) while "
                         f"importing{_said(printed)} (argument parsing at import time?); guard "
                         "that code with if __name__ == '__main__'") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the user's module raised while importing
        raise UsageError(f"grid module {name!r} failed while importing: "
                         f"{type(exc).__name__}: {exc}{_said(printed)}; fix the module") \
            from None
    sys.stderr.write(printed.getvalue())
    return module


class _ExitCalled(BaseException):
    """``os._exit`` called while a grid module imports or a ``--grid_config`` unpickles
    (see :func:`_os_exit_refused`)."""

    def __init__(self, code: Any) -> None:
        super().__init__(code)
        self.code = code


@contextlib.contextmanager
def _os_exit_refused() -> Iterator[None]:
    """While user code runs in this process at start (a grid module's import, unpickling a
    ``--grid_config``), ``os._exit`` raises instead of ending hpsearch silently.

    That code runs in this process (importing in a child first would cost the module's whole
    import time again), and ``os._exit`` skips every handler, so the function itself is
    swapped for the duration, in ``os`` and in ``posix`` where it comes from (a pickle names
    ``posix._exit``); ``from os import _exit`` in the module gets the swapped one too.
    """
    original = os._exit
    homes = [os, sys.modules[original.__module__]]

    def refuse(code: Any) -> NoReturn:
        raise _ExitCalled(code)

    for home in homes:
        home._exit = refuse  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for home in homes:
            home._exit = original  # type: ignore[attr-defined]


def _said(printed: io.StringIO) -> str:
    lines = [ln.strip() for ln in printed.getvalue().splitlines() if ln.strip()]
    return f" after printing {lines[-1][:200]!r}" if lines else ""


def _import_module(name: str, run_cwd: Path) -> ModuleType:
    path = Path(name)
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


def _load_grid_config(path: Path) -> dict[str, Any]:
    """hypnettorch's ``--grid_config``: a pickle holding ``grid`` and/or ``conditions``."""
    try:
        with open(path, "rb") as f, _os_exit_refused():
            data = pickle.load(f)
    except KeyboardInterrupt:
        raise
    except _ExitCalled as exc:
        raise UsageError(f"--grid_config {path} called os._exit({exc.code!r}) while it was "
                         "unpickled; pass a pickle file holding a dict with 'grid' and/or "
                         "'conditions'") from None
    except BaseException as exc:  # unpickling runs arbitrary code: anything can fail
        raise UsageError(f"cannot read --grid_config {path}: {type(exc).__name__}: {exc}; "
                         "pass a pickle file holding a dict with 'grid' and/or "
                         "'conditions'") from None
    if not isinstance(data, dict):
        raise UsageError(f"--grid_config {path} must hold a dict with 'grid' and/or "
                         "'conditions'")
    return data


def _bool_attr(attrs: dict[str, Any], name: str, default: bool) -> bool:
    value = attrs.get(name, default)
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise UsageError(f"{name} must be True or False, not {value!r}")


#: the command line's overrides (search-file names) -> the grid module's attributes
MODULE_OVERRIDES = {"script": "_SCRIPT_NAME", "config_template": "_CONFIG_TEMPLATE",
                    "config_arg": "_CONFIG_ARG", "allow_new_keys": "_ALLOW_NEW_KEYS",
                    "arg_format": "_ARG_FORMAT", "hydra_config": "_HYDRA_CONFIG"}


def load_spec(grid_module: str, run_cwd: Path, grid_config: Path | None = None,
              check_script: bool = True, overrides: dict[str, Any] | None = None
              ) -> SearchSpec:
    """Import and validate a grid module; ``grid_config`` overrides grid/conditions, and
    ``overrides`` (``{"script": ..., "config_template": <absolute path>, ...}``, see
    :data:`MODULE_OVERRIDES`) the module's attributes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = _import_grid_module(grid_module, run_cwd)
    attrs = {**vars(module), **{MODULE_OVERRIDES[k]: v for k, v in (overrides or {}).items()}}
    overrides = _load_grid_config(grid_config) if grid_config is not None else {}

    if "grid" not in attrs and "grid" not in overrides:
        raise UsageError(f"grid module {grid_module!r} defines no 'grid'; add "
                         "grid = {'name': [values, ...]}")
    grid = check_value_lists("grid", overrides.get("grid", attrs.get("grid")),
                             allow_distributions=True)
    grid = {name: list(values.categories or ()) if isinstance(values, Distribution)
            and values.is_categorical else values for name, values in grid.items()}
    if not grid:
        raise UsageError("grid is empty; add at least one name -> list of values")
    conditions, dropped = check_conditions(
        overrides.get("conditions", attrs.get("conditions", [])), grid)

    def required_str(name: str) -> str:
        value = attrs.get(name)
        if not isinstance(value, str) or not value:
            raise UsageError(f"grid module {grid_module!r} must set {name} to a non-empty "
                             "string")
        return value

    script_name = required_str("_SCRIPT_NAME")
    summary_filename = required_str("_SUMMARY_FILENAME")
    check_summary_filename(summary_filename, "_SUMMARY_FILENAME")
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
    check_names_and_values(grid, conditions, list(keywords), out_arg)
    perf_key = attrs.get("_PERFORMANCE_KEY") or keywords[0]
    if perf_key not in keywords:
        raise UsageError(f"_PERFORMANCE_KEY {perf_key!r} is not among _SUMMARY_KEYWORDS "
                         f"{list(keywords)}; add it there or pick one of them")
    ascending = _bool_attr(attrs, "_PERFORMANCE_SORT_ASC", False)
    parser = attrs.get("_SUMMARY_PARSER_HANDLE")
    if parser is not None and not callable(parser):
        raise UsageError("_SUMMARY_PARSER_HANDLE must be a function or None")
    notes = list(dropped)
    if attrs.get("_PERFORMANCE_EVAL_HANDLE") is not None:
        notes.append("_PERFORMANCE_EVAL_HANDLE is accepted but not used: hpsearch judges a "
                     "run by 'finished 1' and sorts by _PERFORMANCE_KEY")
    algorithm = check_algorithm(attrs.get("_ALGORITHM", "grid"), "_ALGORITHM")
    num_trials = attrs.get("_NUM_TRIALS")
    if num_trials is not None and (not isinstance(num_trials, int) or isinstance(
            num_trials, bool) or num_trials < 1):
        raise UsageError(f"_NUM_TRIALS must be a whole number >= 1, not {num_trials!r}")
    budget = None if attrs.get("_BUDGET") is None else parse_budget(attrs["_BUDGET"], "_BUDGET")
    pbt = None if attrs.get("_PBT") is None else parse_pbt(attrs["_PBT"], "_PBT")
    check_schedule_parameters({"_BUDGET": budget, "_PBT": pbt}, grid, list(keywords), out_arg,
                              "grid")
    module_file = getattr(module, "__file__", None)
    template = attrs.get("_CONFIG_TEMPLATE")
    if template is not None and not (isinstance(template, (str, Path)) and str(template)):
        raise UsageError("_CONFIG_TEMPLATE must be a file name such as 'model.yml'")
    config_arg = attrs.get("_CONFIG_ARG", "config")
    if not isinstance(config_arg, str):
        raise UsageError("_CONFIG_ARG must be a flag name such as 'config'")
    here = Path(module_file).parent if module_file else Path.cwd()
    arg_format = check_arg_format(attrs.get("_ARG_FORMAT", "flags"), "_ARG_FORMAT")
    hydra_config = attrs.get("_HYDRA_CONFIG")
    if hydra_config is not None and not (isinstance(hydra_config, (str, Path)) and
                                         str(hydra_config)):
        raise UsageError("_HYDRA_CONFIG must be a file name such as 'conf/config.yaml'")
    command = command_of(script_name, run_cwd, check_script, "_SCRIPT_NAME", summary_filename,
                         grid, conditions, here / template if template else None, config_arg,
                         _bool_attr(attrs, "_ALLOW_NEW_KEYS", False), arg_format,
                         here / hydra_config if hydra_config else None)
    spec = SearchSpec(
        parameters=grid, conditions=conditions, script_name=script_name,
        command=command, summary_filename=summary_filename, summary_keywords=list(keywords),
        out_arg=out_arg, objectives=[perf_key],
        directions=["minimize" if ascending else "maximize"], summary_parser=parser,
        source_file=Path(module_file) if module_file else None, source_kind="grid_module",
        algorithm=algorithm, num_trials=num_trials, warnings=notes,
        pruner=parse_pruner(attrs.get("_PRUNER"), attrs.get("_PRUNER_OPTIONS"), "_PRUNER"),
        budget=budget, pbt=pbt)
    return replace(spec, resources=parse_resources(attrs.get("_RESOURCES"), "_RESOURCES",
                                                   spec.config_keys()),
                   launcher=parse_launcher(attrs.get("_LAUNCHER"), "_LAUNCHER"))


#: algorithms that optimise one objective only (a generator sees the first one: iDDS's loss)
SINGLE_OBJECTIVE = ("cmaes", "gp", "external", "hyperband", "bohb", "pbt")


def with_pruner(spec: SearchSpec, name: str | None) -> SearchSpec:
    """``spec`` with the command line's ``--pruner`` (None: keep the file's)."""
    if name is None:
        return spec
    options = dict(spec.pruner.options)
    if name != spec.pruner.name and spec.pruner.name == "asha":
        options["max_resource"] = None  # asha's default "none" is no value for hyperband
    return replace(spec, pruner=parse_pruner(name, options, "--pruner"))


#: algorithms that learn from results but are not told a run broke a constraint (gp could
#: be, but its Gaussian process of a violation cannot take a run without the metric)
CONSTRAINTS_IGNORED = ("cmaes", "gp", "external", "hyperband", "bohb", "pbt")
#: algorithms that propose by their own schedule: no initial points, warm results or forbid
SCHEDULED = ("hyperband", "bohb", "pbt")


def _check_seeding(spec: SearchSpec, algorithm: str, trials: int | None) -> None:
    """``initial_points`` and ``warm_start`` are for the samplers (the grid walks every
    configuration anyway); ``forbid`` for the samplers and the grid (none of them for
    :data:`SCHEDULED`); ``constraints`` for all but :data:`CONSTRAINTS_IGNORED` (those learn
    from results without them; random, qmc and grid only rank the results)."""
    seeding = [k for k, v in (("initial_points", spec.initial_points),
                              ("warm_start", spec.warm_start)) if v]
    if seeding and algorithm == "grid":
        raise UsageError(f"{seeding[0]} is for the samplers: the grid walks every "
                         "configuration in its own order; pick random, qmc, tpe, cmaes, gp or "
                         f"nsga2, or drop {seeding[0]}")
    if spec.constraints and algorithm in CONSTRAINTS_IGNORED:
        raise UsageError(f"algorithm {algorithm} cannot take constraints (it would learn from "
                         "runs that break them as from any other); use tpe or nsga2, or "
                         "drop constraints")
    if spec.rerun_best is not None and spec.multi_objective:
        raise UsageError(f"rerun_best runs the best configuration again, but this search has "
                         f"{len(spec.objectives)} objectives (no one best); keep one objective "
                         "or drop rerun_best")
    if trials is not None and len(spec.initial_points) > trials:
        raise UsageError(f"{len(spec.initial_points)} initial_points but {trials} trials; "
                         "raise num_trials (it counts the initial points) or drop points")
    if algorithm in SCHEDULED and (seeding or spec.forbid):
        raise UsageError(f"{(seeding or ['forbid'])[0]} is not used by algorithm {algorithm}, "
                         "which draws and promotes by its own schedule; drop it or pick a "
                         "sampler")
    if algorithm == "external" and (seeding or spec.forbid):
        raise UsageError(f"{(seeding or ['forbid'])[0]} is not passed to an external "
                         "generator; drop it or pick another algorithm")


def resolve_algorithm(spec: SearchSpec, algorithm: str | None, num_trials: int | None,
                      seed: int | None) -> SearchSpec:
    """``spec`` with the command line's ``--algorithm``, ``--num_searches`` and an explicit
    ``--random_seed`` applied (None: keep), checked as a whole (one-line UsageError).

    A sampler needs a trial count; ``grid`` walks lists only; ``cmaes`` and ``gp`` take one
    objective; ``algorithm_options`` are for Optuna's samplers.
    """
    notes = list(spec.warnings)
    options = dict(spec.algorithm_options)
    if algorithm is not None and algorithm != spec.algorithm and options:
        notes.append(f"--algorithm={algorithm} replaces the file's {spec.algorithm}: its "
                     f"algorithm_options ({', '.join(options)}) are not used")
        options = {}
    algorithm = check_algorithm(algorithm if algorithm is not None else spec.algorithm,
                                "--algorithm")
    trials = num_trials if num_trials is not None else spec.num_trials
    samplers = [a for a in ALGORITHMS if a != "grid"]
    check_schedule(algorithm, spec.budget, spec.pbt, bool(spec.conditions))
    if algorithm == "grid":
        for name, values in spec.parameters.items():
            if isinstance(values, Distribution):
                raise UsageError(f"algorithm grid cannot walk parameter {name!r} "
                                 f"({values.describe()}); give it a list of values or pick "
                                 f"a sampler: {', '.join(samplers)}")
    elif algorithm == PBT_ALGORITHM and spec.pbt is not None:
        trials = spec.pbt.population * spec.pbt.segments  # a run per member and segment
    elif trials is None:
        raise UsageError(f"algorithm {algorithm} needs a number of trials; set num_trials "
                         "in the search file (_NUM_TRIALS in a grid module) or pass "
                         "--num_searches=N")
    if spec.multi_objective and algorithm in SINGLE_OBJECTIVE:
        several = [a for a in ALGORITHMS if a not in SINGLE_OBJECTIVE]
        raise UsageError(f"algorithm {algorithm} optimises one objective, not "
                         f"{len(spec.objectives)}; use one of {', '.join(several)} for "
                         "several")
    if options and algorithm in ("grid", "random", "qmc", "external", "hyperband", "bohb",
                                   "pbt"):
        raise UsageError(f"algorithm {algorithm} takes no algorithm_options (they are for "
                         "tpe, cmaes, gp, nsga2); remove them")
    if (algorithm == "external") != (spec.generator is not None):
        raise UsageError("algorithm external needs a generator command (generator: in the "
                         "search file)" if algorithm == "external" else
                         f"generator is for algorithm external, not {algorithm}; remove "
                         "generator or set algorithm: external")
    _check_seeding(spec, algorithm, trials)
    if spec.multi_objective and spec.pruner.active:
        raise UsageError(f"pruner {spec.pruner.name} stops runs by one objective, but this "
                         f"search has {len(spec.objectives)}; drop the pruner or keep one "
                         "objective")
    return replace(spec, algorithm=algorithm, num_trials=trials, algorithm_options=options,
                   seed=seed if seed is not None else spec.seed, warnings=notes)
