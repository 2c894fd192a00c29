"""The command line, run as a user would (``python -m wnsense_native ...`` in a subprocess):
the demo, ``reproduce``, ``solve``, and one-line errors without tracebacks."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from wnsense_native.experiments import list_experiments

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
HAVE_SKIMAGE = importlib.util.find_spec("skimage") is not None


def cli(*args, cwd=None, hide=(), timeout=120):
    """Run the CLI; ``hide``: modules made unimportable (as if not installed)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WNSENSE_DEBUG", None)
    if hide:
        code = ("import sys\n"
                + "".join(f"sys.modules[{m!r}] = None\n" for m in hide)
                + "import runpy\nsys.argv = ['wnsense'] + sys.argv[1:]\n"
                  "runpy.run_module('wnsense_native', run_name='__main__')\n")
        cmd = [sys.executable, "-c", code, *args]
    else:
        cmd = [sys.executable, "-m", "wnsense_native", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("wnsense"), lines
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ------------------------------------------------------------------------------------------------
# demo

def test_demo_quick_prints_table_and_writes_files(tmp_path):
    p = cli("demo", "--quick", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "final err" in out and "it 1e-4" in out and "it 1e-8" in out and "s 1e-8" in out
    assert "passes 1e-8" in out
    table = out[out.index("kappa  method"):out.index("Claim:")]
    assert max(len(line) for line in table.splitlines()) <= 100, table
    assert max(len(line) for line in out.splitlines()) <= 100, out
    for kappa in ("50", "75", "100"):
        assert any(line.lstrip().startswith(kappa) for line in out.splitlines())
        # one table line per method: the default (WN-LBFGS), the paper's WN-RGD, the
        # preconditioned variant and GD
        rows = [line for line in out.splitlines() if line.lstrip().startswith(kappa + " ")]
        assert len(rows) == 4, rows
        for name in ("WN-LBFGS, default [+]", "WN-RGD (paper, Alg. 1)", "WN-RGD precond. [+]",
                     "GD (small init"):
            assert sum(name in line for line in rows) == 1, (name, rows)
    assert "[+]: this project's addition" in " ".join(out.split()) and "—" in out
    assert "Claim:" in out
    csv_path = tmp_path / "wnsense_demo.csv"
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {"wn_lbfgs", "wn_rgd", "wn_rgd_precond", "gd"}
    assert "nfev" in rows[0]
    summary = json.loads((tmp_path / "wnsense_demo.json").read_text())
    assert summary["params"]["max_iter"] == 2000
    png = tmp_path / "wnsense_demo.png"
    if HAVE_MPL:
        assert png.exists() and f"wrote {png}" in out
    else:
        assert "pip install wnsense_native[plots]" in out


def test_demo_writes_into_one_folder_by_default(tmp_path):
    p = cli("demo", "--quick", "--no-plot", "--max-iter", "50", "--kappas", "50", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "wnsense_results"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["wnsense_results"]
    assert (out / "wnsense_demo.csv").exists() and (out / "wnsense_demo.json").exists()
    assert not (out / "wnsense_demo.png").exists()
    assert f"wrote {os.path.join('wnsense_results', 'wnsense_demo.csv')}" in p.stdout
    # each run is named on the line that reports it (no progress bar: not a terminal)
    runs = [line for line in p.stdout.splitlines() if line.startswith("  kappa=50")]
    assert len(runs) == 4 and all(" it " in line for line in runs), p.stdout


def test_demo_without_matplotlib_still_prints_table(tmp_path):
    p = cli("demo", "--quick", "--max-iter", "100", "--out", str(tmp_path), hide=("matplotlib",))
    assert p.returncode == 0, p.stderr
    notes = [line for line in p.stdout.splitlines() if "matplotlib is not installed" in line]
    assert len(notes) == 1 and "pip install wnsense_native[plots]" in notes[0]
    assert "final err" in p.stdout
    assert not (tmp_path / "wnsense_demo.png").exists()
    assert (tmp_path / "wnsense_demo.csv").exists()


def test_console_script():
    exe = shutil.which("wnsense")
    if exe is None:
        pytest.skip("wnsense console script not on PATH")
    p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "wnsense_native" in p.stdout


# ------------------------------------------------------------------------------------------------
# reproduce

def test_reproduce_list():
    p = cli("reproduce", "--list")
    assert p.returncode == 0
    lines = p.stdout.rstrip().splitlines()
    entries = [line for line in lines if line[:1].strip() and not line.startswith("(")]
    names = [line.split()[0] for line in entries]
    assert names == [n for n, _ in list_experiments()]  # (the names: test_experiments.py)
    for line in entries:   # name, expected time at default size, description
        name, time_, unit, desc = line.split(None, 3)
        assert time_.startswith("~") and unit in ("s", "min") and desc, line
    assert max(len(line) for line in lines) <= 100


def test_reproduce_help_names_what_ships():
    p = cli("reproduce", "--help")
    assert p.returncode == 0
    assert "SPEC" not in p.stdout and "wnsense_results" in p.stdout


def test_reproduce_runs_and_writes_summary(tmp_path):
    p = cli("reproduce", "full_rank", "--ds", "6,8", "--out", str(tmp_path), "--no-plot",
            "--seed", "5")
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "wnsense_full_rank.json").read_text())
    assert summary["seed"] == 5 and summary["params"]["ds"] == [6, 8]
    assert summary["claim"]["holds"] is True
    assert not (tmp_path / "wnsense_full_rank.png").exists()


def test_reproduce_help_lists_size_flags():
    p = cli("reproduce", "fig2b", "--help")
    assert p.returncode == 0
    for flag in ("--d", "--m", "--ranks", "--full", "--seed", "--out", "--no-plot", "--max-iter"):
        assert flag in p.stdout


@pytest.mark.skipif(HAVE_SKIMAGE, reason="scikit-image is installed")
def test_image_without_scikit_image_cli(tmp_path):
    assert_one_line_error(cli("reproduce", "image", "--out", str(tmp_path)),
                          "pip install scikit-image")


def test_image_with_scikit_image_hidden(tmp_path):
    p = cli("reproduce", "image", "--out", str(tmp_path), hide=("skimage",))
    assert_one_line_error(p, "scikit-image")


# ------------------------------------------------------------------------------------------------
# errors: one line on stderr, non-zero exit, never a traceback

@pytest.mark.parametrize("args, needle", [
    (("reproduce", "fig9"), "invalid choice"),
    (("reproduce",), "needs an experiment NAME"),
    (("reproduce", "fig2b", "--d", "-3"), "--d must be >= 1"),
    (("reproduce", "fig2b", "--m", "0"), "--m must be >= 1"),
    (("reproduce", "fig2b", "--ranks", "5,x"), "expects an integer"),
    (("reproduce", "fig2a", "--kappas", "0.5"), "--kappas must be >= 1"),
    (("reproduce", "fig2a", "--rank", "20"), "must be <= --d"),
    (("reproduce", "fig2a", "--seed", "-1"), "--seed: must be >= 0"),
    (("reproduce", "fig2a", "--max-iter", "-5"), "--max-iter must be >= 0"),
    (("reproduce", "fig2a", "--operator", "nope"), "must be one of"),
    (("demo", "--max-time", "0"), "must be > 0"),
    (("frobnicate",), "invalid choice"),
    (("solve", "--y", "y.npy", "--rank", "2"), "--operator"),
])
def test_bad_arguments(args, needle):
    assert_one_line_error(cli(*args), needle)


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    p = cli("reproduce", "full_rank", "--ds", "4", "--out", str(blocker / "sub"))
    assert_one_line_error(p, "output directory")


# ------------------------------------------------------------------------------------------------
# solve

@pytest.fixture
def problem(tmp_path):
    rng = np.random.default_rng(0)
    d, r, m = 8, 2, 150
    U = np.linalg.qr(rng.standard_normal((d, r)))[0]
    Zs = U @ np.diag([1.0, 0.5]) @ U.T
    G = rng.standard_normal((m, d, d))
    M = (G + G.transpose(0, 2, 1)) / (2 * np.sqrt(m))
    y = np.einsum("kij,ij->k", M, Zs)
    paths = {k: tmp_path / f"{k}.npy" for k in ("M", "y", "Zs", "Mflat")}
    np.save(paths["M"], M)
    np.save(paths["Mflat"], M.reshape(m, d * d))
    np.save(paths["y"], y)
    np.save(paths["Zs"], Zs)
    return paths, Zs


def test_solve_recovers_and_saves(problem, tmp_path):
    paths, Zs = problem
    out = tmp_path / "x.npy"
    p = cli("solve", "--operator", str(paths["M"]), "--y", str(paths["y"]), "--rank", "4",
            "--max-iter", "3000", "--x-true", str(paths["Zs"]), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "symmetric" in p.stdout and "stop: tol" in p.stdout
    assert "relative error vs --x-true" in p.stdout
    x = np.load(out)
    assert x.shape == Zs.shape
    assert np.linalg.norm(x - Zs) / np.linalg.norm(Zs) < 1e-6


def test_solve_flat_layout_gd_options_npz(problem, tmp_path):
    paths, Zs = problem
    out = tmp_path / "res.npz"
    p = cli("solve", "--operator", str(paths["Mflat"]), "--y", str(paths["y"]), "--rank", "2",
            "--method", "gd", "--option", "init_scale=1e-2", "--max-iter", "3000",
            "--out", str(out))
    assert p.returncode == 0, p.stderr
    with np.load(out) as f:
        assert set(f.files) == {"x", "factor_Y"}
        assert np.linalg.norm(f["x"] - Zs) / np.linalg.norm(Zs) < 1e-6


def test_solve_rectangular(tmp_path):
    rng = np.random.default_rng(1)
    d1, d2, r, m = 6, 5, 1, 120
    Zs = np.outer(rng.standard_normal(d1), rng.standard_normal(d2))
    M = rng.standard_normal((m, d1, d2)) / np.sqrt(m)
    np.save(tmp_path / "M.npy", M)
    np.save(tmp_path / "y.npy", np.einsum("kij,ij->k", M, Zs))
    p = cli("solve", "--operator", str(tmp_path / "M.npy"), "--y", str(tmp_path / "y.npy"),
            "--rank", "1", "--method", "gd", "--max-iter", "2000")
    assert p.returncode == 0, p.stderr
    assert "rectangular" in p.stdout and "6 x 5" in p.stdout


@pytest.mark.parametrize("case, needle", [
    ("missing_operator", "no such file"),
    ("text_operator", "not a .npy file"),
    ("operator_1d", "expected an (m, d, d)"),
    ("operator_not_square_flat", "p = d*d"),
    ("operator_npz", ".npz archive"),
    ("operator_object", "not a readable .npy"),
    ("y_wrong_length", "measurements but --operator has"),
    ("y_2d", "1-D array"),
    ("y_nan", "NaN"),
    ("rank_too_big", "rank"),
    ("bad_option", "KEY=VALUE"),
    ("unknown_option", "unknown option"),
    ("unknown_method", "method"),
    ("x_true_shape", "--x-true"),
    ("out_dir_missing", "--out"),
    ("directory_as_file", "is a directory"),
])
def test_solve_errors(problem, tmp_path, case, needle):
    paths, _ = problem
    op, y = str(paths["M"]), str(paths["y"])
    extra = []
    bad = tmp_path / "bad.npy"
    if case == "missing_operator":
        op = str(tmp_path / "nope.npy")
    elif case == "text_operator":
        bad.write_text("this is not numpy\n")
        op = str(bad)
    elif case == "operator_1d":
        np.save(bad, np.arange(5.0))
        op = str(bad)
    elif case == "operator_not_square_flat":
        np.save(bad, np.ones((150, 7)))
        op = str(bad)
    elif case == "operator_npz":
        npz = tmp_path / "M.npz"
        np.savez(npz, M=np.load(paths["M"]))
        op = str(npz)
    elif case == "operator_object":
        np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        op = str(bad)
    elif case == "y_wrong_length":
        np.save(bad, np.ones(10))
        y = str(bad)
    elif case == "y_2d":
        np.save(bad, np.ones((75, 2)))
        y = str(bad)
    elif case == "y_nan":
        yy = np.load(paths["y"])
        yy[3] = np.nan
        np.save(bad, yy)
        y = str(bad)
    elif case == "rank_too_big":
        extra = ["--rank", "99"]
    elif case == "bad_option":
        extra = ["--option", "retraction"]
    elif case == "unknown_option":
        extra = ["--option", "bogus=1"]
    elif case == "unknown_method":
        extra = ["--method", "magic"]
    elif case == "x_true_shape":
        np.save(bad, np.ones((3, 3)))
        extra = ["--x-true", str(bad)]
    elif case == "out_dir_missing":
        extra = ["--out", str(tmp_path / "no" / "such" / "x.npy")]
    elif case == "directory_as_file":
        op = str(tmp_path)
    args = ["solve", "--operator", op, "--y", y]
    if "--rank" not in extra:
        args += ["--rank", "2"]
    assert_one_line_error(cli(*args, *extra, "--max-iter", "5"), needle)
