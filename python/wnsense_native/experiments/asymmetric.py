"""Rectangular-sensing experiments: asymmetric GD (init scale, imbalance) and the image
reconstruction."""
from __future__ import annotations

import numpy as np

from . import _plot
from ._base import ExperimentError, MethodSpec, fmt_num, format_table
from .convergence import make_operator, print_table, report_claim


ASYM_SLOPE_RANGE = (0.7, 1.3)   # "roughly proportional": fitted log-log slope in this range
ASYM_IMBALANCE_GROWTH = 0.01    # "stays small": grows by at most this fraction of ||Z*||_F
ASYM_MIN_SPAN = 10.0            # the fitted alphas must span at least this factor
ASYM_VARIANTS = (("gd", "GD balanced init", False), ("gd_imbalanced", "GD imbalanced (α, α/3)", True))


def asymmetric(ctx, *, d1, d2, m, true_rank, rank, kappa, alphas, step_size, max_iter, tol):
    """SPEC experiment 7 (Soltanolkotabi, Stöger, Xie 2023): asymmetric factorized GD from a small
    random start of scale alpha, overparameterized (``rank`` > ``true_rank``) on ``m < d1 d2``
    Gaussian measurements. The test error of a model that interpolates the data is the
    generalization effect the seed claims (roughly proportional to alpha), so errors are compared
    across alpha only between runs that fitted the training data to the common relative residual
    ``tol`` (every such run stops exactly there); runs that did not are reported and excluded from
    the slope. ``step_size=0`` is the library's Armijo rule instead of a constant step."""
    import wnsense_native as wn
    from ._base import first_reach

    if true_rank > min(d1, d2) or rank > min(d1, d2):
        raise ExperimentError(f"--true-rank and --rank must be <= min(d1, d2) = {min(d1, d2)}")
    step = step_size if step_size > 0 else None
    ctx.thresholds = ()
    Zs = wn.low_rank_target(d1, true_rank, kappa, d2=d2, rng=ctx.rng(0))
    z_norm = float(np.linalg.norm(Zs))
    op = make_operator(ctx, "gaussian", d1, m, d2=d2)
    y = op.forward(Zs)
    ctx.echo(f"rectangular Gaussian operator {d1} x {d2}, m = {m} (< d1 d2 = {d1 * d2}), "
             f"r* = {true_rank}, r = {rank}, "
             + (f"constant step {step_size:g}" if step else "Armijo step rule")
             + f"; a run counts as fitted when its relative training residual reaches {tol:g} "
               f"within {max_iter} iterations")
    configs = []
    with ctx.progress(len(alphas) * len(ASYM_VARIANTS)):
        for alpha in alphas:
            cfg = f"alpha={alpha:g}"
            configs.append(cfg)
            for key, label, imb in ASYM_VARIANTS:
                spec = MethodSpec(key, label, "gd", {"init_scale": alpha, "imbalanced": imb})
                ctx.solve(cfg, {"alpha": alpha}, spec, op, y, rank, x_true=Zs, rng=ctx.rng(2),
                          max_iter=max_iter, tol=tol, step_size=step)
    rows, fitted, not_fitted, imb_growth = [], {}, [], {}
    for cfg in configs:
        for key, _, _ in ASYM_VARIANTS:
            run = ctx.find(cfg, key)
            if run is None:
                continue
            im = np.asarray(run.history.get("imbalance", np.zeros(1)))
            growth = float(np.max(im) - im[0]) / z_norm
            ok = bool(run.result.residual_norm <= tol)
            # how settled the test error is: its relative change over the last decade of residual
            hit = first_reach(run.history, 10 * tol, key="residual_norm")
            settled = (abs(run.history["rel_error"][hit[0]] / run.final_rel_error - 1)
                       if ok and hit is not None else None)
            if ok:
                fitted.setdefault(key, []).append((run.config_values["alpha"], run.final_rel_error))
                imb_growth.setdefault(key, []).append(growth)
            else:
                not_fitted.append(f"{cfg} {run.label} (residual {run.result.residual_norm:.1e} "
                                  f"after {run.result.nit} iterations)")
            rows.append([run.value("alpha"), run.label, "yes" if ok else "NO",
                         fmt_num(run.final_rel_error), fmt_num(settled, ".1%"),
                         fmt_num(float(im[0]) / z_norm), fmt_num(float(np.max(im)) / z_norm),
                         fmt_num(growth), fmt_num(run.result.residual_norm),
                         str(run.result.nit), f"{run.result.time:.2f}", run.result.stop_reason])
    table = format_table(["alpha", "method", "fitted", "test rel err", "settled", "imbalance@0",
                          "max imbalance", "growth", "train residual", "iterations", "s", "stop"],
                         rows)
    notes = [f"fitted: relative training residual ||A(U V^T) - y|| / ||y|| <= {tol:g}; only "
             f"fitted runs enter the slope and the claim. settled: relative change of the test "
             f"error between the first iterates at residual {10 * tol:g} and at {tol:g} (how much "
             f"the last decade of fitting still moved it).",
             "imbalance = ||U^T U - V^T V||_F / ||Z*||_F (conserved by gradient flow; GD changes "
             "it by O(eta^2) per step); growth = max - initial; test error = ||U V^T - Z*||_F / "
             "||Z*||_F."]
    if not_fitted:
        notes.append("not fitted, excluded from the slope: " + "; ".join(not_fitted)
                     + ". More iterations (--max-iter) or a larger step would fit them.")
    print_table(ctx, table, notes)
    checks, slopes = {}, {}
    for key, _, _ in ASYM_VARIANTS:
        pts = sorted(fitted.get(key, []))
        a = np.array([p[0] for p in pts])
        e = np.array([p[1] for p in pts])
        enough = len(pts) >= 2 and a[-1] >= ASYM_MIN_SPAN * a[0] and np.all(e > 0)
        checks[f"{key}_fitted_alphas_span_{ASYM_MIN_SPAN:g}x"] = bool(enough)
        if not enough:
            continue
        slopes[key] = float(np.polyfit(np.log(a), np.log(e), 1)[0])
        checks[f"{key}_error_grows_with_alpha"] = bool(np.all(np.diff(e) > 0))
        lo, hi = ASYM_SLOPE_RANGE
        checks[f"{key}_slope_in_[{lo:g},{hi:g}]"] = lo <= slopes[key] <= hi
        checks[f"{key}_imbalance_growth_at_most_{ASYM_IMBALANCE_GROWTH:g}"] = (
            max(imb_growth[key]) <= ASYM_IMBALANCE_GROWTH)
    ctx.echo("log-log slope of the fitted runs' test error vs alpha: "
             + (", ".join(f"{k}: {v:.2f}" for k, v in slopes.items()) or "none (too few fitted "
                                                                          "runs)"))
    holds = all(checks.values()) if checks else None
    claim = report_claim(
        ctx, f"asymmetric GD, among the runs that fitted the data (residual <= {tol:g}): the test "
             f"error is roughly proportional to the init scale alpha (it grows with alpha, "
             f"log-log slope in [{ASYM_SLOPE_RANGE[0]:g}, {ASYM_SLOPE_RANGE[1]:g}], over fitted "
             f"alphas spanning >= {ASYM_MIN_SPAN:g}x) and the imbalance stays small (grows by "
             f"<= {ASYM_IMBALANCE_GROWTH:.0%} of ||Z*||_F)", holds,
        checks=checks, loglog_slope=slopes, imbalance_growth_relative=imb_growth,
        fitted={k: [{"alpha": a, "test_rel_error": e} for a, e in v] for k, v in fitted.items()},
        not_fitted=not_fitted)

    def draw(path):
        fig, axes = _plot.figure(1, 3, width=4.2)
        ax = axes[0, 0]
        for key, label, _ in ASYM_VARIANTS:
            pts = sorted(fitted.get(key, []))
            if pts:
                ax.loglog([p[0] for p in pts], [p[1] for p in pts], "o-", label=label,
                          color=_plot.COLORS.get(key))
        for run in ctx.runs:
            if run.result.residual_norm > tol:
                ax.loglog([run.config_values["alpha"]], [run.final_rel_error], "x",
                          color=_plot.COLORS.get(run.key))
        ref = sorted(fitted.get("gd", []))
        if ref:
            a_ref = np.array([p[0] for p in ref])
            ax.loglog(a_ref, ref[-1][1] * a_ref / a_ref[-1], "k:", linewidth=0.8, label="∝ α")
        if not_fitted:
            ax.plot([], [], "x", color="0.3", label="not fitted (excluded)")
        ax.set_xlabel("init scale α")
        ax.set_ylabel("test relative error")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        for run in ctx.runs:
            if run.key == "gd":
                lab = run.config.replace("alpha", "α")
                _plot.curve(axes[0, 1], run, y="residual_norm", label=lab, color=None,
                            linestyle="-")
                _plot.curve(axes[0, 2], run, y="imbalance", label=lab, color=None,
                            linestyle="-")
        axes[0, 1].axhline(tol, color="0.5", linewidth=0.8, linestyle=":")
        for ax, yl in ((axes[0, 1], "training residual (balanced init)"),
                       (axes[0, 2], "‖UᵀU − VᵀV‖_F (balanced init)")):
            ax.set_yscale("log")
            ax.set_xlabel("iteration")
            ax.set_ylabel(yl)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
        _plot.tidy_iteration_axis(axes[0, 1])
        axes[0, 2].set_xscale("symlog", linthresh=1.0)  # the imbalance moves in the first steps
        axes[0, 2].set_xlim(left=0)
        fig.suptitle(f"Asymmetric GD: {d1}x{d2}, m={m}, r*={true_rank}, r={rank}", fontsize=10)
        _plot.save(fig, path)

    ctx.make_plot(draw)
    return {"claim": claim, "table": table}


