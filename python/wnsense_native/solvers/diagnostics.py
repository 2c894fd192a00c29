"""Per-iteration diagnostics on request (SPEC section 4), for both backends (the models they
differentiate: :mod:`.models`).

Ask for them with the method options ``diagnostics`` (a name or a tuple of names) and
``hessian_every``::

    wn.solve(op, y, r, method="wn_rgd", x_true=Zs,
             diagnostics=("alignment", "theta_svals", "hessian"), hessian_every=10)

recorded in ``res.history`` (1-D float arrays, one entry per iteration, entry 0 = the start):

``"alignment"`` (needs ``x_true``)
    the singular values of ``U*^T Q``, where ``U*`` spans the top-``r*`` left singular space of
    ``x_true`` (``r*`` its numerical rank; the top eigenvectors when ``x_true`` is symmetric PSD)
    and ``Q`` is an orthonormal basis of the column space of the left factor (``X`` for WN-RGD,
    ``Y`` for the symmetric factorized methods, ``U`` or ``X_L`` for the rectangular ones): the
    cosines of the principal angles between the two subspaces. Recorded as ``alignment_min`` and
    ``alignment_max``; rectangular models add ``alignment_right_min`` / ``alignment_right_max`` for
    the right factor against the right singular space of ``x_true``.
``"theta_svals"``
    singular values of the magnitude ``Theta`` (WN-RGD only): ``theta_sv_min``, ``theta_sv_max``.
``"hessian"``
    ``hessian_top``: the largest eigenvalue of the Hessian of the loss in the method's own
    parameters, by power iteration on Hessian-vector products, every ``hessian_every`` iterations
    (NaN in between; the power iteration is warm-started from the previous top eigenvector and
    stops when the Rayleigh quotient settles to 1e-10, or after 500 products). Parameters are
    Euclidean (``Y``; ``U, V``; ``W, g``) except for WN-RGD,
    whose directions live on Stiefel manifolds: there it is the Riemannian Hessian of the
    embedded metric, ``Hess f(X)[xi] = P_X(D^2 f(X)[xi] - xi sym(X^T grad f(X)))`` (Absil,
    Mahony, Sepulchre 2008; Boumal 2023, sec. 7.7) on the tangent space of ``St x Sym(r)``
    (``St x R^{r x r} x St`` for rectangular WN-RGD).

Methods record their own cheap quantities always: ``imbalance`` (asymmetric factorized methods),
``min_column_norm`` (column-wise WN).

The Hessian-vector product is analytic, through the operator's thin-factor passes: with
``Z = phi(p)``, ``grad f(p) = g(p, A*(r))`` (``g`` linear in its second argument, and using
``A*(r)`` only through products with thin matrices), so

    Hess f(p)[D] = g(p, A*(A(J_p D))) + D_p g(p, G)[D] |_{G = A*(r) fixed},

two passes over the sensing data per product: one at the thin ``J_p D = L R^T`` with zero
measurements (the products of ``A*(A(J_p D))``), one at the point for the products of ``A*(r)``
with the ``D``-dependent probes. Nothing ``d1 x d2`` is formed. Diagnostics passes are counted in
``nfev`` (they are real passes over the data) but excluded from ``history["time"]``.
"""
from __future__ import annotations

import math

import numpy as np

from .._validation import check_int
from .models import (AsymmetricFactor, ColumnNormalized, RectangularWeightNormalized,  # noqa: F401
                     SymmetricFactor, WeightNormalized, model_for, sym, tangent_projection)

__all__ = ["DIAGNOSTICS", "DIAGNOSTIC_OPTIONS", "Diagnostics", "make_diagnostics",
           "model_for", "hessian_top_eigenvalue", "HessianOperator"]

DIAGNOSTICS = ("alignment", "theta_svals", "hessian")
# the method options every diagnosed method accepts (merge into its OPTIONS)
DIAGNOSTIC_OPTIONS = {"diagnostics": (), "hessian_every": 1}

