"""``rerun_best``: the best configuration once more, after every run ended.

With some values added or replaced (a search file's setting; Auptimizer's ``save_model``)::

    rerun_best: {save_model: true, folder_name: best}

:class:`RerunBest` wraps the search's strategy: asks, tells and restores pass through, and
:meth:`RerunBest.finish` -- called by the driver when nothing is left to run -- proposes the
best finished run's configuration (by the first objective, among the runs that keep the
``constraints``) with these values, as one more trial whose ``internal`` says
``{"rerun_best": <the best trial>}``. That trial is journaled like any other, so a resumed
search knows it was proposed and never proposes it again; it is never shown to the wrapped
strategy (a sampler's study knows nothing of it). When no run finished, nothing reruns and
:attr:`stop_note` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hpsearch.strategies.base import Outcome, Proposal, Strategy, WrappedStrategy

#: the ``internal`` key of the rerun's proposal
KEY = "rerun_best"


class RerunBest(WrappedStrategy):
    """``inner``, then the best configuration once more with ``extra`` (module docstring)."""

    def __init__(self, inner: Strategy, extra: dict[str, Any], minimize: bool) -> None:
        super().__init__(inner)
        self._extra = dict(extra)
        self._minimize = minimize
        self._configs: dict[int, dict[str, Any]] = {}
        self._rerun: int | None = None  # the rerun's trial, once proposed
        self._note: str | None = None

    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        own = [p for p in proposals if KEY in p.internal]
        if own:
            self._rerun = own[0].trial
        mine = [p for p in proposals if KEY not in p.internal]
        self._configs = {p.trial: p.config for p in mine}
        self.inner.restore(mine, [o for o in outcomes if o.trial != self._rerun])

    def ask(self, n: int) -> list[Proposal]:
        proposals = self.inner.ask(n)
        self._configs.update((p.trial, p.config) for p in proposals)
        return proposals

    def tell(self, outcome: Outcome) -> None:
        if outcome.trial != self._rerun:
            self.inner.tell(outcome)

    def finish(self, finished: Sequence[Outcome]) -> list[Proposal]:
        if self._rerun is not None or self._note is not None:
            return []
        scored = [o for o in finished if o.status == "finished" and o.values and
                  o.trial in self._configs and not any(v > 0 for v in o.violations or ())]
        if not scored:
            self._note = ("rerun_best: no run finished (with the constraints kept), so none "
                          "runs again")
            return []
        best = (min if self._minimize else max)(scored, key=lambda o: o.values[0])  # type: ignore[index]
        self._rerun = 1 + max(self._configs)
        return [Proposal(self._rerun, {**self._configs[best.trial], **self._extra},
                         {KEY: best.trial})]

    @property
    def total(self) -> int | None:
        total = self.inner.total
        return None if total is None else total + 1

    @property
    def stop_note(self) -> str | None:
        return self.inner.stop_note or self._note

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        proposals, note = self.inner.preview(n)
        self._configs.update((p.trial, p.config) for p in proposals)
        rerun = "then the best configuration once more (rerun_best)"
        return proposals, f"{note}; {rerun}" if note else rerun
