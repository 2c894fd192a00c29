"""Matrix completion on real data (``reproduce completion``): held-out ratings of MovieLens 100k
and image inpainting.

**Ratings.** MovieLens 100k (943 users x 1682 items, 100,000 ratings 1..5; GroupLens' data as
redistributed inside the PyPI wheel ``recbole``: ``pip install --no-deps recbole``, nothing is
downloaded, nothing of it is committed here). A seeded k-fold split; on each fold the training
ratings are split once more into a fit part and a validation part (for early stopping). Models:

- ``bias``: ``mu + b_user + b_item`` by alternating exact ridge (the strong baseline of
  recommender benchmarks);
- ``low rank``: the bias model, plus a rank-``r`` model of the remaining residual fitted by
  :func:`wnsense_native.solve` on :func:`wnsense_native.completion_sensing` with the
  held-out part as ``validation`` (the best-validation iterate is returned) and a nuclear-norm
  penalty ``penalty * ||Z||_*`` (the factor-ridge penalty of matrix-factorization recommenders,
  in its factor-free form);

predictions clipped to [1, 5]; test RMSE and fit seconds per fold. The claim: the low-rank model
beats the bias baseline on every fold (the comparison with a recommender library's SVD runs in
``bench/bench_completion_peers.py``, which installs the peer).

**Inpainting.** A grayscale photo shipped inside scikit-image, half the pixels missing (seeded),
completed at rank ``r`` by :func:`wnsense_native.complete` with a validation split and a small
nuclear-norm penalty (``image_penalty``; it gained 1.4-2.4 dB over early stopping alone); PSNR on the
missing pixels next to the best rank-``r`` approximation of the full photo (the oracle) and the
trivial fill with the mean of the observed pixels (the control).
"""
from __future__ import annotations

import importlib.util
import os
import time

import numpy as np

from ..completion import complete
from ..operators import completion_sensing
from ..solvers import solve
from ._base import ExperimentError, fmt_num, format_table
from .convergence import report_claim

RECBOLE_HINT = ("the ratings data ship inside the 'recbole' wheel: "
                "pip install --no-deps recbole==1.2.1 (2 MB, pure Python; --no-deps skips its "
                "torch dependency, which reading the file does not need)")


# ------------------------------------------------------------------------------------------------
# data

def ml100k_path() -> str:
    """Path of ``ml-100k.inter`` inside the installed ``recbole`` package, found without importing
    it (recbole imports torch); ``$WNSENSE_ML100K`` overrides."""
    env = os.environ.get("WNSENSE_ML100K")
    if env:
        return env
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise ExperimentError(RECBOLE_HINT)
    for base in spec.submodule_search_locations:
        path = os.path.join(base, "dataset_example", "ml-100k", "ml-100k.inter")
        if os.path.isfile(path):
            return path
    raise ExperimentError("recbole is installed but has no dataset_example/ml-100k/ml-100k.inter")


def load_ml100k(path=None):
    """``(users, items, ratings, shape)``: 0-based int64 ids, float64 ratings, (943, 1682)."""
    a = np.loadtxt(path or ml100k_path(), dtype=np.int64, skiprows=1, delimiter="\t")
    if a.ndim != 2 or a.shape[1] < 3:
        raise ExperimentError(f"unexpected ml-100k.inter layout {a.shape}")
    users, items = a[:, 0] - 1, a[:, 1] - 1
    return users, items, a[:, 2].astype(np.float64), (int(users.max()) + 1, int(items.max()) + 1)


def kfold(n, k, gen):
    """Seeded random k-fold split of ``range(n)``: ``[(train, test), ...]``."""
    folds = np.array_split(gen.permutation(n), k)
    return [(np.sort(np.concatenate(folds[:j] + folds[j + 1:])), np.sort(folds[j]))
            for j in range(k)]


# ------------------------------------------------------------------------------------------------
# models

def fit_biases(users, items, ratings, shape, *, lam_user, lam_item, sweeps=10):
    """``mu + b_u + b_i`` by alternating exact ridge: ``b_u = sum(r - mu - b_i) / (n_u +
    lam_user)`` over the user's ratings, then the items likewise. Returns ``(mu, b_u, b_i)``."""
    mu = float(ratings.mean())
    b_u, b_i = np.zeros(shape[0]), np.zeros(shape[1])
    n_u = np.bincount(users, minlength=shape[0])
    n_i = np.bincount(items, minlength=shape[1])
    for _ in range(sweeps):
        b_u = np.bincount(users, ratings - mu - b_i[items], shape[0]) / (n_u + lam_user)
        b_i = np.bincount(items, ratings - mu - b_u[users], shape[1]) / (n_i + lam_item)
    return mu, b_u, b_i


def _rmse(pred, truth):
    return float(np.sqrt(np.mean((np.clip(pred, 1.0, 5.0) - truth) ** 2)))


def fit_low_rank(users, items, resid, shape, *, rank, val_frac, gen, solve_options):
    """The rank-``rank`` model of the residual ratings: a held-out ``val_frac`` for early
    stopping, the rest as completion measurements. Returns the :func:`solve` result."""
    held = gen.random(resid.size) < val_frac
    op = completion_sensing(users[~held], items[~held], shape)
    op_val = completion_sensing(users[held], items[held], shape)
    return solve(op, resid[~held], rank, rng=gen, validation=(op_val, resid[held]),
                 **solve_options)


