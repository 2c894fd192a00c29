"""Bad input raises ValueError/TypeError naming the argument; odd layouts are converted correctly.

SPEC 6.2: "Bad input (wrong shape or dtype, NaN/Inf, rank out of range, non-finite step, empty
data) raises ValueError/TypeError with a message naming the argument; nothing crashes the
interpreter."
"""
import numpy as np
import pytest

import wnsense_native as wn
from wnsense_native import _core

D, M = 5, 13


def _operators():
    g = np.random.default_rng(0)
    Mu = g.standard_normal((M, D, D))
    return {
        "gauss_sym": wn.gaussian_sensing(D, M, rng=1),
        "gauss_packed_f32": wn.gaussian_sensing(D, M, dtype="float32", packed=True, rng=1),
        "gauss_rect": wn.gaussian_sensing(D, M, d2=D + 2, rng=1),
        "entry_sym": wn.entry_sampling(D, M, rng=1),
        "entry_rect": wn.entry_sampling(D, M, d2=D + 2, rng=1),
        "rank_one": wn.rank_one_sensing(D, M, rng=1),
        "identity": wn.identity_sensing(D),
        "identity_rect": wn.identity_sensing(D, d2=D + 2),
        "user": wn.dense_sensing(Mu),
    }


OPS = _operators()


@pytest.fixture(params=sorted(OPS))
def op(request):
    return OPS[request.param]


def _Z(op, seed=0):
    return np.random.default_rng(seed).standard_normal(op.shape[1:])


def _v(op, seed=1):
    return np.random.default_rng(seed).standard_normal(op.m)


# ------------------------------------------------------------------------------------------------
# forward / adjoint arguments

def test_wrong_shape_Z(op):
    m, d1, d2 = op.shape
    for bad in (np.zeros((d1 + 1, d2)), np.zeros((d1, d2 + 1)), np.zeros(d1 * d2),
                np.zeros((1, d1, d2)), np.zeros((0, 0))):
        with pytest.raises(ValueError, match=r"\bZ\b"):
            op.forward(bad)
    with pytest.raises(ValueError, match=r"\bZ\b"):
        op.forward(3.0)


