"""Regressions of the reliability hunt (issue 22): each test is one reproducer that crashed, hung
or gave a silent wrong answer before, and checks the fixed behaviour.

* Crashes (C1, C2): a non-monotone CSR ``indptr`` overflowed the heap; a caller changing its
  index arrays after construction reached the native operator. The probes run in a child
  process, so a regression fails the test instead of killing the run.
* Hang (H1): a fork after a multi-threaded pass deadlocked the child in libgomp; H1b: a solve's
  ``n_threads`` did not reach every kernel.
* Silent wrong answers (W1-W4): masked arrays, float32 packing, complex or argument-writing
  matrix-free callables, data scales the solvers cannot take.
* Unclear errors (U2-U4) and the rest: huge shapes, column indices of ``M``, DataFrames, rows of
  ``wn.complete`` without observations, ``res.x`` of a huge result, start-up time in ``max_time``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import wnsense_native as wn
from wnsense_native import _core

sp = pytest.importorskip("scipy.sparse")

PYTHON_PATH = os.path.dirname(os.path.dirname(wn.__file__))


def run_child(code, timeout=120):
    """Run ``code`` in a fresh interpreter; returns the completed process (never raises on a
    crash: the caller asserts on the return code)."""
    env = dict(os.environ, PYTHONPATH=PYTHON_PATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env)


# ------------------------------------------------------------------------------------------------
# C1, U3: the CSR structure of M is checked before anything reads through it

def test_non_monotone_indptr_is_refused_in_a_child():
    proc = run_child("""
        import numpy as np, scipy.sparse as sp, wnsense_native as wn
        M = sp.csr_matrix((np.array([1., 2, 3]), np.array([0, 5, 8]),
                           np.array([0, 100_000_000, 1, 3])), shape=(3, 9))
        try:
            wn.sparse_sensing(M, (3, 3))
        except ValueError as e:
            print("ValueError:", e)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "ValueError: M has an invalid CSR structure" in proc.stdout


@pytest.mark.parametrize("indptr, message", [
    ([1, 1, 2, 3], "invalid CSR structure"),        # does not start at 0
    ([0, 2, 1, 3], "invalid CSR structure"),        # decreases
    ([0, 1, 2, 2], "invalid CSR structure"),        # does not end at nnz
])
def test_bad_indptr_names_M(indptr, message):
    M = sp.csr_matrix((np.ones(3), np.array([0, 5, 8]), np.array([0, 1, 2, 3])), shape=(3, 9))
    M.indptr = np.array(indptr, dtype=M.indptr.dtype)   # scipy checks only at construction
    with pytest.raises(ValueError, match=message):
        wn.sparse_sensing(M, (3, 3))


def test_native_operator_checks_indptr_itself():
    """The native constructor checks its own copy too (a caller of _core directly)."""
    rows = cols = np.zeros(3, dtype=np.int64)
    for bad in ([0, 10**8, 1, 3], [0, 1, 2, 5], [1, 1, 2, 3]):
        with pytest.raises(ValueError, match="indptr"):
            _core.SparseMeasurements(3, 3, 3, rows, cols, np.array(bad, dtype=np.int64),
                                     np.ones(3), 1.0, False)
    with pytest.raises(ValueError, match="indptr must have length"):   # m is the declared one
        _core.SparseMeasurements(2, 3, 3, rows, cols, np.array([0, 1, 2, 3], dtype=np.int64),
                                 np.ones(3), 1.0, False)


def test_m_is_the_declared_number_of_rows():
    M = sp.random(7, 12, density=0.3, format="csr", random_state=0)
    op = wn.sparse_sensing(M, (3, 4))
    assert op.shape == (7, 3, 4)
    Z = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_allclose(op.forward(Z), M @ Z.ravel(), rtol=1e-12, atol=1e-12)


def test_column_index_out_of_range_is_reported_as_a_column_of_M():
    M = sp.csr_matrix((np.ones(3), np.array([0, 5, 8]), np.array([0, 1, 2, 3])), shape=(3, 9))
    M.indices[2] = 20      # scipy does not check an index written afterwards
    with pytest.raises(ValueError, match="M has a column index out of range") as info:
        wn.sparse_sensing(M, (3, 3))
    assert "row" not in str(info.value)


# ------------------------------------------------------------------------------------------------
# C2: the native operator owns its arrays

