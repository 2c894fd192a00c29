"""The pure-numpy reference (``wn.reference``) against the native path: same oracle values, same
iterates from the same seed, no native calls."""
import numpy as np
import pytest

import wnsense_native as wn
from _helpers import rel_diff, sym_gaussian
from wnsense_native import reference
from wnsense_native.reference import _operators as ref_ops
from wnsense_native.reference import gd as ref_gd
from wnsense_native.reference import wn_lbfgs as ref_lbfgs
from wnsense_native.reference import wn_rgd as ref_wn
from wnsense_native.reference import wn_rgd_rect as ref_wn_rect
from wnsense_native.solvers import NATIVE_METHODS

NT = 1  # one native thread: the small problems here are latency bound
N_ITER = 50
AGREE = 1e-9


# -- problems (sym_gaussian: _helpers.py) ---------------------------------------------------

def rect_gaussian():
    Zs = wn.low_rank_target(10, 2, d2=8, rng=12)
    op = wn.gaussian_sensing(10, 250, d2=8, rng=13)
    return op, op.forward(Zs), Zs


def sym_entries():
    Zs = wn.low_rank_target(12, 2, rng=14)
    op = wn.entry_sampling(12, 120, rng=15)
    return op, op.forward(Zs), Zs


def rect_entries():
    Zs = wn.low_rank_target(10, 2, d2=8, rng=16)
    op = wn.entry_sampling(10, 70, d2=8, rng=17)
    return op, op.forward(Zs), Zs


def rank_one():
    Zs = wn.low_rank_target(10, 2, rng=18)
    op = wn.rank_one_sensing(10, 200, rng=19)
    return op, op.forward(Zs), Zs


def identity():
    Zs = wn.low_rank_target(10, 2, kappa=4, rng=20)
    op = wn.identity_sensing(10)
    return op, op.forward(Zs), Zs


def rect_identity():
    Zs = wn.low_rank_target(9, 2, d2=7, rng=21)
    op = wn.identity_sensing(9, d2=7)
    return op, op.forward(Zs), Zs


def packed_f32():
    return sym_gaussian(dtype="float32", packed=True)


def user_dense_nonsym_storage():
    # symmetric=True with non-symmetric stored M_i: only sym(M_i) matters in the symmetric family
    rng = np.random.default_rng(22)
    M = rng.standard_normal((200, 8, 8)) / np.sqrt(200)
    op = wn.dense_sensing(M, symmetric=True)
    Zs = wn.low_rank_target(8, 2, kappa=5, rng=23)
    return op, op.forward(Zs), Zs


ALL_OPS = {"gaussian": sym_gaussian, "gaussian_rect": rect_gaussian, "packed_f32": packed_f32,
           "entries": sym_entries, "entries_rect": rect_entries, "rank_one": rank_one,
           "identity": identity, "identity_rect": rect_identity,
           "user_dense": user_dense_nonsym_storage}


# -- the numpy oracle ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL_OPS))
def test_numpy_oracle_matches_native_residual(name):
    op, y, _ = ALL_OPS[name]()
    m, d1, d2 = op.shape
    rng = np.random.default_rng(0)
    if op.symmetric:  # the symmetric solvers pass L = X Theta, R = X: a symmetric Z
        R = rng.standard_normal((d1, 3))
        L = R @ np.diag([1.0, -0.5, 2.0])
    else:
        L, R = rng.standard_normal((d1, 3)), rng.standard_normal((d2, 3))
    right, left = rng.standard_normal((d2, 4)), rng.standard_normal((d1, 2))
    fn = ref_ops.numpy_residual(op, y)
    r, sumsq, AV, AtU = fn(L, R, True, right, left)
    r_n, sumsq_n, AV_n, AtU_n = op._residual(np.ascontiguousarray(L), np.ascontiguousarray(R), y,
                                             right, left, 1)
    assert r.shape == (m,) and AV.shape == (d1, 4) and AtU.shape == (d2, 2)
    assert rel_diff(r, r_n) < 1e-12
    assert abs(sumsq - sumsq_n) <= 1e-12 * sumsq_n
    assert rel_diff(AV, AV_n) < 1e-12 and rel_diff(AtU, AtU_n) < 1e-12
    # and against the public forward / adjoint definitions (sym(A*(r)) in the symmetric family)
    Z = L @ R.T
    assert rel_diff(r, op.forward(Z) - y) < 1e-12
    G = op.adjoint(r)
    if op.symmetric:
        G = 0.5 * (G + G.T)
    assert rel_diff(AV, G @ right) < 1e-12
    assert rel_diff(AtU, (G if op.symmetric else G.T) @ left) < 1e-12
    res = fn(L, R, True, None, None)
    assert res.AV is None and res.AtU is None
    assert rel_diff(fn(L, R, False, None, None).r, op.forward(Z)) < 1e-12


