"""Argument checking and dispatch shared by :func:`wnsense_native.solve` and
:func:`wnsense_native.reference.solve` (same signature, same validation, same starting point)."""
from __future__ import annotations

import time

from .._lowrank import Target
from .._random import as_generator
from .._validation import as_vector, check_float, check_int, check_threads, thread_scope
from ..operators import SensingOperator
from ._driver import run
from ._policy import preferred_options
from ._problem import Problem
from ._registry import resolve
from ._steps import ArmijoBacktracking, make_step_rule


def solve_with(registry, make_residual_fn, op, y, rank, *, method="wn_rgd", max_iter=1000,
               tol=1e-10, step_size=None, rng=None, init=None, x_true=None, callback=None,
               n_threads=None, gtol=0.0, xtol=0.0, max_time=None, progress=False,
               validation=None, patience=10, expected_rank=None, **method_options):
    if not isinstance(op, SensingOperator):
        raise TypeError(f"op must be a sensing operator (e.g. wn.gaussian_sensing), "
                        f"got {type(op).__name__}")
    m, d1, d2 = op.shape
    y = as_vector("y", y, m)
    rank = check_int("rank", rank, minimum=1, maximum=min(d1, d2))
    method, factory = resolve(registry, method)   # "wn" is "wn_rgd" (its honest name)
    max_iter = check_int("max_iter", max_iter, minimum=0)
    tol = check_float("tol", tol, minimum=0.0)
    gtol = check_float("gtol", gtol, minimum=0.0)
    xtol = check_float("xtol", xtol, minimum=0.0)
    if max_time is not None:
        max_time = check_float("max_time", max_time, minimum=0.0)
    if step_size is not None:
        step_size = check_float("step_size", step_size, minimum=0.0, strict_minimum=True)
    if x_true is not None:
        x_true = Target(x_true, (d1, d2))      # a dense array or factors (U, V)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    n_threads = check_threads(n_threads)
    if expected_rank is not None:
        expected_rank = check_int("expected_rank", expected_rank, minimum=1)
    gen = as_generator(rng)

    val_problem = None
    if validation is not None:
        val_problem = _validation_problem(validation, op, make_residual_fn, n_threads)
        patience = check_int("patience", patience, minimum=1)

    with_options = getattr(factory, "with_options", False)
    if with_options:
        method_options = _operator_defaults(factory, op, method, method_options)
    cls = factory(op.symmetric, method_options) if with_options else factory(op.symmetric)
    unknown = set(method_options) - set(cls.OPTIONS)
    if unknown:
        which = (f"method={method!r}, variant={cls.OPTIONS['variant']!r}"
                 if "variant" in cls.OPTIONS else f"method={method!r}")
        raise TypeError(f"unknown option(s) {sorted(unknown)} for {which}; "
                        f"valid options: {sorted(cls.OPTIONS)}")
    options = {**cls.OPTIONS, **method_options}
    problem = Problem(op, y, make_residual_fn(op, y, n_threads))
    rule = make_step_rule(step_size, getattr(cls, "default_step_rule", ArmijoBacktracking))
    with thread_scope(n_threads):   # kernels without a thread count of their own use n_threads
        t_start = time.perf_counter()  # the start-up passes count in res.time and max_time
        solver = cls(problem, rank, gen, init, rule, **options)
        rule.deadline = None if max_time is None else t_start + max_time   # checked in searches
        return run(solver, problem, method_name=method, max_iter=max_iter, tol=tol, gtol=gtol,
                   xtol=xtol, max_time=max_time, callback=callback, x_true=x_true,
                   progress=progress, validation=val_problem, patience=patience,
                   expected_rank=expected_rank, t_start=t_start)


def _operator_defaults(factory, op, method, options):
    """The options the library prefers for ``method`` on ``op`` (:mod:`._policy`), under the
    caller's: applied only when the caller chose no class (``factory.selectors``) and every
    option they gave is one the preferred class takes (so an option of the general default
    still selects that one)."""
    preferred = preferred_options(op, method)
    if not preferred or set(factory.selectors) & set(options):
        return options
    merged = {**preferred, **options}
    if set(options) - set(factory(op.symmetric, merged).OPTIONS):
        return options
    return merged


def _validation_problem(validation, op, make_residual_fn, n_threads):
    """``validation=(op_val, y_val)``: held-out measurements of the same unknown matrix."""
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise TypeError("validation must be a pair (op_val, y_val) of held-out measurements")
    op_val, y_val = validation
    if not isinstance(op_val, SensingOperator):
        raise TypeError(f"validation[0] must be a sensing operator, got {type(op_val).__name__}")
    if op_val.shape[1:] != op.shape[1:] or op_val.symmetric != op.symmetric:
        raise ValueError(f"validation[0] must measure the same {op.shape[1]} x {op.shape[2]} "
                         f"{'symmetric' if op.symmetric else 'rectangular'} family as op")
    y_val = as_vector("validation[1]", y_val, op_val.shape[0])
    return Problem(op_val, y_val, make_residual_fn(op_val, y_val, n_threads),
                   name="validation[1]")
