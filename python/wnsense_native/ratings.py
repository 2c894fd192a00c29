"""Noisy ratings: a bias + low-rank model with a count-weighted ridge on the factors, its penalty
(and rank) chosen on held-out entries.

On real ratings the uniform nuclear norm of :func:`~wnsense_native.complete` barely improves on
the biases (MovieLens 100k: by at most 0.002 test RMSE); what works in the field is biases inside
the model and a ridge on each row's (column's) factor scaled by its number of ratings: ALS-WR
(Zhou et al. 2008), the weighted trace norm (Salakhutdinov and Srebro 2010); here scaled by a
power of it (``count_exponent``, 0.5 by default, measured below). :func:`fit_ratings` fits it
by alternating weighted ridge regressions (:mod:`._als`); ``penalty="auto"`` walks a
warm-started path of decreasing penalties from the smallest one at which the low-rank part is zero
(as softImpute's lambda path, Mazumder, Hastie and Tibshirani 2010), scores each on a seeded
held-out share of the entries, reads the rank from the spectrum of the best one's low-rank part,
and refits on all entries.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from . import _als
from ._blas import single_threaded_blas
from ._progress import progress_bar
from ._random import as_generator
from ._validation import check_float, check_int
from .solvers.fit_report import effective_rank

__all__ = ["RatingsModel", "fit_ratings"]

logger = logging.getLogger("wnsense_native")

# Singular values of the low-rank part below this fraction of the largest are read as zero when
# the rank is chosen: the weighted ridge shrinks unneeded directions towards zero, but the
# alternating sweeps reach zero only geometrically.
RANK_TOL = 1e-2


@dataclass
class RatingsModel:
    """A fitted ``mean + row_bias[i] + col_bias[j] + row_factors[i] . col_factors[j]``.

    ``path`` (with ``penalty="auto"``) holds the penalties tried, their held-out RMSE and the rank
    read at each (``penalties``, ``validation_rmse``, ``ranks``); ``n_sweeps`` and ``converged``
    describe the final fit.
    """

    mean: float
    row_bias: np.ndarray
    col_bias: np.ndarray
    row_factors: np.ndarray
    col_factors: np.ndarray
    penalty: float
    bias_penalty: float
    count_exponent: float = 1.0
    n_sweeps: int = 0
    converged: bool = False
    path: dict = field(default_factory=dict)

    @property
    def shape(self):
        return (self.row_bias.shape[0], self.col_bias.shape[0])

    @property
    def rank(self):
        return self.row_factors.shape[1]

    def predict(self, rows, cols):
        """Model values at ``(rows[t], cols[t])``. An id outside :attr:`shape` (not seen in the
        fit) has a zero bias and a zero factor: its prediction falls back to the other side's
        bias and the mean."""
        rows = _check_ids("rows", rows)
        cols = _check_ids("cols", cols, rows.size)
        m, n = self.shape
        r_in, c_in = rows < m, cols < n
        both = r_in & c_in
        out = np.full(rows.size, self.mean)
        out[r_in] += self.row_bias[rows[r_in]]
        out[c_in] += self.col_bias[cols[c_in]]
        if self.rank and both.any():
            out[both] += np.einsum("ij,ij->i", self.row_factors[rows[both]],
                                   self.col_factors[cols[both]])
        return out

    def fold_in(self, rows, cols, values, n_rows):
        """Biases and factors of ``n_rows`` new rows from their observed ``(rows, cols,
        values)``, against the fitted columns (one weighted ridge regression per row, as in the
        fit). Returns ``(row_bias, row_factors)``; a row without entries gets zeros."""
        rows = _check_ids("rows", rows)
        cols = _check_ids("cols", cols, rows.size)
        values = _check_values(values, rows.size)
        n_rows = check_int("n_rows", n_rows, minimum=0)
        if rows.size and rows.max() >= n_rows:
            raise ValueError(f"rows must be < n_rows = {n_rows}")
        if cols.size and cols.max() >= self.shape[1]:
            raise ValueError(f"cols must be < {self.shape[1]} (the fitted columns)")
        side = _als.Side(rows, cols, n_rows, self.shape[1], self.count_exponent)
        targets = values - self.mean - self.col_bias[cols]
        factors, bias, _ = _als.solve_side(side, targets, self.col_factors, self.penalty,
                                           self.bias_penalty)
        return bias, factors

    def to_dense(self):
        """The model as a dense ``shape`` array (``mean + biases + row_factors col_factors^T``)."""
        return (self.mean + self.row_bias[:, None] + self.col_bias[None, :]
                + self.row_factors @ self.col_factors.T)


def _check_ids(name, ids, length=None):
    if isinstance(ids, (str, bytes)) or ids is None:
        raise TypeError(f"{name} must be an array of integer ids, got {type(ids).__name__}")
    arr = np.asarray(ids)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr.size and (arr != np.round(arr)).any()):
            raise ValueError(f"{name} must hold integer ids, got non-integral values")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an array of integer ids, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if length is not None and arr.size != length:
        raise ValueError(f"{name} must have the same length as rows ({length}), got {arr.size}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative ids, got {arr.min()}")
    return arr.astype(np.int64)


def _check_values(values, length):
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"values must be a numeric array, got {type(values).__name__}")
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"values must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if arr.size != length:
        raise ValueError(f"values must have the same length as rows ({length}), got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError("values contains NaN or Inf")
    return arr


def _random_state(shape, rank, bias_state, gen, scale):
    """Biases from the bias-only fit, factors small and seeded (the zero factors are a saddle
    of the alternating sweeps)."""
    return _als.State(bias_state.row_bias.copy(), bias_state.col_bias.copy(),
                      gen.normal(0.0, scale, (shape[0], rank)),
                      gen.normal(0.0, scale, (shape[1], rank)))


def _rank_of(state):
    if state.rank == 0:
        return 0
    return effective_rank(_als.singular_values(state.U, state.V), RANK_TOL)


def _fit_biases(data, bias_penalty, sweeps, tol):
    m, n = data.shape
    state = _als.State(np.zeros(m), np.zeros(n), np.zeros((m, 0)), np.zeros((n, 0)))
    _als.alternate(data, state, 0.0, bias_penalty, max_sweeps=sweeps, tol=tol)
    return state


def _penalty_path(train, held, rank, bias_penalty, *, n_penalties, ratio, patience, path_sweeps,
                  tol, gen, progress):
    """The warm-started path; returns ``(best_penalty, best_state, path)``."""
    base = _fit_biases(train, bias_penalty, path_sweeps, tol)
    resid = train.values - _als.predict_entries(train.mean, base, train.rows, train.cols)
    top = _als.top_singular_value(train, resid, 30, gen)
    path = {"penalties": [], "validation_rmse": [], "ranks": []}
    if not top > 0.0:  # the biases fit the training entries exactly: no low-rank part to add
        return 0.0, base, path
    state = _random_state(train.shape, rank, base, gen, 0.1)
    held_rows, held_cols, held_values = held

    def held_rmse(s):
        pred = _als.predict_entries(train.mean, s, held_rows, held_cols)
        return float(np.sqrt(np.mean((pred - held_values) ** 2)))

    best = (held_rmse(base), 0.0, base)  # the biases alone: the path's reference
    bar = progress_bar(progress, n_penalties, "penalty")

    def step(penalty, state):
        nonlocal best
        nsw, _ = _als.alternate(train, state, penalty, bias_penalty, max_sweeps=path_sweeps,
                                tol=tol)
        score, r = held_rmse(state), _rank_of(state)
        path["penalties"].append(penalty)
        path["validation_rmse"].append(score)
        path["ranks"].append(r)
        logger.info("ratings path: penalty %.4g, held-out RMSE %.5f, rank %d, %d sweeps",
                    penalty, score, r, nsw)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(penalty=f"{penalty:.3g}", rmse=f"{score:.4f}")
        improved = score < best[0]
        if improved:
            best = (score, penalty, state.copy())
        return improved

    try:
        since_best = 0
        for t in range(1, n_penalties + 1):
            since_best = 0 if step(top * ratio ** t, state) else since_best + 1
            if since_best >= patience:
                break
    finally:
        if bar is not None:
            bar.close()
    return best[1], best[2], path


def fit_ratings(rows, cols, values, shape=None, *, rank=10, penalty="auto", bias_penalty=5.0,
                count_exponent=0.5, validation_fraction=0.1, n_penalties=15, penalty_ratio=0.75,
                patience=2, max_sweeps=100, path_sweeps=5, tol=1e-4, rng=None, progress=False):
    """Fit ``mean + a_i + b_j + u_i . v_j`` to observed entries ``values[t]`` at
    ``(rows[t], cols[t])`` of a ``shape`` matrix.

    Parameters
    ----------
    rows, cols : array_like of int, shape (n,)
        Non-negative ids (duplicates count as separate observations).
    values : array_like of float, shape (n,)
        Finite observed values.
    shape : (int, int), optional
        Matrix shape; default ``(rows.max() + 1, cols.max() + 1)``.
    rank : int
        Rank of the low-rank part (0: biases only). With ``penalty="auto"`` the largest rank: the
        refit keeps the singular values of the chosen penalty's fit above ``RANK_TOL`` times the
        largest.
    penalty : float or "auto"
        ``lambda`` of the count-weighted ridge
        ``lambda (sum_i n_i^e |u_i|^2 + sum_j n_j^e |v_j|^2)``, ``n_i`` the row's number of
        entries and ``e`` the ``count_exponent``.
        ``"auto"``: the penalty with the smallest RMSE on a held-out ``validation_fraction`` of
        the entries (drawn from ``rng``) along the path ``sigma * penalty_ratio**t``,
        ``t = 1..n_penalties``, from ``sigma`` (the smallest penalty with a zero low-rank part),
        each fit warm-started from the previous one with at most ``path_sweeps`` sweeps; the path
        stops after ``patience`` penalties without improvement. If no penalty beats the biases
        alone the model is the biases (``rank`` 0). Then refit on all entries, the penalty
        scaled by ``(n_all / n_train)^(1 - e)`` (a row's data term grows with its count, its
        ridge with the count to the power ``e``).
    bias_penalty : float
        Ridge ``bias_penalty * (|a|^2 + |b|^2)`` on the biases.
    count_exponent : float
        ``e`` above: 1 is ALS-WR's ridge (the weighted trace norm), 0 the uniform ridge (the
        nuclear norm). The default 0.5 sits between: on two MovieLens 100k folds (80/20, seed
        123, not the bench's), ``penalty="auto"`` reached test RMSE 0.9169 with 1, 0.9098 with
        0.5, 0.9089 with 0.25 and 0.9115 with 0.
    max_sweeps, tol : int, float
        The final fit stops when a sweep lowers the objective by less than ``tol`` (relative),
        or after ``max_sweeps``.
    rng : None, int, SeedSequence or Generator
        The held-out draw and the starting factors; a given seed gives the same model bit for
        bit.
    progress : bool
        A tqdm bar over the path (needs the ``progress`` extra); the path is also logged at INFO
        on the ``wnsense_native`` logger.

    Returns
    -------
    RatingsModel
    """
    # every product here is small (k x k, or batches of (k+1) x (k+1) systems): OpenBLAS's
    # threads only spin on them (measured on MovieLens 100k, 2 busy cores: 3.3 s wall with
    # numpy's default BLAS threads, 1.2 s with one)
    with single_threaded_blas():
        return _fit_ratings(rows, cols, values, shape, rank=rank, penalty=penalty,
                            bias_penalty=bias_penalty, count_exponent=count_exponent,
                            validation_fraction=validation_fraction,
                            n_penalties=n_penalties, penalty_ratio=penalty_ratio,
                            patience=patience, max_sweeps=max_sweeps, path_sweeps=path_sweeps,
                            tol=tol, rng=rng, progress=progress)


def _fit_ratings(rows, cols, values, shape, *, rank, penalty, bias_penalty, count_exponent,
                 validation_fraction,
                 n_penalties, penalty_ratio, patience, max_sweeps, path_sweeps, tol, rng,
                 progress):
    rows_a = _check_ids("rows", rows)
    cols_a = _check_ids("cols", cols, rows_a.size)
    vals = _check_values(values, rows_a.size)
    if rows_a.size == 0:
        raise ValueError("rows must not be empty (no observed entries)")
    if shape is None:
        shape = (int(rows_a.max()) + 1, int(cols_a.max()) + 1)
    else:
        try:
            shape = tuple(check_int("shape", s, minimum=1) for s in shape)
        except TypeError:
            raise TypeError("shape must be a pair of integers") from None
        if len(shape) != 2:
            raise ValueError(f"shape must be a pair of integers, got {shape}")
        if rows_a.max() >= shape[0] or cols_a.max() >= shape[1]:
            raise ValueError(f"rows and cols must be below shape = {shape}")
    rank = check_int("rank", rank, minimum=0)
    bias_penalty = check_float("bias_penalty", bias_penalty, minimum=0.0)
    count_exponent = check_float("count_exponent", count_exponent, minimum=0.0, maximum=2.0)
    tol = check_float("tol", tol, minimum=0.0)
    max_sweeps = check_int("max_sweeps", max_sweeps, minimum=1)
    gen = as_generator(rng)
    auto = isinstance(penalty, str)
    if auto and penalty != "auto":
        raise ValueError(f"penalty must be a non-negative number or 'auto', got {penalty!r}")
    path = {}
    if not auto:
        penalty = check_float("penalty", penalty, minimum=0.0)
        if penalty == 0.0 and rank > 0:
            raise ValueError("penalty must be > 0 with rank > 0 (a row with fewer than rank "
                             "entries has no unique unpenalized factor)")
    data = _als.Entries(rows_a, cols_a, vals, shape, vals.mean(), count_exponent)
    if auto and rank > 0:
        validation_fraction = check_float("validation_fraction", validation_fraction,
                                          minimum=0.0, maximum=0.5, strict_minimum=True)
        n_penalties = check_int("n_penalties", n_penalties, minimum=1)
        penalty_ratio = check_float("penalty_ratio", penalty_ratio, minimum=0.0, maximum=1.0,
                                    strict_minimum=True)
        patience = check_int("patience", patience, minimum=1)
        path_sweeps = check_int("path_sweeps", path_sweeps, minimum=1)
        held = gen.random(vals.size) < validation_fraction
        if held.all() or not held.any():
            # too few entries to hold any out: the biases alone (nothing to choose a penalty on)
            logger.info("ratings: %d entries leave no held-out share; fitting the biases only",
                        vals.size)
            penalty, rank = 0.0, 0
        else:
            train = _als.Entries(rows_a[~held], cols_a[~held], vals[~held], shape,
                                 vals[~held].mean(), count_exponent)
            penalty, best, path = _penalty_path(
                train, (rows_a[held], cols_a[held], vals[held]), rank, bias_penalty,
                n_penalties=n_penalties, ratio=penalty_ratio, patience=patience,
                path_sweeps=path_sweeps, tol=tol, gen=gen, progress=progress)
            rank = _rank_of(best) if penalty > 0 else 0
            state = _als.truncate(best, rank)
            # all entries instead of the training share: the data term of a row grows with its
            # count n, its ridge with n^e; keep their ratio
            penalty *= (vals.size / train.values.size) ** (1.0 - count_exponent)
            logger.info("ratings: penalty %.4g, rank %d chosen; refit on all %d entries",
                        penalty, rank, vals.size)
    elif auto:
        penalty = 0.0
    if not path:
        base = _fit_biases(data, bias_penalty, 10, tol)
        state = _random_state(shape, rank, base, gen, 0.1)
    n_sweeps, converged = _als.alternate(data, state, penalty, bias_penalty,
                                         max_sweeps=max_sweeps, tol=tol)
    return RatingsModel(mean=data.mean, row_bias=state.row_bias, col_bias=state.col_bias,
                        row_factors=state.U, col_factors=state.V, penalty=float(penalty),
                        bias_penalty=bias_penalty, count_exponent=count_exponent,
                        n_sweeps=n_sweeps, converged=converged,
                        path=path)