# power iteration: stop when the Rayleigh quotient changes by less than TOL (relative), or after
# MAX_ITER products (the estimate is then a Rayleigh quotient: a lower bound of lambda_max whose
# error decays like (lambda_2 / lambda_max)^(2k) for the shifted spectrum)
HESSIAN_MAX_ITER = 500
HESSIAN_TOL = 1e-10


# ---------------------------------------------------------------------------------------------
# Hessian-vector products and the power iteration

def _dot(a, b):
    return float(sum(np.sum(a[k] * b[k]) for k in a))


def _norm(a):
    return math.sqrt(_dot(a, a))


class HessianOperator:
    """The (Riemannian, for Stiefel factors) Hessian of the loss at ``factors`` as a linear map
    on dicts of arrays shaped like the factors; two passes over the sensing data per product
    (see the module docstring) plus one at construction (the gradient at the point)."""

    def __init__(self, problem, factors):
        self.problem = problem
        self.model = model_for(factors)
        self.p = {k: np.asarray(v, dtype=np.float64) for k, v in factors.items()}
        self.point = self.model.model(self.p)
        res = problem.residual(*self.point, *self.model.probes(self.p))
        self.grad = self.model.gradient(self.p, res.AV, res.AtU)

    def project(self, D):
        """Onto the tangent space: ``xi - X sym(X^T xi)`` on Stiefel factors, ``sym`` on
        symmetric ones, identity elsewhere."""
        out = dict(D)
        for k in self.model.stiefel:
            out[k] = tangent_projection(self.p[k], D[k])
        for k in self.model.symmetric_factors:
            out[k] = sym(D[k])
        return out

    def euclidean(self, D):
        """The Euclidean Hessian-vector product of the loss in the parameters: the gradient's
        products with ``A*(A(J D))`` (a pass at ``J D`` with zero measurements) plus the
        derivative of the gradient at fixed ``A*(r)`` (a pass at the point)."""
        m, p = self.model, self.p
        res = self.problem.normal_products(*m.model_jvp(p, D), *m.probes(p))
        H = m.gradient(p, res.AV, res.AtU)
        res = self.problem.residual(*self.point, *m.jvp_probes(p, D))
        J = m.gradient_jvp(p, D, res.AV, res.AtU)
        return {k: H[k] + J[k] for k in p}

    def __call__(self, D):
        H = self.euclidean(D)
        for k in self.model.stiefel:      # Weingarten term of the Stiefel manifold
            H[k] = H[k] - D[k] @ sym(self.p[k].T @ self.grad[k])
        return self.project(H) if (self.model.stiefel or self.model.symmetric_factors) else H


def _power(apply, v, shift, max_iter, tol):
    """Power iteration for the dominant eigenvalue of ``apply - shift I`` from ``v``."""
    v = {k: a / _norm(v) for k, a in v.items()}
    lam, w = None, v
    for _ in range(max_iter):
        w = apply(v)
        if shift:
            w = {k: w[k] - shift * v[k] for k in w}
        new = _dot(v, w)
        nw = _norm(w)
        converged = lam is not None and abs(new - lam) <= tol * max(abs(new), 1e-300)
        lam = new
        if converged or nw == 0.0:
            break
        v = {k: a / nw for k, a in w.items()}
    return lam, v


