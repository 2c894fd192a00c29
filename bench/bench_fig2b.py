"""The paper's largest experiment (Fig. 2b: d = 300, m = 50000) on one machine.

    python bench/bench_fig2b.py [--d 300 --m 50000 --rank 50 --iters 20]

The symmetric Gaussian operator is 36 GB as dense float64; here it is generated natively in
packed float32 storage (d(d+1)/2 numbers per measurement, 9 GB), without a float64 temporary.
Reports generation time, peak resident memory, seconds per iteration of WN-RGD (the paper's
Algorithm 1, ``variant="paper"``: the algorithm of the figure) and of the library's default
(WN-LBFGS, a project addition), passes over the data per iteration, and the ratio to the
bandwidth bound (bytes read per iteration / probe bandwidth).
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

import wnsense_native as wn
from _common import best_time, parse_args, read_bandwidth
from wnsense_native._blas import single_threaded_blas


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: KiB


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=300)
    ap.add_argument("--m", type=int, default=50000)
    ap.add_argument("--rstar", type=int, default=5)
    ap.add_argument("--kappa", type=float, default=10.0)
    ap.add_argument("--rank", type=int, default=50)
    ap.add_argument("--iters", type=int, default=20)
    args = parse_args(ap, argv)

    bw = read_bandwidth()
    print(f"read bandwidth probe: {bw / 1e9:.1f} GB/s (OpenMP's default thread count)")
    t = time.perf_counter()
    op = wn.gaussian_sensing(args.d, args.m, dtype="float32", packed=True, rng=1)
    t_gen = time.perf_counter() - t
    nbytes = op.data.nbytes
    print(f"operator: d={args.d} m={args.m} packed float32, {nbytes / 1e9:.2f} GB "
          f"(dense float64 would be {args.m * args.d**2 * 8 / 1e9:.1f} GB), "
          f"generated in {t_gen:.1f} s; peak RSS {peak_rss_gb():.2f} GB")
    Zs = wn.low_rank_target(args.d, args.rstar, args.kappa, rng=2)
    y = op.forward(Zs)
    # best of 3, numpy's BLAS single-threaded as during wn.solve (the products above leave
    # OpenBLAS workers spinning on the kernel's cores otherwise)
    with single_threaded_blas():
        t_fwd = best_time(lambda: op.forward(Zs), repeat=3, warmup=0)
    print(f"one forward pass: {t_fwd:.3f} s ({nbytes / t_fwd / 1e9:.1f} GB/s, "
          f"{nbytes / t_fwd / bw:.2f} of the probe)")
    for label, opts in (("WN-RGD", {"variant": "paper"}), ("WN-LBFGS (default)", {})):
        res = wn.solve(op, y, args.rank, rng=3, max_iter=args.iters, tol=0, x_true=Zs, **opts)
        # the clock (history["time"]) and the pass count (history["nfev"]) both start after the
        # start point's passes: mean seconds against mean passes per iteration, so that
        # iterations with a step-size retry count with their extra pass on both sides
        times, nfev = res.history["time"], res.history["nfev"]
        secs = float(times[-1] - times[0]) / res.nit
        passes = float(nfev[-1] - nfev[0]) / res.nit
        bound = passes * nbytes / bw
        print(f"{label} r={args.rank}: {res.nit} iterations, mean {secs:.3f} s/iteration "
              f"(median {float(np.median(np.diff(times))):.3f}), {passes:.2f} passes/iteration; "
              f"bandwidth bound for those passes {bound:.3f} s -> {secs / bound:.2f}x the bound; "
              f"{secs / (passes * t_fwd):.2f}x that many forward passes; "
              f"{secs / t_fwd:.2f}x one forward pass")
        print(f"{label}: rel error after {res.nit} iterations: "
              f"{res.history['rel_error'][-1]:.3e}; peak RSS {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
