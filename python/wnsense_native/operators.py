"""Linear measurement operators ``A(Z)_i = <M_i, Z>`` and their constructors.

Every operator has ``shape == (m, d1, d2)``, ``forward(Z)`` (``(m,)`` float64) and ``adjoint(v)``
(``(d1, d2)`` float64), and a ``symmetric`` flag: symmetric operators define the symmetric problem
family (only ``sym(M_i)`` matters), rectangular ones the asymmetric family.

**The thin-factor protocol.** Solvers never see a ``d1 x d2`` matrix. They talk to an operator
through one pass, :meth:`SensingOperator.residual` (``_residual`` without validation): for the
model in factored form ``Z = L R^T`` (``L`` is ``d1 x k``, ``R`` is ``d2 x k``) it returns a
:class:`ResidualPass` with

* ``r = A(Z) - y`` (``y=None``: zero measurements, i.e. ``r = A(Z)``) and ``sumsq = ||r||^2``,
* ``AV = A*(r) @ right`` (``d1 x k'``) and ``AtU = A*(r)^T @ left`` (``d2 x k''``) for the thin
  matrices the caller asks for (each optional). On a symmetric operator both products use
  ``S = sym(A*(r))``: ``AV = S @ right``, ``AtU = S @ left``.

computed in a single pass over the sensing data. A dense operator accumulates each slice of its
rows' ``A*(r)`` (the size of one measurement) inside the kernel and multiplies it by the thin
matrices there; sparse, rank-one and matrix-free operators never form anything ``d1 x d2``.
A solve prepares its measurements once, :meth:`SensingOperator.prepare` (a typed
:class:`PreparedMeasurements`: local operators keep ``y`` itself, observed entries permute it
into their order, a distributed operator ships its shards once), and then makes every pass with
:meth:`SensingOperator.thin_pass`. A new operator kind implements ``_residual`` (or
``_forward_factored`` and ``_adjoint_products``, from which the base class builds it), and
``_forward`` / ``_adjoint`` for the dense public maps.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

from . import _core
from ._random import as_generator, native_seed
from ._validation import (BLOCK_ELEMENTS, as_float_array, as_matrix, as_vector, check_choice,
                          check_csr, check_float, check_int, check_native_size, check_threads)

__all__ = [
    "ResidualPass",
    "PreparedMeasurements",
    "SensingOperator",
    "DenseSensing",
    "EntrySampling",
    "SparseSensing",
    "RankOneSensing",
    "IdentitySensing",
    "MatrixFreeSensing",
    "gaussian_sensing",
    "entry_sampling",
    "completion_sensing",
    "sparse_sensing",
    "rank_one_sensing",
    "rank_one_measurements",
    "identity_sensing",
    "dense_sensing",
    "matrix_free_sensing",
]

_DTYPES = {"float64": np.float64, "float32": np.float32}


class ResidualPass(NamedTuple):
    """What one pass returns: ``r = A(L R^T) - y`` (None from operators that keep it where the
    data live), ``sumsq = ||r||^2``, and the requested thin products ``AV = A*(r) @ right``,
    ``AtU = A*(r)^T @ left`` (``sym(A*(r))`` on symmetric operators; None when not asked)."""
    r: Optional[np.ndarray]
    sumsq: float
    AV: Optional[np.ndarray]
    AtU: Optional[np.ndarray]


class PreparedMeasurements:
    """Measurements ``y`` prepared once for many passes on one operator (:meth:`SensingOperator
    .prepare`): what a solve hands to every :meth:`SensingOperator.thin_pass`. ``operator`` and
    ``y`` (the vector in the caller's order) are public; ``state`` is the operator's own form
    (``y`` itself for most operators; permuted into the operator's order for observed entries;
    a key of the copies on the workers for a distributed operator)."""

    __slots__ = ("operator", "y", "state")

    def __init__(self, operator, y, state):
        self.operator, self.y, self.state = operator, y, state

    def __repr__(self):
        return f"PreparedMeasurements(m={self.y.shape[0]}, operator={self.operator!r})"


def _thin_ok(a, rows) -> bool:
    """``a`` is a 2-D C-contiguous float64 ndarray with ``rows`` rows (checked, not converted)."""
    return (type(a) is np.ndarray and a.ndim == 2 and a.shape[0] == rows
            and a.dtype == np.float64 and a.flags.c_contiguous)


def _thin(name, a, rows):
    """A validated thin matrix with ``rows`` rows, or None."""
    if a is None:
        return None
    a = as_float_array(name, a, ndim=2)
    if a.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows, got shape {a.shape}")
    return a


class SensingOperator:
    """Base class: validation of the public maps, shape bookkeeping, and the thin-factor
    protocol (see the module docstring)."""

    symmetric: bool
    # facts the solver front end decides its defaults from (wnsense_native.solvers._policy)
    observes_entries = False   # each measurement is one (scaled) entry of the matrix

    @property
    def preferred_options(self) -> dict:
        """Per method, the options ``wn.solve`` uses for this operator when the caller picks no
        variant (decided by :func:`wnsense_native.solvers._policy.preferred_options`)."""
        from .solvers._policy import WN_METHODS, preferred_options
        return {m: p for m in WN_METHODS if (p := preferred_options(self, m))}

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
        """``A*(v) = sum_i v_i M_i`` as a ``(d1, d2)`` float64 array (dense: for small sizes;
        solvers use the thin products of :meth:`residual`)."""
        v = as_vector("v", v, self._m)
        return self._adjoint(v, check_threads(n_threads))

    def forward_factored(self, L, R, *, n_threads=None) -> np.ndarray:
        """``A(L R^T)`` from the thin factors, without forming ``L R^T`` (e.g. measurements of a
        low-rank truth held as factors)."""
        L, R = self._factors(L, R)
        return self._forward_factored(L, R, check_threads(n_threads))

    def residual(self, L, R, y=None, *, right=None, left=None, n_threads=None) -> ResidualPass:
        """One pass of the thin-factor protocol at ``Z = L R^T``: ``r = A(Z) - y`` (``y=None``:
        zero), ``||r||^2`` and the thin products ``A*(r) @ right``, ``A*(r)^T @ left`` (on a
        symmetric operator ``sym(A*(r))`` on both sides)."""
        L, R = self._factors(L, R)
        if y is not None:
            y = as_vector("y", y, self._m)
        right = _thin("right", right, self._d2)
        left = _thin("left", left, self._d1)
        return self._residual(L, R, y, right, left, check_threads(n_threads))

    def as_linear_operator(self):
        """A ``scipy.sparse.linalg.LinearOperator`` of shape ``(m, d1*d2)`` for
        ``vec(Z) -> A(Z)`` (row-major ``vec``), with the adjoint as ``rmatvec``. Needs scipy."""
        try:
            from scipy.sparse.linalg import LinearOperator
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("as_linear_operator() needs scipy "
                              "(pip install wnsense_native[scipy])") from None
        m, d1, d2 = self.shape

        def matvec(z):
            return self.forward(np.reshape(z, (d1, d2)))

        def rmatvec(v):
            return self.adjoint(np.ravel(v)).ravel()

        return LinearOperator((m, d1 * d2), matvec=matvec, rmatvec=rmatvec, dtype=np.float64)

    def __call__(self, Z, **kw):
        return self.forward(Z, **kw)

    def __repr__(self):
        kind = "symmetric" if self.symmetric else "rectangular"
        return f"{type(self).__name__}(m={self._m}, d1={self._d1}, d2={self._d2}, {kind})"

    def _factors(self, L, R):
        L = as_float_array("L", L, ndim=2)
        R = as_float_array("R", R, ndim=2)
        if L.shape[0] != self._d1 or R.shape[0] != self._d2 or L.shape[1] != R.shape[1]:
            raise ValueError(f"L and R must have shapes ({self._d1}, k) and ({self._d2}, k), "
                             f"got {L.shape} and {R.shape}")
        return L, R

    # -- the solver's pass protocol ----------------------------------------------------------
    def prepare(self, y) -> PreparedMeasurements:
        """``y`` (``(m,)``) prepared once for the passes of a solve (:meth:`thin_pass`)."""
        y = as_vector("y", y, self._m)
        return PreparedMeasurements(self, y, self._prepare(y))

    def thin_pass(self, L, R, measurements=None, right=None, left=None,
                  n_threads=0) -> ResidualPass:
        """One pass of the thin-factor protocol as a solver makes it, many times per solve: at
        ``Z = L R^T``, against ``measurements`` (a :class:`PreparedMeasurements` of this
        operator, from :meth:`prepare`; None: zero measurements, ``r = A(Z)``), with the thin
        products ``A*(r) @ right`` and ``A*(r)^T @ left`` (each optional; ``sym(A*(r))`` on a
        symmetric operator). The arrays must be C-contiguous float64 of the right shapes (a
        solver's own arrays: only checked, never converted; :meth:`residual` converts)."""
        if measurements is None:
            state = None
        elif isinstance(measurements, PreparedMeasurements):
            if measurements.operator is not self:
                raise ValueError("measurements were prepared for another operator")
            state = measurements.state
        else:
            raise TypeError(f"measurements must come from op.prepare(y) (or be None), got "
                            f"{type(measurements).__name__}")
        d1, d2 = self._d1, self._d2
        if not (_thin_ok(L, d1) and _thin_ok(R, d2) and L.shape[1] == R.shape[1]
                and (right is None or _thin_ok(right, d2))
                and (left is None or _thin_ok(left, d1))):
            for name, a, rows in (("L", L, d1), ("R", R, d2), ("right", right, d2),
                                  ("left", left, d1)):
                if a is not None and not _thin_ok(a, rows):
                    raise ValueError(f"{name} must be a C-contiguous float64 array with {rows} "
                                     "rows")
            raise ValueError("L and R must have the same number of columns")
        return self._residual(L, R, state, right, left, n_threads)

    # -- the protocol's implementation (inputs already validated by the caller) -------------
    def _prepare(self, y):
        """The measurements as the solver passes them to :meth:`_residual` (called once per
        solve): ``y`` itself for local operators."""
        return y

    def _residual(self, L, R, y, right=None, left=None, n_threads=0) -> ResidualPass:
        z = self._forward_factored(L, R, n_threads)
        r = z if y is None else z - y
        AV = AtU = None
        if right is not None or left is not None:
            AV, AtU = self._adjoint_products(r, right, left, n_threads)
        return ResidualPass(r, float(r @ r), AV, AtU)

    def _forward_factored(self, L, R, n_threads):
        return self._residual(L, R, None, None, None, n_threads).r

    def _adjoint_products(self, v, right, left, n_threads):
        raise NotImplementedError

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

    A pass streams the rows once: residual, loss and, per fixed slice of rows (the slices of
    ``_core.slice_bounds(m)``, fixed by ``m`` alone), the slice's adjoint times the thin matrices;
    the slice partials are summed in slice order, so results do not depend on the thread count.
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

    def _residual(self, L, R, y, right=None, left=None, n_threads=0):
        return ResidualPass(*_core.dense_residual(self.data, self._d1, self._d2, self.packed, L,
                                                  R, y, right, left, self.symmetric, n_threads))

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
    """Matrix completion with random entries: ``m`` entries drawn uniformly with replacement,
    ``M_i = sqrt(d1 d2 / m) e_j e_k^T`` (symmetrized when ``d2`` is None), so that
    ``E ||A(Z)||^2 = ||Z||_F^2``. For your own observed entries use :func:`completion_sensing`."""
    d1, d2_, symmetric = _sizes(d, d2)
    m = check_int("m", m, minimum=1)
    gen = as_generator(rng)
    rows = gen.integers(0, d1, size=m, dtype=np.int64)
    cols = gen.integers(0, d2_, size=m, dtype=np.int64)
    return EntrySampling(rows, cols, d1, d2_, scale=math.sqrt(d1 * d2_ / m), symmetric=symmetric)


# Largest d1, d2 of an entry operator: indices are int64 (larger sizes could never be allocated:
# the native row and column groupings take 8 (d1 + d2) bytes).
_MAX_SIDE = 2 ** 62


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
    if not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"symmetric must be a bool, got {type(symmetric).__name__}")
    if symmetric and d1 != d2:
        raise ValueError(f"symmetric=True needs a square shape, got {(d1, d2)}")
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
    if not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"symmetric must be a bool, got {type(symmetric).__name__}")
    if symmetric and d1 != d2:
        raise ValueError(f"symmetric=True needs a square shape, got {(d1, d2)}")
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
    if not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"symmetric must be a bool, got {type(symmetric).__name__}")
    if symmetric and d1 != d2:
        raise ValueError(f"symmetric=True needs d1 == d2, got {d1} x {d2}")
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


