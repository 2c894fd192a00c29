"""WN-RGD, reference (pure numpy) implementation, written to be read against SPEC section 3.1:

    Z = X Theta X^T,  X on St(d, r),  Theta symmetric r x r
    S = sym(A*(A(Z) - y)),  f = 1/4 ||A(Z) - y||^2
    grad_X f = S X Theta,  grad_Theta f = 1/2 X^T S X
    1. Gt = S X Theta                    (Euclidean gradient in X; S X when preconditioned)
    2. G  = Gt - X sym(X^T Gt)           (Riemannian gradient: tangent projection)
    3. X+ = Retr_X(-eta G)               (polar | qr | cayley)
    4. Theta+ = Theta - mu/2 X+^T S(X+, Theta) X+     (magnitude step with the new direction)

The iteration itself (steps 3 and 4: the step-size search along the retraction, the magnitude
step, the shortcut when the search direction is zero) is
:meth:`wnsense_native.solvers.wn_rgd.WNRGDSetup.step`, shared with the native method together with
the options and the start; this module gives the Stiefel tools in numpy and the gradients of
steps 1 and 2, so both backends produce the same iterates to rounding.
"""
from __future__ import annotations

import numpy as np

from ..solvers.models import qf, sym, tangent_projection
from ..solvers.wn_rgd import WNRGDSetup


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


class WNRGD(WNRGDSetup):
    """Symmetric WN-RGD (reference). Options, start and iteration as the native method
    (:class:`~wnsense_native.solvers.wn_rgd.WNRGDSetup`): ``retraction``, ``mu``,
    ``preconditioned`` (project addition, not from the paper), ``theta0``, and the shared
    ``diagnostics`` / ``hessian_every``; ``X_0`` uniform on St(d, r), ``Theta_0 = theta0 I``
    (0 by default): not a small init."""

    retract = staticmethod(retract)  # the numpy retractions; the iteration is the setup's

    # -- the model and its gradients ---------------------------------------------------------
    def _set_iterate(self, X, Theta, res):
        """Adopt (X, Theta) with its pass: ``||r||^2`` and ``S X``, S = sym(A*(A(Z) - y))."""
        self.X, self.Theta, self.sumsq = X, Theta, res.sumsq
        self.loss = self._objective(res.sumsq, Theta)              # 1/4 ||A(Z) - y||^2 (+ pen.)
        self.SX = res.AV                                           # S X
        grad_X = self.SX @ Theta                                   # grad_X f = S X Theta
        grad_Theta = 0.5 * X.T @ self.SX                           # grad_Theta f = 1/2 X^T S X
        self.G = tangent_projection(X, grad_X)                     # Riemannian gradient
        # step 1: the Euclidean direction gradient Gt (S X in the preconditioned variant)
        self.Gt = self.SX if self.preconditioned else grad_X
        # step 2: its tangent projection, the search direction of polar / QR
        self.G_dir = tangent_projection(X, self.Gt) if self.preconditioned else self.G
        self.grad_norm = float(np.sqrt(np.sum(self.G ** 2) + np.sum(grad_Theta ** 2)))
