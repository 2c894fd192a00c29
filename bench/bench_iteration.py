"""One solver iteration against one forward pass, measured in the same run.

    python bench/bench_iteration.py [--d 100 --m 20000 --rank 10]

Prints, per storage, the forward-pass time, the WN-RGD and GD per-iteration times (constant step,
warm-started, so no step-size search) as multiples of it, and the Python loop overhead per
iteration on the population operator (d = 10), where no data is streamed.
"""
from __future__ import annotations

import argparse

import wnsense_native as wn
from _common import STORAGES, best_time, constant_step_start, table


def per_iteration(op, y, rank, method, iters=10):
    start = constant_step_start(wn.solve, op, y, rank, method=method)
    run = lambda: wn.solve(op, y, rank, method=method, rng=3, max_iter=iters, tol=0,  # noqa: E731
                           **start)
    return best_time(run, repeat=3) / iters


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--m", type=int, default=20000)
    ap.add_argument("--rstar", type=int, default=5)
    ap.add_argument("--rank", type=int, default=10)
    args = ap.parse_args(argv)
    Zs = wn.low_rank_target(args.d, args.rstar, 5.0, rng=1)
    rows = []
    for dtype, packed in STORAGES:
        op = wn.gaussian_sensing(args.d, args.m, dtype=dtype, packed=packed, rng=2)
        y = op.forward(Zs)
        t_fwd = best_time(lambda: op.forward(Zs))
        t_wn = per_iteration(op, y, args.rank, "wn_rgd")
        t_gd = per_iteration(op, y, args.rank, "gd")
        rows.append([dtype, "packed" if packed else "full", f"{t_fwd * 1e3:.1f}",
                     f"{t_wn * 1e3:.1f} ({t_wn / t_fwd:.2f}x)",
                     f"{t_gd * 1e3:.1f} ({t_gd / t_fwd:.2f}x)"])
        del op
    print(f"d={args.d} m={args.m} r={args.rank}")
    print(table(rows, ["storage", "layout", "forward ms", "WN-RGD iter ms (x fwd)",
                       "GD iter ms (x fwd)"]))
    pop = wn.identity_sensing(10)
    Zp = wn.low_rank_target(10, 3, 50.0, rng=0)
    for method in ("wn_rgd", "gd"):
        res = wn.solve(pop, pop.forward(Zp), 5, method=method, rng=1, max_iter=5000, tol=0)
        print(f"loop overhead, {method}, population d=10: "
              f"{res.time / res.nit * 1e6:.1f} us/iteration ({res.nfev / res.nit:.2f} "
              "residual evaluations/iteration)")


if __name__ == "__main__":
    main()
