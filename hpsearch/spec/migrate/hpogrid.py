"""hpogrid's project file (YAML or JSON), read as it is::

    project_name: simple_objective
    scripts_path: /afs/.../examples/scripts/simple_objective.py
    model_config:
      script: simple_objective.py      # in --run_cwd
      model: simple_objective          # the function: my_objective(config, reporter)
      param: {channel: SM}             # fixed values, in every run's config
    search_space:
      height: {method: uniform, dimension: {low: -100, high: 100}}
      width:  {method: uniform, dimension: {low: 0, high: 20}}
    hpo_config:
      algorithm: hyperopt
      metric: loss
      mode: min
      scheduler: asynchyperband
      num_trials: 200
      max_concurrent: 3
    grid_config:
      site: ANALY_MANC_GPU_TEST,ANALY_MWT2_GPU,ANALY_BNL_GPU_ARC
      container: /cvmfs/unpacked.cern.ch/.../hpogrid:latest

``search_space`` takes every hpogrid method as it is (:mod:`hpsearch.spec.distributions`);
``model_config`` becomes the command (``script: <script>:<model>``, a function objective run
by :mod:`hpsearch.runs.objective_runner`; ``--script`` replaces it) and ``param`` fixed
parameters; ``hpo_config`` the metric, its direction (``mode``), ``num_trials`` and the
algorithm: random -> random, hyperopt / tune / bayesian / bohb -> tpe, skopt / ax -> gp,
nevergrad -> cmaes (random when every parameter is a list of values), each named in a
warning. hpogrid's defaults apply to what the file leaves out (random, metric accuracy,
mode max, 100 trials, scheduler asynchyperband). ``max_concurrent`` gives ``--num_jobs``
(:func:`suggested_options`). ``scheduler: asynchyperband`` runs as ``pruner: asha`` on the
steps the function's ``reporter`` counts (``scheduler_param``: ``grace_period``, ``max_t``,
``reduction_factor``); ``scheduler: bohbhyperband`` as ``algorithm: bohb`` by budget and
``scheduler: pbt`` as ``algorithm: pbt`` (:mod:`hpsearch.spec.fidelity`: see
:func:`_bohb_hyperband` and :func:`_pbt`); ``grid_config`` (PanDA sites, containers,
datasets) and ``scripts_path`` (use ``--run_cwd``) are reported as not used.
"""

from __future__ import annotations

from typing import Any

from hpsearch.errors import UsageError

SECTIONS = ("search_space", "hpo_config", "model_config")
#: hpogrid's algorithms -> ours, and in what words the warning says why
ALGORITHMS = {"random": ("random", ""), "hyperopt": ("tpe", "hyperopt's TPE"),
              "tune": ("tpe", "a model-based search for Ray Tune's"),
              "bayesian": ("tpe", "a Bayesian optimisation"),
              "bohb": ("tpe", "BOHB's model is a TPE"), "skopt": ("gp", "skopt's GP"),
              "ax": ("gp", "Ax's GP")}
_HPO_KEYS = ("algorithm", "metric", "mode", "scheduler", "num_trials", "max_concurrent",
             "log_dir", "verbose", "stop", "scheduler_param", "algorithm_param")
_MODES = {"min": "minimize", "max": "maximize"}
#: Ray Tune's ASHAScheduler parameters -> our pruner_options
_ASHA_PARAMS = {"grace_period": "min_resource", "max_t": "max_resource",
                "reduction_factor": "reduction_factor"}


