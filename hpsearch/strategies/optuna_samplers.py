"""Optuna's samplers as strategies: ``algorithm: tpe | cmaes | gp | nsga2``.

=========  ===================  ======================================================
algorithm  Optuna sampler       with runs in parallel
=========  ===================  ======================================================
tpe        ``TPESampler``       constant liar: running trials count as bad results
cmaes      ``CmaEsSampler``     running trials are ignored; each slot draws its own
                                point of the current generation
gp         ``GPSampler``        running trials enter the acquisition (q-LogEI, q-EHVI;
                                Optuna >= 5: earlier GPSamplers ignore them)
nsga2      ``NSGAIISampler``    running trials are ignored; each slot breeds its own child
=========  ===================  ======================================================

``algorithm_options`` are handed to the sampler's constructor (``seed`` is ours).

How the search is kept, and why a resumed one proposes the same sequence: the study lives
in an ``InMemoryStorage`` only, nothing on disk. Each trial ``k`` is asked by a sampler
seeded ``derive_seed(seed, k)`` -- a new one, or TPE's one sampler with its random states
seeded anew, which is the same -- so what trial ``k`` gets depends on the seed and on what
the storage holds, never on the life of a sampler object. What the storage holds
goes into the journal with each proposal (:attr:`Proposal.internal`)::

    {"params": {"lr": 0.0031, "act": 1},          # Optuna's values (indices for lists)
     "system_attrs": {"cma:generation": 0, ...},   # what the sampler keeps in the trial
     "study_attrs": {"NSGAIISampler:parent:1": [...]}}  # study attrs the ask set

and :meth:`OptunaStrategy.restore` adds every journaled trial back as RUNNING, with those
attributes, then tells the journaled outcomes in order -- the storage a restarted search
asks from is the one the first search asked from. With one run at a time the sequence is
therefore exactly the uninterrupted one, however often the search is stopped. With several
runs at once, which outcomes arrived before which ask depends on timing, so no two searches
need agree (each is still a valid search).

Outcomes: ``finished`` with one number per objective is COMPLETE; ``pruned`` is PRUNED with
its intermediate values (Optuna uses the last one as its value, single objective only);
anything else, and a finished trial without usable values (missing, NaN), is FAIL, which
the samplers ignore.

Sampling runs in one worker thread (:mod:`hpsearch.strategies.worker`): ``ask`` returns the
proposals that are ready and orders more, ``busy`` says some are being computed. The
driver's strategy computes in a child process (:mod:`hpsearch.strategies.sampler_process`:
the same calls in the same order, so the same proposals), and with runs in parallel it
keeps one proposal computed ahead of the asks.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import json
import math
import operator
import threading
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from hpsearch.errors import UsageError
from hpsearch.spec import SearchSpec
from hpsearch.strategies.base import Outcome, Proposal, Strategy
from hpsearch.strategies.optuna_space import OptunaSpace
from hpsearch.strategies.sampler_process import SamplerProcess, SamplerUnavailable
from hpsearch.strategies.seeding import derive_seed
from hpsearch.strategies.worker import OrderedWorker

SAMPLERS = {"tpe": "TPESampler", "cmaes": "CmaEsSampler", "gp": "GPSampler",
            "nsga2": "NSGAIISampler"}
#: the constructor argument that says how many first trials are drawn without results
_RESULT_FREE = {"tpe": "n_startup_trials", "gp": "n_startup_trials",
                "cmaes": "n_startup_trials", "nsga2": "population_size"}
_STUDY = "hpsearch"


def silence_optuna() -> None:
    """Optuna's info and warning logs, its experimental and deprecation warnings: off.
    Errors are still logged, and exceptions raised. Called by every strategy, so filters
    someone reset come back (an identical filter replaces itself, the list does not grow)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # before Python 3.12 Optuna's warnings name its own modules, from 3.12 on the caller's
    warnings.filterwarnings("ignore", module=r"optuna(\.|$)")
    warnings.filterwarnings("ignore", module=r"hpsearch\.strategies\.optuna_")