@pytest.mark.parametrize("name", ["gaussian", "packed_f32", "entries", "rank_one",
                                  "gaussian_rect", "entries_rect"])
def test_numpy_oracle_adjoint_identity(name):
    # <A(Z), v> = <Z, A*(v)> for the numpy oracle itself, with Z = L R^T and A*(v) read off as
    # the product A*(v) @ R at Z = 0, y = -v: <Z, A*(v)> = tr(L^T (A*(v) R))
    op, y, _ = ALL_OPS[name]()
    m, d1, d2 = op.shape
    rng = np.random.default_rng(1)
    v = rng.standard_normal(m)
    if op.symmetric:   # the symmetric family: a symmetric Z, where sym(A*(v)) is exact
        B = rng.standard_normal((d1, d1))
        lam, w = np.linalg.eigh(B + B.T)
        L, R = w * lam, w
    else:
        L, R = rng.standard_normal((d1, 3)), rng.standard_normal((d2, 3))
    fn_v = ref_ops.numpy_residual(op, -v)
    r0, _, Astar_v_R, _ = fn_v(np.zeros((d1, 1)), np.zeros((d2, 1)), True, R, None)
    np.testing.assert_array_equal(r0, v)
    Az = ref_ops.numpy_residual(op, np.zeros(m))(L, R, False, None, None).r
    lhs, rhs = Az @ v, np.sum(L * Astar_v_R)
    assert abs(lhs - rhs) <= 1e-10 * np.linalg.norm(Az) * np.linalg.norm(v)


def test_dense_oracle_converts_float32_once():
    op, y, _ = packed_f32()
    assert op.data.dtype == np.float32
    fn = ref_ops.numpy_residual(op, y)
    # the float64 copy lives in the closure; the operator's storage is untouched
    cells = [c.cell_contents for c in fn.__closure__ if isinstance(c.cell_contents, np.ndarray)]
    assert any(c.dtype == np.float64 and c.shape == op.data.shape for c in cells)
    assert op.data.dtype == np.float32


def test_reference_never_calls_native_core(monkeypatch):
    problems = {k: f() for k, f in ALL_OPS.items()}

    class NoCore:
        def __getattr__(self, name):
            raise AssertionError(f"the reference called _core.{name}")

    import wnsense_native.operators.dense as ops_dense
    import wnsense_native.operators.entries as ops_entries
    import wnsense_native.operators.structured as ops_structured
    import wnsense_native.solvers._backend as nat_backend
    import wnsense_native.solvers.wn_lbfgs as nat_lbfgs
    # every operators module that calls a kernel (each binds _core itself)
    for mod in (ops_dense, ops_entries, ops_structured, nat_backend, nat_lbfgs):
        monkeypatch.setattr(mod, "_core", NoCore())
    # the native WN-LBFGS holds its kernels in NativeGeometry (bound at import): those too

    def no_core(name):
        def fail(*args, **kwargs):
            raise AssertionError(f"the reference called _core.{name} (NativeGeometry)")
        return staticmethod(fail)

    for name in [k for k in vars(nat_lbfgs.NativeGeometry) if not k.startswith("_")]:
        monkeypatch.setattr(nat_lbfgs.NativeGeometry, name, no_core(name))
    for mod in (reference, ref_ops, ref_wn, ref_wn_rect, ref_gd, ref_lbfgs):
        assert not hasattr(mod, "_core")
    for name, (op, y, Zs) in problems.items():
        res = reference.solve(op, y, 3, method="gd", max_iter=3, rng=0)
        assert res.nit == 3
        # the default (WN-LBFGS), the paper's Algorithm 1 and the preconditioned variant, in
        # both families
        res = reference.solve(op, y, 3, max_iter=3, tol=0.0, rng=0)
        default = ("WN-RGD, the paper's"
                   if op.preferred_options.get("wn_rgd", {}).get("variant") == "paper"
                   else "WN-LBFGS")
        # (WN-LBFGS's start fits the population cases exactly: it may stop there, at rounding)
        assert res.nit == 3 or res.residual_norm < 1e-13, (name, res.stop_reason)
        assert res.variant.startswith(default), name
        for variant in ("lbfgs", "paper", "preconditioned"):
            res = reference.solve(op, y, 3, max_iter=3, tol=0.0, rng=0, variant=variant)
            assert res.nit == 3 or (variant == "lbfgs" and res.residual_norm < 1e-13), \
                (name, variant, res.stop_reason)
    # and the native path really does go through _core (so the check above can fail): the
    # operators' pass, and the WN-LBFGS algebra by itself
    op, y, _ = problems["gaussian"]
    with pytest.raises(AssertionError, match="_core"):
        wn.solve(op, y, 3, max_iter=1)
    monkeypatch.undo()
    monkeypatch.setattr(nat_lbfgs.NativeGeometry, "gradient_sym", no_core("wn_gradient_sym"))
    with pytest.raises(AssertionError, match="_core"):
        wn.solve(op, y, 3, max_iter=1)


