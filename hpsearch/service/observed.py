"""A strategy wrapper that keeps a served search's points: what the driver asks and tells.

It tells a :class:`~hpsearch.service.points.PointBook` what the driver asks and tells the
strategy: every proposal (restored or new) becomes a point, every outcome the point's
verdict. The driver's own calls are the only source, so the points a service shows are the
journal's trials and the driver's verdicts -- nothing is judged twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from hpsearch.runs.model import run_id_of
from hpsearch.service.points import PointBook
from hpsearch.strategies.base import Outcome, Proposal, Strategy, WrappedStrategy


class ObservedStrategy(WrappedStrategy):
    """``inner`` as it is, with its proposals and outcomes copied into ``book``."""

    def __init__(self, inner: Strategy, book: PointBook) -> None:
        super().__init__(inner)
        self.book = book

    @property  # type: ignore[override]
    def keeps_outcomes(self) -> bool:
        """The book shows each run's verdict, also after a restart."""
        return True

    def _note(self, proposals: Sequence[Proposal]) -> None:
        for p in proposals:
            self.book.propose(p.trial, p.run_id or run_id_of(p.config, p.trial), p.config,
                              p.lineage.get("continues"))

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        self.inner.restore(proposals, outcomes)
        self._note(proposals)
        for outcome in outcomes:
            self._end(outcome)

    def ask(self, n: int) -> list[Proposal]:
        proposals = self.inner.ask(n)
        self._note(proposals)
        return proposals

    def tell(self, outcome: Outcome) -> None:
        self.inner.tell(outcome)
        self._end(outcome)

    def _end(self, outcome: Outcome) -> None:
        loss = outcome.values[0] if outcome.values else None
        self.book.end(outcome.trial, outcome.status, loss)

    def finish(self, finished: Sequence[Outcome]) -> list[Proposal]:
        proposals = self.inner.finish(finished)
        self._note(proposals)
        return proposals

    def withdrawn(self) -> set[int]:
        trials = self.inner.withdrawn()
        self.book.forget(trials)
        return trials
