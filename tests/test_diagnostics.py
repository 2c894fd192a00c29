"""Opt-in diagnostics (SPEC 4): the analytic gradients and Hessian-vector products behind them,
the power iteration against explicitly formed Hessians, and what ``solve`` records."""
import numpy as np
import pytest

import wnsense_native as wn
from _helpers import make_problem
from wnsense_native import reference
from wnsense_native.solvers import diagnostics as D

NT = 1


def tiny(symmetric):
    """d = 4, r = 2, m = 20 (rectangular: 4 x 3)."""
    d2 = None if symmetric else 3
    Zs = wn.low_rank_target(4, 1, d2=d2, rng=1)
    op = wn.gaussian_sensing(4, 20, d2=d2, rng=2)
    return op, op.forward(Zs)


def point(name, rng):
    """A random point of each parameterization (r = 2), and whether it is symmetric."""
    g = np.random.default_rng(rng)
    if name == "Y":
        return True, {"Y": g.standard_normal((4, 2))}
    if name == "UV":
        return False, {"U": g.standard_normal((4, 2)), "V": g.standard_normal((3, 2))}
    if name == "WN":
        A = g.standard_normal((2, 2))
        return True, {"X": wn.random_stiefel(4, 2, rng=g), "Theta": A + A.T}
    if name == "WN_rect":
        return False, {"X_L": wn.random_stiefel(4, 2, rng=g), "Theta": g.standard_normal((2, 2)),
                       "X_R": wn.random_stiefel(3, 2, rng=g)}
    return True, {"W": g.standard_normal((4, 2)), "g": g.standard_normal(2)}


MODELS = ["Y", "UV", "WN", "WN_rect", "column_wn"]


class Flat:
    """Flatten dicts of factor-shaped arrays to vectors and back."""

    def __init__(self, p):
        self.keys = list(p)
        self.shapes = [np.shape(p[k]) for k in self.keys]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n = sum(self.sizes)

    def flat(self, d):
        return np.concatenate([np.ravel(d[k]) for k in self.keys])

    def unflat(self, v):
        out, i = {}, 0
        for k, s, z in zip(self.keys, self.shapes, self.sizes):
            out[k] = v[i:i + z].reshape(s)
            i += z
        return out

    def basis(self):
        for j in range(self.n):
            e = np.zeros(self.n)
            e[j] = 1.0
            yield self.unflat(e)


def setup(name, backend="native", rng=0):
    symmetric, p = point(name, rng)
    op, y = tiny(symmetric)
    problem = make_problem(backend, op, y)
    model = D.model_for(p)

    def loss(q):
        return problem.loss(problem.residual(*model.model(q)).sumsq)

    def grad(q):   # the gradient from the thin products of one pass
        res = problem.residual(*model.model(q), *model.probes(q))
        return model.gradient(q, res.AV, res.AtU)

    return problem, model, p, loss, grad


# -- the parameterizations' analytic derivatives ----------------------------------------------

@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("name", MODELS)
def test_model_gradients_match_finite_differences(name, backend):
    problem, model, p, loss, grad = setup(name, backend)
    G, F = grad(p), Flat(p)
    fd = np.array([(loss({k: p[k] + 1e-6 * e[k] for k in p})
                    - loss({k: p[k] - 1e-6 * e[k] for k in p})) / 2e-6 for e in F.basis()])
    np.testing.assert_allclose(F.flat(G), fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())


@pytest.mark.parametrize("name", MODELS)
def test_model_jvp_matches_finite_differences(name):
    problem, model, p, loss, grad = setup(name)
    Dd = point(name, 5)[1]
    L, R = model.model_jvp(p, Dd)
    h = 1e-6
    Lp, Rp = model.model({k: p[k] + h * Dd[k] for k in p})
    Lm, Rm = model.model({k: p[k] - h * Dd[k] for k in p})
    fd = (Lp @ Rp.T - Lm @ Rm.T) / (2 * h)
    np.testing.assert_allclose(L @ R.T, fd, atol=1e-8 * np.abs(fd).max())


@pytest.mark.parametrize("name", MODELS)
def test_hessian_vector_products_match_finite_differences_of_the_gradient(name):
    problem, model, p, loss, grad = setup(name)
    H = D.HessianOperator(problem, p)
    F = Flat(p)
    h = 1e-5
    for e in F.basis():
        gp = grad({k: p[k] + h * e[k] for k in p})
        gm = grad({k: p[k] - h * e[k] for k in p})
        fd = F.flat({k: (gp[k] - gm[k]) / (2 * h) for k in p})
        np.testing.assert_allclose(F.flat(H.euclidean(e)), fd, rtol=1e-6,
                                   atol=1e-8 * max(1.0, np.abs(fd).max()))


def explicit_hessian(problem, p):
    """The (Riemannian) Hessian as a matrix, column by column from products ``H(P e_j)``."""
    H, F = D.HessianOperator(problem, p), Flat(p)
    by_hvp = np.column_stack([F.flat(H(H.project(e))) for e in F.basis()])
    return H, F, by_hvp


