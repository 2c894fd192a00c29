"""The paper's experiments, each claim checked next to a control, runnable from Python or from
the command line (``python -m wnsense_native reproduce NAME``; ``reproduce --list`` gives their
run times).

>>> from wnsense_native.experiments import run_experiment
>>> summary = run_experiment("fig2a", kappas=[10], max_iter=2000, out="results", plot=False)
>>> summary["claim"]["holds"], summary["files"]["csv"]

Every run prints a table, writes ``wnsense_NAME.csv`` (long format: one row per recorded
iteration of every run; long runs are thinned to about 2000 rows unless ``csv_full=True``) and
``wnsense_NAME.json`` (parameters, per-run numbers, the claim check, file names) into ``out``,
and ``wnsense_NAME.png`` when ``plot=True`` and matplotlib is installed. The function returns the
JSON summary as a dict.

Methods that are not registered in this build of :func:`wnsense_native.solve` (not in
``wnsense_native.solvers.NATIVE_METHODS``) are reported in one line and skipped.
"""
from __future__ import annotations

import os
import time

from ._base import Context, Experiment, ExperimentError, Param, jsonable
from . import asymmetric as _asym
from . import competitors as _comp
from . import completion as _compl
from . import convergence as _conv
from . import samplecomplexity as _samp

__all__ = ["EXPERIMENTS", "DEMO", "run_experiment", "run_demo", "list_experiments", "expected_time",
           "resolve_params", "ExperimentError", "Param", "Experiment"]

_POS = dict(minimum=1)
_NONNEG = dict(minimum=0)


def _p(name, kind, default, help, **kw):
    return Param(name, kind, default, help, **kw)


EXPERIMENTS: dict[str, Experiment] = {}


def _register(exp: Experiment):
    EXPERIMENTS[exp.name] = exp
    return exp


_register(Experiment(
    "fig2a", "Fig. 2a: WN-RGD vs GD (small init), d=10, r*=3, r=5, kappa in {50,75,100}",
    _conv.fig2a, [
        _p("d", "int", 10, "matrix size", **_POS),
        _p("true_rank", "int", 3, "rank r* of Z*", **_POS),
        _p("rank", "int", 5, "search rank r", **_POS),
        _p("kappas", "floats", (50.0, 75.0, 100.0), "condition numbers (comma-separated)",
           minimum=1.0),
        _p("operator", "choice", "population", "population (A = Id) or gaussian",
           choices=("population", "gaussian")),
        _p("m", "int", 1000, "measurements for --operator gaussian", **_POS),
        _p("max_iter", "int", 150000, "iteration budget per run", **_NONNEG),
        _p("tol", "float", 1e-12, "stop at this relative residual", **_NONNEG),
        _p("init_scale", "float", 1e-3, "GD init scale alpha", minimum=0, strict=True),
        _p("preconditioned", "bool", True, "include the preconditioned WN-RGD line "
           "(project addition)"),
        _p("default", "bool", True, "include the library's default, WN-LBFGS (project "
           "addition); the paper's Algorithm 1 is the 'WN-RGD (paper, Alg. 1)' line"),
    ],
    full_note="fig2a is already at the paper's size; --full changes nothing"))

_register(Experiment(
    "fig2b", "Fig. 2b: growing search rank r speeds WN-RGD up, not GD (r*=5, kappa=10)",
    _conv.fig2b, [
        _p("d", "int", 40, "matrix size", full=300, **_POS),
        _p("m", "int", 1000, "number of measurements", full=50000, **_POS),
        _p("true_rank", "int", 5, "rank r* of Z*", **_POS),
        _p("kappa", "float", 10.0, "condition number", minimum=1.0),
        _p("ranks", "ints", (10, 15, 20), "search ranks (comma-separated)", full=(50, 75, 100),
           **_POS),
        _p("max_iter", "int", 5000, "iteration budget per run", full=3000, **_NONNEG),
        _p("tol", "float", 1e-10, "stop at this relative residual", **_NONNEG),
        _p("init_scale", "float", 1e-3, "GD init scale alpha", minimum=0, strict=True),
        _p("dtype", "choice", "float64", "operator storage", full="float32",
           choices=("float64", "float32")),
        _p("packed", "bool", False, "packed upper-triangle storage", full=True),
    ],
    full_note="--full: the paper's d=300, m=50000, r in {50,75,100}, float32 packed operator "
              "(9 GB RAM; about 2 s per WN-RGD iteration on 2 cores: hours; --max-time caps each run)",
    distributed=True))