def test_changing_the_callers_indices_does_not_reach_the_operator_in_a_child():
    proc = run_child("""
        import numpy as np, scipy.sparse as sp, wnsense_native as wn
        rows = np.array([0, 1, 2]); op = wn.completion_sensing(rows, rows.copy(), (3, 3))
        rows[:] = 10**9
        print(op.adjoint(np.ones(3)).trace())
        M = sp.csr_matrix(np.eye(4)); M.indptr = M.indptr.astype(np.int64)
        op2 = wn.sparse_sensing(M, (2, 2)); M.indptr[:] = 10**9; M.indices[:] = 10**9
        print(op2.adjoint(np.ones(4)).sum())
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3.0", "4.0"]


def test_in_range_changes_do_not_make_forward_disagree_with_solve():
    rng = np.random.default_rng(0)
    d1, d2, m = 12, 10, 90
    rows = rng.integers(0, d1, m)
    cols = rng.integers(0, d2, m)
    op = wn.completion_sensing(rows, cols, (d1, d2))
    Z = rng.standard_normal((d1, d2))
    expected = Z[rows, cols].copy()
    rows[:] = 0           # in range, so nothing would crash: only a wrong answer
    np.testing.assert_array_equal(op.forward(Z), expected)
    np.testing.assert_array_equal(op.rows, np.asarray(op.rows))
    assert not op.rows.flags.writeable and not op.cols.flags.writeable
    with pytest.raises(ValueError):
        op.rows[0] = 1


def test_pickled_operator_keeps_its_own_arrays():
    import pickle
    rows = np.array([0, 1, 2, 2])
    op = wn.completion_sensing(rows, np.array([1, 0, 2, 1]), (3, 3))
    rows[:] = 0
    op2 = pickle.loads(pickle.dumps(op))
    np.testing.assert_array_equal(op2.rows, [0, 1, 2, 2])
    Z = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(op2.forward(Z), op.forward(Z))


# ------------------------------------------------------------------------------------------------
# H1: fork after a parallel pass; H1b: n_threads reaches every kernel

@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_solve_after_fork_does_not_hang():
    """Solve with two threads, fork, solve in the child: the child finishes (the same bits) and
    runs its kernels on one thread. The child has 60 s (a hang is killed by the timeout)."""
    proc = run_child("""
        import os, sys, numpy as np, wnsense_native as wn
        from wnsense_native import _core
        op = wn.gaussian_sensing(30, 2000, rng=0)
        y = op.forward(wn.low_rank_target(30, 2, rng=1))
        res = wn.solve(op, y, 3, rng=0, max_iter=30, n_threads=2)
        pid = os.fork()
        if pid == 0:
            r = wn.solve(op, y, 3, rng=0, max_iter=30, n_threads=2)
            same = r.nit == res.nit and np.array_equal(r.x, res.x)
            os._exit(0 if same and _core.forked_after_team() else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), _core.forked_after_team())
    """, timeout=60)
    assert proc.returncode == 0, proc.stderr
    has_openmp = _core.has_openmp
    assert proc.stdout.split() == ["child", "0", "False"] if has_openmp else True, proc.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_multiprocessing_fork_pool_after_a_solve():
    proc = run_child("""
        import multiprocessing as mp, numpy as np, wnsense_native as wn
        op = wn.gaussian_sensing(30, 2000, rng=0)
        y = op.forward(wn.low_rank_target(30, 2, rng=1))
        wn.solve(op, y, 3, rng=0, max_iter=10, n_threads=2)
        def work(seed):
            return wn.solve(op, y, 3, rng=seed, max_iter=10, n_threads=2).fun
        with mp.get_context("fork").Pool(2) as pool:
            print(len(pool.map(work, [0, 1, 2])))
    """, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3"


def test_scope_threads_is_restored_and_one_thread_reaches_the_transport():
    """A solve sets what n_threads <= 0 means in kernels that are not given a count (the
    WN-LBFGS transport) and restores it; results are the same bits for 1 and 2 threads."""
    op = wn.gaussian_sensing(60, 3000, rng=0)
    y = op.forward(wn.low_rank_target(60, 3, rng=1))
    seen = []

    def scope(_):                      # what n_threads <= 0 means in a kernel right now
        seen.append(_core.set_scope_threads(0))
        _core.set_scope_threads(seen[-1])

    a = wn.solve(op, y, 6, rng=0, max_iter=15, n_threads=1, callback=scope)
    assert seen and set(seen) == {1}
    b = wn.solve(op, y, 6, rng=0, max_iter=15, n_threads=2)
    np.testing.assert_array_equal(a.x, b.x)
    assert _core.set_scope_threads(0) == 0          # nothing left set after the solves


# ------------------------------------------------------------------------------------------------
# W1-W4

def _low_rank(d1, d2, r, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((d1, r)) @ rng.standard_normal((r, d2))


def test_complete_takes_masked_entries_as_missing():
    X = _low_rank(30, 20, 2)
    mask = np.random.default_rng(1).random(X.shape) < 0.4
    data = X.copy()
    data[mask] = 1e6          # hidden values a mask-blind fit would take as observed
    C = wn.complete(np.ma.masked_array(data, mask=mask), 2, rng=0)
    assert np.linalg.norm(C - X) / np.linalg.norm(X) < 1e-6


def test_masked_y_with_masked_entries_is_refused():
    op = wn.gaussian_sensing(6, 40, rng=0)
    y = np.ma.masked_array(np.ones(40), mask=np.arange(40) == 3)
    with pytest.raises(ValueError, match="y is a masked array"):
        wn.solve(op, y, 2)


def test_float32_packing_averages_in_float64():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((50, 8, 8)).astype(np.float32)
    packed = wn.dense_sensing(M, symmetric=True, packed=True, dtype="float64")
    full = wn.dense_sensing(M, symmetric=True, dtype="float64")
    Z = rng.standard_normal((8, 8))
    Z = Z + Z.T
    np.testing.assert_allclose(packed.forward(Z), full.forward(Z), rtol=1e-13, atol=1e-13)
    iu = np.triu_indices(8)
    exact = 0.5 * (M[:, iu[0], iu[1]].astype(np.float64) + M[:, iu[1], iu[0]])
    np.testing.assert_array_equal(packed.data, exact)


def _matrix_free(A, dtype=float, write_v=False):
    m, d1, d2 = A.shape

    def forward(L, R):
        return np.einsum("mij,ik,jk->m", A, L, R).astype(dtype)

    def adjoint_products(v, right, left):
        G = np.einsum("m,mij->ij", v, A)
        if write_v:
            v[:] = 0.0
        return (None if right is None else G @ right, None if left is None else G.T @ left)

    return wn.matrix_free_sensing((m, d1, d2), forward, adjoint_products)


def test_complex_matrix_free_output_is_a_type_error_naming_the_callable():
    A = np.random.default_rng(0).standard_normal((40, 5, 4))
    op = _matrix_free(A, dtype=complex)
    with pytest.raises(TypeError, match="forward must return a real array"):
        wn.solve(op, np.ones(40), 2, max_iter=2)


def test_callable_writing_into_v_does_not_change_the_solve():
    A = np.random.default_rng(0).standard_normal((60, 6, 5))
    y = np.random.default_rng(1).standard_normal(60)
    clean = wn.solve(_matrix_free(A), y, 2, rng=0, max_iter=20)
    writer = wn.solve(_matrix_free(A, write_v=True), y, 2, rng=0, max_iter=20)
    assert writer.fun == clean.fun and writer.success == clean.success
    np.testing.assert_array_equal(writer.x, clean.x)


@pytest.mark.parametrize("exponent", [-150, -100, -20, 20, 100, 150])
def test_data_at_any_scale_is_solved_or_refused_clearly(exponent):
    """Inside [2**-100, 2**100] the default solve recovers the matrix; outside it refuses with
    a ValueError saying how to rescale (never a false success at x = 0)."""
    op = wn.gaussian_sensing(20, 300, rng=1)
    Z = wn.low_rank_target(20, 2, rng=2)
    s = 10.0 ** exponent
    y = op.forward(Z) * s
    if 2.0 ** -100 <= np.linalg.norm(y) <= 2.0 ** 100:
        res = wn.solve(op, y, 3, rng=0)
        assert res.success
        assert np.linalg.norm(res.x / s - Z) <= 1e-6 * np.linalg.norm(Z)
    else:
        with pytest.raises(ValueError, match=r"y has norm .* outside the range"):
            wn.solve(op, y, 3, rng=0)
        X = np.where(np.random.default_rng(0).random((20, 15)) < 0.5,
                     _low_rank(20, 15, 2) * s, np.nan)
        with pytest.raises(ValueError, match="X's observed entries have norm"):
            wn.complete(X, 2)


def test_unit_scale_results_are_unchanged_by_the_scale_check():
    op = wn.gaussian_sensing(20, 300, rng=1)
    y = op.forward(wn.low_rank_target(20, 2, rng=2))
    a = wn.solve(op, y, 3, rng=0)
    b = wn.solve(op, y * 2.0 ** 40, 3, rng=0)   # exact power of two, inside the range
    assert a.nit == b.nit
    np.testing.assert_array_equal(a.x * 2.0 ** 40, b.x)


# ------------------------------------------------------------------------------------------------
# U2, U4: errors name the argument

@pytest.mark.parametrize("shape", [(10**13, 10**13), (2**63, 3), (3, 2**70)])
def test_huge_shapes_name_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        wn.completion_sensing([0], [0], shape)


def test_dataframe_with_na_and_strings():
    pd = pytest.importorskip("pandas")
    X = _low_rank(20, 12, 2)
    df = pd.DataFrame(X).astype("Float64")
    df.iloc[0, 1] = pd.NA
    df.iloc[3, 4] = pd.NA
    C = wn.complete(df, 2, rng=0)
    assert abs(C[0, 1] - X[0, 1]) < 1e-5 and abs(C[3, 4] - X[3, 4]) < 1e-5
    bad = pd.DataFrame(X).astype(object)
    bad.iloc[0, 0] = "a"
    with pytest.raises(TypeError, match="X must hold real numbers"):
        wn.complete(bad, 2)


def test_object_array_with_none_is_missing():
    X = _low_rank(15, 10, 1).astype(object)
    X[2, 3] = None
    C = wn.complete(X, 1, rng=0)
    assert np.isfinite(C).all()


# ------------------------------------------------------------------------------------------------
# the rest: rows without observations, res.x of a huge result, start-up time

def test_row_without_observations_warns_and_gets_column_means():
    X = _low_rank(30, 20, 2)
    data = X.copy()
    data[np.random.default_rng(1).random(X.shape) < 0.3] = np.nan
    data[4] = np.nan
    data[:, 7] = np.nan
    with pytest.warns(RuntimeWarning, match="1 row.*1 column.*without observed entries"):
        C = wn.complete(data, 2, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # the empty row and column
        col_means = np.nanmean(data, axis=0)
        row_means = np.nanmean(data, axis=1)
    np.testing.assert_allclose(np.delete(C[4], 7), np.delete(col_means, 7))
    np.testing.assert_allclose(np.delete(C[:, 7], 4), np.delete(row_means, 4))
    assert C[4, 7] == pytest.approx(np.nanmean(data))


def test_complete_without_empty_lines_does_not_warn():
    X = _low_rank(30, 20, 2)
    X[np.random.default_rng(1).random(X.shape) < 0.3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        wn.complete(X, 2, rng=0)


def test_res_x_of_a_huge_result_points_to_predict():
    res = wn.SolveResult(fun=0.0).set_lowrank(np.ones((100_000, 2)), np.ones((100_000, 2)))
    with pytest.raises(ValueError, match="predict"):
        res.x
    assert res.predict(np.array([5]), np.array([7]))[0] == 2.0
    assert "formed when read" in repr(res)
    small = wn.SolveResult(fun=0.0).set_lowrank(np.ones((3, 1)), np.ones((4, 1)))
    assert small.x.shape == (3, 4)


def test_start_up_counts_in_time():
    """A start-up pass that takes a while (a slow matrix-free forward) is counted in res.time
    and in history["time"][0], and a max_time below it stops the run at the first check."""
    import time as _time
    A = np.random.default_rng(0).standard_normal((40, 5, 5))
    A = A + A.transpose(0, 2, 1)
    calls = []

    def forward(L, R):
        calls.append(1)
        if len(calls) == 1:
            _time.sleep(0.3)              # the start-up pass
        return np.einsum("mij,ik,jk->m", A, L, R)

    def adjoint_products(v, right, left):
        G = np.einsum("m,mij->ij", v, A)
        return (None if right is None else G @ right, None if left is None else G @ left)

    op = wn.matrix_free_sensing((40, 5, 5), forward, adjoint_products, symmetric=True)
    res = wn.solve(op, np.ones(40), 2, rng=0, max_time=0.2, max_iter=100)
    assert res.history["time"][0] >= 0.3 and res.time >= 0.3
    assert res.stop_reason == "max_time" and res.nit == 0


def test_max_time_stops_inside_a_long_step_search():
    """Every trial after the first pass is rejected (the operator's later outputs are far off),
    so one Armijo search would take 61 slow passes; max_time stops it between two trials, with
    the last accepted iterate. Checked by counting passes, not by timing them."""
    import time as _time
    A = np.random.default_rng(0).standard_normal((30, 4, 3))
    calls = []

    def forward(L, R):
        calls.append(1)
        _time.sleep(0.02)
        z = np.einsum("mij,ik,jk->m", A, L, R)
        return z if len(calls) <= 1 else z + 1e6     # every trial step looks terrible

    def adjoint_products(v, right, left):
        G = np.einsum("m,mij->ij", v, A)
        return (None if right is None else G @ right, None if left is None else G.T @ left)

    op = wn.matrix_free_sensing((30, 4, 3), forward, adjoint_products)
    y = np.random.default_rng(1).standard_normal(30)
    res = wn.solve(op, y, 2, method="gd", rng=0, max_time=0.1, max_iter=5)
    assert res.stop_reason == "max_time" and res.nit == 0
    assert res.nfev < 30           # the search was cut (it would have made 61 trials)
    assert np.isfinite(res.fun)
    calls.clear()
    full = wn.solve(wn.matrix_free_sensing((30, 4, 3), forward, adjoint_products), y, 2,
                    method="gd", rng=0, max_iter=1)
    assert full.nfev > 30      # without max_time: the whole search (then step_failed/diverged)
