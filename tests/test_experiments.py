"""Smoke tests of the experiment catalogue (SPEC section 5) at tiny sizes: each asserts the
qualitative claim its experiment exists to show, and that the CSV / JSON (and PNG when matplotlib
is installed) files are written and parse."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys

import numpy as np
import pytest

from wnsense_native import experiments as ex
from wnsense_native.experiments import ExperimentError, run_experiment

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
HAVE_SKIMAGE = importlib.util.find_spec("skimage") is not None


def run(name, tmp_path, plot=HAVE_MPL, **params):
    """Run at a tiny size, single-threaded (tiny problems are latency-bound), with a plot when
    matplotlib is there (unless ``plot=False``)."""
    return run_experiment(name, out=tmp_path, plot=plot, verbose=False, n_threads=1, **params)


def check_files(summary, tmp_path, *, plot=HAVE_MPL):
    name = summary["experiment"]
    files = summary["files"]
    assert files["csv"] == os.path.join(str(tmp_path), f"wnsense_{name}.csv")
    with open(files["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "CSV has no data rows"
    for col in ("experiment", "config", "method", "iteration", "rel_error", "loss", "time"):
        assert col in rows[0]
    assert {r["experiment"] for r in rows} == {name}
    methods = {r["method"] for r in rows}
    assert methods == {r["method"] for r in summary["results"] if r["available"]}
    float(rows[-1]["rel_error"])
    int(rows[-1]["iteration"])
    with open(files["json"]) as fh:
        on_disk = json.load(fh)
    assert on_disk["experiment"] == name
    assert on_disk["claim"]["statement"]
    assert on_disk["results"] == summary["results"]
    if plot:
        assert files["plot"] and os.path.getsize(files["plot"]) > 1000
        with open(files["plot"], "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    else:
        assert files["plot"] is None
    return rows


def result(summary, method, config=None):
    for r in summary["results"]:
        if r["method"] == method and (config is None or r.get("config") == config):
            return r
    raise KeyError((method, config))


def require_methods(summary, *keys):
    missing = [k for k in keys if k in summary["unavailable"]]
    if missing:
        pytest.skip(f"methods not available in this build: {missing}")


# ------------------------------------------------------------------------------------------------

def test_catalogue_lists_every_spec_experiment():
    names = [n for n, _ in ex.list_experiments()]
    assert names == ["fig2a", "fig2b", "full_rank", "retractions", "noise", "saddles",
                     "asymmetric", "snn", "completion", "image", "headtohead",
                     "samplecomplexity"]
    for exp in ex.EXPERIMENTS.values():
        assert exp.description and exp.params
        assert "max_iter" in [p.name for p in exp.params]


def test_fig2a_wn_rgd_beats_gd_tail(tmp_path):
    s = run("fig2a", tmp_path, kappas=[10], max_iter=3000)
    check_files(s, tmp_path)
    wn_err = result(s, "wn_rgd")["final_rel_error"]
    gd_err = result(s, "gd")["final_rel_error"]
    pre = result(s, "wn_rgd_precond")
    assert wn_err < 1e-3 * gd_err, (wn_err, gd_err)
    assert gd_err > 1e-8  # GD sits on its sublinear tail
    assert "project addition" in pre["label"]
    assert pre["final_rel_error"] < 1e-10
    assert s["claim"]["holds"] is True
    # table columns: iterations / seconds to 1e-4 and 1e-8
    assert result(s, "wn_rgd")["iters_to_1e-08"] is not None
    assert result(s, "gd")["iters_to_1e-08"] is None


def test_fig2b_larger_rank_fewer_wn_rgd_iterations(tmp_path):
    s = run("fig2b", tmp_path, d=20, m=300, ranks=[8, 16], max_iter=3000)
    check_files(s, tmp_path)
    it8 = result(s, "wn_rgd", "r=8")
    it16 = result(s, "wn_rgd", "r=16")
    hit8, hit16 = it8["final_rel_error"], it16["final_rel_error"]
    assert hit8 < 1e-6 and hit16 < 1e-6
    iters = s["claim"]["wn_rgd_iters_to_1e_6"]
    assert iters["r=16"] < iters["r=8"]
    # GD does not benefit: it reaches 1e-6 at neither rank
    assert all(result(s, "gd", c)["final_rel_error"] > 1e-6 for c in ("r=8", "r=16"))


def test_full_rank_converges_in_one_iteration(tmp_path):
    s = run("full_rank", tmp_path, ds=[8, 12])
    check_files(s, tmp_path)
    for cfg in ("d=8", "d=12"):
        r = result(s, "wn_rgd", cfg)
        assert r["nit"] == 1 and r["stop_reason"] == "tol"
        assert r["final_rel_error"] < 1e-12
    assert s["claim"]["holds"] is True


def test_retractions_nearly_identical(tmp_path):
    s = run("retractions", tmp_path, d=20, m=300)
    check_files(s, tmp_path)
    for cfg in ("step=armijo", "step=0.5"):
        its = [result(s, k, cfg)["nit"] for k in ("polar", "qr", "cayley")]
        assert all(result(s, k, cfg)["stop_reason"] == "tol" for k in ("polar", "qr", "cayley"))
        assert max(its) <= 1.10 * min(its), (cfg, its)


def test_noise_settles_at_floor(tmp_path):
    s = run("noise", tmp_path, d=12, m=250, true_rank=2, rank=4, sigmas=[0, 1e-3, 1e-2],
            max_iter=1000)
    rows = check_files(s, tmp_path)
    start = [float(r["rel_error"]) for r in rows if r["iteration"] == "0"]
    assert start and all(abs(e - 1.0) < 1e-12 for e in start)  # Theta_0 = 0: error 1 at start
    assert result(s, "wn_rgd", "sigma=0")["final_rel_error"] < 1e-8
    floors = s["predicted_floor"]
    for cfg in ("sigma=0.001", "sigma=0.01"):
        err = result(s, "wn_rgd", cfg)["final_rel_error"]
        assert 0.2 * floors[cfg] <= err <= 5 * floors[cfg], (cfg, err, floors[cfg])
        assert err < 0.1
        assert s["claim"]["final_over_midway"][cfg] > 0.8  # flat: settled, not still improving
    e3 = result(s, "wn_rgd", "sigma=0.001")["final_rel_error"]
    e2 = result(s, "wn_rgd", "sigma=0.01")["final_rel_error"]
    assert 3 < e2 / e3 < 30  # proportional to the noise level


def test_saddles_visits_best_rank_l_errors(tmp_path):
    s = run("saddles", tmp_path, d=20, rank=5, max_iter=3000)
    check_files(s, tmp_path)
    best = s["best_rank_errors"]
    assert best[1] == pytest.approx(0.1, rel=1e-3) and best[2] == pytest.approx(0.01, rel=1e-2)
    visits = s["claim"]["visits"]["wn_rgd"]
    for l in ("1", "2"):
        assert visits[l]["iterations_within_window"] >= 3, visits
        assert visits[l]["closest_relative_gap"] < 0.02
    assert visits["1"]["first_iteration"] < visits["2"]["first_iteration"]  # in order
    assert s["claim"]["holds"] is True


def test_asymmetric_fitted_error_proportional_to_init_scale(tmp_path):
    # the default problem (20 x 20, m = 200, r = 20), the two largest alphas of the default grid,
    # fitted to a common residual of 1e-4 (the default 1e-5 moves alpha = 0.01's error by 0.5%)
    s = run("asymmetric", tmp_path, alphas=[1e-1, 1e-2], tol=1e-4)
    rows = check_files(s, tmp_path)
    assert any(r["imbalance"] for r in rows)
    claim = s["claim"]
    assert claim["not_fitted"] == []
    for a in (1e-1, 1e-2):
        r = result(s, "gd", f"alpha={a:g}")
        assert r["stop_reason"] == "tol" and r["final_residual"] <= 1e-4  # fitted
    errs = [result(s, "gd", f"alpha={a:g}")["final_rel_error"] for a in (1e-2, 1e-1)]
    assert errs[0] < errs[1]
    assert 0.7 <= claim["loglog_slope"]["gd"] <= 1.3
    for growth in claim["imbalance_growth_relative"].values():
        assert max(growth) < 0.01
    assert claim["holds"] is True


def test_asymmetric_runs_that_did_not_fit_are_excluded(tmp_path):
    # 3,000 iterations fit alpha = 0.1 (about 1,700-2,500 needed) but not alpha = 0.01 (16,000+)
    s = run("asymmetric", tmp_path, alphas=[1e-1, 1e-2], max_iter=3000, plot=False)
    claim = s["claim"]
    assert [a["alpha"] for a in claim["fitted"]["gd"]] == [0.1]
    assert len(claim["not_fitted"]) == 2 and all("alpha=0.01" in n for n in claim["not_fitted"])
    assert claim["loglog_slope"] == {}  # one fitted alpha: no slope from unfitted runs
    assert claim["checks"]["gd_fitted_alphas_span_10x"] is False
    assert claim["holds"] is False


def test_asymmetric_claim_fails_past_the_stable_step(tmp_path):
    # a constant step of 0.75 fits fast but the imbalance jumps (~20% of ||Z*||) and the error
    # no longer scales with alpha: the run must say "not shown"
    s = run("asymmetric", tmp_path, alphas=[1e-1, 1e-2], step_size=0.75, plot=False)
    claim = s["claim"]
    assert claim["not_fitted"] == []
    assert not claim["checks"]["gd_imbalance_growth_at_most_0.01"]
    assert claim["holds"] is False


def test_snn_reproduces_paper_fig2_on_the_general_family(tmp_path):
    # the paper's setting at 1,000 of its 10,001 SNN iterations (its test error has settled)
    s = run("snn", tmp_path, max_iter=1000)
    check_files(s, tmp_path)
    assert s["params"]["step_size"] == 1e-2 and s["params"]["widths"] == [2, 2, 2, 2]
    gd_x = result(s, "gd_x", "general")
    assert gd_x["final_rel_error"] > 0.3  # GD on X from 0 (-> the min-norm interpolant) ...
    assert gd_x["final_residual"] < 1e-6  # ... although it fits the training data
    require_methods(s, "snn")
    snn = result(s, "snn", "general")["final_rel_error"]
    claim = s["claim"]
    assert snn < 0.1 and gd_x["final_rel_error"] > 5 * snn
    assert claim["heldout_rel_residual"]["general"]["snn"] < 0.1
    assert claim["holds"] is True and all(claim["checks"].values())
    # the symmetric panel is labelled for what it shows: least squares alone recovers X* there
    assert claim["symmetric_family_determined"] is True
    assert claim["test_error"]["symmetric"]["min_norm"] < 0.01
    assert "no implicit bias is needed" in claim["symmetric_family_note"]


def test_snn_claim_not_shown_when_least_squares_determines_the_target(tmp_path):
    """m = 120 >= n^2 = 100: the min-norm interpolant recovers X* as well, so the run cannot show
    an SNN advantage and must say so."""
    s = run("snn", tmp_path, m=120, max_iter=200, max_iter_x=3000)
    require_methods(s, "snn")
    claim = s["claim"]
    assert claim["test_error"]["general"]["min_norm"] < 0.01
    assert claim["holds"] is False
    assert not claim["checks"]["min_norm_test_error_at_least_5x_snn"]


def test_missing_method_is_skipped_gracefully(tmp_path, monkeypatch, capsys):
    from wnsense_native import solvers

    monkeypatch.delitem(solvers.NATIVE_METHODS, "snn", raising=False)
    s = run_experiment("snn", out=tmp_path, plot=False, verbose=True, n_threads=1,
                       max_iter=50, max_iter_x=50)
    out = capsys.readouterr().out
    assert "not available in this build" in out
    assert set(s["unavailable"]) == {"snn"}
    assert s["claim"]["holds"] is None
    assert {r["method"] for r in s["results"] if not r["available"]} == {"snn"}
    check_files(s, tmp_path, plot=False)


@pytest.mark.skipif(not HAVE_SKIMAGE, reason="scikit-image not installed")
def test_image_recovery(tmp_path):
    s = run("image", tmp_path, size=24, true_rank=3, extra_rank=0, max_iter=2000)
    check_files(s, tmp_path)
    assert result(s, "gd")["final_rel_error"] < 1e-4
    assert 0 < s["truncation_rel_error"] < 0.5
    assert s["claim"]["holds"] is True


def test_image_without_scikit_image(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage -> ImportError
    with pytest.raises(ExperimentError, match="pip install scikit-image"):
        run_experiment("image", out=tmp_path, plot=False, verbose=False)


def test_headtohead(tmp_path):
    s = run("headtohead", tmp_path, d=20, true_rank=2, kappas=[1, 10], max_iter=3000)
    check_files(s, tmp_path)
    # always present: WN-RGD (plain / preconditioned) and GD
    for key in ("wn_rgd", "wn_rgd_precond", "gd"):
        assert result(s, key, "kappa=1,r=2")["available"]
    pre = [result(s, "wn_rgd_precond", f"kappa={k},r=4")["iters_to_1e-10"] for k in (1, 10)]
    assert all(p is not None for p in pre)
    assert result(s, "gd", "kappa=10,r=2")["iters_to_1e-10"] is not None  # exact rank: linear
    require_methods(s, "precgd", "scaledgd")
    checks = s["claim"]["checks"]
    assert checks["precgd_kappa_insensitive"] and checks["scaledgd_kappa_insensitive"]
    assert s["claim"]["holds"] is True


def test_progress_and_printing(tmp_path, capsys):
    pytest.importorskip("tqdm")
    run_experiment("full_rank", out=tmp_path, plot=False, verbose=True, progress=True,
                   ds=[6], n_threads=1)
    out = capsys.readouterr().out
    assert "Claim:" in out and "wrote" in out


def test_plot_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    s = run_experiment("full_rank", out=tmp_path, plot=True, verbose=True, ds=[6])
    out = capsys.readouterr().out
    assert "pip install wnsense_native[plots]" in out
    assert s["files"]["plot"] is None and not list(tmp_path.glob("*.png"))
    check_files(s, tmp_path, plot=False)


def test_seed_reproducible(tmp_path):
    a = run_experiment("fig2a", out=tmp_path / "a", plot=False, verbose=False, kappas=[5],
                       max_iter=200, seed=3)
    b = run_experiment("fig2a", out=tmp_path / "b", plot=False, verbose=False, kappas=[5],
                       max_iter=200, seed=3)
    c = run_experiment("fig2a", out=tmp_path / "c", plot=False, verbose=False, kappas=[5],
                       max_iter=200, seed=4)
    err = lambda s: [r["final_rel_error"] for r in s["results"]]  # noqa: E731
    assert err(a) == err(b)
    assert err(a) != err(c)


@pytest.mark.parametrize("params, match", [
    (dict(d=-1), "--d must be >= 1"),
    (dict(kappas=[]), "at least one value"),
    (dict(kappas=[0.5]), "--kappas must be >= 1"),
    (dict(rank=50), "search rank 50 must be <= --d"),
    (dict(bogus=1), "no parameter"),
])
def test_bad_parameters(tmp_path, params, match):
    with pytest.raises(ExperimentError, match=match):
        run_experiment("fig2a", out=tmp_path, plot=False, verbose=False, **params)


def test_unknown_experiment_and_bad_seed(tmp_path):
    with pytest.raises(ExperimentError, match="unknown experiment"):
        run_experiment("fig9", out=tmp_path)
    with pytest.raises(ExperimentError, match="seed"):
        run_experiment("fig2a", out=tmp_path, seed=-1)


def test_full_defaults_are_the_paper_sizes():
    p = ex.resolve_params(ex.EXPERIMENTS["fig2b"], full=True)
    assert (p["d"], p["m"], p["ranks"], p["dtype"], p["packed"]) == \
        (300, 50000, (50, 75, 100), "float32", True)
    p = ex.resolve_params(ex.EXPERIMENTS["headtohead"], full=True)
    assert (p["d"], p["true_rank"], p["m_factor"]) == (200, 10, 5.0)
    # explicit values win over --full defaults
    assert ex.resolve_params(ex.EXPERIMENTS["fig2b"], full=True, d=50)["d"] == 50


def test_every_experiment_has_an_expected_time():
    for name in ex.EXPERIMENTS:
        t = ex.expected_time(name)
        assert t.startswith("~") and t.endswith(("s", "min")), (name, t)


# ------------------------------------------------------------------------------------------------
# samplecomplexity

def test_samplecomplexity_threshold_and_verdict_from_the_numbers():
    from wnsense_native.experiments.samplecomplexity import falls, threshold

    grid = [1.5, 2.0, 3.0, 4.0]
    rates = {1.5: 0.2, 2.0: 1.0, 3.0: 0.8, 4.0: 1.0}   # a dip at 3: stable only from 4 on
    assert threshold(rates, grid, 0.9) == 4.0
    assert threshold({**rates, 3.0: 1.0}, grid, 0.9) == 2.0
    assert threshold({**rates, 4.0: 0.6}, grid, 0.9) is None
    assert falls([4.0, 3.0, 3.0, 2.0]) is True
    assert falls([3.0, 3.0]) is False              # no fall at all
    assert falls([3.0, 2.0, 4.0]) is False         # not monotone
    assert falls([3.0, None]) is False             # a rank that never recovers


def test_samplecomplexity_toy(tmp_path):
    s = run("samplecomplexity", tmp_path, d=8, true_rank=1, rank_factors=[1, 2],
            oversampling=[2.0, 6.0], seeds=2, max_iter=300)
    require_methods(s, "wn_rgd_const", "gd", "precgd")
    check_files(s, tmp_path)
    claim = s["claim"]
    assert claim["holds"] in (True, False)
    # the verdict and the thresholds are recomputed here from the per-run records
    from wnsense_native.experiments.samplecomplexity import falls, threshold

    for key, check in claim["checks"].items():
        found = []
        for r in (1, 2):
            runs = [x for x in s["results"] if x.get("method") == key
                    and x["config_rank"] == r]
            rates = {}
            for ov in (2.0, 6.0):
                got = [x["final_rel_error"] is not None and x["final_rel_error"] <= 1e-6
                       for x in runs if x["config_oversampling"] == ov]
                skipped = ov in s["skipped"][key][str(r)]
                assert not (got and skipped)
                rates[ov] = (sum(got) / len(got)) if got else 0.0
                assert claim["rates"][key][str(r)][f"{ov:g}"] == pytest.approx(rates[ov])
            found.append(threshold(rates, [2.0, 6.0], 0.9))
            assert check["thresholds"][str(r)] == found[-1]
        assert check["falls"] == falls(found)
    assert claim["holds"] == claim["checks"]["wn_rgd_const"]["falls"]
    # ranks r*, 2 r*; grid walked from the top: every configuration at o = 6 ran
    top = [x for x in s["results"] if x.get("config_oversampling") == 6.0]
    assert len(top) == 2 * 2 * 4
    # GD with small init at r* = 1 on 6x oversampling recovers (the control can pass)
    assert claim["rates"]["gd"]["1"]["6"] == 1.0


def test_thin_indices():
    from wnsense_native.experiments._base import thin_indices

    idx = thin_indices(100000, 2000)
    assert idx[0] == 0 and idx[-1] == 99999 and len(idx) <= 2002
    assert np.all(np.diff(idx) > 0)
    assert list(thin_indices(10, 2000)) == list(range(10))
