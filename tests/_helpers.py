"""Helpers shared by the test modules (imported as ``_helpers``: pytest's default import mode puts
``tests/`` on ``sys.path``).

* the two small Gaussian problems of the solver tests (fixtures in ``conftest.py``),
* solver methods instantiated directly (to read their gradients) on either backend,
* central finite differences and the relative difference,
* independent numpy references of the operators' ``M_i`` stacks, and one builder per operator kind.
"""
from __future__ import annotations

import numpy as np

import wnsense_native as wn
from wnsense_native import reference
from wnsense_native.reference._operators import numpy_residual_factory
from wnsense_native.solvers import NATIVE_METHODS, _native_residual
from wnsense_native.solvers._problem import Problem
from wnsense_native.solvers._steps import make_step_rule

# ------------------------------------------------------------------------------------------------
# problems and methods

def sym_gaussian(**storage):
    """Symmetric Gaussian sensing, d = 12, r* = 2, kappa = 3, m = 300: ``(op, y, Z*)``;
    ``storage``: ``dtype`` / ``packed`` of :func:`wnsense_native.gaussian_sensing`."""
    Zs = wn.low_rank_target(12, 2, kappa=3, rng=10)
    op = wn.gaussian_sensing(12, 300, rng=11, **storage)
    return op, op.forward(Zs), Zs


def rect_gaussian():
    """Rectangular Gaussian sensing, 10 x 8, r* = 2, kappa = 2, m = 250: ``(op, y, Z*)``."""
    Zs = wn.low_rank_target(10, 2, d2=8, kappa=2, rng=12)
    op = wn.gaussian_sensing(10, 250, d2=8, rng=13)
    return op, op.forward(Zs), Zs


REGISTRIES = {"native": NATIVE_METHODS, "reference": reference.REFERENCE_METHODS}
_RESIDUALS = {"native": _native_residual, "reference": numpy_residual_factory}


def make_problem(backend, op, y, n_threads=1):
    """The :class:`Problem` ``wn.solve`` (backend "native") or ``reference.solve`` iterates on."""
    return Problem(op, y, _RESIDUALS[backend](op, y, n_threads))


def make_method(backend, op, y, rank, method, init, step_rule=None, **options):
    """Instantiate a solver method directly (the object wn.solve drives), to read its gradients;
    ``step_rule`` defaults to the solvers' default rule. The problem is ``.problem``."""
    factory = REGISTRIES[backend][method]
    cls = (factory(op.symmetric, options) if getattr(factory, "with_options", False)
           else factory(op.symmetric))
    rule = cls.default_step_rule() if hasattr(cls, "default_step_rule") else make_step_rule(None)
    return cls(make_problem(backend, op, y), rank, np.random.default_rng(0), init,
               rule if step_rule is None else step_rule, **{**cls.OPTIONS, **options})


# ------------------------------------------------------------------------------------------------
# numerics

def central_fd(f, P, h=1e-6):
    """Central finite differences of the scalar ``f`` at the array ``P``, entry by entry."""
    g = np.zeros_like(P)
    for idx in np.ndindex(P.shape):
        E = np.zeros_like(P)
        E[idx] = h
        g[idx] = (f(P + E) - f(P - E)) / (2 * h)
    return g


