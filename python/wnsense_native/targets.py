"""Ground-truth generators."""
from __future__ import annotations

import numpy as np

from ._random import as_generator
from ._validation import check_choice, check_float, check_int


def qf(B: np.ndarray) -> np.ndarray:
    """The Q factor of ``B = Q R`` with the signs fixed so that ``diag(R) >= 0`` (the same basis
    whatever LAPACK's sign convention): the one sign fix of the library's numpy code."""
    Q, R = np.linalg.qr(B)
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def random_orthonormal(d: int, r: int, gen: np.random.Generator) -> np.ndarray:
    """A ``d x r`` matrix with orthonormal columns, uniform (Haar) on the Stiefel manifold:
    the sign-fixed Q factor (:func:`qf`) of an i.i.d. Gaussian matrix."""
    return np.ascontiguousarray(qf(gen.standard_normal((d, r))))


def low_rank_target(d, rank, kappa=1.0, *, d2=None, spectrum="linspace", rng=None) -> np.ndarray:
    """``Z* = U diag(sigma) U^T`` (or ``U diag(sigma) V^T`` when ``d2`` is given).

    ``sigma = linspace(1, 1/kappa, rank)`` by default, ``geomspace`` with ``spectrum="geomspace"``;
    ``U``, ``V`` uniform random orthonormal. The condition number is ``kappa``.
    """
    d = check_int("d", d, minimum=1)
    dd2 = d if d2 is None else check_int("d2", d2, minimum=1)
    rank = check_int("rank", rank, minimum=1, maximum=min(d, dd2))
    kappa = check_float("kappa", kappa, minimum=1.0)
    spectrum = check_choice("spectrum", spectrum, {"linspace", "geomspace"})
    gen = as_generator(rng)
    sigma = (np.linspace if spectrum == "linspace" else np.geomspace)(1.0, 1.0 / kappa, rank)
    U = random_orthonormal(d, rank, gen)
    if d2 is None:
        Z = (U * sigma) @ U.T
        return 0.5 * (Z + Z.T)
    V = random_orthonormal(dd2, rank, gen)
    return (U * sigma) @ V.T
