"""Sample complexity against overparameterization: how many Gaussian measurements the paper's
WN-RGD needs to recover ``Z*`` as the search rank ``r`` grows.

The paper's abstract says that both iteration and sample complexity improve polynomially as the
level of overparameterization increases. ``fig2b`` checks the iteration side; this experiment
checks the sample side. For every search rank ``r`` in ``{r*, 2 r*, 4 r*, 8 r*}`` and every
oversampling ``m / (d r*)`` of a grid it solves the same problems (one truth and one Gaussian
operator per seed) and counts the seeds whose final relative error is at most ``target``. The
threshold of a line is the smallest oversampling of the grid from which on (that one and every
larger one) at least ``rate`` of the seeds recover.

Lines: the paper's Algorithm 1 (``variant="paper"``) with a constant step and with the library's
safeguarded step rule; GD with small initialization as the control (overparameterized GD has the
same implicit low-rank bias but no magnitude step); PrecGD as a reference.

Cost: the grid is walked from the largest oversampling down, and a line (method, r) whose seeds
all failed at some oversampling is not run at the smaller ones (counted as 0 recovered, marked in
the table): a failed run costs its whole iteration budget, and fewer measurements do not help.
"""
from __future__ import annotations

import math

from . import _plot
from ._base import MethodSpec, format_table
from .convergence import _shades, check_ranks, print_table, report_claim


def _specs(constant_step, init_scale):
    return [
        MethodSpec("wn_rgd_const", f"WN-RGD paper, step {constant_step:g}", "wn_rgd",
                   {"variant": "paper"},
                   note=f"the paper's Algorithm 1 with the constant step eta = {constant_step:g} "
                        f"(and its magnitude step mu = 2)"),
        MethodSpec("wn_rgd", "WN-RGD paper, step rule", "wn_rgd", {"variant": "paper"},
                   note="the paper's Algorithm 1 with the library's safeguarded step rule"),
        MethodSpec("gd", f"GD small init {init_scale:g} [control]", "gd",
                   {"init_scale": init_scale}),
        MethodSpec("precgd", "PrecGD [reference]", "precgd", {}),
    ]


def threshold(rates, oversampling, rate):
    """Smallest oversampling from which on every grid point recovers ``>= rate`` of the seeds;
    None when even the largest does not. ``rates``: oversampling -> fraction recovered."""
    found = None
    for ov in sorted(oversampling, reverse=True):
        if rates[ov] is None or rates[ov] < rate:
            break
        found = ov
    return found


def falls(thresholds):
    """The claim on one line: every threshold found, non-increasing in r, the last below the
    first. ``thresholds``: list over the ranks in increasing order."""
    return (bool(thresholds) and all(t is not None for t in thresholds)
            and all(a >= b for a, b in zip(thresholds, thresholds[1:]))
            and thresholds[-1] < thresholds[0])


