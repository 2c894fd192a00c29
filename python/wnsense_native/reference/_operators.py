"""Numpy residual oracles: the reference counterpart of ``op._residual``.

:func:`numpy_residual` returns ``fn(L, R, with_gradient) -> (r, ||r||^2, A*(r) or None)`` for the
model ``Z = L R^T``, computed with plain numpy from the operator's stored data. Nothing here calls
the native core: this is the honest numpy baseline a user would write, and the oracle the native
kernels are tested against.

Dense operators: the forward map and the adjoint are two separate GEMV passes over the data
(``data @ w`` and ``data.T @ r``), where the native path fuses them into one streaming pass.
float32 storage is converted to float64 **once, when the oracle is built** (so arithmetic is
float64 like the native path, at the price of a float64 copy of the operator held for the whole
solve; fine for a reference, not for the 9 GB operators the native path is built for).
"""
from __future__ import annotations

import numpy as np

from ..operators import DenseSensing, EntrySampling, IdentitySensing, RankOneSensing

__all__ = ["numpy_residual", "numpy_residual_factory"]


def _finish(r, with_gradient, adjoint):
    return r, float(r @ r), (adjoint(r) if with_gradient else None)


def _dense(op: DenseSensing, y: np.ndarray):
    m, d1, d2 = op.shape
    data = np.asarray(op.data, dtype=np.float64)  # the one-time float32 -> float64 conversion
    if op.packed:
        iu = np.triu_indices(d1)
        off = iu[0] != iu[1]

        def weights(Z):
            # <M_i, Z> = sum_j M_jj Z_jj + sum_{j<k} M_jk (Z_jk + Z_kj)
            w = Z[iu]
            w[off] += Z[iu[1][off], iu[0][off]]
            return w

        def unpack(g):
            G = np.zeros((d1, d1))
            G[iu] = g
            G[iu[1], iu[0]] = g
            return G
    else:
        def weights(Z):
            return Z.ravel()

        def unpack(g):
            return g.reshape(d1, d2)

    def residual(L, R, with_gradient):
        r = data @ weights(L @ R.T) - y                      # forward: one GEMV
        return _finish(r, with_gradient, lambda v: unpack(data.T @ v))   # adjoint: another

    return residual


def _entries(op: EntrySampling, y: np.ndarray):
    m, d1, d2 = op.shape
    rows, cols, scale = op.rows, op.cols, op.scale

    def adjoint(v):
        G = np.zeros((d1, d2))
        if op.symmetric:   # M_i = scale * (e_j e_k^T + e_k e_j^T) / 2
            np.add.at(G, (rows, cols), 0.5 * scale * v)
            np.add.at(G, (cols, rows), 0.5 * scale * v)
        else:              # M_i = scale * e_j e_k^T
            np.add.at(G, (rows, cols), scale * v)
        return G

    def residual(L, R, with_gradient):
        # Z_jk = L[j] . R[k]: read the sampled entries off the factors, never form Z
        z = np.sum(L[rows] * R[cols], axis=1)
        if op.symmetric:
            z = 0.5 * (z + np.sum(L[cols] * R[rows], axis=1))
        return _finish(scale * z - y, with_gradient, adjoint)

    return residual


def _rank_one(op: RankOneSensing, y: np.ndarray):
    A, scale = op.vectors, op.scale

    def residual(L, R, with_gradient):
        # <a a^T, L R^T> = (a^T L) . (a^T R)
        z = np.sum((A @ L) * (A @ R), axis=1)
        # A*(v) = scale * sum_i v_i a_i a_i^T = scale * A^T diag(v) A
        return _finish(scale * z - y, with_gradient, lambda v: scale * (A.T @ (v[:, None] * A)))

    return residual


def _identity(op: IdentitySensing, y: np.ndarray):
    m, d1, d2 = op.shape
    Y = y.reshape(d1, d2)

    def residual(L, R, with_gradient):
        G = L @ R.T - Y
        r = G.ravel()
        return r, float(r @ r), (G if with_gradient else None)

    return residual


def _generic(op, y):
    # an operator class this module does not know: its public forward / adjoint
    def residual(L, R, with_gradient):
        r = op.forward(L @ R.T) - y
        return _finish(r, with_gradient, op.adjoint)

    return residual


_ORACLES = [(DenseSensing, _dense), (EntrySampling, _entries), (RankOneSensing, _rank_one),
            (IdentitySensing, _identity)]


def numpy_residual(op, y):
    """The numpy residual oracle ``fn(L, R, with_gradient)`` of ``op`` and measurements ``y``."""
    y = np.asarray(y, dtype=np.float64)
    for cls, build in _ORACLES:
        if isinstance(op, cls):
            return build(op, y)
    return _generic(op, y)


def numpy_residual_factory(op, y, n_threads):
    """The ``make_residual_fn`` of :func:`~wnsense_native.solvers._frontend.solve_with`.
    ``n_threads`` is ignored: numpy's BLAS has its own thread pool (threadpoolctl controls it)."""
    return numpy_residual(op, y)