def rel_diff(a, b):
    """``||a - b|| / ||b||`` in float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


# ------------------------------------------------------------------------------------------------
# independent references: the (m, d1, d2) float64 stack of M_i from an operator's public fields

def ref_forward(Ms, Z):
    """``<M_i, Z>`` for a stack ``Ms`` of shape ``(m, d1, d2)``: the numpy forward operator."""
    return np.einsum("ijk,jk->i", Ms, Z)


def ref_adjoint(Ms, v):
    """``sum_i v_i M_i``: the numpy adjoint."""
    return np.einsum("i,ijk->jk", v, Ms)


def probes(op, seed=7, k_right=3, k_left=2):
    """Thin matrices to ask a pass for: ``right`` (``d2 x k_right``), ``left`` (``d1 x k_left``)."""
    m, d1, d2 = op.shape
    g = np.random.default_rng(seed)
    return g.standard_normal((d2, k_right)), g.standard_normal((d1, k_left))


def ref_pass(Ms, L, R, y, right, left, symmetric):
    """The thin-factor pass from an explicit stack: ``(r, ||r||^2, G @ right, G^T @ left)``
    with ``G = A*(r)`` (``sym(A*(r))`` on both sides when ``symmetric``; ``y=None``: zero)."""
    r = ref_forward(Ms, L @ R.T)
    if y is not None:
        r = r - y
    G = ref_adjoint(Ms, r)
    if symmetric:
        G = 0.5 * (G + G.T)
    return r, float(r @ r), G @ right, (G @ left if symmetric else G.T @ left)


def assert_pass_close(res, ref, tol):
    """A ``ResidualPass`` against :func:`ref_pass` (relative tolerance ``tol`` on each part)."""
    r, sumsq, AV, AtU = ref
    assert rel_diff(res.r, r) <= tol
    assert abs(res.sumsq - sumsq) <= tol * max(sumsq, 1e-300)
    scale = max(np.linalg.norm(AV), np.linalg.norm(AtU), 1e-300)
    assert np.linalg.norm(res.AV - AV) <= tol * scale
    assert np.linalg.norm(res.AtU - AtU) <= tol * scale


def unpack_upper(data, d):
    """(m, d(d+1)/2) upper triangles in numpy.triu_indices order -> (m, d, d) symmetric stack."""
    data = np.asarray(data, dtype=np.float64)
    M = np.zeros((data.shape[0], d, d))
    t = 0
    for j in range(d):
        for k in range(j, d):
            M[:, j, k] = data[:, t]
            M[:, k, j] = data[:, t]
            t += 1
    assert t == data.shape[1]
    return M


def entry_matrices(op):
    m, d1, d2 = op.shape
    Ms = np.zeros((m, d1, d2))
    for i, (j, k) in enumerate(zip(op.rows, op.cols)):
        E = np.zeros((d1, d2))
        E[j, k] = 1.0
        if op.symmetric:
            E = 0.5 * (E + E.T)
        Ms[i] = op.scale * E
    return Ms


def sparse_matrices(op):
    """The stack of a :class:`wnsense_native.SparseSensing` from its CSR arrays (symmetrized in
    the symmetric family)."""
    m, d1, d2 = op.shape
    Ms = np.zeros((m, d1, d2))
    for i in range(m):
        for t in range(op.indptr[i], op.indptr[i + 1]):
            Ms[i, op.rows[t], op.cols[t]] += op.values[t]
    if op.symmetric:
        Ms = 0.5 * (Ms + Ms.transpose(0, 2, 1))
    return Ms


def rank_one_matrices(op):
    A = op.vectors
    return op.scale * np.einsum("ij,ik->ijk", A, A)


def identity_matrices(d1, d2):
    Ms = np.zeros((d1 * d2, d1, d2))
    for j in range(d1):
        for k in range(d2):
            Ms[j * d2 + k, j, k] = 1.0
    return Ms


def dense_stack(op) -> np.ndarray:
    """The ``(m, d1, d2)`` float64 stack of ``M_i`` of any operator kind (never through the
    operator's own ``dense_matrices``)."""
    m, d1, d2 = op.shape
    if isinstance(op, wn.DenseSensing):
        if op.packed:
            return unpack_upper(op.data, d1)
        return np.asarray(op.data, dtype=np.float64).reshape(m, d1, d2).copy()
    if isinstance(op, wn.EntrySampling):
        return entry_matrices(op)
    if isinstance(op, wn.SparseSensing):
        return sparse_matrices(op)
    if isinstance(op, wn.RankOneSensing):
        return rank_one_matrices(op)
    if isinstance(op, wn.IdentitySensing):
        return identity_matrices(d1, d2)
    raise AssertionError(type(op))


# ------------------------------------------------------------------------------------------------
# one operator of each kind

OP_KINDS = ("gauss_sym", "gauss_rect", "gauss_f32", "gauss_packed", "gauss_packed_f32",
            "entry_sym", "entry_rect", "completion", "sparse_sym", "sparse_rect", "rank_one",
            "identity", "identity_rect", "user_dense", "user_sym_packed")


def make_operator(kind, d, d2, m, seed):
    """An operator of ``kind`` (one of ``OP_KINDS``): ``d x d`` (``d x d2`` for the rectangular
    kinds and ``user_dense``), ``m`` measurements (``d * d2`` for the identity), drawn from
    ``seed``."""
    g = np.random.default_rng(seed)
    if kind == "gauss_sym":
        return wn.gaussian_sensing(d, m, rng=seed)
    if kind == "gauss_rect":
        return wn.gaussian_sensing(d, m, d2=d2, rng=seed)
    if kind == "gauss_f32":
        return wn.gaussian_sensing(d, m, dtype="float32", rng=seed)
    if kind == "gauss_packed":
        return wn.gaussian_sensing(d, m, packed=True, rng=seed)
    if kind == "gauss_packed_f32":
        return wn.gaussian_sensing(d, m, dtype="float32", packed=True, rng=seed)
    if kind == "entry_sym":
        return wn.entry_sampling(d, m, rng=seed)
    if kind == "entry_rect":
        return wn.entry_sampling(d, m, d2=d2, rng=seed)
    if kind == "completion":
        return wn.completion_sensing(g.integers(0, d, m), g.integers(0, d2, m), (d, d2))
    if kind in ("sparse_sym", "sparse_rect"):
        import scipy.sparse as sp
        dd2 = d if kind == "sparse_sym" else d2
        M = sp.random(m, d * dd2, density=min(1.0, 3.0 / (d * dd2)), format="csr",
                      random_state=seed)
        return wn.sparse_sensing(M, (d, dd2), symmetric=kind == "sparse_sym")
    if kind == "rank_one":
        return wn.rank_one_sensing(d, m, rng=seed)
    if kind == "identity":
        return wn.identity_sensing(d)
    if kind == "identity_rect":
        return wn.identity_sensing(d, d2=d2)
    if kind == "user_dense":
        return wn.dense_sensing(g.standard_normal((m, d, d2)))
    if kind == "user_sym_packed":
        G = g.standard_normal((m, d, d))
        return wn.dense_sensing(G + G.transpose(0, 2, 1), packed=True)
    raise AssertionError(kind)