# ------------------------------------------------------------------------------------------------
# image reconstruction

SKIMAGE_HINT = ("the image experiment needs scikit-image for its sample photo: "
                "pip install scikit-image (or wnsense_native[all])")


def load_image(name, size):
    """A grayscale photo shipped inside scikit-image (no download), resized to size x size, in
    [0, 1]."""
    try:
        from skimage import color, data, transform
    except ImportError:
        raise ExperimentError(SKIMAGE_HINT) from None
    loader = getattr(data, name, None)
    if loader is None or not callable(loader):
        raise ExperimentError(f"unknown scikit-image sample image {name!r} (try camera, moon, "
                              f"coins, text, page)")
    try:
        img = np.asarray(loader())
    except Exception as exc:  # noqa: BLE001 - e.g. an image that would need a download
        raise ExperimentError(f"could not load skimage.data.{name}(): {exc}") from None
    if img.ndim == 3:
        img = color.rgb2gray(img[..., :3])
    img = img.astype(float)
    if img.max() > 1.0:
        img = img / 255.0
    return transform.resize(img, (size, size), anti_aliasing=True)


def image(ctx, *, image_name, size, true_rank, extra_rank, m_factor, max_iter, tol, init_scale):
    img = load_image(image_name, size)
    ranks = [true_rank] + ([true_rank + extra_rank] if extra_rank > 0 else [])
    if max(ranks) > size:
        raise ExperimentError(f"--true-rank + --extra-rank must be <= --size ({size})")
    ctx.thresholds = (1e-2, 1e-6)
    U, s, Vt = np.linalg.svd(img)
    Zs = (U[:, :true_rank] * s[:true_rank]) @ Vt[:true_rank]
    trunc = float(np.linalg.norm(img - Zs) / np.linalg.norm(img))
    dof = true_rank * (2 * size - true_rank)
    m = int(np.ceil(m_factor * dof))
    ctx.echo(f"skimage.data.{image_name}() resized to {size}x{size}, truncated to rank "
             f"{true_rank} (relative error of the truncation {trunc:.3g}); {m} Gaussian "
             f"measurements = {m_factor:g} x {dof} degrees of freedom (vs {size * size} pixels); "
             f"search ranks {', '.join(map(str, ranks))}")
    op = make_operator(ctx, "gaussian", size, m, d2=size)
    y = op.forward(Zs)
    specs = [MethodSpec("gd", f"GD asymmetric (init {init_scale:g})", "gd",
                        {"init_scale": init_scale}),
             MethodSpec("wn_rgd_precond", "WN-RGD rect. precond. [project addition]", "wn_rgd",
                        {"variant": "preconditioned"}),
             MethodSpec("wn_lbfgs", "WN-LBFGS rect., default [project addition]", "wn_rgd", {})]
    configs = []
    with ctx.progress(len(specs) * len(ranks)):
        for r in ranks:
            cfg = f"r={r}"
            configs.append(cfg)
            for spec in specs:
                ctx.solve(cfg, {"rank": r}, spec, op, y, r, x_true=Zs, rng=ctx.rng(2),
                          max_iter=max_iter, tol=tol)
    rows, rec = [], {}
    for run in ctx.runs:
        err_img = float(np.linalg.norm(run.result.x - img) / np.linalg.norm(img))
        rec[f"{run.config},{run.key}"] = {"rel_error_vs_lowrank": run.final_rel_error,
                                           "rel_error_vs_image": err_img}
        rows.append([run.value("rank"), run.label, fmt_num(run.final_rel_error),
                     fmt_num(err_img), str(run.result.nit), f"{run.result.time:.2f}",
                     run.result.stop_reason])
    table = format_table(["r", "method", "err vs rank-r* truth", "err vs image", "iterations",
                          "s", "stop"], rows)
    print_table(ctx, table, [f"'—': not reached; rank-{true_rank} truncation error vs the image: "
                             f"{trunc:.3g}."])
    best = min((v["rel_error_vs_lowrank"] for v in rec.values()), default=None)
    holds = best is not None and best <= 1e-4
    claim = report_claim(ctx, f"a rank-{true_rank} approximation of a real photo is recovered "
                         f"from {m} Gaussian measurements (< {size * size} pixels) to relative "
                         f"error <= 1e-4 (best method)", bool(holds), recovery=rec,
                         truncation_rel_error=trunc, m=m)

    def draw(path):
        ncols = 2 + len(specs)
        fig, axes = _plot.figure(len(ranks), ncols, width=2.7, height=3.0)
        for ax in axes.ravel():
            ax.set_axis_off()
        for ax, (title, a) in zip(axes[0], [("original", img), (f"rank-{true_rank} truth", Zs)]):
            ax.imshow(np.clip(a, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(title, fontsize=8)
        for i, cfg in enumerate(configs):
            for j, spec in enumerate(specs):
                run = ctx.find(cfg, spec.key)
                if run is None:
                    continue
                ax = axes[i, 2 + j]
                ax.imshow(np.clip(run.result.x, 0, 1), cmap="gray", vmin=0, vmax=1,
                          interpolation="nearest")
                ax.set_title(f"{spec.label}\n{cfg}: rel err {run.final_rel_error:.1e}",
                             fontsize=7)
        fig.suptitle(f"skimage.data.{image_name}, {size}x{size}, {m} measurements", fontsize=9)
        _plot.save(fig, path)

    ctx.make_plot(draw)
    return {"claim": claim, "table": table, "m": m, "truncation_rel_error": trunc}
