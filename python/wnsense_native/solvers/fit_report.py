"""What a result says about its fit: the recovered matrix's singular values (``res.spectrum``;
for the weight-normalized methods the magnitudes of ``Theta``; one per column of the thin factors
the solve ended with: a run truncated by the rank adaptation lists only its kept ones), its
effective rank
(``res.effective_rank``), and, where the fit is suspect, a warning in ``res.message``
(``res.suspect`` lists the reasons, ``res.success`` is then False) and a :class:`SuspectFitWarning`.

A small residual does not say the matrix was found: an overparameterized completion can fit the
observed entries with another matrix (symmetric entry sampling d = 40, 50 % sampled, r* = 3,
r = 5: residual 1e-10, error 5e-3 to 5e-2 on 10 of 10 seeds for an unadapted WN-LBFGS). Two
signs are checked:

* the effective rank exceeds the rank the caller expects (``expected_rank``): the extra components
  are what fits the measurements without being the truth (a correct overparameterized solution
  has them at the level of its error);
* the held-out residual (``validation``) disagrees with the training residual: above
  ``VALIDATION_FACTOR`` times it plus ``VALIDATION_FLOOR``.
"""
from __future__ import annotations

import warnings

import numpy as np

# singular values below this fraction of the largest do not count in the effective rank (a
# correct overparameterized solution keeps its extra components at the level of its error,
# 1e-10 relative with the default tol; a fit by another matrix at 1e-3 to 1e-1)
EFFECTIVE_RANK_RTOL = 1e-6
# the held-out residual disagrees with the training residual above FACTOR * train + FLOOR
VALIDATION_FACTOR = 10.0
VALIDATION_FLOOR = 1e-8


class SuspectFitWarning(UserWarning):
    """The solve stopped on its rule, but the fit may not be the matrix sought (see
    ``res.suspect``)."""


def spectrum(L, R):
    """Singular values of ``L R^T`` (descending) from the thin factors (two QRs and an
    ``r x r`` SVD; the matrix is not formed)."""
    RL = np.linalg.qr(L, mode="r")
    RR = np.linalg.qr(R, mode="r")
    return np.linalg.svd(RL @ RR.T, compute_uv=False)


def effective_rank(s, rtol=EFFECTIVE_RANK_RTOL):
    """The number of singular values above ``rtol`` times the largest (0 for the zero matrix)."""
    s = np.asarray(s, dtype=float)
    if s.size == 0 or not s[0] > 0:
        return 0
    return int(np.count_nonzero(s > rtol * s[0]))


def report(result, L, R, expected_rank=None):
    """Add ``spectrum``, ``effective_rank`` (and ``suspect``, a list of reasons) to ``result``;
    a suspect fit is not a success and says why in its message and in a warning."""
    s = spectrum(L, R)
    k = effective_rank(s)
    result.spectrum = s
    result.effective_rank = k
    reasons = []
    if expected_rank is not None and k > expected_rank:
        reasons.append(f"effective rank {k} exceeds the expected rank {expected_rank} (singular "
                       f"values {_short(s)}): the measurements may be fit by another matrix")
    val = result.get("validation_residual")
    if val is not None and val > VALIDATION_FACTOR * result.residual_norm + VALIDATION_FLOOR:
        reasons.append(f"held-out residual {val:.2e} disagrees with the training residual "
                       f"{result.residual_norm:.2e}: the fit does not generalize")
    result.suspect = reasons
    if reasons:
        result.success = False
        result.message = f"{result.message} [suspect fit: {'; '.join(reasons)}]"
        warnings.warn("; ".join(reasons), SuspectFitWarning, stacklevel=4)
    return result


def _short(s, n=6):
    head = ", ".join(f"{v:.2g}" for v in s[:n])
    return f"[{head}{', ...' if len(s) > n else ''}]"