def sampler_options(algorithm: str, options: dict[str, Any], parallel: int) -> dict[str, Any]:
    """``options`` checked against the sampler's constructor (one-line UsageError), plus
    the constant liar for TPE with several runs at once unless the options say otherwise."""
    silence_optuna()
    cls = getattr(optuna.samplers, SAMPLERS[algorithm])
    signature = inspect.signature(cls).parameters
    valid = [name for name in signature if name != "seed"]
    if "seed" in options:
        raise UsageError("algorithm_options: seed is the search's own seed; remove it from "
                         "algorithm_options and set seed (or --random_seed) instead")
    unknown = [name for name in options if name not in valid]
    if unknown:
        raise UsageError(f"algorithm_options: {algorithm} has no option "
                         f"{', '.join(map(repr, unknown))}; valid ones are {', '.join(valid)}")
    for name, value in options.items():
        default = signature[name].default
        if not _same_kind(value, default):
            raise UsageError(f"algorithm_options: {algorithm}'s {name} must be of type "
                             f"{type(default).__name__} (its default is {default!r}), "
                             f"not {value!r}")
    if algorithm == "tpe" and parallel > 1:
        options = {"constant_liar": True, **options}
    try:
        cls(seed=0, **options)
    except (TypeError, ValueError) as exc:
        text = " ".join(str(exc).split())
        raise UsageError(f"algorithm_options for {algorithm} are not accepted ({text}); "
                         "fix them") from None
    return options