_register(Experiment(
    "full_rank", "Full rank r = d: WN-RGD converges in one magnitude step",
    _conv.full_rank, [
        _p("ds", "ints", (10, 20, 50), "matrix sizes (comma-separated)", **_POS),
        _p("true_rank", "int", 3, "rank r* of Z*", **_POS),
        _p("kappa", "float", 10.0, "condition number", minimum=1.0),
        _p("operator", "choice", "population", "population (A = Id) or gaussian",
           choices=("population", "gaussian")),
        _p("m_factor", "float", 3.0, "gaussian: m = factor * d(d+1)/2", minimum=0, strict=True),
        _p("max_iter", "int", 500, "iteration budget per run", **_NONNEG),
        _p("tol", "float", 1e-12, "stop at this relative residual", **_NONNEG),
        _p("init_scale", "float", 1e-3, "GD init scale alpha", minimum=0, strict=True),
    ]))

_register(Experiment(
    "retractions", "Polar, QR and Cayley retractions give nearly identical WN-RGD curves",
    _conv.retractions, [
        _p("d", "int", 30, "matrix size", **_POS),
        _p("m", "int", 800, "number of measurements (gaussian)", **_POS),
        _p("true_rank", "int", 3, "rank r* of Z*", **_POS),
        _p("rank", "int", 5, "search rank r", **_POS),
        _p("kappa", "float", 5.0, "condition number", minimum=1.0),
        _p("operator", "choice", "gaussian", "gaussian or population",
           choices=("gaussian", "population")),
        _p("constant_step", "float", 0.5, "also run with this constant step (0: skip)",
           **_NONNEG),
        _p("max_iter", "int", 20000, "iteration budget per run", **_NONNEG),
        _p("tol", "float", 1e-10, "stop at this relative residual", **_NONNEG),
    ]))

_register(Experiment(
    "noise", "Noisy measurements: WN-RGD settles at the noise floor",
    _conv.noise, [
        _p("d", "int", 20, "matrix size", **_POS),
        _p("m", "int", 600, "number of measurements", **_POS),
        _p("true_rank", "int", 3, "rank r* of Z*", **_POS),
        _p("rank", "int", 5, "search rank r", **_POS),
        _p("kappa", "float", 3.0, "condition number", minimum=1.0),
        _p("sigmas", "floats", (0.0, 1e-4, 1e-3, 1e-2), "noise levels (comma-separated)",
           **_NONNEG),
        _p("max_iter", "int", 2000, "iteration budget per run", **_NONNEG),
        _p("tol", "float", 1e-12, "stop at this relative residual", **_NONNEG),
    ]))

_register(Experiment(
    "saddles", "Saddle-to-saddle: the error visits the best rank-l approximations in turn",
    _conv.saddles, [
        _p("d", "int", 30, "matrix size", **_POS),
        _p("true_rank", "int", 3, "rank r* of Z*", **_POS),
        _p("rank", "int", 6, "search rank r", **_POS),
        _p("kappa", "float", 100.0, "condition number (well separated spectrum)", minimum=1.0),
        _p("spectrum", "choice", "geomspace", "singular value spacing",
           choices=("geomspace", "linspace")),
        _p("max_iter", "int", 100000, "iteration budget per run", **_NONNEG),
        _p("tol", "float", 1e-10, "stop at this relative residual", **_NONNEG),
        _p("theta0", "float", 0.0, "WN-RGD initial magnitude Theta_0 = theta0 I", minimum=-2.0),
        _p("init_scale", "float", 1e-4, "GD init scale alpha", minimum=0, strict=True),
        _p("window", "float", 0.05, "relative distance that counts as 'near' a saddle",
           minimum=0, strict=True),
    ]))

