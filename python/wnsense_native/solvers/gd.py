"""Factorized gradient descent baselines (SPEC 3.2), both backends.

Symmetric (Burer-Monteiro):  Y+ = Y - eta S(Y Y^T) Y,  f = 1/4 ||A(Y Y^T) - y||^2,
    small init Y_0 = alpha N(0,1)^{d x r} / sqrt(d).
Asymmetric (Soltanolkotabi, Stoger, Xie 2023):  U+ = U - eta E V,  V+ = V - eta E^T U
    (simultaneous), E = A*(A(U V^T) - y), f = 1/2 ||A(U V^T) - y||^2,
    small init U_0, V_0 = alpha N(0,1) / sqrt(r); imbalanced init (alpha, alpha/3) on request.

Each iteration streams the sensing data once: the trial point's residual pass yields the
gradient of the next iteration (its thin products ``S Y``, or ``E V`` and ``E^T U``).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_float
from ._init import small_gaussian, user_factors
from .diagnostics import DIAGNOSTIC_OPTIONS, make_diagnostics
from .models import AsymmetricFactor, SymmetricFactor
from ._method import Method


class FactorizedGD(Method):
    """Gradient descent on factors from a small random start, both backends; the base of GD,
    PrecGD / ScaledGD and column-wise WN.

    Options: ``init_scale`` (``alpha``, validated only for a random start) and the shared
    ``diagnostics`` / ``hessian_every``. Subclasses give the model (``_model``, ``_probes``,
    ``_gradients``: a :mod:`.models` parameterization), draw the start (:meth:`_draw`, given
    ``alpha`` and their own start options) and may validate a warm start further
    (:meth:`_warm_start`)."""

    OPTIONS = {"init_scale": 1e-3, **DIAGNOSTIC_OPTIONS}

    # -- options and start -----------------------------------------------------------------
    def _setup(self, problem, rank, gen, init, *, init_scale, diagnostics=(), hessian_every=1,
               **start_options):
        shapes = self.factor_shapes(problem, rank)
        self.diagnostics = make_diagnostics(diagnostics, hessian_every, shapes)
        if init is not None:
            return self._warm_start(init, shapes)
        alpha = check_float("init_scale", init_scale, minimum=0.0, strict_minimum=True)
        return self._draw(gen, problem, rank, alpha, **start_options)

    def _warm_start(self, init, shapes):
        return user_factors(init, shapes)

    def _draw(self, gen, problem, rank, alpha, **start_options) -> dict:
        raise NotImplementedError

    def step_hint(self):
        """First trial of the step-size search: ``1 / ||y||``."""
        return 1.0 / max(self.problem.y_norm, 1e-300)

    # -- the iteration ---------------------------------------------------------------------
    def _begin(self, factors):
        self._adopt(factors, self._pass(factors))

    def _pass(self, factors):
        """One pass at the model of ``factors``, with the products its gradient needs."""
        return self.problem.residual(*self._model(factors), *self._probes(factors))

    def _adopt(self, factors, res):
        self.fac, self.sumsq = factors, res.sumsq
        self.loss = self.problem.loss(res.sumsq)
        self.grads = self._gradients(factors, res.AV, res.AtU)
        self.grad_norm = self._grad_norm(self.grads)

    @staticmethod
    def _grad_norm(grads):
        """The Frobenius norm of the gradient (all factors)."""
        return float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))

    @property
    def factors(self):
        return self.fac

    def lowrank(self):
        return self._model(self.fac)

    def step(self):
        def trial(eta):
            new = self._update(eta)
            return _evaluate(self, new)

        eta, _, (new, res), ok = self.step_rule.search(self.loss, self.grad_norm ** 2, trial,
                                                       self.step_hint())
        self.step_size = eta
        self._adopt(new, res)
        return ok

    def _update(self, eta):
        return {k: v - eta * self.grads[k] for k, v in self.fac.items()}


def _evaluate(method, factors):
    res = method._pass(factors)
    return method.problem.loss(res.sumsq), (factors, res)


class SymmetricGD(FactorizedGD):
    """Burer-Monteiro GD on ``Z = Y Y^T``: ``Y_0 = alpha N(0,1)^{d x r} / sqrt(d)``. Option
    ``init_scale`` (alpha, default 1e-3)."""

    name = "gd"
    # Z = Y Y^T and grad_Y f = S Y: the parameterization the diagnostics use
    _model = staticmethod(SymmetricFactor.model)
    _probes = staticmethod(SymmetricFactor.probes)
    _gradients = staticmethod(SymmetricFactor.gradient)

    @classmethod
    def factor_shapes(cls, problem, rank):
        return {"Y": (problem.d1, rank)}

    def _draw(self, gen, problem, rank, alpha):
        return {"Y": small_gaussian(gen, (problem.d1, rank), alpha, problem.d1)}


class AsymmetricGD(FactorizedGD):
    """Factorized GD on ``Z = U V^T`` (rectangular operators): ``U_0, V_0 = alpha N(0,1) /
    sqrt(r)`` (``U_0`` drawn first). Options ``init_scale`` (alpha) and ``imbalanced`` (``V_0`` at
    ``alpha/3``, the imbalanced init of Xiong et al.). Records the ``imbalance``
    ``||U^T U - V^T V||_F`` in the history."""

    name = "gd"
    OPTIONS = {"init_scale": 1e-3, "imbalanced": False, **DIAGNOSTIC_OPTIONS}
    # Z = U V^T, grad_U f = E V, grad_V f = E^T U: the parameterization the diagnostics use
    _model = staticmethod(AsymmetricFactor.model)
    _probes = staticmethod(AsymmetricFactor.probes)
    _gradients = staticmethod(AsymmetricFactor.gradient)

    @classmethod
    def factor_shapes(cls, problem, rank):
        return {"U": (problem.d1, rank), "V": (problem.d2, rank)}

    def _draw(self, gen, problem, rank, alpha, imbalanced):
        U = small_gaussian(gen, (problem.d1, rank), alpha, rank)
        V = small_gaussian(gen, (problem.d2, rank), alpha / 3 if imbalanced else alpha, rank)
        return {"U": U, "V": V}

    def extra_history(self):
        """``imbalance = ||U^T U - V^T V||_F`` (recorded by every method on ``Z = U V^T``)."""
        U, V = self.factors["U"], self.factors["V"]
        return {"imbalance": float(np.linalg.norm(U.T @ U - V.T @ V))}



def gd_for(symmetric: bool):
    return SymmetricGD if symmetric else AsymmetricGD
