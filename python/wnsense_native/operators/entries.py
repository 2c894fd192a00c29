"""Sparse operators: observed entries (:class:`EntrySampling`, from :func:`completion_sensing`
or :func:`entry_sampling`) and sparse measurement matrices (:class:`SparseSensing`, from
:func:`sparse_sensing`), both over the native ``SparseMeasurements``, with the index checks their
constructors share with the sharded completion operator.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._random import as_generator
from .._validation import check_csr, check_int, check_native_size, check_symmetric_flag
from ._base import _MAX_SIDE, ResidualPass, SensingOperator, _sizes


class _Sparse(SensingOperator):
    """Shared by the sparse operators: the native :class:`_core.SparseMeasurements` over the
    arrays in ``_arrays()``, rebuilt from them when unpickled.

    The native operator copies the arrays and checks its copies; from then on the attributes
    (``rows``, ``cols``, and ``indptr``/``values`` when present) are read-only views of those
    copies, so a caller who changes (or frees) the arrays it passed cannot reach the operator."""

    def _build(self):
        a = self._arrays()
        check_native_size(self._d1, self._d2, len(a["rows"]))
        try:
            self._native = _core.SparseMeasurements(
                self._m, self._d1, self._d2, a["rows"], a["cols"], a.get("indptr"),
                a.get("values"), a.get("scale", 1.0), self.symmetric)
        except MemoryError:
            raise ValueError(f"shape {(self._d1, self._d2)} with {len(a['rows'])} entries is "
                             f"too large: the operator's row and column groupings "
                             f"({8 * (self._d1 + self._d2 + 4 * len(a['rows']))} bytes) could "
                             f"not be allocated") from None
        for name in ("rows", "cols", "indptr", "values"):
            if name in a:
                setattr(self, name, getattr(self._native, name))

    def _arrays(self) -> dict:
        raise NotImplementedError

    @property
    def nnz(self) -> int:
        """Number of stored nonzeros (entries of the ``M_i``)."""
        return self._native.nnz

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_native"]
        state.pop("_order", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._build()

    def _forward(self, Z, n_threads):
        return self._native.forward(Z)

    def _adjoint(self, v, n_threads):
        return self._native.adjoint(v)

    def _residual(self, L, R, y, right=None, left=None, n_threads=0):
        return ResidualPass(*self._native.residual(L, R, y, right, left, n_threads))

    def _adjoint_products(self, v, right, left, n_threads):
        return self._native.adjoint_products(v, right, left, n_threads)


class _SortedMeasurements:
    """Measurements prepared for a solve: ``y`` permuted once into the operator's row-sorted
    order (``EntrySampling._prepare``), and into its column order (``by_col``, made by the
    first pass that has a column side: that side then recomputes the residual from the factor
    rows, which stay cached, instead of gathering it at random; the same bits). A validation
    operator's forward-only passes never make it."""

    __slots__ = ("values", "by_col")

    def __init__(self, values):
        self.values = values
        self.by_col = None


