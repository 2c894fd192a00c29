"""Completion at Netflix-prize size on one machine: 480,189 x 17,770, 1e8 observed entries.

    python bench/bench_netflix.py [--scale 1.0] [--rank 20] [--rstar 10] [--max-iter 500]
                                  [--max-time 600] [--method wn_rgd ...]

The truth is ``U V^T`` of rank ``rstar`` held as factors (``U``, ``V`` i.i.d. N(0, 1); never
densified: a dense copy would be 68 GB), ``m`` entries observed uniformly at random (unit scale:
``y`` is the entries) and ``m / 1000`` more held out. ``--scale s`` shrinks the users (rows) and
the entries by ``s`` and keeps the items, so the entries per user stay about 208 (``--scale 0.1``:
48,019 x 17,770, 1e7 entries). Prints the build time and peak RSS, one solve (``wn.solve``'s
default on observed entries unless told) at search rank ``rank``: iterations, passes, seconds,
the held-out relative error and the peak RSS of the whole run. Targets at full size (issue:
completion at Netflix size): held-out 1e-6, solve under 60 s, peak RSS under 8 GB on 2 cores.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from _common import parse_args

import wnsense_native as wn

USERS, ITEMS, ENTRIES = 480_189, 17_770, 100_000_000


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: KiB


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0,
                    help="fraction of the users and entries (1.0: the full size)")
    ap.add_argument("--rstar", type=int, default=10)
    ap.add_argument("--rank", type=int, default=20)
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--max-time", type=float, default=600.0, help="seconds for the solve")
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--method", default="wn_rgd")
    ap.add_argument("--variant", default=None, help="WN-RGD variant (default: wn.solve's)")
    args = parse_args(ap, argv)
    if not 0 < args.scale <= 1:
        ap.error("--scale must be in (0, 1]")
    d1, d2 = max(args.rank, round(USERS * args.scale)), ITEMS
    m = round(ENTRIES * args.scale)
    n_val = max(1, m // 1000)
    g = np.random.default_rng(0)
    t0 = time.perf_counter()
    U, V = g.standard_normal((d1, args.rstar)), g.standard_normal((d2, args.rstar))
    rows = g.integers(0, d1, m + n_val)
    cols = g.integers(0, d2, m + n_val)
    op = wn.completion_sensing(rows[:m], cols[:m], (d1, d2))
    val = wn.completion_sensing(rows[m:], cols[m:], (d1, d2))
    y, y_val = op.forward_factored(U, V), val.forward_factored(U, V)
    t_build = time.perf_counter() - t0
    print(f"completion {d1:,} x {d2:,} (scale {args.scale:g}; a dense float64 copy would be "
          f"{8 * d1 * d2 / 1e9:.0f} GB), m = {m:,} observed ({m / d1:.0f} per row), "
          f"{n_val:,} held out, truth of rank {args.rstar} as factors; built in {t_build:.1f} s, "
          f"peak RSS {peak_rss_gb():.2f} GB")

    options = {"variant": args.variant} if args.method == "wn_rgd" and args.variant else {}
    t0 = time.perf_counter()
    # no x_true: tracking the error against the truth costs a QR of the (d1 + d2) x r factors
    # per iteration, which is not part of the solve
    res = wn.solve(op, y, args.rank, method=args.method, rng=1, max_iter=args.max_iter,
                   max_time=args.max_time, tol=args.tol, **options)
    secs = time.perf_counter() - t0
    pred = res.predict(val.rows, val.cols)
    held_out = np.linalg.norm(pred - y_val) / np.linalg.norm(y_val)
    print(f"{args.method} at rank {args.rank}: {res.stop_reason} after {res.nit} iterations, "
          f"{res.nfev} passes, {secs:.1f} s ({secs / max(res.nfev, 1) * 1e3:.0f} ms/pass); "
          f"held-out rel. error {held_out:.2e}; {res.message}")
    print(f"peak RSS (build and solve) {peak_rss_gb():.2f} GB; targets at scale 1: held-out "
          f"1e-6, solve < 60 s, RSS < 8 GB")


if __name__ == "__main__":
    main()
