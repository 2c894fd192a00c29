"""Sharded passes on a 2-worker Dask LocalCluster against the single-process pass (issue 14).

Part 1 (default; d=100, m=20000, packed float32, k=10): the single-process native pass (1 and 2
threads), then the same operator sharded over 2 workers with one thread each, in-process
(inproc transport) and as 2 worker processes (TCP on 127.0.0.1): wall time per pass, the slowest
shard's compute time, the overhead (wall minus slowest shard: transport, event loops, the
driver's fold), the payload bytes per pass, and the transport round trip alone (the same payload,
no arithmetic) against the number of shards. Then a model of N workers:

    T_pass(N) ~ T_shard(m / N rows) + t0(N) + B(N) / bandwidth

with t0 the measured round trip and B(N) the protocol's bytes per pass.

Part 2 (--fig2b; 9 GB, about 10 minutes): the paper's Fig. 2b operator (d=300, m=50000, packed
float32) single-process (2 threads) and over 2 worker processes (1 thread each): seconds per
iteration at r=50 of WN-RGD (the paper's Algorithm 1) and of wn.solve's default (WN-LBFGS), and
per pass; the target is an iteration within 1.3x of the single-process one. The two operators are built one after the other (never both in memory).

The machine is shared (other sessions load its 2 cores): compare numbers within one run.

    python bench/bench_distributed.py [--d 100 --m 20000 --rank 10] [--repeat 40] [--fig2b]
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import parse_args, per_iteration, run_times, table  # noqa: E402


def stats(ts):
    ts = np.asarray(ts) * 1e3
    return float(np.median(ts)), float(np.percentile(ts, 90))


def cluster(processes, n_workers=2):
    import distributed
    kw = dict(n_workers=n_workers, threads_per_worker=1, processes=processes,
              dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")
    if processes:
        kw["host"] = "127.0.0.1"
    c = distributed.LocalCluster(**kw)
    return c, distributed.Client(c, set_as_default=False)


def factors(d, k, seed=0):
    g = np.random.default_rng(seed)
    L, _ = np.linalg.qr(g.standard_normal((d, k)))
    return np.ascontiguousarray(L @ np.diag(np.linspace(1, 2, k))), np.ascontiguousarray(L)


def local_pass(op, L, R, h, n_threads, repeat):
    from wnsense_native._blas import single_threaded_blas
    with single_threaded_blas():   # as in wn.solve: idle BLAS threads would spin on the cores
        return run_times(lambda: op._residual(L, R, h, R, None, n_threads), repeat, warmup=3)


def huge_pages():
    """Fraction of this process's anonymous memory in transparent huge pages (Linux; None
    elsewhere): streaming passes over 4 KB pages are slower (TLB misses), and a machine whose
    memory is fragmented gives a new operator fewer huge pages."""
    try:
        with open("/proc/self/smaps_rollup") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        kb = {k: int(v.split()[0]) for k, v in fields.items() if v.strip().endswith("kB")}
        return kb["AnonHugePages"] / max(kb["Anonymous"], 1)
    except (OSError, KeyError, ValueError):
        return None


def fmt_share(x):
    return "n/a" if x is None else f"{100 * x:.0f}%"


def sharded_pass(op, L, R, h, repeat):
    """Per pass: wall seconds, and the slowest shard's compute seconds."""
    walls, shards = [], []
    for i in range(repeat + 3):
        t = time.perf_counter()
        op._residual(L, R, h, R)
        wall = time.perf_counter() - t
        slowest = max(op.shard_seconds())
        if i >= 3:
            walls.append(wall)
            shards.append(slowest)
    return np.array(walls), np.array(shards)


def round_trip(op, L, R, repeat):
    """The transport alone: each shard gets a pass's arguments and answers a pass-sized reply,
    computing nothing."""
    sizes = reply_bytes(op, R.shape[1])
    calls = [(sizes[j], L, R) for j in range(op.n_shards)]
    return run_times(lambda: op._call_all("ping", calls), repeat, warmup=3)


def reply_bytes(op, k):
    """Bytes each dense shard sends back per pass (right = R only): shard 0 one folded d x k
    partial, the others one per slice, plus their ||r||^2 parts."""
    d = op.shape[1]
    out = []
    for j, (s0, s1) in enumerate(op.slice_groups):
        n = 1 if j == 0 else s1 - s0
        out.append(n * (d * k * 8 + 8))
    return out