def hessian_top_eigenvalue(problem, factors, *, v0=None, shift=0.0, max_iter=HESSIAN_MAX_ITER,
                           tol=HESSIAN_TOL, return_state=False):
    """Largest eigenvalue of the Hessian of the loss at ``factors`` (a dict like
    ``res.factors``), by power iteration on :class:`HessianOperator` products.

    The power iteration runs on ``H - shift I`` (``shift = 0`` by default). When its dominant
    eigenvalue comes out negative, that is ``lambda_min - shift``: the iteration restarts on
    ``H - lambda_min I``, whose dominant eigenvalue ``lambda_max - lambda_min >= 0`` gives the
    answer. ``v0`` is the start (default: a fixed pseudo-random vector, so the native and
    reference solvers agree and the caller's generator is not touched). With
    ``return_state=True`` returns ``(lambda_max, v, shift)``: the top eigenvector and the shift
    used, the warm start of the next call at a nearby point.
    """
    H = HessianOperator(problem, factors)
    if v0 is None:
        gen = np.random.default_rng(12345)
        v0 = {k: gen.standard_normal(np.shape(a)) for k, a in H.p.items()}
    start = H.project(v0)
    if _norm(start) == 0.0:
        start = H.project({k: np.ones(np.shape(a)) for k, a in H.p.items()})
    shift = float(shift)
    for _ in range(3):
        mu, v = _power(H, start, shift, max_iter, tol)
        if mu is None or mu >= 0:
            break
        # mu + shift is the most negative eigenvalue: shift to it, and restart from the initial
        # vector (the converged v is a fixed point of the new shifted operator)
        shift += mu
    lam = (mu if mu is not None else 0.0) + shift
    return (lam, v, shift) if return_state else lam


# ---------------------------------------------------------------------------------------------
# the recorder a method carries

def _cosines(U_star, F):
    Q = np.linalg.qr(F)[0]
    return np.linalg.svd(U_star.T @ Q, compute_uv=False)


class Diagnostics:
    """Records the requested diagnostics of one method run (see the module docstring)."""

    def __init__(self, names, hessian_every, factor_names):
        self.names = names
        self.every = hessian_every
        self.model = model_for(factor_names)
        if "theta_svals" in names and "Theta" not in self.model.names:
            raise ValueError("diagnostics='theta_svals' needs a method with a magnitude Theta "
                             "(WN-RGD)")
        self.x_true = self.subspaces = None
        self.count = 0
        self.vector, self.shift = None, 0.0   # warm start of the next Hessian estimate

    def set_reference(self, x_true):
        self.x_true = x_true
        if "alignment" in self.names:
            if x_true is None:
                raise ValueError("diagnostics='alignment' needs x_true (the ground truth)")
            self.subspaces = x_true.singular_subspaces()

    def record(self, method) -> dict:
        p, out = method.factors, {}
        if "alignment" in self.names:
            m = self.model
            if self.subspaces is None:
                raise ValueError("diagnostics='alignment' needs x_true (the ground truth)")
            s = _cosines(self.subspaces[0], p[m.left])
            out["alignment_min"], out["alignment_max"] = float(s.min()), float(s.max())
            if m.right is not None:
                s = _cosines(self.subspaces[1], p[m.right])
                out["alignment_right_min"] = float(s.min())
                out["alignment_right_max"] = float(s.max())
        if "theta_svals" in self.names:
            s = np.linalg.svd(p["Theta"], compute_uv=False)
            out["theta_sv_min"], out["theta_sv_max"] = float(s.min()), float(s.max())
        if "hessian" in self.names:
            value = math.nan
            if self.count % self.every == 0:
                value, self.vector, self.shift = hessian_top_eigenvalue(
                    method.problem, p, v0=self.vector, shift=self.shift, return_state=True)
            out["hessian_top"] = float(value)
        self.count += 1
        return out


def make_diagnostics(diagnostics, hessian_every, factor_names):
    """Validate the ``diagnostics`` / ``hessian_every`` options; None when nothing is asked."""
    if diagnostics is None:
        names = ()
    elif isinstance(diagnostics, str):
        names = (diagnostics,)
    else:
        try:
            names = tuple(diagnostics)
        except TypeError:
            raise TypeError("diagnostics must be a name or a sequence of names from "
                            f"{list(DIAGNOSTICS)}, got {type(diagnostics).__name__}") from None
    for n in names:
        if not isinstance(n, str) or n not in DIAGNOSTICS:
            raise ValueError(f"diagnostics must be names from {list(DIAGNOSTICS)}, got {n!r}")
    every = check_int("hessian_every", hessian_every, minimum=1)
    return Diagnostics(frozenset(names), every, factor_names) if names else None
