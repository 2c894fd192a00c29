"""``reproduce completion`` end to end on a synthetic ratings file in MovieLens' format (the real
data ship inside a PyPI wheel installed only for the bench; ``$WNSENSE_ML100K`` points the
experiment at a file), with a claim that can fail."""
from __future__ import annotations

import numpy as np
import pytest

from wnsense_native.experiments import run_experiment
from wnsense_native.experiments.completion import fit_biases, load_ml100k


def write_ratings(path, *, low_rank=True, seed=0, users=120, items=150, n=6000):
    """Ratings 1..5 = rounded (3.5 + user and item biases + a rank-2 part + noise)."""
    g = np.random.default_rng(seed)
    u, i = g.integers(0, users, n), g.integers(0, items, n)
    pairs = np.unique(u * items + i)
    u, i = pairs // items, pairs % items
    bu, bi = 0.4 * g.standard_normal(users), 0.4 * g.standard_normal(items)
    P, Q = g.standard_normal((users, 2)), g.standard_normal((items, 2))
    signal = 0.7 * np.sum(P[u] * Q[i], axis=1) if low_rank else 0.0
    r = np.clip(np.rint(3.5 + bu[u] + bi[i] + signal + 0.3 * g.standard_normal(u.size)), 1, 5)
    with open(path, "w") as fh:
        fh.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        for a, b, c in zip(u + 1, i + 1, r.astype(int)):
            fh.write(f"{a}\t{b}\t{c}\t0\n")
    return u, i, r


def test_loader_and_biases(tmp_path, monkeypatch):
    u, i, r = write_ratings(tmp_path / "ml.inter")
    monkeypatch.setenv("WNSENSE_ML100K", str(tmp_path / "ml.inter"))
    users, items, ratings, shape = load_ml100k()
    assert np.array_equal(users, u) and np.array_equal(items, i) and np.array_equal(ratings, r)
    assert shape == (u.max() + 1, i.max() + 1)
    mu, b_u, b_i = fit_biases(users, items, ratings, shape, lam_user=5.0, lam_item=5.0)
    base = mu + b_u[users] + b_i[items]
    assert np.sqrt(np.mean((base - ratings) ** 2)) < np.std(ratings)   # the biases explain some


@pytest.mark.parametrize("low_rank,expect", [(True, True), (False, False)])
def test_reproduce_completion_claim_can_fail(tmp_path, monkeypatch, low_rank, expect):
    """With a low-rank part in the ratings the low-rank model beats the bias baseline on every
    fold; without one (biases + noise only) it cannot, and the run says NOT shown."""
    write_ratings(tmp_path / "ml.inter", low_rank=low_rank)
    monkeypatch.setenv("WNSENSE_ML100K", str(tmp_path / "ml.inter"))
    s = run_experiment("completion", folds=3, rank=4, penalty=2.0, max_iter=300,
                       image_ranks=[5], image_size=48, out=str(tmp_path), plot=False)
    rmse = s["claim"]["rmse"]
    assert len(rmse["bias"]) == len(rmse["low rank"]) == 3
    assert s["claim"]["checks"]["low_rank_beats_bias_on_every_fold"] is expect
    if expect:
        assert np.mean(rmse["low rank"]) < np.mean(rmse["bias"]) - 0.05