def _symmetric_stack(stack: np.ndarray) -> bool:
    """Every ``M_i == M_i^T`` to 1e-12 relative to ``max |M|`` (see :func:`_asymmetry`)."""
    return _is_symmetric(*_asymmetry(stack))


def _is_symmetric(scale: float, worst: float) -> bool:
    """The symmetry test on ``(max |M|, max |M_i - M_i^T|)``, combinable over blocks (max of each)."""
    return worst <= 1e-12 * max(scale, 1e-300)


def _asymmetry(stack: np.ndarray) -> tuple[float, float]:
    """``(max |M|, max |M_i - M_i^T|)`` of a square ``(m, d, d)`` stack, a block of measurements
    at a time: the temporaries stay small (``BLOCK_ELEMENTS``) however large the operator is (a
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
    return scale, worst


def _packed_rows(stack: np.ndarray, store) -> np.ndarray:
    """The packed storage of a square ``(m, d, d)`` stack: row ``i`` is the upper triangle of
    ``sym(M_i)`` in ``numpy.triu_indices`` order, in dtype ``store``. The mean is taken in
    float64 and rounded once to ``store`` (float32 arithmetic would round the sum first: float32
    input packed into float64 storage was 2e-8 relative off the unpacked operator)."""
    iu = np.triu_indices(stack.shape[1])
    upper = stack[:, iu[0], iu[1]].astype(np.float64, copy=False)
    lower = stack[:, iu[1], iu[0]]
    return np.ascontiguousarray(0.5 * (upper + lower), dtype=store)


def _stack_sizes(name, shape):
    """``(m, d1, d2)`` of a non-empty measurement stack of shape ``(m, d1, d2)`` or
    ``(m, d*d)`` (shared with the sharded operators)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        m, p = shape
        d = math.isqrt(p)
        if d * d != p:
            raise ValueError(f"{name} of shape (m, p) needs p = d*d, got p = {p}")
        d1 = d2 = d
    elif len(shape) == 3:
        m, d1, d2 = shape
    else:
        raise ValueError(f"{name} must have shape (m, d, d), (m, d1, d2) or (m, d*d), got "
                         f"{shape}")
    if m == 0 or d1 == 0 or d2 == 0:
        raise ValueError(f"{name} must not be empty, got shape {shape}")
    return m, d1, d2


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
    m, d1, d2 = _stack_sizes("M", arr.shape)
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
        data = _packed_rows(stack, store)
    else:
        data = arr.reshape(m, d1 * d2)
        if data.dtype != store:
            data = data.astype(store)
    return DenseSensing(data, d1, d2, symmetric=symmetric, packed=packed)
