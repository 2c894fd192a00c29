"""Hostile-argument fuzzing (hypothesis) of the entry points that take the caller's own data:
``completion_sensing``, ``sparse_sensing``, ``matrix_free_sensing`` (and a solve on it),
``rank_one_measurements``, ``complete`` and ``SolveResult.predict``.

Valid and hostile values are mixed in every argument: indices out of range, negative, huge
(beyond int64), float, bool, object and string arrays, 0-D and 2-D arrays, shapes with zeros,
negatives, floats, bools and sizes no memory holds; CSR matrices whose ``indptr``/``indices``
were rewritten after scipy checked them; NaN/Inf/complex values; masked arrays and DataFrames
(``pd.NA``, strings) when pandas is present; matrix-free callables that return the wrong shape,
complex or NaN output, lists, None or a wrong tuple, or write into their arguments.

The contract: each call either works (and, where an independent numpy oracle exists, agrees
with it) or raises ``ValueError``/``TypeError``; never another exception type, never a crash.
Native constructions that could crash the interpreter are also probed in a child process
(``test_native_sparse_constructor_in_a_child``), so a regression fails a test instead of the run.

Budget: ~10,000 cases per run (the ``max_examples`` below times ``WNSENSE_HYPOTHESIS_EXAMPLES``,
default 1), well under a minute on a loaded 2-core machine. The cases come from a fixed seed
(``derandomize=True``, no example database), so CI runs the same cases every time. For a longer
random hunt::

    WNSENSE_HYPOTHESIS_RANDOM=1 WNSENSE_HYPOTHESIS_EXAMPLES=20 \\
        python -m pytest tests/test_fuzz_entry_points.py -q

(fresh random cases on each run, 20x the cases; ``WNSENSE_FUZZ_CHILD_CASES`` sets the child's
number of native probes, default 4000).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import wnsense_native as wn

sp = pytest.importorskip("scipy.sparse")
try:
    import pandas as pd
except ImportError:  # pragma: no cover - depends on the environment
    pd = None

_SCALE = float(os.environ.get("WNSENSE_HYPOTHESIS_EXAMPLES", "1"))
_RANDOM = os.environ.get("WNSENSE_HYPOTHESIS_RANDOM", "0") == "1"
_CHILD_CASES = int(os.environ.get("WNSENSE_FUZZ_CHILD_CASES", "4000"))
ALLOWED = (ValueError, TypeError)


def _settings(n):
    return settings(max_examples=max(1, int(n * _SCALE)), deadline=None, database=None,
                    derandomize=not _RANDOM,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def call(fn, *args, **kwargs):
    """``(result, None)`` or ``(None, exception)`` for an allowed exception; anything else
    propagates and fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs), None
    except ALLOWED as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        return None, exc


# ------------------------------------------------------------------------------------------------
# strategies

# sides no machine's memory holds (a valid side of 2**31 would really be allocated: 32 GiB)
HUGE = [2 ** 45, 2 ** 50, 2 ** 62, 2 ** 63, 2 ** 64, 2 ** 70, -(2 ** 63) - 1]
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64]


def side():
    """One entry of a shape: mostly small and valid, sometimes hostile."""
    return st.one_of(
        st.integers(1, 6), st.integers(1, 6), st.integers(1, 6),
        st.sampled_from([0, -1, -5]), st.sampled_from(HUGE[:6]),
        st.sampled_from([2.0, 3.5, float("nan"), True, False, None, "3", np.int32(4),
                         np.uint64(3), np.float64(2.0)]))


def shape_pair():
    return st.one_of(
        st.tuples(side(), side()), st.tuples(side(), side()).map(list),
        st.sampled_from([(3,), (2, 3, 4), (), "ab", None, 5, np.array([3, 4]),
                         {"a": 1}, (3, 4.0)]))


