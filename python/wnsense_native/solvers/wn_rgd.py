"""WN-RGD: generalized weight normalization + Riemannian gradient descent (Wei, Zhang, Li, He,
ICLR 2026, Algorithm 1), on both backends. Read against SPEC section 3.1:

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

from .._validation import check_choice, check_float
from ._init import orthonormal_basis, stiefel_start, user_factors
from ._magnitude import MagnitudeStep
from ._method import Method
from ._problem import sym
from ._steps import magnitude_search
from .diagnostics import DIAGNOSTIC_OPTIONS, make_diagnostics
from .models import model_for
# the variants and their direction strategies live in .wn_variants (re-exported: their older
# home)
from .wn_variants import (DEFAULT_WN_VARIANT, WN_VARIANTS, Direction,  # noqa: F401
                          RiemannianGradient, ThetaPreconditioned, wn_variant)

RETRACTIONS = {"polar", "qr", "cayley"}


class WNRGD(Method):
    """Options, start and iteration of symmetric WN-RGD on both backends (and, through
    :class:`~.wn_rgd_rect.RectangularWNRGD`, of the rectangular one). The search direction
    of the Stiefel factors is a :class:`Direction` chosen by ``variant``.

    Options: ``variant`` ("paper" or "preconditioned": :data:`WN_VARIANTS`),
    ``retraction`` ("polar" default, "qr", "cayley"), ``mu`` (magnitude step, 2.0),
    ``preconditioned`` (older spelling of ``variant="preconditioned"``), ``theta0``
    (initial magnitude scalar multiple of I, default 0), and the shared ``diagnostics`` /
    ``hessian_every`` (:mod:`.diagnostics`).

    Start: each Stiefel factor of the model (``stiefel`` of :func:`~.models.model_for`)
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
        # the registry resolved the variant (wn_variant); preconditioned=True is its older
        # spelling when the class is built directly
        self.direction = WN_VARIANTS["preconditioned" if preconditioned else variant]
        if mu is None:   # the paper's mu for Algorithm 1; the learned step for the addition
            mu = "auto" if self.direction.learns_mu else self.default_mu
        self.magnitude = MagnitudeStep(mu, penalty, symmetric=problem.symmetric,
                                       default_mu=self.default_mu)
        if start is None:   # a penalized run from Theta = 0 needs aligned directions to begin
            start = "spectral" if self.magnitude.penalty else "random"
        # a warm start is taken as given
        self.spectral_start = (check_choice("start", start, self.STARTS) == "spectral"
                               and init is None)
        self.label = self.direction.label
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

    @property
    def preconditioned(self) -> bool:
        return self.direction is ThetaPreconditioned

    def step_hint(self):
        """First trial of the direction search (the direction's: ``1/||Theta||_2^2`` as a
        callable, computed only when the step rule reads it, or 1)."""
        return self.direction.first_trial(self.Theta)

    def retract(self, kind, X, G_dir, Gt, eta):
        return self.backend.retract(kind, X, G_dir, Gt, eta)

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

        if self.direction.safeguarded and float(np.vdot(self.G, self.G_dir)) < 0:
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


    # -- state -------------------------------------------------------------------------------
    def _set_iterate(self, X, Theta, res):
        """Adopt (X, Theta) with its pass (``res.AV = S X``); precompute the gradients the next
        step needs: ``grad_X f = S X Theta``, ``grad_Theta f = 1/2 X^T S X``, the Riemannian
        gradient ``G`` and the direction's ``Gt`` and ``G_dir``."""
        tangent = self.backend.tangent_projection
        self.X, self.Theta, self.sumsq = X, Theta, res.sumsq
        self.loss = self._objective(res.sumsq, Theta)
        SX = self.SX = res.AV
        grad_X = SX @ Theta
        self.G = tangent(X, grad_X)
        self.Gt = self.direction.gradient(grad_X, SX)
        self.G_dir = self.G if self.Gt is grad_X else tangent(X, self.Gt)
        grad_theta = 0.5 * (X.T @ SX)
        sqnorm = self.backend.sqnorm
        self.grad_norm = float(np.sqrt(sqnorm(self.G) + sqnorm(grad_theta)))
