"""Spectral Neural Network (method="snn", SPEC 3.2 and experiment 5.8).

- the spectral activation Gamma(Q) = P tanh(Sigma) R^T and its native backward pass against
  finite differences (generic, nearly equal, exactly equal, zero, tiny and saturated singular
  values) and against the numpy reference formula;
- the full network gradient against finite differences of the loss ||A(X) - y||^2 / (2m);
- native vs reference iterates (50 iterations, 1e-9 relative);
- the seed experiment as the SNN paper's Fig. 2 (its target 100 U U^T / nuclear norm, raw
  <A_i, X> with N(0, n^2) entries plus 0.01 noise, 75 training and 75 held-out measurements): the
  SNN's test error is a few percent, plain GD on X from zero and the min-norm interpolant fit the
  same data and are at least 5x worse;
- the symmetric family: the network stays symmetric; with m >= d(d+1)/2 symmetric least squares
  recovers the target too, with m < d(d+1)/2 only the SNN does;
- layout, history, loss convention, warm start, divergence and bad input.
"""
import time

import numpy as np
import pytest

import wnsense_native as wn
from _helpers import make_problem, rel_diff
from wnsense_native import _core
from wnsense_native.experiments.competitors import gd_on_x, min_norm_interpolant, snn_paper_data
from wnsense_native.reference import snn as ref_snn
from wnsense_native.solvers._problem import sym
from wnsense_native.solvers._steps import ConstantStep
from wnsense_native.solvers.snn import SNN


# -- helpers --------------------------------------------------------------------------------------
def np_gamma(Q):
    P, s, Rt = np.linalg.svd(Q)
    return (P * np.tanh(s)) @ Rt


def with_singular_values(gen, d, s):
    P = np.linalg.qr(gen.standard_normal((d, d)))[0]
    R = np.linalg.qr(gen.standard_normal((d, d)))[0]
    return np.ascontiguousarray((P * np.asarray(s, dtype=float)) @ R.T)


def gamma_cases():
    g = np.random.default_rng(11)
    d = 6
    return {
        "generic": g.standard_normal((d, d)),
        "near_equal": with_singular_values(g, d, [2.0, 1.3, 1.3 + 1e-9, 0.7, 0.4, 0.1]),
        "exactly_equal": with_singular_values(g, d, [1.5, 0.8, 0.8, 0.8, 0.3, 0.2]),
        "rank_deficient": with_singular_values(g, d, [1.2, 0.9, 0.5, 0.2, 0.0, 0.0]),
        "rank_one": with_singular_values(g, d, [0.7, 0, 0, 0, 0, 0]),
        "tiny": 1e-8 * (np.eye(d) + 1e-3 * np.diag(g.standard_normal(d))),  # like the SNN start
        "saturated": with_singular_values(g, d, [30.0, 25.0, 3.0, 1.0, 0.5, 0.5 + 1e-7]),
        "symmetric_indefinite": sym(g.standard_normal((d, d))),
    }


def fd_matrix_gradient(fun, Q, h):
    """Central differences of a scalar function of a matrix, entry by entry."""
    grad = np.zeros_like(Q)
    for idx in np.ndindex(*Q.shape):
        E = np.zeros_like(Q)
        E[idx] = h
        grad[idx] = (fun(Q + E) - fun(Q - E)) / (2 * h)
    return grad


def seed_setting(seed=0, d=10, rank=6, m=75, noise=0.01):
    """SPEC 5.8: PSD rank-``rank`` target with unit nuclear norm (``low_rank_target``'s linspace
    spectrum 1..1/5, divided by its trace), general Gaussian A_i with i.i.d. N(0, d^2) entries,
    ``m`` training and ``m`` held-out measurements, both with N(0, noise^2) noise.

    The training operator is the *symmetric* problem family (``dense_sensing(..., symmetric=True)``:
    the target is symmetric, so only sym(A_i) carries information); the held-out operator is the
    raw stack (it measures the full output matrix, symmetric or not)."""
    g = np.random.default_rng(seed)
    Zs = wn.low_rank_target(d, rank, kappa=5.0, rng=g)
    Zs /= np.trace(Zs)                                     # unit nuclear norm (PSD)
    A = d * g.standard_normal((2 * m, d, d))               # entries N(0, d^2)
    A_train, A_test = np.ascontiguousarray(A[:m]), np.ascontiguousarray(A[m:])
    op = wn.dense_sensing(A_train, symmetric=True)
    op_test = wn.dense_sensing(A_test)
    y = op.forward(Zs) + noise * g.standard_normal(m)
    y_test = op_test.forward(Zs) + noise * g.standard_normal(m)
    return Zs, A_train, op, y, op_test, y_test