def test_wrong_length_v(op):
    for bad in (np.zeros(op.m + 1), np.zeros(op.m - 1), np.zeros((op.m, 1)), np.zeros(0)):
        with pytest.raises(ValueError, match=r"\bv\b"):
            op.adjoint(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_Z_and_v(op, value):
    Z = _Z(op)
    Z[-1, 0] = value
    with pytest.raises(ValueError, match=r"\bZ\b.*(NaN|Inf)"):
        op.forward(Z)
    v = _v(op)
    v[op.m // 2] = value
    with pytest.raises(ValueError, match=r"\bv\b.*(NaN|Inf)"):
        op.adjoint(v)


@pytest.mark.parametrize("convert", [
    lambda a: a.astype(np.complex128),
    lambda a: a.astype(object),
    lambda a: a.astype(str),
    lambda a: a.astype(bool),
], ids=["complex", "object", "str", "bool"])
def test_bad_dtype_Z_and_v(op, convert):
    with pytest.raises(TypeError, match=r"\bZ\b"):
        op.forward(convert(_Z(op)))
    with pytest.raises(TypeError, match=r"\bv\b"):
        op.adjoint(convert(_v(op)))


@pytest.mark.parametrize("bad", ["abc", None, {"a": 1}], ids=["str", "None", "dict"])
def test_non_array_Z_and_v(op, bad):
    with pytest.raises((TypeError, ValueError), match=r"\bZ\b"):
        op.forward(bad)
    with pytest.raises((TypeError, ValueError), match=r"\bv\b"):
        op.adjoint(bad)


def test_ragged_input_names_argument(op):
    with pytest.raises((TypeError, ValueError), match=r"\bZ\b"):
        op.forward([[1.0, 2.0], [3.0]])


def test_noncontiguous_fortran_and_other_dtypes_are_converted(op):
    Z, v = _Z(op), _v(op)
    f_ref, a_ref = op.forward(Z), op.adjoint(v)
    big = np.zeros((Z.shape[0], 2 * Z.shape[1]))
    big[:, ::2] = Z
    bigv = np.zeros(2 * op.m)
    bigv[::2] = v
    for Zx in (np.asfortranarray(Z), big[:, ::2], Z.tolist()):
        np.testing.assert_array_equal(op.forward(Zx), f_ref)
    for vx in (bigv[::2], v[::-1].copy()[::-1], v.tolist()):
        np.testing.assert_array_equal(op.adjoint(vx), a_ref)
    # float32 and integer inputs are cast to float64 exactly
    Z32 = Z.astype(np.float32)
    np.testing.assert_array_equal(op.forward(Z32), op.forward(Z32.astype(np.float64)))
    Zi = np.arange(Z.size).reshape(Z.shape) % 3 - 1
    np.testing.assert_array_equal(op.forward(Zi), op.forward(Zi.astype(np.float64)))
    # inputs are not modified
    Zc = Z.copy()
    op.forward(Z)
    np.testing.assert_array_equal(Z, Zc)


@pytest.mark.parametrize("n", [0, -1, -8, 1.5, "2", True, 10 ** 6])
def test_bad_n_threads(op, n):
    Z, v = _Z(op), _v(op)
    with pytest.raises((TypeError, ValueError), match="n_threads"):
        op.forward(Z, n_threads=n)
    with pytest.raises((TypeError, ValueError), match="n_threads"):
        op.adjoint(v, n_threads=n)


@pytest.mark.parametrize("n", [0, -1, 2.0])
def test_bad_n_threads_constructor(n):
    with pytest.raises((TypeError, ValueError), match="n_threads"):
        wn.gaussian_sensing(D, M, n_threads=n)


def test_good_n_threads_numpy_int(op):
    Z = _Z(op)
    np.testing.assert_array_equal(op.forward(Z, n_threads=np.int64(2)), op.forward(Z))


# ------------------------------------------------------------------------------------------------
# constructors

@pytest.mark.parametrize("make,name", [
    (lambda: wn.gaussian_sensing(D, 0), "m"),
    (lambda: wn.gaussian_sensing(D, -3), "m"),
    (lambda: wn.gaussian_sensing(0, M), "d"),
    (lambda: wn.gaussian_sensing(D, M, d2=0), "d2"),
    (lambda: wn.entry_sampling(D, 0), "m"),
    (lambda: wn.entry_sampling(0, M), "d"),
    (lambda: wn.entry_sampling(D, M, d2=0), "d2"),
    (lambda: wn.rank_one_sensing(D, 0), "m"),
    (lambda: wn.rank_one_sensing(0, M), "d"),
    (lambda: wn.identity_sensing(0), "d"),
    (lambda: wn.identity_sensing(D, d2=-1), "d2"),
    (lambda: wn.random_stiefel(0, 1), "d"),
    (lambda: wn.random_stiefel(D, 0), "r"),
    (lambda: wn.random_stiefel(D, D + 1), "r"),
    (lambda: wn.low_rank_target(0, 1), "d"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_sizes_out_of_range(make, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        make()


@pytest.mark.parametrize("make,name", [
    (lambda: wn.gaussian_sensing(5.0, M), "d"),
    (lambda: wn.gaussian_sensing(D, "13"), "m"),
    (lambda: wn.gaussian_sensing(D, True), "m"),
    (lambda: wn.entry_sampling(D, 2.5), "m"),
    (lambda: wn.rank_one_sensing(None, M), "d"),
    (lambda: wn.low_rank_target(D, 1.0), "rank"),
])
def test_sizes_wrong_type(make, name):
    with pytest.raises(TypeError, match=rf"^{name}\b"):
        make()


def test_numpy_integer_sizes_accepted():
    op = wn.gaussian_sensing(np.int32(4), np.int64(6), rng=0)
    assert op.shape == (6, 4, 4)


@pytest.mark.parametrize("dtype", ["float16", "int32", "complex128", "foo", "", 5, np.int8,
                                   np.complex64, object])
def test_unknown_dtype(dtype):
    with pytest.raises((TypeError, ValueError), match="dtype"):
        wn.gaussian_sensing(D, M, dtype=dtype)
    with pytest.raises((TypeError, ValueError), match="dtype"):
        wn.dense_sensing(np.zeros((M, D, D)), dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.dtype("float32"), "float32", "f4"])
def test_dtype_spellings_accepted_by_dense_sensing(dtype):
    assert wn.dense_sensing(np.ones((2, 3, 3)), dtype=dtype).data.dtype == np.float32
    if dtype != "f4":
        assert wn.gaussian_sensing(3, 2, dtype=dtype, rng=0).data.dtype == np.float32


def test_packed_with_rectangular():
    with pytest.raises(ValueError, match="packed"):
        wn.gaussian_sensing(D, M, d2=D + 1, packed=True)
    with pytest.raises(ValueError, match="packed"):
        wn.gaussian_sensing(D, M, d2=D, packed=True)  # d2 given = rectangular family
    g = np.random.default_rng(0)
    with pytest.raises(ValueError, match="packed"):
        wn.dense_sensing(g.standard_normal((M, D, D + 1)), packed=True)
    with pytest.raises(ValueError, match="packed"):
        wn.dense_sensing(g.standard_normal((M, D, D)), packed=True)  # auto-detected non-sym


@pytest.mark.parametrize("rng", ["abc", 1.5, -1, [1, 2], object(), True, np.random.RandomState(0)],
                         ids=["str", "float", "negative", "list", "object", "bool", "RandomState"])
def test_bad_rng(rng):
    makers = [
        lambda: wn.gaussian_sensing(D, M, rng=rng),
        lambda: wn.entry_sampling(D, M, rng=rng),
        lambda: wn.rank_one_sensing(D, M, rng=rng),
        lambda: wn.low_rank_target(D, 2, rng=rng),
        lambda: wn.random_stiefel(D, 2, rng=rng),
    ]
    for make in makers:
        with pytest.raises((TypeError, ValueError), match="rng"):
            make()


def test_good_rng_kinds():
    seq = np.random.SeedSequence(5)
    a = wn.gaussian_sensing(D, M, rng=seq)
    b = wn.gaussian_sensing(D, M, rng=np.random.SeedSequence(5))
    np.testing.assert_array_equal(a.data, b.data)
    assert wn.gaussian_sensing(D, M, rng=np.int64(3)).shape == (M, D, D)
    assert wn.gaussian_sensing(D, M, rng=None).shape == (M, D, D)


# ------------------------------------------------------------------------------------------------
# low_rank_target

@pytest.mark.parametrize("kwargs,name", [
    (dict(d=5, rank=6), "rank"),
    (dict(d=5, rank=0), "rank"),
    (dict(d=5, rank=-1), "rank"),
    (dict(d=5, rank=4, d2=3), "rank"),
    (dict(d=5, rank=2, kappa=-1.0), "kappa"),
    (dict(d=5, rank=2, kappa=0.5), "kappa"),
    (dict(d=5, rank=2, kappa=0.0), "kappa"),
    (dict(d=5, rank=2, kappa=np.nan), "kappa"),
    (dict(d=5, rank=2, kappa=np.inf), "kappa"),
    (dict(d=5, rank=2, spectrum="logspace"), "spectrum"),
])
def test_low_rank_target_bad_values(kwargs, name):
    d, rank = kwargs.pop("d"), kwargs.pop("rank")
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        wn.low_rank_target(d, rank, **kwargs)


@pytest.mark.parametrize("kwargs,name", [
    (dict(kappa="2"), "kappa"), (dict(kappa=None), "kappa"), (dict(kappa=2 + 1j), "kappa"),
    (dict(spectrum=3), "spectrum"),
])
def test_low_rank_target_bad_types(kwargs, name):
    with pytest.raises(TypeError, match=rf"^{name}\b"):
        wn.low_rank_target(5, 2, **kwargs)


@pytest.mark.parametrize("spectrum", ["linspace", "geomspace"])
@pytest.mark.parametrize("d2", [None, 8])
def test_low_rank_target_valid(spectrum, d2):
    Z = wn.low_rank_target(6, 3, kappa=4.0, d2=d2, spectrum=spectrum, rng=0)
    assert Z.shape == (6, d2 or 6)
    s = np.linalg.svd(Z, compute_uv=False)
    assert s[0] == pytest.approx(1.0, rel=1e-12) and s[2] == pytest.approx(0.25, rel=1e-12)
    assert s[3] <= 1e-12
    mid = 0.625 if spectrum == "linspace" else 0.5
    assert s[1] == pytest.approx(mid, rel=1e-12)
    if d2 is None:
        np.testing.assert_array_equal(Z, Z.T)
        assert np.all(np.linalg.eigvalsh(Z) >= -1e-12)  # U diag(sigma) U^T is PSD
    np.testing.assert_array_equal(Z, wn.low_rank_target(6, 3, kappa=4.0, d2=d2,
                                                         spectrum=spectrum, rng=0))
    # kappa = 1 and rank = d are fine
    assert wn.low_rank_target(4, 4, kappa=1, rng=1).shape == (4, 4)


# ------------------------------------------------------------------------------------------------
# dense_sensing

@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_dense_sensing_non_finite(value):
    Mu = np.random.default_rng(0).standard_normal((M, D, D))
    Mu[3, 1, 2] = value
    with pytest.raises(ValueError, match=r"\bM\b.*(NaN|Inf)"):
        wn.dense_sensing(Mu)
    with pytest.raises(ValueError, match=r"\bM\b.*(NaN|Inf)"):
        wn.dense_sensing(Mu.astype(np.float32))


@pytest.mark.parametrize("bad,exc", [
    (np.zeros((M, D, D), dtype=complex), TypeError),
    (np.zeros((M, D, D), dtype=object), TypeError),
    (np.zeros((M, D, D), dtype=bool), TypeError),
    (np.full((M, D, D), "a"), TypeError),
    ("M", TypeError),
    (None, TypeError),
    (np.zeros(25), ValueError),
    (np.zeros((2, 3, 3, 3)), ValueError),
    (np.zeros((M, 24)), ValueError),  # not a perfect square
    (np.zeros((0, D, D)), ValueError),
    (np.zeros((M, 0, D)), ValueError),
    (np.zeros((M, 0)), ValueError),
    (np.zeros((0, 9)), ValueError),
], ids=["complex", "object", "bool", "str", "string", "None", "1d", "4d", "p_not_square",
        "m0", "d0", "p0", "m0flat"])
def test_dense_sensing_bad_M(bad, exc):
    with pytest.raises(exc, match=r"\bM\b"):
        wn.dense_sensing(bad)


def test_dense_sensing_bad_symmetric_flag():
    Mu = np.random.default_rng(0).standard_normal((M, D, D + 1))
    with pytest.raises(ValueError, match="symmetric"):
        wn.dense_sensing(Mu, symmetric=True)
    with pytest.raises(TypeError, match="symmetric"):
        wn.dense_sensing(Mu[:, :, :D], symmetric="yes")


# ------------------------------------------------------------------------------------------------
# Stiefel tools

def _XG(d=6, r=3):
    g = np.random.default_rng(0)
    X = wn.random_stiefel(d, r, rng=g)
    return X, wn.tangent_projection(X, g.standard_normal((d, r)))


RETRACTIONS = {"polar": wn.polar_retraction, "qr": wn.qr_retraction,
               "cayley": wn.cayley_retraction}


@pytest.mark.parametrize("kind", sorted(RETRACTIONS))
@pytest.mark.parametrize("eta", [np.nan, np.inf, -np.inf])
def test_retraction_non_finite_eta(kind, eta):
    X, G = _XG()
    with pytest.raises(ValueError, match="eta"):
        RETRACTIONS[kind](X, G, eta)


@pytest.mark.parametrize("kind", sorted(RETRACTIONS))
@pytest.mark.parametrize("eta", ["0.1", None, [0.1], np.array([0.1]), True, 1j])
def test_retraction_bad_eta_type(kind, eta):
    X, G = _XG()
    with pytest.raises(TypeError, match="eta"):
        RETRACTIONS[kind](X, G, eta)


@pytest.mark.parametrize("kind", sorted(RETRACTIONS))
def test_retraction_bad_X_and_G(kind):
    fn = RETRACTIONS[kind]
    gname = "euclidean_gradient" if kind == "cayley" else "G"
    X, G = _XG()
    wide = np.random.default_rng(1).standard_normal((3, 6))
    with pytest.raises(ValueError, match=r"\bX\b.*r <= d"):
        fn(wide, wide, 0.1)
    with pytest.raises(ValueError, match=rf"\b{gname}\b"):
        fn(X, G[:, :2], 0.1)
    with pytest.raises(ValueError, match=rf"\b{gname}\b"):
        fn(X, G.T, 0.1)
    with pytest.raises(ValueError, match=r"\bX\b"):
        fn(X[:, 0], G, 0.1)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"\bX\b.*(NaN|Inf)"):
        fn(Xn, G, 0.1)
    Gn = G.copy()
    Gn[1, 1] = np.inf
    with pytest.raises(ValueError, match=rf"\b{gname}\b.*(NaN|Inf)"):
        fn(X, Gn, 0.1)
    with pytest.raises(TypeError, match=rf"\b{gname}\b"):
        fn(X, G.astype(complex), 0.1)
    with pytest.raises(TypeError, match=r"\bX\b"):
        fn(X.astype(object), G, 0.1)
    with pytest.raises(ValueError, match=r"\bX\b"):
        fn(np.zeros((0, 0)), np.zeros((0, 0)), 0.1)


def test_tangent_projection_bad_inputs():
    X, G = _XG()
    with pytest.raises(ValueError, match=r"\bX\b.*r <= d"):
        wn.tangent_projection(X.T, G.T)
    with pytest.raises(ValueError, match=r"\bG\b"):
        wn.tangent_projection(X, G[:-1])
    with pytest.raises(TypeError, match=r"\bG\b"):
        wn.tangent_projection(X, "G")


# ------------------------------------------------------------------------------------------------
# the native layer checks its own arguments too (a wrong private call must not crash)

def test_native_layer_rejects_bad_arguments():
    op = OPS["gauss_sym"]
    Z = np.zeros((D, D))
    with pytest.raises(ValueError, match="Z"):
        _core.dense_forward(op.data, D, D, False, np.zeros((D, D + 1)), 1)
    with pytest.raises(ValueError, match="data row"):
        _core.dense_forward(op.data, D + 1, D + 1, False, np.zeros((D + 1, D + 1)), 1)
    with pytest.raises(ValueError, match="packed"):
        _core.dense_forward(np.ascontiguousarray(op.data[:, :15]), 3, 5, True, np.zeros((3, 5)), 1)
    with pytest.raises(ValueError, match="contiguous"):
        _core.dense_forward(np.asfortranarray(op.data.reshape(M, D * D)), D, D, False, Z, 1)
    with pytest.raises(TypeError):
        _core.dense_forward(op.data.astype(np.int64), D, D, False, Z, 1)
    with pytest.raises(TypeError):  # noconvert: no silent copy of a Fortran-order Z
        _core.dense_forward(op.data, D, D, False, np.asfortranarray(np.ones((D, D))), 1)
    with pytest.raises(ValueError, match="v"):
        _core.dense_adjoint(op.data, D, D, False, np.zeros(M + 1), 1)
    X = np.zeros((D, 2))
    with pytest.raises(ValueError, match="y"):
        _core.dense_residual(op.data, D, D, False, X, X, np.zeros(M - 1), X, None, True, 1)
    with pytest.raises(ValueError, match="R"):
        _core.dense_residual(op.data, D, D, False, X, np.zeros((D, 3)), None, X, None, True, 1)
    with pytest.raises(ValueError, match="right"):
        _core.dense_residual(op.data, D, D, False, X, X, None, np.zeros((D + 1, 2)), None, True,
                             1)
    with pytest.raises(TypeError, match="left"):   # no silent conversion of a thin matrix
        _core.dense_residual(op.data, D, D, False, X, X, None, None, np.asfortranarray(
            np.ones((D, 2))), False, 1)
    with pytest.raises(ValueError, match="bounds"):
        _core.dense_residual_slices(op.data, D, D, False, X, X, None, X, None, True,
                                    np.array([0, M + 4]), 1)
    with pytest.raises(ValueError, match="m_total"):
        _core.fill_gaussian(np.empty((4, D * D)), D, D, False, True, 1, 1, 10, 12)
    with pytest.raises(ValueError, match="writable"):
        ro = np.empty((M, D * D))
        ro.flags.writeable = False
        _core.fill_gaussian(ro, D, D, False, True, 1, 1)
    e = OPS["entry_sym"]
    with pytest.raises(ValueError, match="row index out of range"):
        _core.SparseMeasurements(e.m, D, D, e.rows + D, e.cols)
    with pytest.raises(ValueError, match="column index out of range"):
        _core.SparseMeasurements(e.m, D, D, e.rows, e.cols - D)
    with pytest.raises(ValueError, match="indptr"):
        _core.SparseMeasurements(2, D, D, e.rows[:3], e.cols[:3], np.array([0, 2, 5]))
    with pytest.raises(ValueError, match="nnz == m"):
        _core.SparseMeasurements(e.m + 1, D, D, e.rows, e.cols)
    with pytest.raises(ValueError, match="L"):
        e._native.residual(np.zeros((D + 1, 2)), np.zeros((D, 2)), None, None, None)
    with pytest.raises(ValueError, match="v"):
        e._native.adjoint_products(np.zeros(e.m + 1), None, None)
    with pytest.raises(ValueError, match="L"):
        _core.rank_one_residual(OPS["rank_one"].vectors, 1.0, np.zeros((D + 1, 2)),
                                np.zeros((D, 2)), None, None, None)
    with pytest.raises(ValueError, match="X"):
        _core.polar_retraction(np.zeros((2, 3)), np.zeros((2, 3)), 0.1)
    with pytest.raises(ValueError, match="G"):
        _core.qr_retraction(np.zeros((3, 2)), np.zeros((3, 3)), 0.1)
