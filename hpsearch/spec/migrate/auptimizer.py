"""Auptimizer's ``experiment.json``, read as it is, as a search file's mapping.

Told apart by its keys ``proposer`` / ``parameter_config``.

=========================  ==========================================================
Auptimizer                 hpsearch
=========================  ==========================================================
proposer random            algorithm: random
proposer sequence          algorithm: grid (a float range needs ``n`` points; an int range
                           without ``n`` walks every integer)
proposer hyperopt          algorithm: tpe
proposer spearmint         algorithm: gp
proposer hyperband         algorithm: hyperband, budget ``{parameter: n_iterations, min: 1,
                           max: max_iter, eta: eta}`` (Auptimizer hands the budget to the
                           script as ``n_iterations``)
proposer bohb              algorithm: bohb, budget ``{parameter: n_iterations, min: min_budget,
                           max: max_budget, eta: eta}``
proposer passive           refused: ``hpsearch serve`` hands out points and takes results
proposer eas               refused: not supported
n_samples, random_seed     num_trials (default 10), seed
parameter_config           parameters: float ``range [a, b]`` -> uniform, int -> uniformint,
                           choice -> the list ``range``
target                     direction (max, the default -> maximize; min -> minimize)
script                     run by :mod:`hpsearch.runs.auptimizer_runner` as ``<script>
                           <config.json>``; its ``#Auptimizer:`` result is the metric ``result``
resource_args              multi_res_labels -> more metrics; save_model -> rerun_best: after
                           the search the best configuration runs once more with
                           ``save_model: true`` and ``folder_name: best`` in its config.json
n_parallel                 --num_jobs
job_failure                job_retries -> --retries; without job_failure, or ignore_fail
                           false, the search stops at the first run that failed for good
                           (--max_failures=1), as Auptimizer stops the experiment
resource cpu / gpu         --visible_gpus=-1 (CPU slots) / the local GPUs
resource node              the SSH hosts (``--run_cluster --scheduler=ssh``): Auptimizer keeps
                           its nodes in its own database, so name them with ``--hosts`` or
                           ``--hosts_file``
resource aws               refused: not supported
workingdir                 a note: pass it as --run_cwd
=========================  ==========================================================

Every problem is one :class:`~hpsearch.errors.UsageError` line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError

#: the keys that tell an Auptimizer file apart
KEYS = ("proposer", "parameter_config")
#: what each proposer becomes
ALGORITHMS = {"random": "random", "sequence": "grid", "hyperopt": "tpe", "spearmint": "gp",
              "hyperband": "hyperband", "bohb": "bohb"}
RUNNER = "hpsearch.runs.auptimizer_runner"
SUMMARY_FILE = "aup_result.txt"
#: ``folder_name`` of the run of the best configuration that saves its model
FOLDER_NAME = "best"
#: the parameter Auptimizer's hyperband and bohb hand the budget in
BUDGET_PARAMETER = "n_iterations"
#: keys read here; the others are named in one note as not used
_READ = {"proposer", "n_samples", "random_seed", "script", "parameter_config", "target",
         "resource", "resource_args", "job_failure", "n_parallel", "workingdir", "max_iter",
         "eta", "min_budget", "max_budget", "name"}
_LARGEST_GRID_AXIS = 10000


def _int(where: str, data: dict[str, Any], key: str, default: int | None, low: int) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise UsageError(f"{where}: {key} must be a whole number >= {low}, not {value!r}")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def _parameter(where: str, i: int, entry: Any, grid: bool) -> tuple[str, Any]:
    """One ``parameter_config`` entry as a search-file parameter."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry[
            "name"]:
        raise UsageError(f"{where}: parameter_config[{i}] must be a mapping with a name, such "
                         'as {"name": "x", "range": [-5, 5], "type": "float"}')
    name, kind, span = entry["name"], entry.get("type"), entry.get("range")
    here = f"{where}: parameter {name!r}"
    if kind == "choice":
        if not isinstance(span, list) or not span:
            raise UsageError(f"{here}: a choice needs its values as range, e.g. "
                             '"range": ["adam", "sgd"]')
        return name, list(span)
    if kind not in ("float", "int"):
        raise UsageError(f"{here}: type {kind!r} is not float, int or choice")
    if not (isinstance(span, list) and len(span) == 2 and all(_number(v) for v in span)
            and span[0] < span[1]):
        raise UsageError(f"{here}: range must be [min, max] with min < max, not {span!r}")
    low, high = span
    if kind == "int" and not all(float(v).is_integer() for v in span):
        raise UsageError(f"{here}: an int range needs whole numbers, not {span!r}")
    if not grid:
        if kind == "int":
            return name, {"method": "uniformint", "low": int(low), "high": int(high)}
        return name, {"method": "uniform", "low": low, "high": high}
    points = entry.get("n")
    if points is None and kind == "int" and high - low < _LARGEST_GRID_AXIS:
        return name, list(range(int(low), int(high) + 1))
    if not isinstance(points, int) or isinstance(points, bool) or points < 2:
        raise UsageError(f"{here}: proposer sequence walks a grid; give the number of points "
                         f'as "n": 10 (a whole number >= 2), not {points!r}')
    values = [low + (high - low) * k / (points - 1) for k in range(points)]
    if kind == "int":
        return name, sorted({round(v) for v in values})
    return name, values


def _budget(where: str, data: dict[str, Any], proposer: str) -> dict[str, Any]:
    eta = _int(where, data, "eta", 3, 2)
    if proposer == "hyperband":
        top = _int(where, data, "max_iter", 81, 1)
        return {"parameter": BUDGET_PARAMETER, "min": 1, "max": top, "eta": eta}
    low = data.get("min_budget", 1)
    high = data.get("max_budget")
    if not (_number(low) and _number(high) and 0 < low < high):
        raise UsageError(f"{where}: proposer bohb needs min_budget < max_budget, both > 0, "
                         f"not {low!r} and {high!r}")
    return {"parameter": BUDGET_PARAMETER, "min": low, "max": high, "eta": eta}


