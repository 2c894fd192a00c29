"""Starting points, drawn from the caller's generator; shared by the native and reference solvers
so that the same ``rng`` gives the same start in both."""
from __future__ import annotations

import math

import numpy as np

from ..targets import random_orthonormal
from .._validation import as_matrix


def stiefel_start(gen: np.random.Generator, d: int, r: int) -> np.ndarray:
    """``X_0`` uniform on ``St(d, r)`` (not a small initialization)."""
    return random_orthonormal(d, r, gen)


def small_gaussian(gen: np.random.Generator, shape, scale: float, norm_dim: int) -> np.ndarray:
    """``scale * N(0, 1)^shape / sqrt(norm_dim)``: the small random init of factorized GD."""
    return scale * gen.standard_normal(shape) / math.sqrt(norm_dim)


def user_factors(init, expected: dict) -> dict:
    """Validate a warm start: ``init`` must have exactly the keys of ``expected`` (name -> shape)."""
    if not isinstance(init, dict):
        raise TypeError(f"init must be None or a dict of starting factors, got {type(init).__name__}")
    if set(init) != set(expected):
        raise ValueError(f"init must have the keys {sorted(expected)}, got {sorted(init)}")
    return {k: as_matrix(f"init[{k!r}]", init[k], shape).copy() for k, shape in expected.items()}