@st.composite
def index_array(draw, bound):
    """Indices for a side of size ``bound`` (``bound`` may itself be hostile: then any)."""
    b = bound if isinstance(bound, int) and 1 <= bound <= 10 else 6
    n = draw(st.integers(0, 12))
    kind = draw(st.integers(0, 14))
    if kind <= 6:                                         # valid, some dtype
        return np.asarray(draw(st.lists(st.integers(0, b - 1), min_size=n, max_size=n)),
                          dtype=draw(st.sampled_from(INT_DTYPES)))
    if kind == 7:
        return draw(st.lists(st.integers(-3, b + 2), min_size=n, max_size=n))   # a list
    if kind == 8:                                         # out of range, int64
        return np.array(draw(st.lists(st.integers(-(2 ** 63), 2 ** 63 - 1), min_size=1,
                                      max_size=n + 1)), dtype=np.int64)
    if kind == 9:
        return draw(st.sampled_from([[2 ** 70], [2 ** 64 - 1], [-1], [1.5], [True, False],
                                     ["a"], [None], [[0, 1], [1]], 0, 3, None, "01", b"0",
                                     [0.0, 1.0], [float("nan")]]))
    if kind == 10:
        return np.zeros((2, max(n, 1)), dtype=np.int64)    # 2-D
    if kind == 11:
        return np.arange(n, dtype=np.float64) % b           # float dtype, integral values
    if kind == 12:
        return (np.arange(n) % 2).astype(bool)
    if kind == 13:
        return np.arange(2 * n, dtype=np.int64)[::2] % b    # strided view
    return np.array([0, 1], dtype=object)


# ------------------------------------------------------------------------------------------------
# completion_sensing

def _as_indices(a):
    return np.asarray(a).astype(np.int64)


@_settings(1200)
@given(data=st.data())
def test_completion_sensing(data):
    shape = data.draw(shape_pair(), label="shape")
    bound = shape[0] if isinstance(shape, (tuple, list)) and len(shape) == 2 else None
    bound2 = shape[1] if bound is not None else None
    rows = data.draw(index_array(bound), label="rows")
    cols = data.draw(index_array(bound2), label="cols")
    symmetric = data.draw(st.sampled_from([False, False, True, 1, None, "yes", np.bool_(True)]),
                          label="symmetric")
    op, exc = call(wn.completion_sensing, rows, cols, shape, symmetric=symmetric)
    if exc is not None:
        return
    m, d1, d2 = op.shape
    r, c = _as_indices(rows), _as_indices(cols)
    Z = np.arange(d1 * d2, dtype=np.float64).reshape(d1, d2) % 7 - 3
    expected = 0.5 * (Z[r, c] + Z[c, r]) if op.symmetric else Z[r, c]
    np.testing.assert_allclose(op.forward(Z), expected, rtol=1e-14, atol=1e-14)
    G = op.adjoint(np.ones(m))
    assert G.shape == (d1, d2) and G.sum() == pytest.approx(m)
    if isinstance(rows, np.ndarray) and rows.flags.writeable:
        rows[...] = 0                                   # the operator owns its copy
        np.testing.assert_allclose(op.forward(Z), expected, rtol=1e-14, atol=1e-14)


# ------------------------------------------------------------------------------------------------
# sparse_sensing

