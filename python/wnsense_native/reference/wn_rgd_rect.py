"""Rectangular WN-RGD on the numpy backend. A project addition, not from the paper; read against
:mod:`wnsense_native.solvers.wn_rgd_rect`:

    Z = X_L Theta X_R^T,  X_L on St(d1, r),  X_R on St(d2, r),  Theta general r x r
    E = A*(A(Z) - y),  f = 1/2 ||A(Z) - y||^2
    grad_XL f = E X_R Theta^T,  grad_XR f = E^T X_L Theta,  grad_Theta f = X_L^T E X_R

The method is :class:`wnsense_native.solvers.wn_rgd_rect.RectangularWNRGD` on the numpy backend.
"""
from __future__ import annotations

from ..solvers import wn_rgd_rect as _rect
from ._backend import NUMPY, retract  # noqa: F401
from .wn_rgd import tangent_projection  # noqa: F401

RectangularWNRGD = NUMPY.specialize(_rect.RectangularWNRGD)