class EntrySampling(_Sparse):
    """Observed entries: ``M_i = scale * e_{rows_i} e_{cols_i}^T`` (symmetrized when symmetric);
    ``scale = 1`` for :func:`completion_sensing` (``y`` is the observed values),
    ``sqrt(d1 d2 / m)`` for :func:`entry_sampling`. A pass touches each entry and the factor rows
    it needs (``O(m k)``).

    At construction the entries are sorted by row (stable) and grouped by column once. A solve
    permutes ``y`` into that order once (``_prepare``); each pass then computes the residual and
    the row side of ``A*(r) @ right`` in one sequential sweep over the sorted entries (and keeps
    ``r`` in that order: its ``ResidualPass.r`` is None). Called with ``y`` in the user's order
    (:meth:`residual`), the pass permutes ``y`` in and ``r`` out."""

    observes_entries = True

    @property
    def unit_scale(self) -> bool:
        """``scale == 1``: the measurements are the entries' values (:func:`completion_sensing`)."""
        return self.scale == 1.0

    def __init__(self, rows, cols, d1, d2, *, scale: float, symmetric: bool):
        super().__init__(len(rows), d1, d2, symmetric)
        self.rows, self.cols, self.scale = rows, cols, float(scale)
        self._build()

    def _arrays(self):
        return {"rows": self.rows, "cols": self.cols, "scale": self.scale}

    def _build(self):
        super()._build()
        self._order = self._native.order()

    def _prepare(self, y):
        return _SortedMeasurements(np.ascontiguousarray(y[self._order]))

    def _residual(self, L, R, y, right=None, left=None, n_threads=0):
        if isinstance(y, _SortedMeasurements):
            column_side = left is not None or (self.symmetric and right is not None)
            if column_side and y.by_col is None:
                y.by_col = y.values[self._native.col_order()]
            _, sumsq, AV, AtU = self._native.residual_sorted(
                L, R, y.values, right, left, n_threads, y_by_col=y.by_col, return_r=False)
            return ResidualPass(None, sumsq, AV, AtU)
        return super()._residual(L, R, y, right, left, n_threads)


class SparseSensing(_Sparse):
    """A sparse measurement matrix ``M`` of shape ``(m, d1*d2)`` (row ``i`` is ``vec(M_i)``,
    row-major), held in CSR form as ``indptr``, the entry coordinates ``rows``/``cols`` (the
    column index of ``M`` split into ``(j, k)``) and ``values``."""

    def __init__(self, indptr, rows, cols, values, d1, d2, *, symmetric: bool, m=None):
        # m: the declared number of measurements (the native operator checks len(indptr) == m+1)
        super().__init__(len(indptr) - 1 if m is None else m, d1, d2, symmetric)
        self.indptr, self.rows, self.cols, self.values = indptr, rows, cols, values
        self._build()

    def _arrays(self):
        return {"rows": self.rows, "cols": self.cols, "indptr": self.indptr,
                "values": self.values}

    @property
    def observes_entries(self) -> bool:
        """One nonzero per measurement: each measurement is a (weighted) entry of the matrix."""
        if not hasattr(self, "_single_entries"):
            self._single_entries = bool(np.all(np.diff(np.asarray(self.indptr)) == 1))
        return self._single_entries


# ------------------------------------------------------------------------------------------------
# constructors

def entry_sampling(d, m, *, d2=None, rng=None) -> EntrySampling:
    """Matrix completion with random entries: ``m`` entries drawn uniformly with replacement,
    ``M_i = sqrt(d1 d2 / m) e_j e_k^T`` (symmetrized when ``d2`` is None), so that
    ``E ||A(Z)||^2 = ||Z||_F^2``. For your own observed entries use :func:`completion_sensing`."""
    d1, d2_, symmetric = _sizes(d, d2)
    m = check_int("m", m, minimum=1)
    gen = as_generator(rng)
    rows = gen.integers(0, d1, size=m, dtype=np.int64)
    cols = gen.integers(0, d2_, size=m, dtype=np.int64)
    return EntrySampling(rows, cols, d1, d2_, scale=math.sqrt(d1 * d2_ / m), symmetric=symmetric)


def _shape_pair(shape):
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 2:
        raise TypeError(f"shape must be a pair (d1, d2), got {shape!r}")
    return (check_int("shape[0]", shape[0], minimum=1, maximum=_MAX_SIDE),
            check_int("shape[1]", shape[1], minimum=1, maximum=_MAX_SIDE))


def _index_array(name, a, bound):
    """A non-empty 1-D int64 array of indices in ``[0, bound)`` (converted once if needed)."""
    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"{name} must be an array of integers, got {type(a).__name__}")
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and arr.size == 0):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= bound:
        raise ValueError(f"{name} must lie in [0, {bound}), got values in [{lo}, {hi}]")
    return np.ascontiguousarray(arr, dtype=np.int64)