# -- the spectral activation ------------------------------------------------------------------
@pytest.mark.parametrize("case", list(gamma_cases()))
def test_gamma_forward_matches_numpy(case):
    Q = gamma_cases()[case]
    np.testing.assert_allclose(_core.testing.spectral_activation(Q), np_gamma(Q), rtol=0,
                               atol=1e-14)
    P, s, R = _core.spectral_svd(Q)
    np.testing.assert_allclose((P * s) @ R.T, Q, rtol=0, atol=1e-13 * max(1, np.abs(Q).max()))
    assert np.all(np.diff(s) <= 0) and np.all(s >= 0)


@pytest.mark.parametrize("case", list(gamma_cases()))
def test_gamma_backward_matches_finite_differences(case):
    Q = gamma_cases()[case]
    G = np.random.default_rng(5).standard_normal(Q.shape)
    analytic = _core.testing.spectral_activation_backward(Q, G)
    h = 1e-5
    fd = fd_matrix_gradient(lambda Z: np.sum(G * np_gamma(Z)), Q, h)
    assert np.linalg.norm(analytic - fd) <= 1e-7 * np.linalg.norm(fd), case
    # the reference's literal formula (divided differences + guards) agrees to rounding
    ref = ref_snn.gamma_backward(*ref_snn.spectral_svd(Q), G)
    assert np.linalg.norm(analytic - ref) <= 1e-10 * np.linalg.norm(ref), case


def test_gamma_backward_of_symmetric_gradient_at_symmetric_point_is_symmetric():
    g = np.random.default_rng(2)
    Q, G = sym(g.standard_normal((7, 7))), sym(g.standard_normal((7, 7)))
    dQ = _core.testing.spectral_activation_backward(Q, G)
    assert np.abs(dQ - dQ.T).max() < 1e-13


def test_gamma_non_finite_input_gives_nan_not_a_hang():
    Q = np.eye(4)
    Q[1, 2] = np.nan
    assert np.isnan(_core.testing.spectral_activation(Q)).all()
    assert np.isnan(_core.testing.spectral_activation_backward(Q, np.ones((4, 4)))).all()


# -- the network gradient ---------------------------------------------------------------------
def make_method(op, y, rng, widths, init=None, cls=SNN):
    return cls(make_problem("reference", op, y), 1, np.random.default_rng(rng), init, ConstantStep(1e-3),
               widths=widths, init_scale=1e-4, init_jitter=1e-3)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("impl", ["native", "reference"])
def test_network_gradient_matches_finite_differences(symmetric, impl):
    g = np.random.default_rng(7)
    d, m, widths = 5, 30, (2, 3, 2)
    op = wn.dense_sensing(g.standard_normal((m, d, d)), symmetric=symmetric)
    y = g.standard_normal(m)
    # a generic point (not the tiny start), where every layer is non-linear
    params = {"U": 0.6 * g.standard_normal((2, d, d)), "V": 0.6 * g.standard_normal((2, d, d)),
              "alpha_1": g.uniform(-1, 1, (2, 3)), "alpha_2": g.uniform(-1, 1, (3, 2)),
              "alpha_3": g.uniform(-1, 1, (2, 1))}
    method = make_method(op, y, 0, widths, init=params,
                         cls=SNN if impl == "native" else ref_snn.SNN)
    h = 1e-6
    for name, value in params.items():
        fd = np.zeros_like(value)
        for idx in np.ndindex(*value.shape):
            plus, minus = dict(params), dict(params)
            E = np.zeros_like(value)
            E[idx] = h
            plus[name], minus[name] = value + E, value - E
            fd[idx] = (method._evaluate(plus)[0] - method._evaluate(minus)[0]) / (2 * h)
        err = np.linalg.norm(method.grads[name] - fd)
        assert err <= 1e-6 * max(np.linalg.norm(fd), 1e-3), (name, err)
    # the loss is the SNN's own ||A(X) - y||^2 / (2m) (symmetric family: A(sym X))
    X = method.x()
    Z = sym(X) if symmetric else X
    r = op.forward(Z) - y
    assert method.loss == pytest.approx(r @ r / (2 * m), rel=1e-12)


