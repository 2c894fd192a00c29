"""WN-RGD for rectangular targets, reference (pure numpy) implementation. A project addition, not
from the paper; read against :mod:`wnsense_native.solvers.wn_rgd_rect`:

    Z = X_L Theta X_R^T,  X_L on St(d1, r),  X_R on St(d2, r),  Theta general r x r
    E = A*(A(Z) - y),  f = 1/2 ||A(Z) - y||^2
    grad_XL f = E X_R Theta^T,  grad_XR f = E^T X_L Theta,  grad_Theta f = X_L^T E X_R
    1. G_L = grad_XL - X_L sym(X_L^T grad_XL),  G_R = grad_XR - X_R sym(X_R^T grad_XR)
    2. X_L+ = Retr(X_L, -eta G_L),  X_R+ = Retr(X_R, -eta G_R)   (polar | qr | cayley)
    3. Theta+ = Theta - mu X_L+^T E(X_L+, Theta, X_R+) X_R+,  mu = 1
       (population case: Theta+ = X_L+^T Z* X_R+ exactly)

Same start, step-size rule (first trial ``1/||Theta||_2^2``, or 1 when preconditioned: the shared
``step_hint``), magnitude safeguard and options as the native method, so both produce the same
iterates to rounding.
"""
from __future__ import annotations

import numpy as np

from ..solvers._steps import magnitude_search
from ..solvers.wn_rgd_rect import RectangularWNRGDSetup
from .wn_rgd import retract, tangent_projection


class RectangularWNRGD(RectangularWNRGDSetup):
    """Rectangular WN-RGD (reference). Options and start as the native method
    (:class:`~wnsense_native.solvers.wn_rgd_rect.RectangularWNRGDSetup`): ``retraction``,
    ``mu`` (1.0), ``preconditioned``, ``theta0``; ``X_L``, then ``X_R``, uniform on their
    Stiefel manifolds, ``Theta_0 = theta0 I``."""

    def _begin(self, start):
        XL, Theta, XR = start["X_L"], start["Theta"], start["X_R"]
        self._adopt(XL, Theta, XR, self._residual(XL, Theta, XR))

    def _residual(self, XL, Theta, XR):
        """``(r, ||r||^2, E)`` at ``Z = X_L Theta X_R^T`` (``L = X_L Theta``, ``R = X_R``)."""
        return self.problem.residual(XL @ Theta, XR)

    def _adopt(self, XL, Theta, XR, residual):
        _, sumsq, E = residual
        self.XL, self.Theta, self.XR, self.sumsq, self.E = XL, Theta, XR, sumsq, E
        self.loss = self.problem.loss(sumsq)                       # 1/2 ||A(Z) - y||^2
        EXR, EtXL = E @ XR, E.T @ XL
        grad_L = EXR @ Theta.T                                     # grad_XL f = E X_R Theta^T
        grad_R = EtXL @ Theta                                      # grad_XR f = E^T X_L Theta
        grad_Theta = XL.T @ E @ XR                                 # grad_Theta f
        self.G_L = tangent_projection(XL, grad_L)                  # Riemannian gradients
        self.G_R = tangent_projection(XR, grad_R)
        if self.preconditioned:        # drop the Theta factor (project addition)
            self.Gt_L, self.Gt_R = EXR, EtXL
            self.Gd_L = tangent_projection(XL, self.Gt_L)
            self.Gd_R = tangent_projection(XR, self.Gt_R)
        else:
            self.Gt_L, self.Gt_R, self.Gd_L, self.Gd_R = grad_L, grad_R, self.G_L, self.G_R
        self.grad_norm = float(np.sqrt(np.sum(self.G_L ** 2) + np.sum(self.G_R ** 2)
                                       + np.sum(grad_Theta ** 2)))

    @property
    def factors(self):
        return {"X_L": self.XL, "Theta": self.Theta, "X_R": self.XR}

    def x(self):
        return self.XL @ self.Theta @ self.XR.T

    def step(self):
        Theta = self.Theta

        def trial(eta):
            XL = retract(self.retraction, self.XL, self.Gd_L, self.Gt_L, eta)
            XR = retract(self.retraction, self.XR, self.Gd_R, self.Gt_R, eta)
            res = self._residual(XL, Theta, XR)
            return self.problem.loss(res[1]), (XL, XR, res[2])

        slope = float(np.sum(self.G_L * self.Gd_L) + np.sum(self.G_R * self.Gd_R))
        if not (np.any(self.Gd_L) or np.any(self.Gd_R)):
            # zero direction (Theta = 0 at the default start, or a critical point)
            eta, ok, XL, XR, E_mid, loss_mid = 0.0, True, self.XL, self.XR, self.E, self.loss
        else:
            eta, loss_mid, (XL, XR, E_mid), ok = self.step_rule.search(self.loss, slope, trial,
                                                                       self.step_hint())
        self.step_size = eta
        # magnitude step with the new directions
        Delta = XL.T @ E_mid @ XR

        def magnitude(mu):
            Theta_new = Theta - mu * Delta
            res = self._residual(XL, Theta_new, XR)
            return self.problem.loss(res[1]), (Theta_new, res)

        Theta_new, res = magnitude_search(self.step_rule, loss_mid, self.mu, magnitude)
        self._adopt(XL, Theta_new, XR, res)
        return ok
