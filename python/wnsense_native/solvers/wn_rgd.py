"""WN-RGD: generalized weight normalization + Riemannian gradient descent (Wei, Zhang, Li, He,
ICLR 2026, Algorithm 1), native path. Read against SPEC section 3.1:

    Z = X Theta X^T,  X on St(d, r),  Theta symmetric r x r
    S = sym(A*(A(Z) - y)),  f = 1/4 ||A(Z) - y||^2
    1. Gt = S X Theta                    (Euclidean gradient in X)
    2. G  = Gt - X sym(X^T Gt)           (Riemannian gradient)
    3. X+ = Retr_X(-eta G)               (polar | qr | cayley)
    4. Theta+ = Theta - mu/2 X+^T S(X+, Theta) X+     (magnitude step with the new direction)

Each iteration streams the sensing data twice: once at (X+, Theta) (which also serves as the
step-size trial), once at (X+, Theta+) (the loss and S X+ for the next iteration). Only the thin
products ``S X`` are used: the operator never hands over a d x d matrix.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .._validation import check_choice, check_float
from ._init import stiefel_start, user_factors
from .diagnostics import DIAGNOSTIC_OPTIONS, make_diagnostics, model_for
from ._method import Method
from ._problem import sym
from ._steps import magnitude_search

RETRACTIONS = {"polar", "qr", "cayley"}


def retract(kind, X, G_dir, Gt, eta):
    """``Retr_X(-eta G_dir)``: polar / QR move along the tangent ``-G_dir``; Cayley is built from
    the Euclidean ``Gt``. Shared by the symmetric and the rectangular method."""
    if kind == "polar":
        return _core.polar_retraction(X, G_dir, eta)
    if kind == "qr":
        return _core.qr_retraction(X, G_dir, eta)
    return _core.cayley_retraction(X, Gt, eta)


class WNRGDSetup(Method):
    """Options, start and iteration of symmetric WN-RGD, shared by the native and the reference
    method (and, through :class:`~.wn_rgd_rect.RectangularWNRGDSetup`, options and start of the
    rectangular one).

    Options: ``retraction`` ("polar" default, "qr", "cayley"), ``mu`` (magnitude step, 2.0),
    ``preconditioned`` (use ``S X`` instead of ``S X Theta`` as the direction gradient: this
    project's addition, not from the paper; it removes a factor kappa from the rate), ``theta0``
    (initial magnitude scalar multiple of I, default 0), and the shared ``diagnostics`` /
    ``hessian_every`` (:mod:`.diagnostics`).

    Start: each Stiefel factor of the model (``stiefel`` of :func:`~.diagnostics.model_for`)
    uniform on its manifold (drawn in that order), ``Theta_0 = theta0 I`` (0 by default): not a
    small init. A warm start's Stiefel factors must have orthonormal columns; its factors the
    model keeps symmetric (``symmetric_factors``: the symmetric ``Theta``) are symmetrized.
    """

    name = "wn_rgd"
    OPTIONS = {"retraction": "polar", "mu": 2.0, "preconditioned": False, "theta0": 0.0,
               **DIAGNOSTIC_OPTIONS}

    @classmethod
    def factor_shapes(cls, problem, rank):
        return {"X": (problem.d1, rank), "Theta": (rank, rank)}

    def _setup(self, problem, rank, gen, init, *, retraction, mu, preconditioned, theta0,
               diagnostics=(), hessian_every=1):
        shapes = self.factor_shapes(problem, rank)
        self.diagnostics = make_diagnostics(diagnostics, hessian_every, shapes)
        self.retraction = check_choice("retraction", retraction, RETRACTIONS)
        self.mu = check_float("mu", mu, minimum=0.0, strict_minimum=True)
        self.preconditioned = bool(preconditioned)
        model = model_for(shapes)
        if init is not None:
            start = user_factors(init, shapes, orthonormal=model.stiefel)
            for k in model.symmetric_factors:
                start[k] = sym(start[k])
            return start
        start = {k: stiefel_start(gen, shapes[k][0], rank) for k in model.stiefel}
        start["Theta"] = check_float("theta0", theta0, minimum=-2.0, maximum=2.0) * np.eye(rank)
        return start

    def step_hint(self):
        """First trial of the direction search: 1 when preconditioned, else ``1/||Theta||_2^2``
        (a callable: the spectral norm is computed only when the step rule reads it)."""
        if self.preconditioned:
            return 1.0
        Theta = self.Theta
        return lambda: 1.0 / np.linalg.norm(Theta, 2) ** 2

    # The iteration is the same for both backends: they differ in ``retract`` (native kernels or
    # numpy) and in how ``_set_iterate(X, Theta, res)`` forms the gradients from the pass ``res``
    # at (X, Theta), whose thin product ``res.AV`` is ``S X``.
    retract = staticmethod(retract)

    def _set_iterate(self, X, Theta, res):
        raise NotImplementedError

    def _pass(self, X, Theta):
        """One pass at ``Z = X Theta X^T`` with the product ``S X`` (all a step needs)."""
        return self.problem.residual(X @ Theta, X, right=X)

    def _begin(self, start):
        X, Theta = start["X"], start["Theta"]
        self._set_iterate(X, Theta, self._pass(X, Theta))

    @property
    def factors(self):
        return {"X": self.X, "Theta": self.Theta}

    def lowrank(self):
        return self.X @ self.Theta, self.X

    # -- one iteration -----------------------------------------------------------------------
    def step(self):
        Theta = self.Theta

        def trial(eta):  # pass 1: the residual at (X+, Theta), also the step-size test
            X_new = self.retract(self.retraction, self.X, self.G_dir, self.Gt, eta)
            res = self._pass(X_new, Theta)
            return self.problem.loss(res.sumsq), (X_new, res.AV)   # S(X+, Theta) X+

        # decrease rate of f(., Theta) along the search direction: <grad_X f, G_dir>
        slope = float(np.vdot(self.G, self.G_dir))
        if not np.any(self.G_dir):
            # Theta = 0 (the default start) or an exact critical point: the direction does not
            # move, and the residual at (X, Theta) is the one we already have.
            eta, ok, X_new, SX_mid, loss_mid = 0.0, True, self.X, self.SX, self.loss
        else:
            eta, loss_mid, (X_new, SX_mid), ok = self.step_rule.search(self.loss, slope, trial,
                                                                       self.step_hint())
        self.step_size = eta
        # magnitude step with the new direction, Delta = X+^T S(X+, Theta) X+; pass 2: loss and
        # S X+ at the new iterate
        Delta = X_new.T @ SX_mid

        def magnitude(mu):
            Theta_new = sym(Theta - 0.5 * mu * Delta)
            res = self._pass(X_new, Theta_new)
            return self.problem.loss(res.sumsq), (Theta_new, res)

        Theta_new, res = magnitude_search(self.step_rule, loss_mid, self.mu, magnitude)
        self._set_iterate(X_new, Theta_new, res)
        return ok


class WNRGD(WNRGDSetup):
    """Symmetric WN-RGD, native path; options, start and iteration: :class:`WNRGDSetup`."""

    # -- state -------------------------------------------------------------------------------
    def _set_iterate(self, X, Theta, res):
        """Adopt (X, Theta) with its pass; precompute the gradients the next step needs."""
        self.X, self.Theta, self.sumsq = X, Theta, res.sumsq
        self.loss = self.problem.loss(res.sumsq)
        SX = self.SX = res.AV                                   # S X
        self.Gt = SX if self.preconditioned else SX @ Theta
        self.G = _core.tangent_projection(X, np.ascontiguousarray(SX @ Theta))
        self.G_dir = (_core.tangent_projection(X, self.Gt) if self.preconditioned else self.G)
        grad_theta = 0.5 * (X.T @ SX)
        self.grad_norm = float(np.sqrt(np.vdot(self.G, self.G) + np.vdot(grad_theta, grad_theta)))
