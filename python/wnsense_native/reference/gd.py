"""Factorized gradient descent baselines on the numpy backend (SPEC 3.2):

Symmetric (Burer-Monteiro):  f = 1/4 ||A(Y Y^T) - y||^2,  grad_Y f = S Y,  S = sym(A*(r)),
    Y+ = Y - eta S Y,  small init Y_0 = alpha N(0,1)^{d x r} / sqrt(d).
Asymmetric (Soltanolkotabi, Stoger, Xie 2023):  f = 1/2 ||A(U V^T) - y||^2,  E = A*(r),
    grad_U f = E V,  grad_V f = E^T U,  U+ = U - eta E V,  V+ = V - eta E^T U (simultaneous).

The methods are those of :mod:`wnsense_native.solvers.gd` on the numpy backend; the symmetric
one takes numpy's own Frobenius norm of its gradient.
"""
from __future__ import annotations

import numpy as np

from ..solvers import gd as _gd
from ._backend import NUMPY


def _frobenius(grads):
    return float(np.linalg.norm(grads["Y"]))


NUMPY.overrides[_gd.SymmetricGD] = {"_grad_norm": staticmethod(_frobenius)}
SymmetricGD = NUMPY.specialize(_gd.SymmetricGD)
AsymmetricGD = NUMPY.specialize(_gd.AsymmetricGD)


def gd_for(symmetric: bool):
    return SymmetricGD if symmetric else AsymmetricGD
