"""The contract between a solver method and the shared driver loop."""
from __future__ import annotations

import numpy as np

from ._backend import NATIVE


class Method:
    """One iterative method on one :class:`~._problem.Problem`.

    Construction is shared by every method and both backends: :meth:`_setup` validates the
    method options and returns the starting factors (drawn from ``gen``, or the validated warm
    start ``init``), then :meth:`_begin` evaluates the first residual and adopts the iterate.
    One class per method and model holds the options, the start and the iteration for both
    backends; what differs between the native and the numpy path (kernels, the residual
    oracle) is the class attribute ``backend`` (:mod:`._backend`), set by
    ``Backend.specialize``.

    A subclass sets, after ``__init__`` and after every :meth:`step`: ``factors`` (dict of
    arrays), ``loss``, ``sumsq`` (``||A(Z) - y||^2``), ``grad_norm`` and ``step_size`` (the last
    step taken). Arrays are rebound, never modified in place, so :meth:`snapshot` is a cheap
    shallow copy that lets the driver return the last finite iterate after a divergence.
    """

    name = ""
    backend = NATIVE  # the primitives the loop calls (:mod:`._backend`); Backend.specialize
    label = ""      # which algorithm ran, appended to res.message (set by variants)
    OPTIONS: dict = {}

    def __init__(self, problem, rank, gen, init, step_rule, **options):
        self.problem, self.step_rule = problem, step_rule
        self.step_size = 0.0
        start = self._setup(problem, rank, gen, init, **options)
        self._begin(start)

    @classmethod
    def factor_shapes(cls, problem, rank) -> dict:
        raise NotImplementedError

    def _setup(self, problem, rank, gen, init, **options) -> dict:
        """Validate ``options`` (keeping them as attributes, e.g. ``self.diagnostics``) and
        return the starting factors (name -> array): drawn from ``gen`` when ``init`` is None,
        else the validated warm start."""
        raise NotImplementedError

    def _begin(self, start: dict) -> None:
        """Evaluate the residual at the starting factors and adopt them as the iterate."""
        raise NotImplementedError

    def lowrank(self) -> tuple:
        """The iterate as thin factors ``(L, R)`` with ``Z = L R^T``: what the history, the
        stopping rules and the result use (the driver never forms ``Z``)."""
        raise NotImplementedError

    def x(self) -> np.ndarray:
        """The iterate ``Z`` as a dense ``d1 x d2`` array (for tests and small problems)."""
        L, R = self.lowrank()
        return L @ R.T

    def step(self) -> bool:
        """One iteration; returns False when the step-size search failed to decrease the loss."""
        raise NotImplementedError

    def step_hint(self):
        """First trial of the safeguarded step-size search (a number, or a callable evaluated
        only when the rule reads it; None: 1). One per method class, so that both backends
        take the same decision."""
        return None

    def extra_history(self) -> dict:
        """Per-iteration diagnostics of this method (name -> float), recorded in the history.
        Mixins extend it through ``super()``."""
        return {}

    # opt-in diagnostics (a .diagnostics.Diagnostics built from the method options
    # ``diagnostics`` / ``hessian_every``); the driver records them after extra_history()
    diagnostics = None

    def set_reference(self, x_true) -> None:
        """Driver hook, called once before the first iteration with the ground truth (a
        :class:`~.._lowrank.Target`) or None."""
        if self.diagnostics is not None:
            self.diagnostics.set_reference(x_true)

    def snapshot(self) -> dict:
        return dict(self.__dict__)

    def restore(self, snap: dict) -> None:
        self.__dict__.clear()
        self.__dict__.update(snap)
