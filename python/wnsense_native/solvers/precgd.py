"""Preconditioned factorized gradient descent (SPEC 3.2): PrecGD and ScaledGD(lambda).

Both take the factorized-GD step through a damped Gram preconditioner:

    symmetric   (Z = Y Y^T, f = 1/4 ||A(Z) - y||^2, grad_Y f = S Y):
        Y+ = Y - eta grad_Y f (Y^T Y + lambda I)^{-1}
    rectangular (Z = U V^T, f = 1/2 ||A(Z) - y||^2, grad_U f = E V, grad_V f = E^T U):
        U+ = U - eta E V (V^T V + lambda I)^{-1},   V+ = V - eta E^T U (U^T U + lambda I)^{-1}

and differ only in the damping ``lambda``:

- **PrecGD** (Zhang, Fattahi, Zhang, NeurIPS 2021 / JMLR 2023): ``lambda_t = damping_scale *
  sqrt(f(Y_t))``, the noiseless-case rule (``damping_scale = 1`` by default), re-evaluated at
  every iterate.
- **ScaledGD(lambda)** (Xu, Shen, Chi, Ma, ICML 2023): a fixed ``lambda = damping``. The default
  ``damping=None`` takes ``1e-10 * ||y||`` (``||y|| ~ ||Z*||_F`` for the RIP-normalized
  ensembles). Why so small: with ``r > r*`` the excess components ``Y_perp`` of the factor decay
  linearly (Newton-like, preconditioned by ``(Y_perp^T Y_perp)^{-1}``) only while
  ``||Y_perp||^2 >~ lambda``; below that they decay like ``lambda / (eta t)``, so a fixed damping
  sets the accuracy floor of the overparameterized tail at about ``lambda / ||Z*||``. The theory's
  window ``lambda ~ sigma_min(Z*)`` (pass it as ``damping``) tames the early phase but, on
  problems with few measurements (``m = 8 d r*``, ``kappa = 20``, ``r = 2 r*``), stalls near a
  relative error of ``1e-5``; the default reaches ``tol = 1e-10``.

Initialization, for both: the small random start of factorized GD, drawn identically
(``Y_0 = init_scale * N(0,1)^{d x r} / sqrt(d)``; ``U_0, V_0 = init_scale * N(0,1) / sqrt(r)``,
option ``imbalanced`` as for GD), ``init_scale = 1e-3`` by default. (The PrecGD paper analyses a
local start; ScaledGD(lambda) a small random one, whose final accuracy is limited by roughly
``init_scale^2`` in the overparameterized case: lower it for very high accuracy.)

Step size: ``step_size=None`` is Armijo backtracking with slope ``<grad f, grad f P>`` (the decrease
rate along the preconditioned direction) and first trial ``0.5`` (the natural scale of a
Gauss-Newton-like step on a quadratic model that both factors share); a number is a constant step.

One pass over the sensing data per iteration (more only when backtracking). The history records
``damping`` (the ``lambda`` of the next step) and, rectangular, ``imbalance``.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_float
from .gd import AsymmetricGD, SymmetricGD, _evaluate

# first trial of the Armijo rule: both factors move, so the full Gauss-Newton step is halved
STEP_HINT = 0.5
# ScaledGD(lambda)'s default damping, relative to ||y|| (see the module docstring)
DEFAULT_DAMPING = 1e-10


class _Damped:
    """Mixin over a factorized-GD class (:class:`~.gd.SymmetricGD` or
    :class:`~.gd.AsymmetricGD`), shared by PrecGD and ScaledGD(lambda): each factor's gradient is
    right-multiplied by ``(P^T P + lambda I)^{-1}``, ``P`` its partner in the model (``Y`` for
    ``Y``; ``V`` for ``U``; ``U`` for ``V``); the first trial step :data:`STEP_HINT`; the history
    entry ``damping`` (the ``lambda`` of the next step, after the model's own entries).
    Subclasses give :meth:`damping`."""

    PARTNER = {"Y": "Y", "U": "V", "V": "U"}

    def damping(self) -> float:
        raise NotImplementedError

    def step_hint(self):
        return STEP_HINT

    def extra_history(self):
        return {**super().extra_history(), "damping": float(self.damping())}

    def directions(self) -> dict:
        """``grad_F (P^T P + lambda I)^{-1}`` for every factor ``F``."""
        lam = self.damping()
        out = {}
        for k, g in self.grads.items():
            P = self.fac[self.PARTNER[k]]
            out[k] = self.backend.precondition(g, P.T @ P + lam * np.eye(P.shape[1]))
        return out

    def step(self):
        dirs = self.directions()
        slope = sum(float(np.sum(self.grads[k] * dirs[k])) for k in dirs)

        def trial(eta):
            return _evaluate(self, {k: v - eta * dirs[k] for k, v in self.fac.items()})

        eta, _, (new, res), ok = self.step_rule.search(self.loss, slope, trial,
                                                       self.step_hint())
        self.step_size = eta
        self._adopt(new, res)
        return ok


class _PrecGD(_Damped):
    """Validates ``damping_scale`` (then the model's own options and start);
    ``lambda_t = damping_scale * sqrt(f(Y_t))``."""

    name = "precgd"

    def _setup(self, problem, rank, gen, init, *, damping_scale, **options):
        self.damping_scale = check_float("damping_scale", damping_scale, minimum=0.0,
                                         strict_minimum=True)
        return super()._setup(problem, rank, gen, init, **options)

    def damping(self):
        return self.damping_scale * float(np.sqrt(self.loss))


class _ScaledGD(_Damped):
    """``damping`` -> the fixed ``lambda = self.lam`` (default :func:`default_damping`)."""

    name = "scaledgd"

    def _setup(self, problem, rank, gen, init, *, damping, **options):
        self.lam = default_damping(problem) if damping is None else check_float(
            "damping", damping, minimum=0.0, strict_minimum=True)
        return super()._setup(problem, rank, gen, init, **options)

    def damping(self):
        return self.lam


def default_damping(problem) -> float:
    """ScaledGD(lambda)'s default ``lambda = 1e-10 ||y||`` (``1e-10`` when ``y = 0``)."""
    return DEFAULT_DAMPING * (problem.y_norm if problem.y_norm > 0 else 1.0)


class SymmetricPrecGD(_PrecGD, SymmetricGD):
    """PrecGD on ``Z = Y Y^T``. Options ``init_scale``, ``damping_scale``."""

    OPTIONS = {**SymmetricGD.OPTIONS, "damping_scale": 1.0}


class RectangularPrecGD(_PrecGD, AsymmetricGD):
    """PrecGD on ``Z = U V^T``. Options ``init_scale``, ``imbalanced``, ``damping_scale``."""

    OPTIONS = {**AsymmetricGD.OPTIONS, "damping_scale": 1.0}


class SymmetricScaledGD(_ScaledGD, SymmetricGD):
    """ScaledGD(lambda) on ``Z = Y Y^T``. Options ``init_scale``, ``damping``."""

    OPTIONS = {**SymmetricGD.OPTIONS, "damping": None}


class RectangularScaledGD(_ScaledGD, AsymmetricGD):
    """ScaledGD(lambda) on ``Z = U V^T``. Options ``init_scale``, ``imbalanced``, ``damping``."""

    OPTIONS = {**AsymmetricGD.OPTIONS, "damping": None}


def precgd_for(symmetric: bool):
    return SymmetricPrecGD if symmetric else RectangularPrecGD


def scaledgd_for(symmetric: bool):
    return SymmetricScaledGD if symmetric else RectangularScaledGD