def samplecomplexity(ctx, *, d, true_rank, kappa, rank_factors, oversampling, seeds,
                     constant_step, max_iter, tol, target, rate, init_scale):
    import wnsense_native as wn

    ranks = sorted({int(k) * true_rank for k in rank_factors})
    check_ranks(d, true_rank, ranks)
    grid = sorted(set(oversampling))
    specs = _specs(constant_step, init_scale)
    ctx.thresholds = (target,)
    ctx.csv_points = 20          # hundreds of runs: the JSON holds each run's numbers
    ctx.run_lines = False        # one line per (oversampling, seed) below instead
    dr = d * true_rank
    ctx.echo(f"d = {d}, r* = {true_rank}, kappa = {kappa:g}, r in {{{', '.join(map(str, ranks))}}}, "
             f"m = ceil(o * d r*) for o in {{{', '.join(f'{o:g}' for o in grid)}}}, {seeds} seeds, "
             f"recovered: relative error <= {target:g} within {max_iter} iterations")

    # counts[key][r][ov] = [recovered, run]; dead[(key, r)]: all seeds failed at a larger ov
    counts = {s.key: {r: {ov: [0, 0] for ov in grid} for r in ranks} for s in specs}
    skipped = {s.key: {r: set() for r in ranks} for s in specs}
    dead = set()
    diverged = {s.key: 0 for s in specs}
    with ctx.progress(len(grid) * seeds * len(ranks) * len(specs)):
        for ov in reversed(grid):
            m = int(math.ceil(ov * dr))
            for seed in range(seeds):
                Zs = wn.low_rank_target(d, true_rank, kappa, rng=ctx.rng(0, seed))
                op = wn.gaussian_sensing(d, m, rng=ctx.rng(1, round(ov * 1000), seed),
                                         n_threads=ctx.n_threads)
                y = op.forward(Zs)
                line = []
                for r in ranks:
                    for spec in specs:
                        cfg = f"o={ov:g},r={r},seed={seed}"
                        if (spec.key, r) in dead:
                            skipped[spec.key][r].add(ov)
                            ctx._advance(cfg, spec)
                            line.append("-")
                            continue
                        run = ctx.solve(cfg, {"oversampling": ov, "m": m, "rank": r,
                                              "seed": seed}, spec, op, y, r, x_true=Zs,
                                        rng=ctx.rng(2, seed), max_iter=max_iter, tol=tol,
                                        step_size=constant_step if spec.key == "wn_rgd_const"
                                        else None)
                        if run is None:
                            continue
                        ok = run.final_rel_error is not None and run.final_rel_error <= target
                        counts[spec.key][r][ov][0] += ok
                        counts[spec.key][r][ov][1] += 1
                        diverged[spec.key] += run.result.stop_reason == "diverged"
                        line.append("+" if ok else ".")
                    line.append(" ")
                ctx.echo(f"  o = {ov:<4g} m = {m:<5d} seed {seed}: {''.join(line).strip()}")
            for spec in specs:
                for r in ranks:
                    got, tried = counts[spec.key][r][ov]
                    if tried and got == 0:
                        dead.add((spec.key, r))
    ctx.echo("  (one group per r, one mark per method in the table's order: + recovered, "
             ". not, - not run)")

    rates, found = {}, {}
    for spec in specs:
        if spec.key in ctx.unavailable:
            continue
        rates[spec.key], found[spec.key] = {}, {}
        for r in ranks:
            rr = {}
            for ov in grid:
                got, tried = counts[spec.key][r][ov]
                rr[ov] = (got / tried) if tried else (0.0 if ov in skipped[spec.key][r] else None)
            rates[spec.key][r] = rr
            found[spec.key][r] = threshold(rr, grid, rate)

    headers = ["method", "r"] + [f"o={ov:g}" for ov in grid] + [f">={rate:.0%} from"]
    rows = []
    for spec in specs:
        if spec.key not in rates:
            continue
        for r in ranks:
            cells = []
            for ov in grid:
                got, tried = counts[spec.key][r][ov]
                cells.append(f"0/{seeds}*" if ov in skipped[spec.key][r] else f"{got}/{tried}")
            t = found[spec.key][r]
            rows.append([spec.label, str(r)] + cells + ["—" if t is None else f"{t:g}"])
    table = format_table(headers, rows)
    foot = [f"o = m / (d r*), d r* = {dr}; cells: seeds recovered to relative error <= "
            f"{target:g} / seeds run; '*': not run (every seed failed at a larger o); '—': "
            f"no o of the grid reaches {rate:.0%}.",
            "Degrees of freedom of Z*: d r* - r*(r*-1)/2 = "
            f"{dr - true_rank * (true_rank - 1) // 2} (o = "
            f"{(dr - true_rank * (true_rank - 1) // 2) / dr:.2f})."]
    foot += [f"{s.label}: {s.note}." for s in specs if s.note]
    # why the failed runs failed: too few measurements cannot be told from the budget by the
    # table alone; at the largest o, a run still descending at max_iter is budget-limited
    failed = {}
    for run in ctx.runs:
        if run.config_values["oversampling"] == grid[-1] and not (
                run.final_rel_error is not None and run.final_rel_error <= target):
            key = f"{run.spec.key} r={run.config_values['rank']}"
            failed.setdefault(key, {}).setdefault(run.result.stop_reason, 0)
            failed[key][run.result.stop_reason] += 1
    if failed:
        foot.append(f"failed runs at o = {grid[-1]:g} by stop reason: "
                    + "; ".join(f"{k}: " + ", ".join(f"{n} {why}" for why, n in v.items())
                                for k, v in failed.items())
                    + f" (max_iter: still above {target:g} after {max_iter} iterations)")
    print_table(ctx, table, foot)

    checks = {}
    for key, by_r in found.items():
        ts = [by_r[r] for r in ranks]
        checks[key] = {"thresholds": {str(r): t for r, t in zip(ranks, ts)},
                       "falls": falls(ts),
                       "first_over_last": (ts[0] / ts[-1]) if ts[0] and ts[-1] else None}
    main = checks.get("wn_rgd_const")
    holds = None if main is None else main["falls"]
    ts = [] if main is None else list(main["thresholds"].values())
    statement = (f"the paper's WN-RGD (constant step {constant_step:g}) needs fewer measurements "
                 f"as r grows: the oversampling m/(d r*) from which >= {rate:.0%} of the seeds "
                 f"recover to {target:g} falls from r = {ranks[0]} to r = {ranks[-1]} "
                 f"(thresholds {', '.join('—' if t is None else f'{t:g}' for t in ts)})")
    claim = report_claim(ctx, statement, holds, budget_hint=False, checks=checks,
                         rates={k: {str(r): {f"{ov:g}": v for ov, v in rr.items()}
                                    for r, rr in by_r.items()} for k, by_r in rates.items()})
    if main is not None:
        if main["first_over_last"]:
            ctx.note(f"threshold at r = {ranks[0]} over threshold at r = {ranks[-1]}: "
                     f"{main['first_over_last']:.2g}x")
        for key, label in (("gd", "GD (control)"), ("precgd", "PrecGD (reference)"),
                           ("wn_rgd", "WN-RGD with the step rule")):
            if key in checks:
                c = checks[key]
                ctx.note(f"{label}: thresholds "
                         + ", ".join(f"r={r}: {'—' if t is None else f'{t:g}'}"
                                     for r, t in c["thresholds"].items())
                         + (" (falls as well)" if c["falls"] else " (does not fall)"))

    def draw(path):
        keys = [s for s in specs if s.key in rates]
        fig, axes = _plot.figure(1, len(keys), sharey=True, width=3.4, height=3.2)
        shades = _shades(len(ranks))
        for ax, spec in zip(axes[0], keys):
            for r, c in zip(ranks, shades):
                pts = [(ov, v) for ov, v in rates[spec.key][r].items() if v is not None]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3,
                        color=c, label=f"r = {r}")
            ax.axhline(rate, color="0.5", linewidth=0.8, linestyle=":")
            ax.set_title(spec.label, fontsize=8)
            ax.set_xlabel("m / (d r*)")
            ax.set_ylim(-0.05, 1.05)
            ax.grid(True, alpha=0.3)
        axes[0, 0].set_ylabel("fraction of seeds recovered")
        # outside the panels: the curves fill every corner between 0 and 1
        axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        fig.suptitle(f"Recovery to {target:g} against oversampling: d={d}, r*={true_rank}, "
                     f"κ={kappa:g}, {seeds} seeds", fontsize=10)
        _plot.save(fig, path)

    ctx.make_plot(draw)
    return {"claim": claim, "table": table, "thresholds": found_json(found),
            "failed_at_largest_oversampling": failed, "diverged": diverged,
            "skipped": {k: {str(r): sorted(v) for r, v in by_r.items()}
                        for k, by_r in skipped.items()}}


def found_json(found):
    return {k: {str(r): t for r, t in by_r.items()} for k, by_r in found.items()}

