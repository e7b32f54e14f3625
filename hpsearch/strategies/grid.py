"""The grid: every configuration of a grid module's lists, in a seeded order (hypnettorch's).

Each proposal carries its position in the walk (``internal = {"g": <grid id>, "p": <pos>}``),
so a resumed search goes on from the last position instead of walking the grid again; the
configurations already proposed are known by their run ids. When the grid changed since
(another grid id: values added or removed, another seed or order), the new grid is walked
from its start, configurations already proposed are skipped (finished runs are kept), and
proposals the new grid no longer holds that never ran are withdrawn. A configuration that
``forbid`` matches is skipped (and not counted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.points import forbidden
from hpsearch.spec.values import canonical, canonical_config
from hpsearch.strategies.base import Outcome, Proposal, Strategy
from hpsearch.strategies.gridspace import SearchSpace, fingerprint

#: grids up to this size (with conditions) are counted exactly at the start
EXACT_COUNT_LIMIT = 20000


def grid_identity(space: SearchSpace) -> str:
    """16 hex digits naming the grid's configurations and their order."""
    text = "|".join([
        canonical_config({k: list(v) for k, v in space.grid.items()}),
        canonical([[dict(m), dict(r)] for m, r in space.conditions]),
        str(space.deterministic), str(space.seed), str(space.num_searches),
        str(space.random_picks)])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class GridStrategy(Strategy):
    """Proposes the grid's configurations in search order; never adaptive."""

    adaptive = False

    def __init__(self, spec: SearchSpec, *, seed: int, deterministic: bool = False,
                 num_searches: int = -1, random_picks: bool = False) -> None:
        grid = {k: v for k, v in spec.parameters.items()}
        self.space = SearchSpace(grid, spec.conditions, deterministic=deterministic,  # type: ignore[arg-type]
                                 seed=seed, num_searches=num_searches,
                                 random_picks=random_picks)
        self.identity = grid_identity(self.space)
        self._next_trial = 0
        self._seen: set[int] = set()
        self._walk: Iterator[tuple[int, dict[str, Any]]] | None = None
        self._done = False
        self._withdrawn: set[int] = set()
        self._forbid = list(spec.forbid)
        self._count_exact = not (self.space.conditions or self._forbid) and \
            not self.space.random_picks
        self._total = self.space.size_hint
        if not self._count_exact and self.space.grid_size <= EXACT_COUNT_LIMIT \
                and not self.space.random_picks:
            self._total = sum(1 for _pos, config in self.space.walk()
                              if not forbidden(config, self._forbid))
            self._count_exact = True
        elif not self._count_exact:
            self._total = self.space.estimate_size()

    # -- the seam ---------------------------------------------------------------------
    def restore(self, proposals: Sequence[Proposal], outcomes: Sequence[Outcome]) -> None:
        self._next_trial = 1 + max((p.trial for p in proposals), default=-1)
        if proposals and all(p.internal.get("g") == self.identity for p in proposals):
            last = max(p.internal.get("p", 0) for p in proposals)
            if not self.space.may_repeat:  # one configuration per grid point: go on after it
                self._walk = self.space.walk(last + 1, None, len(proposals))
                return
            self._seen = {int(p.run_id[:12], 16) for p in proposals if p.run_id}
            self._walk = self.space.walk(last, self._seen, len(proposals))
            return
        self._seen = {int(p.run_id[:12], 16) for p in proposals if p.run_id}
        if proposals:  # the grid changed: what it no longer holds (the driver withdraws
            # those of them that never ran)
            current = {fingerprint(config) for _pos, config in self.space.walk()}
            self._withdrawn = {p.trial for p in proposals
                               if p.run_id and int(p.run_id[:12], 16) not in current}
        self._walk = self.space.walk(0, self._seen, 0)

    def withdrawn(self) -> set[int]:
        return self._withdrawn

    def ask(self, n: int) -> list[Proposal]:
        if self._walk is None:
            self._walk = self.space.walk(0, self._seen, 0)
        proposals = []
        while len(proposals) < n and not self._done:
            step = next(self._walk, None)
            if step is None:
                self._done = True
                if not self._count_exact:
                    self._total, self._count_exact = self._next_trial, True
                break
            position, config = step
            if forbidden(config, self._forbid):
                continue
            proposals.append(Proposal(self._next_trial, config,
                                      {"g": self.identity, "p": position},
                                      run_id=f"{fingerprint(config):012x}"))
            self._next_trial += 1
        return proposals

    def tell(self, outcome: Outcome) -> None:
        """A grid learns nothing from results."""

    @property
    def done(self) -> bool:
        return self._done

    @property
    def total(self) -> int | None:
        return self._total

    @property
    def total_is_estimate(self) -> bool:
        return not self._count_exact

    def preview(self, n: int) -> tuple[list[Proposal], str | None]:
        return self.ask(n), None
