"""A search file (YAML, or JSON) -> :class:`~hpsearch.spec.gridmodule.SearchSpec`.

::

    script: train.py                  # as _SCRIPT_NAME: flags, script, leading words;
                                      # train.py:my_objective runs a function
    summary_file: performance_overview.txt   # the default
    metrics: [val_loss, val_acc]      # summary keywords; 'finished' is implied
    objective: val_loss               # default: the first metric; a list: several objectives
    direction: minimize               # or maximize; a list: one per objective (default
                                      # minimize; one word applies to every objective)
    algorithm: tpe                    # grid | random | qmc | tpe | cmaes | gp | nsga2 |
                                      # external | hyperband | bohb | pbt (default: grid;
                                      # external when generator is set)
    budget: {parameter: epochs, min: 1, max: 27, eta: 3}   # hyperband, bohb; pbt: {...}
                                      # for pbt (see hpsearch.spec.fidelity)
    algorithm_options: {}             # handed to the sampler (n_startup_trials, ...)
    generator: python gen.py %IN %OUT # algorithm external: a command proposing points
    generator_timeout: 600            # seconds one generator call may take (600)
    num_trials: 100                   # trials of a sampler (not needed for grid)
    pruner: asha                      # none | asha | hyperband | median
                                      # (see hpsearch.engine.pruners)
    pruner_options: {step: epoch}     # step, min_resource, max_resource, reduction_factor, ...
    seed: 42
    out_arg: out_dir                  # the default
    config_template: model.yml        # optional: a copy per run with the nested keys set,
    config_arg: config                # passed as --config=<copy> (relative to this file;
    allow_new_keys: false             # see hpsearch.spec.configfile)
    arg_format: flags                 # or hydra: parameters as Hydra overrides
    hydra_config: conf/config.yaml    # the Hydra app's primary config (for '+new_key=')
    from_hydra: conf/config.yaml      # the search space of an Optuna-sweeper config
                                      # (see hpsearch.spec.hydra)
    parameters:
      lr:         {method: loguniform, low: 1.0e-5, high: 1.0e-1}
      width:      {method: qloguniform, low: 16, high: 1024, q: 16}
      batch_size: {method: categorical, categories: [32, 64, 128]}
      optimizer:  [adam, sgd]         # a list: categorical (grid-module style)
      epochs: 10                      # one value: passed to every run
      nested:     {method: uniform, dimension: {low: 0, high: 1}}   # hpogrid's spelling
    conditions:                       # grid-module semantics: [match, replace] pairs
      - [{optimizer: [sgd]}, {momentum: [0.0, 0.9]}]
    resources:                        # what each run needs; a list: first match wins
      - {when: {optimizer: sgd}, gpus: 2, mem: 64G}   # (see hpsearch.spec.resources)
      - {gpus: 1}
    launcher: torchrun                # start each run through torchrun (srun, mpirun: as
                                      # given; see hpsearch.runs.launchers)
    initial_points: [{lr: 0.001, optimizer: adam, ...}]   # run first (hpsearch.spec.points)
    forbid: [{optimizer: [sgd], batch_size: [128]}]       # never proposed
    warm_start: [out/earlier_search]  # their finished runs are told to the sampler first
    rerun_best: {save_model: true}    # after the search: the best configuration once more
    constraints: [memory_gb <= 16]    # on metrics: the best run is the best feasible one
                                      # (see hpsearch.spec.constraints)
    preload: true                     # fork a script's runs from a preloaded process

The methods are hpogrid's (:mod:`hpsearch.spec.distributions`); hpogrid's search space pastes in
unchanged under ``parameters``, in its YAML or its JSON spelling. A file named ``*.json``
is read as JSON, any other as YAML, where ``1e-5`` is a number as in JSON (plain YAML 1.1
would read it as text). In :attr:`SearchSpec.parameters` a categorical becomes a list and a
single value a one-element list; the other methods stay distributions.

Every problem is one :class:`~hpsearch.errors.UsageError` line naming it and the fix.
Whether the algorithm fits the parameters and has its ``num_trials`` is checked once the
command line had its say: :func:`hpsearch.spec.gridmodule.resolve_algorithm`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.spec.constraints import parse_constraints
from hpsearch.spec.datafile import load_json, load_yaml
from hpsearch.spec.distributions import parse_distribution
from hpsearch.spec.fidelity import parse_budget, parse_pbt
from hpsearch.spec.gridmodule import (
    SearchSpec,
    check_algorithm,
    check_conditions,
    check_directions,
    check_names_and_values,
    check_parameter_name,
    check_schedule_parameters,
    check_summary_filename,
    check_value_lists,
)
from hpsearch.spec.hydra import check_arg_format, sweeper_settings
from hpsearch.spec.invocation import command_of
from hpsearch.spec.points import parse_forbid, parse_initial_points, parse_warm_start
from hpsearch.spec.pruning import parse_pruner
from hpsearch.spec.resources import parse_launcher, parse_resources

#: the placeholders of an external generator's command line (:mod:`hpsearch.strategies.external`)
GENERATOR_PLACEHOLDER = re.compile(r"%(MAX_POINTS|NUM_POINTS|IN|OUT)\b")
SETTINGS = ("script", "summary_file", "metrics", "objective", "direction", "algorithm",
            "algorithm_options", "generator", "generator_timeout", "num_trials", "seed",
            "out_arg", "parameters", "conditions", "config_template", "config_arg",
            "allow_new_keys", "pruner", "pruner_options", "arg_format", "hydra_config",
            "from_hydra", "log_to", "budget", "pbt", "resources", "initial_points", "forbid",
            "warm_start", "constraints", "rerun_best", "preload", "launcher")
_REQUIRED = {"script": "script: train.py", "metrics": "metrics: [val_loss]",
             "parameters": "parameters: {lr: {method: loguniform, low: 1.0e-5, high: 0.1}}"}


def read_search_file(path: Path) -> Any:
    """The file's data; a missing, unreadable or malformed file is a UsageError (a key
    given twice and nesting too deep included: :mod:`hpsearch.spec.datafile`)."""
    if not path.is_file():
        raise UsageError(f"search file {path} does not exist; pass the path of a .yaml or "
                         ".json file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read search file {path} ({exc}); check its permissions "
                         "and that it is UTF-8 text") from None
    if path.suffix.lower() == ".json":
        return load_json(text, f"search file {path}")
    return load_yaml(text, f"search file {path}")


def _strings(where: str, value: Any) -> list[str]:
    """A string or a non-empty list of strings, as a list."""
    items = [value] if isinstance(value, str) else value
    if not (isinstance(items, list) and items and all(isinstance(v, str) and v
                                                      for v in items)):
        raise UsageError(f"{where} must be a name or a list of names, not {value!r}")
    return items


def _optional_text(where: str, data: dict[str, Any], key: str, example: str) -> str | None:
    value = data.get(key)
    if value is not None and not (isinstance(value, str) and value):
        raise UsageError(f"{where}: {key} must be a name such as {example!r}, not {value!r}")
    return value


def _count(where: str, value: Any, minimum: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"{where} must be a whole number >= {minimum}, not {value!r}")
    return value


def split_generator(raw: Any, where: str) -> tuple[str, ...]:
    """A ``generator`` setting (a command line, or a list of words) as argv words."""
    if isinstance(raw, str):
        try:
            words = shlex.split(raw)
        except ValueError as exc:
            raise UsageError(f"{where} {raw!r} cannot be split into words ({exc}); fix its "
                             "quoting") from None
    elif isinstance(raw, list) and all(isinstance(w, str) for w in raw):
        words = list(raw)
    else:
        raise UsageError(f"{where} must be a command line such as 'python gen.py %IN %OUT', "
                         f"not {raw!r}")
    if not words:
        raise UsageError(f"{where} is empty; give a command such as 'python gen.py %IN %OUT'")
    named = {m.group(1) for word in words for m in GENERATOR_PLACEHOLDER.finditer(word)}
    if "OUT" not in named:
        raise UsageError(f"{where} {shlex.join(words)!r} has no %OUT: the generator must be "
                         "told where to write its points")
    return tuple(words)


def _generator(where: str, data: dict[str, Any]) -> tuple[tuple[str, ...] | None, float]:
    """``generator`` (a command line, or a list of words) and ``generator_timeout``."""
    timeout = data.get("generator_timeout", 600.0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not (
            0 < timeout < float("inf")):
        raise UsageError(f"{where}: generator_timeout must be a number of seconds > 0, not "
                         f"{timeout!r}")
    raw = data.get("generator")
    if raw is None:
        return None, float(timeout)
    return split_generator(raw, f"{where}: generator"), float(timeout)


def _parameter(name: Any, raw: Any) -> Any:
    """One entry of ``parameters``: a list, a distribution, or one value."""
    if isinstance(raw, dict):
        dist = parse_distribution(str(name), raw)
        return list(dist.categories or ()) if dist.is_categorical else dist
    if isinstance(raw, list):
        return raw
    if raw is None:
        raise UsageError(f"parameter {name!r} has no value; give a value, a list of values "
                         "or a {method: ...} mapping")
    return [raw]


def _with_sweeper(data: dict[str, Any], where: str, here: Path) -> dict[str, Any]:
    """``data`` with what ``from_hydra``'s Optuna-sweeper config holds where ``data`` says
    nothing (:func:`hpsearch.spec.hydra.sweeper_settings`; a parameter of ``data`` replaces
    the sweeper's of that name): a Hydra app's arguments, its config, and one metric
    ``objective`` for one direction."""
    config = _optional_text(where, data, "from_hydra", "conf/config.yaml")
    assert config is not None
    settings = sweeper_settings(here / config, where, set(data) - {"parameters"})
    own = data.get("parameters")
    data = {**settings, **data, "parameters": {**settings["parameters"], **(
        own if isinstance(own, dict) else {})}}
    data.setdefault("arg_format", "hydra")
    data.setdefault("hydra_config", config)
    direction = data.get("direction", "minimize")
    if "metrics" not in data and isinstance(direction, list) and len(direction) > 1:
        raise UsageError(f"{where}: the sweeper has {len(direction)} directions; name the "
                         "summary's metrics, one per direction, e.g. metrics: [loss, cost]")
    data.setdefault("metrics", ["objective"])
    return data


def _rerun_best(where: str, raw: Any, out_arg: str) -> dict[str, Any] | None:
    """``rerun_best``: a mapping of parameter name -> the value the rerun gets."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise UsageError(f"{where}: rerun_best must be a mapping of name -> value, e.g. "
                         f"{{save_model: true}}, not {raw!r}")
    for name in raw:
        if name == out_arg:
            raise UsageError(f"{where}: rerun_best must not set {out_arg!r}: hpsearch sets "
                             f"--{out_arg} for every run")
        check_parameter_name(str(name))
    return dict(raw)


