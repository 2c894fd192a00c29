"""Input validation shared by every public entry point.

Each check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong shape,
value or size) with a message that names the offending argument, before any native call.
"""
from __future__ import annotations

import contextlib
import numbers
import operator
import os

import numpy as np

__all__ = [
    "as_float_array",
    "as_matrix",
    "as_vector",
    "check_int",
    "check_float",
    "check_choice",
]


def _check_numeric_dtype(name: str, a: np.ndarray) -> None:
    kind = a.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {a.dtype}")
    if kind not in "fiub":
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if kind == "b":
        raise TypeError(f"{name} must be a real numeric array, got boolean dtype")


def as_float_array(name: str, a, *, ndim: int | None = None, dtypes=(np.float64,),
                   finite: bool = True) -> np.ndarray:
    """Return ``a`` as a C-contiguous array of one of ``dtypes`` (the first one by default).

    An array that already has an accepted dtype and is C-contiguous is returned as is (no copy);
    anything else is converted once.
    """
    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"{name} must be an array, got {type(a).__name__}")
    if np.ma.isMaskedArray(a) and np.ma.getmaskarray(a).any():
        # np.asarray would drop the mask and use the hidden values as data
        raise ValueError(f"{name} is a masked array with masked entries; fill or drop them "
                         f"(wn.complete takes masked entries as missing)")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and other oddities
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    _check_numeric_dtype(name, arr)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.dtype not in dtypes or not arr.flags.c_contiguous:
        target = arr.dtype if arr.dtype in dtypes else dtypes[0]
        arr = np.ascontiguousarray(arr, dtype=target)
    if finite and arr.size and not all_finite(arr):
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


# Elements per temporary block in whole-array checks of possibly huge arrays (sensing data).
BLOCK_ELEMENTS = 1 << 20


def all_finite(arr: np.ndarray) -> bool:
    """``np.isfinite(arr).all()`` for a C-contiguous array, a block at a time (the temporary mask
    stays at most ``BLOCK_ELEMENTS`` bytes instead of an eighth of a float64 operator)."""
    flat = arr.reshape(-1)
    return all(bool(np.isfinite(flat[i:i + BLOCK_ELEMENTS]).all())
               for i in range(0, flat.size, BLOCK_ELEMENTS))


def as_matrix(name: str, a, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A finite float64 C-contiguous 2-D array, optionally of an exact shape."""
    arr = as_float_array(name, a, ndim=2)
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return arr


def as_vector(name: str, a, length: int | None = None) -> np.ndarray:
    """A finite float64 C-contiguous 1-D array, optionally of an exact length."""
    arr = as_float_array(name, a, ndim=1)
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name} must have length {length}, got {arr.shape[0]}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return arr


def check_int(name: str, value, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)):  # operator.index(True) == 1: reject explicitly
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not isinstance(value, numbers.Integral):
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(name: str, value, *, minimum: float | None = None,
                maximum: float | None = None, strict_minimum: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None:
        if strict_minimum and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value}")
        if not strict_minimum and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_symmetric_flag(symmetric, d1: int, d2: int) -> bool:
    """``symmetric`` of an operator constructor: a bool, True only for a square ``d1 x d2``."""
    if not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"symmetric must be a bool, got {type(symmetric).__name__}")
    if symmetric and d1 != d2:
        raise ValueError(f"symmetric=True needs a square shape, got {d1} x {d2}")
    return bool(symmetric)


def check_threads(n_threads) -> int:
    """``None`` means OpenMP's default (encoded as 0 for the native layer)."""
    if n_threads is None:
        return 0
    return check_int("n_threads", n_threads, minimum=1, maximum=1024)


@contextlib.contextmanager
def thread_scope(n_threads: int):
    """Within the block, native kernels called from this thread without a thread count of their
    own use ``n_threads`` (0: OpenMP's default): ``n_threads=1`` then means one thread in every
    kernel of a solve, not only in the operator passes."""
    from . import _core
    previous = _core.set_scope_threads(n_threads)
    try:
        yield
    finally:
        _core.set_scope_threads(previous)


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def check_native_size(d1, d2, nnz):
    """Refuse, naming ``shape``, an operator whose native groupings (by row and by column, about
    ``16 (d1 + d2) + 48 nnz`` bytes at their peak) exceed half the machine's memory: the
    allocation could succeed (overcommit) and then be filled page by page into the OOM killer."""
    need = 16 * (d1 + d2 + 2) + 48 * nnz
    total = _physical_memory()
    if total is not None and need > total // 2:
        raise ValueError(f"shape {(d1, d2)} is too large: the operator's row and column "
                         f"groupings need about {need / 2**30:.3g} GiB, more than half of this "
                         f"machine's {total / 2**30:.3g} GiB")


def check_csr(indptr, columns, values, m, n_cols):
    """The CSR structure of ``M`` (``m`` rows, ``n_cols`` columns): ``indptr`` of length
    ``m + 1``, starting at 0, never decreasing and ending at ``nnz``; column indices in
    ``[0, n_cols)``. Every error names ``M``."""
    nnz = columns.size
    if indptr.ndim != 1 or indptr.size != m + 1:
        raise ValueError(f"M has an invalid CSR structure: indptr has length {indptr.size}, "
                         f"expected m + 1 = {m + 1}")
    if values.size != nnz:
        raise ValueError(f"M has an invalid CSR structure: {values.size} values for {nnz} "
                         f"column indices")
    if indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        raise ValueError(f"M has an invalid CSR structure: indptr must start at 0, never "
                         f"decrease and end at nnz = {nnz}")
    if nnz and (columns.min() < 0 or columns.max() >= n_cols):
        lo, hi = int(columns.min()), int(columns.max())
        raise ValueError(f"M has a column index out of range: values in [{lo}, {hi}], "
                         f"expected [0, {n_cols}) (d1*d2 for shape)")
