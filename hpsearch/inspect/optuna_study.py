"""A search as an Optuna study, for ``hpsearch export --format optuna`` and importance.

The report's parameter importance reads the same study.

Each run becomes one ``FrozenTrial``, in trial order (so Optuna's trial numbers follow
ours where no trial was withdrawn):

==========================  ================================================================
ours                        Optuna's
==========================  ================================================================
finished (every objective   ``COMPLETE`` with ``values``, one per objective (a finished run
a number)                   missing one, or NaN, is ``FAIL``)
pruned                      ``PRUNED``, value: the last intermediate value (one objective)
failed                      ``FAIL``
running / launching         ``RUNNING``
pending / cancelled         ``WAITING``
a list parameter            ``CategoricalDistribution`` of the declared values, then the
                            other values the runs got (as argv shows them: ``sgd``)
uniform / loguniform        ``FloatDistribution(low, high, log=...)``
quniform                    ``FloatDistribution(low, high, step=q)`` (``IntDistribution``
                            when q and the bounds are integers)
uniformint                  ``IntDistribution(low, high)``
qloguniform                 ``IntDistribution(low, high, log=True)`` when its values are
                            ints, else ``FloatDistribution(low, high, log=True)``
normal family               ``FloatDistribution`` over the values the runs got (Optuna has
                            no unbounded distribution; ``log=True`` for lognormal ones)
the learning curve          ``intermediate_values``: step -> the first objective (whole
                            steps only)
==========================  ================================================================

Bounds widen to the values the runs got (a search resumed with ``--force_out_dir`` over a
changed space). Each trial's ``user_attrs`` hold ``hpsearch_trial``, ``run_id``, the other
metrics, ``reason`` (of a failure), ``attempts``, ``wall_time`` and ``job_id``; the study's
``metric_names`` are the objectives.
"""

from __future__ import annotations

import datetime
import math
import os
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from hpsearch.inspect.view import Parameter, RunView, SearchView, display
from hpsearch.runs.summary import is_number

_STATES = {"finished": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
           "failed": TrialState.FAIL, "running": TrialState.RUNNING,
           "launching": TrialState.RUNNING, "pending": TrialState.WAITING,
           "cancelled": TrialState.WAITING}
_NORMAL_FAMILY = ("normal", "qnormal", "lognormal", "qlognormal")


def choice(value: Any) -> Any:
    """A value Optuna's categorical distribution takes (None, bool, int, float, str)."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _numbers(parameter: Parameter) -> list[float]:
    return [float(v) for v in parameter.values if is_number(v) and math.isfinite(v)]


def distribution(parameter: Parameter) -> BaseDistribution:
    """The Optuna distribution of one parameter (see the module docstring)."""
    dist = parameter.distribution
    if dist is None:
        assert parameter.choices is not None
        return CategoricalDistribution(list(dict.fromkeys(map(choice, parameter.choices))))
    seen = _numbers(parameter)
    if dist.method in _NORMAL_FAMILY:
        assert dist.mu is not None and dist.sigma is not None
        spread = (dist.mu - 3 * dist.sigma, dist.mu + 3 * dist.sigma)
        if dist.method.endswith("lognormal"):
            spread = (dist.base ** spread[0], dist.base ** spread[1])
        low, high = (min(seen), max(seen)) if seen else spread
        log = dist.method.endswith("lognormal") and low > 0
        return FloatDistribution(low, max(high, low), log=log)
    low, high = dist.bounds()
    inside = all(low <= v <= high for v in seen)
    low, high = min([low, *seen]), max([high, *seen])
    if dist.method == "uniformint" or (dist.is_int and dist.method == "qloguniform"):
        return IntDistribution(int(low), int(high), log=dist.is_log)
    if dist.method == "quniform" and inside:
        if dist.is_int:
            return IntDistribution(int(low), int(high), step=int(dist.q or 1))
        return FloatDistribution(low, high, step=dist.q)
    return FloatDistribution(low, high, log=dist.is_log)


def _when(epoch: float | None) -> datetime.datetime | None:
    return None if epoch is None else datetime.datetime.fromtimestamp(epoch)


def _clean(value: Any) -> Any:
    """JSON without NaN or infinities (optuna-dashboard reads the file in a browser)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _intermediate(run: RunView, objective: str) -> dict[int, float]:
    points = {}
    for point in run.curve:
        step, value = point["step"], point.get(objective)
        if float(step).is_integer() and is_number(value) and value == value:
            points[int(step)] = float(value)
    return points


