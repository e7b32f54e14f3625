"""The grid's configurations: a grid with conditions expanded lazily, in a seeded order.

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

Nothing is materialised: a 10**6-point grid costs one fingerprint (the run id as an int) per
configuration only when conditions or repeated values make duplicates possible. The order
depends on the seed alone, never on ``PYTHONHASHSEED``, so a restarted search walks the
same sequence, and can go on from any position of it.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from typing import Any

from hpsearch.spec.distributions import Condition
from hpsearch.spec.values import canonical, config_hash

_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def seeded_permutation(n: int, seed: int, start: int = 0) -> Iterator[int]:
    """Yield every integer of ``range(n)`` once, in an order fixed by ``seed`` (from the
    ``start``-th on).

    A 4-round Feistel network over the smallest even-bit power of two >= n, with cycle
    walking back into range: O(1) memory whatever ``n`` is, and any start is O(1).
    """
    if n <= 1:
        yield from range(start, n)
        return
    half_bits = max(1, math.ceil(math.log2(n) / 2))
    half_mask = (1 << half_bits) - 1
    keys = [_mix64(seed * 4 + r) for r in range(4)]

    def encrypt(x: int) -> int:
        left, right = x >> half_bits, x & half_mask
        for key in keys:
            left, right = right, left ^ (_mix64(right ^ key) & half_mask)
        return (left << half_bits) | right

    for i in range(start, n):
        y = encrypt(i)
        while y >= n:
            y = encrypt(y)
        yield y


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
    texts = [canonical(v) for v in values]
    return len(set(texts)) < len(texts)


def fingerprint(config: dict[str, Any]) -> int:
    """The configuration's identity as an int: the run id (12 hex digits) of a grid run."""
    return int(config_hash(config)[:12], 16)


class SearchSpace:
    """The configurations of a grid, in search order, expanded on demand.

    :meth:`walk` yields ``(position, config)``; ``position`` counts the grid points drawn so
    far, so a walk can go on from where an earlier one stopped (``start``), given the
    fingerprints of what it already produced (``seen``) and how many (``produced``).
    """

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
        self.may_repeat = bool(conditions) or random_picks or any(
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

    def _flat_indices(self, start: int) -> Iterator[int]:
        if self.random_picks:
            rng = random.Random(self.seed)
            draws = max(10 * self.num_searches, self.num_searches + 300)
            picks = (rng.randrange(self.grid_size) for _ in range(draws))
            return itertools.islice(picks, start, None)
        if self.deterministic:
            return iter(range(start, self.grid_size))
        return seeded_permutation(self.grid_size, self.seed, start)

    def walk(self, start: int = 0, seen: set[int] | None = None, produced: int = 0
             ) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(position, config)`` from grid point ``start`` on, skipping configurations
        whose fingerprint is in ``seen`` (which it extends), until ``num_searches``."""
        seen = set() if seen is None else seen
        if produced == self.num_searches:
            return
        for position, flat in enumerate(self._flat_indices(start), start):
            for config in apply_conditions(self._grid_point(flat), self.conditions):
                if self.may_repeat or seen:
                    key = fingerprint(config)
                    if key in seen:
                        continue
                    seen.add(key)
                yield position, config
                produced += 1
                if produced == self.num_searches:
                    return

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (config for _position, config in self.walk())

    def estimate_size(self, sample: int = 2000) -> int:
        """The count of configurations, estimated from the fan-out of ``sample`` grid points
        (conditions may add or merge configurations); exact without conditions."""
        if not self.conditions:
            return self.size_hint
        rng = random.Random(self.seed)
        picks = [rng.randrange(self.grid_size) for _ in range(min(sample, self.grid_size))]
        fan_out = sum(len(apply_conditions(self._grid_point(i), self.conditions))
                      for i in picks) / max(1, len(picks))
        estimate = round(self.grid_size * fan_out)
        return estimate if self.num_searches == -1 else min(estimate, self.num_searches)
