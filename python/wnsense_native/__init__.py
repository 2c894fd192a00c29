"""wnsense_native: overparameterized low-rank matrix sensing with weight-normalized Riemannian
gradient descent (WN-RGD), on a C++/Eigen core.

Quick start::

    import wnsense_native as wn
    Zs = wn.low_rank_target(40, 3, kappa=5, rng=0)
    op = wn.gaussian_sensing(40, 960, rng=1)
    res = wn.solve(op, op.forward(Zs), rank=6, rng=2)
"""
import logging as _logging
import os as _os


def _load_core():
    """Import the extension with OpenMP's idle threads sleeping instead of spinning.

    libgomp's workers busy-wait for the next parallel region by default. On a machine where
    another process keeps a core busy, a spinning worker takes that core's time slices and the
    next region waits for it: on 2 cores with one taken, the Quick start's paper-variant solve
    took 7x longer on the default two threads than on one. libgomp reads its settings once,
    when it is loaded with the extension, so the policy is set for that moment only (the
    process's environment is restored: child processes and other libraries see the user's) and
    never when the user chose one (OMP_WAIT_POLICY or GOMP_SPINCOUNT set).
    """
    keys = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    if any(k in _os.environ for k in keys):
        from . import _core
        return _core
    _os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        from . import _core
    finally:
        _os.environ.pop("OMP_WAIT_POLICY", None)
    return _core


_core = _load_core()
from .operators import (DenseSensing, EntrySampling, IdentitySensing, MatrixFreeSensing,
                        PreparedMeasurements, RankOneSensing, ResidualPass, SensingOperator,
                        SparseSensing,
                        completion_sensing, dense_sensing, entry_sampling, gaussian_sensing,
                        identity_sensing, matrix_free_sensing, rank_one_measurements,
                        rank_one_sensing, sparse_sensing)
from .stiefel import (cayley_retraction, polar_retraction, qr_retraction, random_stiefel,
                      tangent_projection)
from .targets import low_rank_target

__version__ = "0.1.0"

_logging.getLogger("wnsense_native").addHandler(_logging.NullHandler())

__all__ = [
    "low_rank_target", "gaussian_sensing", "entry_sampling", "completion_sensing",
    "sparse_sensing", "rank_one_sensing", "rank_one_measurements", "identity_sensing",
    "dense_sensing", "matrix_free_sensing", "SensingOperator", "ResidualPass",
    "PreparedMeasurements", "DenseSensing",
    "EntrySampling", "SparseSensing", "RankOneSensing", "IdentitySensing", "MatrixFreeSensing",
    "tangent_projection", "polar_retraction",
    "qr_retraction", "cayley_retraction", "random_stiefel",
]

from .result import SolveResult
from .solvers import solve
from .completion import complete
from .ratings import RatingsModel, fit_ratings

__all__ += ["solve", "SolveResult", "complete", "fit_ratings", "RatingsModel"]

from . import reference  # noqa: E402  (wn.reference.solve: the pure-numpy baseline)


def __getattr__(name):
    # wn.distributed and wn.estimators: imported on first use (they need the optional 'dask'
    # and 'sklearn' extras)
    if name in ("distributed", "estimators"):
        import importlib
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
