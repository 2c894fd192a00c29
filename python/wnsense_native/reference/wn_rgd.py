"""WN-RGD on the numpy backend, to be read against SPEC section 3.1:

    Z = X Theta X^T,  X on St(d, r),  Theta symmetric r x r
    S = sym(A*(A(Z) - y)),  f = 1/4 ||A(Z) - y||^2
    grad_X f = S X Theta,  grad_Theta f = 1/2 X^T S X
    1. Gt = S X Theta                    (Euclidean gradient in X; S X when preconditioned)
    2. G  = Gt - X sym(X^T Gt)           (Riemannian gradient: tangent projection)
    3. X+ = Retr_X(-eta G)               (polar | qr | cayley)
    4. Theta+ = Theta - mu/2 X+^T S(X+, Theta) X+     (magnitude step with the new direction)

The method (options, start, gradients, the step-size search along the retraction, the magnitude
step) is :class:`wnsense_native.solvers.wn_rgd.WNRGD`, the same class for both backends; this one
runs it on the numpy backend (:mod:`._backend`: the Stiefel tools in numpy, the numpy oracle).
"""
from __future__ import annotations

from ..solvers import wn_rgd as _wn_rgd
from ..solvers.models import tangent_projection  # noqa: F401  (re-exported)
from ._backend import (NUMPY, cayley_retraction, polar_retraction,  # noqa: F401
                       qr_retraction, retract)

WNRGD = NUMPY.specialize(_wn_rgd.WNRGD)