def completion_sensing(rows, cols, shape, *, symmetric=False) -> EntrySampling:
    """Your observed entries: ``M_i = e_{rows_i} e_{cols_i}^T`` (unit scale, so the measurements
    ``y`` are the observed values ``Z*[rows_i, cols_i]``).

    ``rows``, ``cols``: integer arrays of equal length ``m``, indices into ``shape = (d1, d2)``
    (repeated entries allowed: they count as repeated measurements). ``symmetric=True`` (square
    ``shape``) selects the symmetric family, ``M_i = (e_j e_k^T + e_k e_j^T) / 2``. The operator
    keeps its own copy of the indices (``op.rows``/``op.cols`` are read-only views of it): later
    changes to the caller's arrays do not reach it. Nothing ``d1 x d2`` is ever formed: a pass
    costs ``O(m k)`` for rank-``k`` factors.
    """
    rows, cols, d1, d2, symmetric = _observed_entries(rows, cols, shape, symmetric)
    return EntrySampling(rows, cols, d1, d2, scale=1.0, symmetric=symmetric)


def _observed_entries(rows, cols, shape, symmetric):
    """The checked arguments of :func:`completion_sensing`: ``(rows, cols, d1, d2, symmetric)``
    with the indices as C-contiguous int64 arrays (in place when they already are)."""
    d1, d2 = _shape_pair(shape)
    rows = _index_array("rows", rows, d1)
    cols = _index_array("cols", cols, d2)
    if rows.shape != cols.shape:
        raise ValueError(f"rows and cols must have the same length, got {rows.size} and "
                         f"{cols.size}")
    symmetric = check_symmetric_flag(symmetric, d1, d2)
    return rows, cols, d1, d2, bool(symmetric)


def sparse_sensing(M, shape, *, symmetric=False) -> SparseSensing:
    """A scipy.sparse measurement matrix ``M`` of shape ``(m, d1*d2)``: row ``i`` is
    ``vec(M_i)`` in row-major order (``M_i[j, k]`` at column ``j * d2 + k``), so ``y = M @ vec(Z)``.

    ``M`` is converted once to CSR (any scipy sparse format is accepted), its structure checked
    (scipy does not check a CSR matrix whose arrays were changed after construction) and copied:
    the operator owns ``indptr``, ``values`` and the column indices as entry coordinates (two
    int64 arrays of length ``nnz``). ``symmetric=True`` (square ``shape``) selects the symmetric
    family (only ``sym(M_i)`` matters). Needs scipy.
    """
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("sparse_sensing needs scipy (pip install wnsense_native[scipy])") from None
    if not sp.issparse(M):
        raise TypeError(f"M must be a scipy.sparse matrix, got {type(M).__name__}")
    d1, d2 = _shape_pair(shape)
    if M.ndim != 2 or M.shape[1] != d1 * d2:
        raise ValueError(f"M must have shape (m, {d1 * d2}) for shape {(d1, d2)}, got {M.shape}")
    if M.shape[0] == 0:
        raise ValueError("M must have at least one row (measurement)")
    if M.dtype.kind not in "fiu":
        raise TypeError(f"M must be real, got dtype {M.dtype}")
    symmetric = check_symmetric_flag(symmetric, d1, d2)
    csr = M.tocsr()
    m = M.shape[0]
    # scipy accepts a CSR structure it never checked: check it before anything reads through it
    # (the native operator copies these and checks its copies again: no copy needed here)
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
    columns = np.asarray(csr.indices, dtype=np.int64)
    values = np.ascontiguousarray(csr.data, dtype=np.float64)
    check_csr(indptr, columns, values, m, d1 * d2)
    if not np.all(np.isfinite(values)):
        raise ValueError("M contains NaN or Inf")
    rows, cols = np.divmod(columns, d2)
    return SparseSensing(indptr, rows, cols, values, d1, d2, symmetric=bool(symmetric), m=m)
