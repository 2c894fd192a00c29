"""Measurement operators against plain-numpy references built from explicit dense ``M_i``.

Covers SPEC section 2: forward/adjoint/fused residual of every operator kind, the adjoint
identity, float32 and packed storage, the Gaussian normalization, seeded reproducibility
independent of the thread count, and the zero-copy ``dense_sensing`` wrapper.
"""
import pickle

import numpy as np
import pytest

import wnsense_native as wn
from _helpers import (assert_pass_close, entry_matrices, identity_matrices, probes,
                      rank_one_matrices, ref_adjoint, ref_forward, ref_pass, rel_diff,
                      unpack_upper)
from wnsense_native import _core

# ------------------------------------------------------------------------------------------------
# independent references (the M_i stacks of the library's operators: _helpers.py)

SIZES = [(1, 1), (7, 7), (33, 33), (5, 9)]  # (d1, d2); d1 == d2 means the symmetric family
SIZE_IDS = ["d1", "d7", "d33", "rect5x9"]
M_SMALL = 37  # odd and not a multiple of 4: exercises the kernels' tail rows


def user_matrices(d1, d2, m, seed, symmetric):
    M = np.random.default_rng(seed).standard_normal((m, d1, d2))
    if symmetric:
        M = 0.5 * (M + M.transpose(0, 2, 1))
    return M


# Operator kinds. Each builder returns (op, Ms) with Ms the (m, d1, d2) float64 reference stack
# built *independently* of the operator's own dense_matrices().
def _gauss(dtype, packed):
    def build(d1, d2, seed):
        sym = d1 == d2
        op = wn.gaussian_sensing(d1, M_SMALL, d2=None if sym else d2, dtype=dtype, packed=packed,
                                 rng=seed)
        if packed:
            Ms = unpack_upper(op.data, d1)
        else:
            Ms = op.data.astype(np.float64).reshape(M_SMALL, d1, d2)
        return op, Ms
    return build


def _entry(d1, d2, seed):
    op = wn.entry_sampling(d1, M_SMALL, d2=None if d1 == d2 else d2, rng=seed)
    return op, entry_matrices(op)


def _rank_one(d1, d2, seed):
    assert d1 == d2, "rank-one sensing is symmetric only"
    op = wn.rank_one_sensing(d1, M_SMALL, rng=seed)
    return op, rank_one_matrices(op)


def _identity(d1, d2, seed):
    op = wn.identity_sensing(d1, d2=None if d1 == d2 else d2)
    return op, identity_matrices(d1, d2)


def _user(packed, dtype=None):
    def build(d1, d2, seed):
        sym = d1 == d2
        assert sym or not packed, "packed storage is symmetric only"
        M = user_matrices(d1, d2, M_SMALL, seed, sym)
        op = wn.dense_sensing(M, packed=packed, dtype=dtype)
        Ms = M if dtype is None else M.astype(dtype).astype(np.float64)
        return op, Ms
    return build


KINDS = {
    "gauss_f64_full": _gauss("float64", False),
    "gauss_f64_packed": _gauss("float64", True),
    "gauss_f32_full": _gauss("float32", False),
    "gauss_f32_packed": _gauss("float32", True),
    "entry": _entry,
    "rank_one": _rank_one,
    "identity": _identity,
    "user_full": _user(False),
    "user_packed": _user(True),
    "user_f32": _user(False, "float32"),
}


SYMMETRIC_ONLY = {"gauss_f64_packed", "gauss_f32_packed", "rank_one", "user_packed"}
CASES = [(kind, size) for kind in sorted(KINDS) for size in SIZES
         if size[0] == size[1] or kind not in SYMMETRIC_ONLY]


@pytest.fixture(params=SIZES, ids=SIZE_IDS)
def size(request):
    return request.param


@pytest.fixture(params=CASES, ids=[f"{k}-{a}x{b}" for k, (a, b) in CASES])
def case(request):
    kind, (d1, d2) = request.param
    op, Ms = KINDS[kind](d1, d2, seed=11)
    assert op.shape == Ms.shape
    return kind, op, Ms


