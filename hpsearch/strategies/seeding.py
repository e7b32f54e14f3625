"""Seeds derived from the search's seed: the same numbers in every process.

``derive_seed(42, 7)`` is the seed of trial 7's generator in a search seeded 42. It hashes
the text ``"<stream>:<seed>:<trial>"`` with BLAKE2b, so it does not depend on
``PYTHONHASHSEED``, the platform or the Python version, and a resumed search draws exactly
what an uninterrupted one would. ``stream`` keeps unrelated uses apart (trial draws,
QMC scrambling).
"""

from __future__ import annotations

import hashlib

#: derived seeds lie in [0, 2**32): what numpy's RandomState (inside Optuna) accepts
SEED_BITS = 32


def derive_seed(seed: int, trial: int, stream: str = "trial") -> int:
    """A seed in ``[0, 2**32)`` for trial ``trial`` of a search seeded ``seed``."""
    text = f"{stream}:{seed}:{trial}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=SEED_BITS // 8).digest(), "big")
