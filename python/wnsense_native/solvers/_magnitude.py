"""The magnitude step of the alternating WN-RGD variants, shared by the symmetric and the
rectangular method: a gradient step on ``Theta`` with the new direction(s) fixed,

    Theta+ = prox_{mu penalty ||.||_*}(Theta - mu grad_Theta f),

with two project additions (both off by default, so ``variant="paper"`` is Algorithm 1):

* ``penalty > 0``: a nuclear-norm penalty ``penalty * ||Z||_*``. With orthonormal directions
  ``||X_L Theta X_R^T||_* = ||Theta||_*``, so it acts on ``Theta`` alone and the step is proximal:
  the singular values of the gradient step (eigenvalue magnitudes when ``Theta`` is symmetric) are
  soft-thresholded by ``mu * penalty``. It is the factor-ridge penalty of matrix-factorization
  recommenders (``penalty/2 (||U||^2 + ||V||^2)``, whose minimum over factorizations of ``Z`` is
  ``penalty ||Z||_*``) in its factor-free form; the objective (``res.fun``) includes it.
* ``mu="auto"``: for fixed directions ``f`` is exactly quadratic in ``Theta``, so the two passes
  of an iteration give the curvature ``c`` of ``f`` along the step actually taken; the next step
  uses ``mu = 1 / c`` (the exact minimizer along it). Under RIP ``c`` is 1/2 (symmetric, whose
  ``grad_Theta f = 1/2 X^T S X``) or 1, i.e. the default ``mu``; on operators far from isometric
  (observed entries at unit scale: ``c ~ m / (d1 d2)``) it is what makes the step the right size.
"""
from __future__ import annotations

import math

import numpy as np

from .._validation import check_float
from ._problem import sym

# the learned mu stays within these factors of the default
AUTO_RANGE = (1e-6, 1e6)


class MagnitudeStep:
    """``symmetric``: ``Theta`` symmetric, ``grad_Theta f = 1/2 Delta`` with ``Delta = X^T S X``;
    else ``grad_Theta f = Delta = X_L^T E X_R``. ``default_mu``: 2 or 1 (the RIP step)."""

    def __init__(self, mu, penalty, *, symmetric: bool, default_mu: float):
        self.symmetric = symmetric
        self.grad_scale = 0.5 if symmetric else 1.0
        self.default_mu = default_mu
        self.auto = isinstance(mu, str)
        if self.auto:
            if mu != "auto":
                raise ValueError(f"mu must be a positive number or 'auto', got {mu!r}")
            self.mu = default_mu
        else:
            self.mu = check_float("mu", mu, minimum=0.0, strict_minimum=True)
        self.penalty = check_float("penalty", penalty, minimum=0.0)

    def penalty_value(self, Theta) -> float:
        if not self.penalty:
            return 0.0
        return self.penalty * float(np.linalg.svd(Theta, compute_uv=False).sum())

    def take(self, Theta, Delta, mu):
        """``prox(Theta - mu grad)`` for the step ``mu``."""
        T = Theta - (self.grad_scale * mu) * Delta
        if self.symmetric:
            T = sym(T)
        if not self.penalty:
            return T
        threshold = mu * self.penalty
        if self.symmetric:
            w, W = np.linalg.eigh(T)
            w = np.sign(w) * np.maximum(np.abs(w) - threshold, 0.0)
            return sym((W * w) @ W.T)
        U, s, Vt = np.linalg.svd(T)
        return (U * np.maximum(s - threshold, 0.0)) @ Vt

    def learn(self, Theta, Theta_new, Delta, f_before, f_after):
        """``mu="auto"``: the exact curvature of ``f`` along the step just taken sets the next
        ``mu``; ``f_before``/``f_after`` are the smooth loss (no penalty) at ``Theta``/``Theta+``."""
        if not self.auto:
            return
        D = Theta_new - Theta
        q = float(np.vdot(D, D))
        if q <= 0.0:
            return
        c = 2.0 * (f_after - f_before - self.grad_scale * float(np.vdot(Delta, D))) / q
        if math.isfinite(c) and c > 0:
            lo, hi = AUTO_RANGE
            self.mu = min(max(1.0 / c, lo * self.default_mu), hi * self.default_mu)
