"""The one method registry, shared by :func:`wnsense_native.solve` and
:func:`wnsense_native.reference.solve`: method name -> ``entry(backend, symmetric, options)``,
the method class for that backend and family. :func:`bind` gives one backend's view in the form
the front end reads (``NATIVE_METHODS``, ``REFERENCE_METHODS``).

Adding a method: its class (``backend = NATIVE``; the loop calls backend primitives through
``self.backend``) and one line here. Adding a WN direction: :data:`.wn_rgd.WN_VARIANTS`.
"""
from __future__ import annotations

from .._validation import check_choice
from ._backend import NATIVE
from .column_wn import column_wn_for
from .gd import gd_for
from .precgd import precgd_for, scaledgd_for
from .snn import SNN
from .wn_lbfgs import RectangularWNLBFGS, WNLBFGS
from .wn_rgd import WNRGD
from .wn_rgd_rect import RectangularWNRGD
from .wn_variants import WN_VARIANTS, Direction, wn_variant

# the native backend's own classes (the numpy ones: wnsense_native.reference._backend)
NATIVE.classes.update(lbfgs=(WNLBFGS, RectangularWNLBFGS), snn=SNN)


def _plain(choose):
    """An entry whose class depends on the family only."""
    def entry(backend, symmetric, options=None):
        return backend.specialize(choose(symmetric))
    return entry


def _snn(backend, symmetric, options=None):
    return backend.classes["snn"]      # its forward / backward passes are the backend's


def wn_classes(backend, variant) -> tuple:
    """The (symmetric, rectangular) classes that run a WN ``variant`` on ``backend``: the WN-RGD
    loop for a :class:`~.wn_variants.Direction`, else the variant's own classes."""
    entry = WN_VARIANTS[variant]
    if isinstance(entry, type) and issubclass(entry, Direction):
        return backend.specialize(WNRGD), backend.specialize(RectangularWNRGD)
    return entry.classes(backend)


def _wn(backend, symmetric, options=None):
    return wn_classes(backend, wn_variant(options or {}))[0 if symmetric else 1]


_wn.with_options = True
_wn.selectors = ("variant", "preconditioned")   # the options that choose the class

METHODS = {
    "wn_rgd": _wn,
    "gd": _plain(gd_for),
    "precgd": _plain(precgd_for),
    "scaledgd": _plain(scaledgd_for),
    "column_wn": _plain(column_wn_for),
    "snn": _snn,
}


# other names of a registered method: "wn" is the WN family's honest name (its default variant
# is WN-LBFGS, not gradient descent); "wn_rgd", the original spelling, stays the registry's key
ALIASES = {"wn": "wn_rgd"}


def resolve(registry: dict, method):
    """``(name given, registry entry)`` for ``method``, a registered name or an alias; a
    clear error for anything else."""
    method = check_choice("method", method, [*registry, *ALIASES])
    return method, registry[ALIASES.get(method, method)]


class _Bound:
    """``factory(symmetric[, options])``: one registry entry on one backend."""

    def __init__(self, entry, backend):
        self.entry, self.backend = entry, backend
        self.with_options = getattr(entry, "with_options", False)
        self.selectors = getattr(entry, "selectors", ())

    def __call__(self, symmetric, options=None):
        return self.entry(self.backend, symmetric, options)


def bind(backend) -> dict:
    """The registry on ``backend``: method name -> ``factory(symmetric[, options])``."""
    return {name: _Bound(entry, backend) for name, entry in METHODS.items()}
