"""Stiefel-manifold tools: tangent projection, polar / QR / Cayley retractions, random points."""
import numpy as np
import pytest

import wnsense_native as wn

SHAPES = [(1, 1), (5, 5), (7, 3), (9, 1), (33, 5)]
ETAS = [0.0, 1e-3, 0.1, 0.7, 3.0]


def feasibility(X):
    r = X.shape[1]
    return np.linalg.norm(X.T @ X - np.eye(r))


def point_and_tangent(d, r, seed):
    g = np.random.default_rng(seed)
    X = wn.random_stiefel(d, r, rng=g)
    Gt = g.standard_normal((d, r))  # an arbitrary (Euclidean) direction, independent of X
    return X, Gt, wn.tangent_projection(X, Gt)


def np_polar(Y):
    U, _, Vt = np.linalg.svd(Y, full_matrices=False)
    return U @ Vt


def np_qf(Y):
    Q, R = np.linalg.qr(Y)
    s = np.where(np.diag(R) < 0, -1.0, 1.0)
    return Q * s


def np_cayley(X, Gt, eta):
    d = X.shape[0]
    W = Gt @ X.T - X @ Gt.T
    I = np.eye(d)
    return np.linalg.solve(I + 0.5 * eta * W, (I - 0.5 * eta * W) @ X)


# ------------------------------------------------------------------------------------------------
# tangent projection

@pytest.mark.parametrize("d,r", SHAPES)
def test_tangent_projection(d, r):
    X, Gt, G = point_and_tangent(d, r, seed=d + r)
    XtG = X.T @ G
    scale = np.linalg.norm(Gt)
    assert np.linalg.norm(XtG + XtG.T) <= 1e-13 * scale  # X^T G is skew: G is tangent at X
    np.testing.assert_allclose(wn.tangent_projection(X, G), G, rtol=0, atol=1e-13 * scale)
    S = X.T @ Gt
    np.testing.assert_allclose(G, Gt - X @ (0.5 * (S + S.T)), rtol=0, atol=1e-13 * scale)
    # a normal direction X S (S symmetric) projects to zero
    assert np.linalg.norm(wn.tangent_projection(X, X @ (S + S.T))) <= 1e-13 * scale
    if d > r:  # the projection is not the identity on arbitrary directions
        assert np.linalg.norm(G - Gt) > 1e-3 * scale


# ------------------------------------------------------------------------------------------------
# retractions land on the manifold and match their definitions

@pytest.mark.parametrize("eta", ETAS)
@pytest.mark.parametrize("d,r", SHAPES)
def test_retractions_on_manifold_and_match_numpy(d, r, eta):
    X, Gt, G = point_and_tangent(d, r, seed=7 * d + r)
    P = wn.polar_retraction(X, G, eta)
    Q = wn.qr_retraction(X, G, eta)
    C = wn.cayley_retraction(X, Gt, eta)
    for Y in (P, Q, C):
        assert Y.shape == (d, r) and Y.dtype == np.float64
        assert feasibility(Y) <= 1e-12

    Y = X - eta * G
    np.testing.assert_allclose(P, np_polar(Y), rtol=0, atol=1e-12)
    # QR convention diag(R) > 0: the numpy QR with signs fixed, and Q^T Y upper triangular
    np.testing.assert_allclose(Q, np_qf(Y), rtol=0, atol=1e-12)
    R = Q.T @ Y
    assert np.all(np.diag(R) > 0)
    assert np.max(np.abs(np.tril(R, -1))) <= 1e-12 * max(1.0, np.abs(R).max())
    # Cayley: the low-rank formula equals the d x d one
    np.testing.assert_allclose(C, np_cayley(X, Gt, eta), rtol=0, atol=1e-11)
    if eta == 0.0:
        for Y0 in (P, Q, C):
            np.testing.assert_allclose(Y0, X, rtol=0, atol=1e-13)


def test_cayley_on_manifold_for_non_orthonormal_direction_scale():
    """Large steps along large gradients stay on the manifold (Cayley is exactly orthogonal)."""
    X, Gt, G = point_and_tangent(20, 4, seed=0)
    for eta in (10.0, 100.0, -5.0):
        assert feasibility(wn.cayley_retraction(X, 50 * Gt, eta)) <= 1e-10
        assert feasibility(wn.polar_retraction(X, 50 * G, eta)) <= 1e-12
        assert feasibility(wn.qr_retraction(X, 50 * G, eta)) <= 1e-12


# ------------------------------------------------------------------------------------------------
# first-order agreement: R_X(-eta G) = X - eta G + O(eta^2)

def _second_order(f, eta):
    """(err(eta), err(eta/10)) for an error function f."""
    return f(eta), f(eta / 10)


@pytest.mark.parametrize("d,r", [(7, 3), (33, 5), (5, 5), (12, 2)])
def test_retractions_agree_to_first_order(d, r):
    X, Gt, G = point_and_tangent(d, r, seed=3 * d + r)
    G /= np.linalg.norm(G)
    polar = lambda e: wn.polar_retraction(X, G, e)
    qr = lambda e: wn.qr_retraction(X, G, e)
    eta = 1e-2
    pairs = {
        "polar-line": lambda e: np.linalg.norm(polar(e) - (X - e * G)),
        "qr-line": lambda e: np.linalg.norm(qr(e) - (X - e * G)),
        "polar-qr": lambda e: np.linalg.norm(polar(e) - qr(e)),
    }
    for name, f in pairs.items():
        e1, e2 = _second_order(f, eta)
        assert e1 <= 2.0 * eta ** 2, name  # C eta^2 with ||G|| = 1
        assert 50 <= e1 / e2, (name, e1, e2)  # at least quadratic, not linear
        if name != "polar-qr" or r > 1:
            # the eta^2 terms are really there (-eta^2/2 X G^T G for polar; polar and QR differ
            # at second order unless G^T G is diagonal): exactly quadratic
            assert e1 / e2 <= 200, (name, e1, e2)
            assert e1 >= 1e-3 * eta ** 2, name
    # the first-order term itself is there: each retraction moves by ~eta ||G||
    assert np.linalg.norm(polar(eta) - X) == pytest.approx(eta, rel=1e-2)


