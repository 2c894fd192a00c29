"""The protocol every operator speaks (see :mod:`wnsense_native.operators`): the
:class:`SensingOperator` base class with its validated public maps and the thin-factor pass
(:meth:`SensingOperator.thin_pass`), what a pass returns (:class:`ResidualPass`), measurements
prepared for a solve (:class:`PreparedMeasurements`), and the size checks the constructors share.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .._validation import as_float_array, as_matrix, as_vector, check_int, check_threads


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
        from ..solvers._policy import WN_METHODS, preferred_options
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


def _sizes(d, d2):
    """``(d1, d2, symmetric)`` of a constructor's ``d`` and ``d2`` (``d2=None``: symmetric)."""
    d = check_int("d", d, minimum=1)
    if d2 is None:
        return d, d, True
    return d, check_int("d2", d2, minimum=1), False


# Largest d1, d2 of an entry operator (and m, d1, d2 of a matrix-free one): indices are int64
# (larger sizes could never be allocated: the native row and column groupings take 8 (d1 + d2)
# bytes).
_MAX_SIDE = 2 ** 62
