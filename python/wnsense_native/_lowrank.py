"""Arithmetic on matrices held as thin factors ``Z = L R^T``, without forming ``Z``.

Norms and distances go through the triangular factors of thin QR decompositions:
``||L R^T||_F = ||T_L T_R^T||_F`` for ``L = Q_L T_L``, ``R = Q_R T_R``. This is accurate to
``eps * ||L|| ||R||`` in absolute terms, like subtracting the dense matrices, whereas the Gram
formula ``tr((L^T L)(R^T R))`` loses half the digits of a small difference: a relative error of
``1e-12`` would come out as noise near ``1e-8``.
"""
from __future__ import annotations

import numpy as np

from ._validation import as_float_array

# rows of Z formed at a time when comparing with a dense matrix (bounds the temporary)
DENSE_BLOCK_ELEMENTS = 1 << 18


def _triangular(F: np.ndarray) -> np.ndarray:
    return np.linalg.qr(F, mode="r")


def lowrank_norm(L: np.ndarray, R: np.ndarray) -> float:
    """``||L R^T||_F``."""
    if L.shape[1] == 0:
        return 0.0
    return float(np.linalg.norm(_triangular(L) @ _triangular(R).T))


def lowrank_distance(L1, R1, L2, R2) -> float:
    """``||L1 R1^T - L2 R2^T||_F``: the norm of ``[L1, -L2] [R1, R2]^T``."""
    return lowrank_norm(np.hstack([L1, -L2]), np.hstack([R1, R2]))


def dense_distance(L, R, Z) -> float:
    """``||L R^T - Z||_F`` for a dense ``Z``, forming ``L R^T`` a block of rows at a time."""
    step = max(1, DENSE_BLOCK_ELEMENTS // max(Z.shape[1], 1))
    total = 0.0
    for i in range(0, Z.shape[0], step):
        D = L[i:i + step] @ R.T
        D -= Z[i:i + step]
        total += float(np.vdot(D, D))
    return float(np.sqrt(total))


def lowrank_entries(L, R, rows, cols, chunk=1 << 16) -> np.ndarray:
    """``(L R^T)[rows_t, cols_t]`` for index arrays ``rows``, ``cols`` (``O(len k)``)."""
    out = np.empty(len(rows))
    for i in range(0, len(rows), chunk):
        out[i:i + chunk] = np.einsum("ij,ij->i", L[rows[i:i + chunk]], R[cols[i:i + chunk]])
    return out


class Target:
    """A ground truth ``x_true`` as the solvers' history and diagnostics use it: a dense
    ``d1 x d2`` array, or a pair of factors ``(U, V)`` meaning ``U V^T`` (never densified)."""

    def __init__(self, x_true, shape):
        d1, d2 = shape
        if isinstance(x_true, (tuple, list)):
            if len(x_true) != 2:
                raise ValueError("x_true given as factors must be a pair (U, V) with "
                                 "x_true = U V^T")
            U = as_float_array("x_true[0]", x_true[0], ndim=2)
            V = as_float_array("x_true[1]", x_true[1], ndim=2)
            if U.shape[0] != d1 or V.shape[0] != d2 or U.shape[1] != V.shape[1]:
                raise ValueError(f"x_true factors must have shapes ({d1}, k) and ({d2}, k), "
                                 f"got {U.shape} and {V.shape}")
            self.factors, self.dense = (U, V), None
            self.norm = lowrank_norm(U, V)
        else:
            Z = as_float_array("x_true", x_true, ndim=2)
            if Z.shape != (d1, d2):
                raise ValueError(f"x_true must have shape {(d1, d2)}, got {Z.shape}")
            if Z.size == 0:
                raise ValueError("x_true must not be empty")
            self.factors, self.dense = None, Z
            self.norm = float(np.linalg.norm(Z))

    def distance(self, L, R) -> float:
        """``||L R^T - x_true||_F``."""
        if self.dense is not None:
            return dense_distance(L, R, self.dense)
        return lowrank_distance(L, R, *self.factors)

    def relative_error(self, L, R) -> float:
        return self.distance(L, R) / max(self.norm, 1e-300)

    def singular_subspaces(self, rel_tol=1e-10):
        """Orthonormal bases of the top left and right singular subspaces (numerical rank:
        singular values above ``rel_tol`` times the largest)."""
        if self.dense is not None:
            P, s, Qt = np.linalg.svd(self.dense, full_matrices=False)
            Q = Qt.T
        else:
            U, V = self.factors
            QU, TU = np.linalg.qr(U)
            QV, TV = np.linalg.qr(V)
            P_small, s, Qt_small = np.linalg.svd(TU @ TV.T)
            P, Q = QU @ P_small, QV @ Qt_small.T
        rank = int(np.sum(s > s[0] * rel_tol)) if s.size and s[0] > 0 else 0
        if rank == 0:
            raise ValueError("diagnostics='alignment' needs a nonzero x_true")
        return P[:, :rank], Q[:, :rank]
