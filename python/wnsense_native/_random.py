"""Randomness: every public ``rng=`` argument goes through :func:`as_generator`."""
from __future__ import annotations

import numpy as np


def as_generator(rng) -> np.random.Generator:
    """Normalize ``rng`` (None, int, SeedSequence or Generator) like ``numpy.random.default_rng``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        if isinstance(rng, (bool, np.bool_)):
            raise TypeError("rng must be None, an int, a SeedSequence or a numpy Generator")
        if isinstance(rng, (int, np.integer)) and rng < 0:
            raise ValueError(f"rng seed must be non-negative, got {rng}")
        return np.random.default_rng(rng)
    raise TypeError("rng must be None, an int, a SeedSequence or a numpy Generator, "
                    f"got {type(rng).__name__}")


def native_seed(gen: np.random.Generator) -> int:
    """A 63-bit seed for the native generators, drawn from ``gen`` (so it is reproducible)."""
    return int(gen.integers(0, 2**63 - 1, dtype=np.int64))
