"""Tools on the Stiefel manifold ``St(d, r) = {X : X^T X = I_r}`` (native kernels)."""
from __future__ import annotations

import numpy as np

from . import _core
from ._random import as_generator
from ._validation import as_matrix, check_float, check_int
from .targets import random_orthonormal

__all__ = ["tangent_projection", "polar_retraction", "qr_retraction", "cayley_retraction",
           "random_stiefel"]


def _point_and_direction(X, G, gname):
    X = as_matrix("X", X)
    d, r = X.shape
    if r > d:
        raise ValueError(f"X must be d x r with r <= d, got shape {X.shape}")
    return X, as_matrix(gname, G, X.shape)


def tangent_projection(X, G) -> np.ndarray:
    """``G - X sym(X^T G)``: the projection onto the tangent space at ``X``."""
    X, G = _point_and_direction(X, G, "G")
    return _core.tangent_projection(X, G)


def polar_retraction(X, G, eta) -> np.ndarray:
    """``(X - eta G)(I + eta^2 G^T G)^{-1/2}`` for tangent ``G`` (computed as the polar factor of
    ``X - eta G`` from an ``r x r`` eigendecomposition)."""
    X, G = _point_and_direction(X, G, "G")
    return _core.polar_retraction(X, G, check_float("eta", eta))


def qr_retraction(X, G, eta) -> np.ndarray:
    """``qf(X - eta G)`` with the signs fixed so that ``diag(R) > 0``."""
    X, G = _point_and_direction(X, G, "G")
    return _core.qr_retraction(X, G, check_float("eta", eta))


def cayley_retraction(X, euclidean_gradient, eta) -> np.ndarray:
    """``(I + eta/2 W)^{-1}(I - eta/2 W) X`` with ``W = Gt X^T - X Gt^T`` and ``Gt`` the *Euclidean*
    gradient, applied in low-rank form (a ``2r x 2r`` solve, never a ``d x d`` inverse)."""
    X, Gt = _point_and_direction(X, euclidean_gradient, "euclidean_gradient")
    return _core.cayley_retraction(X, Gt, check_float("eta", eta))


def random_stiefel(d, r, rng=None) -> np.ndarray:
    """A uniform random point on ``St(d, r)``."""
    d = check_int("d", d, minimum=1)
    r = check_int("r", r, minimum=1, maximum=d)
    return random_orthonormal(d, r, as_generator(rng))