DENSE_CASES = [c for c in CASES if c[0].startswith(("gauss", "user"))]


def _inputs(op, seed=3, rank=3):
    m, d1, d2 = op.shape
    g = np.random.default_rng(seed)
    r = min(rank, d1, d2)
    return (g.standard_normal((d1, d2)), g.standard_normal(m), g.standard_normal((d1, r)),
            g.standard_normal((d2, r)), g.standard_normal(m))


# ------------------------------------------------------------------------------------------------
# forward / adjoint / fused residual against the explicit M_i

def test_forward_adjoint_residual_match_reference(case):
    kind, op, Ms = case
    Z, v, L, R, y = _inputs(op)
    # Float32 storage is compared with the float64 computation on the stored values cast to
    # float64: the arithmetic accumulates in float64, so the agreement is to float64 rounding.
    tol = 1e-12
    f = op.forward(Z)
    assert f.dtype == np.float64 and f.shape == (op.m,)
    assert rel_diff(f, ref_forward(Ms, Z)) <= tol
    a = op.adjoint(v)
    assert a.dtype == np.float64 and a.shape == op.shape[1:]
    assert rel_diff(a, ref_adjoint(Ms, v)) <= tol

    # the thin-factor pass: residual, ||r||^2 and the thin products only
    right, left = probes(op)
    ref = ref_pass(Ms, L, R, y, right, left, op.symmetric)
    res = op._residual(L, R, y, right, left)
    assert isinstance(res, wn.ResidualPass)
    assert res.AV.shape == (op.shape[1], right.shape[1])
    assert res.AtU.shape == (op.shape[2], left.shape[1])
    assert_pass_close(res, ref, tol)
    # the validated public pass is the same pass; y=None means zero measurements
    pub = op.residual(L, R, y, right=right, left=left)
    np.testing.assert_array_equal(pub.AV, res.AV)
    assert_pass_close(op.residual(L, R, right=right, left=left),
                      ref_pass(Ms, L, R, None, right, left, op.symmetric), tol)
    assert rel_diff(op.forward_factored(L, R), ref_forward(Ms, L @ R.T)) <= tol

    only = op._residual(L, R, y)
    assert only.AV is None and only.AtU is None
    assert rel_diff(only.r, ref[0]) <= tol
    assert abs(only.sumsq - res.sumsq) <= tol * res.sumsq


@pytest.mark.parametrize("kind,size", DENSE_CASES,
                         ids=[f"{k}-{a}x{b}" for k, (a, b) in DENSE_CASES])
def test_dense_matrices_match_independent_reference(kind, size):
    op, Ms = KINDS[kind](*size, seed=11)
    assert isinstance(op, wn.DenseSensing)
    D = op.dense_matrices()
    assert D.dtype == np.float64 and D.shape == op.shape
    np.testing.assert_array_equal(D, Ms)


def test_float32_storage_agrees_with_float64_same_seed(size):
    d1, d2 = size
    sym = d1 == d2
    kw = dict(d2=None if sym else d2, rng=5)
    packs = [False, True] if sym else [False]
    for packed in packs:
        op64 = wn.gaussian_sensing(d1, M_SMALL, dtype="float64", packed=packed, **kw)
        op32 = wn.gaussian_sensing(d1, M_SMALL, dtype="float32", packed=packed, **kw)
        assert op32.data.dtype == np.float32 and op64.data.dtype == np.float64
        # "float32 is the float64 draw rounded once"
        np.testing.assert_array_equal(op32.data, op64.data.astype(np.float32))
        Z, v, L, R, y = _inputs(op64)
        assert rel_diff(op32.forward(Z), op64.forward(Z)) <= 1e-6
        assert rel_diff(op32.adjoint(v), op64.adjoint(v)) <= 1e-6
        right, left = probes(op64)
        p32 = op32._residual(L, R, y, right, left)
        p64 = op64._residual(L, R, y, right, left)
        assert rel_diff(p32.r, p64.r) <= 1e-6
        assert abs(p32.sumsq - p64.sumsq) <= 1e-6 * p64.sumsq
        assert rel_diff(p32.AV, p64.AV) <= 1e-6 and rel_diff(p32.AtU, p64.AtU) <= 1e-6
        # ... and float32 storage is not silently float64 (the answers differ at all)
        if d1 * d2 > 1:
            assert not np.array_equal(op32.forward(Z), op64.forward(Z))


