"""Pure-numpy reference implementation of every solver: ``wn.reference.solve`` has the signature
of :func:`wnsense_native.solve` and shares its validation, driver loop, step-size rules and
starting points (same ``rng`` -> same start) and the same method classes, on the numpy backend
(:mod:`._backend`): the model evaluated with plain numpy (:mod:`._operators`), the Stiefel tools
and the other primitives written out in numpy. It is the baseline the native path is tested and
benchmarked against; it makes more passes over dense sensing data (forward and adjoint
separately) and holds float32 operators as a float64 copy.
"""
from __future__ import annotations

from ..solvers._frontend import solve_with
from ..solvers._registry import bind
from . import column_wn, gd, precgd, wn_rgd, wn_rgd_rect  # noqa: F401  (the numpy overrides)
from ._backend import NUMPY
from ._operators import numpy_residual

__all__ = ["solve", "REFERENCE_METHODS", "numpy_residual"]


# method name -> factory(symmetric[, options]) -> method class, on the numpy backend (the one
# registry: wnsense_native.solvers._registry.METHODS)
REFERENCE_METHODS = bind(NUMPY)


def solve(op, y, rank, *, method="wn_rgd", max_iter=1000, tol=1e-10, step_size=None, rng=None,
          init=None, x_true=None, callback=None, n_threads=None, gtol=0.0, xtol=0.0,
          max_time=None, progress=False, validation=None, patience=10, expected_rank=None,
          **method_options):
    """Pure-numpy counterpart of :func:`wnsense_native.solve` (same arguments, same result;
    ``n_threads`` is validated but numpy's BLAS threading applies)."""
    return solve_with(REFERENCE_METHODS, NUMPY.make_residual, op, y, rank, method=method,
                      max_iter=max_iter, tol=tol, step_size=step_size, rng=rng, init=init,
                      x_true=x_true, callback=callback, n_threads=n_threads, gtol=gtol,
                      xtol=xtol, max_time=max_time, progress=progress, validation=validation,
                      patience=patience, expected_rank=expected_rank, **method_options)
