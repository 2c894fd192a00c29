"""Linear measurement operators ``A(Z)_i = <M_i, Z>`` and their constructors.

Every operator has ``shape == (m, d1, d2)``, ``forward(Z)`` (``(m,)`` float64) and ``adjoint(v)``
(``(d1, d2)`` float64), and a ``symmetric`` flag: symmetric operators (symmetric ``M_i``) define the
symmetric problem family, rectangular ones the asymmetric family.

Solvers talk to operators through one private method, ``_residual(L, R, y, with_gradient)``,
which takes the model in factored form ``Z = L R^T`` (so matrix-free operators never form a
``d x d`` matrix) and returns ``(r, ||r||^2, A*(r) or None)`` with ``r = A(Z) - y`` computed in a
single pass over the sensing data.
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._random import as_generator, native_seed
from ._validation import (BLOCK_ELEMENTS, as_float_array, as_matrix, as_vector, check_choice,
                          check_int, check_threads)

__all__ = [
    "SensingOperator",
    "DenseSensing",
    "EntrySampling",
    "RankOneSensing",
    "IdentitySensing",
    "gaussian_sensing",
    "entry_sampling",
    "rank_one_sensing",
    "identity_sensing",
    "dense_sensing",
]

_DTYPES = {"float64": np.float64, "float32": np.float32}


class SensingOperator:
    """Base class: validation of ``forward``/``adjoint`` arguments, shape bookkeeping."""

    symmetric: bool

    def __init__(self, m: int, d1: int, d2: int, symmetric: bool):
        self._m, self._d1, self._d2 = int(m), int(d1), int(d2)
        self.symmetric = bool(symmetric)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(m, d1, d2)``: number of measurements and the size of the unknown matrix."""
        return (self._m, self._d1, self._d2)

    @property
    def m(self) -> int:
        return self._m

    def forward(self, Z, *, n_threads=None) -> np.ndarray:
        """``A(Z)``: the ``m`` inner products ``<M_i, Z>`` as a float64 array."""
        Z = as_matrix("Z", Z, (self._d1, self._d2))
        return self._forward(Z, check_threads(n_threads))

    def adjoint(self, v, *, n_threads=None) -> np.ndarray:
        """``A*(v) = sum_i v_i M_i`` as a ``(d1, d2)`` float64 array."""
        v = as_vector("v", v, self._m)
        return self._adjoint(v, check_threads(n_threads))

    def __call__(self, Z, **kw):
        return self.forward(Z, **kw)

    def __repr__(self):
        kind = "symmetric" if self.symmetric else "rectangular"
        return f"{type(self).__name__}(m={self._m}, d1={self._d1}, d2={self._d2}, {kind})"

    # -- solver protocol (inputs already validated by the caller) --------------------------
    def _residual(self, L, R, y, with_gradient, n_threads=0):
        Z = L @ R.T
        r = self._forward(Z, n_threads) - y
        G = self._adjoint(r, n_threads) if with_gradient else None
        return r, float(r @ r), G

    def _forward(self, Z, n_threads):
        raise NotImplementedError

    def _adjoint(self, v, n_threads):
        raise NotImplementedError


class DenseSensing(SensingOperator):
    """An operator stored as a dense ``(m, p)`` block ``data``.

    ``data`` row ``i`` is ``M_i`` flattened row-major (``p = d1 * d2``), or, when ``packed``, the
    upper triangle of the symmetric ``M_i`` in row-major order (``p = d (d + 1) / 2``, the order of
    ``numpy.triu_indices(d)``); off-diagonal entries then count twice in inner products.
    Storage is float64 or float32; arithmetic always accumulates in float64.
    """

    def __init__(self, data: np.ndarray, d1: int, d2: int, *, symmetric: bool, packed: bool):
        super().__init__(data.shape[0], d1, d2, symmetric)
        self.data = data
        self.packed = bool(packed)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def _forward(self, Z, n_threads):
        return _core.dense_forward(self.data, self._d1, self._d2, self.packed, Z, n_threads)

    def _adjoint(self, v, n_threads):
        return _core.dense_adjoint(self.data, self._d1, self._d2, self.packed, v, n_threads)

    def _residual(self, L, R, y, with_gradient, n_threads=0):
        Z = np.ascontiguousarray(L @ R.T)
        return _core.dense_residual(self.data, self._d1, self._d2, self.packed, Z, y,
                                    with_gradient, n_threads)

    def dense_matrices(self) -> np.ndarray:
        """The ``(m, d1, d2)`` float64 stack of ``M_i`` (a new array; for tests and small sizes)."""
        if not self.packed:
            return self.data.astype(np.float64).reshape(self._m, self._d1, self._d2)
        d = self._d1
        iu = np.triu_indices(d)
        M = np.zeros((self._m, d, d))
        M[:, iu[0], iu[1]] = self.data
        M[:, iu[1], iu[0]] = self.data
        return M