# -- registry / public surface -------------------------------------------------------------------

def test_public_surface():
    assert wn.reference is reference
    assert callable(wn.reference.solve)
    # every reference method is a native method (the native registry may run ahead)
    assert {"wn_rgd", "gd"} <= set(reference.REFERENCE_METHODS) <= set(NATIVE_METHODS)


@pytest.mark.parametrize("method", ["wn_rgd", "gd"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_same_options_and_factor_names(method, symmetric):
    nat = NATIVE_METHODS[method](symmetric)
    ref = reference.REFERENCE_METHODS[method](symmetric)
    assert ref is not nat
    assert ref.OPTIONS == nat.OPTIONS
    op, y, _ = (sym_gaussian if symmetric else rect_gaussian)()
    a = wn.solve(op, y, 2, method=method, max_iter=1, n_threads=NT, rng=0)
    b = reference.solve(op, y, 2, method=method, max_iter=1, rng=0)
    assert set(a.factors) == set(b.factors)
    assert set(a.history) == set(b.history)
    for k in a.factors:
        assert a.factors[k].shape == b.factors[k].shape


@pytest.mark.parametrize("method,options", [
    ("wn_rgd", {"diagnostics": ("alignment", "theta_svals", "hessian"), "hessian_every": 5}),
    ("gd", {"diagnostics": ("alignment", "hessian"), "hessian_every": 5}),
])
def test_diagnostics_agree(method, options):
    op, y, Zs = sym_gaussian()
    kw = dict(method=method, max_iter=10, tol=0.0, rng=3, x_true=Zs, **options)
    a = wn.solve(op, y, 4, n_threads=NT, **kw)
    b = reference.solve(op, y, 4, **kw)
    assert set(a.history) == set(b.history)
    extra = set(a.history) - {"loss", "grad_norm", "step_size", "residual_norm", "time",
                              "rel_error"}
    assert extra
    for k in extra:
        # hessian_top: power iteration on a (nearly) degenerate top eigenvalue (the factors'
        # rotation symmetry) may stop at its iteration cap, where rounding differences between
        # the fused native pass and the numpy GEMVs show at ~1e-5
        rtol = 1e-3 if k == "hessian_top" else 1e-7
        np.testing.assert_allclose(a.history[k], b.history[k], rtol=rtol, atol=1e-12,
                                   equal_nan=True, err_msg=k)


# -- same iterates from the same seed ------------------------------------------------------------

# (method, options, constant step); the default variant (WN-LBFGS) is compared over 50
# iterations in tests/test_wn_lbfgs.py
DENSE_CASES = [
    ("wn_rgd", {"variant": "paper", "retraction": "polar"}, 0.3),
    ("wn_rgd", {"variant": "paper", "retraction": "qr"}, 0.3),
    ("wn_rgd", {"variant": "paper", "retraction": "cayley"}, 0.3),
    ("wn_rgd", {"preconditioned": True}, 0.3),
    ("wn_rgd", {"preconditioned": True, "retraction": "cayley"}, 0.3),
    ("wn_rgd", {"variant": "preconditioned", "mu": 2.0}, 0.3),
    ("wn_rgd", {"variant": "paper", "theta0": 0.5, "mu": 1.5}, 0.3),
    ("gd", {"init_scale": 1e-2}, 0.2),
]


def _agree(op, y, Zs, rank, method, options, step_size, rng=3, n_iter=N_ITER):
    kw = dict(method=method, max_iter=n_iter, tol=0.0, step_size=step_size, rng=rng, x_true=Zs,
              **options)
    a = wn.solve(op, y, rank, n_threads=NT, **kw)
    b = reference.solve(op, y, rank, **kw)
    assert a.nit == b.nit == n_iter, (a.stop_reason, b.stop_reason)
    assert a.stop_reason == b.stop_reason == "max_iter"
    assert rel_diff(a.x, b.x) < AGREE
    for k in a.factors:
        assert rel_diff(a.factors[k], b.factors[k]) < AGREE, k
    # the step-size rule made the same decisions (compared while the residual is well above
    # rounding: at the floor, accept/reject is decided by rounding noise in either path)
    # step_size[t] was chosen at iterate t-1
    live = np.flatnonzero(a.history["residual_norm"][:-1] > 1e-6) + 1
    assert len(live) >= 5
    np.testing.assert_allclose(a.history["step_size"][live], b.history["step_size"][live],
                               rtol=1e-9)
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-7,
                               atol=1e-12 * a.history["loss"][0])
    # and the run did something: the error moved
    assert a.history["rel_error"][-1] < 0.9 * a.history["rel_error"][0]
    return a, b


@pytest.mark.parametrize("step_size", [None, "const"], ids=["default_step", "const_step"])
@pytest.mark.parametrize("method,options,const", DENSE_CASES,
                         ids=[f"{m}-{'-'.join(f'{k}={v}' for k, v in o.items())}"
                              for m, o, _ in DENSE_CASES])
def test_native_matches_reference_dense(method, options, const, step_size):
    op, y, Zs = sym_gaussian()
    _agree(op, y, Zs, 4, method, options, const if step_size else None)


@pytest.mark.parametrize("step_size", [None, 0.2], ids=["default_step", "const_step"])
@pytest.mark.parametrize("imbalanced", [False, True])
def test_native_matches_reference_asymmetric_gd(step_size, imbalanced):
    op, y, Zs = rect_gaussian()
    a, b = _agree(op, y, Zs, 4, "gd", {"init_scale": 1e-2, "imbalanced": imbalanced}, step_size)
    np.testing.assert_allclose(a.history["imbalance"], b.history["imbalance"], rtol=1e-7)


PAPER = {"variant": "paper"}
OTHER_OPS = [
    ("packed_f32", "wn_rgd", PAPER, None),
    ("packed_f32", "wn_rgd", {**PAPER, "retraction": "qr"}, 0.3),
    ("packed_f32", "gd", {"init_scale": 1e-2}, None),
    ("entries", "wn_rgd", PAPER, None),
    ("entries", "wn_rgd", {**PAPER, "retraction": "cayley"}, 0.3),
    ("entries", "gd", {"init_scale": 1e-2}, None),
    ("entries_rect", "gd", {"init_scale": 1e-2}, None),
    # rank-one sensing is not RIP-normalized (E ||A(Z)||^2 = 2 ||Z||_F^2 + tr(Z)^2): the magnitude
    # step needs mu < 2 (the default mu = 2 diverges there)
    ("rank_one", "wn_rgd", {**PAPER, "mu": 0.4}, None),
    ("rank_one", "wn_rgd", {"mu": 0.4, "preconditioned": True}, 0.3),
    ("rank_one", "gd", {"init_scale": 1e-2}, None),
    ("identity", "wn_rgd", PAPER, None),
    ("identity", "wn_rgd", {**PAPER, "retraction": "qr"}, 0.5),
    ("identity", "gd", {"init_scale": 1e-2}, 0.3),
    ("identity_rect", "gd", {"init_scale": 1e-2}, None),
    ("user_dense", "wn_rgd", PAPER, None),
]


@pytest.mark.parametrize("opname,method,options,step_size", OTHER_OPS,
                         ids=[f"{o}-{m}-{'-'.join(f'{k}={v}' for k, v in opts.items())}-{s}"
                              for o, m, opts, s in OTHER_OPS])
def test_native_matches_reference_other_operators(opname, method, options, step_size):
    op, y, Zs = ALL_OPS[opname]()
    _agree(op, y, Zs, 3, method, options, step_size)


def test_same_seed_same_start_in_both():
    op, y, Zs = sym_gaussian()
    # the drawn start: bit for bit (WN-LBFGS without its power step and gain probe is the
    # uniform draw)
    for method, opts in [("wn_rgd", {"variant": "paper", "theta0": 0.3}),
                         ("wn_rgd", {"power_steps": 0, "gain": 1.0}), ("gd", {})]:
        a = wn.solve(op, y, 4, method=method, max_iter=0, rng=7, n_threads=NT, **opts)
        b = reference.solve(op, y, 4, method=method, max_iter=0, rng=7, **opts)
        for k in a.factors:
            np.testing.assert_array_equal(a.factors[k], b.factors[k])
        c = reference.solve(op, y, 4, method=method, max_iter=0, rng=8, **opts)
        assert not np.array_equal(c.factors["X" if method == "wn_rgd" else "Y"],
                                  b.factors["X" if method == "wn_rgd" else "Y"])
    # the default's start is the same draw after one power step X = orth(A*(y) X0) and the
    # least-squares magnitude of the gain probe, passes over the data (native kernel vs
    # numpy): equal to rounding
    a = wn.solve(op, y, 4, max_iter=0, rng=7, n_threads=NT)
    b = reference.solve(op, y, 4, max_iter=0, rng=7)
    np.testing.assert_allclose(a.factors["X"], b.factors["X"], rtol=0, atol=1e-13)
    np.testing.assert_allclose(a.factors["Theta"], b.factors["Theta"], rtol=1e-12, atol=1e-13)
    c = reference.solve(op, y, 4, max_iter=0, rng=8)
    assert not np.allclose(c.factors["X"] @ c.factors["X"].T, b.factors["X"] @ b.factors["X"].T)


# -- the reference Stiefel tools -----------------------------------------------------------------

@pytest.mark.parametrize("retraction", ["polar", "qr", "cayley"])
def test_reference_retractions_match_native(retraction):
    rng = np.random.default_rng(5)
    X = wn.random_stiefel(9, 3, rng=rng)
    Gt = rng.standard_normal((9, 3))
    G = ref_wn.tangent_projection(X, Gt)
    np.testing.assert_allclose(G, wn.tangent_projection(X, Gt), atol=1e-14)
    assert np.allclose(X.T @ G + G.T @ X, 0, atol=1e-13)  # tangent: X^T G skew
    eta = 0.7
    direction = Gt if retraction == "cayley" else G
    ours = getattr(ref_wn, f"{retraction}_retraction")(X, direction, eta)
    native = getattr(wn, f"{retraction}_retraction")(X, direction, eta)
    np.testing.assert_allclose(ours, native, atol=1e-12)
    np.testing.assert_allclose(ours.T @ ours, np.eye(3), atol=1e-12)
    if retraction == "polar":  # the closed form (X - eta G)(I + eta^2 G^T G)^{-1/2}
        w, Q = np.linalg.eigh(np.eye(3) + eta ** 2 * G.T @ G)
        np.testing.assert_allclose(ours, (X - eta * G) @ (Q / np.sqrt(w)) @ Q.T, atol=1e-12)
    if retraction == "qr":  # X+ = qf(X - eta G): X+ R = X - eta G with diag(R) > 0
        R = ours.T @ (X - eta * G)
        assert np.all(np.diag(R) > 0)
        np.testing.assert_allclose(np.tril(R, -1), 0, atol=1e-12)
    if retraction == "cayley":  # the dense d x d form
        W = Gt @ X.T - X @ Gt.T
        dense = np.linalg.solve(np.eye(9) + eta / 2 * W, (np.eye(9) - eta / 2 * W) @ X)
        np.testing.assert_allclose(ours, dense, atol=1e-12)
