"""Parameter importance, by Optuna's PED-ANOVA (``PedAnovaImportanceEvaluator``).

PED-ANOVA (Watanabe et al., IJCAI 2023) asks how differently a parameter's values are
spread among the best 10 % of the runs than among all of them (a Pearson divergence of
Parzen estimates); the importances are normalised to sum to 1. It needs only numpy, takes
linear time, and handles parameters that only some runs have (conditions). Optuna's fANOVA
would need scikit-learn and a random-forest fit per report. With several objectives,
importance is for the first one.

It reads the final values of the finished runs when at least :data:`MIN_RUNS` finished.
Otherwise (an early-stopping search where most runs were pruned) it reads the values at
the deepest step that at least :data:`MIN_RUNS` finished or pruned runs reached (each run's
first report at or past that step: :meth:`~hpsearch.inspect.view.RunView.value_at`), and says
which step. Of more
than :data:`MAX_RUNS` runs it reads a seeded random sample of that many (Optuna copies
every trial it is given, which would cost seconds; the estimate from the sample is as good
for a report). It needs a parameter that varies among the runs it reads.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass

from hpsearch.inspect.view import RunView, SearchView
from hpsearch.runs.summary import is_number

METHOD = "PED-ANOVA (Optuna's PedAnovaImportanceEvaluator, top 10 % of the runs)"
#: fewer runs leave fewer than 2 in the top 10 %, too few to estimate from
MIN_RUNS = 11
MAX_RUNS = 2000
#: the runs whose curves count towards a step (running and failed runs' do not)
_ENDED = ("finished", "pruned")


@dataclass(frozen=True)
class Importance:
    """Parameters with their importance, largest first, and the values they come from
    (``basis``); or why there are none (``note``)."""

    values: list[tuple[str, float]]
    note: str | None = None
    basis: str | None = None


def deepest_step(runs: list[RunView], key: str, count: int) -> float | None:
    """The deepest step at least ``count`` of ``runs`` reported a finite ``key`` at or past
    (None when fewer than ``count`` reported any)."""
    reached = sorted((step for run in runs if (step := _last_step_of(run, key)) is not None),
                     reverse=True)
    return reached[count - 1] if len(reached) >= count else None


def _last_step_of(run: RunView, key: str) -> float | None:
    """The step of the run's last finite report of ``key``."""
    for point in reversed(run.curve):
        value = point.get(key)
        if is_number(value) and math.isfinite(value):
            return float(point["step"])
    return None


def values_read(view: SearchView) -> tuple[list[tuple[RunView, float]], str] | None:
    """The runs and values importance reads, and a phrase saying what they are (see the
    module docstring); None when too few runs finished or reached a common step."""
    key = view.objectives[0]
    finished = view.scored()
    if len(finished) >= MIN_RUNS:
        return ([(run, run.value(key)) for run in finished],  # type: ignore[misc]
                f"the final values of {len(finished)} finished runs")
    ended = [run for run in view.runs if run.state.status in _ENDED]
    step = deepest_step(ended, key, MIN_RUNS)
    if step is None:
        return None
    pairs = [(run, value) for run in ended if (value := run.value_at(key, step)) is not None]
    return pairs, (f"the values at step {step:g} ({len(pairs)} runs reached it; "
                   f"{len(finished)} finished)")


def importance(view: SearchView) -> Importance:
    """The parameters' importance for the first objective (see the module docstring)."""
    read = values_read(view)
    if read is None:
        return Importance([], f"needs at least {MIN_RUNS} finished runs, or {MIN_RUNS} that "
                              f"reported the same step; the search has "
                              f"{len(view.scored())} finished")
    pairs, basis = read
    varying = [p.name for p in view.parameters
               if len({repr(r.state.config[p.name]) for r, _ in pairs
                       if p.name in r.state.config}) > 1]
    if not varying:
        return Importance([], f"no parameter took more than one value in {basis}")
    if len(pairs) > MAX_RUNS:
        pairs = random.Random(0).sample(pairs, MAX_RUNS)
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    from hpsearch.inspect.optuna_study import value_study

    sign = 1.0 if view.directions[0] == "minimize" else -1.0
    study = value_study(view, [(run, sign * value) for run, value in pairs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(),
                                    params=varying)
    return Importance(sorted(got.items(), key=lambda item: -item[1]), basis=basis)
