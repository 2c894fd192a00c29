"""Pure-numpy reference implementation of every solver: ``wn.reference.solve`` has the signature
of :func:`wnsense_native.solve` and shares its validation, driver loop, step-size rules and
starting points (same ``rng`` -> same start), but evaluates the model with plain numpy
(:mod:`._operators`) and writes each method out line by line against the SPEC (:mod:`.wn_rgd`,
:mod:`.gd`). It is the baseline the native path is tested and benchmarked against; it makes more
passes over dense sensing data (forward and adjoint separately) and holds float32 operators as a
float64 copy.
"""
from __future__ import annotations

from ..solvers._frontend import solve_with
from ._operators import numpy_residual, numpy_residual_factory
from .column_wn import column_wn_for
from .gd import gd_for
from .precgd import precgd_for, scaledgd_for
from .snn import snn_for
from ..solvers.wn_rgd import wn_rgd_factory
from .wn_lbfgs import RectangularWNLBFGS, WNLBFGS
from .wn_rgd import WNRGD
from .wn_rgd_rect import RectangularWNRGD

__all__ = ["solve", "REFERENCE_METHODS", "numpy_residual"]


_wn_rgd_for = wn_rgd_factory({"lbfgs": (WNLBFGS, RectangularWNLBFGS),
                              "paper": (WNRGD, RectangularWNRGD),
                              "preconditioned": (WNRGD, RectangularWNRGD)})


# method name -> (operator is symmetric) -> Method class
REFERENCE_METHODS = {
    "wn_rgd": _wn_rgd_for,
    "gd": gd_for,
    "precgd": precgd_for,
    "scaledgd": scaledgd_for,
    "column_wn": column_wn_for,
    "snn": snn_for,
}


def solve(op, y, rank, *, method="wn_rgd", max_iter=1000, tol=1e-10, step_size=None, rng=None,
          init=None, x_true=None, callback=None, n_threads=None, gtol=0.0, xtol=0.0,
          max_time=None, progress=False, validation=None, patience=10, expected_rank=None,
          **method_options):
    """Pure-numpy counterpart of :func:`wnsense_native.solve` (same arguments, same result;
    ``n_threads`` is validated but numpy's BLAS threading applies)."""
    return solve_with(REFERENCE_METHODS, numpy_residual_factory, op, y, rank, method=method,
                      max_iter=max_iter, tol=tol, step_size=step_size, rng=rng, init=init,
                      x_true=x_true, callback=callback, n_threads=n_threads, gtol=gtol,
                      xtol=xtol, max_time=max_time, progress=progress, validation=validation,
                      patience=patience, expected_rank=expected_rank, **method_options)
