"""Dense sensing kernels against the memory-bandwidth roofline.

    python bench/bench_kernels.py [--d 30 100 300] [--gb 1.6] [--threads 1 2]

For each storage (float64 / float32, full / packed) and size, prints the achieved read bandwidth
of forward, adjoint and the fused residual+adjoint pass, as GB/s and as a fraction of the
probe's bandwidth measured with the same thread count in the same run (bandwidth on shared
machines drifts by tens of percent: compare within a run). Also prints numpy's two-GEMV
forward+adjoint on the float64 data for reference.
"""
from __future__ import annotations

import argparse

import numpy as np

import wnsense_native as wn
from wnsense_native._blas import single_threaded_blas
from _common import STORAGES, best_time, parse_args, read_bandwidth, table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, nargs="+", default=[30, 100, 300])
    ap.add_argument("--gb", type=float, default=1.6, help="float64 full size of each operator")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5)
    args = parse_args(ap, argv)
    rng = np.random.default_rng(0)
    probe = {nt: read_bandwidth(n_threads=nt) for nt in args.threads}
    print("read bandwidth probe: " + ", ".join(f"{nt} thread(s) {bw / 1e9:.1f} GB/s"
                                               for nt, bw in probe.items()))
    rows = []
    for d in args.d:
        m = max(64, int(args.gb * 1e9 / (8 * d * d)))
        Z = rng.standard_normal((d, d))
        Z = Z + Z.T
        y = rng.standard_normal(m)
        eye = np.eye(d)
        # the fused pass a solver makes: residual at Z, and the thin product S @ V (r = 10)
        V = np.linalg.qr(rng.standard_normal((d, 10)))[0]
        for dtype, packed in STORAGES:
            op = wn.gaussian_sensing(d, m, dtype=dtype, packed=packed, rng=1)
            nb = op.data.nbytes
            for nt in args.threads:
                bw = probe[nt]
                t_f = best_time(lambda: op.forward(Z, n_threads=nt), args.repeat)
                t_a = best_time(lambda: op.adjoint(y, n_threads=nt), args.repeat)
                # numpy products around the pass would leave OpenBLAS workers spinning on
                # the kernel's cores: keep it single-threaded, as wn.solve does
                with single_threaded_blas():
                    t_r = best_time(lambda: op._residual(Z, eye, y, V, None, nt), args.repeat)
                rows.append([d, m, dtype, "packed" if packed else "full", nt,
                             f"{nb / 1e6:.0f}",
                             f"{nb / t_f / 1e9:.1f} ({nb / t_f / bw:.2f})",
                             f"{nb / t_a / 1e9:.1f} ({nb / t_a / bw:.2f})",
                             f"{nb / t_r / 1e9:.1f} ({nb / t_r / bw:.2f})",
                             f"{t_r / t_f:.2f}"])
            if dtype == "float64" and not packed:
                D = op.data
                t_np = best_time(lambda: D.T @ (D @ Z.ravel() - y), args.repeat)
                rows.append([d, m, "numpy f64", "full", "blas", f"{nb / 1e6:.0f}", "", "",
                             f"{nb / t_np / 1e9:.1f} ({nb / t_np / probe[max(args.threads)]:.2f})",
                             ""])
            del op
    print(table(rows, ["d", "m", "storage", "layout", "thr", "MB", "forward GB/s (frac)",
                       "adjoint GB/s (frac)", "fused GB/s (frac)", "fused/fwd"]))


if __name__ == "__main__":
    main()