def _proposer(where: str, data: dict[str, Any]) -> str:
    proposer = data.get("proposer", "random")
    if proposer == "passive":
        raise UsageError(f"{where}: proposer passive runs jobs by hand; hpsearch serve hands "
                         "out configurations and takes their results over HTTP: see "
                         "docs/how-to/service.md")
    if proposer == "eas":
        raise UsageError(f"{where}: proposer eas is not supported; pick random, sequence, "
                         "hyperopt, spearmint, hyperband or bohb")
    if proposer not in ALGORITHMS:
        raise UsageError(f"{where}: proposer {proposer!r} does not exist; use one of "
                         f"{', '.join([*ALGORITHMS, 'passive', 'eas'])}")
    return proposer


def _check_resource(where: str, data: dict[str, Any]) -> None:
    resource = data.get("resource", "cpu")
    if resource == "aws":
        raise UsageError(f"{where}: resource aws is not supported; run on this host "
                         "(resource cpu or gpu) or on a cluster with --run_cluster")
    if resource == "passive":
        _proposer(where, {"proposer": "passive"})
    if resource not in ("cpu", "gpu", "node"):
        raise UsageError(f"{where}: resource {resource!r} must be cpu, gpu or node (aws is "
                         "not supported)")


def _labels(where: str, resource_args: dict[str, Any]) -> list[str]:
    labels = resource_args.get("multi_res_labels") or []
    if not (isinstance(labels, list) and all(isinstance(v, str) and v and "," not in v
                                             and v != "result" for v in labels)):
        raise UsageError(f"{where}: resource_args multi_res_labels must be a list of names "
                         f"other than 'result', e.g. [\"flops\", \"params\"], not {labels!r}")
    return labels


def _section(where: str, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {key} must be a mapping, not {value!r}")
    return value


def to_mapping(data: dict[str, Any], where: str, script: str | None, run_cwd: Path,
               check_script: bool) -> tuple[dict[str, Any], list[str]]:
    """The search file's mapping of an Auptimizer file, and notes on what it does not use
    (``script``: the command line's ``--script``, over the file's)."""
    proposer = _proposer(where, data)
    _check_resource(where, data)
    notes = []
    script = script if script is not None else data.get("script")
    if not isinstance(script, str) or not script:
        raise UsageError(f'{where} sets no script; add e.g. "script": "train.py"')
    if check_script and not (run_cwd / script).is_file():
        raise UsageError(f"{where}: script {script!r} not found in --run_cwd {run_cwd}; set "
                         "--run_cwd to the folder holding the script (Auptimizer's "
                         "workingdir)")
    raw = data.get("parameter_config")
    if not isinstance(raw, list) or not raw:
        raise UsageError(f'{where}: parameter_config must be a non-empty list such as [{{"name": '
                         '"x", "range": [-5, 5], "type": "float"}]')
    parameters = dict(_parameter(where, i, e, proposer == "sequence") for i, e in enumerate(raw))
    resource_args = _section(where, data, "resource_args")
    labels = _labels(where, resource_args)
    target = data.get("target", "max")
    if target not in ("min", "max"):
        raise UsageError(f"{where}: target must be min or max, not {target!r}")
    mapping: dict[str, Any] = {
        "script": f"-m {RUNNER} {script} {SUMMARY_FILE} {','.join(labels) or '-'}",
        "summary_file": SUMMARY_FILE, "metrics": ["result", *labels], "objective": "result",
        "direction": "minimize" if target == "min" else "maximize",
        "algorithm": ALGORITHMS[proposer], "parameters": parameters}
    if proposer != "sequence":
        mapping["num_trials"] = _int(where, data, "n_samples", 10, 1)
    if proposer in ("hyperband", "bohb"):
        mapping["budget"] = _budget(where, data, proposer)
    seed = _int(where, data, "random_seed", None, 0)
    if seed is not None:
        mapping["seed"] = seed
    if resource_args.get("save_model"):
        mapping["rerun_best"] = {"save_model": True, "folder_name": FOLDER_NAME}
    workingdir = data.get("workingdir")
    if workingdir not in (None, "", "./", "."):
        notes.append(f"workingdir {workingdir!r} is where the runs start: pass it as "
                     "--run_cwd")
    unused = sorted(str(k) for k in data if k not in _READ)
    if unused:
        notes.append(f"not used: {', '.join(unused)}")
    return mapping, notes


def suggested_options(data: dict[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """``n_parallel`` -> ``--num_jobs``, ``job_failure`` -> ``--retries`` and
    ``--max_failures``, ``resource cpu`` -> ``--visible_gpus=-1``, ``resource node`` ->
    ``--run_cluster --scheduler=ssh`` (the hosts come from ``--hosts`` or ``--hosts_file``)."""
    options: dict[str, Any] = {}
    parallel = _int(where, data, "n_parallel", None, 1)
    if parallel is not None:
        options["num_jobs"] = parallel
    failure = _section(where, data, "job_failure")
    retries = _int(where, failure, "job_retries", None, 0)
    if retries:
        options["retries"] = retries
    ignore = failure.get("ignore_fail", False)
    if not isinstance(ignore, bool):
        raise UsageError(f"{where}: job_failure ignore_fail must be true or false, not "
                         f"{ignore!r}")
    if not ignore:
        options["max_failures"] = 1
    resource = data.get("resource", "cpu")
    if resource == "cpu":
        options["visible_gpus"] = "-1"
    if resource == "node":
        options.update(run_cluster=True, scheduler="ssh")
    return options, []
