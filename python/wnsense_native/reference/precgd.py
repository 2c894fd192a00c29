"""PrecGD and ScaledGD(lambda), reference (pure numpy) implementation (SPEC 3.2):

    symmetric   (Z = Y Y^T, f = 1/4 ||A(Z) - y||^2, S = sym(A*(r))):
        grad_Y f = S Y,          Y+ = Y - eta S Y (Y^T Y + lambda I)^{-1}
    rectangular (Z = U V^T, f = 1/2 ||A(Z) - y||^2, E = A*(r)):
        grad_U f = E V,          U+ = U - eta E V (V^T V + lambda I)^{-1}
        grad_V f = E^T U,        V+ = V - eta E^T U (U^T U + lambda I)^{-1}   (simultaneous)

    PrecGD (Zhang, Fattahi, Zhang):  lambda_t = damping_scale * sqrt(f(Y_t))
    ScaledGD(lambda) (Xu, Shen, Chi, Ma):  lambda = damping (default 1e-10 ||y||)

Same small random start as factorized GD, same step-size rule (``slope = <grad, direction>``,
first trial 0.5), damping rule, options and history as :mod:`wnsense_native.solvers.precgd` (whose
setup classes hold them), so both produce the same iterates to rounding.
"""
from __future__ import annotations

import numpy as np

from ..solvers._method import Method
from ..solvers.precgd import (RectangularPrecGDSetup, RectangularScaledGDSetup,
                              SymmetricPrecGDSetup, SymmetricScaledGDSetup)


class _PreconditionedGD(Method):
    """The shared iteration: every factor ``F`` steps along ``grad_F (P^T P + lambda I)^{-1}``
    with ``P`` its partner factor. Model subclasses give the model and the gradients; the setup
    classes of :mod:`wnsense_native.solvers.precgd` give the options, the start, ``lambda``
    (``damping()``), the first trial step and the history."""

    PARTNER: dict = {}

    def _begin(self, factors):
        self._adopt(factors, self._residual(factors))

    def _adopt(self, factors, res):
        self.fac, self.sumsq = factors, res.sumsq
        self.loss = self.problem.loss(res.sumsq)
        self.grads = self._gradients(res)
        self.grad_norm = float(np.sqrt(sum(np.sum(g ** 2) for g in self.grads.values())))

    @property
    def factors(self):
        return dict(self.fac)

    def step(self):
        lam = self.damping()
        direction = {}
        for k, grad in self.grads.items():
            P = self.fac[self.PARTNER[k]]
            direction[k] = grad @ np.linalg.inv(P.T @ P + lam * np.eye(P.shape[1]))
        # decrease rate along the preconditioned direction: <grad f, grad f (P^T P + lambda)^-1>
        slope = sum(float(np.sum(self.grads[k] * direction[k])) for k in direction)

        def trial(eta):
            new = {k: F - eta * direction[k] for k, F in self.fac.items()}
            res = self._residual(new)
            return self.problem.loss(res.sumsq), (new, res)

        eta, _, (new, res), ok = self.step_rule.search(self.loss, slope, trial,
                                                       self.step_hint())
        self.step_size = eta
        self._adopt(new, res)
        return ok


class _Symmetric(_PreconditionedGD):
    PARTNER = {"Y": "Y"}

    def _residual(self, f):
        return self.problem.residual(f["Y"], f["Y"], right=f["Y"])

    @staticmethod
    def _gradients(res):
        return {"Y": res.AV}                                # grad_Y f = S Y

    def lowrank(self):
        return self.fac["Y"], self.fac["Y"]


class _Rectangular(_PreconditionedGD):
    PARTNER = {"U": "V", "V": "U"}

    def _residual(self, f):
        return self.problem.residual(f["U"], f["V"], right=f["V"], left=f["U"])

    @staticmethod
    def _gradients(res):
        return {"U": res.AV, "V": res.AtU}                  # grad_U = E V, grad_V = E^T U

    def lowrank(self):
        return self.fac["U"], self.fac["V"]


class SymmetricPrecGD(SymmetricPrecGDSetup, _Symmetric):
    """PrecGD on ``Z = Y Y^T`` (reference); options and start:
    :class:`~wnsense_native.solvers.precgd.SymmetricPrecGDSetup`."""


class RectangularPrecGD(RectangularPrecGDSetup, _Rectangular):
    """PrecGD on ``Z = U V^T`` (reference); options and start:
    :class:`~wnsense_native.solvers.precgd.RectangularPrecGDSetup`."""


class SymmetricScaledGD(SymmetricScaledGDSetup, _Symmetric):
    """ScaledGD(lambda) on ``Z = Y Y^T`` (reference); options and start:
    :class:`~wnsense_native.solvers.precgd.SymmetricScaledGDSetup`."""


class RectangularScaledGD(RectangularScaledGDSetup, _Rectangular):
    """ScaledGD(lambda) on ``Z = U V^T`` (reference); options and start:
    :class:`~wnsense_native.solvers.precgd.RectangularScaledGDSetup`."""


def precgd_for(symmetric: bool):
    return SymmetricPrecGD if symmetric else RectangularPrecGD


def scaledgd_for(symmetric: bool):
    return SymmetricScaledGD if symmetric else RectangularScaledGD
