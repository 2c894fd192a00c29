"""Matrix completion far beyond the paper's sizes: a d1 x d2 matrix that is never formed.

    python bench/bench_completion_scale.py [--d 100000 --m 10000000 --rstar 5 --rank 10]
                                           [--method wn_rgd --variant V --mu auto]

The truth is ``U V^T`` held as factors (rank ``rstar``, ``U``, ``V`` i.i.d. N(0, 1)); ``m`` entries
are observed uniformly at random (unit scale: ``y`` is the entries), another ``m / 100`` are held
out. Prints the peak RSS, the seconds per pass (at random rank-``rank`` factors: a pass with
both thin products, and one with the forward map only) against the bytes such a pass must stream
at the measured read bandwidth, then one solve (``wn.solve``'s default unless told: on observed
entries the paper's WN-RGD with the learned magnitude step): iterations, passes, seconds,
relative error of the factors against the truth (``x_true`` as factors) and the held-out
relative error.

The bound per entry, for the layout a solve's pass uses (entries sorted by row once; ``y``
permuted into row order and into column order once per solve): the forward map streams the
column index (32-bit while the dimensions are below 2^31) and ``y`` of each entry (12 B; the row
index is implicit in the row grouping, ``r`` is not stored); with both products the row side of
``A*(r) @ right`` is fused into that sweep and the column side of ``A*(r)^T @ left`` is a second
sweep over the entries in column order, which streams the row index and ``y`` again (12 B) and
recomputes ``r`` from the factor rows.
Factor rows are gathered at random (``k`` doubles each); they are counted once per sweep, as if
cached (here they fit in the last-level cache), so the bound is optimistic: a pass is bound by
the latency of those gathers, which the sweeps prefetch a few entries ahead.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from _common import best_time, parse_args, read_bandwidth

import wnsense_native as wn

INDEX_BYTES = 4          # 32-bit indices below 2^31 rows/columns (8 beyond)
FORWARD_BYTES = INDEX_BYTES + 8      # per entry: column index, y (row-sorted sweep)
COLUMN_SIDE_BYTES = INDEX_BYTES + 8  # per entry: row index, y in column order (column sweep)


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: KiB


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=100_000)
    ap.add_argument("--d2", type=int, default=None)
    ap.add_argument("--m", type=int, default=10_000_000)
    ap.add_argument("--rstar", type=int, default=5)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--method", default="wn_rgd")
    ap.add_argument("--variant", default=None,
                    help="WN-RGD variant (default: wn.solve's default for observed entries, the "
                         "paper's Algorithm 1 with the learned magnitude step mu='auto')")
    ap.add_argument("--mu", default=None, help="WN-RGD magnitude step ('auto' or a number)")
    args = parse_args(ap, argv)
    d1, d2 = args.d, args.d2 or args.d
    g = np.random.default_rng(0)
    t0 = time.perf_counter()
    U, V = g.standard_normal((d1, args.rstar)), g.standard_normal((d2, args.rstar))
    n_val = max(1, args.m // 100)
    rows = g.integers(0, d1, args.m + n_val)
    cols = g.integers(0, d2, args.m + n_val)
    op = wn.completion_sensing(rows[:args.m], cols[:args.m], (d1, d2))
    val = wn.completion_sensing(rows[args.m:], cols[args.m:], (d1, d2))
    y, y_val = op.forward_factored(U, V), val.forward_factored(U, V)
    t_build = time.perf_counter() - t0
    dense_gb = 8 * d1 * d2 / 1e9
    print(f"completion {d1} x {d2} (one dense float64 copy would be {dense_gb:.0f} GB), "
          f"m = {args.m:,} observed, {n_val:,} held out, truth of rank {args.rstar} as "
          f"factors; built in {t_build:.1f} s, peak RSS {peak_rss_gb():.2f} GB")

    k = args.rank
    L, R = g.standard_normal((d1, k)), g.standard_normal((d2, k))
    prepared = op._prepare(y)       # the solver's path: y permuted into the sorted order once
    t_fwd = best_time(lambda: op._residual(L, R, prepared), repeat=3)
    t_both = best_time(lambda: op._residual(L, R, prepared, R, L), repeat=3)

    t0 = time.perf_counter()
    options = {"variant": args.variant} if args.method == "wn_rgd" and args.variant else {}
    if args.mu is not None:
        options["mu"] = args.mu if args.mu == "auto" else float(args.mu)
    res = wn.solve(op, y, k, method=args.method, rng=1, x_true=(U, V), max_iter=args.max_iter,
                   tol=args.tol, **options)
    secs = time.perf_counter() - t0
    pred = res.predict(val.rows, val.cols)
    held_out = np.linalg.norm(pred - y_val) / np.linalg.norm(y_val)
    print(f"{args.method}: {res.stop_reason} after {res.nit} iterations, {res.nfev} passes, "
          f"{secs:.1f} s ({secs / max(res.nfev, 1) * 1e3:.0f} ms/pass); "
          f"rel. error {res.history['rel_error'][-1]:.2e}, held-out rel. error {held_out:.2e}; "
          f"{res.message}")
    print(f"peak RSS (build, passes and solve) {peak_rss_gb():.2f} GB")

    bw = read_bandwidth()      # allocates 0.8 GB itself: after the RSS reading
    factor_bytes = 8 * k * (d1 + d2)
    b_fwd = args.m * FORWARD_BYTES + factor_bytes           # read L, R
    # read L, R in each sweep, write A*(r) R and A*(r)^T L
    b_both = args.m * (FORWARD_BYTES + COLUMN_SIDE_BYTES) + 3 * factor_bytes
    print(f"read bandwidth probe {bw / 1e9:.1f} GB/s")
    print(f"pass, forward only:     {t_fwd * 1e3:7.1f} ms  bound {b_fwd / bw * 1e3:6.1f} ms "
          f"({b_fwd / 1e9:.2f} GB) -> {t_fwd / (b_fwd / bw):.1f}x the bound, "
          f"{t_fwd / args.m * 1e9:.2f} ns per entry")
    print(f"pass, both products:    {t_both * 1e3:7.1f} ms  bound {b_both / bw * 1e3:6.1f} ms "
          f"({b_both / 1e9:.2f} GB) -> {t_both / (b_both / bw):.1f}x the bound, "
          f"{t_both / args.m * 1e9:.2f} ns per entry")

if __name__ == "__main__":
    main()
