"""The variants of the WN family (``method="wn"`` / ``"wn_rgd"``), in one table: the direction
strategies of the WN-RGD loop (:mod:`.wn_rgd`, :mod:`.wn_rgd_rect`) and WN-LBFGS, a method of its
own (:mod:`.wn_lbfgs`). Adding a direction: one :class:`Direction` subclass and one line of
:data:`WN_VARIANTS`; the registry (:mod:`._registry`) runs it in the WN-RGD classes on every
backend.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_choice

# -- direction strategies ---------------------------------------------------------------------

class Direction:
    """How the WN-RGD loop turns the Euclidean gradient of a Stiefel factor into its search
    direction. ``gradient(grad, partial)`` returns the Euclidean direction gradient ``Gt`` from
    ``grad`` (``grad_X f``, e.g. ``S X Theta``) and ``partial`` (the same product without the
    ``Theta`` factor, ``S X``); polar and QR move along its tangent projection, Cayley is built
    from ``Gt``. A new direction of the WN-RGD loop is one subclass and one line of
    :data:`WN_VARIANTS`."""

    name = ""
    label = ""
    learns_mu = False        # mu=None selects the learned magnitude step mu="auto"
    safeguarded = False      # fall back to the gradient where the direction ascends

    @staticmethod
    def gradient(grad, partial):
        return grad

    @staticmethod
    def first_trial(Theta):
        """First trial of the step-size search (a callable: evaluated only when read)."""
        return lambda: 1.0 / np.linalg.norm(Theta, 2) ** 2


class RiemannianGradient(Direction):
    """The paper's Algorithm 1: the Riemannian gradient ``P_X(S X Theta)``; first trial step
    ``1/||Theta||_2^2``."""

    name = "paper"
    label = "WN-RGD, the paper's Algorithm 1"


class ThetaPreconditioned(Direction):
    """Direction ``P_X(S X)`` (``Theta`` dropped; project addition, not from the paper): removes a
    factor kappa from the rate. First trial step 1, the learned magnitude step by default, and the
    gradient this step where ``S X`` ascends (``Theta`` indefinite)."""

    name = "preconditioned"
    label = "WN-RGD, Theta-preconditioned (direction S X; project addition, not from the paper)"
    learns_mu = True
    safeguarded = True

    @staticmethod
    def gradient(grad, partial):
        return partial

    @staticmethod
    def first_trial(Theta):
        return 1.0


class GaussNewtonLBFGS:
    """WN-LBFGS (:mod:`.wn_lbfgs`): Riemannian L-BFGS in a Gauss-Newton metric, a method class
    of its own on each backend (``backend.classes["lbfgs"]``)."""

    name = "lbfgs"

    @staticmethod
    def classes(backend) -> tuple:
        return backend.classes["lbfgs"]


# method="wn" / "wn_rgd" variants, the one registry: the default (WN-LBFGS, this project's
# addition), the paper's Algorithm 1, and the Theta-preconditioned alternating method (project
# addition)
WN_VARIANTS = {"lbfgs": GaussNewtonLBFGS, "paper": RiemannianGradient,
               "preconditioned": ThetaPreconditioned}
DEFAULT_WN_VARIANT = "lbfgs"


def wn_variant(options: dict) -> str:
    """The variant ``options`` select (the one place it is resolved): ``variant`` (default
    ``"lbfgs"``), or ``preconditioned=True`` (the older spelling of
    ``variant="preconditioned"``)."""
    variant = check_choice("variant", options.get("variant", DEFAULT_WN_VARIANT), WN_VARIANTS)
    if options.get("preconditioned", False):
        if "variant" in options and variant != "preconditioned":
            raise ValueError(f"preconditioned=True selects variant='preconditioned', which "
                             f"contradicts variant={variant!r}")
        variant = "preconditioned"
    return variant