def part1(args):
    import wnsense_native as wn
    import wnsense_native.distributed as wnd
    from wnsense_native import _core

    d, m, k = args.d, args.m, args.rank
    storage = f"{args.dtype}{' packed' if args.packed else ''}"
    print(f"== sharded pass vs local pass: d={d}, m={m}, {storage}, k={k} "
          f"(machine load {os.getloadavg()[0]:.1f})")
    ref = wn.gaussian_sensing(d, m, dtype=args.dtype, packed=args.packed, rng=1)
    L, R = factors(d, k)
    y = ref.forward(L @ R.T + 1e-3)
    h = ref._prepare(y)
    want = ref._residual(L, R, h, R, None, 1)
    rows, local = [], {}
    for nt in (1, 2):
        med, p90 = local[nt] = stats(local_pass(ref, L, R, h, nt, args.repeat))
        rows.append([f"local, {nt} thread(s)", f"{med:.1f}", f"{p90:.1f}", "", "", ""])
    nbytes = ref.nbytes
    del ref
    gc.collect()
    trips, results = {}, {}
    n_slices = len(_core.slice_bounds(m)) - 1
    counts = [s for s in (1, 2, 4, 8) if s <= n_slices]
    for processes in (False, True):
        name = "2 worker processes (TCP)" if processes else "2 in-process workers (inproc)"
        c, client = cluster(processes)
        try:
            with wnd.gaussian_sensing(d, m, client=client, dtype=args.dtype,
                                      packed=args.packed, rng=1, shards=2) as op:
                hs = op._prepare(y)
                got = op._residual(L, R, hs, R)
                identical = (got.sumsq == want.sumsq and got.AV.tobytes() == want.AV.tobytes())
                t0 = dict(op.traffic)
                walls, shard = sharded_pass(op, L, R, hs, args.repeat)
                n = op.traffic["passes"] - t0["passes"]
                out_b = (op.traffic["bytes_out"] - t0["bytes_out"]) / n
                back_b = (op.traffic["bytes_in"] - t0["bytes_in"]) / n
                over = stats(walls - shard)
                med, p90 = stats(walls)
                rows.append([name, f"{med:.1f}", f"{p90:.1f}", f"{stats(shard)[0]:.1f}",
                             f"{over[0]:.1f} ({over[1]:.1f})",
                             f"{out_b / 1e3:.0f} / {back_b / 1e3:.0f}"])
                results[processes] = (med, over, out_b, back_b, identical, stats(shard)[0])
                trips[processes] = {}
            for shards in counts:
                with wnd.gaussian_sensing(d, m, client=client, dtype=args.dtype,
                                          packed=args.packed, rng=1, shards=shards) as op:
                    trips[processes][shards] = stats(round_trip(op, L, R, args.repeat))
        finally:
            client.close()
            c.close()
    print(table(rows, ["pass", "median ms", "p90 ms", "slowest shard ms",
                       "overhead ms median (p90)", "kB out / back"]))
    print(f"operator {nbytes / 1e6:.0f} MB; sharded results bit-identical to the local pass: "
          f"{'yes' if all(r[4] for r in results.values()) else 'NO'}")
    trip_rows = [[str(s)] + [f"{trips[p][s][0]:.2f} ({trips[p][s][1]:.2f})" for p in
                             (False, True)] for s in counts]
    print("\ntransport round trip of one pass's payload, no arithmetic (2 workers), ms median "
          "(p90):")
    print(table(trip_rows, ["shards", "inproc", "TCP loopback"]))
    med, over, out_b, back_b, _, shard_ms = results[True]
    print(f"\nsharded pass overhead on loopback (2 worker processes): {over[0]:.1f} ms median, "
          f"{over[1]:.1f} ms p90, over a {med:.1f} ms pass (local pass {local[1][0]:.1f} ms on "
          f"1 thread, {local[2][0]:.1f} ms on 2); {out_b / 1e3:.0f} kB out, "
          f"{back_b / 1e3:.0f} kB back per pass")
    model(args, trips[True], shard_ms, d, m, k)


def model(args, trips, shard_ms, d, m, k):
    """T_pass(N) ~ T_shard(m/N) + t0(N) + B(N)/BW on N workers (one shard each)."""
    from wnsense_native import _core

    n_slices = len(_core.slice_bounds(m)) - 1
    bw = args.bandwidth * 1e9
    t0_1, t0_2 = trips[1][0], trips[2][0]
    per_shard = max(t0_2 - t0_1, 0.0)
    rows = []
    for N in (1, 2, 4, 8, 16, 32, 64):
        if N > n_slices:
            break
        n0 = n_slices // N
        out_b = N * 2 * d * k * 8                       # L and R to every shard
        back_b = (1 + n_slices - n0) * (d * k * 8 + 8)  # per-slice partials (shard 0 folded)
        compute = shard_ms * 2 / N                      # the 2-shard compute, split N ways
        t0 = t0_1 + per_shard * (N - 1)
        wire = (out_b + back_b) / bw * 1e3
        rows.append([str(N), f"{compute:.1f}", f"{t0:.1f}", f"{(out_b + back_b) / 1e6:.2f}",
                     f"{wire:.2f}", f"{compute + t0 + wire:.1f}"])
    print(f"\nmodel of N workers, one shard each: the 2-shard compute split N ways, t0(N) = "
          f"{t0_1:.1f} + {per_shard:.2f} (N - 1) ms extrapolated from the TCP round trips of 1 "
          f"and 2 shards (pessimistic: here the workers share the driver's cores), "
          f"{args.bandwidth:g} GB/s links:")
    print(table(rows, ["N", "shard compute ms", "t0 ms", "MB per pass", "wire ms",
                       "T_pass ms"]))