@pytest.mark.parametrize("name", MODELS)
def test_power_iteration_matches_the_explicit_hessian(name):
    problem, model, p, loss, grad = setup(name)
    H, F, M = explicit_hessian(problem, p)
    assert np.abs(M - M.T).max() < 1e-10 * np.abs(M).max()          # self-adjoint
    evals = np.linalg.eigvalsh(0.5 * (M + M.T))
    top = D.hessian_top_eigenvalue(problem, p)
    assert abs(top - evals[-1]) <= 1e-6 * abs(evals[-1]), (top, evals)
    if not (model.stiefel or model.symmetric_factors):
        # Euclidean parameters: also against the Hessian from finite differences of gradients
        h = 1e-5
        cols = []
        for e in F.basis():
            gp = grad({k: p[k] + h * e[k] for k in p})
            gm = grad({k: p[k] - h * e[k] for k in p})
            cols.append(F.flat({k: (gp[k] - gm[k]) / (2 * h) for k in p}))
        M_fd = np.column_stack(cols)
        top_fd = np.linalg.eigvalsh(0.5 * (M_fd + M_fd.T))[-1]
        assert abs(top - top_fd) <= 1e-6 * abs(top_fd), (top, top_fd)
    else:
        # the tangent space: H is zero on the normal directions, and the top eigenvector found
        # by the power iteration is tangent
        lam, v, _ = D.hessian_top_eigenvalue(problem, p, return_state=True)
        vp = H.project(v)
        assert np.allclose(F.flat(vp), F.flat(v), atol=1e-12)


def test_power_iteration_with_a_negative_dominant_eigenvalue():
    # near Y = 0 the GD Hessian is ~ S (x) I with S ~ -A*(y): the dominant eigenvalue is negative
    Zs = wn.low_rank_target(6, 2, rng=0)
    op = wn.identity_sensing(6)
    problem = make_problem("native", op, op.forward(Zs))
    p = {"Y": 1e-4 * np.random.default_rng(1).standard_normal((6, 2))}
    F = Flat(p)
    H = D.HessianOperator(problem, p)
    evals = np.linalg.eigvalsh(np.column_stack([F.flat(H(e)) for e in F.basis()]))
    assert abs(evals[0]) > abs(evals[-1])
    top = D.hessian_top_eigenvalue(problem, p)
    assert abs(top - evals[-1]) <= 1e-6 * abs(evals[0])


@pytest.mark.parametrize("symmetric", [True, False])
def test_hessian_top_at_the_population_minimizer_is_two_sigma_one(symmetric):
    # f = c ||Z(p) - Z*||^2 at an exact balanced factorization: Hess[p] = 2 sigma_1 p on the
    # top component, so lambda_max = 2 sigma_1 (= 2: the targets have sigma_1 = 1)
    d2 = None if symmetric else 5
    rng = np.random.default_rng(3)
    U = wn.random_stiefel(7, 3, rng=rng)
    s = np.array([1.0, 0.6, 0.2])
    if symmetric:
        op = wn.identity_sensing(7)
        Zs = (U * s) @ U.T
        init = {"Y": U * np.sqrt(s)}
    else:
        op = wn.identity_sensing(7, d2=d2)
        V = wn.random_stiefel(d2, 3, rng=rng)
        Zs = (U * s) @ V.T
        init = {"U": U * np.sqrt(s), "V": V * np.sqrt(s)}
    y = op.forward(Zs)
    for solve in (wn.solve, reference.solve):
        res = solve(op, y, 3, method="gd", init=init, max_iter=0, diagnostics="hessian")
        assert res.history["hessian_top"][0] == pytest.approx(2.0, rel=1e-8)


# -- what solve records --------------------------------------------------------------------------

ALL = ("alignment", "theta_svals", "hessian")


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("variant", ["preconditioned", "lbfgs"])
def test_wn_rgd_records_alignment_theta_and_curvature(symmetric, variant, gaussian):
    op, y, Zs = gaussian(symmetric)
    opts = {"preconditioned": True} if variant == "preconditioned" else {}
    res = wn.solve(op, y, 4, method="wn_rgd", rng=0, x_true=Zs, n_threads=NT, tol=1e-10,
                   diagnostics=ALL, hessian_every=3, **opts)
    assert res.stop_reason == "tol", res.stop_reason
    h, n = res.history, res.nit + 1
    keys = {"alignment_min", "alignment_max", "theta_sv_min", "theta_sv_max", "hessian_top"}
    if not symmetric:
        keys |= {"alignment_right_min", "alignment_right_max"}
    assert keys <= set(h)
    for k in keys:
        assert h[k].shape == (n,) and h[k].dtype == np.float64, k
    # hessian_top every 3 iterations (from the start), NaN in between
    computed = np.isfinite(h["hessian_top"])
    np.testing.assert_array_equal(computed, np.arange(n) % 3 == 0)
    # alignment: cosines of principal angles, in [0, 1], -> 1 once the target is recovered
    for k in keys & {"alignment_min", "alignment_max", "alignment_right_min",
                     "alignment_right_max"}:
        assert np.all((h[k] >= 0) & (h[k] <= 1 + 1e-12)), k
        assert h[k][-1] > 1 - 1e-8, k
    assert h["alignment_min"][0] < 0.9
    f = res.factors
    s = np.linalg.svd(f["Theta"], compute_uv=False)
    assert h["theta_sv_max"][-1] == pytest.approx(s.max())
    assert h["theta_sv_min"][-1] == pytest.approx(s.min(), abs=1e-12)
    # the recorded curvature is the power iteration at the recorded iterate
    last = np.flatnonzero(computed)[-1]
    again = wn.solve(op, y, 4, method="wn_rgd", rng=0, x_true=Zs, n_threads=NT, tol=0,
                     max_iter=last, **opts)
    problem = make_problem("native", op, y)
    expected = D.hessian_top_eigenvalue(problem, again.factors)
    assert h["hessian_top"][last] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("method,symmetric", [("precgd", True), ("precgd", False),
                                              ("scaledgd", True), ("column_wn", True),
                                              ("wn_rgd", False)])
