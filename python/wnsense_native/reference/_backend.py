"""The numpy backend (:class:`~wnsense_native.solvers._backend.Backend`) of the method classes:
the numpy residual oracle (:mod:`._operators`), the Stiefel retractions and the other primitives
written out in numpy, WN-LBFGS on its numpy geometry (:mod:`.wn_lbfgs`) and the SNN's numpy
forward and backward passes (:mod:`.snn`). Nothing here calls the native core.
"""
from __future__ import annotations

import numpy as np

from ..solvers._backend import Backend
from ..solvers.models import qf, sym, tangent_projection
from ._operators import numpy_residual_factory
from .snn import SNN
from .wn_lbfgs import RectangularWNLBFGS, WNLBFGS

__all__ = ["NUMPY", "NumpyBackend", "polar_retraction", "qr_retraction", "cayley_retraction",
           "retract"]


# -- the Stiefel manifold, in numpy -----------------------------------------------------------

def polar_retraction(X, G, eta):
    """``(X - eta G)(I + eta^2 G^T G)^{-1/2}``, computed as the polar factor
    ``Y (Y^T Y)^{-1/2}`` of ``Y = X - eta G`` (equal because ``X^T G`` is skew for tangent ``G``),
    with the inverse square root from an ``r x r`` symmetric eigendecomposition."""
    Y = X - eta * G
    evals, Q = np.linalg.eigh(sym(Y.T @ Y))
    inv_sqrt = 1.0 / np.sqrt(np.maximum(evals, 1e-300))
    return Y @ ((Q * inv_sqrt) @ Q.T)


def qr_retraction(X, G, eta):
    """``qf(X - eta G)``, the Q factor with the signs fixed so that ``diag(R) > 0``."""
    return qf(X - eta * G)


def cayley_retraction(X, Gt, eta):
    """``(I + eta/2 W)^{-1} (I - eta/2 W) X`` with ``W = Gt X^T - X Gt^T = U V^T``,
    ``U = [Gt, X]``, ``V = [X, -Gt]``; the inverse by Woodbury:
    ``(I + a U V^T)^{-1} = I - a U (I_2r + a V^T U)^{-1} V^T`` (a ``2r x 2r`` solve)."""
    r = X.shape[1]
    a = 0.5 * eta
    U = np.hstack([Gt, X])
    V = np.hstack([X, -Gt])
    B = X - a * (U @ (V.T @ X))                                   # (I - a W) X
    small = np.eye(2 * r) + a * (V.T @ U)
    return B - a * (U @ np.linalg.solve(small, V.T @ B))          # (I + a W)^{-1} B


def retract(kind, X, G_dir, Gt, eta):
    """Step 3, ``Retr_X(-eta G_dir)``: polar and QR move along the tangent ``-G_dir``; Cayley is
    built from the Euclidean ``Gt``. Shared by the symmetric and the rectangular method."""
    if kind == "polar":
        return polar_retraction(X, G_dir, eta)
    if kind == "qr":
        return qr_retraction(X, G_dir, eta)
    return cayley_retraction(X, Gt, eta)


class NumpyBackend(Backend):
    """Plain numpy: the reference the native path is tested and benchmarked against."""

    name = "reference"
    module = "wnsense_native.reference"

    def make_residual(self, op, y, n_threads):
        return numpy_residual_factory(op, y, n_threads)

    tangent_projection = staticmethod(tangent_projection)
    retract = staticmethod(retract)

    @staticmethod
    def sqnorm(a):
        return np.sum(a ** 2)

    @staticmethod
    def precondition(g, gram):
        return g @ np.linalg.inv(gram)


NUMPY = NumpyBackend()
NUMPY.classes.update(lbfgs=(WNLBFGS, RectangularWNLBFGS), snn=SNN)
