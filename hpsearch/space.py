"""Expand a grid with conditions into configurations, lazily and in a seeded order.

Semantics follow hypnettorch's ``hpsearch``:

* the full grid is the product of the value lists (last key varying fastest);
* each condition ``(match, replace)`` is applied once, in order, to every configuration that
  earlier conditions produced: a configuration whose value for every match key is in the
  match list is replaced by the product of ``replace`` (so one configuration may become
  several); nothing is re-checked afterwards;
* configurations equal as Python dicts (``1 == 1.0 == True``) are duplicates: the first one
  in search order is kept;
* the search order is a seeded shuffle unless ``deterministic`` (then grid order);
  ``num_searches`` (not -1) caps the count; ``random_picks`` draws grid points with
  replacement instead of walking the whole grid (``--dont_generate_full_grid``).

Nothing is materialised: a 10**6-point grid costs one 8-byte fingerprint per configuration
only when conditions or repeated values make duplicates possible. The order depends on the
seed alone, never on ``PYTHONHASHSEED``, so a restarted search walks the same sequence.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Iterator
from typing import Any

from hpsearch.spec import Condition

_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def seeded_permutation(n: int, seed: int) -> Iterator[int]:
    """Yield every integer of ``range(n)`` once, in an order fixed by ``seed``.

    A 4-round Feistel network over the smallest even-bit power of two >= n, with cycle
    walking back into range: O(1) memory whatever ``n`` is.
    """
    if n <= 1:
        yield from range(n)
        return
    half_bits = max(1, math.ceil(math.log2(n) / 2))
    half_mask = (1 << half_bits) - 1
    keys = [_mix64(seed * 4 + r) for r in range(4)]

    def encrypt(x: int) -> int:
        left, right = x >> half_bits, x & half_mask
        for key in keys:
            left, right = right, left ^ (_mix64(right ^ key) & half_mask)
        return (left << half_bits) | right

    for i in range(n):
        y = encrypt(i)
        while y >= n:
            y = encrypt(y)
        yield y


def _normalise(value: Any) -> Any:
    """A form in which Python-equal values look the same (``1``, ``1.0``, ``True``)."""
    if isinstance(value, (bool, int, float)):
        if isinstance(value, float) and not value.is_integer():
            return value
        try:
            return int(value)
        except (OverflowError, ValueError):  # inf, nan
            return value
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((repr(k), _normalise(v)) for k, v in value.items()))
    return value


def config_fingerprint(config: dict[str, Any]) -> int:
    """64-bit fingerprint equal for configurations equal as Python dicts."""
    canonical = repr(sorted((k, _normalise(v)) for k, v in config.items()))
    return int.from_bytes(hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "big")


def _product(values: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    keys = list(values)
    for combo in itertools.product(*(values[k] for k in keys)):
        yield dict(zip(keys, combo, strict=True))


def apply_conditions(config: dict[str, Any], conditions: list[Condition]) -> list[dict[str, Any]]:
    """One grid point through every condition in order (may fan out to several)."""
    configs = [config]
    for match, replace in conditions:
        out: list[dict[str, Any]] = []
        for cfg in configs:
            if all(k in cfg and cfg[k] in allowed for k, allowed in match.items()):
                for repl in _product(replace):
                    out.append({**cfg, **repl})
            else:
                out.append(cfg)
        configs = out
    return configs


def _has_equal_values(values: list[Any]) -> bool:
    seen: set[str] = set()
    for v in values:
        key = repr(_normalise(v))
        if key in seen:
            return True
        seen.add(key)
    return False


class SearchSpace:
    """The configurations of a search, in search order, expanded on demand."""

    def __init__(self, grid: dict[str, list[Any]], conditions: list[Condition], *,
                 deterministic: bool = False, seed: int = 42, num_searches: int = -1,
                 random_picks: bool = False) -> None:
        self.grid = grid
        self.conditions = conditions
        self.deterministic = deterministic
        self.seed = seed
        self.num_searches = num_searches
        self.random_picks = random_picks
        self._keys = list(grid)
        self._sizes = [len(grid[k]) for k in self._keys]
        self.grid_size = math.prod(self._sizes)
        self._may_repeat = bool(conditions) or random_picks or any(
            _has_equal_values(v) for v in grid.values())

    @property
    def size_hint(self) -> int:
        """The count of configurations if no condition fans out or collapses any."""
        if self.num_searches != -1:
            return min(self.num_searches, self.grid_size) if not self.random_picks \
                else self.num_searches
        return self.grid_size

    def _grid_point(self, flat: int) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for key, size in zip(reversed(self._keys), reversed(self._sizes), strict=True):
            flat, pos = divmod(flat, size)
            config[key] = self.grid[key][pos]
        return {k: config[k] for k in self._keys}

    def _flat_indices(self) -> Iterator[int]:
        if self.random_picks:
            rng = random.Random(self.seed)
            draws = max(10 * self.num_searches, self.num_searches + 300)
            return (rng.randrange(self.grid_size) for _ in range(draws))
        if self.deterministic:
            return iter(range(self.grid_size))
        return seeded_permutation(self.grid_size, self.seed)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        seen: set[int] = set()
        produced = 0
        for flat in self._flat_indices():
            for config in apply_conditions(self._grid_point(flat), self.conditions):
                if self._may_repeat:
                    fingerprint = config_fingerprint(config)
                    if fingerprint in seen:
                        continue
                    seen.add(fingerprint)
                yield config
                produced += 1
                if produced == self.num_searches:
                    return
