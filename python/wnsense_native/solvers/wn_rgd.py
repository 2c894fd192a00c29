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
from .diagnostics import DIAGNOSTIC_OPTIONS, make_diagnostics
from .models import model_for
from ._method import Method
from ._problem import sym
from ._magnitude import MagnitudeStep
from ._steps import magnitude_search
from ._init import orthonormal_basis

RETRACTIONS = {"polar", "qr", "cayley"}

# method="wn_rgd" variants: the default (WN-LBFGS, this project's addition), the paper's
# Algorithm 1, and the Theta-preconditioned alternating method (project addition)
WN_VARIANTS = ("lbfgs", "paper", "preconditioned")
DEFAULT_WN_VARIANT = "lbfgs"


def wn_variant(options: dict) -> str:
    """The variant ``options`` select: ``variant`` (default ``"lbfgs"``), or
    ``preconditioned=True`` (the older spelling of ``variant="preconditioned"``)."""
    variant = check_choice("variant", options.get("variant", DEFAULT_WN_VARIANT), WN_VARIANTS)
    if options.get("preconditioned", False):
        if "variant" in options and variant != "preconditioned":
            raise ValueError(f"preconditioned=True selects variant='preconditioned', which "
                             f"contradicts variant={variant!r}")
        variant = "preconditioned"
    return variant


def wn_rgd_factory(classes: dict):
    """The registry entry of ``method="wn_rgd"``: ``factory(symmetric, options)`` picks the
    class of the variant (``classes``: variant -> (symmetric class, rectangular class))."""
    def factory(symmetric, options=None):
        return classes[wn_variant(options or {})][0 if symmetric else 1]
    factory.with_options = True
    factory.selectors = ("variant", "preconditioned")   # the options that choose the class
    return factory


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
    OPTIONS = {"variant": "paper", "retraction": "polar", "mu": None, "preconditioned": False,
               "theta0": 0.0, "penalty": 0.0, "start": None, **DIAGNOSTIC_OPTIONS}
    default_mu = 2.0
    STARTS = ("random", "spectral")

    @classmethod
    def factor_shapes(cls, problem, rank):
        return {"X": (problem.d1, rank), "Theta": (rank, rank)}

    def _setup(self, problem, rank, gen, init, *, variant, retraction, mu, preconditioned,
               theta0, penalty, start, diagnostics=(), hessian_every=1):
        shapes = self.factor_shapes(problem, rank)
        self.diagnostics = make_diagnostics(diagnostics, hessian_every, shapes)
        self.retraction = check_choice("retraction", retraction, RETRACTIONS)
        self.preconditioned = bool(preconditioned) or variant == "preconditioned"
        if mu is None:   # the paper's mu for Algorithm 1; the learned step for the addition
            mu = "auto" if self.preconditioned else self.default_mu
        self.magnitude = MagnitudeStep(mu, penalty, symmetric=problem.symmetric,
                                       default_mu=self.default_mu)
        if start is None:   # a penalized run from Theta = 0 needs aligned directions to begin
            start = "spectral" if self.magnitude.penalty else "random"
        # a warm start is taken as given
        self.spectral_start = (check_choice("start", start, self.STARTS) == "spectral"
                               and init is None)
        self.label = ("WN-RGD, Theta-preconditioned (direction S X; project addition, not from "
                      "the paper)" if self.preconditioned else
                      "WN-RGD, the paper's Algorithm 1")
        if self.magnitude.auto:
            self.label += ", learned magnitude step mu='auto' (project addition)"
        if self.magnitude.penalty:
            self.label += f", nuclear-norm penalty {self.magnitude.penalty:g}"
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

    def _objective(self, sumsq, Theta):
        """The loss ``f`` plus the nuclear-norm penalty (0 unless ``penalty`` is set)."""
        return self.problem.loss(sumsq) + self.magnitude.penalty_value(Theta)

    def _pass(self, X, Theta):
        """One pass at ``Z = X Theta X^T`` with the product ``S X`` (all a step needs)."""
        return self.problem.residual(X @ Theta, X, right=X)

    def _begin(self, start):
        X, Theta = start["X"], start["Theta"]
        res = self._pass(X, Theta)
        if self.spectral_start and not np.any(Theta) and np.any(res.AV):
            # one block power step, X = orth(A*(y) X0): a pass at Z = 0 again
            X = orthonormal_basis(-res.AV)
            res = self._pass(X, Theta)
        self._set_iterate(X, Theta, res)

    @property
    def factors(self):
        return {"X": self.X, "Theta": self.Theta}

    def lowrank(self):
        return self.X @ self.Theta, self.X

    # -- one iteration -----------------------------------------------------------------------
    def step(self):
        Theta = self.Theta

        pen = self.magnitude.penalty_value(Theta)    # unchanged by the direction step

        def trial(eta):  # pass 1: the residual at (X+, Theta), also the step-size test
            X_new = self.retract(self.retraction, self.X, self.G_dir, self.Gt, eta)
            res = self._pass(X_new, Theta)
            return self.problem.loss(res.sumsq) + pen, (X_new, res.AV)   # S(X+, Theta) X+

        if self.preconditioned and float(np.vdot(self.G, self.G_dir)) < 0:
            # where Theta is indefinite S X can ascend: the gradient this step, in the units of
            # S X (divided by ||Theta||_2^2, its natural step) so that the remembered step size
            # stays valid (at Theta = 0 the slope is 0 and the free move along S X is kept)
            scale = 1.0 / max(np.linalg.norm(Theta, 2) ** 2, 1e-300)
            self.G_dir, self.Gt = scale * self.G, scale * (self.SX @ Theta)
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
        # magnitude step with the new direction, Delta = X+^T S(X+, Theta) X+ = 2 grad_Theta f
        # (:mod:`._magnitude`); pass 2: loss and S X+ at the new iterate
        Delta = X_new.T @ SX_mid

        def magnitude(mu):
            Theta_new = self.magnitude.take(Theta, Delta, mu)
            res = self._pass(X_new, Theta_new)
            return self._objective(res.sumsq, Theta_new), (Theta_new, res)

        Theta_new, res = magnitude_search(self.step_rule, loss_mid, self.magnitude.mu, magnitude)
        self.magnitude.learn(Theta, Theta_new, Delta, loss_mid - pen,
                             self.problem.loss(res.sumsq))
        self._set_iterate(X_new, Theta_new, res)
        return ok


class WNRGD(WNRGDSetup):
    """Symmetric WN-RGD, native path; options, start and iteration: :class:`WNRGDSetup`."""

    # -- state -------------------------------------------------------------------------------
    def _set_iterate(self, X, Theta, res):
        """Adopt (X, Theta) with its pass; precompute the gradients the next step needs."""
        self.X, self.Theta, self.sumsq = X, Theta, res.sumsq
        self.loss = self._objective(res.sumsq, Theta)
        SX = self.SX = res.AV                                   # S X
        self.Gt = SX if self.preconditioned else SX @ Theta
        self.G = _core.tangent_projection(X, np.ascontiguousarray(SX @ Theta))
        self.G_dir = (_core.tangent_projection(X, self.Gt) if self.preconditioned else self.G)
        grad_theta = 0.5 * (X.T @ SX)
        self.grad_norm = float(np.sqrt(np.vdot(self.G, self.G) + np.vdot(grad_theta, grad_theta)))
