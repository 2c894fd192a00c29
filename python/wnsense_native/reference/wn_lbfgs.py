"""WN-LBFGS, reference (pure numpy) implementation: the iteration's small algebra written out
against :mod:`wnsense_native.solvers.wn_lbfgs` (whose classes hold the loop, the start, the step
rule and the options, so both backends produce the same iterates to rounding).

Packed tangent vectors ``v`` (``n x r``): symmetric ``[K; zeta]`` (``n = d + r``), rectangular
``[K_L; K_R; zeta]`` (``n = d1 + d2 + r``); metric ``<a, b> = <a_K, b_K> + w <a_zeta, b_zeta>``,
``w = 1/2`` (symmetric) or 1.
"""
from __future__ import annotations

import numpy as np

from ..solvers._problem import sym
from ..solvers.wn_lbfgs import WNLBFGSRectangularMixin, WNLBFGSSymmetricMixin, _LBFGSCore


def inner(a, b, theta_row, w):
    return float(np.vdot(a[:theta_row], b[:theta_row]) + w * np.vdot(a[theta_row:],
                                                                      b[theta_row:]))


def direction(g, S, Y, theta_row, w, curvature):
    """L-BFGS two-loop recursion ``p = -H g`` (pairs oldest first; ``H0 = <s,y>/<y,y> I`` of
    the newest); ``-g / curvature`` with no pairs or when ``p`` is not a descent direction
    (then ``reset`` is True)."""
    k = len(S)
    if k == 0:
        return -g / curvature, False
    q = g.copy()
    alpha, rho = np.zeros(k), np.zeros(k)
    for i in reversed(range(k)):
        rho[i] = 1.0 / inner(Y[i], S[i], theta_row, w)
        alpha[i] = rho[i] * inner(S[i], q, theta_row, w)
        q = q - alpha[i] * Y[i]
    z = inner(S[-1], Y[-1], theta_row, w) / inner(Y[-1], Y[-1], theta_row, w) * q
    for i in range(k):
        beta = rho[i] * inner(Y[i], z, theta_row, w)
        z = z + (alpha[i] - beta) * S[i]
    p = -z
    if not inner(g, p, theta_row, w) < 0.0:
        return -g / curvature, True
    return p, False


def gradient_sym(X, SX):
    """``[(I - X X^T) S X; D]`` with ``D = sym(X^T S X)``."""
    D = sym(X.T @ SX)
    return np.vstack([SX - X @ D, D])


def gradient_rect(XL, XR, EXR, EtXL):
    """``[(I - X_L X_L^T) E X_R; (I - X_R X_R^T) E^T X_L; D]`` with ``D = X_L^T E X_R``."""
    D = XL.T @ EXR
    return np.vstack([EXR - XL @ D, EtXL - XR @ D.T, D])


def polar_factors(Y):
    """``N = (Y^T Y)^{-1/2}`` and ``N^{-1}`` for ``Y = X + xi`` (r x r eigendecomposition):
    ``Y N`` is the exact polar factor (``Y^T Y = I + xi^T xi`` in exact arithmetic; computed from
    ``Y`` so that rounding cannot drift the iterate off the manifold)."""
    e, Q = np.linalg.eigh(sym(Y.T @ Y))
    s = np.sqrt(np.maximum(e, 1e-300))
    return (Q / s) @ Q.T, (Q * s) @ Q.T


def retract_sym(X, Theta, v, t, lam):
    """The damped Nystrom retraction: ``Theta_t = sym(Theta + t zeta) = W diag(w) W^T``,
    ``xi = t K W diag(1/(|w| + lam)) W^T``, ``X+ = (X + xi) N``, ``Theta+ = N^{-1} Theta_t N^{-1}``."""
    d = X.shape[0]
    K, zeta = v[:d], v[d:]
    Tt = sym(Theta + t * zeta)
    w, W = np.linalg.eigh(Tt)
    Y = X + t * (K @ ((W / (np.abs(w) + lam)) @ W.T))              # X + xi
    N, N_inv = polar_factors(Y)
    return Y @ N, sym(N_inv @ Tt @ N_inv)