_register(Experiment(
    "asymmetric", "Asymmetric GD: among runs that fit the data, test error roughly proportional "
                  "to the init scale; imbalance stays small",
    _asym.asymmetric, [
        _p("d1", "int", 20, "rows", **_POS),
        _p("d2", "int", 20, "columns", **_POS),
        _p("m", "int", 200, "number of measurements", **_POS),
        _p("true_rank", "int", 2, "rank r* of Z*", **_POS),
        _p("rank", "int", 20, "search rank r (overparameterized)", **_POS),
        _p("kappa", "float", 2.0, "condition number", minimum=1.0),
        _p("alphas", "floats", (1e-1, 1e-2, 1e-3), "init scales (comma-separated)",
           minimum=0, strict=True),
        _p("step_size", "float", 0.5, "constant step (0: the Armijo rule)", **_NONNEG),
        _p("max_iter", "int", 150000, "iteration budget per run", **_NONNEG),
        _p("tol", "float", 1e-5, "stop at this relative training residual; the runs that reach "
           "it are the fitted ones the claim compares", minimum=0, strict=True),
    ]))

_register(Experiment(
    "snn", "SNN paper Fig. 2: Spectral Neural Network vs plain GD on X and the min-norm "
           "interpolant (n=10, m=75, rank-6 PSD target, raw A_i)",
    _comp.snn, [
        _p("d", "int", 10, "matrix size n", **_POS),
        _p("true_rank", "int", 6, "columns of U in the target 100 U U^T (its rank)", **_POS),
        _p("m", "int", 75, "training measurements", **_POS),
        _p("m_test", "int", 75, "held-out test measurements", **_POS),
        _p("noise", "float", 1e-2, "standard deviation of the noise added to y", **_NONNEG),
        _p("widths", "ints", (2, 2, 2, 2), "SNN widths d_1,...,d_L (comma-separated)", **_POS),
        _p("init_scale", "float", 1e-4, "SNN start U_k = V_k = init_scale I (+ jitter)",
           minimum=0, strict=True),
        _p("step_size", "float", 1e-2, "constant SNN learning rate", minimum=0, strict=True),
        _p("max_iter", "int", 10001, "iterations of the SNN runs", **_NONNEG),
        _p("max_iter_x", "int", 10001, "iterations of GD on X (step 1/L)", **_NONNEG),
        _p("tol", "float", 0.0, "stop at this relative training residual (0: run every "
           "iteration, as the paper does)", **_NONNEG),
    ]))

_register(Experiment(
    "completion", "Matrix completion on real data: MovieLens 100k held-out RMSE (bias baseline vs "
                  "bias + low rank) and a scikit-image photo with half the pixels missing",
    _compl.completion, params=[
        _p("folds", "int", 5, "cross-validation folds", minimum=2),
        _p("rank", "int", 10, "search rank of the low-rank part", **_POS),
        _p("val_frac", "float", 0.1, "fraction of each fold's training ratings held out for "
           "early stopping", minimum=0, strict=True),
        _p("lam_user", "float", 5.0, "ridge of the user biases", **_NONNEG),
        _p("lam_item", "float", 5.0, "ridge of the item biases", **_NONNEG),
        _p("penalty", "float", 15.0, "nuclear-norm penalty of the low-rank part (0: early "
           "stopping alone)", **_NONNEG),
        _p("max_iter", "int", 500, "iteration budget per fit", **_NONNEG),
        _p("image_name", "str", "camera", "skimage.data sample photo (inpainting part)"),
        _p("image_size", "int", 128, "resize the photo to size x size", minimum=2),
        _p("image_ranks", "ints", (10, 20), "inpainting ranks", **_POS),
        _p("missing", "float", 0.5, "fraction of missing pixels", minimum=0, strict=True),
        _p("image_penalty", "float", 0.5, "nuclear-norm penalty of the inpainting fits (pixel "
           "values in [0, 1])", **_NONNEG),
    ]))

_register(Experiment(
    "image", "Image reconstruction: a low-rank photo (scikit-image) from Gaussian measurements",
    _asym.image, requires=("skimage", _asym.SKIMAGE_HINT), params=[
        _p("image_name", "str", "camera", "skimage.data sample image"),
        _p("size", "int", 48, "resize the image to size x size", minimum=2),
        _p("true_rank", "int", 8, "rank of the truncated image", **_POS),
        _p("extra_rank", "int", 4, "also run with search rank r* + extra (0: only r*)",
           **_NONNEG),
        _p("m_factor", "float", 4.0, "m = factor * r*(2 size - r*)", minimum=0, strict=True),
        _p("max_iter", "int", 3000, "iteration budget per run", **_NONNEG),
        _p("tol", "float", 1e-8, "stop at this relative residual", **_NONNEG),
        _p("init_scale", "float", 1e-3, "GD init scale", minimum=0, strict=True),
    ]))

