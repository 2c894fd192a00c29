"""Experiments against other methods: the Spectral Neural Network and the head-to-head benchmark.
Methods that are not registered in this build are reported and skipped."""
from __future__ import annotations

import time

import numpy as np

from . import _plot
from ._base import ExperimentError, MethodSpec, Run, fmt_num, fmt_reach, format_table
from .convergence import WN, WN_DEFAULT, WN_PRE, check_ranks, make_operator, print_table, report_claim


# ------------------------------------------------------------------------------------------------
# SNN

def gd_on_x(M, y, x_true, *, max_iter, tol, symmetric=False):
    """Plain gradient descent on the full matrix X (no factorization), from X = 0, step 1/L with
    L = ||A||^2, for the loss ||A(X) - y||^2 / 2 with ``A(X)_i = <M_i, X>``: it converges to the
    minimum-norm interpolant. ``symmetric=True`` restricts X to symmetric matrices (uses
    ``sym(M_i)``, as the symmetric problem family does)."""
    import wnsense_native as wn

    m, d1, d2 = M.shape
    if symmetric:
        M = 0.5 * (M + M.transpose(0, 2, 1))
    A = M.reshape(m, d1 * d2)
    L = float(np.linalg.norm(A, 2) ** 2)
    x = np.zeros(d1 * d2)
    xt = np.asarray(x_true, dtype=float).ravel()
    xt_norm = float(np.linalg.norm(xt))
    y_norm = float(np.linalg.norm(y))
    hist = {k: [] for k in ("loss", "grad_norm", "step_size", "residual_norm", "time", "rel_error")}
    t0 = time.perf_counter()
    reason = "max_iter"
    for it in range(max_iter + 1):
        r = A @ x - y
        g = A.T @ r
        hist["loss"].append(0.5 * float(r @ r) / m)
        hist["grad_norm"].append(float(np.linalg.norm(g)))
        hist["step_size"].append(1.0 / L)
        hist["residual_norm"].append(float(np.linalg.norm(r)) / y_norm)
        hist["time"].append(time.perf_counter() - t0)
        hist["rel_error"].append(float(np.linalg.norm(x - xt)) / xt_norm)
        if hist["residual_norm"][-1] <= tol:
            reason = "tol"
            break
        if it == max_iter:
            break
        x = x - g / L
    hist = {k: np.asarray(v) for k, v in hist.items()}
    nit = len(hist["loss"]) - 1
    return wn.SolveResult.finished(reason, x=x.reshape(d1, d2), fun=hist["loss"][-1], nit=nit,
                                   nfev=nit + 1, residual_norm=float(hist["residual_norm"][-1]),
                                   time=time.perf_counter() - t0, history=hist, method="gd_x",
                                   factors={})


def min_norm_interpolant(M, y, x_true, *, symmetric=False):
    """The minimum-Frobenius-norm least-squares solution of ``<M_i, X> = y_i`` (``symmetric=True``:
    of ``<sym(M_i), X> = y_i``, which is symmetric), as a one-entry SolveResult: the limit of
    :func:`gd_on_x` from 0, computed in closed form (``numpy.linalg.lstsq``)."""
    import wnsense_native as wn

    m, d1, d2 = M.shape
    if symmetric:
        M = 0.5 * (M + M.transpose(0, 2, 1))
    A = M.reshape(m, d1 * d2)
    t0 = time.perf_counter()
    x = np.linalg.lstsq(A, y, rcond=None)[0]
    r = A @ x - y
    res_norm = float(np.linalg.norm(r)) / float(np.linalg.norm(y))
    err = float(np.linalg.norm(x - np.ravel(x_true))) / float(np.linalg.norm(x_true))
    elapsed = time.perf_counter() - t0
    hist = {"loss": np.array([0.5 * float(r @ r) / m]), "residual_norm": np.array([res_norm]),
            "rel_error": np.array([err]), "time": np.array([elapsed])}
    return wn.SolveResult.finished("tol", x=x.reshape(d1, d2), fun=float(hist["loss"][0]), nit=0,
                                   nfev=1, residual_norm=res_norm, time=elapsed, history=hist,
                                   method="min_norm", factors={})


