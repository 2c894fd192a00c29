"""Time to solution: passes over the sensing data and seconds to a relative error, every method.

    python bench/bench_time_to_solution.py [--target 1e-10] [--m-factor 8] [--max-passes 4000]
                                           [--sizes 40 100] [--kappas 1 5 20 100] [--repeat 3]
                                           [--quick]

Grid (issue "Time to solution"): symmetric Gaussian sensing, d in {40, 100} with r* = 3, 5,
kappa in {1, 5, 20, 100}, search rank r in {r*, 2 r*}, m = m_factor d r*; and the population case
d = 10, r* = 3, r = 5 (A = Id). Methods: the library's default (``wn.solve(op, y, r)``: WN-LBFGS),
the paper's WN-RGD (``variant="paper"``), ``variant="preconditioned"``, PrecGD, ScaledGD(lambda),
GD, and pymanopt's SteepestDescent and ConjugateGradient on the same cost, ``1/4 ||A(X T X^T) -
y||^2`` on ``Product([Stiefel(d, r), Symmetric(r)])`` with exact Euclidean gradients
``[S X T, 1/2 X^T S X]`` (pure numpy; skipped when pymanopt is not installed: ``pip install
pymanopt``). Every run stops when ``||Z - Z*||_F / ||Z*||_F <= target`` (checked from the factors
after each iteration / cost evaluation) or after ``max-passes`` passes.

A pass is one stream over the data: the library's fused residual + adjoint pass counts once; in the
pymanopt runs each numpy GEMV (forward ``M @ vec(Z)`` or adjoint ``M^T r``) counts once, with the
residual of the cost evaluation reused by the gradient at the same point. Seconds are wall time to
the target: the best of ``--repeat`` (3) runs for a run that takes under a second (the passes are
the same every run; a single run of a few milliseconds swings 2-3x with the machine's other load
and with one-time costs: at d = 40 the first run of the default took 0.022-0.040 s, repeats
0.008-0.009 s), a single run otherwise; compare within one run. Prints one table per grid row
and the checks of the issue's targets for the default.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import parse_args, table

import wnsense_native as wn
from wnsense_native._lowrank import Target

LIBRARY = [
    ("default (WN-LBFGS)", "wn_rgd", {}),
    ("WN-RGD (paper)", "wn_rgd", {"variant": "paper"}),
    ("WN-RGD preconditioned", "wn_rgd", {"variant": "preconditioned"}),
    ("PrecGD", "precgd", {}),
    ("ScaledGD(lambda)", "scaledgd", {}),
    ("GD (init 1e-3)", "gd", {}),
]


class Reached(Exception):
    """Raised inside a pymanopt cost evaluation once the target is reached (stops its run)."""


def library_run(op, y, Zs, r, method, options, target, max_passes):
    truth = Target(Zs, Zs.shape)
    hit = {}
    t0 = time.perf_counter()

    def callback(res):
        err = truth.relative_error(*res._lowrank)
        if err <= target:
            hit["time"] = time.perf_counter() - t0
            raise StopIteration

    res = wn.solve(op, y, r, method=method, rng=2, max_iter=max_passes, tol=0.0,
                   callback=callback, x_true=Zs, **options)
    passes = int(res.nfev)
    if passes > max_passes and "time" not in hit:
        passes = max_passes
    err = float(res.history["rel_error"][-1])
    return passes, hit.get("time"), err, ("time" in hit)


def pymanopt_run(M, y, Zs, r, optimizer_name, target, max_passes, seed):
    import pymanopt
    from pymanopt.manifolds import Product, Stiefel, Symmetric
    from pymanopt.optimizers import ConjugateGradient, SteepestDescent

    m, d = M.shape[0], Zs.shape[0]
    manifold = Product([Stiefel(d, r), Symmetric(r)])
    norm = np.linalg.norm(Zs)
    state = {"passes": 0, "key": None, "r": None, "best": np.inf, "time": None}
    t0 = time.perf_counter()

    def residual(X, T):
        key = (X.tobytes(), T.tobytes())
        if state["key"] != key:
            Z = X @ T @ X.T
            state["r"] = M @ Z.ravel() - y
            state["key"] = key
            state["passes"] += 1
            err = np.linalg.norm(Z - Zs) / norm
            state["best"] = min(state["best"], err)
            if err <= target:
                state["time"] = time.perf_counter() - t0
                raise Reached
            if state["passes"] >= max_passes:
                raise Reached
        return state["r"]

    @pymanopt.function.numpy(manifold)
    def cost(X, T):
        r = residual(X, T)
        return 0.25 * float(r @ r)

    @pymanopt.function.numpy(manifold)
    def euclidean_gradient(X, T):
        r = residual(X, T)
        S = (M.T @ r).reshape(d, d)
        state["passes"] += 1
        S = 0.5 * (S + S.T)
        SX = S @ X
        return [SX @ T, 0.5 * X.T @ SX]

    problem = pymanopt.Problem(manifold, cost, euclidean_gradient=euclidean_gradient)
    cls = ConjugateGradient if optimizer_name == "CG" else SteepestDescent
    opt = cls(max_iterations=10 ** 6, min_gradient_norm=0.0, min_step_size=0.0, verbosity=0)
    gen = np.random.default_rng(seed)
    X0 = np.linalg.qr(gen.standard_normal((d, r)))[0]
    try:
        opt.run(problem, initial_point=[X0, np.zeros((r, r))])
    except Reached:
        pass
    reached = state["time"] is not None
    return min(state["passes"], max_passes), state["time"], float(state["best"]), reached


def best_of(run, repeat, budget=1.0):
    """``run()``'s result with the least seconds over up to ``repeat`` runs, repeated only while
    a run takes under ``budget`` seconds (the passes and errors are the same every run)."""
    best = run()
    for _ in range(repeat - 1):
        if best[1] is None or best[1] > budget:
            break
        out = run()
        if out[1] is not None and out[1] < best[1]:
            best = out
    return best


def cell(passes, secs, err, reached):
    if not reached:
        return f">{passes}", "—", f"{err:.1e}"
    return str(passes), f"{secs:.3f}" if secs < 10 else f"{secs:.1f}", f"{err:.1e}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=1e-10)
    ap.add_argument("--m-factor", type=float, default=8.0)
    ap.add_argument("--max-passes", type=int, default=4000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[40, 100])
    ap.add_argument("--kappas", type=float, nargs="+", default=[1, 5, 20, 100])
    ap.add_argument("--methods", nargs="+", default=None,
                    help="labels to run (default: all); e.g. 'default (WN-LBFGS)' PrecGD")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs under a second are repeated this often, the best time kept")
    ap.add_argument("--no-peer", action="store_true", help="skip pymanopt")
    ap.add_argument("--quick", action="store_true", help="one kappa, the small size")
    args = parse_args(ap, argv)
    if args.quick:
        args.sizes, args.kappas = [min(args.sizes)], [args.kappas[-1]]
    try:
        import pymanopt  # noqa: F401
        peer = not args.no_peer
    except ImportError:
        peer = False
        print("pymanopt not installed: its rows are skipped (pip install pymanopt)")
    rows_out = []
    checks = []
    problems = []
    rstar_of = {40: 3, 100: 5}
    for d in args.sizes:
        rs = rstar_of.get(d, max(2, d // 20))
        for kappa in args.kappas:
            for r in (rs, 2 * rs):
                problems.append((d, rs, kappa, r))
    problems.append(("pop", 3, 100.0, 5))
    for d, rs, kappa, r in problems:
        if d == "pop":
            op = wn.identity_sensing(10)
            Zs = wn.low_rank_target(10, rs, kappa, rng=0)
            name = f"population d=10, r*={rs}, r={r}, kappa={kappa:g}"
        else:
            m = int(args.m_factor * d * rs)
            op = wn.gaussian_sensing(d, m, rng=1)
            Zs = wn.low_rank_target(d, rs, kappa, rng=0)
            name = f"d={d}, r*={rs}, r={r}, kappa={kappa:g}, m={m}"
        y = op.forward(Zs)
        results = {}
        for label, method, options in LIBRARY:
            if args.methods and label not in args.methods:
                continue
            results[label] = best_of(lambda: library_run(op, y, Zs, r, method, options,
                                                         args.target, args.max_passes),
                                     args.repeat)
        if peer:
            M = (np.eye(op.m) if d == "pop" else op.dense_matrices().reshape(op.m, -1))
            for opt in ("SD", "CG"):
                label = f"pymanopt {opt}"
                if args.methods and label not in args.methods:
                    continue
                results[label] = best_of(lambda: pymanopt_run(M, y, Zs, r, opt, args.target,
                                                              args.max_passes, seed=2),
                                         args.repeat)
        print(f"\n{name}")
        print(table([[k, *cell(*v)] for k, v in results.items()],
                    ["method", "passes", "seconds", "rel. error"]))
        for label, v in results.items():
            rows_out.append([name, label, *cell(*v)])
        ours, prec = results.get("default (WN-LBFGS)"), results.get("PrecGD")
        cg = results.get("pymanopt CG")
        if ours and prec and d != "pop":
            checks.append((name, ours[3], ours[0] <= prec[0] if prec[3] else True,
                           (ours[1] or np.inf) <= 1.2 * (prec[1] or np.inf),
                           None if not cg or not cg[3] else (cg[1] / (ours[1] or np.inf))))
    print("\nTargets for the default, per grid row: reaches the target; passes <= PrecGD's; "
          "seconds <= 1.2 x PrecGD's; speed-up over pymanopt CG (target >= 4x)")
    print(table([[n, "yes" if a else "NO", "yes" if b else "NO", "yes" if c else "NO",
                  "—" if s is None else f"{s:.1f}x"] for n, a, b, c, s in checks],
                ["grid row", "reached", "passes<=PrecGD", "s<=1.2 PrecGD", "vs pymanopt CG"]))


if __name__ == "__main__":
    main()