# -- native vs reference ------------------------------------------------------------------------
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("step_size", [1.5e-3, None])
def test_native_matches_reference_over_50_iterations(symmetric, step_size):
    Zs, A, op, y, _, _ = seed_setting(0)
    if not symmetric:
        op = wn.dense_sensing(A)
    kw = dict(method="snn", max_iter=50, tol=0.0, step_size=step_size)
    # from the default (tiny) start, and from a point mid-way where the network is non-linear
    warm = wn.solve(op, y, 1, rng=4, n_threads=1, **{**kw, "max_iter": 400}).factors
    for init in (None, warm):
        a = wn.solve(op, y, 1, rng=4, init=init, n_threads=1, **kw)
        b = wn.reference.solve(op, y, 1, rng=4, init=init, **kw)
        assert a.nit == b.nit == 50
        assert rel_diff(a.x, b.x) <= 1e-9
        for k in b.factors:
            assert rel_diff(a.factors[k], b.factors[k]) <= 1e-9, k
        # the loss sits near the noise floor: r = A(X) - y cancels, amplifying rounding in x
            np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-7)
        np.testing.assert_allclose(a.history["step_size"], b.history["step_size"], rtol=1e-12)


# -- the seed experiment (SPEC 5.8) -------------------------------------------------------------
def heldout_error(x, A_test, y_test):
    """``||A_test(x) - y_test|| / ||y_test||`` on the raw held-out measurements."""
    return np.linalg.norm(wn.dense_sensing(A_test).forward(x) - y_test) / np.linalg.norm(y_test)


def test_paper_fig2_snn_generalizes_where_gd_on_x_does_not():
    """The SNN paper's Fig. 2 on the raw (general) family, at 1,500 of its 10,001 iterations (the
    SNN's test error has settled by then: 0.053 at 10,001 on this instance)."""
    Xs, A, y, A_test, y_test = snn_paper_data(np.random.default_rng(0), n=10, rank=6, m=75,
                                              m_test=75, noise=0.01)
    op = wn.dense_sensing(A, symmetric=False)
    t0 = time.perf_counter()
    res = wn.solve(op, y, 1, method="snn", widths=[2, 2, 2, 2], step_size=1e-2, max_iter=1500,
                   tol=0.0, rng=0, x_true=Xs, n_threads=1)
    elapsed = time.perf_counter() - t0
    snn_err, snn_ho = rel_diff(res.x, Xs), heldout_error(res.x, A_test, y_test)
    gd = gd_on_x(A, y, Xs, max_iter=10001, tol=0.0)
    mn = min_norm_interpolant(A, y, Xs)
    print(f"\nSNN: {res.nit} it in {elapsed:.2f} s, test error {snn_err:.4f}, held-out residual "
          f"{snn_ho:.4f}, nuclear norm {res.history['nuclear_norm'][-1]:.3f}; GD on X "
          f"{rel_diff(gd.x, Xs):.3f} (min over the run {gd.history['rel_error'].min():.3f}), "
          f"min-norm {rel_diff(mn.x, Xs):.3f}")
    assert snn_err < 0.1 and snn_ho < 0.1
    assert res.residual_norm < 1e-2  # it fits the training data (noise level ~1e-3)
    # the output is a general matrix here (nothing keeps it symmetric)
    assert rel_diff(res.factors["U"], res.factors["V"]) > 1e-6
    for ctrl in (gd, mn):
        assert ctrl.residual_norm < 1e-6  # the controls interpolate the same data ...
        assert rel_diff(ctrl.x, Xs) > 5 * snn_err  # ... and are far worse on the target
        assert heldout_error(ctrl.x, A_test, y_test) > 5 * snn_ho
    assert gd.history["rel_error"].min() > 0.3  # at no point of its run is GD on X close
    np.testing.assert_allclose(gd.x, mn.x, atol=1e-10)  # GD on X from 0 -> the min-norm solution


