"""Column-wise weight normalization (Salimans & Kingma), reference (pure numpy) implementation:

    Y = W diag(g_j / ||w_j||),  Z = Y Y^T,  f = 1/4 ||A(Z) - y||^2,  h_j = (S Y)_j,
    grad_g_j f = (w_j / ||w_j||)^T h_j,
    grad_w_j f = (g_j / ||w_j||) (h_j - w_j (w_j^T h_j) / ||w_j||^2),
    GD on (W, g), simultaneous.

Same start (shared with the native method: ``W_0 = N(0,1)/sqrt(d)``, ``g_0 = init_scale ||w_j||``,
i.e. ``Y_0`` is GD's small random start), same step-size rule (``slope = ||grad||^2``, first trial
``1/||y||``), options and history as :mod:`wnsense_native.solvers.column_wn` (whose setup class
holds them).
"""
from __future__ import annotations

import numpy as np

from ..solvers.column_wn import ColumnWNSetup, require_symmetric


def factor(W, g):
    """``Y = W diag(g_j / ||w_j||)``."""
    return W * (g / np.linalg.norm(W, axis=0))


class ColumnWN(ColumnWNSetup):
    """Column-wise weight-normalized GD (reference). Options and start as the native method
    (:class:`~wnsense_native.solvers.column_wn.ColumnWNSetup`): ``init_scale``. Records
    ``min_column_norm``."""

    def _begin(self, start):
        W, g = start["W"], start["g"]
        self._adopt(W, g, *self._residual(W, g))

    def _residual(self, W, g):
        """``(Y, pass)`` at ``Y = W diag(g / ||w||)``, ``Z = Y Y^T``, with the product ``S Y``."""
        Y = factor(W, g)
        return Y, self.problem.residual(Y, Y, right=Y)

    def _adopt(self, W, g, Y, res):
        self.W, self.g, self.sumsq = W, g, res.sumsq
        self.loss = self.problem.loss(res.sumsq)
        H = res.AV                                       # grad_Y f = S Y, column j is h_j
        self.grad_W = np.empty_like(W)
        self.grad_g = np.empty_like(g)
        for j in range(W.shape[1]):
            w, h = W[:, j], H[:, j]
            n = np.linalg.norm(w)
            self.grad_g[j] = w @ h / n
            self.grad_W[:, j] = (g[j] / n) * (h - w * (w @ h) / n ** 2)
        self.grad_norm = float(np.sqrt(np.sum(self.grad_W ** 2) + np.sum(self.grad_g ** 2)))

    @property
    def factors(self):
        return {"W": self.W, "g": self.g}

    def lowrank(self):
        Y = factor(self.W, self.g)
        return Y, Y

    def step(self):
        def trial(eta):
            W_new = self.W - eta * self.grad_W
            g_new = self.g - eta * self.grad_g
            Y_new, res = self._residual(W_new, g_new)
            return self.problem.loss(res.sumsq), (W_new, g_new, Y_new, res)

        eta, _, (W_new, g_new, Y_new, res), ok = self.step_rule.search(
            self.loss, self.grad_norm ** 2, trial, self.step_hint())
        self.step_size = eta
        self._adopt(W_new, g_new, Y_new, res)
        return ok


def column_wn_for(symmetric: bool):
    require_symmetric(symmetric)
    return ColumnWN