_register(Experiment(
    "headtohead", "Head-to-head: WN-RGD (plain, precond.), GD, PrecGD, ScaledGD to 1e-10",
    _comp.headtohead, [
        _p("d", "int", 40, "matrix size", full=200, **_POS),
        _p("true_rank", "int", 3, "rank r* of Z*", full=10, **_POS),
        _p("m_factor", "float", 5.0, "m = factor * d * r*", minimum=0, strict=True),
        _p("kappas", "floats", (1.0, 5.0, 10.0, 20.0), "condition numbers", minimum=1.0),
        _p("ranks", "ints", (), "search ranks (default: r* and 2 r*; --full: r*)",
           full=(10,), **_POS),
        _p("max_iter", "int", 5000, "iteration budget per run", **_NONNEG),
        _p("target", "float", 1e-10, "target relative error", minimum=0, strict=True),
        _p("dtype", "choice", "float64", "operator storage", choices=("float64", "float32")),
        _p("packed", "bool", False, "packed upper-triangle storage", full=True),
    ],
    full_note="--full: d=200, r*=10, m=10000, r=r* (add --ranks 10,20 for the "
              "overparameterized case), packed float64 operator (1.6 GB)"))

_register(Experiment(
    "samplecomplexity", "Sample complexity vs overparameterization: the oversampling m/(d r*) "
                        "at which WN-RGD recovers Z*, for r = r*, 2r*, 4r*, 8r*",
    _samp.samplecomplexity, [
        _p("d", "int", 20, "matrix size", **_POS),
        _p("true_rank", "int", 2, "rank r* of Z*", **_POS),
        _p("kappa", "float", 1.0, "condition number", minimum=1.0),
        _p("rank_factors", "ints", (1, 2, 4, 8), "search ranks r = factor * r* "
           "(comma-separated)", **_POS),
        _p("oversampling", "floats", (1.5, 2.0, 2.5, 3.0, 4.0), "grid of m / (d r*) "
           "(comma-separated)", minimum=0, strict=True),
        _p("seeds", "int", 5, "problems (truth + operator) per grid point", **_POS),
        _p("constant_step", "float", 0.5, "the constant step of the paper's WN-RGD line",
           minimum=0, strict=True),
        _p("max_iter", "int", 1000, "iteration budget per run", **_NONNEG),
        _p("tol", "float", 1e-8, "stop at this relative residual", **_NONNEG),
        _p("target", "float", 1e-6, "recovered: final relative error <= target",
           minimum=0, strict=True),
        _p("rate", "float", 0.9, "fraction of seeds that defines the threshold", minimum=0,
           strict=True),
        _p("init_scale", "float", 1e-3, "GD init scale alpha", minimum=0, strict=True),
    ]))

# The demo: fig2a as the embedded default, its own file names, --quick for a smoke run.
DEMO = EXPERIMENTS["fig2a"]
DEMO_QUICK_MAX_ITER = 2000


# Wall seconds of one run at default size (``reproduce NAME --threads 1 --no-plot``), measured once
# on the project's 2-core machine while other work kept it loaded (load average 7-9): an idle
# machine is faster (fig2a: 25 s). image: estimated, not measured (scikit-image was not
# installed); completion: 14 s measured without its inpainting part, plus an estimate for it.
EXPECTED_SECONDS = {
    "fig2a": 65, "fig2b": 50, "full_rank": 2, "retractions": 16, "noise": 11, "saddles": 14,
    "asymmetric": 20, "snn": 8, "completion": 25, "image": 10, "headtohead": 31,
    "samplecomplexity": 55,
}


def list_experiments() -> list[tuple[str, str]]:
    return [(e.name, e.description) for e in EXPERIMENTS.values()]


def expected_time(name) -> str:
    """About how long ``reproduce NAME`` takes at default size, e.g. ``"~25 s"`` (``"?"`` when
    unknown): one run per experiment on a loaded 2-core machine with one thread; ``--full`` and
    larger parameters take longer."""
    sec = EXPECTED_SECONDS.get(name)
    if sec is None:
        return "?"
    return f"~{sec} s" if sec < 120 else f"~{sec / 60:.0f} min"


def resolve_params(exp: Experiment, full=False, **given) -> dict:
    """Defaults (or ``--full`` defaults) updated by the explicitly given values (None = unset)."""
    names = {p.name for p in exp.params}
    unknown = sorted(set(given) - names)
    if unknown:
        raise ExperimentError(f"{exp.name} has no parameter(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(sorted(names))}")
    params = {}
    for p in exp.params:
        v = given.get(p.name)
        params[p.name] = p.check(v) if v is not None else p.default_for(full)
    return params


