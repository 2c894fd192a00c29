"""Alternating weighted ridge regressions for the bias + low-rank ratings model (the numerical
core of :mod:`.ratings`).

The model of entry ``(i, j)`` is ``mean + a_i + b_j + u_i . v_j`` and the objective, over the
observed entries,

    sum (y_ij - model_ij)^2 + penalty * (sum_i w_i |u_i|^2 + sum_j w_j |v_j|^2)
                            + bias_penalty * (|a|^2 + |b|^2),

with ``w_i = n_i^e`` (``w_j = n_j^e``), ``n_i`` the number of observed entries of row ``i``
(column ``j``): with ``e = 1`` the count-weighted ridge of ALS-WR (Zhou et al. 2008), whose minimum
over the factorizations of ``Z = U V^T`` is the weighted trace norm
``2 penalty ||D_r^(1/2) Z D_c^(1/2)||_*`` (Salakhutdinov and Srebro 2010); ``e = 0`` is the
uniform ridge (the nuclear norm). With one side fixed, every row of the other is an independent
ridge regression on ``[v_j, 1]``: the ``(k+1) x (k+1)`` normal matrices of all rows are one
sparse-times-dense product (the observed pattern times the per-column outer products), solved as
one batched ``np.linalg.solve``. Measured on MovieLens 100k at k = 10 (one run, busy 2-core
machine): 11 ms for the normal matrices from their upper triangles, 28 ms with the full squares,
450 ms with ``np.add.reduceat`` over the entries; 6 ms for the 943 solves. A sweep of both sides
takes about 11 ms of CPU time with numpy's BLAS on one thread.
"""
from __future__ import annotations

import numpy as np


def _sparse():
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy is in the 'scipy' and 'sklearn' extras
        raise ImportError("the ratings model needs scipy (pip install wnsense_native[scipy])") \
            from None
    return sp


class Side:
    """The observed entries seen from one side (rows, or columns): a CSR pattern over
    ``(own id, other id)`` with the entries in a fixed order, built once per data set."""

    def __init__(self, own, other, n_own, n_other, exponent):
        sp = _sparse()
        self.order = np.lexsort((other, own))
        self.counts = np.bincount(own, minlength=n_own)
        # the ridge weight of each id's factor: its count to the power ``exponent``
        self.weights = np.maximum(self.counts, 1).astype(np.float64) ** exponent
        self.indptr = np.concatenate([[0], np.cumsum(self.counts)])
        self.indices = other[self.order]
        self.shape = (n_own, n_other)
        self.pattern = sp.csr_matrix((np.ones(own.size), self.indices, self.indptr),
                                     shape=self.shape)

    def weighted(self, values):
        """The pattern with the entries' ``values`` (given in the data's order) as weights."""
        return _sparse().csr_matrix((values[self.order], self.indices, self.indptr),
                                    shape=self.shape)


class Entries:
    """Observed entries ``(rows, cols, values)`` of a ``shape`` matrix and their two sides."""

    def __init__(self, rows, cols, values, shape, mean, exponent):
        self.rows, self.cols, self.values, self.shape = rows, cols, values, shape
        self.mean = float(mean)
        self.by_row = Side(rows, cols, shape[0], shape[1], exponent)
        self.by_col = Side(cols, rows, shape[1], shape[0], exponent)


class State:
    """Biases and factors; ``copy`` for the best-so-far on a path."""

    def __init__(self, row_bias, col_bias, U, V):
        self.row_bias, self.col_bias, self.U, self.V = row_bias, col_bias, U, V

    def copy(self):
        return State(self.row_bias.copy(), self.col_bias.copy(), self.U.copy(), self.V.copy())

    @property
    def rank(self):
        return self.U.shape[1]


def predict_entries(mean, state, rows, cols):
    """``mean + a_i + b_j + u_i . v_j`` at the given (in-range) ids."""
    out = mean + state.row_bias[rows] + state.col_bias[cols]
    if state.rank:
        out += np.einsum("ij,ij->i", state.U[rows], state.V[cols])
    return out


def solve_side(side, targets, other, penalty, bias_penalty):
    """Every own id's ridge regression of ``targets`` (entry order) on ``[other_j, 1]``.

    ``targets`` are the entries' values minus the mean and the other side's biases. Returns
    ``(factors, biases, rss)``, ``rss`` the data term ``sum (target - fit)^2`` at the solution,
    from the normal equations (no pass over the entries); an id without entries gets zeros (its
    ridge has no data)."""
    n_own, n_other = side.shape
    k = other.shape[1]
    W = np.empty((n_other, k + 1))
    W[:, :k] = other
    W[:, k] = 1.0
    iu, ju = np.triu_indices(k + 1)
    upper = side.pattern @ (W[:, iu] * W[:, ju])
    rhs = side.weighted(targets) @ W
    # the full symmetric matrices in one gather from the upper triangles
    full_index = np.zeros((k + 1, k + 1), dtype=np.intp)
    full_index[iu, ju] = full_index[ju, iu] = np.arange(iu.size)
    A = upper[:, full_index.reshape(-1)].reshape(n_own, k + 1, k + 1)
    diag = np.arange(k)
    A[:, diag, diag] += penalty * side.weights[:, None]
    # an id without entries has a zero bias row: keep its system regular
    A[:, k, k] += bias_penalty + (side.counts == 0)
    x = np.linalg.solve(A, rhs[..., None])[..., 0]
    # sum_e (t_e - w_e . x)^2 = |t|^2 - 2 x . rhs + x^T (sum_e w_e w_e^T) x, summed over ids;
    # the quadratic form from the upper triangles (off-diagonal terms twice)
    twice = np.where(iu == ju, 1.0, 2.0)
    fitted = float(np.einsum("nu,nu,u->", upper, x[:, iu] * x[:, ju], twice))
    rss = float(targets @ targets) - 2.0 * float(np.einsum("ni,ni->", x, rhs)) + fitted
    return x[:, :k], x[:, k], max(rss, 0.0)


