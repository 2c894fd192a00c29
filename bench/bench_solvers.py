"""Native solvers against the pure-numpy reference (``wn.reference``), in the same run.

    python bench/bench_solvers.py [--d 100 --rstar 5 --rank 10 --m 5000] [--methods wn_rgd gd]

Methods: ``wn_lbfgs`` (``method="wn_rgd"`` with its default options: WN-LBFGS, a project addition),
``wn_rgd`` (the paper's Algorithm 1, ``variant="paper"``), ``wn_rgd_precond``, ``gd``,
``precgd``, ``scaledgd``.

Per method: seconds per iteration (constant step, median of the solver's per-iteration clock),
and iterations and seconds to relative error 1e-8 with the default step rule, native and
reference, and their ratio. Also the dense passes per iteration (nfev / nit) of the native path.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import wnsense_native as wn
from _common import parse_args, per_iteration, table

CONFIGS = {
    "wn_lbfgs": {"method": "wn_rgd"},                     # the default: WN-LBFGS
    "wn_rgd": {"method": "wn_rgd", "variant": "paper"},   # the paper's Algorithm 1
    "wn_rgd_precond": {"method": "wn_rgd", "preconditioned": True},
    "gd": {"method": "gd"},
    "precgd": {"method": "precgd"},
    "scaledgd": {"method": "scaledgd"},
}


def run(solve, op, y, rank, cfg, **kw):
    t = time.perf_counter()
    res = solve(op, y, rank, rng=3, **cfg, **kw)
    return res, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--rstar", type=int, default=5)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--m", type=int, default=5000)
    ap.add_argument("--kappa", type=float, default=5.0)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--packed", action="store_true")
    ap.add_argument("--iters", type=int, default=30, help="iterations for the per-iteration time")
    ap.add_argument("--max-iter", type=int, default=3000,
                    help="budget for the time-to-1e-8 runs (0: skip them)")
    ap.add_argument("--methods", nargs="+", default=["wn_lbfgs", "wn_rgd", "wn_rgd_precond", "gd"],
                    choices=sorted(CONFIGS))
    args = parse_args(ap, argv)

    Zs = wn.low_rank_target(args.d, args.rstar, args.kappa, rng=1)
    op = wn.gaussian_sensing(args.d, args.m, dtype=args.dtype, packed=args.packed, rng=2)
    # the numpy baseline always runs on the dense float64 operator (same seed: same realization)
    op_ref = (op if args.dtype == "float64" and not args.packed
              else wn.gaussian_sensing(args.d, args.m, rng=2))
    y = op.forward(Zs)
    print(f"d={args.d} r*={args.rstar} r={args.rank} m={args.m} kappa={args.kappa} "
          f"storage={args.dtype}{' packed' if args.packed else ''} "
          f"({op.data.nbytes / 1e6:.0f} MB; numpy baseline on dense float64, "
          f"{op_ref.data.nbytes / 1e6:.0f} MB), kernels: {wn._core.kernel_isa()}")
    rows = []
    for name in args.methods:
        cfg = CONFIGS[name]
        per_it = {}
        for label, solve, o in (("native", wn.solve, op), ("numpy", wn.reference.solve, op_ref)):
            try:
                # warm start from a few default-rule iterations, then a constant step: the
                # per-iteration cost without step-size search
                per_it[label] = per_iteration(solve, o, y, args.rank, args.iters, repeat=1,
                                              **cfg)
                if args.max_iter == 0:
                    rows.append([name, label, f"{per_it[label] * 1e3:.2f}", "", "", ""])
                    continue
                res, secs = run(solve, o, y, args.rank, cfg, max_iter=args.max_iter,
                                tol=0, x_true=Zs,
                                callback=_stop_at(Zs, 1e-8))
            except ValueError as exc:  # method not available in this build
                print(f"{name}: skipped ({exc})")
                break
            reached = res.history["rel_error"][-1] <= 1e-8
            rows.append([name, label, f"{per_it[label] * 1e3:.2f}",
                         res.nit if reached else f">{res.nit}",
                         f"{secs:.2f}" if reached else "-",
                         f"{res.nfev / max(res.nit, 1):.2f}"])
        if len(per_it) == 2:
            rows.append([name, "ratio", f"{per_it['numpy'] / per_it['native']:.2f}x", "", "", ""])
    print(table(rows, ["method", "impl", "ms/iter", "iters to 1e-8", "s to 1e-8",
                       "passes/iter"]))


def _stop_at(Zs, target):
    norm = np.linalg.norm(Zs)

    def callback(res):
        if np.linalg.norm(res.x - Zs) <= target * norm:
            raise StopIteration

    return callback


if __name__ == "__main__":
    main()
