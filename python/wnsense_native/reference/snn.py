"""Spectral Neural Network (Chu, Ghosh, Lam, Mukherjee, arXiv 2402.17595), reference (pure numpy)
implementation (SPEC 3.2):

    X^(0)_k = U_k V_k^T                                       k = 1..d_1
    X^(l)_j = sum_k alpha^(l)_{kj} Gamma(X^(l-1)_k)           l = 1..L, j = 1..d_{l+1}
    X       = X^(L)_1,    Gamma(Q) = P tanh(Sigma) R^T  for the SVD  Q = P Sigma R^T
    loss    = ||A(X) - y||^2 / (2m),   dloss/dX = A*(r) / m

Backward of Gamma (f = tanh, G = dL/dGamma, Gh = P^T G R):

    D_ii = f'(s_i) Gh_ii
    D_ij = (f(s_i) - f(s_j)) / (s_i - s_j) * (Gh_ij + Gh_ji) / 2
         + (f(s_i) + f(s_j)) / (s_i + s_j) * (Gh_ij - Gh_ji) / 2          (i != j)
    dL/dQ = P D R^T

written literally, with the guards: when ``|s_i - s_j| <= EQUAL_TOL`` the first divided
difference is replaced by its limit, the derivative ``f'`` at the midpoint ``(s_i + s_j) / 2``
(EQUAL_TOL = 1e-5 balances the rounding error of the quotient, ~eps / |s_i - s_j|, against the
midpoint rule's error, ~|s_i - s_j|^2 / 12: both stay below ~1e-11); when ``s_i + s_j`` is zero
(two zero singular values) the second one by its limit ``f'(0) = 1``. The native code
(cpp/spectral.cpp) evaluates the same quotients through the tanh addition theorem instead; the
two agree to rounding.

Same options, start (:func:`~wnsense_native.solvers.snn.snn_start`), loss convention, factor
layout, step-size rule and history as the native method, so both produce the same iterates to
rounding.
"""
from __future__ import annotations

import numpy as np

from ..solvers.snn import SNNBase

EQUAL_TOL = 1e-5


def f(s):
    return np.tanh(s)


def f_prime(s):
    return 1.0 - np.tanh(s) ** 2


def spectral_svd(Q):
    """``Q = P diag(s) R^T``; NaN factors for a non-finite ``Q``."""
    if not np.all(np.isfinite(Q)):
        nan = np.full(Q.shape, np.nan)
        return nan, np.full(Q.shape[0], np.nan), nan
    P, s, Rt = np.linalg.svd(Q)
    return P, s, Rt.T


def gamma(P, s, R):
    """``Gamma(Q) = P tanh(diag s) R^T``."""
    return (P * f(s)) @ R.T


def gamma_backward(P, s, R, G):
    """``dL/dQ`` given ``G = dL/dGamma(Q)`` (the formula of the module docstring)."""
    Gh = P.T @ G @ R
    si, sj = s[:, None], s[None, :]
    fi, fj = f(si), f(sj)
    midpoint_derivative = f_prime(0.5 * (si + sj))

    diff = si - sj
    close = np.abs(diff) <= EQUAL_TOL                       # includes the diagonal i = j
    c_minus = np.where(close, midpoint_derivative, (fi - fj) / np.where(close, 1.0, diff))

    total = si + sj
    zero = total <= 0.0
    c_plus = np.where(zero, 1.0, (fi + fj) / np.where(zero, 1.0, total))

    D = c_minus * 0.5 * (Gh + Gh.T) + c_plus * 0.5 * (Gh - Gh.T)
    # on the diagonal: c_minus = f'(s_i) and (Gh - Gh^T)_ii = 0, so D_ii = f'(s_i) Gh_ii
    return P @ D @ R.T


class SNN(SNNBase):
    """Spectral neural network (reference): forward and backward written out in numpy."""

    def _forward(self, params):
        L = len(self.widths)
        layer = [U @ V.T for U, V in zip(params["U"], params["V"])]   # X^(0)_k = U_k V_k^T
        tape = []
        for l in range(L):
            alpha = params[f"alpha_{l + 1}"]
            svds = [spectral_svd(Q) for Q in layer]
            acts = [gamma(*f_) for f_ in svds]
            layer = [sum(alpha[k, j] * acts[k] for k in range(alpha.shape[0]))
                     for j in range(alpha.shape[1])]
            tape.append((svds, acts))
        return layer[0], (params, tape)

    def _backward(self, tape, GX):
        params, layers = tape
        L = len(self.widths)
        grads = {}
        grad_next = [GX]                                           # dL/dX^(L)_1
        for l in reversed(range(L)):
            alpha = params[f"alpha_{l + 1}"]
            svds, acts = layers[l]
            grads[f"alpha_{l + 1}"] = np.array(
                [[np.sum(grad_next[j] * acts[k]) for j in range(alpha.shape[1])]
                 for k in range(alpha.shape[0])])
            grad_acts = [sum(alpha[k, j] * grad_next[j] for j in range(alpha.shape[1]))
                         for k in range(alpha.shape[0])]
            grad_next = [gamma_backward(*svds[k], grad_acts[k]) for k in range(alpha.shape[0])]
        U, V = params["U"], params["V"]
        grads["U"] = np.stack([G @ Vk for G, Vk in zip(grad_next, V)])       # dL/dU_k = G_k V_k
        grads["V"] = np.stack([G.T @ Uk for G, Uk in zip(grad_next, U)])     # dL/dV_k = G_k^T U_k
        return {k: grads[k] for k in params}


def snn_for(symmetric: bool):
    return SNN
