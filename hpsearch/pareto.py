"""The Pareto front of a multi-objective search: the runs no other run beats on every
objective at once."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated ``points`` (one value per objective; ``directions``
    are ``minimize``/``maximize``), in input order. Equal points are all on the front.

    Points are visited in lexicographic order (as minimisation), so a point can only be
    dominated by one visited before it, and only front points need checking; with two
    objectives a point is on the front when its second value beats every one before it.
    """
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    keyed = sorted(range(len(points)),
                   key=lambda i: [s * v for s, v in zip(signs, points[i], strict=True)])
    front: list[list[float]] = []
    chosen = []
    for i in keyed:
        p = [s * v for s, v in zip(signs, points[i], strict=True)]
        if len(p) == 2 and front:
            dominated = p != front[-1] and p[1] >= front[-1][1]
        else:
            dominated = any(f != p and all(a <= b for a, b in zip(f, p, strict=True))
                            for f in front)
        if not dominated:
            front.append(p)
            chosen.append(i)
    return sorted(chosen)