def penalties(data, state, penalty, bias_penalty):
    """The ridge terms of the objective."""
    value = bias_penalty * float(state.row_bias @ state.row_bias + state.col_bias @ state.col_bias)
    if state.rank:
        value += penalty * float(data.by_row.weights @ np.einsum("ij,ij->i", state.U, state.U)
                                 + data.by_col.weights @ np.einsum("ij,ij->i", state.V, state.V))
    return value


def objective(data, state, penalty, bias_penalty):
    resid = data.values - predict_entries(data.mean, state, data.rows, data.cols)
    return float(resid @ resid) + penalties(data, state, penalty, bias_penalty)


def sweep(data, state, penalty, bias_penalty):
    """One alternating sweep: every row given the columns, then every column given the rows.
    Returns the objective after it."""
    centred = data.values - data.mean
    state.U, state.row_bias, _ = solve_side(data.by_row, centred - state.col_bias[data.cols],
                                            state.V, penalty, bias_penalty)
    state.V, state.col_bias, rss = solve_side(data.by_col, centred - state.row_bias[data.rows],
                                              state.U, penalty, bias_penalty)
    return rss + penalties(data, state, penalty, bias_penalty)


def alternate(data, state, penalty, bias_penalty, *, max_sweeps, tol):
    """Sweeps until the objective's relative decrease is below ``tol`` (each sweep minimizes it
    exactly over one side, so it never increases). Returns ``(sweeps, converged)``."""
    previous = objective(data, state, penalty, bias_penalty)
    for n in range(1, max_sweeps + 1):
        current = sweep(data, state, penalty, bias_penalty)
        if previous - current <= tol * previous:
            return n, True
        previous = current
    return max_sweeps, False


def spectrum(U, V):
    """``U V^T = P diag(s) Q^T`` from the factors (two thin QRs and a k x k SVD)."""
    qu, ru = np.linalg.qr(U)
    qv, rv = np.linalg.qr(V)
    a, s, bt = np.linalg.svd(ru @ rv.T)
    return qu @ a, s, qv @ bt.T


def singular_values(U, V):
    """The singular values of ``U V^T`` from the k x k Gram matrices alone:
    ``s^2 = eig(G_u^(1/2) G_v G_u^(1/2))``."""
    w, E = np.linalg.eigh(U.T @ U)
    root = (E * np.sqrt(np.maximum(w, 0.0))) @ E.T
    s2 = np.linalg.eigvalsh(root @ (V.T @ V) @ root)
    return np.sqrt(np.maximum(s2[::-1], 0.0))


def truncate(state, rank):
    """The state with its low-rank part cut to the leading ``rank`` singular triplets, balanced
    (``U = P sqrt(s)``, ``V = Q sqrt(s)``)."""
    if state.rank == 0 or rank == 0:
        return State(state.row_bias.copy(), state.col_bias.copy(),
                     np.zeros((state.U.shape[0], 0)), np.zeros((state.V.shape[0], 0)))
    P, s, Q = spectrum(state.U, state.V)
    root = np.sqrt(s[:rank])
    return State(state.row_bias.copy(), state.col_bias.copy(), P[:, :rank] * root,
                 Q[:, :rank] * root)


def top_singular_value(data, values, n_iter, gen):
    """``sigma_1(D_r^(-1/2) R D_c^(-1/2))`` of the sparse ``R`` (``values`` at the entries),
    ``D`` the ridge weights, by power iteration: the smallest penalty at which the zero low-rank
    part is optimal (the start of the penalty path)."""
    R = data.by_row.weighted(values)
    n_cols = data.shape[1]
    dr = 1.0 / np.sqrt(data.by_row.weights)
    dc = 1.0 / np.sqrt(data.by_col.weights)
    x = gen.standard_normal(n_cols)
    sigma = 0.0
    for _ in range(n_iter):
        y = dr * (R @ (dc * x))
        x = dc * (R.T @ (dr * y))
        norm = float(np.linalg.norm(x))
        if norm == 0.0:
            return 0.0
        sigma = np.sqrt(norm)
        x /= norm
    return float(sigma)