def test_symmetric_family_network_stays_symmetric_and_least_squares_also_recovers():
    """Symmetric family, m = 75 >= 55 = d(d+1)/2: the SNN recovers the target, but so does least
    squares over symmetric X, so this shows no implicit bias (see the next test for one)."""
    Zs, A, op, y, op_test, y_test = seed_setting(0)
    res = wn.solve(op, y, 1, method="snn", widths=[2, 2, 2, 2], step_size=1.5e-3, max_iter=2000,
                   tol=0.0, rng=0, x_true=Zs, n_threads=1)
    snn_test = np.linalg.norm(op_test.forward(res.x) - y_test) / np.linalg.norm(y_test)
    assert snn_test < 0.1
    assert rel_diff(res.x, Zs) < 0.1
    # symmetric problem + U_k = V_k at the start: the network stays symmetric (to rounding)
    assert rel_diff(res.factors["U"], res.factors["V"]) < 1e-10
    assert np.abs(res.x - res.x.T).max() < 1e-12
    ls = min_norm_interpolant(A, y, Zs, symmetric=True)
    print(f"\nsymmetric family, m = 75: SNN {rel_diff(res.x, Zs):.4f}, symmetric least squares "
          f"{rel_diff(ls.x, Zs):.4f}")
    assert rel_diff(ls.x, Zs) < 0.1


def test_snn_implicit_regularization_where_symmetric_least_squares_is_underdetermined():
    """m = 40 < 55 = dim(symmetric 10 x 10): even GD on a *symmetric* X fails here, so the SNN's
    recovery is its own implicit low-rank bias, not the symmetry of the model."""
    Zs, A, op, y, op_test, y_test = seed_setting(0, rank=3, m=40)
    res = wn.solve(op, y, 1, method="snn", step_size=1e-3, max_iter=2500, tol=0.0, rng=0,
                   n_threads=1)
    snn_test = np.linalg.norm(op_test.forward(res.x) - y_test) / np.linalg.norm(y_test)
    gd_sym = gd_on_x(A, y, Zs, max_iter=3000, tol=0.0, symmetric=True).x
    gd_test = np.linalg.norm(op_test.forward(gd_sym) - y_test) / np.linalg.norm(y_test)
    print(f"\nrank 3, m = 40: SNN test error {snn_test:.4f}, GD on symmetric X {gd_test:.3f}")
    assert snn_test < 0.05
    assert gd_test > 0.3


# -- layout, history, warm start, divergence, bad input -----------------------------------------
# (n_threads=1 in the runs: d = 10 is far too small for threads, and on a busy machine the OpenMP
# barriers of a multi-threaded residual pass can cost milliseconds per call)
def test_factors_history_and_loss_convention():
    Zs, A, op, y, _, _ = seed_setting(1)
    res = wn.solve(op, y, 1, method="snn", widths=[3, 2, 4], step_size=1e-3, max_iter=30,
                   tol=0.0, rng=0, x_true=Zs, n_threads=1)
    f = res.factors
    assert set(f) == {"U", "V", "alpha_1", "alpha_2", "alpha_3"}
    assert f["U"].shape == f["V"].shape == (3, 10, 10)
    assert f["alpha_1"].shape == (3, 2) and f["alpha_2"].shape == (2, 4)
    assert f["alpha_3"].shape == (4, 1)
    for key in ("loss", "grad_norm", "step_size", "rel_error", "nuclear_norm", "effective_rank"):
        assert res.history[key].shape == (31,), key
    # at the start X is a positive multiple of I (to the jitter): effective rank ~ d
    assert res.history["effective_rank"][0] == pytest.approx(10.0, abs=1e-3)
    s = np.linalg.svd(res.x, compute_uv=False)
    assert res.history["nuclear_norm"][-1] == pytest.approx(s.sum(), rel=1e-12)
    p = s / s.sum()
    assert res.history["effective_rank"][-1] == pytest.approx(np.exp(-np.sum(p * np.log(p))))
    # res.fun is the SNN's loss ||A(X) - y||^2 / (2m), not the library's 1/4 ||r||^2
    r = op.forward(res.x) - y
    assert res.fun == pytest.approx(r @ r / (2 * 75), rel=1e-10)