class EntrySampling(SensingOperator):
    """Matrix completion: ``M_i = scale * e_{rows_i} e_{cols_i}^T`` (symmetrized when symmetric)."""

    def __init__(self, rows, cols, d1, d2, *, scale: float, symmetric: bool):
        super().__init__(len(rows), d1, d2, symmetric)
        self.rows, self.cols, self.scale = rows, cols, float(scale)

    def _forward(self, Z, n_threads):
        return _core.entry_forward(self.rows, self.cols, self.scale, self.symmetric, Z)

    def _adjoint(self, v, n_threads):
        return _core.entry_adjoint(self.rows, self.cols, self.scale, self.symmetric, v,
                                   self._d1, self._d2)

    def _residual(self, L, R, y, with_gradient, n_threads=0):
        # <M_i, L R^T> from the rows of the factors: O(m r), never a d1 x d2 matrix.
        z = np.einsum("ij,ij->i", L[self.rows], R[self.cols])
        if self.symmetric:
            z = 0.5 * (z + np.einsum("ij,ij->i", L[self.cols], R[self.rows]))
        r = self.scale * z - y
        G = self._adjoint(r, n_threads) if with_gradient else None
        return r, float(r @ r), G


class RankOneSensing(SensingOperator):
    """``M_i = scale * a_i a_i^T`` with ``a_i`` the rows of ``vectors`` (``scale = 1/sqrt(m)``)."""

    def __init__(self, vectors: np.ndarray, *, scale: float):
        super().__init__(vectors.shape[0], vectors.shape[1], vectors.shape[1], True)
        self.vectors, self.scale = vectors, float(scale)

    def _forward(self, Z, n_threads):
        # <a a^T, Z> = a^T Z a: computed as the factored form with L = Z, R = I.
        return np.einsum("ij,ij->i", self.vectors @ Z, self.vectors) * self.scale

    def _adjoint(self, v, n_threads):
        return _core.rank_one_adjoint(self.vectors, self.scale, v)

    def _residual(self, L, R, y, with_gradient, n_threads=0):
        r = _core.rank_one_forward(self.vectors, self.scale, np.ascontiguousarray(L),
                                   np.ascontiguousarray(R)) - y
        G = self._adjoint(r, n_threads) if with_gradient else None
        return r, float(r @ r), G


class IdentitySensing(SensingOperator):
    """The population limit ``A = Id``: ``A(Z) = vec(Z)``; with ``y = vec(Z*)`` the symmetric loss
    is ``1/4 ||Z - Z*||_F^2``."""

    def __init__(self, d1, d2, *, symmetric: bool):
        super().__init__(d1 * d2, d1, d2, symmetric)

    def _forward(self, Z, n_threads):
        return Z.ravel().copy()

    def _adjoint(self, v, n_threads):
        return v.reshape(self._d1, self._d2).copy()

    def _residual(self, L, R, y, with_gradient, n_threads=0):
        G = L @ R.T - y.reshape(self._d1, self._d2)
        r = G.ravel()
        return r, float(r @ r), (G if with_gradient else None)


# ------------------------------------------------------------------------------------------------
# constructors

def _storage_key(dtype) -> str:
    """``"float64"`` or ``"float32"`` from a dtype-like; every error names ``dtype``."""
    try:
        name = str(np.dtype(dtype))
    except (TypeError, ValueError):
        if not isinstance(dtype, str):
            raise TypeError(f"dtype must be 'float64' or 'float32', got {dtype!r}") from None
        name = dtype  # an unknown name: check_choice reports it
    return check_choice("dtype", name, _DTYPES)


def _sizes(d, d2):
    d = check_int("d", d, minimum=1)
    if d2 is None:
        return d, d, True
    return d, check_int("d2", d2, minimum=1), False


def gaussian_sensing(d, m, *, d2=None, dtype="float64", packed=False, rng=None,
                     n_threads=None) -> DenseSensing:
    """A seeded Gaussian ensemble, generated natively straight into its storage.

    Symmetric (``d2=None``): ``M_i = (G_i + G_i^T) / (2 sqrt(m))``, so ``E ||A(Z)||^2 = ||Z||_F^2``
    for symmetric ``Z``. Rectangular (``d2`` given): ``M_i = G_i / sqrt(m)``, ``d x d2``.

    ``dtype`` ("float64" or "float32") is the storage type; ``packed=True`` stores the upper triangle
    only (symmetric ensembles). The same ``rng`` seed gives the same realization in every storage
    (float32 is the float64 draw rounded once) and for every thread count.
    """
    d1, d2_, symmetric = _sizes(d, d2)
    m = check_int("m", m, minimum=1)
    dtype = _storage_key(dtype)
    packed = bool(packed)
    if packed and not symmetric:
        raise ValueError("packed=True needs a symmetric ensemble (d2=None)")
    n_threads = check_threads(n_threads)
    seed = native_seed(as_generator(rng))
    p = d1 * (d1 + 1) // 2 if packed else d1 * d2_
    data = np.empty((m, p), dtype=_DTYPES[dtype])
    _core.fill_gaussian(data, d1, d2_, packed, symmetric, seed, n_threads)
    return DenseSensing(data, d1, d2_, symmetric=symmetric, packed=packed)