def snn_paper_data(gen, *, n, rank, m, m_test, noise):
    """The data of the SNN paper's Fig. 2 (Chu, Ghosh, Lam, Mukherjee, arXiv 2402.17595; the
    authors' notebook, ``Example = 'syn'``, ``Assumption = 'mis_spec'``), drawn from ``gen`` in the
    notebook's order:

    - target ``X* = 100 U U^T / ||100 U U^T||_*`` with ``U`` of size ``n x rank``, i.i.d. U(0, 1)
      entries (PSD, rank ``rank``, nuclear norm 1; nearly rank 1, as ``U`` has a large mean);
    - ``m + m_test`` sensing matrices ``A_i`` with i.i.d. N(0, n^2) entries (``n`` the matrix size,
      as in the paper's ``X in R^{n x n}``);
    - ``y_i = <A_i, X*> + noise * N(0, 1)``; the first ``m`` are the training measurements, the
      other ``m_test`` the held-out test measurements.

    Returns ``(X*, A_train, y_train, A_test, y_test)``."""
    U = gen.uniform(0.0, 1.0, (n, rank))
    Xs = 100.0 * (U @ U.T)
    Xs = Xs / np.linalg.svd(Xs, compute_uv=False).sum()
    A = n * gen.standard_normal((m + m_test, n, n))
    y = np.einsum("kij,ij->k", A, Xs) + noise * gen.standard_normal(m + m_test)
    return (Xs, np.ascontiguousarray(A[:m]), y[:m], np.ascontiguousarray(A[m:]), y[m:])


SNN_CLAIM_MAX_ERROR = 0.1  # "a few percent"
SNN_CLAIM_FACTOR = 5.0     # the controls' test error at least this many times the SNN's
SNN_CONTROL_FIT = 1e-6     # the controls fit the training data (relative residual) to this


def _snn_specs(panel, *, widths, init_scale):
    sym = panel == "symmetric"
    snn = MethodSpec("snn", "SNN" + (", symmetric family" if sym else ""), "snn",
                     {"widths": tuple(widths), "init_scale": init_scale, "init_jitter": 1e-3},
                     note=f"widths {list(widths)}, start U_k = V_k = {init_scale:g} (I + 1e-3 "
                          f"diag(g_k)) (the paper's identity init), alpha i.i.d. U(0, 1)")
    gd_x = MethodSpec("gd_x", "GD on X, X symmetric" if sym else "GD on X", "numpy",
                      note="plain GD on the full matrix from X = 0, step 1/L")
    mn = MethodSpec("min_norm", "min-norm LS, X symmetric" if sym else "min-norm LS", "numpy",
                    note="the minimum-norm least-squares interpolant (the limit of GD on X)")
    return snn, gd_x, mn


