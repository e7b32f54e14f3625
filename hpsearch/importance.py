"""Parameter importance, by Optuna's PED-ANOVA (``PedAnovaImportanceEvaluator``).

PED-ANOVA (Watanabe et al., IJCAI 2023) asks how differently a parameter's values are
spread among the best 10 % of the finished runs than among all of them (a Pearson
divergence of Parzen estimates); the importances are normalised to sum to 1. It needs only
numpy, takes linear time, and handles parameters that only some runs have (conditions).
Optuna's fANOVA would need scikit-learn and a random-forest fit per report. With several
objectives, importance is for the first one. It needs at least :data:`MIN_RUNS` finished
runs and a parameter that varies among them; of more than :data:`MAX_RUNS` finished runs it
reads a seeded random sample of that many (Optuna copies every trial it is given, which
would cost seconds; the estimate from the sample is as good for a report).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from hpsearch.searchview import SearchView

METHOD = "PED-ANOVA (Optuna's PedAnovaImportanceEvaluator, top 10 % of finished runs)"
#: fewer finished runs leave fewer than 2 in the top 10 %, too few to estimate from
MIN_RUNS = 11
MAX_RUNS = 2000


@dataclass(frozen=True)
class Importance:
    """Parameters with their importance, largest first; or why there are none."""

    values: list[tuple[str, float]]
    note: str | None = None


def importance(view: SearchView) -> Importance:
    runs = view.scored()
    varying = [p.name for p in view.parameters
               if len({repr(r.state.config[p.name]) for r in runs if p.name in r.state.config}) > 1]
    scored = len(runs)
    if scored < MIN_RUNS:
        return Importance([], f"needs at least {MIN_RUNS} finished runs, the search has "
                              f"{scored}")
    if not varying:
        return Importance([], "no parameter took more than one value in the finished runs")
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    from hpsearch.optuna_study import study_of

    sign = 1.0 if view.directions[0] == "minimize" else -1.0
    study = study_of(view, scored_only=True, sample=MAX_RUNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lower target is better": we negate a maximum
        got = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(),
                                    params=varying, target=lambda t: sign * t.values[0])
    return Importance(sorted(got.items(), key=lambda item: -item[1]))
