"""Numpy residual oracles: the reference counterpart of ``op._residual``.

:func:`numpy_residual` returns ``fn(L, R, measured, right, left) -> ResidualPass`` for the model
``Z = L R^T`` (``measured=False``: zero measurements), with the thin products ``A*(r) @ right``
and ``A*(r)^T @ left`` (``sym(A*(r))`` on both sides for symmetric operators), computed with plain
numpy from the operator's stored data. Nothing here calls the native core: this is the honest
numpy baseline a user would write, and the oracle the native kernels are tested against.

Dense operators: the forward map and the adjoint are two separate GEMV passes over the data
(``data @ w`` and ``data.T @ r``), where the native path fuses them into one streaming pass; the
adjoint ``A*(r)`` (the size of one measurement) is formed and multiplied by the thin matrices.
float32 storage is converted to float64 **once, when the oracle is built** (so arithmetic is
float64 like the native path, at the price of a float64 copy of the operator held for the whole
solve; fine for a reference, not for the 9 GB operators the native path is built for).
Sparse operators scatter into the thin products with ``np.add.at``; nothing ``d1 x d2`` is formed.
"""
from __future__ import annotations

import numpy as np

from ..operators import (DenseSensing, EntrySampling, IdentitySensing, RankOneSensing,
                         ResidualPass, SparseSensing)

__all__ = ["numpy_residual", "numpy_residual_factory"]


def _products(G, right, left, symmetric):
    """The thin products of a formed adjoint ``G`` (dense operators, population)."""
    if symmetric:
        G = 0.5 * (G + G.T)
    AV = None if right is None else G @ right
    AtU = None if left is None else (G @ left if symmetric else G.T @ left)
    return AV, AtU


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

    def residual(L, R, measured, right, left):
        r = data @ weights(L @ R.T)                           # forward: one GEMV
        if measured:
            r = r - y
        AV = AtU = None
        if right is not None or left is not None:
            G = unpack(data.T @ r)                            # adjoint: another
            AV, AtU = _products(G, right, left, op.symmetric)
        return ResidualPass(r, float(r @ r), AV, AtU)

    return residual


def _sparse(op, y: np.ndarray, rows, cols, values, meas):
    """Entries ``(rows_t, cols_t, values_t)`` of measurement ``meas_t`` (None: ``t`` itself)."""
    m, d1, d2 = op.shape

    def scatter(index, w, B, n):
        out = np.zeros((n, B.shape[1]))
        np.add.at(out, index, w[:, None] * B)
        return out

    def apply(w, B, transposed):
        # A*(v) @ B: row j gets w_t B[col_t] for its entries; A*(v)^T @ B: row k gets w_t B[row_t]
        if op.symmetric:
            return 0.5 * (scatter(rows, w, B[cols], d1) + scatter(cols, w, B[rows], d1))
        if transposed:
            return scatter(cols, w, B[rows], d2)
        return scatter(rows, w, B[cols], d1)

    def residual(L, R, measured, right, left):
        # Z_jk = L[j] . R[k]: read the entries off the factors, never form Z
        z = np.sum(L[rows] * R[cols], axis=1)
        if op.symmetric:
            z = 0.5 * (z + np.sum(L[cols] * R[rows], axis=1))
        z = z * values
        if meas is not None:
            z = np.bincount(meas, weights=z, minlength=m)
        r = z - y if measured else z
        AV = AtU = None
        if right is not None or left is not None:
            w = values * (r if meas is None else r[meas])
            AV = None if right is None else apply(w, right, False)
            AtU = None if left is None else apply(w, left, True)
        return ResidualPass(r, float(r @ r), AV, AtU)

    return residual


def _entries(op: EntrySampling, y):
    return _sparse(op, y, op.rows, op.cols, np.full(op.m, op.scale), None)


def _sparse_matrix(op: SparseSensing, y):
    meas = np.repeat(np.arange(op.m), np.diff(op.indptr))
    return _sparse(op, y, op.rows, op.cols, op.values, meas)


def _rank_one(op: RankOneSensing, y: np.ndarray):
    A, scale = op.vectors, op.scale

    def residual(L, R, measured, right, left):
        # <a a^T, L R^T> = (a^T L) . (a^T R)
        r = scale * np.sum((A @ L) * (A @ R), axis=1)
        if measured:
            r = r - y
        # A*(r) @ B = scale * sum_i r_i a_i (a_i^T B) = scale * A^T diag(r) (A B)
        c = scale * r
        AV = None if right is None else A.T @ (c[:, None] * (A @ right))
        AtU = None if left is None else A.T @ (c[:, None] * (A @ left))
        return ResidualPass(r, float(r @ r), AV, AtU)

    return residual


def _identity(op: IdentitySensing, y: np.ndarray):
    m, d1, d2 = op.shape
    Y = y.reshape(d1, d2)

    def residual(L, R, measured, right, left):
        G = L @ R.T - Y if measured else L @ R.T
        r = G.ravel()
        return ResidualPass(r, float(r @ r), *_products(G, right, left, op.symmetric))

    return residual


def _generic(op, y):
    # an operator class this module does not know (e.g. a user's matrix-free operator): its
    # own pass is the reference
    def residual(L, R, measured, right, left):
        return op._residual(L, R, y if measured else None, right, left)

    return residual


_ORACLES = [(DenseSensing, _dense), (EntrySampling, _entries), (SparseSensing, _sparse_matrix),
            (RankOneSensing, _rank_one), (IdentitySensing, _identity)]


def numpy_residual(op, y):
    """The numpy residual oracle ``fn(L, R, measured, right, left)`` of ``op`` and ``y``."""
    y = np.asarray(y, dtype=np.float64)
    for cls, build in _ORACLES:
        if isinstance(op, cls):
            return build(op, y)
    return _generic(op, y)


def numpy_residual_factory(op, y, n_threads):
    """The ``make_residual_fn`` of :func:`~wnsense_native.solvers._frontend.solve_with`.
    ``n_threads`` is ignored: numpy's BLAS has its own thread pool (threadpoolctl controls it)."""
    return numpy_residual(op, y)
