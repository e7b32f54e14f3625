"""hyper_opt's hyperparameter file (NCAR's Optuna-on-Slurm driver), read as it is::

    log:
      save_path: "path/to/data/log.txt"
    slurm:
      jobs: 20
      batch: {account: "NAML0001", gres: "gpu:v100:1", mem: "128G", n: 8, t: "12:00:00",
              J: "hyper_opt", o: "hyper_opt.out", e: "hyper_opt.err"}
    optuna:
      name: "holodec_optimization.db"
      reload: 0
      objective: "examples/torch/objective.py"
      metric: "val_loss"
      direction: "minimize"
      n_trials: 500
      gpu: True
      save_path: 'test'
      sampler: {type: "TPESampler"}
      parameters:
        num_dense: {type: "int", settings: {name: "num_dense", low: 0, high: 10}}
        dropout: {type: "float", settings: {name: "dr", low: 0.0, high: 0.5}}
        optimizer:learning_rate:
          type: "loguniform"
          settings: {name: "lr", low: 0.0000001, high: 0.01}

``optuna:`` becomes the search: ``metric`` the metrics and objective (a list: several),
``direction``, ``n_trials`` the trial count, ``sampler.type`` the algorithm (TPESampler ->
tpe, RandomSampler -> random, CmaEsSampler -> cmaes, GPSampler -> gp, NSGAIISampler -> nsga2,
QMCSampler -> qmc, GridSampler -> grid; no sampler: tpe, Optuna's default) with its other
keys as ``algorithm_options`` (``seed``: the search's seed). A parameter's key is its name
and, with ``--config_template``, its key path in the model config (``optimizer:learning_rate``);
``settings.name`` is Optuna's own name for it and is not needed. Its ``type`` maps onto our
methods:

================  ============================  =======================================
type              settings                      method
================  ============================  =======================================
categorical       choices                       a list of values
discrete_uniform  low, high, q                  quniform
float             low, high [, step] [, log]    uniform | quniform (step) | loguniform
int               low, high [, step] [, log]    uniformint | quniform (step) | qloguniform
loguniform        low, high                     loguniform
uniform           low, high                     uniform
================  ============================  =======================================

A step counts from 0 here (multiples of it) and from ``low`` in Optuna: a ``low`` that is not
a multiple of the step is refused. ``optuna.objective`` is a Python class hpsearch cannot
run: ``--script`` names what runs instead. ``slurm:`` gives flag values
(:func:`suggested_options`); ``log:`` and the study's name, storage and paths are not used.

echo-opt, hyper_opt's successor (NCAR's Derecho runs PBS), writes a ``pbs:`` section beside
``slurm:``, read for ``--scheduler=pbs`` as ``slurm:`` is for Slurm (:func:`pbs_options`)::

    pbs:
      jobs: 10
      gpus_per_node: 4
      bash: ["source ~/.bashrc", "conda activate echo"]
      batch: {l: ["select=1:ncpus=64:ngpus=4:mem=128GB", "walltime=12:00:00"],
              A: "NAML0001", q: "main", N: "echo_trial", o: "logs/", e: "logs/"}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from hpsearch.errors import UsageError

SAMPLERS = {"TPESampler": "tpe", "RandomSampler": "random", "CmaEsSampler": "cmaes",
            "GPSampler": "gp", "NSGAIISampler": "nsga2", "QMCSampler": "qmc",
            "GridSampler": "grid"}
#: settings each parameter type takes (besides ``name``); the first two are required
_SETTINGS = {"categorical": ("choices",), "discrete_uniform": ("low", "high", "q"),
             "float": ("low", "high", "step", "log"), "int": ("low", "high", "step", "log"),
             "loguniform": ("low", "high"), "uniform": ("low", "high")}
_REQUIRED = {"categorical": ("choices",), "discrete_uniform": ("low", "high", "q")}
#: optuna keys that have no counterpart here, and why
_UNUSED = {"name": "the study is the --out_dir", "reload": "a search always resumes",
           "save_path": "results go to --out_dir", "gpu": "GPUs are used when found",
           "objective": "--script runs instead", "storage": "the journal is in --out_dir"}
#: sbatch's one-letter options -> long names
_SHORT = {"A": "account", "p": "partition", "q": "qos", "C": "constraint", "t": "time",
          "c": "cpus-per-task", "n": "ntasks", "N": "nodes", "G": "gpus", "J": "job-name",
          "o": "output", "e": "error", "w": "nodelist", "x": "exclude", "d": "dependency",
          "D": "chdir", "L": "licenses", "M": "clusters", "b": "begin", "m": "distribution"}
_TIME = re.compile(r"(?:(?P<d>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?")


def to_mapping(data: dict[str, Any], where: str, script: str | None
               ) -> tuple[dict[str, Any], list[str]]:
    """A search file's mapping for hyper_opt's ``data``, and notes on what is not used."""
    optuna = data.get("optuna")
    if not isinstance(optuna, dict):
        raise UsageError(f"{where}: optuna must be a mapping with metric, direction, n_trials "
                         "and parameters")
    if script is None:
        objective = optuna.get("objective", "objective.py")
        raise UsageError(f"{where} is a hyper_opt file, whose objective ({objective}) is a "
                         "Python class hpsearch cannot run: pass --script=train.py, a script "
                         "that reads --config=<its patched model config> and writes "
                         "performance_overview.txt in --out_dir (or --script=file.py:function)")
    for key in ("metric", "parameters"):
        if key not in optuna:
            raise UsageError(f"{where}: optuna sets no {key}; add e.g. "
                             f"{'metric: val_loss' if key == 'metric' else 'parameters: ...'}")
    metrics = optuna["metric"] if isinstance(optuna["metric"], list) else [optuna["metric"]]
    mapping: dict[str, Any] = {
        "script": script, "metrics": metrics, "objective": metrics,
        "direction": optuna.get("direction", "minimize"),
        "parameters": _parameters(optuna["parameters"], where)}
    if "n_trials" in optuna:
        mapping["num_trials"] = optuna["n_trials"]
    mapping.update(_sampler(optuna.get("sampler"), where))
    known = {"metric", "direction", "n_trials", "sampler", "parameters"}
    unused = [f"optuna.{k} ({_UNUSED[k]})" if k in _UNUSED else f"optuna.{k}"
              for k in optuna if k not in known]
    unused += [k for k in data if k not in ("optuna", "slurm", "pbs")]
    notes = [f"hyper_opt settings not used here: {', '.join(unused)}"] if unused else []
    return mapping, notes


def _sampler(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {"algorithm": "tpe"}
    if not isinstance(raw, dict) or raw.get("type") not in SAMPLERS:
        kind = raw.get("type") if isinstance(raw, dict) else raw
        raise UsageError(f"{where}: optuna.sampler type {kind!r} has no counterpart here; use "
                         f"one of {', '.join(SAMPLERS)}")
    options = {k: v for k, v in raw.items() if k not in ("type", "seed")}
    found = {"algorithm": SAMPLERS[raw["type"]]}
    return {**found, **({"algorithm_options": options} if options else {}),
            **({"seed": raw["seed"]} if "seed" in raw else {})}


def _parameters(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise UsageError(f"{where}: optuna.parameters must be a mapping of name -> "
                         "{type: ..., settings: {...}}")
    return {str(name): _parameter(str(name), spec, where) for name, spec in raw.items()}


def _parameter(name: str, raw: Any, where: str) -> Any:
    """One hyper_opt parameter as a search-file parameter (module docstring's table)."""
    at = f"{where}: parameter {name!r}"
    if not isinstance(raw, dict) or raw.get("type") not in _SETTINGS:
        kind = raw.get("type") if isinstance(raw, dict) else raw
        raise UsageError(f"{at}: type {kind!r} is not one of {', '.join(_SETTINGS)}")
    kind = raw["type"]
    settings = {k: v for k, v in (raw.get("settings") or {}).items() if k != "name"}
    unknown = [k for k in settings if k not in _SETTINGS[kind]]
    missing = [k for k in _REQUIRED.get(kind, ("low", "high")) if k not in settings]
    if unknown or missing:
        raise UsageError(f"{at}: {kind} takes settings {', '.join(_SETTINGS[kind])}; "
                         + (f"{', '.join(unknown)} is unknown" if unknown
                            else f"{', '.join(missing)} is missing"))
    if kind == "categorical":
        return list(settings["choices"])
    low, high = settings["low"], settings["high"]
    step = settings.get("q", settings.get("step"))
    log = bool(settings.get("log", False)) or kind == "loguniform"
    if kind == "int" and step == 1:
        step = None
    if log and step is not None:
        raise UsageError(f"{at}: step and log cannot go together (as in Optuna); drop one")
    if step is not None:
        _check_step(at, low, step)
        return {"method": "quniform", "low": low, "high": high, "q": step}
    if log:
        extra = {"q": 1} if kind == "int" else {}
        return {"method": "qloguniform" if extra else "loguniform", "low": low, "high": high,
                **extra}
    return {"method": "uniformint" if kind == "int" else "uniform", "low": low, "high": high}


def _check_step(at: str, low: Any, step: Any) -> None:
    if isinstance(low, (int, float)) and isinstance(step, (int, float)) and step > 0:
        ratio = low / step
        if not math.isclose(ratio, round(ratio), abs_tol=1e-9):
            raise UsageError(f"{at}: a step of {step} from low {low} is not supported (here the "
                             "values are multiples of the step); make low a multiple of it")


# -- the slurm: and pbs: sections --------------------------------------------------
def suggested_options(data: dict[str, Any], backend: str, where: str,
                      natives: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Flag values from the section of the search's scheduler (``slurm:``, or echo-opt's
    ``pbs:``, :func:`pbs_options`), and notes (a section for another scheduler is noted)."""
    flags, notes = _slurm_options(data, backend, where, natives)
    pbs_flags, pbs_notes = pbs_options(data, backend, where, natives)
    return {**flags, **pbs_flags}, notes + pbs_notes


def _slurm_options(data: dict[str, Any], backend: str, where: str,
                   natives: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Flag values from ``slurm:`` (``jobs`` -> --num_jobs, ``batch:`` sbatch options -> the
    flags ``natives`` gives them (--slurm_mem, ...; any other -> ``natives["*"]``,
    --sbatch_option), ``t``/``time`` -> --num_hours), for the Slurm backend only; notes."""
    slurm = data.get("slurm")
    if slurm is None:
        return {}, []
    if backend != "slurm":
        return {}, [f"{where}: its slurm: section is used with --run_cluster --scheduler=slurm"]
    if not isinstance(slurm, dict):
        raise UsageError(f"{where}: slurm must be a mapping with jobs and batch")
    flags = _jobs(slurm, "slurm", where)
    unused: dict[str, list[str]] = {"": [f"slurm.{k}" for k in slurm
                                         if k not in ("jobs", "batch")]}
    batch = slurm.get("batch") or {}
    if not isinstance(batch, dict):
        raise UsageError(f"{where}: slurm.batch must be a mapping of sbatch options")
    extra: list[str] = []
    for raw_key, value in batch.items():
        key = str(raw_key).lstrip("-")
        key = _SHORT.get(key, key).replace("_", "-")
        if key in ("job-name", "output", "error"):
            unused.setdefault(" (hpsearch names the jobs and their logs)", []).append(
                f"slurm.batch.{raw_key}")
        elif key in ("ntasks", "nodes"):
            unused.setdefault(" (each run is one task of a job array)", []).append(
                f"slurm.batch.{raw_key}")
        elif key == "time":
            flags["num_hours"] = _hours(value, where)
        else:
            _native_or_extra(key, value, natives, flags, extra)
    return _finish(flags, extra, natives, unused, where)


def _jobs(section: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    jobs = section.get("jobs")
    if jobs is None:
        return {}
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise UsageError(f"{where}: {name}.jobs must be a whole number >= 1, not {jobs!r}")
    return {"num_jobs": jobs}


def pbs_options(data: dict[str, Any], backend: str, where: str,
                natives: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Flag values from echo-opt's ``pbs:``, for the PBS backend only; notes.

    ``jobs`` -> --num_jobs; ``bash`` (setup lines) -> --job_setup; ``batch:`` qsub options:
    ``l`` items ``select=1:ncpus=N:ngpus=G:mem=M`` -> the flags ``natives`` gives ``ncpus``,
    ``ngpus``, ``mem`` (--pbs_ncpus...), ``walltime=HH:MM:SS`` -> --num_hours, any other ``l``
    item and option (``A``: the account) -> ``natives["*"]`` (--qsub_option), ``q`` -> its
    native flag (--pbs_queue); ``N``, ``o``, ``e`` are hpsearch's own, ``gpus_per_node`` is
    what ``ngpus`` asks already: both noted as not used.
    """
    pbs = data.get("pbs")
    if pbs is None:
        return {}, []
    if backend != "pbs":
        return {}, [f"{where}: its pbs: section is used with --run_cluster --scheduler=pbs"]
    if not isinstance(pbs, dict):
        raise UsageError(f"{where}: pbs must be a mapping with jobs, bash and batch")
    flags = _jobs(pbs, "pbs", where)
    unused: dict[str, list[str]] = {"": [f"pbs.{k}" for k in pbs
                                         if k not in ("jobs", "bash", "batch", "gpus_per_node")]}
    if "gpus_per_node" in pbs:
        unused.setdefault(" (each run's job asks select's ngpus)", []).append("pbs.gpus_per_node")
    bash = pbs.get("bash") or []
    if not isinstance(bash, list) or not all(isinstance(b, str) for b in bash):
        raise UsageError(f"{where}: pbs.bash must be a list of shell lines")
    if bash:
        flags["job_setup"] = tuple(bash)
    batch = pbs.get("batch") or {}
    if not isinstance(batch, dict):
        raise UsageError(f"{where}: pbs.batch must be a mapping of qsub options")
    extra: list[str] = []
    for raw_key, value in batch.items():
        key = str(raw_key).lstrip("-")
        if key in ("N", "o", "e"):
            unused.setdefault(" (hpsearch names the jobs and their logs)", []).append(
                f"pbs.batch.{raw_key}")
        elif key == "l":
            for item in value if isinstance(value, list) else [value]:
                extra += _pbs_resource(str(item), flags, natives, where)
        else:
            _native_or_extra(key, value, natives, flags, extra)
    return _finish(flags, extra, natives, unused, where)


def _native_or_extra(key: str, value: Any, natives: Mapping[str, str], flags: dict[str, Any],
                     extra: list[str]) -> None:
    """A ``batch:`` option: the flag of the scheduler's option with that native name, else
    one of the pass-through items (``key`` alone for ``true``; ``false``/null: left out)."""
    if key in natives and key != "*":
        flags[natives[key]] = str(value)
    elif value is True:
        extra.append(key)
    elif value is not False and value is not None:
        extra.append(f"{key}={value}")


def _finish(flags: dict[str, Any], extra: list[str], natives: Mapping[str, str],
            unused: dict[str, list[str]], where: str) -> tuple[dict[str, Any], list[str]]:
    """The flags with the pass-through items under the scheduler's ``*`` flag, and one note
    naming the settings not used."""
    if extra:
        flags[natives["*"]] = tuple(extra)
    groups = [", ".join(keys) + why for why, keys in unused.items() if keys]
    return flags, [f"{where}: not used here: {'; '.join(groups)}"] if groups else []


def _pbs_resource(item: str, flags: dict[str, Any], natives: Mapping[str, str],
                  where: str) -> list[str]:
    """One ``-l`` item of ``pbs.batch.l`` into ``flags``; what goes to --qsub_option."""
    name, _, value = item.partition("=")
    if name.strip() == "walltime":
        # PBS's walltime is [[hours:]minutes:]seconds: a bare number counts seconds
        text = value.strip()
        flags["num_hours"] = (int(text) / 3600 if text.isdigit() and int(text) > 0
                              else _hours(text, where, "pbs.batch.l walltime"))
        return []
    if name.strip() != "select":
        return [f"l={item}"]
    count, *chunks = value.split(":")
    rest = []
    for chunk in chunks:
        key, _, amount = chunk.partition("=")
        if key in ("ncpus", "ngpus", "mem") and key in natives:
            flags[natives[key]] = int(amount) if key != "mem" and amount.isdigit() else amount
        else:
            rest.append(chunk)
    if count.strip() != "1" or rest:
        raise UsageError(f"{where}: pbs.batch.l {item!r}: each run's job is select=1 with "
                         "ncpus, ngpus and mem (give other resources as their own l items)")
    return []


def _hours(value: Any, where: str, field: str = "slurm.batch time") -> float:
    """A Slurm time (``90``, ``12:00:00``, ``2-06:00``, ...) in hours."""
    text = str(value).strip()
    found = _TIME.fullmatch(text)
    if found is None:
        kind = "Slurm" if field.startswith("slurm") else "PBS"
        raise UsageError(f"{where}: {field} {value!r} is not a {kind} time such as "
                         "12:00:00, 90 or 2-06:00:00")
    days = int(found["d"] or 0)
    parts = [int(p) for p in (found["a"], found["b"], found["c"]) if p is not None]
    if found["d"] is not None:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:  # minutes[:seconds]
        hours, (minutes, seconds) = 0, (parts + [0])[:2]
    total = days * 24 + hours + minutes / 60 + seconds / 3600
    if total <= 0:
        raise UsageError(f"{where}: {field} {value!r} must be more than zero")
    return total