# the WN iterations timed at the Fig. 2b size: the paper's Algorithm 1 and wn.solve's default
VARIANTS = [("WN-RGD (paper)", {"variant": "paper"}), ("WN-LBFGS (default)", {})]


def part2(args):
    import wnsense_native as wn
    import wnsense_native.distributed as wnd

    d, m, r = 300, 50000, 50
    print(f"\n== Fig. 2b size: d={d}, m={m}, packed float32 (9 GB), rank r={r} "
          f"(machine load {os.getloadavg()[0]:.1f})")
    Zs = wn.low_rank_target(d, 5, 10.0, rng=0)
    L, R = factors(d, r)
    t = time.perf_counter()
    op = wn.gaussian_sensing(d, m, dtype="float32", packed=True, rng=1, n_threads=2)
    gen_local = time.perf_counter() - t
    y = op.forward(Zs)
    h = op._prepare(y)
    want = op._residual(L, R, h, R, None, 2)
    huge_local = huge_pages()
    local_pass_ms = stats(local_pass(op, L, R, h, 2, args.fig2b_repeat))
    local_it = {name: per_iteration(wn.solve, op, y, r, iters=args.iters, repeat=2, n_threads=2,
                                    **opts) for name, opts in VARIANTS}
    del op, h
    gc.collect()
    c, client = cluster(True)
    try:
        t = time.perf_counter()
        op = wnd.gaussian_sensing(d, m, client=client, dtype="float32", packed=True, rng=1,
                                  shards=2)
        gen_sharded = time.perf_counter() - t
        with op:
            huge_sharded = [client.run(huge_pages)[a] for a in op.placement]
            hs = op._prepare(y)
            got = op._residual(L, R, hs, R)
            identical = got.sumsq == want.sumsq and got.AV.tobytes() == want.AV.tobytes()
            walls, shard = sharded_pass(op, L, R, hs, args.fig2b_repeat)
            over = stats(walls - shard)
            sharded_it = {name: per_iteration(wn.solve, op, y, r, iters=args.iters, repeat=2,
                                              **opts) for name, opts in VARIANTS}
    finally:
        client.close()
        c.close()
    names = [name for name, _ in VARIANTS]
    rows = [["single process, 2 threads", f"{gen_local:.0f}", f"{local_pass_ms[0]:.0f}", ""]
            + [f"{local_it[n]:.3f}" for n in names] + [fmt_share(huge_local)],
            ["2 worker processes x 1 thread", f"{gen_sharded:.0f}", f"{stats(walls)[0]:.0f}",
             f"{over[0]:.1f} ({over[1]:.1f})"] + [f"{sharded_it[n]:.3f}" for n in names]
            + [" / ".join(fmt_share(x) for x in huge_sharded)]]
    print(table(rows, ["Fig. 2b", "generate s", "pass ms", "overhead ms median (p90)"]
                + [f"s per iteration, {n}" for n in names] + ["huge pages"]))
    print(f"bit-identical: {'yes' if identical else 'NO'}")
    for n in names:
        print(f"{n} iteration over 2 worker processes: {sharded_it[n] / local_it[n]:.2f}x the "
              f"single-process one (target <= 1.3x)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--m", type=int, default=20000)
    ap.add_argument("--rank", type=int, default=10, help="width k of the factors")
    ap.add_argument("--dtype", default="float32", choices=("float64", "float32"))
    ap.add_argument("--packed", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--repeat", type=int, default=40, help="passes timed per configuration")
    ap.add_argument("--bandwidth", type=float, default=1.25,
                    help="link bandwidth of the model, GB/s (default 1.25: 10 GbE)")
    ap.add_argument("--fig2b", action="store_true",
                    help="also the Fig. 2b size over 2 worker processes (9 GB, ~10 min)")
    ap.add_argument("--fig2b-repeat", type=int, default=8)
    ap.add_argument("--iters", type=int, default=6, help="Fig. 2b: iterations timed per solve")
    ap.add_argument("--fig2b-only", action="store_true", help="only the Fig. 2b part")
    args = parse_args(ap, argv)
    if not args.fig2b_only:
        part1(args)
    if args.fig2b or args.fig2b_only:
        part2(args)


if __name__ == "__main__":  # worker processes are spawned: they re-import this module
    main()
