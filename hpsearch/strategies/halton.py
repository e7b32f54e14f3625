"""A scrambled Halton sequence: quasi-random points of the unit cube, stdlib only.

Dimension ``d`` uses the ``d``-th prime ``b`` as its base. Point ``i`` writes ``i`` in base
``b`` (digits ``a_0, a_1, ...`` from the least significant) and mirrors them behind the
radix point, each digit position ``j`` through a random permutation ``p_j`` of ``0..b-1``::

    u_d(i) = p_0(a_0) / b + p_1(a_1) / b**2 + p_2(a_2) / b**3 + ...

The permutations (one per dimension and digit position, drawn from the seed) break the
correlations plain Halton shows between large bases, and make every point uniform on its
own. Positions past ``i``'s last digit permute a 0 too, up to double precision, so no point
sits on a coarse lattice. Index 0 (plain Halton's origin) is skipped, as usual:
:meth:`ScrambledHalton.point` numbers from 1.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from hpsearch.strategies.seeding import derive_seed

_BELOW_ONE = math.nextafter(1.0, 0.0)


def primes() -> Iterator[int]:
    """2, 3, 5, 7, 11, ..."""
    found: list[int] = []
    n = 2
    while True:
        if all(n % p for p in found if p * p <= n):
            found.append(n)
            yield n
        n += 1


class ScrambledHalton:
    """Points of ``dims`` dimensions; the same seed gives the same points in any process."""

    def __init__(self, dims: int, seed: int) -> None:
        self.bases: list[int] = []
        self._permutations: list[list[list[int]]] = []
        prime = primes()
        for d in range(dims):
            base = next(prime)
            rng = random.Random(derive_seed(seed, d, stream="halton"))
            digits = math.ceil(53 / math.log2(base))  # past these a digit is below 2**-53
            self.bases.append(base)
            self._permutations.append([rng.sample(range(base), base) for _ in range(digits)])

    def point(self, index: int) -> list[float]:
        """Point number ``index`` (1, 2, ...): one number in [0, 1) per dimension."""
        assert index >= 1
        coords = []
        for base, permutations in zip(self.bases, self._permutations, strict=True):
            u, scale, rest = 0.0, 1.0 / base, index
            for permutation in permutations:
                rest, digit = divmod(rest, base)
                u += permutation[digit] * scale
                scale /= base
            coords.append(min(u, _BELOW_ONE))
        return coords
