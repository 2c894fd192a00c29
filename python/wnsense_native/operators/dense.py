"""Dense operators: :class:`DenseSensing` (a ``(m, p)`` block of flattened or packed ``M_i``,
float64 or float32), the seeded Gaussian ensemble (:func:`gaussian_sensing`) and user-supplied
stacks (:func:`dense_sensing`), with the symmetry test and packing they share with the sharded
dense operators of :mod:`wnsense_native.distributed`.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._random import as_generator, native_seed
from .._validation import BLOCK_ELEMENTS, as_float_array, check_choice, check_int, check_threads
from ._base import ResidualPass, SensingOperator, _sizes


_DTYPES = {"float64": np.float64, "float32": np.float32}


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