def snn(ctx, *, d, true_rank, m, m_test, noise, widths, init_scale, step_size, max_iter,
        max_iter_x, tol):
    """SPEC experiment 8 as the SNN paper's Fig. 2: see :func:`snn_paper_data` for the data. Two
    panels on the same data: the general family (raw ``<A_i, X>``, what the paper runs; the claim
    is checked there) and the symmetric family (``wn.dense_sensing(M, symmetric=True)``), labelled
    by whether symmetric least squares alone already determines ``X*`` there. The test error is
    the paper's (the notebook's ``test_error``): ``||X - X*||_F / ||X*||_F``; the relative residual
    on the held-out measurements, ``||A_test(X) - y_test|| / ||y_test||``, is reported beside it."""
    import wnsense_native as wn
    from ..solvers.snn import spectral_diagnostics

    if true_rank > d:
        raise ExperimentError(f"--true-rank ({true_rank}) must be <= --d ({d})")
    ctx.thresholds = (1e-1,)
    Xs, A, y, A_test, y_test = snn_paper_data(ctx.rng(0), n=d, rank=true_rank, m=m,
                                              m_test=m_test, noise=noise)
    op_test = wn.dense_sensing(A_test)
    ops = {"general": wn.dense_sensing(A, symmetric=False),
           "symmetric": wn.dense_sensing(A, symmetric=True)}
    sym_dof = d * (d + 1) // 2
    top = ", ".join(f"{v:.3f}" for v in np.linalg.svd(Xs, compute_uv=False)[:2])
    eff_rank = spectral_diagnostics(Xs)["effective_rank"]
    ctx.echo(f"SNN paper, Fig. 2: target X* = 100 U U^T / ||100 U U^T||_* with U {d} x "
             f"{true_rank} i.i.d. U(0,1) (rank {true_rank}, nuclear norm 1, top singular values "
             f"{top}, effective rank {eff_rank:.2f}); A_i with i.i.d. N(0, {d}^2) "
             f"entries, noise {noise:g} on y; {m} training and {m_test} held-out measurements. "
             f"Unknowns: {d * d} for a general X, {sym_dof} for a symmetric X. SNN: constant step "
             f"{step_size:g}, {max_iter} iterations")
    specs = {panel: _snn_specs(panel, widths=widths, init_scale=init_scale) for panel in ops}
    with ctx.progress(3 * len(ops)):
        for panel, op in ops.items():
            spec_snn, spec_gd, spec_mn = specs[panel]
            ctx.solve(panel, {}, spec_snn, op, y, d, x_true=Xs, rng=ctx.rng(2),
                      max_iter=max_iter, tol=tol, step_size=step_size)
            sym = panel == "symmetric"
            ctx.add_run(Run(panel, {}, spec_gd, gd_on_x(A, y, Xs, max_iter=max_iter_x, tol=tol,
                                                         symmetric=sym)))
            ctx.add_run(Run(panel, {}, spec_mn, min_norm_interpolant(A, y, Xs, symmetric=sym)))
    y_test_norm = float(np.linalg.norm(y_test))
    rows, test_err, heldout = [], {}, {}
    for run in ctx.runs:
        x = run.result.x
        ho = float(np.linalg.norm(op_test.forward(x) - y_test)) / y_test_norm
        test_err.setdefault(run.config, {})[run.key] = run.final_rel_error
        heldout.setdefault(run.config, {})[run.key] = ho
        sd = spectral_diagnostics(x)
        rows.append([run.config, run.label, fmt_num(run.final_rel_error, ".4f"),
                     fmt_num(ho, ".4f"), fmt_num(run.result.residual_norm),
                     f"{sd['nuclear_norm']:.3f}", f"{sd['effective_rank']:.2f}",
                     str(run.result.nit), f"{run.result.time:.2f}", run.result.stop_reason])
    table = format_table(["family", "method", "test error", "held-out resid.", "train residual",
                          "nuclear norm", "eff. rank", "iterations", "s", "stop"], rows)
    notes = ["test error = ||X - X*||_F / ||X*||_F (the paper's test error: the authors' notebook's "
             "test_error); held-out resid. = ||A_test(X) - y_test|| / ||y_test|| on the "
             f"{m_test} held-out measurements; train residual = ||A(X) - y|| / ||y|| on the {m} "
             f"training ones. X*: nuclear norm 1, effective rank {eff_rank:.2f}."]
    notes += [f"{spec.label}: {spec.note}." for spec in specs["general"]]
    sym_ctrl = test_err["symmetric"]["min_norm"]
    if m >= sym_dof:
        sym_note = (f"symmetric family: m = {m} >= d(d+1)/2 = {sym_dof} unknowns, so least "
                    f"squares over symmetric X determines X* up to the noise (the control's test "
                    f"error {sym_ctrl:.2g}): no implicit bias is needed there, and this panel "
                    f"does not test one.")
    else:
        sym_note = (f"symmetric family: m = {m} < d(d+1)/2 = {sym_dof} unknowns: symmetric least "
                    f"squares is underdetermined (the control's test error {sym_ctrl:.2g}); "
                    f"there the SNN's edge over the control is its own implicit bias.")
    notes.append(sym_note)
    titles = {"general": "general family (raw <A_i, X>): the paper's Fig. 2",
              "symmetric": (f"symmetric family: m = {m} >= {sym_dof} unknowns,\nleast squares "
                            f"alone recovers X* (no implicit bias needed)" if m >= sym_dof else
                            f"symmetric family: m = {m} < {sym_dof} unknowns")}
    print_table(ctx, table, notes)
    gen = test_err["general"]
    if "snn" in gen:
        checks = {
            f"snn_test_error_at_most_{SNN_CLAIM_MAX_ERROR:g}": gen["snn"] <= SNN_CLAIM_MAX_ERROR,
            **{f"{key}_test_error_at_least_{SNN_CLAIM_FACTOR:g}x_snn":
               gen[key] >= SNN_CLAIM_FACTOR * gen["snn"] for key in ("gd_x", "min_norm")},
            **{f"{key}_fits_training_data": ctx.find("general", key).result.residual_norm
               <= SNN_CONTROL_FIT for key in ("gd_x", "min_norm")},
        }
        holds = all(checks.values())
    else:
        checks, holds = {}, None
    claim = report_claim(
        ctx, f"general family (the paper's Fig. 2): the SNN's test error ||X - X*||_F / ||X*||_F "
             f"is a few percent (<= {SNN_CLAIM_MAX_ERROR:g}), while plain GD on X from 0 and the "
             f"min-norm interpolant, which fit the same training data (residual <= "
             f"{SNN_CONTROL_FIT:g}), are at least {SNN_CLAIM_FACTOR:g}x worse", holds,
        checks=checks, test_error=test_err, heldout_rel_residual=heldout,
        symmetric_family_determined=m >= sym_dof, symmetric_family_note=sym_note,
        budget_hint=tol > 0)

    def draw(path):
        hlines = {panel: [(test_err[panel]["min_norm"], "min-norm LS")] for panel in ops}
        _plot.convergence_panels(
            [r for r in ctx.runs if r.key != "min_norm"], list(ops), title="", path=path,
            xlog=True, hlines=hlines, panel_title=titles.get,
            ylabel="test error ||X - X*||_F / ||X*||_F",
            suptitle=f"SNN vs GD on X (SNN paper Fig. 2): n={d}, m={m}, rank-{true_rank} PSD "
                     f"target, noise {noise:g}")

    ctx.make_plot(draw)
    return {"claim": claim, "table": table}


