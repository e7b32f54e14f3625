"""The Pareto front of a multi-objective search: the runs no other run beats on every objective.

A run *dominates* another when it is at least as good on every objective and better on one
(``directions`` say what better is: ``minimize`` or ``maximize``). Two objectives are sorted
once (O(n log n)); more are compared against the front found so far.
"""

from __future__ import annotations

from collections.abc import Sequence


def _oriented(values: Sequence[float], directions: Sequence[str]) -> tuple[float, ...]:
    """Values turned so that smaller is better on every objective."""
    return tuple(v if d == "minimize" else -v for v, d in zip(values, directions, strict=True))


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated ``points`` (one value per objective, NaN-free), in
    input order; equal points are all on the front."""
    oriented = [_oriented(p, directions) for p in points]
    order = sorted(range(len(oriented)), key=lambda i: oriented[i])
    front: list[int] = []
    if len(directions) == 2:
        best_second = float("inf")
        for i in order:  # by the first objective, then the second
            if oriented[i][1] < best_second or (front and oriented[i] == oriented[front[-1]]):
                front.append(i)
                best_second = min(best_second, oriented[i][1])
        return sorted(front)
    for i in order:
        if not any(_dominates(oriented[j], oriented[i]) for j in front):
            front.append(i)
    return sorted(front)