def retract_rect(XL, Theta, XR, v, t, lam):
    """Rectangular: ``Theta_t = Theta + t zeta = U diag(s) V^T``, ``xi_L = t K_L V diag(1/(s +
    lam)) U^T``, ``xi_R = t K_R U diag(1/(s + lam)) V^T``, ``Theta+ = N_L^{-1} Theta_t N_R^{-1}``."""
    d1, d2 = XL.shape[0], XR.shape[0]
    KL, KR, zeta = v[:d1], v[d1:d1 + d2], v[d1 + d2:]
    Tt = Theta + t * zeta
    U, s, Vt = np.linalg.svd(Tt)
    inv = 1.0 / (s + lam)
    YL = XL + t * (KL @ ((Vt.T * inv) @ U.T))                       # X_L + xi_L
    YR = XR + t * (KR @ ((U * inv) @ Vt))                           # X_R + xi_R
    NL, NL_inv = polar_factors(YL)
    NR, NR_inv = polar_factors(YR)
    return YL @ NL, NL_inv @ Tt @ NR_inv, YR @ NR


def transport_sym(X, X_new, V):
    """Each ``v = [K; zeta]``: ``DZ X+ = K (X^T X+) + X (K^T X+) + X zeta (X^T X+)``, then
    ``zeta+ = sym(X+^T DZ X+)``, ``K+ = DZ X+ - X+ zeta+``."""
    d = X.shape[0]
    XtXn = X.T @ X_new
    out = np.empty_like(V)
    for i, v in enumerate(V):
        K, zeta = v[:d], v[d:]
        DZXn = K @ XtXn + X @ (K.T @ X_new) + X @ (zeta @ XtXn)
        zn = sym(X_new.T @ DZXn)
        out[i] = np.vstack([DZXn - X_new @ zn, zn])
    return out


def transport_rect(XL, XR, XL_new, XR_new, V):
    """Each ``v = [K_L; K_R; zeta]``: ``DZ X_R+`` and ``DZ^T X_L+`` of ``DZ = K_L X_R^T + X_L
    K_R^T + X_L zeta X_R^T``, projected onto the tangent space at the new point."""
    d1, d2 = XL.shape[0], XR.shape[0]
    a, b = XR.T @ XR_new, XL.T @ XL_new
    out = np.empty_like(V)
    for i, v in enumerate(V):
        KL, KR, zeta = v[:d1], v[d1:d1 + d2], v[d1 + d2:]
        DZXRn = KL @ a + XL @ (KR.T @ XR_new) + XL @ (zeta @ a)
        DZtXLn = XR @ (KL.T @ XL_new) + KR @ b + XR @ (zeta.T @ b)
        zn = XL_new.T @ DZXRn
        out[i] = np.vstack([DZXRn - XL_new @ zn, DZtXLn - XR_new @ zn.T, zn])
    return out


class NumpyGeometry:
    inner = staticmethod(inner)
    direction = staticmethod(direction)
    gradient_sym = staticmethod(gradient_sym)
    gradient_rect = staticmethod(gradient_rect)
    retract_sym = staticmethod(retract_sym)
    retract_rect = staticmethod(retract_rect)
    transport_sym = staticmethod(transport_sym)
    transport_rect = staticmethod(transport_rect)


class WNLBFGS(WNLBFGSSymmetricMixin, _LBFGSCore):
    """Symmetric WN-LBFGS (reference): the numpy algebra above, the shared iteration."""

    geometry = NumpyGeometry


class RectangularWNLBFGS(WNLBFGSRectangularMixin, _LBFGSCore):
    """Rectangular WN-LBFGS (reference)."""

    geometry = NumpyGeometry
