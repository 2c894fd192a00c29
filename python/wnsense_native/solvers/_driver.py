"""The iteration loop shared by every method and both backends: stopping rules, history,
callback, time limit, divergence handling and the result object."""
from __future__ import annotations

import logging
import math
import time

import numpy as np

from .._lowrank import lowrank_distance, lowrank_norm
from .._progress import progress_bar
from ..result import SolveResult
from . import fit_report
from ._steps import TimeUp

logger = logging.getLogger("wnsense_native")

# A loss this many times the loss at Z = 0 counts as divergence (the zero matrix is always a
# reference point every method can beat).
EXPLODE_FACTOR = 1e12


class _History:
    def __init__(self, target):
        self.target = target     # a .._lowrank.Target or None
        self.cols: dict[str, list] = {}
        self.overhead = 0.0  # seconds spent in opt-in diagnostics, kept out of "time"

    def record(self, method, problem, t):
        t -= self.overhead
        add = self.cols.setdefault
        add("loss", []).append(method.loss)
        add("grad_norm", []).append(method.grad_norm)
        add("step_size", []).append(method.step_size)
        add("residual_norm", []).append(problem.relative_residual(method.sumsq))
        add("time", []).append(t)
        add("nfev", []).append(problem.nfev)      # passes over the data so far
        if self.target is not None:   # from the factors: the model is never formed
            add("rel_error", []).append(self.target.relative_error(*method.lowrank()))
        for k, v in method.extra_history().items():
            add(k, []).append(v)
        if method.diagnostics is not None:
            t0 = time.perf_counter()
            for k, v in method.diagnostics.record(method).items():
                add(k, []).append(v)
            self.overhead += time.perf_counter() - t0

    def drop_last(self):
        for v in self.cols.values():
            v.pop()

    def arrays(self):
        return {k: np.asarray(v, dtype=float) for k, v in self.cols.items()}


class _EarlyStopping:
    """Held-out measurements (a :class:`~._problem.Problem` on the validation operator): the
    relative validation residual of every iterate (one forward pass, no products), the best
    iterate so far, and the iterations since it improved."""

    def __init__(self, problem, patience):
        self.problem, self.patience = problem, patience
        self.best, self.best_nit, self.best_snapshot = math.inf, 0, None

    def record(self, method, nit, cols):
        sumsq = self.problem.residual(*method.lowrank()).sumsq
        value = self.problem.relative_residual(sumsq)
        cols.setdefault("validation_residual", []).append(value)
        if value < self.best:
            self.best, self.best_nit, self.best_snapshot = value, nit, method.snapshot()
        return nit - self.best_nit >= self.patience


def run(method, problem, *, method_name, max_iter, tol, gtol, xtol, max_time, callback,
        x_true, progress=False, validation=None, patience=10, expected_rank=None,
        t_start=None) -> SolveResult:
    """Drive ``method`` to a stop; ``x_true`` is a :class:`~.._lowrank.Target` or None;
    ``validation`` a :class:`~._problem.Problem` of held-out measurements or None.
    ``t_start``: when the solve started (``time.perf_counter()``, before the method's start-up
    passes, which then count in ``time`` and against ``max_time``); None: now."""
    if t_start is None:
        t_start = time.perf_counter()
    history = _History(x_true)
    early = _EarlyStopping(validation, patience) if validation is not None else None
    method.set_reference(x_true)
    history.record(method, problem, time.perf_counter() - t_start)
    if early is not None:
        early.record(method, 0, history.cols)
    loss_at_zero = problem.loss(problem.y_norm ** 2)
    explode = EXPLODE_FACTOR * max(loss_at_zero, method.loss, 1e-300)
    bar = progress_bar(progress, max_iter, "it")
    nit, reason = 0, None
    try:
        while reason is None:
            if problem.relative_residual(method.sumsq) <= tol:
                reason = "tol"
            elif gtol > 0 and method.grad_norm <= gtol:
                reason = "gtol"
            elif nit >= max_iter:
                reason = "max_iter"
            elif max_time is not None and time.perf_counter() - t_start >= max_time:
                reason = "max_time"
            if reason:
                break
            before = method.snapshot()
            before_lowrank = method.lowrank() if xtol > 0 else None
            try:
                ok = method.step()
            except TimeUp:                      # max_time ran out inside a step search
                method.restore(before)
                reason = "max_time"
                break
            if not math.isfinite(method.loss) or method.loss > explode:
                method.restore(before)
                reason = "diverged"
                break
            nit += 1
            history.record(method, problem, time.perf_counter() - t_start)
            stalled = early is not None and early.record(method, nit, history.cols)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{method.loss:.3e}", refresh=False)
            if not ok:
                reason = "step_failed"
            elif stalled:
                reason = "validation"
            elif xtol > 0:
                change = lowrank_distance(*method.lowrank(), *before_lowrank)
                if change <= xtol * max(lowrank_norm(*before_lowrank), 1e-300):
                    reason = "xtol"
            if callback is not None and reason is None:
                try:
                    callback(_intermediate(method, nit))
                except StopIteration:
                    reason = "callback"
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t_start
    extra = {}
    if early is not None:
        # the best-validation iterate, whatever stopped the run (history stays complete)
        method.restore(early.best_snapshot)
        extra = {"best_iteration": early.best_nit, "validation_residual": early.best,
                 "nfev_validation": early.problem.nfev}
    result = SolveResult.finished(
        reason, fun=float(method.loss), nit=nit, nfev=problem.nfev, method=method_name,
        factors={k: np.array(v) for k, v in method.factors.items()},
        residual_norm=problem.relative_residual(method.sumsq), time=elapsed,
        history=history.arrays(), **extra)
    result.set_lowrank(*(np.array(F) for F in method.lowrank()))   # x formed when read
    if method.label:
        result.variant = method.label
        result.message = f"{result.message} [{method.label}]"
    # the spectrum, the effective rank, and a suspect fit said as such (fit_report.py)
    fit_report.report(result, *result._lowrank, expected_rank=expected_rank)
    logger.info("%s: %s after %d iterations (%.3g s)", method_name, result.message, nit, elapsed)
    return result


def _intermediate(method, nit):
    return SolveResult(fun=float(method.loss), nit=nit, factors=method.factors,
                       grad_norm=method.grad_norm,
                       step_size=method.step_size).set_lowrank(*method.lowrank())
