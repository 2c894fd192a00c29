"""Helpers shared by the benchmark scripts: timing and the memory-bandwidth roofline."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from wnsense_native import _core
from wnsense_native.experiments._base import format_table

# (dtype, packed) of the dense storages every benchmark compares
STORAGES = [("float64", False), ("float32", False), ("float64", True), ("float32", True)]


def parse_args(ap, argv=None):
    """``ap.parse_args(argv)``; with ``WNSENSE_PARSE_ONLY`` set, exit right after parsing (the
    test that the README's quoted bench commands still run checks their flags this way)."""
    args = ap.parse_args(argv)
    if os.environ.get("WNSENSE_PARSE_ONLY"):
        print(f"parsed {os.path.basename(sys.argv[0])}")
        sys.exit(0)
    return args


def run_times(fn, repeat, warmup=1):
    """Wall times of ``repeat`` runs of ``fn()`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def best_time(fn, repeat=7, warmup=1):
    """Minimum wall time of ``fn()`` over ``repeat`` runs (the least disturbed run)."""
    return min(run_times(fn, repeat, warmup))


def read_bandwidth(nbytes=800_000_000, n_threads=None, repeat=7):
    """Read bandwidth in bytes/s of a float64 array of ``nbytes`` (4 streams per thread)."""
    x = np.ones(nbytes // 8)
    nt = 0 if n_threads is None else n_threads
    return x.nbytes / best_time(lambda: _core.testing.stream_read_sum(x, nt), repeat)


def table(rows, headers):
    return format_table(headers, rows)


def constant_step_start(solve, op, y, rank, **options):
    """A warm start for per-iteration timings: five default-rule iterations, then their last
    step as a constant step (``solve(..., **constant_step_start(...))`` times the iteration
    without step-size search)."""
    res = solve(op, y, rank, rng=3, max_iter=5, tol=0, **options)
    return {"step_size": float(res.history["step_size"][-1]) or 1e-3, "init": res.factors}


def per_iteration(solve, op, y, rank, iters=10, repeat=3, **options):
    """Seconds per iteration of ``solve`` (``wn.solve`` or ``wn.reference.solve``) at a constant
    step from :func:`constant_step_start`: the median of the driver's own per-iteration clock
    (``history["time"]``), best of ``repeat`` solves. This is the marginal cost of an iteration,
    without the once-per-solve validation and first residual evaluation (wall time / iterations
    would add 1/iters of a pass)."""
    start = constant_step_start(solve, op, y, rank, **options)
    best = np.inf
    for _ in range(repeat):
        res = solve(op, y, rank, rng=3, max_iter=iters, tol=0, **options, **start)
        best = min(best, float(np.median(np.diff(res.history["time"]))))
    return best