def frozen_trial(view: SearchView, run: RunView, dists: dict[str, BaseDistribution],
                 bare: bool = False) -> FrozenTrial:
    """The Optuna trial of one run (see the module docstring); ``bare``: without its
    intermediate values and user attributes."""
    state = run.state
    trial_state = _STATES[state.status]
    values = None
    if trial_state == TrialState.COMPLETE:
        values = [run.value(k) for k in view.objectives]
        if any(v is None for v in values):
            trial_state, values = TrialState.FAIL, None
    intermediate = {} if bare else _intermediate(run, view.objectives[0])
    if trial_state == TrialState.PRUNED and intermediate and len(view.objectives) == 1:
        values = [intermediate[max(intermediate)]]
    params, param_dists = {}, {}
    for key, raw in state.config.items():
        value, dist = choice(display(raw)), dists[key]
        if dist._contains(dist.to_internal_repr(value)):
            params[key], param_dists[key] = value, dist
    starts = [s.start for s in run.spans]
    ends = [s.end for s in run.spans if s.end is not None]
    start = min(starts, default=state.submitted_at or state.ended_at or view.now)
    end = max(ends, default=state.ended_at or start)
    metrics = {k: _clean(v) for k, v in state.metrics.items() if k not in view.objectives}
    attrs = {} if bare else {
        "hpsearch_trial": state.trial, "run_id": state.run_id, "metrics": metrics,
        "attempts": state.attempts, "wall_time": state.wall_time, "job_id": state.job_id,
        "reason": state.reason}
    waiting = trial_state == TrialState.WAITING
    return FrozenTrial(
        number=-1, trial_id=-1, state=trial_state, value=None, values=values,
        datetime_start=None if waiting else _when(start),
        datetime_complete=_when(end) if trial_state.is_finished() else None,
        params=params, distributions=param_dists, user_attrs=attrs, system_attrs={},
        intermediate_values=intermediate)


def trials(view: SearchView) -> list[FrozenTrial]:
    """Every run as a trial, in trial order."""
    dists = {p.name: distribution(p) for p in view.parameters}
    return [frozen_trial(view, run, dists) for run in view.runs]


def study_of(view: SearchView, storage: Any = None, name: str | None = None) -> optuna.Study:
    """An Optuna study holding the runs (in memory unless ``storage`` is given)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # set_metric_names is "experimental"
        study = optuna.create_study(storage=storage, study_name=name,
                                    directions=view.directions)
        study.set_metric_names(view.objectives)
        study.add_trials(trials(view))
    return study


def value_study(view: SearchView, values: list[tuple[RunView, float]]) -> optuna.Study:
    """A one-objective study (minimised, in memory) of the given runs with the given values,
    each a complete trial with its parameters only: what parameter importance reads."""
    dists = {p.name: distribution(p) for p in view.parameters}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    bare = [(frozen_trial(view, run, dists, bare=True), value) for run, value in values]
    study.add_trials([optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                value=value) for t, value in bare])
    return study


def write_journal(view: SearchView, path: Path) -> str:
    """Write the study to an Optuna journal file at ``path`` (replaced whole); returns the
    study's name, the search directory's name."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    name = view.out_dir.name
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    storage = JournalStorage(JournalFileBackend(str(tmp)))
    study = study_of(view, storage, name)
    study.set_user_attr("hpsearch_out_dir", str(view.out_dir))
    os.replace(tmp, path)
    return name