def test_float32_loose_tolerance_against_float64_reference(size):
    """The issue's float32 criterion: 1e-5 relative to the float64 operator's reference."""
    d1, d2 = size
    sym = d1 == d2
    op64 = wn.gaussian_sensing(d1, M_SMALL, d2=None if sym else d2, rng=8)
    op32 = wn.gaussian_sensing(d1, M_SMALL, d2=None if sym else d2, dtype="float32", rng=8)
    Ms = op64.data.reshape(op64.shape)
    Z, v, *_ = _inputs(op64)
    assert rel_diff(op32.forward(Z), ref_forward(Ms, Z)) <= 1e-5
    assert rel_diff(op32.adjoint(v), ref_adjoint(Ms, v)) <= 1e-5


# ------------------------------------------------------------------------------------------------
# adjoint identity <A(Z), v> = <Z, A*(v)>

def test_adjoint_identity(case):
    kind, op, Ms = case
    for seed in range(3):
        Z, v, *_ = _inputs(op, seed=100 + seed)
        AZ, Atv = op.forward(Z), op.adjoint(v)
        lhs, rhs = AZ @ v, np.sum(Z * Atv)
        scale = np.linalg.norm(AZ) * np.linalg.norm(v) + np.linalg.norm(Z) * np.linalg.norm(Atv)
        assert abs(lhs - rhs) <= 1e-13 * scale, (kind, lhs, rhs)


@pytest.mark.parametrize("symmetric", [None, True, False])
def test_adjoint_identity_user_square_nonsymmetric(symmetric):
    """A user's non-symmetric square M_i, auto-detected or forced into either family."""
    M = np.random.default_rng(1).standard_normal((23, 6, 6))
    op = wn.dense_sensing(M, symmetric=symmetric)
    assert op.symmetric == bool(symmetric)
    Z, v, *_ = _inputs(op)
    lhs, rhs = op.forward(Z) @ v, np.sum(Z * op.adjoint(v))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)
    assert rel_diff(op.forward(Z), ref_forward(M, Z)) <= 1e-12


