"""Rank adaptation for WN-LBFGS (option ``truncate``; on by default for operators of single
entries): overparameterize for the landscape,
then run at the rank that ``Theta`` reveals, for the speed (a project addition).

Weight normalization carries the magnitude explicitly. After a few iterations at search rank
``r > r*``, the magnitudes of ``Theta`` (``|eigenvalues|`` in the symmetric family, singular values
in the rectangular one) split into ``r*`` large and ``r - r*`` small ones. The kappa-free
Gauss-Newton metric that needs 30-40 iterations at exact rank does not pick the low-rank
interpolant when overparameterized on observed entries: it fits the observed entries with the
small magnitudes kept (symmetric entry sampling d = 40, 50 % sampled, r* = 3, r = 5, 10 seeds:
held-out error 5e-3 to 5e-2 at residual 1e-10, while the spectrum read [1, 1, .99, .07, .02]
from iteration 3 on). So:

* **Truncate** when the largest ratio of consecutive magnitudes exceeds :data:`GAP` (3): keep the
  top ``k``, ``X <- X W_k``, ``Theta <- diag(w_k)`` (``Z`` changes by the dropped components
  only), one pass there, the L-BFGS memory dropped.
* **Grow** when the run at rank ``k < r`` stalls (the residual norm has not halved in
  :data:`STALL_WINDOW` iterations while above :data:`STALL_FLOOR`, or the step search failed): one
  pass with a random block ``G`` gives the residual times ``G``; the top singular direction of
  its part outside the span of ``X`` is added with magnitude 0; a second pass at the same ``Z``
  gives the gradient there. After a growth from ``k`` the rank never goes below ``k + 1`` again,
  so at most ``r`` rank changes happen.

Off while ``diagnostics`` are recorded (their shapes are fixed). The result's factors keep the
search rank: dropped directions come back as orthonormal columns
with zero magnitude (so that ``init=res.factors`` warm-starts the same rank).
"""
from __future__ import annotations

import numpy as np

from ._init import orthonormal_basis

# truncate at the largest ratio of consecutive Theta magnitudes when it is at least this: a
# truncation below the true rank costs a stall and a growth (~10 passes), one above it a wrong
# interpolant (rectangular 80 x 60, 90 % sampled, kappa 10, r = 6: magnitudes [1, .53, .11,
# .07, .04, .03] at iteration 3, no ratio above 5)
GAP = 3.0
# the first iterations at the search rank before a truncation is considered
TRUNCATE_AFTER = 3
# a run below the search rank has stalled when ||r|| did not halve in this many iterations...
STALL_WINDOW = 8
STALL_RATIO = 0.25          # (on ||r||^2)
# ... and the relative residual is still above this (below it, rounding decides the rate)
STALL_FLOOR = 1e-9


def gap_rank(magnitudes, floor, gap=GAP):
    """The ``k >= floor`` (``k < len``) after the largest gap of the sorted ``magnitudes`` when that
    gap (a ratio) is at least ``gap``; else None."""
    m = np.sort(np.abs(np.asarray(magnitudes, dtype=float)))[::-1]
    best, best_k = gap, None
    for k in range(max(floor, 1), len(m)):
        ratio = m[k - 1] / m[k] if m[k] > 0 else (np.inf if m[k - 1] > 0 else 0.0)
        if ratio >= best:
            best, best_k = ratio, k
    return best_k


def pad_magnitude(Theta, n):
    """``Theta`` in the top-left corner of an ``n x n`` zero matrix (the added or padded
    directions carry magnitude 0: ``Z`` is unchanged)."""
    T = np.zeros((n, n))
    k = Theta.shape[0]
    T[:k, :k] = Theta
    return T


def complete_basis(X, extra, k):
    """``k`` orthonormal columns orthogonal to ``X``, from the part of ``[extra, I]`` outside the
    span of ``X`` (deterministic: the padding of the result's factors)."""
    C = np.hstack([extra, np.eye(X.shape[0], k)])
    P = C - X @ (X.T @ C)
    U = np.linalg.svd(P, full_matrices=False)[0][:, :k]
    U = U - X @ (X.T @ U)
    return orthonormal_basis(U)


class RankAdaptation:
    """Mixin of :class:`~.wn_lbfgs._LBFGSCore`: the rank changes around its step. The family
    mixins give ``_magnitudes``, ``_truncated``, ``_grown`` and ``factors`` padded to the
    search rank."""

    def _init_rank_adaptation(self, truncate, rank, gen):
        self.truncate = bool(truncate)
        self.search_rank = rank
        self.rank_floor = 1
        self.dropped = None
        self.rank_changes = 0
        self._gen = gen
        self._log = []

    @property
    def current_rank(self):
        return self.point[1].shape[0]

    def _adapt_rank(self, ok):
        """After a step (``ok``: it decreased the loss): maybe change the rank; returns the step's
        outcome for the driver (a rank change counts as progress)."""
        if self.diagnostics is not None:
            return ok                  # the diagnostics record fixed shapes: no rank change
        # rebound, not appended: the driver's snapshot of a step it undoes is a shallow copy
        self._log = (self._log + [self.sumsq])[-(STALL_WINDOW + 1):]
        k = self.current_rank
        fitted = self.problem.relative_residual(self.sumsq) <= STALL_FLOOR
        if k < self.search_rank and not fitted and (not ok or self._stalled()):
            grown = self._grown()
            if grown is None:              # no residual direction outside the span of X
                return ok
            self.rank_floor = k + 1
            self._change_rank(grown)
            return True
        if ok and k > self.rank_floor and len(self._log) > TRUNCATE_AFTER:
            # a stall at the search rank truncates at the largest ratio, whatever its size
            kk = gap_rank(self._magnitudes(), self.rank_floor,
                          gap=1.0 if self._stalled() else GAP)
            if kk is not None:
                point, dropped = self._truncated(kk)
                self.dropped = dropped
                self._change_rank((point, self._pass(point)))
        return ok

    def _stalled(self):
        if len(self._log) <= STALL_WINDOW:
            return False
        if self.problem.relative_residual(self.sumsq) <= STALL_FLOOR:
            return False
        return self._log[-1] > STALL_RATIO * self._log[-1 - STALL_WINDOW]

    def _change_rank(self, point_res):
        point, res = point_res
        self._adopt(point, res)
        n, r = self.g.shape
        self.S = np.empty((0, n, r))
        self.Y = np.empty((0, n, r))
        self._log = [self.sumsq]
        self.rank_changes += 1

    def _new_direction(self, X, RG):
        """The top left singular vector of the part of ``RG`` (residual times a random block)
        outside the span of ``X``; None when that part is zero."""
        P = RG - X @ (X.T @ RG)
        if not np.linalg.norm(P) > 0:
            return None
        u = np.linalg.svd(P, full_matrices=False)[0][:, :1]
        u = u - X @ (X.T @ u)                   # re-orthogonalize against X, then normalize
        n = np.linalg.norm(u)
        return u / n if n > 0 and np.isfinite(n) else None

    def _random_block(self, d, k):
        return self._gen.standard_normal((d, k))
