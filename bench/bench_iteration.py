"""One solver iteration against one forward pass, measured in the same run.

    python bench/bench_iteration.py [--d 100 --m 20000 --rank 10]

Prints, per storage, the forward-pass time, the fused residual+adjoint pass and the per-iteration
times of WN-RGD (the paper's Algorithm 1, ``variant="paper"``), of the library's default WN-LBFGS
(project addition) and of GD (constant step, warm-started, so no step-size search) as multiples
of it, and the Python loop overhead per iteration on the population operator (d = 10), where no
data is streamed. A WN-RGD iteration is two fused passes, a WN-LBFGS and a GD iteration one, so
the last columns, the WN-RGD iteration over two fused passes and the WN-LBFGS iteration over one,
are what the loop and the small dense algebra add.
The read probe is printed before and after: the fused pass re-reads each block of rows from the
core's L2, so its cost relative to a forward pass grows with the memory bandwidth of the moment.
"""
from __future__ import annotations

import argparse

import wnsense_native as wn
import numpy as np
from _common import STORAGES, best_time, parse_args, per_iteration, read_bandwidth, table

from wnsense_native._blas import single_threaded_blas


def print_probe():
    bw = read_bandwidth()
    print(f"read bandwidth probe (OpenMP's default thread count): {bw / 1e9:.1f} GB/s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--m", type=int, default=20000)
    ap.add_argument("--rstar", type=int, default=5)
    ap.add_argument("--rank", type=int, default=10)
    args = parse_args(ap, argv)
    Zs = wn.low_rank_target(args.d, args.rstar, 5.0, rng=1)
    print_probe()
    X = np.linalg.qr(np.random.default_rng(0).standard_normal((args.d, args.rank)))[0]
    rows = []
    for dtype, packed in STORAGES:
        op = wn.gaussian_sensing(args.d, args.m, dtype=dtype, packed=packed, rng=2)
        y = op.forward(Zs)
        with single_threaded_blas():  # as in wn.solve, for both passes
            t_fwd = best_time(lambda: op.forward(Zs))
            # the pass WN-RGD makes: at Z = X X^T, with the thin product S X
            t_fused = best_time(lambda: op._residual(X, X, y, X, None))
        t_wn = per_iteration(wn.solve, op, y, args.rank, method="wn_rgd", variant="paper")
        t_lb = per_iteration(wn.solve, op, y, args.rank, method="wn_rgd")
        t_gd = per_iteration(wn.solve, op, y, args.rank, method="gd")
        rows.append([dtype, "packed" if packed else "full", f"{t_fwd * 1e3:.1f}",
                     f"{t_fused * 1e3:.1f} ({t_fused / t_fwd:.2f}x)",
                     f"{t_wn * 1e3:.1f} ({t_wn / t_fwd:.2f}x)",
                     f"{t_lb * 1e3:.1f} ({t_lb / t_fwd:.2f}x)",
                     f"{t_gd * 1e3:.1f} ({t_gd / t_fwd:.2f}x)", f"{t_wn / (2 * t_fused):.2f}",
                     f"{t_lb / t_fused:.2f}"])
        del op
    print(f"d={args.d} m={args.m} r={args.rank}")
    print(table(rows, ["storage", "layout", "forward ms", "fused ms (x fwd)",
                       "WN-RGD iter ms (x fwd)", "WN-LBFGS iter ms (x fwd)", "GD iter ms (x fwd)",
                       "WN-RGD / 2 fused", "WN-LBFGS / fused"]))
    print_probe()
    pop = wn.identity_sensing(10)
    Zp = wn.low_rank_target(10, 3, 50.0, rng=0)
    # WN-LBFGS reaches the rounding floor in a few iterations and stops there with its default
    # rule: its loop overhead is timed at the constant full step (its default rule's first trial)
    for name, kw in (("wn_rgd", {"method": "wn_rgd", "variant": "paper"}),
                     ("wn_lbfgs (step 1)", {"method": "wn_rgd", "step_size": 1.0}),
                     ("gd", {"method": "gd"})):
        res = wn.solve(pop, pop.forward(Zp), 5, rng=1, max_iter=5000, tol=0, **kw)
        print(f"loop overhead, {name}, population d=10: "
              f"{res.time / res.nit * 1e6:.1f} us/iteration ({res.nfev / res.nit:.2f} "
              "residual evaluations/iteration)")


if __name__ == "__main__":
    main()
