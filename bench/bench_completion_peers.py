"""Held-out RMSE and fit time on MovieLens 100k: this library against a recommender library's
matrix factorization, on the same seeded splits.

    pip install --no-deps recbole==1.2.1     # the data (inside its wheel; 2 MB, pure Python)
    pip install scikit-surprise==1.1.5        # the peer
    python bench/bench_completion_peers.py [--folds 5] [--rank 10] [--penalty 15]

Models, per fold (80% train / 20% test, seeded k-fold; the same splits for every model):
- ``bias``: ``mu + b_user + b_item`` by alternating ridge (``experiments.completion.fit_biases``);
- ``wnsense bias + low rank``: the bias model plus a rank-``r`` model of the residual ratings,
  ``wn.solve(completion_sensing(...), variant="preconditioned", penalty=...)`` with 10% of the
  training ratings held out for early stopping (what ``reproduce completion`` runs);
- ``surprise.SVD()`` and ``surprise.BaselineOnly()`` with their defaults (SVD: 100 factors, SGD,
  20 epochs; BaselineOnly: ALS biases), trained on the same 80%.
Predictions are clipped to [1, 5]. Fit seconds are wall and CPU time of the fit alone (the
machine's load shows in wall time; surprise is single-threaded). Skips a missing package with a
message.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import parse_args, table

from wnsense_native.experiments._base import ExperimentError
from wnsense_native.experiments.completion import (_rmse, fit_biases, fit_low_rank, kfold,
                                                   load_ml100k)


def surprise_models():
    try:
        from surprise import SVD, BaselineOnly, Dataset, Reader
    except ImportError:
        print("scikit-surprise not installed: its rows are skipped (pip install "
              "scikit-surprise==1.1.5)")
        return None
    reader = Reader(rating_scale=(1, 5))

    def fit_predict(algo, u, i, r, tr, te):
        ds = Dataset(reader)
        raw = [(str(a), str(b), float(c), None) for a, b, c in zip(u, i, r)]
        trainset = ds.construct_trainset([raw[k] for k in tr])
        t0, c0 = time.perf_counter(), time.process_time()
        algo.fit(trainset)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        pred = np.array([algo.predict(str(u[k]), str(i[k])).est for k in te])
        return pred, secs, cpu

    return {"surprise.SVD()": (lambda: SVD(random_state=0), fit_predict),
            "surprise.BaselineOnly()": (lambda: BaselineOnly(verbose=False), fit_predict)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--penalty", type=float, default=15.0)
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = parse_args(ap, argv)
    try:
        u, i, r, shape = load_ml100k()
    except ExperimentError as exc:
        print(f"skipped: {exc}")
        return
    splits = kfold(r.size, args.folds, np.random.default_rng(args.seed))
    peers = surprise_models() or {}
    rmse, secs, cpu = {}, {}, {}

    def add(name, value, s, c):
        rmse.setdefault(name, []).append(value)
        secs.setdefault(name, []).append(s)
        cpu.setdefault(name, []).append(c)

    for j, (tr, te) in enumerate(splits):
        t0, c0 = time.perf_counter(), time.process_time()
        mu, b_u, b_i = fit_biases(u[tr], i[tr], r[tr], shape, lam_user=5.0, lam_item=5.0)
        s_b, c_b = time.perf_counter() - t0, time.process_time() - c0
        base_test = mu + b_u[u[te]] + b_i[i[te]]
        add("bias (ridge)", _rmse(base_test, r[te]), s_b, c_b)
        t0, c0 = time.perf_counter(), time.process_time()
        res = fit_low_rank(u[tr], i[tr], r[tr] - (mu + b_u[u[tr]] + b_i[i[tr]]), shape,
                           rank=args.rank, val_frac=0.1, gen=np.random.default_rng(100 + j),
                           solve_options={"variant": "preconditioned",
                                          "penalty": args.penalty, "max_iter": args.max_iter})
        add(f"wnsense bias + rank-{args.rank}",
            _rmse(base_test + res.predict(u[te], i[te]), r[te]),
            time.perf_counter() - t0 + s_b, time.process_time() - c0 + c_b)
        for name, (make, fit_predict) in peers.items():
            pred, s, c = fit_predict(make(), u, i, r, tr, te)
            add(name, _rmse(pred, r[te]), s, c)
        print(f"fold {j}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in rmse.items()), flush=True)
    rows = [[k, *(f"{x:.4f}" for x in v), f"{np.mean(v):.4f} +- {np.std(v):.4f}",
             f"{np.mean(secs[k]):.2f}", f"{np.mean(cpu[k]):.2f}"] for k, v in rmse.items()]
    print(f"\nMovieLens 100k, {args.folds}-fold (seed {args.seed}), test RMSE per fold, clipped "
          "to [1, 5]")
    print(table(rows, ["model", *(f"fold {j}" for j in range(args.folds)), "mean +- std",
                       "fit s (wall)", "fit s (CPU)"]))


if __name__ == "__main__":
    main()
