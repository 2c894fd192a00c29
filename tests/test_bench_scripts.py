"""The benchmark scripts in ``bench/`` run end to end at toy sizes and print their tables with the
ratios the README and the performance notes quote. Only their structure is checked (the tables,
the rows, that each ratio is printed as a number): a timing on a loaded machine can print as
0.00x, so no speed or timing ratio is asserted here; that is what the scripts measure, at full
size, by hand."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
pytestmark = pytest.mark.skipif(not BENCH.is_dir(), reason="bench/ is not in this checkout")

RATIO = r"(\d+\.\d+)x"


def bench(script, *args, timeout=300):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, cwd=BENCH, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def printed_ratios(text, min_count):
    """The ``N.NNx`` ratios of ``text`` (at least ``min_count``), as numbers; their values are
    timings and are not asserted."""
    values = [float(v) for v in re.findall(RATIO, text)]
    assert len(values) >= min_count, text
    return values


def test_bench_iteration():
    out = bench("bench_iteration.py", "--d", "12", "--m", "400", "--rstar", "2", "--rank", "3")
    assert "WN-RGD / 2 fused" in out and "WN-LBFGS / fused" in out
    assert out.count("read bandwidth probe") == 2
    # four storages, four ratios each (fused, WN-RGD, WN-LBFGS, GD against one forward pass)
    printed_ratios(out, 16)
    assert re.search(r"loop overhead, wn_rgd, population d=10: \d+\.\d us/iteration", out), out
    assert re.search(r"loop overhead, wn_lbfgs \(step 1\), population d=10: \d+\.\d "
                     r"us/iteration", out), out


def test_bench_kernels():
    out = bench("bench_kernels.py", "--d", "9", "--gb", "0.002", "--threads", "1", "2",
                "--repeat", "1")
    rows = [line for line in out.splitlines() if re.match(r"\s*9\s+\d+\s+float(32|64)", line)]
    assert len(rows) == 8, out  # four storages x two thread counts
    assert "numpy f64" in out


def test_bench_fig2b_small():
    out = bench("bench_fig2b.py", "--d", "20", "--m", "300", "--rank", "4", "--rstar", "2",
                "--iters", "3")
    assert "packed float32" in out
    match = re.search(r"^WN-RGD r=4: .*?(\d+\.\d+) passes/iteration.*-> (\d+\.\d+)x the bound",
                      out, re.M)
    assert match, out
    assert float(match.group(1)) >= 2.0  # a WN-RGD (paper) iteration is at least two passes
    # the default (WN-LBFGS): at least one pass per iteration, fewer than the paper's
    match = re.search(r"^WN-LBFGS \(default\) r=4: .*?(\d+\.\d+) passes/iteration.*"
                      r"-> (\d+\.\d+)x the bound", out, re.M)
    assert match, out
    assert 1.0 <= float(match.group(1)) < 2.0   # group(2), "x the bound", is a timing
    assert len(re.findall(r"peak RSS \d+\.\d+ GB", out)) == 3


def test_bench_solvers_small():
    out = bench("bench_solvers.py", "--d", "12", "--m", "300", "--rstar", "2", "--rank", "3",
                "--iters", "3", "--max-iter", "0", "--methods", "wn_lbfgs", "wn_rgd", "gd")
    printed_ratios(out, 3)
    for name in ("wn_lbfgs", "wn_rgd", "gd"):
        assert re.search(rf"^{name}\s+native\s", out, re.M), (name, out)


def test_bench_neighbours_small():
    out = bench("bench_neighbours.py", "--d", "10", "--rstar", "2", "--rank", "4",
                "--max-iter", "300", "--slow-max-iter", "300", "--all", "--reference")
    for name in ("WN-LBFGS (default)", "PrecGD", "ScaledGD(lambda)", "WN-RGD (preconditioned)",
                 "WN-RGD (plain)", "GD", "column-wise WN"):
        assert re.search(rf"^{re.escape(name)}\s", out, re.M), (name, out)
    for name in ("PrecGD", "WN-LBFGS (default)"):
        row = re.search(rf"^{re.escape(name)}\s+(\d+)\s.*?(\d\.\de-\d+)\s", out, re.M)
        assert row and float(row.group(2)) <= 1e-8, (name, out)


def test_bench_distributed_small():
    pytest.importorskip("distributed")
    out = bench("bench_distributed.py", "--d", "12", "--m", "1500", "--rank", "3", "--repeat",
                "5")
    assert "sharded results bit-identical to the local pass: yes" in out
    assert re.search(r"sharded pass overhead on loopback \(2 worker processes\): \d+\.\d ms "
                     r"median, \d+\.\d ms p90, over a \d+\.\d ms pass", out), out
    assert re.search(r"\d+ kB out, \d+ kB back per pass", out), out
    model = out.split("model of N workers")[1]
    assert re.search(r"^\s*4\s+\d+\.\d", model, re.M), out     # a row per worker count


def test_bench_time_to_solution_small():
    # one small grid row pair and the population row, without the peer: the default reaches the
    # target and the targets table is printed for it
    out = bench("bench_time_to_solution.py", "--quick", "--no-peer", "--max-passes", "300",
                "--repeat", "2", "--methods", "default (WN-LBFGS)", "PrecGD")
    rows = re.findall(r"^default \(WN-LBFGS\)\s+(\d+)\s+(\d+\.\d+)\s+(\S+)$", out, re.M)
    assert len(rows) == 3, out                      # r = r*, r = 2 r*, population
    assert all(float(err) <= 1e-10 for _, _, err in rows), out
    assert re.search(r"^d=40, r\*=3, r=3, kappa=100, m=960\s+yes\s+yes", out, re.M), out


def test_bench_completion_scale_small():
    out = bench("bench_completion_scale.py", "--d", "3000", "--m", "300000", "--max-iter", "300")
    held_out = re.search(r"held-out rel\. error (\S+);", out)
    assert held_out and float(held_out.group(1)) < 1e-4, out
    assert "WN-LBFGS" in out, out     # the default on observed entries
    printed_ratios(out, 2)


def test_check_bit_identity_compares_bit_for_bit():
    """The bit-identity check itself (structure only: two runs of one recorded solve agree, a
    flipped last bit or a missing array is reported)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_bit_identity",
                                                  BENCH / "check_bit_identity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import numpy as np
    import wnsense_native as wn
    op, Z = mod._families()["dense_rect"]
    a, b = {}, {}
    for out in (a, b):
        mod._run(wn.solve, op, Z, "wn_rgd", {"variant": "paper"}, "k", out)
    assert a and mod.compare(a, b) == []
    key = "k|factor|X_L"
    b[key] = np.nextafter(b[key], np.inf)
    del b["k|counts"]
    assert mod.compare(a, b) == ["missing: k|counts", f"differs: {key}"]


