"""WN-RGD for rectangular targets, on both backends. This is a project addition, not from the paper
(which treats the symmetric model only); it follows the recipe of SPEC 3.1 on both sides:

    Z = X_L Theta X_R^T,  X_L on St(d1, r),  X_R on St(d2, r),  Theta a general r x r matrix
    E = A*(A(Z) - y),  f = 1/2 ||A(Z) - y||^2
    Euclidean gradients: grad_XL = E X_R Theta^T,  grad_XR = E^T X_L Theta,
                         grad_Theta = X_L^T E X_R
    1. G_L = grad_XL - X_L sym(X_L^T grad_XL),  G_R likewise    (Riemannian gradients)
    2. X_L+ = Retr_XL(-eta G_L),  X_R+ = Retr_XR(-eta G_R)      (one step size for both)
    3. Theta+ = Theta - mu X_L+^T E(X_L+, Theta, X_R+) X_R+     (magnitude step, new directions;
       with the default step rule mu is halved while it would increase the loss, as for the
       symmetric method)

``mu = 1`` by default: in the population case (``A = Id``, ``E = Z - Z*``) it gives exactly
``Theta+ = Theta - X_L+^T (X_L+ Theta X_R+^T - Z*) X_R+ = X_L+^T Z* X_R+``, the best magnitude for
the new directions (the symmetric method's ``mu = 2`` does the same for the 1/4 loss, whose
``grad_Theta`` carries a factor 1/2).

Options as for the symmetric method: ``retraction`` ("polar", "qr", "cayley"; Cayley is built
from the Euclidean gradients), ``mu`` (1.0), ``preconditioned`` (``E X_R`` and ``E^T X_L`` as the
direction gradients, dropping the ``Theta`` factor; also a project addition), ``theta0`` (``Theta_0
= theta0 I``, default 0). Start: ``X_L`` then ``X_R`` uniform on their Stiefel manifolds.

Each iteration streams the sensing data twice: at ``(X_L+, Theta, X_R+)`` (also the step-size
trial; only ``E X_R+`` is asked for) and at ``(X_L+, Theta+, X_R+)`` (loss, ``E X_R+`` and
``E^T X_L+`` for the next iteration). Only these thin products are used.
"""
from __future__ import annotations

import numpy as np

from ._init import orthonormal_basis
from ._steps import magnitude_search
from .wn_rgd import WNRGD


