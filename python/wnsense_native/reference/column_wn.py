"""Column-wise weight normalization (Salimans & Kingma) on the numpy backend:

    Y = W diag(g_j / ||w_j||),  Z = Y Y^T,  f = 1/4 ||A(Z) - y||^2,  h_j = (S Y)_j,
    grad_g_j f = (w_j / ||w_j||)^T h_j,
    grad_w_j f = (g_j / ||w_j||) (h_j - w_j (w_j^T h_j) / ||w_j||^2),
    GD on (W, g), simultaneous.

The method is :class:`wnsense_native.solvers.column_wn.ColumnWN`; the numpy backend gives it the
factor and the gradient written column by column, as above (:class:`ColumnByColumn`).
"""
from __future__ import annotations

import numpy as np

from ..solvers import column_wn as _column_wn
from ..solvers.models import ColumnNormalized
from ._backend import NUMPY


def factor(W, g):
    """``Y = W diag(g_j / ||w_j||)``."""
    return W * (g / np.linalg.norm(W, axis=0))


class ColumnByColumn(ColumnNormalized):
    """:class:`~wnsense_native.solvers.models.ColumnNormalized` with the factor and the gradient
    written out column by column in numpy."""

    @classmethod
    def model(cls, p):
        Y = factor(p["W"], p["g"])
        return Y, Y

    @classmethod
    def probes(cls, p):
        return factor(p["W"], p["g"]), None

    @classmethod
    def gradient(cls, p, H, _):
        W, g = p["W"], p["g"]                            # H = S Y, column j is h_j
        grad_W, grad_g = np.empty_like(W), np.empty_like(g)
        for j in range(W.shape[1]):
            w, h = W[:, j], H[:, j]
            n = np.linalg.norm(w)
            grad_g[j] = w @ h / n
            grad_W[:, j] = (g[j] / n) * (h - w * (w @ h) / n ** 2)
        return {"W": grad_W, "g": grad_g}


NUMPY.overrides[_column_wn.ColumnWN] = {
    "_model": staticmethod(ColumnByColumn.model), "_probes": staticmethod(ColumnByColumn.probes),
    "_gradients": staticmethod(ColumnByColumn.gradient)}
ColumnWN = NUMPY.specialize(_column_wn.ColumnWN)


def column_wn_for(symmetric: bool):
    _column_wn.require_symmetric(symmetric)
    return ColumnWN
