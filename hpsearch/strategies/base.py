"""The seam between the driver and whatever proposes configurations.

The driver asks, the runs answer::

    strategy.restore(proposals, outcomes)     # once, from the journal (a fresh search: [], [])
    while not (strategy.done and nothing runs):
        for p in strategy.ask(free):          # may be fewer than asked, even none for now
            journal "trial" p; submit p.config
        ... a run ends ...
        strategy.tell(Outcome(trial, "finished", values=[0.41]))

A strategy never touches the filesystem or a backend, and never blocks the driver for
long: ``ask`` returns what is ready (a slow sampler computes in a thread of its own and
says ``busy`` meanwhile). ``restore`` rebuilds it from what the journal holds -- proposals
in trial order are reused, never re-drawn; outcomes are told again -- so a resumed search
continues where it stopped. With one run at a time, a search resumed any number of times
proposes the same sequence as an uninterrupted one (each trial draws from a generator
seeded by (seed, trial number)).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: outcomes a strategy is told
OUTCOME_STATUSES = ("finished", "failed", "pruned")


@dataclass(frozen=True, slots=True)
class Proposal:
    """One trial: its number (0, 1, ... in proposal order) and the configuration to run.

    ``internal`` is whatever the strategy needs to rebuild itself from the journal (an
    Optuna sampler's raw parameters and system attributes, a grid position); JSON values only.
    ``run_id`` names the run when the strategy decides it (a grid names a run by its
    configuration, so equal configurations share one); None lets the driver name it by
    trial. Restored proposals carry the run id the journal holds.

    ``lineage`` is the trial's place in a multi-fidelity search, shown as results columns
    (``{"continues": 3, "bracket": 0, "rung": 1}``; JSON values only): ``continues`` is
    the trial whose run this one continues -- it gets that run's output directory as
    ``HPSEARCH_RESUME_FROM``.
    """

    trial: int
    config: dict[str, Any]
    internal: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a trial ended: ``values`` holds one number per objective for a finished trial
    (the last reported ones for a pruned trial, None if none); ``intermediate`` maps a
    step to the first objective's value reported there; ``violations`` holds one number per
    search constraint (:meth:`hpsearch.spec.constraints.Constraint.violation`, <= 0: kept)."""

    trial: int
    status: str
    values: list[float] | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    violations: list[float] | None = None


class Strategy(ABC):
    """Proposes configurations; see the module docstring for the calling order."""

    #: proposals depend on results: the driver asks only for runs that can start now
    adaptive: bool = False
    #: keeps what became of each run though it is not adaptive (a served search's points,
    #: :mod:`hpsearch.service.observed`): its ``restore`` gets the outcomes too
    keeps_outcomes: bool = False

    @property
    def restored_with_outcomes(self) -> bool:
        """Whether ``restore`` gets the outcomes of the runs that ended."""
        return self.adaptive or self.keeps_outcomes

    @abstractmethod
    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        """Rebuild from the journal: ``proposals`` in trial order, ``outcomes`` as they came
        (only where :attr:`restored_with_outcomes`: the others learn nothing from results
        and get none)."""

    @abstractmethod
    def ask(self, n: int) -> list[Proposal]:
        """Up to ``n`` new proposals, numbered on from the last trial; never blocks long."""

    @abstractmethod
    def tell(self, outcome: Outcome) -> None:
        """A trial ended (told once, when no retry follows)."""

    @property
    @abstractmethod
    def done(self) -> bool:
        """No proposal will ever come again (the trial budget is spent, the grid walked)."""

    @property
    def total(self) -> int | None:
        """How many trials the search will have, when known."""
        return None

    @property
    def total_is_estimate(self) -> bool:
        """``total`` is an estimate (shown as ``~N``) until the strategy is done."""
        return False

    def finish(self, finished: Sequence[Outcome]) -> list[Proposal]:
        """Every run ended and no proposal is left (``done``): proposals to run after all
        of them (:mod:`hpsearch.strategies.rerun_best`), given the finished runs' outcomes;
        [] ends the search. Asked again after those ran."""
        return []

    def withdrawn(self) -> set[int]:
        """Trials among the restored ones that should not run (any more): a changed grid
        no longer holds them. The driver drops those that never ran; asked once, after
        ``restore``."""
        return set()

    @property
    def stop_note(self) -> str | None:
        """Why the strategy ended before its trials were spent (one line for the user;
        ``forbid`` rejected every draw), None when it did not."""
        return None

    @property
    def busy(self) -> bool:
        """Proposals asked for are still being computed (the driver polls sooner)."""
        return False

    def call_when_ready(self, wake: Callable[[], None]) -> None:  # noqa: B027
        """``wake`` is to be called, from any thread, each time a proposal that was being
        computed is ready (the driver then stops waiting). A strategy that proposes in
        the caller's thread has nothing to call."""

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        """For ``--dry_run``: the first proposals that need no results, and a note on the
        rest (None when the list is complete)."""
        return self.ask(n), None

    def close(self) -> None:  # noqa: B027
        """Stop any thread the strategy started."""


class WrappedStrategy(Strategy):
    """``inner`` as it is: every call passes through. A wrapper that adds to a strategy
    (:mod:`hpsearch.strategies.rerun_best`, the service's observed strategy) overrides only
    what it changes."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner

    @property  # type: ignore[override]
    def adaptive(self) -> bool:
        return self.inner.adaptive

    @property  # type: ignore[override]
    def keeps_outcomes(self) -> bool:
        return self.inner.keeps_outcomes

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        self.inner.restore(proposals, outcomes)

    def ask(self, n: int) -> list[Proposal]:
        return self.inner.ask(n)

    def tell(self, outcome: Outcome) -> None:
        self.inner.tell(outcome)

    @property
    def done(self) -> bool:
        return self.inner.done

    @property
    def total(self) -> int | None:
        return self.inner.total

    @property
    def total_is_estimate(self) -> bool:
        return self.inner.total_is_estimate

    def finish(self, finished: Sequence[Outcome]) -> list[Proposal]:
        return self.inner.finish(finished)

    def withdrawn(self) -> set[int]:
        return self.inner.withdrawn()

    @property
    def stop_note(self) -> str | None:
        return self.inner.stop_note

    @property
    def busy(self) -> bool:
        return self.inner.busy

    def call_when_ready(self, wake: Callable[[], None]) -> None:
        self.inner.call_when_ready(wake)

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        return self.inner.preview(n)

    def close(self) -> None:
        self.inner.close()