def load_search_file(path: Path, run_cwd: Path, check_script: bool = True) -> SearchSpec:
    """Read and validate a search file (module docstring)."""
    return spec_from_mapping(read_search_file(path), f"search file {path}", run_cwd,
                             check_script, source_file=path)


def spec_from_mapping(data: Any, where: str, run_cwd: Path, check_script: bool = True,
                      source_file: Path | None = None) -> SearchSpec:
    """A search file's settings, already read; every message starts with ``where``."""
    try:
        return _spec(data, where, run_cwd, check_script, source_file)
    except UsageError as exc:
        if str(exc).startswith(where):
            raise
        raise UsageError(f"{where}: {exc}") from None


def _spec(data: Any, where: str, run_cwd: Path, check_script: bool,
          source_file: Path | None) -> SearchSpec:
    if not isinstance(data, dict):
        raise UsageError(f"{where} must hold a mapping of settings ({', '.join(_REQUIRED)}, "
                         f"...), not {type(data).__name__}")
    unknown = [str(k) for k in data if k not in SETTINGS]
    if unknown:
        raise UsageError(f"{where}: unknown setting {', '.join(map(repr, unknown))}; valid "
                         f"settings are {', '.join(SETTINGS)}")
    here = source_file.parent if source_file is not None else Path.cwd()
    if data.get("from_hydra") is not None:
        data = _with_sweeper(data, where, here)
    for key, example in _REQUIRED.items():
        if key not in data:
            raise UsageError(f"{where} sets no {key!r}; add e.g. {example}")

    script = data["script"]
    if not isinstance(script, str) or not script:
        raise UsageError(f"{where}: script must be text such as 'train.py', not {script!r}")
    metrics = _strings(f"{where}: metrics", data["metrics"])
    keywords = metrics + ([] if "finished" in metrics else ["finished"])
    objectives = _strings(f"{where}: objective", data.get("objective", metrics[0]))
    direction = data.get("direction", "minimize")
    directions = [direction] * len(objectives) if isinstance(direction, str) else \
        _strings(f"{where}: direction", direction)
    check_directions(objectives, directions, keywords, where)

    summary_file = data.get("summary_file", "performance_overview.txt")
    out_arg = data.get("out_arg", "out_dir")
    for key, value in (("summary_file", summary_file), ("out_arg", out_arg)):
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where}: {key} must be non-empty text, not {value!r}")
    check_summary_filename(summary_file, f"{where}: summary_file")
    generator, generator_timeout = _generator(where, data)
    algorithm = check_algorithm(data.get("algorithm", "grid" if generator is None
                                         else "external"), where)
    options = data.get("algorithm_options") or {}
    if not isinstance(options, dict):
        raise UsageError(f"{where}: algorithm_options must be a mapping such as "
                         f"{{n_startup_trials: 10}}, not {options!r}")
    num_trials = _count(f"{where}: num_trials", data.get("num_trials"), 1)
    seed = _count(f"{where}: seed", data.get("seed"), 0)

    raw_parameters = data["parameters"]
    if not isinstance(raw_parameters, dict) or not raw_parameters:
        raise UsageError(f"{where}: parameters must be a non-empty mapping of name -> "
                         "values, e.g. {lr: {method: loguniform, low: 1.0e-5, high: 0.1}}")
    parameters = check_value_lists(
        "parameters", {name: _parameter(name, raw) for name, raw in raw_parameters.items()},
        allow_distributions=True)
    conditions, dropped = check_conditions(data.get("conditions") or [], parameters)
    check_names_and_values(parameters, conditions, keywords, out_arg)
    budget = parse_budget(data["budget"], f"{where}: budget") if "budget" in data else None
    pbt = parse_pbt(data["pbt"], f"{where}: pbt") if "pbt" in data else None
    check_schedule_parameters({f"{where}: budget": budget, f"{where}: pbt": pbt}, parameters,
                              keywords, out_arg, "parameters")
    keys = list(dict.fromkeys([*parameters, *(k for _m, r in conditions for k in r)]))
    forbid = parse_forbid(data.get("forbid"), keys, where)
    initial_points = parse_initial_points(data.get("initial_points"), parameters, conditions,
                                          keys, forbid, where)
    template = _optional_text(where, data, "config_template", "model.yml")
    config_arg = _optional_text(where, data, "config_arg", "config") or "config"
    allow_new_keys = data.get("allow_new_keys", False)
    if not isinstance(allow_new_keys, bool):
        raise UsageError(f"{where}: allow_new_keys must be true or false, not "
                         f"{allow_new_keys!r}")
    preload = data.get("preload", False)
    if not isinstance(preload, bool):
        raise UsageError(f"{where}: preload must be true or false, not {preload!r}")
    arg_format = check_arg_format(data.get("arg_format", "flags"), f"{where}: arg_format")
    hydra_config = _optional_text(where, data, "hydra_config", "conf/config.yaml")
    command = command_of(script, run_cwd, check_script, "script", summary_file, parameters,
                         conditions, here / template if template else None, config_arg,
                         allow_new_keys, arg_format, here / hydra_config if hydra_config
                         else None)
    spec = SearchSpec(
        parameters=parameters, conditions=conditions, script_name=script,
        command=command, summary_filename=summary_file, summary_keywords=keywords, out_arg=out_arg,
        objectives=objectives, directions=directions, source_file=source_file,
        source_kind="search_file", algorithm=algorithm, algorithm_options=dict(options),
        num_trials=num_trials, seed=seed, generator=generator,
        generator_timeout=generator_timeout, warnings=dropped,
        log_to=tuple(_strings(f"{where}: log_to", data["log_to"])) if "log_to" in data else (),
        preload=preload,
        pruner=parse_pruner(data.get("pruner"), data.get("pruner_options"), where),
        budget=budget, pbt=pbt,
        initial_points=tuple(initial_points), forbid=tuple(forbid),
        warm_start=parse_warm_start(data.get("warm_start"), where),
        constraints=parse_constraints(data.get("constraints"), metrics, where),
        rerun_best=_rerun_best(where, data.get("rerun_best"), out_arg))
    return replace(spec, resources=parse_resources(data.get("resources"), f"{where}: resources",
                                                   spec.config_keys()),
                   launcher=parse_launcher(data.get("launcher"), f"{where}: launcher"))
