"""An Optuna study in memory: what proposes for Optuna's samplers (the strategies' Optuna).

For :mod:`hpsearch.strategies.optuna.samplers`, it proposes in the sampler process
(:mod:`hpsearch.strategies.optuna.process`) or, where that cannot take the search, in the
driver. The driver imports this module (and so Optuna) only then, to check
``algorithm_options``, or for a dry run's preview.

How the search is kept, and why a resumed one proposes the same sequence: the study lives
in an ``InMemoryStorage`` only, nothing on disk. Each trial ``k`` is asked by a sampler
seeded ``derive_seed(seed, k)`` -- a new one, or TPE's one sampler with its random states
seeded anew, which is the same -- so what trial ``k`` gets depends on the seed and on what
the storage holds, never on the life of a sampler object. What the storage holds
goes into the journal with each proposal (:attr:`Proposal.internal`)::

    {"params": {"lr": 0.0031, "act": 1},          # Optuna's values (indices for lists)
     "system_attrs": {"cma:generation": 0, ...},   # what the sampler keeps in the trial
     "study_attrs": {"NSGAIISampler:parent:1": [...]}}  # study attrs the ask set

and :meth:`OptunaSearch.restore` adds every journaled trial back as RUNNING, with those
attributes, then tells the journaled outcomes in order -- the storage a restarted search
asks from is the one the first search asked from. With one run at a time the sequence is
therefore exactly the uninterrupted one, however often the search is stopped. With several
runs at once, which outcomes arrived before which ask depends on timing, so no two searches
need agree (each is still a valid search).

Outcomes: ``finished`` with one number per objective is COMPLETE; ``pruned`` is PRUNED with
its intermediate values (Optuna uses the last one as its value, single objective only);
anything else, and a finished trial without usable values (missing, NaN), is FAIL, which
the samplers ignore.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from hpsearch.errors import UsageError
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.points import FORBIDDEN_DRAWS, forbidden
from hpsearch.strategies.base import Outcome, Proposal
from hpsearch.strategies.optuna.catalog import SAMPLERS
from hpsearch.strategies.optuna.space import OptunaSpace
from hpsearch.strategies.seeding import derive_seed

_STUDY = "hpsearch"


def optuna_sampler_class(algorithm: str) -> type[optuna.samplers.BaseSampler]:
    """The Optuna sampler ``algorithm`` names (:data:`SAMPLERS`), Optuna's logs silenced."""
    silence_optuna()
    return getattr(optuna.samplers, SAMPLERS[algorithm])