def _same_kind(value: Any, default: Any) -> bool:
    """``value`` may stand where ``default`` does (ints count as floats); True when the
    default (None, a callable, ...) says nothing."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        kinds = (int,) if isinstance(default, int) else (int, float)
        return isinstance(value, kinds) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    return True


def check_gp_dependencies() -> None:
    if any(importlib.util.find_spec(name) is None for name in ("torch", "scipy")):
        raise UsageError("algorithm gp needs torch and scipy: pip install 'hpsearch[gp]'")


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


def _json_copy(value: Any) -> Any:
    """``value`` as the journal gives it back."""
    return json.loads(json.dumps(value, allow_nan=False))


class OptunaSearch:
    """An Optuna study in memory: propose, record outcomes, rebuild from the journal.

    Not thread-safe: one thread at a time (the strategy's worker, or the caller before
    the worker has jobs).
    """

    def __init__(self, spec: SearchSpec, seed: int, options: dict[str, Any]) -> None:
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
        # tells need no seed (after_trial draws nothing); the teller's sampler is its own
        self._teller = self._load(self._new_sampler(derive_seed(seed, 0)))
        self._reseeded: optuna.samplers.BaseSampler | None = None  # see _sampler

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
        cls = getattr(optuna.samplers, SAMPLERS[self.algorithm])
        sampler = cls(seed=seed, **self._options)
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

    def propose(self) -> Proposal:
        number = self._storage.get_n_trials(self._study_id)
        study = self._study(number)
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
        return Proposal(number, config, internal)

    def _set_study_attrs(self, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            self._storage.set_study_system_attr(self._study_id, key, value)

    def record(self, outcome: Outcome) -> None:
        """Tell Optuna how a trial ended (see the module docstring)."""
        study = self._teller
        values = outcome.values
        if outcome.status == "finished" and values is not None and len(
                values) == self._objectives and not any(math.isnan(v) for v in values):
            study.tell(outcome.trial, [float(v) for v in values])
        elif outcome.status == "pruned":
            reported = dict(outcome.intermediate) or ({0: values[0]} if values else {})
            if self._objectives == 1:  # Optuna keeps intermediate values for one objective
                trial_id = self._trial_id(outcome.trial)
                for step, value in sorted((int(s), float(v)) for s, v in reported.items()):
                    self._storage.set_trial_intermediate_value(trial_id, step, value)
            study.tell(outcome.trial, state=TrialState.PRUNED)
        else:
            study.tell(outcome.trial, state=TrialState.FAIL)

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        """Add the journaled trials back as RUNNING, then tell their outcomes in order."""
        study = optuna.load_study(study_name=_STUDY, storage=self._storage)
        for number, proposal in enumerate(proposals):
            if proposal.trial != number or "params" not in proposal.internal:
                raise ValueError(f"cannot restore an Optuna search from proposal "
                                 f"{proposal.trial} (expected trial {number} with Optuna "
                                 "parameters)")
            params = proposal.internal["params"]
            try:
                trial = optuna.trial.create_trial(
                    state=TrialState.RUNNING, params=params,
                    distributions={name: self._space.distribution(name) for name in params},
                    system_attrs=proposal.internal.get("system_attrs", {}))
            except (KeyError, ValueError) as exc:
                raise UsageError(f"cannot resume: trial {number} of the journal does not fit "
                                 f"the search space now ({type(exc).__name__}: {exc}); resume "
                                 "with the search file or grid module the search started "
                                 "with") from None
            self._set_study_attrs(proposal.internal.get("study_attrs", {}))
            study.add_trial(trial)
        for outcome in outcomes:
            self.record(outcome)


class OptunaStrategy(Strategy):
    """``num_trials`` trials proposed by one of Optuna's samplers (module docstring)."""

    adaptive = True

    def __init__(self, spec: SearchSpec, seed: int, num_trials: int, parallel: int,
                 process: SamplerProcess | None = None) -> None:
        """``process``: a spawned :class:`SamplerProcess` to compute in (the strategy starts
        it with the search and closes it), not this interpreter, where the driver's work
        waits for the sampler's and the other way round. Spawn it before this module is
        imported: the child imports Optuna while the driver does. The first ``restore``,
        ``ask`` or ``tell`` waits for it (or, where it refused the search, makes the search
        in this process). None: compute in this process."""
        try:
            if spec.algorithm not in SAMPLERS:
                raise ValueError(f"OptunaStrategy runs {', '.join(SAMPLERS)}, not "
                                 f"{spec.algorithm!r}")
            if spec.algorithm == "gp":
                check_gp_dependencies()
            self._options = sampler_options(spec.algorithm, dict(spec.algorithm_options),
                                            parallel)
        except BaseException:
            if process is not None:
                process.close()
            raise
        self._spec = spec
        self._seed = seed
        self._num_trials = num_trials
        self._search: OptunaSearch | SamplerProcess | None = None
        if process is not None:
            with contextlib.suppress(SamplerUnavailable):
                process.start(spec, seed, self._options)
                self._search = process
        self._lock = threading.Lock()
        self._ready: deque[Proposal] = deque()
        self._computing = 0  # proposals ordered from the worker, not ready yet
        self._handed = 0  # proposals returned by ask (or restored)
        #: with runs in parallel (where no sequence is promised), one proposal is computed
        #: ahead of the asks, so the sampler works while the driver launches and records
        #: (more would propose from fewer results: with the constant liar, as if the search
        #: had more slots)
        self._ahead = 1 if parallel > 1 else 0
        self._worker = OrderedWorker(f"sampler {spec.algorithm}")
        self._wake: Callable[[], None] | None = None

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        """Call before the first ``ask`` or ``tell``."""
        assert self._handed == 0 and self._computing == 0 and not self._ready
        self._searching().restore(proposals, outcomes)
        self._handed = len(proposals)

    def ask(self, n: int) -> list[Proposal]:
        self._worker.check()
        with self._lock:
            out = [self._ready.popleft() for _ in range(min(n, len(self._ready)))]
            self._handed += len(out)
            room = self._num_trials - self._handed - len(self._ready) - self._computing
            more = min(n - len(out) + self._ahead - len(self._ready) - self._computing, room)
            if more > 0:
                self._computing += more
        if more > 0:
            self._worker.submit(functools.partial(self._compute, self._searching(), more))
        return out

    def _searching(self) -> OptunaSearch | SamplerProcess:
        """The search, ready (in the driver's thread: the worker only uses it after)."""
        if isinstance(self._search, SamplerProcess):
            try:
                self._search.wait_started()
            except SamplerUnavailable:
                self._search = None
        if self._search is None:
            self._search = OptunaSearch(self._spec, self._seed, self._options)
        return self._search

    def _compute(self, search: OptunaSearch | SamplerProcess, count: int) -> None:
        """In the worker: ``count`` proposals, one after the other."""
        for _ in range(count):
            proposal = search.propose()
            with self._lock:
                self._ready.append(proposal)
                self._computing -= 1
            if self._wake is not None:
                self._wake()

    def call_when_ready(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def tell(self, outcome: Outcome) -> None:
        self._worker.submit(functools.partial(self._searching().record, outcome))

    @property
    def done(self) -> bool:
        return self._handed >= self._num_trials

    @property
    def total(self) -> int:
        return self._num_trials

    @property
    def busy(self) -> bool:
        return self._computing > 0

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        """The sampler's start-up trials: TPE's and GP's ``n_startup_trials``, CMA-ES's
        ``n_startup_trials`` (its first generation waits for them to finish), NSGA-II's
        first generation (``population_size``); they are drawn at random whatever the
        results, so the search proposes exactly these first."""
        option = _RESULT_FREE[self._spec.algorithm]
        cls = getattr(optuna.samplers, SAMPLERS[self._spec.algorithm])
        free = self._options.get(option, inspect.signature(cls).parameters[option].default)
        scratch = OptunaSearch(self._spec, self._seed, self._options)
        proposals = [scratch.propose() for _ in range(min(n, free, self._num_trials))]
        if free >= self._num_trials:
            return proposals, None
        return proposals, (f"trials {free} to {self._num_trials - 1} depend on the results "
                           f"({self._spec.algorithm} {option}={free})")

    def close(self) -> None:
        self._worker.close()
        if isinstance(self._search, SamplerProcess):
            self._search.close()