class RectangularWNRGD(WNRGD):
    """Rectangular WN-RGD on ``Z = X_L Theta X_R^T`` (project addition, see the module
    docstring), both backends: the options of :class:`~.wn_rgd.WNRGD` with ``mu = 1`` by
    default, Stiefel factors ``X_L`` then ``X_R``, and a general (not symmetrized) ``Theta``
    (the model :class:`~.models.RectangularWeightNormalized`)."""

    default_mu = 1.0

    @classmethod
    def factor_shapes(cls, problem, rank):
        return {"X_L": (problem.d1, rank), "Theta": (rank, rank), "X_R": (problem.d2, rank)}

    # -- state -------------------------------------------------------------------------------
    def _set_iterate(self, XL, Theta, XR, res):
        """Adopt ``(X_L, Theta, X_R)`` with its pass (``E X_R``, ``E^T X_L``); precompute the
        step's gradients: ``grad_XL f = E X_R Theta^T``, ``grad_XR f = E^T X_L Theta``,
        ``grad_Theta f = X_L^T E X_R``, the Riemannian gradients and the direction's."""
        tangent = self.backend.tangent_projection
        self.XL, self.Theta, self.XR, self.sumsq = XL, Theta, XR, res.sumsq
        self.loss = self._objective(res.sumsq, Theta)
        EXR, EtXL = res.AV, res.AtU
        self.EXR, self.EtXL = EXR, EtXL
        grad_L, grad_R = EXR @ Theta.T, EtXL @ Theta
        self.G_L = tangent(XL, grad_L)
        self.G_R = tangent(XR, grad_R)
        self.Gt_L = self.direction.gradient(grad_L, EXR)
        self.Gt_R = self.direction.gradient(grad_R, EtXL)
        self.Gd_L = self.G_L if self.Gt_L is grad_L else tangent(XL, self.Gt_L)
        self.Gd_R = self.G_R if self.Gt_R is grad_R else tangent(XR, self.Gt_R)
        grad_theta = XL.T @ EXR
        self.grad_norm = float(np.sqrt(np.sum(self.G_L ** 2) + np.sum(self.G_R ** 2)
                                       + np.sum(grad_theta ** 2)))

    def _begin(self, start):
        XL, Theta, XR = start["X_L"], start["Theta"], start["X_R"]
        res = self.problem.residual(XL @ Theta, XR, XR, XL)
        if self.spectral_start and not np.any(Theta) and np.any(res.AV) and np.any(res.AtU):
            # one block power step on both sides: X_L = orth(A*(y) X_R0), X_R = orth(A*(y)^T X_L0)
            XL, XR = orthonormal_basis(-res.AV), orthonormal_basis(-res.AtU)
            res = self.problem.residual(XL @ Theta, XR, XR, XL)
        self._set_iterate(XL, Theta, XR, res)

    @property
    def factors(self):
        return {"X_L": self.XL, "Theta": self.Theta, "X_R": self.XR}

    def lowrank(self):
        return self.XL @ self.Theta, self.XR

    # -- one iteration -----------------------------------------------------------------------
    def step(self):
        Theta = self.Theta
        pen = self.magnitude.penalty_value(Theta)    # unchanged by the direction step

        def trial(eta):  # pass 1: the residual at (X_L+, Theta, X_R+), also the step-size test
            XL = self.retract(self.retraction, self.XL, self.Gd_L, self.Gt_L, eta)
            XR = self.retract(self.retraction, self.XR, self.Gd_R, self.Gt_R, eta)
            res = self.problem.residual(XL @ Theta, XR, right=XR)   # E X_R+ is all Delta needs
            return self.problem.loss(res.sumsq) + pen, (XL, XR, res.AV)

        # decrease rate of f(., Theta, .) along the search direction
        if self.direction.safeguarded and float(np.vdot(self.G_L, self.Gd_L)
                                         + np.vdot(self.G_R, self.Gd_R)) < 0:
            # where Theta is ill-signed E X_R, E^T X_L need not descend: the gradients this step,
            # in their units (divided by ||Theta||_2^2; see the symmetric method)
            scale = 1.0 / max(np.linalg.norm(Theta, 2) ** 2, 1e-300)
            self.Gd_L, self.Gd_R = scale * self.G_L, scale * self.G_R
            self.Gt_L, self.Gt_R = scale * (self.EXR @ Theta.T), scale * (self.EtXL @ Theta)
        slope = float(np.sum(self.G_L * self.Gd_L) + np.sum(self.G_R * self.Gd_R))
        if not (np.any(self.Gd_L) or np.any(self.Gd_R)):
            # Theta = 0 (the default start) or a critical point: the directions do not move,
            # and E at (X_L, Theta, X_R) is the one we already have
            eta, ok, XL, XR, EXR_mid, loss_mid = (0.0, True, self.XL, self.XR, self.EXR,
                                                  self.loss)
        else:
            eta, loss_mid, (XL, XR, EXR_mid), ok = self.step_rule.search(self.loss, slope, trial,
                                                                         self.step_hint())
        self.step_size = eta
        # magnitude step with the new directions, Delta = X_L+^T E(X_L+, Theta, X_R+) X_R+ (mu
        # halved by the safeguarded rule if it would increase the loss); pass 2: loss, E X_R+
        # and E^T X_L+ at the new iterate
        Delta = XL.T @ EXR_mid

        def magnitude(mu):
            Theta_new = self.magnitude.take(Theta, Delta, mu)
            res = self.problem.residual(XL @ Theta_new, XR, XR, XL)
            return self._objective(res.sumsq, Theta_new), (Theta_new, res)

        Theta_new, res = magnitude_search(self.step_rule, loss_mid, self.magnitude.mu, magnitude)
        self.magnitude.learn(Theta, Theta_new, Delta, loss_mid - pen,
                             self.problem.loss(res.sumsq))
        self._set_iterate(XL, Theta_new, XR, res)
        return ok
