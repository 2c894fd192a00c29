"""PrecGD and ScaledGD(lambda) on the numpy backend (SPEC 3.2): the methods of
:mod:`wnsense_native.solvers.precgd`, whose preconditioner ``grad (P^T P + lambda I)^{-1}`` the
numpy backend forms with an explicit inverse."""
from __future__ import annotations

from ..solvers import precgd as _precgd
from ._backend import NUMPY

SymmetricPrecGD = NUMPY.specialize(_precgd.SymmetricPrecGD)
RectangularPrecGD = NUMPY.specialize(_precgd.RectangularPrecGD)
SymmetricScaledGD = NUMPY.specialize(_precgd.SymmetricScaledGD)
RectangularScaledGD = NUMPY.specialize(_precgd.RectangularScaledGD)


def precgd_for(symmetric: bool):
    return SymmetricPrecGD if symmetric else RectangularPrecGD


def scaledgd_for(symmetric: bool):
    return SymmetricScaledGD if symmetric else RectangularScaledGD
