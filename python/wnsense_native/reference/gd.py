"""Factorized gradient descent baselines, reference (pure numpy) implementation (SPEC 3.2):

Symmetric (Burer-Monteiro):  f = 1/4 ||A(Y Y^T) - y||^2,  grad_Y f = S Y,  S = sym(A*(r)),
    Y+ = Y - eta S Y,  small init Y_0 = alpha N(0,1)^{d x r} / sqrt(d).
Asymmetric (Soltanolkotabi, Stoger, Xie 2023):  f = 1/2 ||A(U V^T) - y||^2,  E = A*(r),
    grad_U f = E V,  grad_V f = E^T U,
    U+ = U - eta E V,  V+ = V - eta E^T U  (simultaneous),
    small init U_0, V_0 = alpha N(0,1) / sqrt(r); imbalanced init (alpha, alpha/3) on request.

Same starts, step-size rule (first trial ``step_hint() = 1/||y||``, ``slope = ||grad||^2``),
options and history as the native methods in :mod:`wnsense_native.solvers.gd` (whose setup
classes hold them), so both produce the same iterates to rounding.
"""
from __future__ import annotations

import numpy as np

from ..solvers.gd import AsymmetricGDSetup, SymmetricGDSetup


class SymmetricGD(SymmetricGDSetup):
    """Burer-Monteiro GD on ``Z = Y Y^T`` (reference). Options and start as the native method
    (:class:`~wnsense_native.solvers.gd.SymmetricGDSetup`): ``init_scale`` (alpha), and the
    shared ``diagnostics`` / ``hessian_every``."""

    def _begin(self, start):
        Y = start["Y"]
        self._adopt(Y, self.problem.residual(Y, Y, right=Y))

    def _adopt(self, Y, res):
        self.Y, self.sumsq = Y, res.sumsq
        self.loss = self.problem.loss(res.sumsq)
        self.grad = res.AV                                # grad_Y f = S Y
        self.grad_norm = float(np.linalg.norm(self.grad))

    @property
    def factors(self):
        return {"Y": self.Y}

    def lowrank(self):
        return self.Y, self.Y

    def step(self):
        def trial(eta):
            Y_new = self.Y - eta * self.grad
            res = self.problem.residual(Y_new, Y_new, right=Y_new)
            return self.problem.loss(res.sumsq), (Y_new, res)

        eta, _, (Y_new, res), ok = self.step_rule.search(self.loss, self.grad_norm ** 2, trial,
                                                         self.step_hint())
        self.step_size = eta
        self._adopt(Y_new, res)
        return ok


class AsymmetricGD(AsymmetricGDSetup):
    """Factorized GD on ``Z = U V^T`` (reference). Options and start as the native method
    (:class:`~wnsense_native.solvers.gd.AsymmetricGDSetup`): ``init_scale`` (alpha) and
    ``imbalanced`` (V_0 at alpha/3). Records ``imbalance = ||U^T U - V^T V||_F`` (through the
    setup class)."""

    def _begin(self, start):
        U, V = start["U"], start["V"]
        self._adopt(U, V, self.problem.residual(U, V, right=V, left=U))

    def _adopt(self, U, V, res):
        self.U, self.V, self.sumsq = U, V, res.sumsq
        self.loss = self.problem.loss(res.sumsq)
        self.grad_U = res.AV                              # grad_U f = E V
        self.grad_V = res.AtU                             # grad_V f = E^T U
        self.grad_norm = float(np.sqrt(np.sum(self.grad_U ** 2) + np.sum(self.grad_V ** 2)))

    @property
    def factors(self):
        return {"U": self.U, "V": self.V}

    def lowrank(self):
        return self.U, self.V

    def step(self):
        def trial(eta):
            U_new = self.U - eta * self.grad_U              # simultaneous update
            V_new = self.V - eta * self.grad_V
            res = self.problem.residual(U_new, V_new, right=V_new, left=U_new)
            return self.problem.loss(res.sumsq), (U_new, V_new, res)

        eta, _, (U_new, V_new, res), ok = self.step_rule.search(self.loss, self.grad_norm ** 2,
                                                                trial, self.step_hint())
        self.step_size = eta
        self._adopt(U_new, V_new, res)
        return ok


def gd_for(symmetric: bool):
    return SymmetricGD if symmetric else AsymmetricGD