def silence_optuna() -> None:
    """Optuna's info and warning logs, its experimental and deprecation warnings: off.
    Errors are still logged, and exceptions raised. Called by every search and every look
    at a sampler class, so filters someone reset come back (an identical filter replaces
    itself, the list does not grow)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # before Python 3.12 Optuna's warnings name its own modules, from 3.12 on the caller's
    warnings.filterwarnings("ignore", module=r"optuna(\.|$)")
    warnings.filterwarnings("ignore", module=r"hpsearch\.strategies\.optuna(\.|$)")


#: where Optuna's samplers cache the study's search space (IntersectionSearchSpace and the
#: like; private names: a sampler without them simply keeps its own)
_SPACE_CACHES = ("_search_space", "_intersection_search_space",
                 "_group_decomposed_search_space")


#: where a sampler keeps its random states (private names, checked on use): each trial's
#: sampler may then be one object seeded anew rather than a new one. A sampler not named
#: here, or whose attributes are not what they were (another Optuna), is made anew.
_RANDOM_STATES = {"TPESampler": ("_rng", "_random_sampler._rng")}


def _random_states(sampler: optuna.samplers.BaseSampler) -> list[np.random.RandomState]:
    """The random states of ``sampler`` that make all its draws, if :data:`_RANDOM_STATES`
    knows them (and they still are random states); [] otherwise."""
    states = []
    for path in _RANDOM_STATES.get(type(sampler).__name__, ()):
        try:
            state = operator.attrgetter(f"{path}.rng")(sampler)
        except AttributeError:
            return []
        if not isinstance(state, np.random.RandomState):
            return []
        states.append(state)
    return states


#: the trial system attribute that holds a finished trial's constraint violations
VIOLATIONS_ATTR = "hpsearch:violations"


def _violations(trial: optuna.trial.FrozenTrial, count: int) -> list[float]:
    """Optuna's ``constraints_func`` (``constraints_func`` works from Optuna 4 to 6; 5's
    ``Trial.set_constraint`` does not exist in 4): what :meth:`OptunaSearch.record` set
    before the tell; a pruned trial (a forbidden draw included) breaks none."""
    return list(trial.system_attrs.get(VIOLATIONS_ATTR, [0.0] * count))


def _json_copy(value: Any) -> Any:
    """``value`` as the journal gives it back."""
    return json.loads(json.dumps(value, allow_nan=False))


class OptunaSearch:
    """An Optuna study in memory: propose, record outcomes, rebuild from the journal.

    Not thread-safe: one thread at a time (the strategy's worker, or the caller before
    the worker has jobs).
    """

    def __init__(self, spec: SearchSpec, seed: int, options: dict[str, Any]) -> None:
        silence_optuna()
        self.algorithm = spec.algorithm
        self._seed = seed
        self._options = options
        self._space = OptunaSpace(spec)
        self._objectives = len(spec.objectives)
        self._storage = optuna.storages.InMemoryStorage()
        optuna.create_study(storage=self._storage, study_name=_STUDY,
                            directions=spec.directions)
        self._study_id = self._storage.get_study_id_from_name(_STUDY)
        self._caches: dict[str, Any] = {}
        self._constrained = len(spec.constraints)
        # tells need no seed (after_trial draws nothing); the teller's sampler is its own
        self._teller = self._load(self._new_sampler(derive_seed(seed, 0)))
        self._reseeded: optuna.samplers.BaseSampler | None = None  # see _sampler
        self._points = list(spec.initial_points)
        self._initial = [self._space.raw(config) for config in self._points]
        self._forbid = list(spec.forbid)
        #: the study's trial number of each proposal (warm results and forbidden draws
        #: come between)
        self._numbers: list[int] = []
        for result in spec.warm_results:
            self._add({"params": self._space.raw(result.config)}, TrialState.COMPLETE,
                      list(result.values))

    def _load(self, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
        return optuna.load_study(study_name=_STUDY, storage=self._storage, sampler=sampler,
                                 pruner=optuna.pruners.NopPruner())

    def _study(self, trial: int) -> optuna.Study:
        """The study as seen through a sampler seeded for trial ``trial``."""
        return self._load(self._sampler(trial))

    def _sampler(self, trial: int) -> optuna.samplers.BaseSampler:
        """A sampler seeded for trial ``trial``: a new one, or where the sampler's random
        states are known (:data:`_RANDOM_STATES`), the one kept for every trial, seeded
        anew -- the same as a new one, a hundredth of its construction."""
        seed = derive_seed(self._seed, trial)
        if self._reseeded is not None:
            for state in _random_states(self._reseeded):
                state.seed(seed)
            return self._reseeded
        sampler = self._new_sampler(seed)
        if _random_states(sampler):
            self._reseeded = sampler
        return sampler

    def _new_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        extra = {"constraints_func": functools.partial(_violations, count=self._constrained)
                 } if self._constrained else {}
        with warnings.catch_warnings():  # Optuna 5 deprecates constraints_func (for 7)
            warnings.simplefilter("ignore", FutureWarning)
            sampler = optuna_sampler_class(self.algorithm)(seed=seed, **self._options, **extra)
        self._share_caches(sampler)
        return sampler

    def _share_caches(self, sampler: optuna.samplers.BaseSampler) -> None:
        """Give ``sampler`` the search-space caches of the first one: each is a function
        of the study alone, kept up to date trial by trial, so a fresh sampler per trial
        would otherwise rebuild it from every trial (quadratic in the trial count)."""
        for name in _SPACE_CACHES:
            mine = getattr(sampler, name, None)
            if mine is not None and not isinstance(mine, dict):
                setattr(sampler, name, self._caches.setdefault(name, mine))

    def _trial_id(self, trial: int) -> int:
        return self._storage.get_trial_id_from_study_id_trial_number(self._study_id, trial)

    def propose(self) -> Proposal | None:
        """The next trial's proposal: its initial point if it has one (enqueued, as
        ``study.enqueue_trial`` does), else the sampler's; a draw ``forbid`` rejects is told
        FAIL and kept in the proposal's ``internal["skipped"]`` (a restore adds it back), and
        after :data:`FORBIDDEN_DRAWS` of them in a row: None."""
        trial = len(self._numbers)
        skipped: list[dict[str, Any]] = []
        for _draw in range(FORBIDDEN_DRAWS):
            number = self._storage.get_n_trials(self._study_id)
            study = self._study(number)
            if trial < len(self._initial):
                study.enqueue_trial(self._initial[trial])
            config, internal = self._ask(study, number)
            if trial < len(self._points):  # as given (Optuna's raw value of a normal one
                config = self._points[trial]  # maps back to it only within rounding)
            if not forbidden(config, self._forbid):
                self._numbers.append(number)
                return Proposal(trial, config, {**internal, "skipped": skipped} if skipped
                                else internal)
            study.tell(number, state=TrialState.PRUNED)
            skipped.append(internal)
        return None

    def _ask(self, study: optuna.Study, number: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Ask trial ``number``: the run's configuration, and what the journal keeps."""
        before = self._storage.get_study_system_attrs(self._study_id)
        trial = study.ask(fixed_distributions=self._space.base)
        assert trial.number == number
        config = self._space.config(trial)
        frozen = self._storage.get_trial(self._trial_id(number))
        study_attrs = {k: v for k, v in self._storage.get_study_system_attrs(
            self._study_id).items() if k not in before or before[k] != v}
        internal = _json_copy({"params": frozen.params, "system_attrs": frozen.system_attrs,
                               "study_attrs": study_attrs})
        # the live study holds what a restored one will: the journal's (JSON) values
        for key, value in internal["system_attrs"].items():
            self._storage.set_trial_system_attr(self._trial_id(number), key, value)
        self._set_study_attrs(internal["study_attrs"])
        return config, internal

    def _set_study_attrs(self, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            self._storage.set_study_system_attr(self._study_id, key, value)

    def record(self, outcome: Outcome) -> None:
        """Tell Optuna how a trial ended (see the module docstring)."""
        study = self._teller
        values = outcome.values
        number = self._numbers[outcome.trial]
        if outcome.violations is not None and self._constrained:
            self._storage.set_trial_system_attr(self._trial_id(number), VIOLATIONS_ATTR,
                                                list(outcome.violations))
        if outcome.status == "finished" and values is not None and len(
                values) == self._objectives and not any(math.isnan(v) for v in values):
            study.tell(number, [float(v) for v in values])
        elif outcome.status == "pruned":
            reported = dict(outcome.intermediate) or ({0: values[0]} if values else {})
            if self._objectives == 1:  # Optuna keeps intermediate values for one objective
                trial_id = self._trial_id(number)
                for step, value in sorted((int(s), float(v)) for s, v in reported.items()):
                    self._storage.set_trial_intermediate_value(trial_id, step, value)
            study.tell(number, state=TrialState.PRUNED)
        else:
            study.tell(number, state=TrialState.FAIL)

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        """Add the journaled trials back as RUNNING (each after the forbidden draws it
        skipped, as FAIL), then tell their outcomes in order."""
        for number, proposal in enumerate(proposals):
            if proposal.trial != number or "params" not in proposal.internal:
                raise ValueError(f"cannot restore an Optuna search from proposal "
                                 f"{proposal.trial} (expected trial {number} with Optuna "
                                 "parameters)")
            try:
                for skipped in proposal.internal.get("skipped", []):
                    self._add(skipped, TrialState.PRUNED)
                self._numbers.append(self._add(proposal.internal, TrialState.RUNNING))
            except (KeyError, ValueError) as exc:
                raise UsageError(f"cannot resume: trial {number} of the journal does not fit "
                                 f"the search space now ({type(exc).__name__}: {exc}); resume "
                                 "with the search file or grid module the search started "
                                 "with") from None
        for outcome in outcomes:
            self.record(outcome)

    def _add(self, internal: dict[str, Any], state: TrialState,
             values: list[float] | None = None) -> int:
        """Add a trial of ``internal``'s parameters and attributes; its number."""
        params = internal["params"]
        self._teller.add_trial(optuna.trial.create_trial(
            state=state, params=params, values=values,
            distributions={name: self._space.distribution(name) for name in params},
            system_attrs=internal.get("system_attrs", {})))
        self._set_study_attrs(internal.get("study_attrs", {}))
        return self._storage.get_n_trials(self._study_id) - 1
