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

from ..solvers.wn_rgd_rect import RectangularWNRGDSetup
from .wn_rgd import retract, tangent_projection


class RectangularWNRGD(RectangularWNRGDSetup):
    """Rectangular WN-RGD (reference). Options and start as the native method
    (:class:`~wnsense_native.solvers.wn_rgd_rect.RectangularWNRGDSetup`): ``retraction``,
    ``mu`` (1.0), ``preconditioned``, ``theta0``; ``X_L``, then ``X_R``, uniform on their
    Stiefel manifolds, ``Theta_0 = theta0 I``."""

    retract = staticmethod(retract)  # the numpy retractions; the iteration is the setup's

    def _set_iterate(self, XL, Theta, XR, res):
        self.XL, self.Theta, self.XR, self.sumsq = XL, Theta, XR, res.sumsq
        self.loss = self._objective(res.sumsq, Theta)              # 1/2 ||A(Z) - y||^2 (+ pen.)
        EXR, EtXL = res.AV, res.AtU                                # E X_R, E^T X_L
        self.EXR, self.EtXL = EXR, EtXL
        grad_L = EXR @ Theta.T                                     # grad_XL f = E X_R Theta^T
        grad_R = EtXL @ Theta                                      # grad_XR f = E^T X_L Theta
        grad_Theta = XL.T @ EXR                                    # grad_Theta f = X_L^T E X_R
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