@pytest.mark.parametrize("d,r", [(7, 3), (33, 5), (5, 5)])
def test_cayley_agrees_with_polar_to_first_order(d, r):
    g = np.random.default_rng(d * r)
    X = wn.random_stiefel(d, r, rng=g)
    # Case 1: a Euclidean gradient whose tangent projection is G (X^T Gt symmetric).
    S = g.standard_normal((r, r))
    K = g.standard_normal((d, r))
    K -= X @ (X.T @ K)  # normal to span(X)
    if d == r:  # no normal space: use the skew part instead (handled by case 2 below)
        K = np.zeros((d, r))
    Gt1 = K + X @ (S + S.T)
    # Case 2: any Gt; the Cayley curve's velocity is the canonical gradient Gt - X Gt^T X.
    Gt2 = g.standard_normal((d, r))
    cases = [(Gt1, wn.tangent_projection(X, Gt1)), (Gt2, Gt2 - X @ Gt2.T @ X)]
    for Gt, G in cases:
        nG = np.linalg.norm(G)
        if nG <= 1e-8 * np.linalg.norm(Gt):  # d == r: no normal space in case 1
            assert d == r
            continue
        Gt, G = Gt / nG, G / nG
        XtG = X.T @ G
        assert np.linalg.norm(XtG + XtG.T) <= 1e-12  # G is tangent
        f = lambda e: np.linalg.norm(wn.cayley_retraction(X, Gt, e) - wn.polar_retraction(X, G, e))
        e1, e2 = _second_order(f, 1e-2)
        assert e1 <= 5.0 * 1e-4 * max(1.0, np.linalg.norm(Gt)) ** 2
        assert 50 <= e1 / e2, (e1, e2)  # at least quadratic in eta


def test_cayley_with_raw_gradient_differs_at_first_order_from_projected_polar():
    """Sanity check of the test above: a non-symmetric X^T Gt breaks the first-order match with
    polar along P_X(Gt), so that test's direction choice really matters."""
    X, Gt, G = point_and_tangent(9, 3, seed=5)
    f = lambda e: np.linalg.norm(wn.cayley_retraction(X, Gt, e) - wn.polar_retraction(X, G, e))
    e1, e2 = _second_order(f, 1e-3)
    assert e1 / e2 < 20  # linear in eta


# ------------------------------------------------------------------------------------------------
# inputs in other layouts

def test_retractions_accept_fortran_and_strided_inputs():
    X, Gt, G = point_and_tangent(11, 4, seed=2)
    Xf, Gf = np.asfortranarray(X), np.asfortranarray(G)
    big = np.zeros((11, 8))
    big[:, ::2] = G
    Gs = big[:, ::2]
    assert not Gs.flags.c_contiguous and not Xf.flags.c_contiguous
    for fn, dirn in ((wn.polar_retraction, G), (wn.qr_retraction, G), (wn.cayley_retraction, Gt)):
        ref = fn(X, dirn, 0.3)
        np.testing.assert_array_equal(fn(Xf, np.asfortranarray(dirn), 0.3), ref)
    np.testing.assert_array_equal(wn.polar_retraction(X, Gs, 0.3), wn.polar_retraction(X, G, 0.3))
    np.testing.assert_array_equal(wn.tangent_projection(Xf, Gf), wn.tangent_projection(X, G))
    # integer eta and numpy scalars are fine
    np.testing.assert_array_equal(wn.qr_retraction(X, G, np.float32(1.0)),
                                  wn.qr_retraction(X, G, 1))


# ------------------------------------------------------------------------------------------------
# random points

@pytest.mark.parametrize("d,r", SHAPES)
def test_random_stiefel(d, r):
    X = wn.random_stiefel(d, r, rng=42)
    assert X.shape == (d, r) and X.dtype == np.float64
    assert feasibility(X) <= 1e-12
    np.testing.assert_array_equal(X, wn.random_stiefel(d, r, rng=42))
    np.testing.assert_array_equal(X, wn.random_stiefel(d, r, rng=np.random.default_rng(42)))
    if d > 1:  # St(1, 1) = {+-1} and the sign convention pins it to 1
        assert not np.array_equal(X, wn.random_stiefel(d, r, rng=43))


def test_random_stiefel_is_uniform_on_average():
    """Haar-distributed columns: E[X X^T] = (r/d) I."""
    d, r, n = 6, 2, 3000
    g = np.random.default_rng(0)
    acc = np.zeros((d, d))
    for _ in range(n):
        X = wn.random_stiefel(d, r, rng=g)
        acc += X @ X.T
    acc /= n
    # entries of X X^T have variance O(1/d^2): 5 standard errors of the mean
    assert np.max(np.abs(acc - (r / d) * np.eye(d))) <= 5 * 0.5 / np.sqrt(n)
