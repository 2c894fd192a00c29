"""Threads on a shared machine: the default thread count against one thread, with one core kept
busy by another process and without.

    python bench/bench_threads_under_load.py [--quick] [--repeat 3] [--only NAME ...]

Runs each workload with ``n_threads=None`` (the default: OpenMP's count) and ``n_threads=1``,
first on the machine as it is ("idle": whatever else runs there keeps running), then with a CPU
hog this script starts itself (``python -c "while True: pass"``, one process, killed at the end
whatever happens). Each time is the median of ``--repeat`` runs, default and one thread
interleaved. Prints the seconds and the ratio default / one thread per phase; the target is a
ratio of at most 1.3 under load, and a default no slower than before when idle (compare the idle
column of two checkouts: ``PYTHONPATH=<checkout>/python python bench/...``).

Workloads: the README's Quick start (d = 40, m = 960: the default WN-LBFGS solve, the paper's
Algorithm 1 and GD, 1000 iterations each), one run of ``reproduce fig2b`` (d = 40, m = 1000,
r = 10, the paper's WN-RGD, 2000 iterations), and residual passes (with a thin product) of the
Quick start's operator, of a larger Gaussian operator (d = 100, m = 5000, packed: 2.5e7 stored
numbers) and of observed entries (2e4 x 2e4, m = 2e6, k = 10), where threads should still pay.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
from _common import parse_args, table

import wnsense_native as wn

HOG = "while True: pass"


def _quick_start_problem():
    Zs = wn.low_rank_target(40, 3, kappa=100, rng=0)
    op = wn.gaussian_sensing(40, 960, rng=1)
    return op, op.forward(Zs), Zs


def _quick_start(method, quick):
    op, y, Zs = _quick_start_problem()
    if method == "default":
        return lambda nt: wn.solve(op, y, rank=6, rng=2, x_true=Zs, n_threads=nt)
    it = 200 if quick else 1000
    opts = {"variant": "paper"} if method == "paper" else {"method": "gd"}
    return lambda nt: wn.solve(op, y, rank=6, rng=2, x_true=Zs, max_iter=it, n_threads=nt, **opts)


def _fig2b(quick):
    Zs = wn.low_rank_target(40, 5, 10.0, rng=0)
    op = wn.gaussian_sensing(40, 1000, rng=1)
    y = op.forward(Zs)
    it = 300 if quick else 2000
    return lambda nt: wn.solve(op, y, rank=10, rng=3, x_true=Zs, variant="paper", max_iter=it,
                               tol=1e-10, n_threads=nt)


def _gaussian_passes(d, m, packed, n):
    op = wn.gaussian_sensing(d, m, rng=1, packed=packed)
    L = np.random.default_rng(0).standard_normal((d, 6))
    y = np.zeros(m)
    return lambda nt: [op.residual(L, L, y, right=L, n_threads=nt) for _ in range(n)]


def _entry_passes(d, m, n):
    g = np.random.default_rng(0)
    op = wn.completion_sensing(g.integers(0, d, m), g.integers(0, d, m), (d, d))
    L, R = g.standard_normal((d, 10)), g.standard_normal((d, 10))
    y = op._prepare(op.forward_factored(L, R))
    return lambda nt: [op._residual(L, R, y, R, L, n_threads=nt or 0) for _ in range(n)]


def workloads(quick):
    """{name: builder}: each builder makes its problem and returns ``fn(n_threads)``."""
    it = 200 if quick else 1000
    n = 1 if quick else 5
    return {
        "quick start: default (27 it.)": lambda: _quick_start("default", quick),
        f"quick start: paper ({it} it.)": lambda: _quick_start("paper", quick),
        f"quick start: gd ({it} it.)": lambda: _quick_start("gd", quick),
        f"fig2b run: paper r=10 ({300 if quick else 2000} it.)": lambda: _fig2b(quick),
        f"{60 * n} passes d=40 m=960": lambda: _gaussian_passes(40, 960, False, 60 * n),
        f"{n} passes d=100 m=5000 packed": lambda: _gaussian_passes(100, 5000, True, n),
        f"{n} passes entries d=2e4 m=2e6": lambda: _entry_passes(20000, 2_000_000, n),
    }


def median_times(fn, repeat):
    """Median seconds of ``fn(None)`` and ``fn(1)``, interleaved, after one warm-up of each."""
    fn(None), fn(1)
    t = {None: [], 1: []}
    for _ in range(repeat):
        for nt in (None, 1):
            t0 = time.perf_counter()
            fn(nt)
            t[nt].append(time.perf_counter() - t0)
    return float(np.median(t[None])), float(np.median(t[1]))


def start_hog():
    hog = subprocess.Popen([sys.executable, "-c", HOG])
    time.sleep(0.5)  # let it reach the scheduler's steady state
    return hog


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=None, help="substrings of workload names")
    args = parse_args(ap, argv)
    builders = workloads(args.quick)
    work = {name: build() for name, build in builders.items()
            if not args.only or any(s in name for s in args.only)}
    print(f"{os.cpu_count()} CPUs; default threads: OpenMP's count "
          f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} in the environment)")
    results = {}
    for phase in ("idle", "loaded"):
        hog = start_hog() if phase == "loaded" else None
        try:
            for name, fn in work.items():
                results[name, phase] = median_times(fn, args.repeat)
                print(f"  {phase:6s} {name}: default {results[name, phase][0]:.3f} s, "
                      f"1 thread {results[name, phase][1]:.3f} s", flush=True)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    rows = []
    for name in work:
        (di, oi), (dl, ol) = results[name, "idle"], results[name, "loaded"]
        rows.append([name, f"{di:.3f}", f"{oi:.3f}", f"{di / oi:.2f}", f"{dl:.3f}", f"{ol:.3f}",
                     f"{dl / ol:.2f}"])
    print(table(rows, ["workload", "idle default s", "idle 1 thr s", "ratio",
                       "loaded default s", "loaded 1 thr s", "ratio (target <= 1.3)"]))


if __name__ == "__main__":
    main()