def _section(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {key} must be a mapping, not {type(value).__name__}")
    return value


def to_mapping(data: dict[str, Any], where: str, script: str | None
               ) -> tuple[dict[str, Any], list[str]]:
    """A search file's mapping for the project ``data``, and notes on what is not used."""
    space = _section(data, "search_space", where)
    hpo = _section(data, "hpo_config", where)
    model = _section(data, "model_config", where)
    if not space:
        raise UsageError(f"{where} has no search_space; add e.g. search_space: {{lr: {{method: "
                         "loguniform, dimension: {low: 1.0e-5, high: 0.1}}}}")
    if script is None:
        if not model.get("script"):
            raise UsageError(f"{where}: model_config names no script; add script: train.py "
                             "and model: my_objective, or pass --script=train.py:my_objective")
        script = f"{model['script']}:{model['model']}" if model.get("model") \
            else str(model["script"])
    parameters: dict[str, Any] = dict(space)
    fixed = model.get("param") or {}
    if not isinstance(fixed, dict):
        raise UsageError(f"{where}: model_config.param must be a mapping of name -> value")
    for name, value in fixed.items():
        if name in parameters:
            raise UsageError(f"{where}: {name!r} is in model_config.param and in search_space; "
                             "keep it in one of them")
        parameters[name] = [value]
    mode = hpo.get("mode", "max")
    if mode not in _MODES:
        raise UsageError(f"{where}: hpo_config mode {mode!r} must be min or max")
    notes: list[str] = []
    metric = hpo.get("metric", "accuracy")
    mapping = {"script": script, "metrics": [metric], "objective": metric,
               "direction": _MODES[mode], "num_trials": hpo.get("num_trials", 100),
               "parameters": parameters,
               "algorithm": _algorithm(hpo.get("algorithm", "random"), space, where, notes)}
    _scheduler(hpo, mapping, where, notes)
    unused = [f"hpo_config.{k}" for k in ("log_dir", "verbose", "stop", "algorithm_param")
              if k in hpo and not (k == "stop" and mapping["algorithm"] == "pbt")]
    unused += [f"hpo_config.{k}" for k in hpo if k not in _HPO_KEYS]
    unused += [k for k in data if k not in (*SECTIONS, "grid_config", "project_name",
                                            "scripts_path")]
    unused += [f"model_config.{k}" for k in model if k not in ("script", "model", "param")]
    if "scripts_path" in data:
        unused.append("scripts_path (pass --run_cwd=<its folder>)")
    if unused:
        notes.append(f"hpogrid settings not used here: {', '.join(unused)}")
    if "grid_config" in data:
        notes.append("grid_config (PanDA sites, containers, datasets) is not supported: runs "
                     "go to this machine, or to Slurm/LSF/SGE/PBS with --run_cluster")
    return mapping, notes


def _scheduler(hpo: dict[str, Any], mapping: dict[str, Any], where: str,
               notes: list[str]) -> None:
    """``scheduler: asynchyperband`` (hpogrid's default) -> ``pruner: asha`` on the steps the
    reporter counts, with Ray's ``scheduler_param`` names: ``grace_period`` ->
    ``min_resource``, ``max_t`` -> ``max_resource``, ``reduction_factor`` as it is."""
    scheduler = hpo.get("scheduler", "asynchyperband")
    params = hpo.get("scheduler_param") or {}
    if not isinstance(params, dict):
        raise UsageError(f"{where}: hpo_config scheduler_param must be a mapping such as "
                         "{grace_period: 1, max_t: 100, reduction_factor: 4}")
    if scheduler == "bohbhyperband":
        _bohb_hyperband(hpo, params, mapping, notes)
        return
    if scheduler == "pbt":
        _pbt(hpo, params, mapping, where, notes)
        return
    if scheduler != "asynchyperband":
        notes.append(f"hpo_config scheduler {scheduler} is not supported: every run goes to "
                     "its end (asynchyperband, bohbhyperband and pbt are)")
        return
    options = {ours: params[ray] for ray, ours in _ASHA_PARAMS.items() if ray in params}
    mapping["pruner"], mapping["pruner_options"] = "asha", options
    default = "" if "scheduler" in hpo else " (hpogrid's default)"
    notes.append(f"hpo_config scheduler asynchyperband{default} runs as pruner: asha on the "
                 "reporter's steps" + (f" ({', '.join(f'{k}: {v}' for k, v in options.items())})"
                            if options else ""))
    ignored = [k for k in params if k not in _ASHA_PARAMS]
    if ignored:
        notes.append(f"hpo_config scheduler_param not used here: {', '.join(ignored)}")


def _unused_params(params: dict[str, Any], used: tuple[str, ...], notes: list[str]) -> None:
    ignored = [k for k in params if k not in used]
    if ignored:
        notes.append(f"hpo_config scheduler_param not used here: {', '.join(ignored)}")


def _bohb_hyperband(hpo: dict[str, Any], params: dict[str, Any], mapping: dict[str, Any],
                    notes: list[str]) -> None:
    """``scheduler: bohbhyperband`` -> ``algorithm: bohb`` (``hyperband`` beside another
    algorithm than bohb) by budget: the function gets ``config[time_attr]`` (Ray's
    ``training_iteration`` by default), from 1 to ``max_t`` (81), ``eta`` Ray's
    ``reduction_factor`` (3); ``num_trials`` configurations are drawn."""
    parameter = str(params.get("time_attr", "training_iteration"))
    budget = {"parameter": parameter, "min": 1, "max": params.get("max_t", 81),
              "eta": params.get("reduction_factor", 3)}
    ours = "bohb" if hpo.get("algorithm") == "bohb" else "hyperband"
    mapping["algorithm"], mapping["budget"] = ours, budget
    notes.append(f"hpo_config scheduler bohbhyperband runs as algorithm: {ours} by budget: "
                 f"each run gets config[{parameter!r}] (1 to {budget['max']}) and a promoted "
                 "one $HPSEARCH_RESUME_FROM, its run at the lower budget")
    _unused_params(params, ("time_attr", "max_t", "reduction_factor"), notes)


def _pbt(hpo: dict[str, Any], params: dict[str, Any], mapping: dict[str, Any], where: str,
         notes: list[str]) -> None:
    """``scheduler: pbt`` -> ``algorithm: pbt``: ``num_trials`` members; Ray's
    ``perturbation_interval`` (1), ``quantile_fraction``, ``resample_probability`` and
    ``perturbation_factors`` as they are; segments: ``stop[time_attr]`` over the interval."""
    parameter = str(params.get("time_attr", "training_iteration"))
    interval = params.get("perturbation_interval", 1)
    stop = hpo.get("stop") or {}
    total = stop.get(parameter) if isinstance(stop, dict) else None
    if not (isinstance(interval, int) and interval >= 1 and isinstance(total, int)
            and total >= interval):
        raise UsageError(f"{where}: hpo_config scheduler pbt needs whole numbers "
                         f"scheduler_param.perturbation_interval (>= 1) and stop.{parameter} "
                         f"(>= it), e.g. stop: {{{parameter}: 50}}, scheduler_param: "
                         "{perturbation_interval: 10}")
    pbt = {"population": hpo.get("num_trials", 100), "interval": interval,
           "parameter": parameter, "segments": total // interval}
    for ray, ours in (("quantile_fraction", "quantile"),
                      ("resample_probability", "resample_probability"),
                      ("perturbation_factors", "perturb")):
        if ray in params:
            pbt[ours] = params[ray]
    mapping["algorithm"], mapping["pbt"] = "pbt", pbt
    mapping.pop("num_trials", None)
    notes.append(f"hpo_config scheduler pbt runs as algorithm: pbt: {pbt['population']} "
                 f"members, {pbt['segments']} segments of {interval} (config[{parameter!r}]"
                 "), each a run that continues from $HPSEARCH_RESUME_FROM")
    _unused_params(params, ("time_attr", "perturbation_interval", "quantile_fraction",
                            "resample_probability", "perturbation_factors"), notes)


def _algorithm(name: Any, space: dict[str, Any], where: str, notes: list[str]) -> str:
    if name == "nevergrad":
        numeric = any(isinstance(v, dict) and v.get("method") not in (None, "categorical")
                      for v in space.values())
        ours = "cmaes" if numeric else "random"
        notes.append(f"hpo_config algorithm nevergrad runs as {ours} ("
                     + ("CMA-ES, an evolution strategy" if numeric else
                        "every parameter is a choice") + ")")
        return ours
    if name not in ALGORITHMS:
        raise UsageError(f"{where}: hpo_config algorithm {name!r} is not one of hpogrid's "
                         f"{', '.join([*ALGORITHMS, 'nevergrad'])}")
    ours, why = ALGORITHMS[name]
    if name != ours:
        notes.append(f"hpo_config algorithm {name} runs as {ours} ({why})")
    return ours


def suggested_options(data: dict[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """``hpo_config.max_concurrent`` -> ``--num_jobs`` (every backend)."""
    concurrent = _section(data, "hpo_config", where).get("max_concurrent")
    if concurrent is None:
        return {}, []
    if not isinstance(concurrent, int) or isinstance(concurrent, bool) or concurrent < 1:
        raise UsageError(f"{where}: hpo_config max_concurrent must be a whole number >= 1, "
                         f"not {concurrent!r}")
    return {"num_jobs": concurrent}, []
