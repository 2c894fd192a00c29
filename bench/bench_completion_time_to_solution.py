"""Completion time to solution: passes over the observed entries, seconds and held-out error of
every method on a grid of completion problems.

    python bench/bench_completion_time_to_solution.py [--sizes 100] [--fracs 0.1 0.3 0.9]
                                                     [--kappas 1 10 100] [--rstar 3]
                                                     [--max-passes 1500] [--target 1e-8]
                                                     [--families sym rect] [--methods ...]
                                                     [--no-peer] [--quick]

Problems: a rank-``r*`` truth (``wn.low_rank_target``, singular values linspace(1, 1/kappa)),
each entry observed with probability ``frac`` (symmetric: the upper triangle) at unit scale
(``wn.completion_sensing``: ``y`` is the observed values), ``d x d`` symmetric and
``d x 0.8 d`` rectangular; search rank ``r = r*`` and ``2 r*``. Held-out error: relative Frobenius
error on the entries not observed. Methods: the library's default (``wn.solve(op, y, r)``), every
WN variant (``lbfgs`` unadapted, ``paper``, ``paper`` with ``mu="auto"``, ``preconditioned``),
PrecGD, ScaledGD(lambda), GD, and pymanopt's ConjugateGradient on ``FixedRankEmbedded(d1, d2,
r)`` (the LRGeomCG geometry; sparse residual, cost and Euclidean gradient in ``(u, s, vt)``,
spectral start from ``svds(A*(y) / p)``; skipped when pymanopt is not installed: ``pip install
pymanopt``). Every run stops at its own rule (relative residual 1e-10) or after ``max-passes``
passes (library: iterations capped at ``max-passes``; pymanopt: passes counted, each cost or
gradient evaluation at a new point is one pass over the entries). A cell is ``passes / seconds /
held-out error``; ``*`` marks a held-out error at or below ``target``. Wall seconds on a shared
machine: compare within one run.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import parse_args, table

import wnsense_native as wn

LIBRARY = [
    ("default", "wn_rgd", {}),
    ("WN lbfgs unadapted", "wn_rgd", {"variant": "lbfgs", "truncate": False}),
    ("WN paper", "wn_rgd", {"variant": "paper"}),
    ("WN paper mu=auto", "wn_rgd", {"variant": "paper", "mu": "auto"}),
    ("WN preconditioned", "wn_rgd", {"variant": "preconditioned"}),
    ("PrecGD", "precgd", {}),
    ("ScaledGD", "scaledgd", {}),
    ("GD", "gd", {}),
]
PEER = "pymanopt CG (fixed rank)"


def problem(d, family, rstar, kappa, frac, seed=0):
    sym = family == "sym"
    d2 = d if sym else int(round(0.8 * d))
    Zs = wn.low_rank_target(d, rstar, kappa, d2=None if sym else d2, rng=seed)
    mask = np.random.default_rng(seed + 1).random((d, d2)) < frac
    if sym:
        mask = np.triu(mask)
    rows, cols = np.nonzero(mask)
    if sym:
        mask = mask | mask.T
    op = wn.completion_sensing(rows, cols, (d, d2), symmetric=sym)
    return op, op.forward(Zs), Zs, ~mask, (rows, cols)


def heldout(x, Zs, held):
    return float(np.linalg.norm((x - Zs)[held]) / np.linalg.norm(Zs[held]))


def library_run(op, y, Zs, held, r, method, options, max_passes):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = wn.solve(op, y, r, method=method, rng=2, max_iter=max_passes, **options)
    secs = time.perf_counter() - t0
    return int(res.nfev), secs, heldout(res.x, Zs, held)


def pymanopt_run(entries, y, Zs, held, r, max_passes, symmetric):
    import pymanopt
    import scipy.sparse as sp
    from pymanopt.manifolds import FixedRankEmbedded
    from pymanopt.optimizers import ConjugateGradient
    from scipy.sparse.linalg import svds

    rows, cols = entries
    vals = y
    if symmetric:          # the symmetric entries as entries of the full matrix, both triangles
        off = rows != cols
        rows, cols = np.concatenate([rows, cols[off]]), np.concatenate([cols, rows[off]])
        vals = np.concatenate([y, y[off]])
    d1, d2 = Zs.shape
    state = {"passes": 0, "key": None, "res": None}

    class Done(Exception):
        pass

    def residual(u, s, vt):
        key = (u.tobytes(), s.tobytes(), vt.tobytes())
        if state["key"] != key:
            if state["passes"] >= max_passes:
                raise Done
            state["passes"] += 1
            pred = np.einsum("ij,ij->i", u[rows] * s, vt.T[cols])
            state["res"], state["key"] = pred - vals, key
        return state["res"]

    manifold = FixedRankEmbedded(d1, d2, r)

    @pymanopt.function.numpy(manifold)
    def cost(u, s, vt):
        e = residual(u, s, vt)
        return 0.5 * float(e @ e)

    @pymanopt.function.numpy(manifold)
    def euclidean_gradient(u, s, vt):
        e = residual(u, s, vt)
        G = sp.csr_matrix((e, (rows, cols)), shape=(d1, d2))
        GV = G @ vt.T
        return GV * s, np.einsum("ij,ij->j", u, GV), (G.T @ u).T * s[:, None]

    t0 = time.perf_counter()
    p = len(vals) / (d1 * d2)
    u0, s0, vt0 = svds(sp.csr_matrix((vals / p, (rows, cols)), shape=(d1, d2)), k=r,
                       random_state=0)
    opt = ConjugateGradient(max_iterations=10 ** 6, min_gradient_norm=1e-12, min_step_size=0.0,
                            verbosity=0)
    point = (u0, s0, vt0)
    try:
        point = opt.run(pymanopt.Problem(manifold, cost, euclidean_gradient=euclidean_gradient),
                        initial_point=point).point
    except Done:
        pass
    except Exception as exc:  # noqa: BLE001 - a peer's numerical failure is a result, not a crash
        print(f"  pymanopt failed: {type(exc).__name__}: {exc}")
    secs = time.perf_counter() - t0
    u, s, vt = point
    return state["passes"], secs, heldout((u * s) @ vt, Zs, held)


def cell(passes, secs, err, target):
    return f"{passes} / {secs:.2f} / {err:.1e}{'*' if err <= target else ''}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100])
    ap.add_argument("--families", nargs="+", default=["sym", "rect"], choices=["sym", "rect"])
    ap.add_argument("--fracs", type=float, nargs="+", default=[0.1, 0.3, 0.9])
    ap.add_argument("--kappas", type=float, nargs="+", default=[1, 10, 100])
    ap.add_argument("--rstar", type=int, default=3)
    ap.add_argument("--max-passes", type=int, default=1500)
    ap.add_argument("--target", type=float, default=1e-8)
    ap.add_argument("--methods", nargs="+", default=None,
                    help="labels to run (default: all), e.g. default PrecGD")
    ap.add_argument("--no-peer", action="store_true", help="skip pymanopt")
    ap.add_argument("--quick", action="store_true", help="one size, kappa 10, fracs 0.3 0.9")
    args = parse_args(ap, argv)
    if args.quick:
        args.sizes, args.kappas, args.fracs = [min(args.sizes)], [10.0], [0.3, 0.9]
    methods = [m for m in LIBRARY if args.methods is None or m[0] in args.methods]
    peer = not args.no_peer and (args.methods is None or PEER in args.methods)
    if peer:
        try:
            import pymanopt  # noqa: F401
        except ImportError:
            peer = False
            print("pymanopt not installed: its column is skipped (pip install pymanopt)")
    labels = [m[0] for m in methods] + ([PEER] if peer else [])
    reached = {k: 0 for k in labels}
    rows_out, nrows = [], 0
    for d in args.sizes:
        for family in args.families:
            for kappa in args.kappas:
                for frac in args.fracs:
                    op, y, Zs, held, entries = problem(d, family, args.rstar, kappa, frac)
                    for r in (args.rstar, 2 * args.rstar):
                        nrows += 1
                        name = f"{family} {Zs.shape[0]}x{Zs.shape[1]} k={kappa:g} " \
                               f"p={frac:g} r={r}"
                        row = [name]
                        for label, method, options in methods:
                            out = library_run(op, y, Zs, held, r, method, options,
                                              args.max_passes)
                            reached[label] += out[2] <= args.target
                            row.append(cell(*out, args.target))
                        if peer:
                            out = pymanopt_run(entries, y, Zs, held, r, args.max_passes,
                                               family == "sym")
                            reached[PEER] += out[2] <= args.target
                            row.append(cell(*out, args.target))
                        rows_out.append(row)
                        print(f"done: {name}", flush=True)
    print()
    print(f"passes / seconds / held-out error (* at or below {args.target:g}); "
          f"max {args.max_passes} passes")
    print(table(rows_out, ["problem"] + labels))
    print()
    print("rows reaching the target: " +
          ", ".join(f"{k} {v}/{nrows}" for k, v in reached.items()))


if __name__ == "__main__":
    main()
