"""What every solver iterates on: an operator, measurements and a residual oracle."""
from __future__ import annotations

import numpy as np

from .models import sym  # noqa: F401  (re-exported: its older home)

# The measurement norms the solvers take: ||y|| in [2**-100, 2**100] (about 7.9e-31 .. 1.3e30).
# The methods are scale-equivariant inside it (wn.complete: the same error, 1.68e-10 in 76
# iterations, for data scaled by 1e-20 .. 1e50), but their step searches form quantities of
# order ||y||**4 (squared gradients): at 1e100 they overflow (step_failed) and below ~1e-160
# ||y||**2 underflows to 0 (a false success at x = 0). Outside the range the solve refuses;
# rescaling y by a power of two (exact) and the result back is the caller's fix.
Y_NORM_RANGE = (2.0 ** -100, 2.0 ** 100)


def outside_y_norm_range(norm: float) -> bool:
    """A nonzero measurement norm the solvers refuse (see :data:`Y_NORM_RANGE`)."""
    lo, hi = Y_NORM_RANGE
    return norm != 0.0 and not lo <= norm <= hi


class Problem:
    """The measured problem ``y = A(Z*)`` as the solvers see it.

    ``residual(L, R, right, left)`` makes one pass of the thin-factor protocol at the model
    ``Z = L R^T`` (see :mod:`wnsense_native.operators`): it returns a ``ResidualPass`` with
    ``||r||^2`` for ``r = A(Z) - y`` and the requested thin products ``A*(r) @ right`` and
    ``A*(r)^T @ left`` (``sym(A*(r))`` on both sides in the symmetric family), and counts the pass
    in ``nfev``. ``normal_products`` is the same pass with zero measurements (``A*(A(Z))``
    products: the Hessian diagnostics). The oracle is the native operator for
    :func:`wnsense_native.solve` and a numpy one for :func:`wnsense_native.reference.solve`.
    """

    def __init__(self, op, y: np.ndarray, residual_fn, *, name="y"):
        self.op = op
        self.y = y
        self.m, self.d1, self.d2 = op.shape
        self.symmetric = op.symmetric
        self.y_norm = float(np.linalg.norm(y))
        if outside_y_norm_range(self.y_norm):
            lo, hi = Y_NORM_RANGE
            e = int(np.round(np.log2(self.y_norm)))
            raise ValueError(f"{name} has norm {self.y_norm:.3g}, outside the range "
                             f"[2**-100, 2**100] (about [{lo:.2g}, {hi:.2g}]) the solvers take: "
                             f"solve with {name} * 2.0**{-e} and multiply the result by "
                             f"2.0**{e} (exact)")
        # symmetric: f = 1/4 ||A(Z) - y||^2; rectangular: f = 1/2 ||A(U V^T) - y||^2 (SPEC 3)
        self.loss_factor = 0.25 if self.symmetric else 0.5
        self.nfev = 0
        self._residual_fn = residual_fn
        # the measurements as the oracle prepared them (op.prepare(y)), when it did
        self.measurements = getattr(residual_fn, "measurements", None)

    def residual(self, L, R, right=None, left=None):
        self.nfev += 1
        return self._residual_fn(L, R, True, right, left)

    def normal_products(self, L, R, right=None, left=None):
        self.nfev += 1
        return self._residual_fn(L, R, False, right, left)

    def loss(self, sumsq: float) -> float:
        return self.loss_factor * sumsq

    def relative_residual(self, sumsq: float) -> float:
        return float(np.sqrt(sumsq)) / self.y_norm if self.y_norm > 0 else float(np.sqrt(sumsq))