def run_experiment(name, *, seed=0, out=".", plot=True, full=False, progress=False,
                   verbose=True, csv_full=False, max_time=None, n_threads=None,
                   file_stem=None, label=None, client=None, **params) -> dict:
    """Run experiment ``name`` and write its files; returns the JSON summary (a dict).

    ``params``: the experiment's parameters (see ``EXPERIMENTS[name].params``), e.g.
    ``kappas=[10], max_iter=2000``; unset ones take their defaults (``full=True``: the paper's
    size where the experiment has one). ``max_time`` limits each solve (seconds). ``client``: a
    ``distributed.Client`` on which the experiment's Gaussian operator is sharded
    (experiments with ``distributed=True`` only; the numbers are the same bit for bit).
    """
    exp = EXPERIMENTS.get(name)
    if exp is None:
        raise ExperimentError(f"unknown experiment {name!r}; available: "
                              f"{', '.join(EXPERIMENTS)}")
    resolved = resolve_params(exp, full=full, **params)
    if client is not None and not exp.distributed:
        raise ExperimentError(f"experiment {exp.name!r} does not run on a Dask cluster "
                              f"(client= is for: "
                              f"{', '.join(e.name for e in EXPERIMENTS.values() if e.distributed)})")
    if exp.requires:
        module, hint = exp.requires
        try:
            __import__(module)
        except ImportError:
            raise ExperimentError(hint) from None
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ExperimentError(f"seed must be a non-negative integer, got {seed!r}")
    out = os.fspath(out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise ExperimentError(f"cannot create output directory {out!r}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise ExperimentError(f"output directory {out!r} is not writable")
    ctx = Context(exp, seed=seed, out=out, plot=plot, progress=progress, verbose=verbose,
                  csv_full=csv_full, max_time=max_time, n_threads=n_threads,
                  file_stem=file_stem, name=label, client=client)
    ctx.echo(f"== {ctx.name}: {exp.description}")
    if full and exp.full_note:
        ctx.echo(f"   {exp.full_note}")
    t0 = time.perf_counter()
    extra = exp.impl(ctx, **resolved) or {}
    elapsed = time.perf_counter() - t0

    import wnsense_native as wn

    results = [run.record(ctx.thresholds) for run in ctx.runs]
    results += [{"method": key, "available": False, "message": msg}
                for key, msg in ctx.unavailable.items()]
    files = {"csv": ctx.write_csv(), "json": ctx.path("json"), "plot": ctx.plot_path}
    summary = {
        "experiment": ctx.name, "description": exp.description, "seed": seed, "full": full,
        "params": resolved, "version": wn.__version__, "elapsed_seconds": elapsed,
        "results": results, "unavailable": dict(ctx.unavailable), "notes": ctx.notes,
        "files": files, **extra,
    }
    summary = jsonable(summary)
    ctx.write_json(summary)
    ctx.echo(f"total time {elapsed:.1f} s")
    for kind in ("csv", "json", "plot"):
        if files[kind]:
            ctx.echo(f"wrote {files[kind]}")
    return summary


def run_demo(*, quick=False, max_iter=None, **kw) -> dict:
    """The embedded default of ``python -m wnsense_native demo``: the Fig. 2a comparison on the
    population operator (WN-RGD, its preconditioned variant, GD with small init)."""
    if max_iter is None and quick:
        max_iter = DEMO_QUICK_MAX_ITER
    kw.setdefault("file_stem", "wnsense_demo")
    kw.setdefault("label", "demo")
    return run_experiment("fig2a", max_iter=max_iter, **kw)


def _make_runner(name):
    exp = EXPERIMENTS[name]

    def runner(**kwargs) -> dict:
        return run_experiment(name, **kwargs)

    runner.__name__ = runner.__qualname__ = name
    runner.__doc__ = (f"{exp.description}.\n\nShorthand for ``run_experiment({name!r}, **kwargs)``; "
                      f"parameters: {', '.join(p.name for p in exp.params)}. Returns the summary "
                      f"dict.")
    return runner


for _name in EXPERIMENTS:
    globals()[_name] = _make_runner(_name)
    __all__.append(_name)
del _name