@st.composite
def sparse_matrix(draw):
    """A scipy matrix for a (d1, d2) model, then maybe broken after scipy's own checks."""
    d1, d2 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    m = draw(st.integers(1, 6))
    ncols = d1 * d2 if draw(st.integers(0, 5)) else d1 * d2 + draw(st.sampled_from([-1, 1]))
    ncols = max(ncols, 1)
    density = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    fmt = draw(st.sampled_from(["csr", "csr", "csc", "coo", "lil", "dense", "list"]))
    seed = draw(st.integers(0, 2 ** 16))
    M = sp.random(m, ncols, density=density, format="csr", random_state=seed)
    dtype = draw(st.sampled_from([np.float64, np.float64, np.float32, np.int64, np.complex128,
                                  np.bool_]))
    M = M.astype(dtype)
    if fmt == "dense":          # (scipy's own toarray would crash on the broken structures)
        return M.toarray(), (d1, d2)
    if fmt == "list":
        return M.toarray().tolist(), (d1, d2)
    breakage = draw(st.integers(0, 9))
    if breakage == 1 and M.nnz:                          # a NaN/Inf value
        M.data[0] = draw(st.sampled_from([np.nan, np.inf])) if M.dtype.kind in "fc" else 0
    if breakage == 2:                                    # indptr rewritten
        M.indptr = np.array(draw(st.lists(st.integers(-3, 2 * M.nnz + 3), min_size=m + 1,
                                          max_size=m + 1)), dtype=M.indptr.dtype)
    if breakage == 3:                                    # the reproducer, at this size
        ptr = np.arange(m + 1, dtype=np.int64) * 0
        ptr[1:] = M.nnz
        if m > 1:
            ptr[1] = 10 ** 8
        M.indptr = ptr.astype(M.indptr.dtype)
    if breakage == 4 and M.nnz:                          # a column index out of range
        M.indices[0] = draw(st.sampled_from([-1, ncols, ncols + 100, 2 ** 31 - 1]))
    if breakage == 5 and M.nnz:                          # indptr of the wrong length
        M.indptr = np.append(M.indptr, M.nnz).astype(M.indptr.dtype)
    if breakage not in (2, 3, 4, 5):
        M = M.asformat(fmt)
    return M, (d1, d2)


def _csr_ok(M):
    ptr = np.asarray(M.indptr)
    return (ptr.size == M.shape[0] + 1 and ptr[0] == 0 and ptr[-1] == M.indices.size
            and np.all(np.diff(ptr) >= 0)
            and (M.indices.size == 0
                 or (M.indices.min() >= 0 and M.indices.max() < M.shape[1])))


@_settings(1200)
@given(args=sparse_matrix(), shape=st.one_of(st.none(), shape_pair()),
       symmetric=st.sampled_from([False, False, True, 1]))
