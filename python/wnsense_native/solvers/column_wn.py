"""Column-wise weight normalization (Salimans & Kingma 2016; SPEC 3.2), both backends.

    Y = W diag(g_j / ||w_j||),  Z = Y Y^T,  f = 1/4 ||A(Z) - y||^2,  H = grad_Y f = S Y,
    with v_j = w_j / ||w_j||, c_j = g_j / ||w_j||:
        grad_g_j f = v_j^T h_j,      grad_w_j f = c_j (I - v_j v_j^T) h_j,
    plain gradient descent on (W, g) (simultaneous).

The per-column norms ``||w_j||`` are the normalization terms whose minimum governs the curvature
bound of the weight-normalization guarantees; the history records ``min_column_norm`` at every
iteration. (The gradient in ``w_j`` is orthogonal to ``w_j``, so GD never shrinks a column norm.)

Initialization: ``W_0 = N(0,1)^{d x r} / sqrt(d)`` (columns of norm
about 1) and ``g_0 = init_scale * ||w_j||``, so that ``Y_0 = init_scale * W_0`` is exactly the
small random start of factorized GD from the same ``rng`` (``init_scale = 1e-3`` by default).
Warm start: ``init={"W": W0, "g": g0}`` (``g0`` of length ``r``).

Step size as for GD: Armijo backtracking (slope ``||grad||^2``, first trial ``1 / ||y||``), or a
constant step. One pass over the sensing data per iteration. Symmetric operators only.
"""
from __future__ import annotations

import numpy as np

from ._init import small_gaussian
from .models import ColumnNormalized
from .gd import FactorizedGD


class ColumnWN(FactorizedGD):
    """Column-wise weight-normalized GD on ``Y = W diag(g / ||w||)``, ``Z = Y Y^T`` (both
    backends). Options ``init_scale`` (default 1e-3) and the shared ``diagnostics`` /
    ``hessian_every``; the start described in the module docstring (drawn from ``gen`` exactly
    like factorized GD's), or a warm start ``{"W": W0, "g": g0}`` whose ``W0`` has no zero column.
    Records ``min_column_norm = min_j ||w_j||`` in the history."""

    name = "column_wn"
    _model = staticmethod(ColumnNormalized.model)
    _probes = staticmethod(ColumnNormalized.probes)
    _gradients = staticmethod(ColumnNormalized.gradient)

    @classmethod
    def factor_shapes(cls, problem, rank):
        return {"W": (problem.d1, rank), "g": (rank,)}

    def _draw(self, gen, problem, rank, alpha):
        W = small_gaussian(gen, (problem.d1, rank), 1.0, problem.d1)
        return {"W": W, "g": alpha * np.sqrt(np.sum(W * W, axis=0))}

    def _warm_start(self, init, shapes):
        start = super()._warm_start(init, shapes)
        if np.any(np.sum(start["W"] * start["W"], axis=0) == 0):
            raise ValueError("init['W'] must not have a zero column")
        return start

    def extra_history(self):
        W = self.factors["W"]
        return {"min_column_norm": float(np.sqrt(np.min(np.sum(W ** 2, axis=0))))}




def require_symmetric(symmetric: bool) -> None:
    """Column-wise WN is defined for symmetric operators only (both backends)."""
    if not symmetric:
        raise ValueError("method='column_wn' needs a symmetric operator (Z = Y Y^T); "
                         "for rectangular operators use 'gd', 'precgd', 'scaledgd' or 'wn_rgd'")


def column_wn_for(symmetric: bool):
    require_symmetric(symmetric)
    return ColumnWN
