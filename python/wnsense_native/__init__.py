"""wnsense_native: overparameterized low-rank matrix sensing with weight-normalized Riemannian
gradient descent (WN-RGD), on a C++/Eigen core.

Quick start::

    import wnsense_native as wn
    Zs = wn.low_rank_target(40, 3, kappa=5, rng=0)
    op = wn.gaussian_sensing(40, 960, rng=1)
    res = wn.solve(op, op.forward(Zs), rank=6, rng=2)
"""
import logging as _logging

from . import _core
from .operators import (DenseSensing, EntrySampling, IdentitySensing, RankOneSensing,
                        SensingOperator, dense_sensing, entry_sampling, gaussian_sensing,
                        identity_sensing, rank_one_sensing)
from .stiefel import (cayley_retraction, polar_retraction, qr_retraction, random_stiefel,
                      tangent_projection)
from .targets import low_rank_target

__version__ = "0.1.0"

_logging.getLogger("wnsense_native").addHandler(_logging.NullHandler())

__all__ = [
    "low_rank_target", "gaussian_sensing", "entry_sampling", "rank_one_sensing",
    "identity_sensing", "dense_sensing", "SensingOperator", "DenseSensing", "EntrySampling",
    "RankOneSensing", "IdentitySensing", "tangent_projection", "polar_retraction",
    "qr_retraction", "cayley_retraction", "random_stiefel",
]

from .result import SolveResult
from .solvers import solve

__all__ += ["solve", "SolveResult"]

from . import reference  # noqa: E402  (wn.reference.solve: the pure-numpy baseline)
