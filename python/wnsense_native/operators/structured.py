"""Structured operators that store no ``M_i``: rank-one measurements (:class:`RankOneSensing`),
the population limit ``A = Id`` (:class:`IdentitySensing`) and operators given by user callables
(:class:`MatrixFreeSensing`), with their constructors.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._random import as_generator
from .._validation import as_float_array, check_float, check_int, check_symmetric_flag
from ._base import _MAX_SIDE, ResidualPass, SensingOperator, _sizes


class RankOneSensing(SensingOperator):
    """``M_i = scale * a_i a_i^T`` with ``a_i`` the rows of ``vectors``. A pass computes
    ``a_i^T L``, ``a_i^T R`` and the thin products ``sum_i c_i a_i (a_i^T B)`` slice by slice:
    nothing ``d x d`` is formed."""

    def __init__(self, vectors: np.ndarray, *, scale: float):
        super().__init__(vectors.shape[0], vectors.shape[1], vectors.shape[1], True)
        self.vectors, self.scale = vectors, float(scale)

    def _forward(self, Z, n_threads):
        # <a a^T, Z> = a^T Z a
        return np.einsum("ij,ij->i", self.vectors @ Z, self.vectors) * self.scale

    def _adjoint(self, v, n_threads):
        return _core.rank_one_adjoint(self.vectors, self.scale, v)

    def _residual(self, L, R, y, right=None, left=None, n_threads=0):
        return ResidualPass(*_core.rank_one_residual(self.vectors, self.scale, L, R, y, right,
                                                     left, n_threads))


class IdentitySensing(SensingOperator):
    """The population limit ``A = Id``: ``A(Z) = vec(Z)``; with ``y = vec(Z*)`` the symmetric loss
    is ``1/4 ||Z - Z*||_F^2``. (Its data, ``y``, is itself ``d1 x d2``.)"""

    def __init__(self, d1, d2, *, symmetric: bool):
        super().__init__(d1 * d2, d1, d2, symmetric)

    def _forward(self, Z, n_threads):
        return Z.ravel().copy()

    def _adjoint(self, v, n_threads):
        return v.reshape(self._d1, self._d2).copy()

    def _residual(self, L, R, y, right=None, left=None, n_threads=0):
        # G = L R^T - Y and its thin products, in one native call
        return ResidualPass(*_core.identity_residual(L, R, y, right, left, self.symmetric))


class MatrixFreeSensing(SensingOperator):
    """An operator given by two user callables (see :func:`matrix_free_sensing`); every output is
    validated (shape, finiteness) before a solver uses it."""

    def __init__(self, m, d1, d2, forward, adjoint_products, *, symmetric: bool):
        super().__init__(m, d1, d2, symmetric)
        self._user_forward, self._user_adjoint_products = forward, adjoint_products

    def _forward_factored(self, L, R, n_threads):
        z = self._user_forward(_private_copy(L), _private_copy(R))
        return _checked_output("forward", z, (self._m,))

    def _adjoint_products(self, v, right, left, n_threads):
        # copies: a callable that writes into its arguments (v is the solver's residual) must
        # not change the solve (it zeroed the residual: a false success)
        out = self._user_adjoint_products(_private_copy(v), _private_copy(right),
                                          _private_copy(left))
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError("adjoint_products must return a pair (A*(v) @ right or None, "
                            "A*(v)^T @ left or None)")
        AV = None if right is None else _checked_output(
            "adjoint_products()[0]", out[0], (self._d1, right.shape[1]))
        AtU = None if left is None else _checked_output(
            "adjoint_products()[1]", out[1], (self._d2, left.shape[1]))
        return AV, AtU

    def _forward(self, Z, n_threads):
        return self._forward_factored(Z, np.eye(self._d2), n_threads)

    def _adjoint(self, v, n_threads):
        return self._adjoint_products(v, np.eye(self._d2), None, n_threads)[0]


def _private_copy(a):
    """A copy of ``a`` (None stays None) for a user callable, which may write into it."""
    return None if a is None else np.array(a, dtype=np.float64, order="C")


def _checked_output(name, a, shape):
    """A callable's output as float64 of ``shape``, finite; else TypeError/ValueError naming it
    (complex output is refused: casting would drop the imaginary part)."""
    if np.iscomplexobj(a):
        raise TypeError(f"{name} must return a real array, got a complex one")
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must return a float array of shape {shape}, got "
                        f"{type(a).__name__}") from None
    if arr.shape != shape:
        raise ValueError(f"{name} must return an array of shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} returned NaN or Inf")
    return np.ascontiguousarray(arr)


# ------------------------------------------------------------------------------------------------
# constructors

def matrix_free_sensing(shape, forward, adjoint_products, *, symmetric=False) -> MatrixFreeSensing:
    """An operator from your own callables, in the thin-factor protocol.

    ``shape = (m, d1, d2)``. ``forward(L, R)`` returns the ``m`` measurements ``A(L R^T)`` of the
    model given by thin factors ``L`` (``d1 x k``) and ``R`` (``d2 x k``). ``adjoint_products(v,
    right, left)`` returns the pair ``(A*(v) @ right, A*(v)^T @ left)`` for a length-``m`` ``v``
    and thin matrices ``right`` (``d2 x k'``) and ``left`` (``d1 x k''``), either of which may be
    None (return None in its place). For ``symmetric=True`` both products must use
    ``sym(A*(v))``. A solver pass calls each once; outputs are checked (shape, finite) and a bad
    one raises ``ValueError``/``TypeError`` naming the callable. ``op.forward(Z)`` and
    ``op.adjoint(v)`` call them with ``R = I`` / ``right = I``.
    """
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise TypeError(f"shape must be a triple (m, d1, d2): the number of measurements m, then "
                        f"the matrix size d1 x d2; got {shape!r}")
    m = check_int("shape[0]", shape[0], minimum=1, maximum=_MAX_SIDE)
    d1 = check_int("shape[1]", shape[1], minimum=1, maximum=_MAX_SIDE)
    d2 = check_int("shape[2]", shape[2], minimum=1, maximum=_MAX_SIDE)
    if not callable(forward):
        raise TypeError(f"forward must be callable, got {type(forward).__name__}")
    if not callable(adjoint_products):
        raise TypeError(f"adjoint_products must be callable, got "
                        f"{type(adjoint_products).__name__}")
    symmetric = check_symmetric_flag(symmetric, d1, d2)
    return MatrixFreeSensing(m, d1, d2, forward, adjoint_products, symmetric=bool(symmetric))


def rank_one_sensing(d, m, *, rng=None) -> RankOneSensing:
    """Random rank-one measurements ``M_i = a_i a_i^T / sqrt(m)``, ``a_i ~ N(0, I_d)``,
    matrix-free. For your own vectors use :func:`rank_one_measurements`."""
    d = check_int("d", d, minimum=1)
    m = check_int("m", m, minimum=1)
    A = as_generator(rng).standard_normal((m, d))
    return RankOneSensing(A, scale=1.0 / math.sqrt(m))


def rank_one_measurements(vectors, *, scale=1.0) -> RankOneSensing:
    """Rank-one measurements from your vectors: ``M_i = scale * a_i a_i^T`` with ``a_i`` the rows
    of ``vectors`` (``m x d``), so ``y_i = scale * a_i^T Z a_i``. ``scale = 1`` by default (``y``
    is your raw quadratic measurements); :func:`rank_one_sensing` uses ``1/sqrt(m)``, which keeps
    ``||A(Z)||`` of the order of ``||Z||_F``. ``vectors`` is used in place when it is float64
    C-contiguous, else converted once."""
    A = as_float_array("vectors", vectors, ndim=2)
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(f"vectors must not be empty, got shape {A.shape}")
    scale = check_float("scale", scale)
    if scale == 0.0:
        raise ValueError("scale must be nonzero")
    return RankOneSensing(A, scale=scale)


def identity_sensing(d, *, d2=None) -> IdentitySensing:
    """The population operator ``A = Id`` (``y = vec(Z*)``): the infinite-sample limit."""
    d1, d2_, symmetric = _sizes(d, d2)
    return IdentitySensing(d1, d2_, symmetric=symmetric)