# ------------------------------------------------------------------------------------------------
# head-to-head

H2H_METHODS = [
    WN_DEFAULT,
    WN,
    WN_PRE,
    MethodSpec("gd", "GD (small init 1e-3)", "gd", {"init_scale": 1e-3}),
    MethodSpec("precgd", "PrecGD", "precgd"),
    MethodSpec("scaledgd", "ScaledGD(lambda)", "scaledgd"),
]
PRECONDITIONED = ("wn_lbfgs", "wn_rgd_precond", "precgd", "scaledgd")


def headtohead(ctx, *, d, true_rank, m_factor, kappas, ranks, max_iter, target, dtype, packed):
    import wnsense_native as wn

    ranks = tuple(ranks) if ranks else (true_rank, 2 * true_rank)
    check_ranks(d, true_rank, ranks)
    m = int(m_factor * d * true_rank)
    ctx.thresholds = (target,)
    op = make_operator(ctx, "gaussian", d, m, dtype=dtype, packed=packed)
    ctx.echo(f"d = {d}, r* = {true_rank}, m = {m_factor:g} d r* = {m}, kappa in "
             f"{{{', '.join(f'{k:g}' for k in kappas)}}}, search rank r in "
             f"{{{', '.join(map(str, ranks))}}}; target relative error {target:g}")
    configs = []
    with ctx.progress(len(kappas) * len(ranks) * len(H2H_METHODS)):
        for i, kappa in enumerate(kappas):
            Zs = wn.low_rank_target(d, true_rank, kappa, rng=ctx.rng(0, i))
            y = op.forward(Zs)
            for r in ranks:
                cfg = f"kappa={kappa:g},r={r}"
                configs.append(cfg)
                for spec in H2H_METHODS:
                    ctx.solve(cfg, {"kappa": kappa, "rank": r}, spec, op, y, r, x_true=Zs,
                              rng=ctx.rng(2, i), max_iter=max_iter, tol=target / 10)
    rows = []
    for cfg in configs:
        for run in ctx.runs:
            if run.config == cfg:
                it, sec = fmt_reach(run.reach(target))
                rows.append([run.value("kappa"), run.value("rank"), run.label, it, sec, fmt_num(run.final_rel_error),
                             run.result.stop_reason])
    table = format_table(["kappa", "r", "method", f"it to {target:g}", f"s to {target:g}",
                          "final rel err", "stop"], rows)
    notes = [f"'—': not reached within {max_iter} iterations.", f"{WN_PRE.label}: {WN_PRE.note}."]
    notes += [f"{msg}" for msg in ctx.unavailable.values()]
    print_table(ctx, table, notes)

    def iters(key, kappa, r):
        run = ctx.find(f"kappa={kappa:g},r={r}", key)
        hit = run.reach(target) if run else None
        return None if hit is None else hit[0]

    checks = {}
    over = [r for r in ranks if r > true_rank]
    if over and ctx.find(key="wn_rgd_precond"):
        checks["wn_rgd_precond_reaches_target_overparameterized"] = all(
            iters("wn_rgd_precond", k, r) is not None for k in kappas for r in over)
    for key in ("precgd", "scaledgd"):
        if ctx.find(key=key) is None:
            checks[f"{key}_kappa_insensitive"] = None
            continue
        ok = True
        for r in ranks:
            lo, hi = iters(key, min(kappas), r), iters(key, max(kappas), r)
            ok = ok and lo is not None and hi is not None and hi <= 3 * max(lo, 1)
        checks[f"{key}_kappa_insensitive"] = ok
    decided = [v for v in checks.values() if v is not None]
    holds = all(decided) if decided else None
    fastest = {}
    for cfg in configs:
        best = None
        for run in ctx.runs:
            if run.config == cfg and run.reach(target) is not None:
                sec = run.reach(target)[1]
                if best is None or sec < best[1]:
                    best = (run.key, sec)
        fastest[cfg] = best[0] if best else None
    claim = report_claim(ctx, "head-to-head to relative error "
                         f"{target:g}: the preconditioned methods (WN-RGD precond. when "
                         "overparameterized; PrecGD and ScaledGD: iterations at the largest kappa "
                         "<= 3x those at the smallest) reach the target at every kappa", holds,
                         checks=checks, fastest_by_seconds=fastest)

    def draw(path):
        fig, axes = _plot.figure(1, len(ranks), sharey=True)
        keys = [s.key for s in H2H_METHODS]
        for j, r in enumerate(ranks):
            ax = axes[0, j]
            for key in keys:
                pts = [(k, iters(key, k, r)) for k in kappas]
                pts = [(k, v) for k, v in pts if v is not None]
                if pts:
                    spec = next(s for s in H2H_METHODS if s.key == key)
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=spec.label,
                            color=_plot.COLORS.get(key))
            ax.set_xlabel("κ")
            ax.set_yscale("log")
            ax.set_title(f"r = {r}" + (" (exact rank)" if r == true_rank else ""))
            ax.grid(True, alpha=0.3)
        axes[0, 0].set_ylabel(f"iterations to {target:g}")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"Head-to-head: d={d}, r*={true_rank}, m={m}", fontsize=10)
        _plot.save(fig, path)

    ctx.make_plot(draw)
    return {"claim": claim, "table": table, "m": m}
