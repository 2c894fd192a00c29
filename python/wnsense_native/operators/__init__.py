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

The operators live in four modules: ``_base`` (the protocol), ``dense``, ``entries`` (observed
entries and sparse matrices) and ``structured`` (rank-one, identity, matrix-free); every name is
imported here, so ``wnsense_native.operators.X`` is the one spelling to use.
"""
from __future__ import annotations

from .. import _core  # noqa: F401  (kept importable; each module below binds its own)
from ._base import (_MAX_SIDE, PreparedMeasurements, ResidualPass, SensingOperator, _sizes,
                    _thin, _thin_ok)
from .dense import (_DTYPES, DenseSensing, _asymmetry, _is_symmetric, _packed_rows,
                    _stack_sizes, _storage_key, _symmetric_stack, dense_sensing,
                    gaussian_sensing)
from .entries import (EntrySampling, SparseSensing, _index_array, _observed_entries,
                      _shape_pair, _SortedMeasurements, _Sparse, completion_sensing,
                      entry_sampling, sparse_sensing)
from .structured import (IdentitySensing, MatrixFreeSensing, RankOneSensing, _checked_output,
                         _private_copy, identity_sensing, matrix_free_sensing,
                         rank_one_measurements, rank_one_sensing)

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
