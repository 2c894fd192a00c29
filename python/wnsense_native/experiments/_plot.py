"""Optional plotting (matplotlib, the ``plots`` extra). Uses the object-oriented API with the Agg
canvas only: no pyplot, no global backend switch, nothing shown on screen."""
from __future__ import annotations

import numpy as np


def thin_indices(n: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` indices of ``range(n)`` (0 and n-1 included), half spaced
    geometrically (the early transients), half linearly (the tail)."""
    if n <= max_points or max_points <= 0:
        return np.arange(n)
    half = max(max_points // 2, 2)
    geo = np.unique(np.geomspace(1, n - 1, half).astype(np.int64))
    lin = np.linspace(0, n - 1, half).astype(np.int64)
    return np.unique(np.concatenate(([0, n - 1], geo, lin)))


INSTALL_HINT = "plots disabled: matplotlib is not installed (pip install wnsense_native[plots])"

# one colour per method key, shared by every figure
COLORS = {
    "wn_rgd": "#1f77b4",
    "wn_lbfgs": "#000000",
    "wn_rgd_precond": "#2ca02c",
    "gd": "#d62728",
    "gd_imbalanced": "#ff7f0e",
    "precgd": "#9467bd",
    "scaledgd": "#8c564b",
    "snn": "#17becf",
    "gd_x": "#7f7f7f",
    "min_norm": "#bcbd22",
    "polar": "#1f77b4",
    "qr": "#ff7f0e",
    "cayley": "#2ca02c",
}
STYLES = {"qr": "--", "cayley": ":", "wn_rgd_precond": "-.", "gd_x": "--"}


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        return False
    return True


def figure(nrows=1, ncols=1, *, width=4.6, height=3.6, **kw):
    """A ``Figure`` (Agg canvas attached) and a 2-D array of axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    try:
        fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    except TypeError:  # matplotlib < 3.6
        fig = Figure(figsize=(width * ncols, height * nrows), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save(fig, path, dpi=130) -> str:
    fig.savefig(path, dpi=dpi)
    return path


def tidy_iteration_axis(ax):
    """Few, non-overlapping iteration ticks (runs can be 10^5 iterations long)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-4, 4), useMathText=True)


def curve(ax, run, *, y="rel_error", label=None, max_points=4000, **kw):
    """Plot ``history[y]`` against the iteration (thinned to ``max_points`` for big runs)."""

    h = run.history.get(y)
    if h is None or len(h) == 0:
        return
    idx = thin_indices(len(h), max_points)
    vals = np.asarray(h)[idx]
    style = dict(color=COLORS.get(run.key), linestyle=STYLES.get(run.key, "-"), linewidth=1.6)
    style.update(kw)
    # log axes cannot show exact zeros
    vals = np.where(vals > 0, vals, np.nan)
    ax.plot(idx, vals, label=label or run.label, **style)


def convergence_panels(runs, configs, *, title, y="rel_error", ylabel="relative error",
                       xlog=False, hlines=None, panel_title=None, suptitle=None, path=None):
    """One panel per config with every method's curve; ``hlines``: config -> [(value, label)]."""
    fig, axes = figure(1, len(configs), sharey=True)
    for j, cfg in enumerate(configs):
        ax = axes[0, j]
        for run in runs:
            if run.config == cfg:
                curve(ax, run, y=y)
        for value, label in (hlines or {}).get(cfg, []):
            ax.axhline(value, color="0.5", linewidth=0.8, linestyle=":")
            ax.annotate(label, (1.0, value), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=7, color="0.35")
        ax.set_yscale("log")
        if xlog:
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlim(left=0)
        else:
            tidy_iteration_axis(ax)
        ax.set_xlabel("iteration")
        ax.set_title(panel_title(cfg) if panel_title else cfg)
        ax.grid(True, which="major", alpha=0.3)
        if j == 0:
            ax.set_ylabel(ylabel)
    # beside the last panel, not on one: curves reach every corner of a panel somewhere
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(suptitle or title, fontsize=10)
    return save(fig, path)
