"""Starting points, drawn from the caller's generator, and warm-start validation; shared by the
native and reference backends (one method class for both) so that the same ``rng`` gives the same
start in both."""
from __future__ import annotations

import math

import numpy as np

from ..targets import qf, random_orthonormal
from .._validation import as_float_array

# tolerance of the warm-start check X^T X = I of Stiefel factors
ORTHONORMAL_TOL = 1e-8


def stiefel_start(gen: np.random.Generator, d: int, r: int) -> np.ndarray:
    """``X_0`` uniform on ``St(d, r)`` (not a small initialization)."""
    return random_orthonormal(d, r, gen)


def orthonormal_basis(B: np.ndarray) -> np.ndarray:
    """Q of ``B = Q R`` with ``diag(R) >= 0`` (signs fixed: the same basis in every backend):
    the block power step of the spectral starts."""
    return np.ascontiguousarray(qf(B))


def small_gaussian(gen: np.random.Generator, shape, scale: float, norm_dim: int) -> np.ndarray:
    """``scale * N(0, 1)^shape / sqrt(norm_dim)``: the small random init of factorized GD."""
    return scale * gen.standard_normal(shape) / math.sqrt(norm_dim)


def check_orthonormal(name: str, X: np.ndarray) -> None:
    """A warm-start Stiefel factor must have orthonormal columns (``X^T X = I``)."""
    if np.abs(X.T @ X - np.eye(X.shape[1])).max() > ORTHONORMAL_TOL:
        raise ValueError(f"{name} must have orthonormal columns (X^T X = I)")


def user_factors(init, expected: dict, orthonormal=()) -> dict:
    """Validate a warm start: ``init`` must have exactly the keys of ``expected`` (name ->
    shape), each a finite float array of that shape (copied); the factors named in
    ``orthonormal`` must have orthonormal columns."""
    if not isinstance(init, dict):
        raise TypeError(f"init must be None or a dict of starting factors, got {type(init).__name__}")
    if set(init) != set(expected):
        raise ValueError(f"init must have the keys {sorted(expected)}, got {sorted(init)}")
    out = {}
    for k, shape in expected.items():
        name = f"init[{k!r}]"
        a = as_float_array(name, init[k], ndim=len(shape))
        if a.shape != tuple(shape):
            raise ValueError(f"{name} must have length {shape[0]}, got {a.shape[0]}"
                             if len(shape) == 1 else
                             f"{name} must have shape {tuple(shape)}, got {a.shape}")
        out[k] = a.copy()
    for k in orthonormal:
        check_orthonormal(f"init[{k!r}]", out[k])
    return out
