"""Held-out RMSE and fit time on MovieLens 100k: this library's ratings models against recommender
libraries' matrix factorizations, on the same seeded splits.

    pip install --no-deps recbole==1.2.1     # the data (inside its wheel; 2 MB, pure Python)
    pip install scikit-surprise libmf cmfrec  # the peers (each optional; cmfrec builds ~2.5 min)
    python bench/bench_completion_peers.py [--folds 5] [--models default]

Models, per fold (80% train / 20% test, seeded k-fold; the same splits for every model):
- ``bias``: ``mu + b_user + b_item`` by alternating ridge (``experiments.completion.fit_biases``);
- ``wnsense nuclear``: the bias model plus a rank-``r`` model of the residual ratings,
  ``wn.solve(completion_sensing(...), variant="preconditioned", penalty=...)`` with 10% of the
  training ratings held out for early stopping (what ``reproduce completion`` runs; the penalty
  chosen by hand);
- ``LowRankRegressor()``: ``wnsense_native.estimators.LowRankRegressor`` with its defaults (biases
  in the model, the count-weighted ridge, the penalty and rank chosen on a held-out share of the
  training ratings); only ``random_state`` is set, to the fold number;
- ``surprise.SVD()``, ``surprise.SVDpp()``, ``surprise.BaselineOnly()`` with their defaults;
- ``cmfrec ALS, CV-tuned``: ``cmfrec.CMF(method="als")`` (40 factors, biases) with ``lambda_`` and
  ``scale_lam`` chosen by 3-fold cross-validation on the training part (the grid below); its fit
  time includes the cross-validation, as ``LowRankRegressor``'s includes its own choice
  (``--models cmfrec-oracle`` adds, as a control, the grid point best on the test fold itself);
- ``libmf``: ``libmf.mf.MF()`` with its defaults (8 factors, parallel SGD, 20 iterations).
Predictions are clipped to [1, 5]. Fit seconds are wall and CPU time of the fit alone (the
machine's load shows in wall time). A missing package skips its rows with a message.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import parse_args, table

from wnsense_native.experiments._base import ExperimentError
from wnsense_native.experiments.completion import (_rmse, fit_biases, fit_low_rank, kfold,
                                                   load_ml100k)

# cmfrec's tuning grid: its plain ridge (scale_lam=False) and ALS-WR's count-scaled one
CMFREC_GRID = [{"scale_lam": False, "lambda_": lam} for lam in (5.0, 10.0, 20.0, 40.0)] + \
              [{"scale_lam": True, "lambda_": lam} for lam in (0.05, 0.1, 0.2)]
ALL_MODELS = ("bias", "nuclear", "regressor", "surprise", "svdpp", "cmfrec", "libmf",
              "cmfrec-oracle")
DEFAULT_MODELS = ALL_MODELS[:-1]


def timed(fit):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fit()
    return out, time.perf_counter() - t0, time.process_time() - c0


def surprise_models(wanted):
    try:
        from surprise import SVD, BaselineOnly, Dataset, Reader, SVDpp
    except ImportError:
        print("scikit-surprise not installed: its rows are skipped (pip install scikit-surprise)")
        return {}
    reader = Reader(rating_scale=(1, 5))

    def runner(make):
        def run(u, i, r, tr, te, fold):
            raw = [(str(a), str(b), float(c), None) for a, b, c in zip(u[tr], i[tr], r[tr])]
            trainset = Dataset(reader).construct_trainset(raw)
            algo = make()
            _, secs, cpu = timed(lambda: algo.fit(trainset))
            pred = np.array([algo.predict(str(u[k]), str(i[k])).est for k in te])
            return pred, secs, cpu
        return run

    models = {}
    if "surprise" in wanted:
        models["surprise.SVD()"] = runner(lambda: SVD(random_state=0))
    if "svdpp" in wanted:
        models["surprise.SVDpp()"] = runner(lambda: SVDpp(random_state=0))
    if "surprise" in wanted:
        models["surprise.BaselineOnly()"] = runner(lambda: BaselineOnly(verbose=False))
    return models


def cmfrec_models(wanted):
    try:
        import cmfrec
        import pandas as pd
    except ImportError:
        print("cmfrec (or pandas) not installed: its row is skipped (pip install cmfrec)")
        return {}

    def frame(u, i, r):
        return pd.DataFrame({"UserId": u, "ItemId": i, "Rating": r})

    def fit(u, i, r, fold):
        # 3-fold cross-validation over the grid on the training part, then a fit on all of it
        splits = kfold(r.size, 3, np.random.default_rng(1000 + fold))
        scores = []
        for params in CMFREC_GRID:
            errs = []
            for tr, va in splits:
                m = cmfrec.CMF(method="als", verbose=False, random_state=fold, **params)
                m.fit(frame(u[tr], i[tr], r[tr]))
                errs.append(_rmse(m.predict(u[va], i[va]), r[va]))
            scores.append(np.mean(errs))
        best = CMFREC_GRID[int(np.argmin(scores))]
        model = cmfrec.CMF(method="als", verbose=False, random_state=fold, **best)
        return model.fit(frame(u, i, r)), best

    def run(u, i, r, tr, te, fold):
        (model, best), secs, cpu = timed(lambda: fit(u[tr], i[tr], r[tr], fold))
        print(f"  cmfrec CV choice, fold {fold}: {best}")
        return model.predict(u[te], i[te]), secs, cpu

    def oracle(u, i, r, tr, te, fold):
        # a control, not a method: every grid point fitted on the training part and the best on
        # the test fold kept (the most the grid can give); time of that one fit
        best = (np.inf, None, 0.0, 0.0, None)
        for params in CMFREC_GRID:
            m = cmfrec.CMF(method="als", verbose=False, random_state=fold, **params)
            _, secs, cpu = timed(lambda: m.fit(frame(u[tr], i[tr], r[tr])))
            pred = m.predict(u[te], i[te])
            if _rmse(pred, r[te]) < best[0]:
                best = (_rmse(pred, r[te]), pred, secs, cpu, params)
        print(f"  cmfrec best on the test fold, fold {fold}: {best[4]}")
        return best[1], best[2], best[3]

    models = {}
    if "cmfrec" in wanted:
        models["cmfrec ALS, CV-tuned"] = run
    if "cmfrec-oracle" in wanted:
        models["cmfrec ALS, grid best on test (oracle)"] = oracle
    return models


def libmf_model():
    try:
        from libmf import mf
    except ImportError:
        print("libmf not installed: its row is skipped (pip install libmf)")
        return {}

    def run(u, i, r, tr, te, fold):
        model = mf.MF(quiet=True)
        train = np.ascontiguousarray(np.c_[u[tr], i[tr], r[tr]], dtype=np.float64)
        _, secs, cpu = timed(lambda: model.fit(train))
        # its predict reads the pairs column-major
        pred = model.predict(np.asfortranarray(np.c_[u[te], i[te]], dtype=np.float64))
        return np.asarray(pred, dtype=np.float64), secs, cpu

    return {"libmf MF()": run}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--rank", type=int, default=10, help="rank of the 'wnsense nuclear' row")
    ap.add_argument("--penalty", type=float, default=15.0,
                    help="nuclear-norm penalty of the 'wnsense nuclear' row")
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="default",
                    help=f"comma-separated subset of {','.join(ALL_MODELS)}, 'default' (all but "
                         "cmfrec-oracle) or 'all'")
    args = parse_args(ap, argv)
    wanted = set({"all": ALL_MODELS, "default": DEFAULT_MODELS}.get(args.models, ())
                 or args.models.split(","))
    unknown = wanted - set(ALL_MODELS)
    if unknown:
        ap.error(f"unknown models {sorted(unknown)}; choose from {ALL_MODELS}")
    try:
        u, i, r, shape = load_ml100k()
    except ExperimentError as exc:
        print(f"skipped: {exc}")
        return
    from wnsense_native.estimators import LowRankRegressor

    splits = kfold(r.size, args.folds, np.random.default_rng(args.seed))
    peers = dict(surprise_models(wanted))
    if wanted & {"cmfrec", "cmfrec-oracle"}:
        peers.update(cmfrec_models(wanted))
    if "libmf" in wanted:
        peers.update(libmf_model())
    rmse, secs, cpu = {}, {}, {}

    def add(name, pred, truth, s, c):
        rmse.setdefault(name, []).append(_rmse(pred, truth))
        secs.setdefault(name, []).append(s)
        cpu.setdefault(name, []).append(c)

    for j, (tr, te) in enumerate(splits):
        (mu, b_u, b_i), s_b, c_b = timed(lambda: fit_biases(u[tr], i[tr], r[tr], shape,
                                                            lam_user=5.0, lam_item=5.0))
        base_test = mu + b_u[u[te]] + b_i[i[te]]
        if "bias" in wanted:
            add("bias (ridge)", base_test, r[te], s_b, c_b)
        if "nuclear" in wanted:
            resid = r[tr] - (mu + b_u[u[tr]] + b_i[i[tr]])
            res, s, c = timed(lambda: fit_low_rank(
                u[tr], i[tr], resid, shape, rank=args.rank, val_frac=0.1,
                gen=np.random.default_rng(100 + j),
                solve_options={"variant": "preconditioned", "penalty": args.penalty,
                               "max_iter": args.max_iter}))
            add(f"wnsense nuclear, bias + rank-{args.rank}",
                base_test + res.predict(u[te], i[te]), r[te], s + s_b, c + c_b)
        if "regressor" in wanted:
            ids = np.c_[u, i]
            reg, s, c = timed(lambda: LowRankRegressor(random_state=j).fit(ids[tr], r[tr]))
            add("LowRankRegressor()", reg.predict(ids[te]), r[te], s, c)
        for name, run in peers.items():
            pred, s, c = run(u, i, r, tr, te, j)
            add(name, pred, r[te], s, c)
        print(f"fold {j}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in rmse.items()), flush=True)
    rows = [[k, *(f"{x:.4f}" for x in v), f"{np.mean(v):.4f} +- {np.std(v):.4f}",
             f"{np.mean(secs[k]):.2f}", f"{np.mean(cpu[k]):.2f}"] for k, v in rmse.items()]
    print(f"\nMovieLens 100k, {args.folds}-fold (seed {args.seed}), test RMSE per fold, clipped "
          "to [1, 5]; fit seconds: mean over the folds")
    print(table(rows, ["model", *(f"fold {j}" for j in range(args.folds)), "mean +- std",
                       "fit s (wall)", "fit s (CPU)"]))
    if "regressor" in wanted:
        ours = np.mean(rmse["LowRankRegressor()"])
        others = {k: np.mean(v) for k, v in rmse.items()
                  if k != "LowRankRegressor()" and not k.startswith(("bias", "wnsense"))
                  and "oracle" not in k}
        for k, v in others.items():
            verdict = "beats" if ours < v else "does NOT beat"
            print(f"LowRankRegressor() {verdict} {k} on mean test RMSE ({ours:.4f} vs {v:.4f})")
        if "surprise.SVD()" in secs:
            ratio = np.mean(secs["surprise.SVD()"]) / np.mean(secs["LowRankRegressor()"])
            print(f"fit wall time: surprise.SVD() / LowRankRegressor() = {ratio:.2f}x (same run)")


if __name__ == "__main__":
    main()
