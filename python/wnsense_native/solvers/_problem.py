"""What every solver iterates on: an operator, measurements and a residual oracle."""
from __future__ import annotations

import numpy as np


class Problem:
    """The measured problem ``y = A(Z*)`` as the solvers see it.

    ``residual(L, R, with_gradient)`` evaluates, for the model ``Z = L R^T``, the residual
    ``r = A(Z) - y``, ``||r||^2`` and (optionally) ``A*(r)`` in one pass over the sensing data, and
    counts the passes in ``nfev``. The oracle is the native operator for :func:`wnsense_native.solve`
    and a numpy one for :func:`wnsense_native.reference.solve`.
    """

    def __init__(self, op, y: np.ndarray, residual_fn):
        self.op = op
        self.y = y
        self.m, self.d1, self.d2 = op.shape
        self.symmetric = op.symmetric
        self.y_norm = float(np.linalg.norm(y))
        # symmetric: f = 1/4 ||A(Z) - y||^2; rectangular: f = 1/2 ||A(U V^T) - y||^2 (SPEC 3)
        self.loss_factor = 0.25 if self.symmetric else 0.5
        self.nfev = 0
        self._residual_fn = residual_fn

    def residual(self, L, R, with_gradient=True):
        self.nfev += 1
        return self._residual_fn(L, R, with_gradient)

    def loss(self, sumsq: float) -> float:
        return self.loss_factor * sumsq

    def relative_residual(self, sumsq: float) -> float:
        return float(np.sqrt(sumsq)) / self.y_norm if self.y_norm > 0 else float(np.sqrt(sumsq))


def sym(B: np.ndarray) -> np.ndarray:
    return 0.5 * (B + B.T)
