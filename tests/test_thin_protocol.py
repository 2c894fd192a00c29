"""The thin-factor operator protocol (issue "Beyond the paper's sizes"): operators from users' data
(observed entries, a sparse measurement matrix, rank-one vectors, callables), the per-slice
partials a sharded pass folds, results that are formed only when read, and solves that never
allocate anything ``d1 x d2``."""
from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest

import wnsense_native as wn
from _helpers import assert_pass_close, probes, ref_adjoint, ref_forward, ref_pass, rel_diff
from wnsense_native import _core

sp = pytest.importorskip("scipy.sparse")


def entry_stack(rows, cols, shape, symmetric, values=None):
    m = len(rows)
    Ms = np.zeros((m, *shape))
    for i, (j, k) in enumerate(zip(rows, cols)):
        Ms[i, j, k] += 1.0 if values is None else values[i]
        if symmetric:
            Ms[i] = 0.5 * (Ms[i] + Ms[i].T)
    return Ms


def factors(shape, k, seed):
    g = np.random.default_rng(seed)
    return g.standard_normal((shape[0], k)), g.standard_normal((shape[1], k))


# ------------------------------------------------------------------------------------------------
# operators from users' data against explicit M_i stacks

@pytest.mark.parametrize("shape,symmetric", [((7, 5), False), ((6, 6), True), ((1, 9), False)])
def test_completion_sensing_pass_matches_explicit_entries(shape, symmetric):
    g = np.random.default_rng(0)
    m = 41
    rows, cols = g.integers(0, shape[0], m), g.integers(0, shape[1], m)
    rows[:3], cols[:3] = rows[0], cols[0]          # repeated entries count as repeated measurements
    op = wn.completion_sensing(rows, cols, shape, symmetric=symmetric)
    assert op.shape == (m, *shape) and op.symmetric == symmetric and op.nnz == m
    Ms = entry_stack(rows, cols, shape, symmetric)
    L, R = factors(shape, 3, 1)
    y = g.standard_normal(m)
    right, left = probes(op)
    assert_pass_close(op._residual(L, R, y, right, left),
                      ref_pass(Ms, L, R, y, right, left, symmetric), 1e-13)
    # unit scale: the measurements of Z are its entries
    Z = L @ R.T
    expect = 0.5 * (Z[rows, cols] + Z[cols, rows]) if symmetric else Z[rows, cols]
    np.testing.assert_allclose(op.forward(Z), expect, rtol=1e-14)
    np.testing.assert_allclose(op.adjoint(y), ref_adjoint(Ms, y), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("symmetric", [False, True])
def test_prepared_completion_pass_recomputes_the_column_side_bit_for_bit(symmetric):
    # a solve's pass (y prepared: the column side recomputes r in column order, r not returned)
    # against the pass in the user's order (the column side gathers r) and the explicit sums;
    # enough entries for the threaded path, odd sizes, every product request, y = 0 too
    g = np.random.default_rng(3)
    shape = (101, 101) if symmetric else (101, 67)
    m = 9001
    rows, cols = g.integers(0, shape[0], m), g.integers(0, shape[1], m)
    op = wn.completion_sensing(rows, cols, shape, symmetric=symmetric)
    L, R = factors(shape, 5, 4)
    if symmetric:
        R = L
    y = g.standard_normal(m)
    prepared = op._prepare(y)
    G = np.zeros(shape)
    np.add.at(G, (rows, cols), op.forward_factored(L, R) - y)
    if symmetric:
        G = 0.5 * (G + G.T)
    for right, left in ((R, L), (R, None), (None, L)):
        for n_threads in (1, 2):
            fast = op._residual(L, R, prepared, right, left, n_threads)
            plain = op._residual(L, R, y, right, left, n_threads)
            assert fast.r is None and fast.sumsq == plain.sumsq
            for a, b, expect in ((fast.AV, plain.AV, None if right is None else G @ right),
                                 (fast.AtU, plain.AtU, None if left is None else G.T @ left)):
                assert (a is None) == (expect is None)
                if a is not None:
                    assert np.array_equal(a, b)
                    np.testing.assert_allclose(a, expect, rtol=1e-12, atol=1e-12)
    zero = op._native.residual_sorted(L, R, None, R, L, 2)
    assert np.array_equal(zero[2], op._residual(L, R, None, R, L, 1).AV)


@pytest.mark.parametrize("make", [
    lambda: wn.completion_sensing([0, 2, 4, 1, 3], [1, 0, 3, 2, 2], (5, 4)),
    lambda: wn.gaussian_sensing(5, 30, d2=4, rng=0),
    lambda: wn.rank_one_sensing(5, 30, rng=1)])
def test_public_pass_protocol_prepare_then_thin_pass(make):
    """``op.prepare(y)`` once, then ``op.thin_pass``: the same pass as ``op.residual(y)``;
    anything but this operator's prepared measurements is a clear error."""
    op = make()
    m, d1, d2 = op.shape
    L, R = factors((d1, d2), 2, 3)
    y = np.random.default_rng(4).standard_normal(m)
    prepared = op.prepare(y)
    assert isinstance(prepared, wn.PreparedMeasurements) and prepared.operator is op
    got = op.thin_pass(L, R, prepared, R, L)
    want = op.residual(L, R, y, right=R, left=L)
    assert got.sumsq == pytest.approx(want.sumsq, rel=1e-12)
    np.testing.assert_allclose(got.AV, want.AV, rtol=1e-12, atol=1e-12)
    zero = op.thin_pass(L, R)            # no measurements: r = A(Z)
    assert zero.sumsq == pytest.approx(float(np.sum(op.forward_factored(L, R) ** 2)), rel=1e-12)
    with pytest.raises(TypeError, match="op.prepare"):
        op.thin_pass(L, R, y)
    with pytest.raises(ValueError, match="another operator"):
        op.thin_pass(L, R, make().prepare(y))
    with pytest.raises(ValueError, match="L must be"):
        op.thin_pass(np.asfortranarray(L), R, prepared)
    with pytest.raises(ValueError, match="right must be"):
        op.thin_pass(L, R, prepared, np.ones((d2 + 1, 2)))


@pytest.mark.parametrize("fmt", ["csr", "coo", "csc"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_sparse_sensing_pass_matches_the_matrix(fmt, symmetric):
    g = np.random.default_rng(2)
    d1 = d2 = 6
    m = 33
    dense = g.standard_normal((m, d1 * d2)) * (g.random((m, d1 * d2)) < 0.2)
    dense[4] = 0.0                                # an empty measurement
    M = sp.csr_matrix(dense).asformat(fmt)
    op = wn.sparse_sensing(M, (d1, d2), symmetric=symmetric)
    assert op.shape == (m, d1, d2) and op.nnz == np.count_nonzero(dense)
    Ms = dense.reshape(m, d1, d2)
    if symmetric:                                 # the symmetric family's M_i is sym(M_i)
        Ms = 0.5 * (Ms + Ms.transpose(0, 2, 1))
    L, R = factors((d1, d2), 2, 3)
    y = g.standard_normal(m)
    right, left = probes(op)
    assert_pass_close(op._residual(L, R, y, right, left),
                      ref_pass(Ms, L, R, y, right, left, symmetric), 1e-13)
    # y = M @ vec(Z), row-major vec, for symmetric Z (both families agree there)
    Zs = L @ L.T
    np.testing.assert_allclose(op.forward(Zs), M @ Zs.ravel(), rtol=1e-13)


def test_sparse_sensing_rectangular_and_duplicates():
    # duplicate (i, column) entries in COO input are summed by the conversion, as scipy does
    rows_i = np.array([0, 0, 1, 2, 2])
    cols_c = np.array([3, 3, 0, 14, 7])
    vals = np.array([1.0, 2.0, -1.0, 0.5, 4.0])
    M = sp.coo_matrix((vals, (rows_i, cols_c)), shape=(3, 15))
    op = wn.sparse_sensing(M, (3, 5))
    Z = np.arange(15.0).reshape(3, 5)
    np.testing.assert_allclose(op.forward(Z), M @ Z.ravel())
    v = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(op.adjoint(v).ravel(), M.T @ v)


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_rank_one_measurements_from_vectors(scale):
    A = np.random.default_rng(4).standard_normal((57, 7))
    op = wn.rank_one_measurements(A, scale=scale)
    assert op.vectors is A                        # float64 C-contiguous: used in place
    Ms = scale * np.einsum("ij,ik->ijk", A, A)
    L = np.random.default_rng(5).standard_normal((7, 3))
    y = np.random.default_rng(6).standard_normal(57)
    right, left = probes(op)
    assert_pass_close(op._residual(L, L, y, right, left),
                      ref_pass(Ms, L, L, y, right, left, True), 1e-12)
    Z = L @ L.T
    np.testing.assert_allclose(op.forward(Z), scale * np.einsum("ij,jk,ik->i", A, Z, A),
                               rtol=1e-12)


def _matrix_free_from(dense_op):
    """A user's operator written against the protocol, from a dense stack's numpy maps."""
    Ms = dense_op.dense_matrices()

    def forward(L, R):
        return ref_forward(Ms, L @ R.T)

    def adjoint_products(v, right, left):
        G = ref_adjoint(Ms, v)
        if dense_op.symmetric:
            G = 0.5 * (G + G.T)
        return (None if right is None else G @ right,
                None if left is None else (G if dense_op.symmetric else G.T) @ left)

    return wn.matrix_free_sensing(dense_op.shape, forward, adjoint_products,
                                  symmetric=dense_op.symmetric)


@pytest.mark.parametrize("symmetric", [True, False])
def test_matrix_free_operator_solves_like_the_dense_one(symmetric):
    if symmetric:
        Zs = wn.low_rank_target(10, 2, kappa=2, rng=0)
        dense = wn.gaussian_sensing(10, 300, rng=1)
    else:
        Zs = wn.low_rank_target(9, 2, kappa=2, d2=7, rng=0)
        dense = wn.gaussian_sensing(9, 300, d2=7, rng=1)
    free = _matrix_free_from(dense)
    y = dense.forward(Zs)
    np.testing.assert_allclose(free.forward(Zs), y, rtol=1e-12, atol=1e-14 * np.abs(y).max())
    a = wn.solve(dense, y, 3, rng=2, x_true=Zs, max_iter=400)
    b = wn.solve(free, y, 3, rng=2, x_true=Zs, max_iter=400)
    assert a.stop_reason == b.stop_reason == "tol"
    assert b.history["rel_error"][-1] < 1e-8
    assert abs(a.nit - b.nit) <= 2
    np.testing.assert_allclose(b.history["rel_error"][:20], a.history["rel_error"][:20],
                               rtol=1e-6, atol=1e-12)


def test_matrix_free_outputs_are_validated():
    def forward(L, R):
        return np.zeros(5)

    def bad_adjoint(v, right, left):
        return np.full((4, right.shape[1]), np.nan), None

    op = wn.matrix_free_sensing((6, 4, 4), forward, bad_adjoint, symmetric=True)
    with pytest.raises(ValueError, match="forward must return an array of shape"):
        op.forward(np.eye(4))
    op = wn.matrix_free_sensing((5, 4, 4), forward, bad_adjoint, symmetric=True)
    with pytest.raises(ValueError, match=r"adjoint_products\(\)\[0\] returned NaN"):
        op.adjoint(np.ones(5))
    op = wn.matrix_free_sensing((5, 4, 4), forward, lambda v, r, l: "nope")
    with pytest.raises(TypeError, match="adjoint_products must return a pair"):
        wn.solve(op, np.ones(5), 2, method="gd", max_iter=1)
    with pytest.raises(TypeError, match="forward must be callable"):
        wn.matrix_free_sensing((5, 4, 4), None, bad_adjoint)
    with pytest.raises(ValueError, match="symmetric=True needs a square shape"):
        wn.matrix_free_sensing((5, 4, 3), forward, bad_adjoint, symmetric=True)


def test_as_linear_operator_matches_forward_and_adjoint():
    from scipy.sparse.linalg import lsqr
    op = wn.gaussian_sensing(5, 80, d2=4, rng=3)
    A = op.as_linear_operator()
    assert A.shape == (80, 20)
    Z = np.random.default_rng(1).standard_normal((5, 4))
    v = np.random.default_rng(2).standard_normal(80)
    np.testing.assert_allclose(A @ Z.ravel(), op.forward(Z), rtol=1e-14)
    np.testing.assert_allclose(A.T @ v, op.adjoint(v).ravel(), rtol=1e-14)
    # usable by scipy's solvers: least squares recovers Z from 80 >= 20 measurements
    sol = lsqr(A, op.forward(Z), atol=1e-14, btol=1e-14)[0]
    np.testing.assert_allclose(sol.reshape(5, 4), Z, atol=1e-9)


@pytest.mark.parametrize("call,match", [
    (lambda: wn.completion_sensing([0, 1], [0], (2, 2)), "same length"),
    (lambda: wn.completion_sensing([0, 2], [0, 1], (2, 2)), r"rows must lie in \[0, 2\)"),
    (lambda: wn.completion_sensing([0, 1], [0, -1], (2, 2)), r"cols must lie in \[0, 2\)"),
    (lambda: wn.completion_sensing([0.5], [0], (2, 2)), "rows must hold integers"),
    (lambda: wn.completion_sensing([], [], (2, 2)), "rows must not be empty"),
    (lambda: wn.completion_sensing([0], [0], (2, 3), symmetric=True), "square shape"),
    (lambda: wn.completion_sensing([0], [0], (2,)), "shape must be a pair"),
    (lambda: wn.completion_sensing([0], [0], (0, 2)), r"shape\[0\] must be >= 1"),
    (lambda: wn.sparse_sensing(np.eye(4), (2, 2)), "M must be a scipy.sparse matrix"),
    (lambda: wn.sparse_sensing(sp.eye(4, 5, format="csr"), (2, 2)), r"M must have shape \(m, 4\)"),
    (lambda: wn.sparse_sensing(sp.csr_matrix(np.full((2, 4), np.inf)), (2, 2)), "NaN or Inf"),
    (lambda: wn.rank_one_measurements(np.ones((3, 2)), scale=0.0), "scale must be nonzero"),
    (lambda: wn.rank_one_measurements(np.ones(3)), "vectors must be 2-D"),
])
def test_users_data_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ------------------------------------------------------------------------------------------------
# the per-slice partials a sharded operator folds, and row ranges of the Gaussian ensemble

@pytest.mark.parametrize("packed,dtype", [(False, "float64"), (True, "float32")])
def test_dense_pass_split_over_shards_of_whole_slices_is_bit_identical(packed, dtype):
    op = wn.gaussian_sensing(9, 5001, dtype=dtype, packed=packed, rng=7)
    bounds = _core.slice_bounds(op.m)
    assert len(bounds) - 1 == _core.testing.reduction_slices(op.m) > 3
    L, R = factors((9, 9), 3, 8)
    y = np.random.default_rng(9).standard_normal(op.m)
    right, left = probes(op)
    whole = op._residual(L, R, y, right, left, 2)
    for cut in ([0, 2, len(bounds) - 1], [0, 1, 3, len(bounds) - 1]):
        sumsq, AV, AtU, r = [], [], [], []
        for a, b in zip(cut[:-1], cut[1:]):        # a shard holds slices [a, b)
            rows = slice(bounds[a], bounds[b])
            rel = bounds[a:b + 1] - bounds[a]
            part = _core.dense_residual_slices(op.data[rows], 9, 9, packed, L, R, y[rows], right,
                                               left, True, rel, 1)
            r.append(part[0])
            sumsq.extend(part[1])
            AV.extend(part[2])
            AtU.extend(part[3])
        fold = AV[0].copy()
        for P in AV[1:]:
            fold += P
        total = 0.0
        for s in sumsq:
            total += s
        assert fold.tobytes() == whole.AV.tobytes()
        assert total == whole.sumsq
        assert np.concatenate(r).tobytes() == whole.r.tobytes()


@pytest.mark.parametrize("kw", [{}, {"d2": 4}, {"packed": True, "dtype": "float32"}])
def test_gaussian_row_ranges_reproduce_the_whole_ensemble(kw):
    d, m = 6, 700
    full = wn.gaussian_sensing(d, m, rng=11, **kw)
    seed = int(np.random.default_rng(11).integers(0, 2**63 - 1, dtype=np.int64))
    block = np.empty((123, full.data.shape[1]), dtype=full.data.dtype)
    d2 = kw.get("d2", d)
    _core.fill_gaussian(block, d, d2, kw.get("packed", False), "d2" not in kw, seed, 1, 300, m)
    assert block.tobytes() == full.data[300:423].tobytes()


# ------------------------------------------------------------------------------------------------
# nothing d1 x d2: solves at sizes where one such matrix would be gigabytes

@pytest.mark.parametrize("method", ["wn_rgd", "gd", "precgd"])
def test_completion_solve_never_allocates_a_d1_by_d2_matrix(method):
    d1, d2, m, r = 30000, 20000, 60000, 3            # one d1 x d2 float64 matrix: 4.8 GB
    g = np.random.default_rng(0)
    U, V = g.standard_normal((d1, 2)), g.standard_normal((d2, 2))
    rows, cols = g.integers(0, d1, m), g.integers(0, d2, m)
    op = wn.completion_sensing(rows, cols, (d1, d2))
    y = op.forward_factored(U, V)
    np.testing.assert_allclose(y[:50], np.sum(U[rows[:50]] * V[cols[:50]], axis=1), rtol=1e-13)
    tracemalloc.start()
    try:
        res = wn.solve(op, y, r, method=method, rng=1, max_iter=5, tol=0.0,
                       x_true=(U, V))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.nit == 5 and np.isfinite(res.fun)
    assert res.history["rel_error"].shape == (6,)
    assert peak < 200e6, peak                         # the factors and the entries, not 4.8 GB
    assert "x" not in dict(res)                       # formed only when read
    pred = res.predict(rows[:100], cols[:100])
    assert pred.shape == (100,) and np.all(np.isfinite(pred))


# ------------------------------------------------------------------------------------------------
# results: x formed on read, predict, pickling; the truth as factors

def test_result_x_is_lazy_predict_and_pickle(sym_gaussian):
    op, y, Zs = sym_gaussian
    res = wn.solve(op, y, 3, rng=0, max_iter=50)
    assert "x" in res and "x" not in dict(res)
    assert "formed when read" in repr(res)
    X, T = res.factors["X"], res.factors["Theta"]
    rows, cols = np.array([0, 3, 11]), np.array([5, 3, 0])
    expect = (X @ T @ X.T)[rows, cols]
    np.testing.assert_allclose(res.predict(rows, cols), expect, rtol=1e-12)
    clone = pickle.loads(pickle.dumps(res))
    x = res.x
    np.testing.assert_allclose(x, X @ T @ X.T, rtol=1e-12, atol=1e-15)
    assert res["x"] is x and res.get("x") is x     # formed once
    np.testing.assert_array_equal(clone.x, x)
    with pytest.raises(ValueError, match="rows must lie"):
        res.predict([12], [0])
    with pytest.raises(TypeError, match="integers"):
        res.predict([0.5], [0])


@pytest.mark.parametrize("family", ["sym", "rect"])
def test_x_true_as_factors_gives_the_dense_error(family, sym_gaussian, rect_gaussian):
    op, y, Zs = sym_gaussian if family == "sym" else rect_gaussian
    P, s, Qt = np.linalg.svd(Zs)
    k = 2
    factors_true = (P[:, :k] * s[:k], Qt[:k].T)
    a = wn.solve(op, y, 3, rng=0, max_iter=400, x_true=Zs)
    b = wn.solve(op, y, 3, rng=0, max_iter=400, x_true=factors_true,
                 diagnostics="alignment")
    # accurate to ~eps relative to ||Z*|| (QR of the stacked factors), down to 1e-10 and below
    np.testing.assert_allclose(b.history["rel_error"], a.history["rel_error"], rtol=1e-6,
                               atol=1e-14)
    assert b.history["rel_error"][-1] < 1e-9
    assert b.history["alignment_min"][-1] > 1 - 1e-8
    with pytest.raises(ValueError, match="x_true factors must have shapes"):
        wn.solve(op, y, 3, x_true=(factors_true[0], factors_true[1][:-1]))


# ------------------------------------------------------------------------------------------------
# early stopping on held-out measurements, and wn.complete

def _noisy_completion(seed=0, d1=120, d2=90, rs=2, frac=0.3, noise=0.3):
    g = np.random.default_rng(seed)
    U, V = g.standard_normal((d1, rs)), g.standard_normal((d2, rs))
    m = int(frac * d1 * d2)
    rows, cols = g.integers(0, d1, m), g.integers(0, d2, m)
    y = np.sum(U[rows] * V[cols], axis=1) + noise * g.standard_normal(m)
    return U, V, rows, cols, y


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_validation_returns_the_best_validation_iterate(backend):
    U, V, rows, cols, y = _noisy_completion()
    n_train = int(0.85 * len(y))
    shape = (U.shape[0], V.shape[0])
    op = wn.completion_sensing(rows[:n_train], cols[:n_train], shape)
    op_val = wn.completion_sensing(rows[n_train:], cols[n_train:], shape)
    solve = wn.solve if backend == "native" else wn.reference.solve
    res = solve(op, y[:n_train], 8, rng=1, x_true=(U, V), max_iter=2000,
                validation=(op_val, y[n_train:]), patience=15)
    val = res.history["validation_residual"]
    assert val.shape == res.history["loss"].shape == (res.nit + 1,)
    assert res.stop_reason == "validation" and res.success
    assert res.best_iteration == int(np.argmin(val)) and res.nit == res.best_iteration + 15
    assert res.validation_residual == val.min() and res.nfev_validation == res.nit + 1
    # the returned iterate is the best-validation one, not the last
    pred = res.predict(rows[n_train:], cols[n_train:])
    resid = np.linalg.norm(pred - y[n_train:]) / np.linalg.norm(y[n_train:])
    assert resid == pytest.approx(val.min(), rel=1e-10)
    assert res.history["rel_error"][res.best_iteration] < res.history["rel_error"][-1]
    # the same run without validation fits the noise further (that is what early stopping saves)
    full = solve(op, y[:n_train], 8, rng=1, x_true=(U, V), max_iter=res.nit)
    assert np.array_equal(full.history["loss"], res.history["loss"])


def test_validation_bad_input():
    op, y, _ = _helpers_sym()
    other = wn.gaussian_sensing(5, 20, rng=0)
    with pytest.raises(TypeError, match="validation must be a pair"):
        wn.solve(op, y, 2, validation=other)
    with pytest.raises(ValueError, match="same 12 x 12 symmetric family"):
        wn.solve(op, y, 2, validation=(other, np.zeros(20)))
    with pytest.raises(ValueError, match=r"validation\[1\] must have length 300"):
        wn.solve(op, y, 2, validation=(op, y[:-1]))
    with pytest.raises(ValueError, match="patience must be >= 1"):
        wn.solve(op, y, 2, validation=(op, y), patience=0)


def _helpers_sym():
    from _helpers import sym_gaussian
    return sym_gaussian()


def test_complete_fills_the_missing_entries():
    g = np.random.default_rng(3)
    Zs = g.standard_normal((60, 3)) @ g.standard_normal((3, 45))
    X = Zs.copy()
    missing = g.random(X.shape) < 0.5
    X[missing] = np.nan
    out, res = wn.complete(X, 3, rng=4, return_result=True, max_iter=3000)
    assert res.stop_reason == "tol"
    assert np.array_equal(out[~missing], X[~missing])        # observed entries kept
    assert rel_diff(out, Zs) < 1e-8
    denoised = wn.complete(X, 3, rng=4, keep_observed=False, max_iter=3000)
    assert rel_diff(denoised, Zs) < 1e-8
    # with noise: a held-out fraction stops the fit early
    Xn = X + 0.2 * g.standard_normal(X.shape)
    out2, res2 = wn.complete(Xn, 6, rng=5, validation_fraction=0.1, return_result=True,
                             max_iter=3000)
    assert res2.stop_reason == "validation" and np.isnan(out2).sum() == 0


@pytest.mark.parametrize("X,match", [
    (np.full((3, 3), np.nan), "no observed"),
    (np.array([[1.0, np.inf]]), "Inf"),
    (np.ones(4), "2-D"),
    (np.array([["a"]]), "real numeric"),
])
def test_complete_bad_input(X, match):
    with pytest.raises((ValueError, TypeError), match=match):
        wn.complete(X, 1)


def test_completion_operators_default_to_rank_adaptive_lbfgs():
    # wn.solve's default on observed entries is WN-LBFGS with truncate=True (an overparameterized
    # completion has many interpolants: it runs at the rank Theta reveals); a variant, or an
    # option of another variant, given by the caller wins
    g = np.random.default_rng(5)
    d, rstar, m = 60, 2, 1500
    U, V = g.standard_normal((d, rstar)), g.standard_normal((d, rstar))
    rows, cols = g.integers(0, d, m), g.integers(0, d, m)
    op = wn.completion_sensing(rows, cols, (d, d))
    y = op.forward_factored(U, V)
    res = wn.solve(op, y, 4, rng=0, max_iter=2000, x_true=(U, V))
    assert "WN-LBFGS" in res.variant, res.variant
    assert res.success and res.history["rel_error"][-1] < 1e-6, res.message
    assert res.effective_rank == rstar and res.factors["X_L"].shape == (d, 4)
    explicit = wn.solve(op, y, 4, rng=0, max_iter=2000, variant="lbfgs", truncate=True)
    assert np.array_equal(explicit.factors["X_L"], res.factors["X_L"])
    paper = wn.solve(op, y, 4, rng=0, max_iter=3, variant="paper", mu="auto")
    assert "the paper's Algorithm 1, learned magnitude step" in paper.variant, paper.variant
    assert "WN-LBFGS" in wn.solve(op, y, 4, rng=0, max_iter=3, memory=3).variant
    assert "preconditioned" in wn.solve(op, y, 4, rng=0, max_iter=3, preconditioned=True).variant
    # dense operators keep the general default
    dense = wn.gaussian_sensing(8, 200, d2=7, rng=1)
    assert "WN-LBFGS" in wn.solve(dense, dense.forward(np.ones((8, 7))), 2, rng=0,
                                  max_iter=2).variant
