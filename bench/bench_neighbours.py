"""WN-RGD against its neighbours on one standard problem: iterations and seconds to a target error.

    python bench/bench_neighbours.py [--d 60 --rstar 3 --rank 6 --kappa 20 --mfactor 8]
                                     [--target 1e-8] [--all] [--reference] [--threads 1]

Problem: symmetric Gaussian sensing, ``d = 60, r* = 3, r = 6, kappa = 20, m = 8 d r*`` by
default. Methods (default step rule, default options, the same seed): the library's default
``method="wn_rgd"`` (WN-LBFGS, project addition), PrecGD, ScaledGD(lambda), WN-RGD with the
Theta-preconditioned direction (project addition); ``--all`` adds the slow ones (plain WN-RGD,
the paper's Algorithm 1 ``variant="paper"``, which sits on the rank-2 saddle for ~15k
iterations here; GD and column-wise WN, on their sublinear tails). Per method: iterations and
seconds (``history["time"]``) until the relative error ``||Z_t - Z*||_F / ||Z*||_F`` first drops
below ``--target``, passes over the sensing data per iteration, and the final error.
``--reference`` adds the pure-numpy reference's seconds for the same run.
"""
from __future__ import annotations

import argparse
import time

import wnsense_native as wn
from _common import parse_args, table
from wnsense_native.experiments._base import fmt_reach, first_reach

FAST = [("wn_rgd", "WN-LBFGS (default)", {}),
        ("precgd", "PrecGD", {}),
        ("scaledgd", "ScaledGD(lambda)", {}),
        ("wn_rgd", "WN-RGD (preconditioned)", {"preconditioned": True})]
SLOW = [("wn_rgd", "WN-RGD (plain)", {"variant": "paper"}),
        ("gd", "GD", {}),
        ("column_wn", "column-wise WN", {})]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=60)
    ap.add_argument("--rstar", type=int, default=3)
    ap.add_argument("--rank", type=int, default=6)
    ap.add_argument("--kappa", type=float, default=20.0)
    ap.add_argument("--mfactor", type=float, default=8.0, help="m = mfactor * d * r*")
    ap.add_argument("--target", type=float, default=1e-8)
    ap.add_argument("--max-iter", type=int, default=3000)
    ap.add_argument("--slow-max-iter", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--all", action="store_true", help="also plain WN-RGD, GD and column WN")
    ap.add_argument("--reference", action="store_true", help="also time the numpy reference")
    args = parse_args(ap, argv)

    d, rs = args.d, args.rstar
    m = int(args.mfactor * d * rs)
    Zs = wn.low_rank_target(d, rs, args.kappa, rng=1)
    op = wn.gaussian_sensing(d, m, rng=2)
    y = op.forward(Zs)
    print(f"d={d} r*={rs} r={args.rank} kappa={args.kappa:g} m={m} symmetric Gaussian, "
          f"target rel. error {args.target:g}, {args.threads} thread(s), "
          f"kernels: {wn._core.kernel_isa()}")

    rows = []
    for i, (method, label, opts) in enumerate(FAST + (SLOW if args.all else [])):
        max_iter = args.max_iter if i < len(FAST) else args.slow_max_iter
        kw = dict(method=method, rng=3, x_true=Zs, tol=1e-3 * args.target,
                  max_iter=max_iter, **opts)
        t = time.perf_counter()
        res = wn.solve(op, y, args.rank, n_threads=args.threads, **kw)
        wall = time.perf_counter() - t
        row = [label, *fmt_reach(first_reach(res.history, args.target)),
               f"{res.nfev / max(res.nit, 1):.2f}", f"{res.history['rel_error'][-1]:.1e}",
               f"{res.nit} it / {wall:.2f} s ({res.stop_reason})"]
        if args.reference:
            kref = dict(kw, max_iter=res.nit, tol=0.0)
            ref = wn.reference.solve(op, y, args.rank, **kref)
            row.append(fmt_reach(first_reach(ref.history, args.target))[1])
        rows.append(row)
        print(f"  {label}: done", flush=True)
    headers = ["method", "iterations", "seconds", "passes/it", "final error", "run"]
    if args.reference:
        headers.append("numpy s")
    print(table(rows, headers))


if __name__ == "__main__":
    main()