def test_sparse_sensing(args, shape, symmetric):
    M, true_shape = args
    shape = true_shape if shape is None else shape
    op, exc = call(wn.sparse_sensing, M, shape, symmetric=symmetric)
    if exc is not None:
        return
    assert sp.issparse(M) and _csr_ok(M.tocsr()), "an unchecked CSR structure was accepted"
    m, d1, d2 = op.shape
    assert m == M.shape[0]
    Z = np.arange(d1 * d2, dtype=np.float64).reshape(d1, d2) % 5 - 2
    Zs = 0.5 * (Z + Z.T) if op.symmetric else Z
    dense = M.toarray().astype(np.float64)
    np.testing.assert_allclose(op.forward(Z), dense @ Zs.ravel(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# matrix_free_sensing, and a solve on it

MISBEHAVIOURS = ["ok", "ok", "shape", "complex", "nan", "list", "none", "scalar", "write",
                 "tuple3", "string"]


def _forward_fn(A, how):
    def forward(L, R):
        z = np.einsum("mij,ik,jk->m", A, L, R)
        if how == "write":
            L[...] = 0.0
        return {"shape": z[:-1] if z.size > 1 else np.ones(3), "complex": z + 1j,
                "nan": z * np.nan, "list": z.tolist(), "none": None, "scalar": 1.0,
                "string": "z"}.get(how, z)
    return forward


def _adjoint_fn(A, how):
    def adjoint_products(v, right, left):
        G = np.einsum("m,mij->ij", v, A)
        AV = None if right is None else G @ right
        AtU = None if left is None else G.T @ left
        if how == "write":
            v[...] = 0.0
        if how == "tuple3":
            return AV, AtU, None
        if how == "none":
            return None
        if how == "shape":
            return (None if AV is None else AV[:, :0], AtU)
        if how == "complex":
            return (None if AV is None else AV + 1j, AtU)
        if how == "nan":
            return (None if AV is None else AV * np.nan, AtU)
        if how == "list":
            return [AV, AtU]
        return AV, AtU
    return adjoint_products


@_settings(500)
@given(m=st.integers(1, 12), d1=st.integers(1, 4), d2=st.integers(1, 4),
       fwd=st.sampled_from(MISBEHAVIOURS), adj=st.sampled_from(MISBEHAVIOURS),
       bad_shape=st.sampled_from([None, None, None, (0, 2, 2), (2, 2), (2.0, 2, 2), "abc",
                                  (2, -1, 2), (2, 2, 2 ** 64)]),
       symmetric=st.sampled_from([False, True, "no"]), not_callable=st.integers(0, 12))
def test_matrix_free_sensing(m, d1, d2, fwd, adj, bad_shape, symmetric, not_callable):
    A = np.random.default_rng(m + 7 * d1 + 31 * d2).standard_normal((m, d1, d2))
    if symmetric is True and d1 == d2:
        A = A + A.transpose(0, 2, 1)
    forward, adjoint = _forward_fn(A, fwd), _adjoint_fn(A, adj)
    if not_callable == 0:
        forward = np.ones(3)
    shape = (m, d1, d2) if bad_shape is None else bad_shape
    op, exc = call(wn.matrix_free_sensing, shape, forward, adjoint, symmetric=symmetric)
    if exc is not None:
        return
    y = np.linspace(-1.0, 1.0, m)
    res, exc = call(wn.solve, op, y, 1, max_iter=2, rng=0)
    if exc is None:
        assert np.all(np.isfinite(res.x))
        if fwd in ("ok", "write") and adj in ("ok", "write"):
            clean = wn.solve(wn.matrix_free_sensing((m, d1, d2), _forward_fn(A, "ok"),
                                                    _adjoint_fn(A, "ok"), symmetric=symmetric),
                             y, 1, max_iter=2, rng=0)
            np.testing.assert_array_equal(res.x, clean.x)    # writes into arguments are harmless
    else:
        assert (bad_shape is not None or fwd not in ("ok", "write")
                or adj not in ("ok", "write")), exc


# ------------------------------------------------------------------------------------------------
# rank_one_measurements

@st.composite
def vectors_arg(draw):
    m, d = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    base = np.arange(m * d, dtype=np.float64).reshape(m, d) % 3 - 1
    kind = draw(st.integers(0, 11))
    if kind <= 3:
        return base.astype([np.float64, np.float32, np.int32, np.uint8][kind])
    return [base.T, base.ravel(), base + 1j, base * np.nan, base.astype(bool),
            base.astype(object), base.tolist(), "v"][kind - 4]


@_settings(1500)
@given(vectors=vectors_arg(),
       scale=st.one_of(st.floats(-10, 10), st.sampled_from([0.0, float("nan"), float("inf"),
                                                            True, "1", None, 1j, 2, 1e308])))
def test_rank_one_measurements(vectors, scale):
    op, exc = call(wn.rank_one_measurements, vectors, scale=scale)
    if exc is not None:
        return
    V = np.asarray(vectors, dtype=np.float64)
    m, d, _ = op.shape
    Z = np.arange(d * d, dtype=np.float64).reshape(d, d) % 4 - 1.5
    Z = Z + Z.T
    with np.errstate(over="ignore", invalid="ignore"):        # scale = 1e308 overflows both
        expected = float(scale) * np.einsum("ij,jk,ik->i", V, Z, V)
        np.testing.assert_allclose(op.forward(Z), expected, rtol=1e-12, atol=1e-9)


# ------------------------------------------------------------------------------------------------
# complete

@st.composite
def incomplete_matrix(draw):
    d1, d2 = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    X = rng.standard_normal((d1, 2)) @ rng.standard_normal((2, d2))
    X[rng.random(X.shape) < draw(st.sampled_from([0.0, 0.3, 0.6, 1.0]))] = np.nan
    kind = draw(st.integers(0, 17))
    if kind <= 4:
        return X
    if kind == 5:
        return np.ma.masked_array(np.nan_to_num(X, nan=1e6), mask=np.isnan(X))
    if kind == 6 and pd is not None:
        return pd.DataFrame(X).astype("Float64").where(~np.isnan(X), pd.NA)
    if kind == 7 and pd is not None:
        df = pd.DataFrame(X).astype(object)
        df.iloc[0, 0] = draw(st.sampled_from(["a", None, pd.NA, 3]))
        return df
    if kind == 8:
        O = X.astype(object)
        O[np.isnan(X)] = None
        return O
    if kind < 9:
        return X
    return [X.ravel(), X[None], X + 1j, X.astype(np.float32), X * np.inf, np.zeros((0, 3)),
            "X", None, np.round(np.nan_to_num(X)).astype(np.int64)][kind - 9]


def _with_nan(X):
    """The oracle's reading of ``X``: float64 with NaN for every kind of missing entry."""
    if np.ma.isMaskedArray(X):
        return np.ma.filled(X.astype(np.float64), np.nan)
    if pd is not None and isinstance(X, pd.DataFrame):
        return np.array([[np.nan if v is None or v is pd.NA else float(v) for v in row]
                         for row in X.itertuples(index=False)], dtype=np.float64)
    A = np.asarray(X)
    if A.dtype == object:
        return np.array([[np.nan if v is None else float(v) for v in row] for row in A])
    return A.astype(np.float64)


@_settings(500)
@given(X=incomplete_matrix(),
       rank=st.sampled_from([1, 1, 2, 3, 0, -1, 2.5, True, 100, "2", None]),
       keep=st.booleans(), vf=st.sampled_from([0.0, 0.0, 0.3, 0.6, -0.1, float("nan"), "a"]))
def test_complete(X, rank, keep, vf):
    C, exc = call(wn.complete, X, rank, keep_observed=keep, validation_fraction=vf,
                  max_iter=3, rng=0)
    if exc is not None:
        return
    note(f"C = {C!r}")
    arr = _with_nan(X)
    assert C.shape == arr.shape and C.dtype == np.float64
    assert np.all(np.isfinite(C))
    if keep:
        observed = ~np.isnan(arr)
        np.testing.assert_array_equal(C[observed], arr[observed])


# ------------------------------------------------------------------------------------------------
# predict

@pytest.fixture(scope="module")
def small_result():
    op = wn.completion_sensing(np.arange(20) % 5, np.arange(20) % 4, (5, 4))
    return wn.solve(op, np.linspace(0, 1, 20), 2, max_iter=5, rng=0)


@_settings(1200)
@given(rows=index_array(5), cols=index_array(4))
def test_predict(small_result, rows, cols):
    out, exc = call(small_result.predict, rows, cols)
    if exc is not None:
        return
    r, c = _as_indices(rows), _as_indices(cols)
    np.testing.assert_allclose(out, small_result.x[r, c], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# the native constructor itself, in a child process (a regression would crash the child)

def test_native_sparse_constructor_in_a_child():
    code = textwrap.dedent(f"""
        import numpy as np
        from wnsense_native import _core
        rng = np.random.default_rng(20261208)
        n_ok = n_err = 0
        for case in range({_CHILD_CASES}):
            m, d1, d2 = (int(v) for v in rng.integers(1, 6, 3))
            nnz = int(rng.integers(0, 8))
            rows = rng.integers(-2, d1 + 2, nnz)
            cols = rng.integers(-2, d2 + 2, nnz)
            if rng.random() < 0.1:
                rows[:1] = rng.choice([2**62, -2**62, 10**9])
            mode = rng.integers(0, 3)
            ptr = vals = None
            if mode >= 1:
                ptr = np.sort(rng.integers(0, nnz + 1, m + 1))
                ptr[0], ptr[-1] = 0, nnz
                if rng.random() < 0.5:                       # break it
                    ptr[rng.integers(0, m + 1)] = rng.choice([-1, nnz + 1, 10**8, 2**62])
                if rng.random() < 0.1:
                    ptr = ptr[:-1]
                vals = rng.standard_normal(nnz if rng.random() < 0.9 else nnz + 1)
            try:
                op = _core.SparseMeasurements(m, d1, d2, rows, cols, ptr, vals, 1.0, False)
                op.forward(np.ones((d1, d2)))
                op.adjoint(np.ones(m))
                n_ok += 1
            except (ValueError, TypeError):
                n_err += 1
        print(n_ok, n_err)
    """)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(wn.__file__)) +
               os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    n_ok, n_err = map(int, proc.stdout.split())
    assert n_ok + n_err == _CHILD_CASES and n_ok > 0 and n_err > 0