def test_bench_completion_time_to_solution():
    out = bench("bench_completion_time_to_solution.py", "--sizes", "30", "--families", "rect",
                "--kappas", "2", "--fracs", "0.9", "--rstar", "2", "--max-passes", "60",
                "--no-peer", "--methods", "default", "PrecGD")
    assert re.search(r"rect 30x24 k=2 p=0.9 r=2 +\d+ / \d+\.\d+ / \d\.\de-\d+", out), out
    assert re.search(r"rows reaching the target: default \d/2, PrecGD \d/2", out), out


def test_bench_threads_under_load_small():
    out = bench("bench_threads_under_load.py", "--quick", "--repeat", "1", "--only",
                "passes d=40")
    assert "idle" in out and "loaded" in out
    row = [line for line in out.splitlines() if line.startswith("60 passes d=40 m=960")]
    assert len(row) == 1, out
    fields = row[0].split()
    # default / one thread, idle and loaded: printed (their values depend on the machine's load)
    assert all(re.fullmatch(r"\d+\.\d+", fields[i]) for i in (-4, -1)), out


def test_bench_netflix_tiny():
    out = bench("bench_netflix.py", "--scale", "0.0005", "--rank", "4", "--rstar", "2",
                "--max-iter", "3")
    assert re.search(r"held-out rel\. error \d\.\d\de[+-]\d\d", out), out
    assert "peak RSS (build and solve)" in out