def test_start_is_reproducible_and_warm_start_continues_the_run():
    Zs, A, op, y, _, _ = seed_setting(2)
    kw = dict(method="snn", step_size=1e-3, tol=0.0, rng=9, n_threads=1)
    full = wn.solve(op, y, 1, max_iter=40, **kw)
    again = wn.solve(op, y, 1, max_iter=40, **kw)
    np.testing.assert_array_equal(full.x, again.x)
    first = wn.solve(op, y, 1, max_iter=20, **kw)
    second = wn.solve(op, y, 1, max_iter=20, init=first.factors, **kw)
    np.testing.assert_allclose(second.x, full.x, rtol=1e-13, atol=1e-16)
    start = wn.solve(op, y, 1, max_iter=0, **kw).factors
    I = np.eye(10)
    for k in range(2):
        assert np.abs(start["U"][k] - 1e-4 * I).max() < 1e-6
        assert np.count_nonzero(start["U"][k] - np.diag(np.diag(start["U"][k]))) == 0
    for l in (1, 2, 3, 4):
        assert 0 <= start[f"alpha_{l}"].min() and start[f"alpha_{l}"].max() < 1


def test_divergence_stops_with_last_finite_iterate():
    Zs, A, op, y, _, _ = seed_setting(0)
    kw = dict(method="snn", tol=0.0, n_threads=1)
    warm = wn.solve(op, y, 1, step_size=1.5e-3, max_iter=500, rng=0, **kw)
    res = wn.solve(op, y, 1, step_size=5.0, max_iter=100, init=warm.factors, **kw)
    assert res.stop_reason == "diverged"
    assert np.all(np.isfinite(res.x))


def test_bad_input():
    Zs, A, op, y, _, _ = seed_setting(0)
    with pytest.raises(ValueError, match="widths"):
        wn.solve(op, y, 1, method="snn", widths=[])
    with pytest.raises(ValueError, match="widths"):
        wn.solve(op, y, 1, method="snn", widths=[2, 0])
    with pytest.raises(TypeError, match="widths"):
        wn.solve(op, y, 1, method="snn", widths="22")
    with pytest.raises(ValueError, match="init_scale"):
        wn.solve(op, y, 1, method="snn", init_scale=0.0)
    with pytest.raises(TypeError, match="unknown option"):
        wn.solve(op, y, 1, method="snn", lr=1e-3)
    rect = wn.gaussian_sensing(4, 20, d2=5, rng=0)
    with pytest.raises(ValueError, match="square"):
        wn.solve(rect, np.ones(20), 1, method="snn")
    with pytest.raises(ValueError, match="keys"):
        wn.solve(op, y, 1, method="snn", init={"U": np.zeros((2, 10, 10))})
    good = wn.solve(op, y, 1, method="snn", max_iter=0).factors
    with pytest.raises(ValueError, match="alpha_2"):
        wn.solve(op, y, 1, method="snn", max_iter=0,
                 init={**good, "alpha_2": np.ones((3, 2))})
    with pytest.raises(ValueError, match="NaN"):
        wn.solve(op, y, 1, method="snn", max_iter=0,
                 init={**good, "U": np.full((2, 10, 10), np.nan)})
    # native entry points: checked before any memory is touched
    with pytest.raises(ValueError, match="square"):
        _core.testing.spectral_activation(np.ones((3, 4)))
    with pytest.raises(ValueError, match="G must have shape"):
        _core.testing.spectral_activation_backward(np.eye(3), np.ones((3, 4)))
    with pytest.raises(TypeError):
        _core.testing.spectral_activation(np.eye(3, dtype=np.float32))
    U = np.ones((20, 10))
    with pytest.raises(ValueError, match="V must have the shape"):
        _core.snn_forward(U, np.ones((10, 10)), [np.ones((2, 1))])
    with pytest.raises(ValueError, match=r"alphas\[1\]"):
        _core.snn_forward(U, U, [np.ones((2, 3)), np.ones((2, 1))])
    with pytest.raises(ValueError, match="one column"):
        _core.snn_forward(U, U, [np.ones((2, 2))])
    with pytest.raises(ValueError, match="stack"):
        _core.snn_forward(np.ones((15, 10)), np.ones((15, 10)), [np.ones((1, 1))])
    tape = _core.snn_forward(U, U, [np.ones((2, 1))])
    with pytest.raises(ValueError, match="GX"):
        _core.snn_backward(tape, np.ones((9, 10)))
