"""Backends: what differs between :func:`wnsense_native.solve` (native kernels) and
:func:`wnsense_native.reference.solve` (plain numpy). The method classes and their loops are the
same; a backend supplies only

- the residual oracle ``make_residual(op, y, n_threads)`` (the operator's own pass, or numpy's),
- the few primitives the loops call through ``self.backend``: the Stiefel tangent projection and
  retractions, the squared norm of the WN gradient, the factorized methods' preconditioner solve,
- the classes that are backend-specific as a whole (``classes``: WN-LBFGS, whose geometry
  object is the backend's; the SNN, whose forward and backward passes are), and per-class
  overrides where the numpy arithmetic is its own
  (``overrides``: class -> attributes; e.g. the column-by-column gradient of column-wise WN).

:meth:`Backend.specialize` turns a method class (whose ``backend`` is :data:`NATIVE`) into the
same class on another backend, once. The numpy backend lives in
:mod:`wnsense_native.reference._backend` (it must not import ``_core``).
"""
from __future__ import annotations

import numpy as np

from .. import _core


def _contiguous(a):
    return None if a is None else np.ascontiguousarray(a)


def native_residual(op, y, n_threads):
    """The oracle ``fn(L, R, measured, right, left)`` of :class:`~._problem.Problem`: the
    operator's own pass (:meth:`~wnsense_native.SensingOperator.thin_pass`) against its
    measurements, prepared once (``fn.measurements``)."""
    prepared = op.prepare(y)

    def residual(L, R, measured, right, left):
        return op.thin_pass(np.ascontiguousarray(L), np.ascontiguousarray(R),
                            prepared if measured else None, _contiguous(right),
                            _contiguous(left), n_threads)

    residual.measurements = prepared
    return residual


def native_retract(kind, X, G_dir, Gt, eta):
    """``Retr_X(-eta G_dir)``: polar / QR move along the tangent ``-G_dir``; Cayley is built from
    the Euclidean ``Gt``."""
    if kind == "polar":
        return _core.polar_retraction(X, G_dir, eta)
    if kind == "qr":
        return _core.qr_retraction(X, G_dir, eta)
    return _core.cayley_retraction(X, Gt, eta)


class Backend:
    """One backend (see the module docstring). Subclasses or instances set the primitives."""

    name = ""
    module = __name__          # where its specialized classes say they live

    def __init__(self):
        self._classes: dict = {}
        self.overrides: dict = {}      # method class -> {attribute: value} on this backend
        # the classes that are backend-specific as a whole: "lbfgs" -> (symmetric, rectangular)
        # WN-LBFGS classes, "snn" -> the SNN class (filled where those classes are defined:
        # the registry for this backend, the reference package for numpy)
        self.classes: dict = {}

    def make_residual(self, op, y, n_threads):
        raise NotImplementedError

    # -- primitives ------------------------------------------------------------------------
    @staticmethod
    def tangent_projection(X, B):
        raise NotImplementedError

    @staticmethod
    def retract(kind, X, G_dir, Gt, eta):
        raise NotImplementedError

    @staticmethod
    def sqnorm(a) -> float:
        """``||a||_F^2`` (the WN gradient norm)."""
        raise NotImplementedError

    @staticmethod
    def precondition(g, gram):
        """``g gram^{-1}`` for a symmetric positive definite ``gram``."""
        raise NotImplementedError

    def specialize(self, cls):
        """``cls`` (a method class of the native backend) on this backend: a subclass with
        ``backend = self`` and this backend's overrides for it, made once."""
        if getattr(cls, "backend", None) is self:
            return cls
        if cls not in self._classes:
            attrs = {"backend": self, "__module__": self.module, "__doc__": cls.__doc__,
                     **self.overrides.get(cls, {})}
            self._classes[cls] = type(cls.__name__, (cls,), attrs)
        return self._classes[cls]


class NativeBackend(Backend):
    """The native kernels (``_core``) and the operators' own fused passes."""

    name = "native"

    def make_residual(self, op, y, n_threads):
        return native_residual(op, y, n_threads)

    @staticmethod
    def tangent_projection(X, B):
        return _core.tangent_projection(X, np.ascontiguousarray(B))

    retract = staticmethod(native_retract)

    @staticmethod
    def sqnorm(a):
        return np.vdot(a, a)

    @staticmethod
    def precondition(g, gram):
        return np.linalg.solve(gram, g.T).T       # gram is symmetric


NATIVE = NativeBackend()