def test_diagnostics_agree_across_backends(method, symmetric, gaussian):
    op, y, Zs = gaussian(symmetric)
    names = ALL if method == "wn_rgd" else ("alignment", "hessian")
    kw = dict(method=method, max_iter=10, tol=0.0, rng=3, x_true=Zs, diagnostics=names,
              hessian_every=4)
    a = wn.solve(op, y, 4, n_threads=NT, **kw)
    b = reference.solve(op, y, 4, **kw)
    assert set(a.history) == set(b.history)
    assert "hessian_top" in a.history and "alignment_min" in a.history
    for k in a.history:
        if k != "time":
            np.testing.assert_allclose(a.history[k], b.history[k], rtol=1e-6, atol=1e-12,
                                       equal_nan=True, err_msg=k)


@pytest.mark.parametrize("method", ["gd", "precgd", "scaledgd", "column_wn", "wn_rgd"])
def test_diagnostics_do_not_change_the_iterates(method, sym_gaussian):
    op, y, Zs = sym_gaussian
    kw = dict(method=method, max_iter=8, tol=0.0, rng=4, x_true=Zs, n_threads=NT)
    a = wn.solve(op, y, 4, **kw)
    names = ALL if method == "wn_rgd" else ("alignment", "hessian")
    b = wn.solve(op, y, 4, diagnostics=names, **kw)
    np.testing.assert_array_equal(a.x, b.x)
    assert set(b.history) > set(a.history)
    for k in a.history:
        if k not in ("time", "nfev"):
            np.testing.assert_array_equal(a.history[k], b.history[k])
    assert b.nfev > a.nfev                 # the Hessian's passes are counted ...
    # ... in the history's running count of passes too (recorded with each iterate, before that
    # iterate's diagnostics: the start's count is the method's own)
    assert a.history["nfev"][-1] == a.nfev
    for res in (a, b):
        assert np.all(np.diff(res.history["nfev"]) >= 1)
    assert b.history["nfev"][0] == a.history["nfev"][0]
    assert np.all(b.history["nfev"][1:] > a.history["nfev"][1:])
    assert b.history["nfev"][-1] < b.nfev
    assert np.all(np.diff(b.history["time"]) >= 0)
    assert b.history["time"][-1] <= b.time


def test_diagnostic_option_errors(sym_gaussian):
    op, y, Zs = sym_gaussian
    with pytest.raises(ValueError, match="diagnostics"):
        wn.solve(op, y, 3, diagnostics=("alignment", "curvature"), x_true=Zs)
    with pytest.raises(TypeError, match="diagnostics"):
        wn.solve(op, y, 3, diagnostics=3)
    with pytest.raises(ValueError, match="hessian_every"):
        wn.solve(op, y, 3, diagnostics="hessian", hessian_every=0)
    with pytest.raises(ValueError, match="x_true"):
        wn.solve(op, y, 3, diagnostics="alignment")
    for method in ("gd", "precgd", "scaledgd", "column_wn"):
        for solve in (wn.solve, reference.solve):
            with pytest.raises(ValueError, match="Theta"):
                solve(op, y, 3, method=method, diagnostics="theta_svals")
    # off by default: nothing extra recorded, and no cost
    res = wn.solve(op, y, 3, max_iter=2, x_true=Zs)
    assert not {"hessian_top", "alignment_min", "theta_sv_min"} & set(res.history)
    res = wn.solve(op, y, 3, max_iter=2, x_true=Zs, diagnostics=None)
    assert "hessian_top" not in res.history


def test_alignment_of_factorized_gd_uses_the_column_space(sym_gaussian):
    # GD's factor Y: alignment compares span(Y) (orthonormalized) with span(U*)
    op, y, Zs = sym_gaussian
    res = wn.solve(op, y, 2, method="precgd", rng=0, x_true=Zs, n_threads=NT, tol=1e-10,
                   diagnostics="alignment")
    assert res.history["rel_error"][-1] < 1e-8
    assert res.history["alignment_min"][-1] > 1 - 1e-8
    assert res.history["alignment_min"][0] < 0.99