def ratings(ctx, *, folds, rank, val_frac, lam_user, lam_item, max_iter, solve_options):
    """Test RMSE per fold of the bias baseline and of bias + low rank (see the module
    docstring); returns the table rows, the per-model RMSEs and the claim's checks."""
    users, items, r, shape = load_ml100k()
    ctx.echo(f"MovieLens 100k: {r.size:,} ratings, {shape[0]} users x {shape[1]} items "
             f"({ml100k_path()})")
    splits = kfold(r.size, folds, ctx.rng(10))
    per_model = {"bias": [], "low rank": []}
    seconds = {"bias": [], "low rank": []}
    rows = []
    for j, (train, test) in enumerate(splits):
        t0 = time.perf_counter()
        mu, b_u, b_i = fit_biases(users[train], items[train], r[train], shape,
                                  lam_user=lam_user, lam_item=lam_item)
        base_train = mu + b_u[users[train]] + b_i[items[train]]
        seconds["bias"].append(time.perf_counter() - t0)
        base_test = mu + b_u[users[test]] + b_i[items[test]]
        per_model["bias"].append(_rmse(base_test, r[test]))
        t0 = time.perf_counter()
        res = fit_low_rank(users[train], items[train], r[train] - base_train, shape, rank=rank,
                           val_frac=val_frac, gen=ctx.rng(11, j),
                           solve_options=dict(max_iter=max_iter, **solve_options))
        seconds["low rank"].append(time.perf_counter() - t0 + seconds["bias"][-1])
        pred = base_test + res.predict(users[test], items[test])
        per_model["low rank"].append(_rmse(pred, r[test]))
        rows.append([j, fmt_num(per_model["bias"][-1], ".4f"),
                     fmt_num(per_model["low rank"][-1], ".4f"), res.best_iteration,
                     res.stop_reason, f"{seconds['low rank'][-1]:.2f}"])
    return rows, per_model, seconds


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def inpainting(ctx, *, image_name, size, ranks, missing, solve_options):
    """PSNR on the missing pixels: completion at each rank, the oracle (best rank-r
    approximation of the full image) and the observed-mean fill (the control)."""
    from .asymmetric import load_image
    img = load_image(image_name, size)
    gen = ctx.rng(12)
    hole = gen.random(img.shape) < missing
    X = img.copy()
    X[hole] = np.nan
    P, s, Qt = np.linalg.svd(img)
    control = psnr(np.full(hole.sum(), img[~hole].mean()), img[hole])
    rows, result = [], {}
    for r in ranks:
        t0 = time.perf_counter()
        out, res = complete(X, r, rng=ctx.rng(13, r), validation_fraction=0.1,
                            return_result=True, **solve_options)   # complete's own variant
        secs = time.perf_counter() - t0
        oracle = (P[:, :r] * s[:r]) @ Qt[:r]
        got, best = psnr(out[hole], img[hole]), psnr(oracle[hole], img[hole])
        result[r] = {"psnr": got, "oracle_psnr": best, "seconds": secs,
                     "stop_reason": res.stop_reason}
        rows.append([r, f"{got:.2f}", f"{best:.2f}", f"{control:.2f}", res.stop_reason,
                     f"{secs:.2f}"])
    return rows, result, control


def completion(ctx, *, folds, rank, val_frac, lam_user, lam_item, penalty, max_iter,
               image_name, image_size, image_ranks, missing, image_penalty):
    # the Theta-preconditioned WN-RGD (learned magnitude step): it takes the penalty (a proximal
    # magnitude step; its direction S X also moves X while Theta = 0, which the penalized start
    # needs) and keeps the implicit low-rank bias of the alternating method (the default
    # WN-LBFGS has neither; see wnsense_native.complete)
    solve_options = {"variant": "preconditioned", "penalty": penalty}
    rows, per_model, seconds = ratings(ctx, folds=folds, rank=rank, val_frac=val_frac,
                                       lam_user=lam_user, lam_item=lam_item, max_iter=max_iter,
                                       solve_options=solve_options)
    table = format_table(["fold", "bias RMSE", "bias + low rank RMSE", "best it.", "stop",
                          "fit s"], rows)
    ctx.echo(table)
    mean = {k: float(np.mean(v)) for k, v in per_model.items()}
    ctx.echo(f"mean test RMSE: bias {mean['bias']:.4f}, bias + rank-{rank} "
             f"{mean['low rank']:.4f} (mean fit {np.mean(seconds['low rank']):.2f} s)")
    checks = {"low_rank_beats_bias_on_every_fold": all(
        lr < b for lr, b in zip(per_model["low rank"], per_model["bias"]))}
    img_rows, img, control = [], {}, None
    try:
        img_rows, img, control = inpainting(ctx, image_name=image_name, size=image_size,
                                            ranks=image_ranks, missing=missing,
                                            solve_options={"max_iter": max_iter,
                                                           "penalty": image_penalty,
                                                           "patience": 50})
    except ExperimentError as exc:       # scikit-image missing: the ratings part still stands
        ctx.note(f"inpainting skipped: {exc}")
    if img_rows:
        ctx.echo(format_table(["rank", "PSNR (missing px)", "oracle rank-r", "mean fill",
                               "stop", "s"], img_rows))
        checks["inpainting_beats_the_mean_fill"] = all(v["psnr"] > control + 3.0
                                                       for v in img.values())
    claim = report_claim(
        ctx, f"on MovieLens 100k the bias + rank-{rank} model has a lower test RMSE than the "
             f"bias baseline on every fold; the inpainted photo beats the mean fill by > 3 dB",
        all(checks.values()), checks=checks, rmse=per_model, seconds=seconds,
        inpainting={str(k): v for k, v in img.items()})
    return {"claim": claim, "table": table}