# ------------------------------------------------------------------------------------------------
# packed vs full storage

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("d", [1, 2, 7, 33])
def test_packed_equals_full_same_seed(d, dtype):
    full = wn.gaussian_sensing(d, 41, dtype=dtype, rng=9)
    pack = wn.gaussian_sensing(d, 41, dtype=dtype, packed=True, rng=9)
    assert pack.packed and not full.packed
    assert pack.data.shape == (41, d * (d + 1) // 2) and full.data.shape == (41, d * d)
    assert pack.nbytes < full.nbytes or d == 1
    np.testing.assert_array_equal(pack.dense_matrices(), full.dense_matrices())
    Mf = full.dense_matrices()
    np.testing.assert_array_equal(Mf, Mf.transpose(0, 2, 1))  # symmetric realization
    Z, v, L, R, y = _inputs(full)
    tol = 1e-12
    assert rel_diff(pack.forward(Z), full.forward(Z)) <= tol
    assert rel_diff(pack.adjoint(v), full.adjoint(v)) <= tol
    right, left = probes(full)
    pp = pack._residual(L, R, y, right, left)
    pf = full._residual(L, R, y, right, left)
    assert rel_diff(pp.r, pf.r) <= tol and abs(pp.sumsq - pf.sumsq) <= tol * pf.sumsq
    assert rel_diff(pp.AV, pf.AV) <= tol and rel_diff(pp.AtU, pf.AtU) <= tol
    # the packed adjoint is a symmetric matrix
    Gp = pack.adjoint(v)
    np.testing.assert_array_equal(Gp, Gp.T)


def test_packed_storage_layout_is_triu_order():
    d = 5
    full = wn.gaussian_sensing(d, 6, rng=2)
    pack = wn.gaussian_sensing(d, 6, packed=True, rng=2)
    iu = np.triu_indices(d)
    np.testing.assert_array_equal(pack.data, full.dense_matrices()[:, iu[0], iu[1]])


# ------------------------------------------------------------------------------------------------
# Gaussian ensembles: normalization and distribution

def _normalization_ratios(make, Z, seeds):
    nz = np.sum(Z * Z)
    return np.array([np.sum(make(s).forward(Z) ** 2) / nz for s in seeds])


@pytest.mark.parametrize("dtype,packed", [("float64", False), ("float64", True),
                                          ("float32", True)])
def test_symmetric_gaussian_normalization(dtype, packed):
    d, m, seeds = 7, 2000, range(8)
    Zs = wn.low_rank_target(d, 3, kappa=4.0, rng=0) * 3.0
    Zs += np.diag(np.arange(d))  # a full-rank symmetric Z with a large diagonal part
    ratios = _normalization_ratios(
        lambda s: wn.gaussian_sensing(d, m, dtype=dtype, packed=packed, rng=s), Zs, seeds)
    # ||A(Z)||^2 / ||Z||^2 ~ chi2_m / m: mean 1, variance 2/m
    se = np.sqrt(2.0 / m / len(ratios))
    assert abs(ratios.mean() - 1.0) <= 4 * se, ratios
    # the spread matches chi2_m / m too (catches e.g. rows that are copies of each other)
    assert 0.5 * np.sqrt(2.0 / m) <= ratios.std(ddof=1) <= 2.0 * np.sqrt(2.0 / m)


def test_symmetric_gaussian_annihilates_skew_matrices():
    d = 6
    op = wn.gaussian_sensing(d, 50, rng=1)
    B = np.random.default_rng(0).standard_normal((d, d))
    W = B - B.T
    assert np.max(np.abs(op.forward(W))) <= 1e-13 * np.abs(B).sum()
    # so for non-symmetric Z only sym(Z) is measured
    np.testing.assert_allclose(op.forward(B), op.forward(0.5 * (B + B.T)), rtol=0, atol=1e-12)


def test_rectangular_gaussian_normalization_any_Z():
    d1, d2, m, seeds = 5, 9, 2000, range(8)
    g = np.random.default_rng(4)
    for Z in (g.standard_normal((d1, d2)), np.outer(np.arange(1, d1 + 1), np.ones(d2))):
        ratios = _normalization_ratios(lambda s: wn.gaussian_sensing(d1, m, d2=d2, rng=s), Z,
                                       seeds)
        se = np.sqrt(2.0 / m / len(ratios))
        assert abs(ratios.mean() - 1.0) <= 4 * se, ratios


def test_symmetric_gaussian_entry_variances():
    """M_i = (G + G^T) / (2 sqrt(m)): diagonal variance 1/m, off-diagonal 1/(2m), mean 0."""
    d, m = 6, 3000
    M = wn.gaussian_sensing(d, m, rng=12).dense_matrices()
    diag = M[:, np.arange(d), np.arange(d)].ravel() * np.sqrt(m)
    iu = np.triu_indices(d, 1)
    off = M[:, iu[0], iu[1]].ravel() * np.sqrt(m)
    for x, var in ((diag, 1.0), (off, 0.5)):
        n = x.size
        assert abs(x.mean()) <= 5 * np.sqrt(var / n)
        assert abs(x.var() - var) <= 5 * var * np.sqrt(2.0 / n)
        kurt = np.mean(x ** 4) / np.mean(x ** 2) ** 2
        assert abs(kurt - 3.0) <= 5 * np.sqrt(24.0 / n)


def test_rectangular_gaussian_entries_independent_standard():
    d1, d2, m = 5, 9, 3000
    op = wn.gaussian_sensing(d1, m, d2=d2, rng=13)
    X = op.data * np.sqrt(m)
    n = X.size
    assert abs(X.mean()) <= 5 / np.sqrt(n)
    assert abs(X.var() - 1.0) <= 5 * np.sqrt(2.0 / n)
    # consecutive rows and consecutive columns are uncorrelated
    c_rows = np.mean(X[1:] * X[:-1])
    c_cols = np.mean(X[:, 1:] * X[:, :-1])
    assert abs(c_rows) <= 5 / np.sqrt(X[1:].size)
    assert abs(c_cols) <= 5 / np.sqrt(X[:, 1:].size)


# ------------------------------------------------------------------------------------------------
# reproducibility and thread-count independence

M_BIG = 3000


@pytest.mark.parametrize("d,d2,dtype,packed", [
    (9, None, "float64", False), (9, None, "float64", True), (9, None, "float32", False),
    (9, None, "float32", True), (5, 9, "float64", False), (5, 9, "float32", False)])
def test_same_seed_same_operator_any_thread_count(d, d2, dtype, packed):
    assert _core.testing.reduction_slices(M_BIG) > 2  # several reduction slices are really in use
    ops = [wn.gaussian_sensing(d, M_BIG, d2=d2, dtype=dtype, packed=packed, rng=21, n_threads=t)
           for t in (1, 2, None)]
    for op in ops[1:]:
        assert np.array_equal(op.data, ops[0].data)
    other = wn.gaussian_sensing(d, M_BIG, d2=d2, dtype=dtype, packed=packed, rng=22)
    assert not np.array_equal(other.data, ops[0].data)
    # a Generator is accepted and gives the same as the equivalent seed
    gen_op = wn.gaussian_sensing(d, M_BIG, d2=d2, dtype=dtype, packed=packed,
                                 rng=np.random.default_rng(21))
    assert np.array_equal(gen_op.data, ops[0].data)

    op = ops[0]
    Z, v, L, R, y = _inputs(op, seed=31)
    right, left = probes(op)
    results = {}
    for t in (1, 2, None):
        r, s, AV, AtU = op._residual(L, R, y, right, left, t or 0)
        r_only, s_only, _, _ = op._residual(L, R, y, None, None, t or 0)
        results[t] = (op.forward(Z, n_threads=t), op.adjoint(v, n_threads=t), r, s, AV, AtU,
                      r_only, s_only)
    for t in (2, None):
        for a, b in zip(results[1], results[t]):
            if isinstance(a, float):
                assert a == b
            else:
                assert np.array_equal(a, b)
    # the fused pass without the products gives the same bits as with them
    assert np.array_equal(results[1][2], results[1][6]) and results[1][3] == results[1][7]


@pytest.mark.parametrize("d2", [None, 4])
def test_structured_operators_reproducible(d2):
    a = wn.entry_sampling(6, 200, d2=d2, rng=3)
    b = wn.entry_sampling(6, 200, d2=d2, rng=3)
    assert np.array_equal(a.rows, b.rows) and np.array_equal(a.cols, b.cols)
    assert a.rows.min() >= 0 and a.rows.max() < 6 and a.cols.max() < (d2 or 6)
    assert a.scale == pytest.approx(np.sqrt(6 * (d2 or 6) / 200), rel=1e-15)
    c = wn.entry_sampling(6, 200, d2=d2, rng=4)
    assert not (np.array_equal(a.rows, c.rows) and np.array_equal(a.cols, c.cols))
    if d2 is None:
        r1, r2 = wn.rank_one_sensing(6, 50, rng=3), wn.rank_one_sensing(6, 50, rng=3)
        assert np.array_equal(r1.vectors, r2.vectors)
        assert r1.scale == pytest.approx(1 / np.sqrt(50), rel=1e-15)


def test_entry_adjoint_repeated_entries_add_up():
    op = wn.entry_sampling(3, 400, d2=2, rng=0)  # 400 draws over 6 cells: many repeats
    v = np.ones(op.m)
    counts = np.zeros((3, 2))
    np.add.at(counts, (op.rows, op.cols), 1.0)
    np.testing.assert_allclose(op.adjoint(v), op.scale * counts, rtol=1e-14)


def test_identity_operator_is_vec():
    Z = np.arange(45.0).reshape(5, 9)
    op = wn.identity_sensing(5, d2=9)
    assert op.shape == (45, 5, 9) and not op.symmetric
    np.testing.assert_array_equal(op.forward(Z), Z.ravel())
    np.testing.assert_array_equal(op.adjoint(Z.ravel()), Z)
    assert wn.identity_sensing(4).symmetric


# ------------------------------------------------------------------------------------------------
# dense_sensing: the user's array in place

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_sensing_shares_memory_with_user_array(dtype):
    M = user_matrices(6, 6, 19, 0, True).astype(dtype)
    op = wn.dense_sensing(M)
    assert np.shares_memory(op.data, M)
    assert op.data.dtype == dtype and op.shape == (19, 6, 6)
    assert op.symmetric and not op.packed
    # an in-place update of the user's array is seen by the operator (no hidden copy)
    Z = np.eye(6)
    before = op.forward(Z)
    M[0] *= 2.0
    after = op.forward(Z)
    assert after[0] == pytest.approx(2 * before[0], rel=1e-12)
    np.testing.assert_array_equal(after[1:], before[1:])


def test_dense_sensing_flat_input():
    M = user_matrices(5, 5, 13, 1, False)
    flat = M.reshape(13, 25)
    op_flat = wn.dense_sensing(flat)
    op_3d = wn.dense_sensing(M)
    assert np.shares_memory(op_flat.data, flat)
    assert op_flat.shape == (13, 5, 5) == op_3d.shape
    assert not op_flat.symmetric
    Z, v, *_ = _inputs(op_3d)
    np.testing.assert_array_equal(op_flat.forward(Z), op_3d.forward(Z))
    np.testing.assert_array_equal(op_flat.adjoint(v), op_3d.adjoint(v))
    assert rel_diff(op_flat.forward(Z), ref_forward(M, Z)) <= 1e-12


def test_dense_sensing_converts_other_layouts_correctly():
    M = user_matrices(4, 7, 11, 2, False)
    Z, v, *_ = _inputs(wn.dense_sensing(M))
    f_ref, a_ref = ref_forward(M, Z), ref_adjoint(M, v)
    big = np.zeros((22, 4, 7))
    big[::2] = M
    variants = {
        "fortran": np.asfortranarray(M),
        "strided": big[::2],
        "transposed_view": np.ascontiguousarray(M.transpose(0, 2, 1)).transpose(0, 2, 1),
    }
    Mi = np.random.default_rng(5).integers(-3, 4, size=(11, 4, 7))
    for name, arr in variants.items():
        np.testing.assert_array_equal(arr, M)
        assert not arr.flags.c_contiguous, name
        op = wn.dense_sensing(arr)
        assert op.data.flags.c_contiguous and op.data.dtype == np.float64
        assert not np.shares_memory(op.data, arr)
        assert rel_diff(op.forward(Z), f_ref) <= 1e-12, name
        assert rel_diff(op.adjoint(v), a_ref) <= 1e-12, name
    op = wn.dense_sensing(Mi)
    assert op.data.dtype == np.float64
    np.testing.assert_allclose(op.forward(Z), ref_forward(Mi.astype(float), Z), rtol=1e-12)


def test_dense_sensing_symmetric_autodetection():
    Msym = user_matrices(6, 6, 9, 3, True)
    assert wn.dense_sensing(Msym).symmetric
    assert not wn.dense_sensing(user_matrices(6, 6, 9, 3, False)).symmetric
    assert not wn.dense_sensing(user_matrices(4, 6, 9, 3, False)).symmetric
    # within 1e-12 relative counts as symmetric; 1e-8 does not
    tiny = Msym.copy()
    tiny[0, 0, 1] += 1e-14 * np.abs(Msym).max()
    assert wn.dense_sensing(tiny).symmetric
    off = Msym.copy()
    off[-1, 2, 4] += 1e-8 * np.abs(Msym).max()
    assert not wn.dense_sensing(off).symmetric
    # the flat form is detected too
    assert wn.dense_sensing(Msym.reshape(9, 36)).symmetric
    # an explicit flag overrides
    assert not wn.dense_sensing(Msym, symmetric=False).symmetric


@pytest.mark.parametrize("dtype", [None, "float32"])
def test_dense_sensing_packed_conversion_equals_full(dtype):
    M = user_matrices(7, 7, 15, 4, True)
    full = wn.dense_sensing(M, dtype=dtype)
    pack = wn.dense_sensing(M, packed=True, dtype=dtype)
    assert pack.packed and pack.data.shape == (15, 28)
    assert not np.shares_memory(pack.data, M)
    np.testing.assert_array_equal(pack.dense_matrices(), full.dense_matrices())
    Z, v, L, R, y = _inputs(full)
    assert rel_diff(pack.forward(Z), full.forward(Z)) <= 1e-12
    assert rel_diff(pack.adjoint(v), full.adjoint(v)) <= 1e-12
    right, left = probes(full)
    pp, pf = pack._residual(L, R, y, right, left), full._residual(L, R, y, right, left)
    assert rel_diff(pp.r, pf.r) <= 1e-12 and rel_diff(pp.AV, pf.AV) <= 1e-12
    assert rel_diff(pp.AtU, pf.AtU) <= 1e-12


def test_dense_sensing_packed_forced_symmetric_keeps_sym_part():
    """symmetric=True on non-symmetric M_i: only sym(M_i) matters, packed stores sym(M_i)."""
    M = user_matrices(5, 5, 8, 6, False)
    pack = wn.dense_sensing(M, symmetric=True, packed=True)
    S = 0.5 * (M + M.transpose(0, 2, 1))
    np.testing.assert_allclose(pack.dense_matrices(), S, rtol=0, atol=1e-15)
    Zs = wn.low_rank_target(5, 2, rng=1)
    full = wn.dense_sensing(M, symmetric=True)
    assert rel_diff(pack.forward(Zs), full.forward(Zs)) <= 1e-12


def test_dense_sensing_dtype_conversion():
    M = user_matrices(4, 4, 10, 7, True)
    op = wn.dense_sensing(M, dtype="float32")
    assert op.data.dtype == np.float32 and not np.shares_memory(op.data, M)
    np.testing.assert_array_equal(op.data, M.reshape(10, 16).astype(np.float32))
    op2 = wn.dense_sensing(M, dtype=np.float64)
    assert np.shares_memory(op2.data, M)


def test_kernel_isa_reported():
    assert _core.kernel_isa() in ("avx2", "generic")


@pytest.mark.parametrize("kw", [{}, {"dtype": "float32", "packed": True}])
def test_unpickled_dense_operators_run(kw):
    # an unpickled array carries its own dtype object: the native layer compares dtypes by
    # equivalence, not identity (it raised "data must be float64 or float32")
    op = wn.gaussian_sensing(6, 300, rng=2, **kw)
    clone = pickle.loads(pickle.dumps(op))
    Z = np.arange(36.0).reshape(6, 6)
    assert clone.forward(Z).tobytes() == op.forward(Z).tobytes()
    data = pickle.loads(pickle.dumps(np.ascontiguousarray(op.dense_matrices())))
    assert np.array_equal(wn.dense_sensing(data).forward(Z), wn.dense_sensing(
        op.dense_matrices()).forward(Z))
