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

Sampling runs in one worker thread (:mod:`hpsearch.strategies.ordered`): ``ask`` returns the
proposals that are ready and orders more, ``busy`` says some are being computed. The
driver's strategy computes in a child process (:mod:`hpsearch.strategies.optuna.process`:
the same calls in the same order, so the same proposals), and with runs in parallel it
keeps one proposal computed ahead of the asks.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hpsearch.errors import UsageError
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.points import exhausted_note
from hpsearch.strategies.base import Outcome, Proposal, Strategy
from hpsearch.strategies.optuna.catalog import RESULT_FREE, SAMPLERS
from hpsearch.strategies.optuna.process import SamplerProcess, SamplerUnavailable
from hpsearch.strategies.ordered import OrderedWorker

if TYPE_CHECKING:
    from hpsearch.strategies.optuna.strategy import OptunaSearch


def sampler_options(algorithm: str, options: dict[str, Any], parallel: int) -> dict[str, Any]:
    """``options`` checked against the sampler's constructor (one-line UsageError), plus
    the constant liar for TPE with several runs at once unless the options say otherwise.
    No options need no check, nor Optuna: the driver whose sampler computes in its own
    process then never imports it."""
    if options:
        _check_options(algorithm, options)
    if algorithm == "tpe" and parallel > 1:
        return {"constant_liar": True, **options}
    return options


def _check_options(algorithm: str, options: dict[str, Any]) -> None:
    # Optuna, imported here only: a search without algorithm_options does without it
    from hpsearch.strategies.optuna.strategy import optuna_sampler_class

    cls = optuna_sampler_class(algorithm)
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
    try:
        cls(seed=0, **options)
    except (TypeError, ValueError) as exc:
        text = " ".join(str(exc).split())
        raise UsageError(f"algorithm_options for {algorithm} are not accepted ({text}); "
                         "fix them") from None


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


class OptunaStrategy(Strategy):
    """``num_trials`` trials proposed by one of Optuna's samplers (module docstring)."""

    adaptive = True

    def __init__(self, spec: SearchSpec, seed: int, num_trials: int, parallel: int,
                 process: SamplerProcess | None = None) -> None:
        """``process``: a spawned :class:`SamplerProcess` to compute in (the strategy starts
        it with the search and closes it), not this interpreter, where the driver's work
        waits for the sampler's and the other way round; spawned early, it imports Optuna
        while the driver starts (which imports it only to check ``algorithm_options``, or
        to sample here). The first ``restore``, ``ask`` or ``tell`` waits for it (or, where
        it refused the search, makes the search in this process). None: compute in this
        process."""
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
        self._note: str | None = None  # forbid rejected every draw: no more proposals

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
            if self._note is not None:
                more = 0
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
            from hpsearch.strategies.optuna.strategy import OptunaSearch

            self._search = OptunaSearch(self._spec, self._seed, self._options)
        return self._search

    def _compute(self, search: OptunaSearch | SamplerProcess, count: int) -> None:
        """In the worker: ``count`` proposals, one after the other (none after ``forbid``
        rejected every draw of one)."""
        for _ in range(count):
            proposal = None if self._note is not None else search.propose()
            with self._lock:
                self._computing -= 1
                if proposal is not None:
                    self._ready.append(proposal)
                elif self._note is None:
                    self._note = exhausted_note(self._handed + len(self._ready))
            if self._wake is not None:
                self._wake()

    def call_when_ready(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def tell(self, outcome: Outcome) -> None:
        self._worker.submit(functools.partial(self._searching().record, outcome))

    @property
    def done(self) -> bool:
        with self._lock:
            return self._handed >= self._num_trials or (
                self._note is not None and not self._ready and not self._computing)

    @property
    def stop_note(self) -> str | None:
        return self._note

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
        option = RESULT_FREE[self._spec.algorithm]
        from hpsearch.strategies.optuna.strategy import OptunaSearch, optuna_sampler_class

        cls = optuna_sampler_class(self._spec.algorithm)
        free = self._options.get(option, inspect.signature(cls).parameters[option].default)
        scratch = OptunaSearch(self._spec, self._seed, self._options)
        proposals = []
        for trial in range(min(n, free, self._num_trials)):
            proposal = scratch.propose()
            if proposal is None:
                return proposals, exhausted_note(trial)
            proposals.append(proposal)
        if free >= self._num_trials:
            return proposals, None
        return proposals, (f"trials {free} to {self._num_trials - 1} depend on the results "
                           f"({self._spec.algorithm} {option}={free})")

    def close(self) -> None:
        self._worker.close()
        if isinstance(self._search, SamplerProcess):
            self._search.close()