def entry_sampling(d, m, *, d2=None, rng=None) -> EntrySampling:
    """Matrix completion: ``m`` entries drawn uniformly with replacement,
    ``M_i = sqrt(d1 d2 / m) e_j e_k^T`` (symmetrized when ``d2`` is None)."""
    d1, d2_, symmetric = _sizes(d, d2)
    m = check_int("m", m, minimum=1)
    gen = as_generator(rng)
    rows = gen.integers(0, d1, size=m, dtype=np.int64)
    cols = gen.integers(0, d2_, size=m, dtype=np.int64)
    return EntrySampling(rows, cols, d1, d2_, scale=math.sqrt(d1 * d2_ / m), symmetric=symmetric)


def rank_one_sensing(d, m, *, rng=None) -> RankOneSensing:
    """Rank-one measurements ``M_i = a_i a_i^T / sqrt(m)``, ``a_i ~ N(0, I_d)``, matrix-free."""
    d = check_int("d", d, minimum=1)
    m = check_int("m", m, minimum=1)
    A = as_generator(rng).standard_normal((m, d))
    return RankOneSensing(A, scale=1.0 / math.sqrt(m))


def identity_sensing(d, *, d2=None) -> IdentitySensing:
    """The population operator ``A = Id`` (``y = vec(Z*)``): the infinite-sample limit."""
    d1, d2_, symmetric = _sizes(d, d2)
    return IdentitySensing(d1, d2_, symmetric=symmetric)


def _symmetric_stack(stack: np.ndarray) -> bool:
    """Every ``M_i == M_i^T`` to 1e-12 relative to ``max |M|``, checked a block of measurements at
    a time: the temporaries stay small (``BLOCK_ELEMENTS``) however large the operator is (a
    whole-array check would allocate two operator-sized temporaries)."""
    m, d, _ = stack.shape
    # each block is read three times (max, min, M - M^T): blocks of BLOCK_ELEMENTS / 16 (512 KB
    # in float64) stay in the core's cache for the re-reads (400 MB stack: 50 vs 73 ms)
    step = max(1, (BLOCK_ELEMENTS // 16) // (d * d))
    scale = worst = 0.0
    for i in range(0, m, step):  # one loop: max |M| and max |M - M^T| together
        b = stack[i:i + step]
        scale = max(scale, float(b.max()), -float(b.min()))
        diff = b - b.transpose(0, 2, 1)
        worst = max(worst, float(np.abs(diff, out=diff).max()))
        del diff  # before the next block's temporary is allocated
    return worst <= 1e-12 * max(scale, 1e-300)


def dense_sensing(M, *, symmetric=None, dtype=None, packed=False) -> DenseSensing:
    """Wrap user-supplied measurement matrices.

    ``M`` has shape ``(m, d, d)``, ``(m, d1, d2)`` or ``(m, d*d)``. A float64 or float32 C-contiguous
    ``M`` is used in place, without a copy (``op.data`` shares its memory), unless ``dtype`` asks
    for another storage type or ``packed=True`` (both documented one-time conversions). Any other
    input (integers, Fortran order, strided views) is converted once to float64.

    ``symmetric=None`` detects symmetric ``M_i`` (square and ``M_i == M_i^T`` to 1e-12 relative);
    ``symmetric=True`` defines the symmetric problem family, in which only ``sym(M_i)`` matters.
    """
    arr = as_float_array("M", M, dtypes=(np.float64, np.float32))
    if arr.ndim == 2:
        m, p = arr.shape
        d = math.isqrt(p)
        if d * d != p:
            raise ValueError(f"M of shape (m, p) needs p = d*d, got p = {p}")
        d1 = d2 = d
    elif arr.ndim == 3:
        m, d1, d2 = arr.shape
    else:
        raise ValueError(f"M must have shape (m, d, d), (m, d1, d2) or (m, d*d), got {arr.shape}")
    if m == 0 or d1 == 0 or d2 == 0:
        raise ValueError(f"M must not be empty, got shape {arr.shape}")
    stack = arr.reshape(m, d1, d2)
    is_square = d1 == d2
    if symmetric is None:
        symmetric = is_square and _symmetric_stack(stack)
    elif not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"symmetric must be None or a bool, got {type(symmetric).__name__}")
    symmetric = bool(symmetric)
    if symmetric and not is_square:
        raise ValueError(f"symmetric=True needs square M_i, got {d1} x {d2}")
    if packed and not symmetric:
        raise ValueError("packed=True needs symmetric measurement matrices")
    if dtype is None:
        store = arr.dtype
    else:
        store = np.dtype(_DTYPES[_storage_key(dtype)])
    if packed:
        iu = np.triu_indices(d1)
        upper = stack[:, iu[0], iu[1]]
        lower = stack[:, iu[1], iu[0]]
        data = np.ascontiguousarray(0.5 * (upper + lower), dtype=store)
    else:
        data = arr.reshape(m, d1 * d2)
        if data.dtype != store:
            data = data.astype(store)
    return DenseSensing(data, d1, d2, symmetric=symmetric, packed=packed)
