"""The result of a solve: a ``scipy.optimize.OptimizeResult``-compatible dict with attribute access."""
from __future__ import annotations

import numpy as np

from ._lowrank import lowrank_entries

# Machine-readable stop reasons and their scipy-style integer status codes.
STOP_REASONS = {
    "tol": (0, True, "relative residual below tol"),
    "gtol": (0, True, "gradient norm below gtol"),
    "xtol": (0, True, "relative change of the iterate below xtol"),
    "max_iter": (1, False, "maximum number of iterations reached"),
    "max_time": (2, False, "time limit max_time reached"),
    "callback": (3, False, "stopped by the callback (StopIteration)"),
    "diverged": (4, False, "loss became non-finite or exploded; returning the last finite iterate"),
    "step_failed": (5, False, "step-size search could not decrease the loss"),
    "validation": (0, True, "validation residual stopped improving (early stopping); returning "
                            "the best-validation iterate"),
}


class SolveResult(dict):
    """Result of :func:`wnsense_native.solve`, compatible with ``scipy.optimize.OptimizeResult``.

    Fields: ``x`` (the recovered ``d1 x d2`` matrix, formed from the factors when first read:
    the solve itself never forms it), ``fun`` (final loss), ``nit``, ``nfev``
    (residual evaluations, each one pass over dense sensing data), ``success``, ``status``,
    ``message``, ``stop_reason`` (one of :data:`STOP_REASONS`), ``factors`` (dict of factor
    arrays), ``history`` (dict of 1-D arrays, entry 0 is the starting point), ``time`` (seconds),
    ``method``, ``residual_norm`` (``||A(x) - y|| / ||y||``); from the solvers also ``spectrum``
    (singular values of ``x``, from the factors), ``effective_rank`` (those above 1e-6 of the
    largest) and ``suspect`` (reasons the fit may not be the matrix sought, then ``success`` is
    False: see :mod:`wnsense_native.solvers.fit_report`).

    :meth:`predict` gives entries of the recovered matrix from the factors (``O(k)`` each).
    """

    # the recovered matrix as thin factors (L, R): x = L @ R.T, kept outside the dict's keys
    _lowrank = None

    def set_lowrank(self, L, R):
        """Attach the factored form ``x = L @ R.T`` (``x`` is then formed only when read)."""
        object.__setattr__(self, "_lowrank", (L, R))
        return self

    # Largest x (in entries) that reading ``res.x`` forms: 2**28 float64 entries are 2 GiB. Past
    # it ``res.x`` raises instead of allocating (a 1e5 x 1e5 result would take 74.5 GiB); use
    # ``predict`` or the factors, or raise this limit (``SolveResult.x_max_entries = ...``).
    x_max_entries = 2 ** 28

    def __missing__(self, key):
        if key == "x" and self._lowrank is not None:
            L, R = self._lowrank
            size = L.shape[0] * R.shape[0]
            limit = type(self).x_max_entries
            if size > limit:
                raise ValueError(
                    f"res.x would be a dense {L.shape[0]} x {R.shape[0]} array "
                    f"({size * 8 / 2**30:.3g} GiB), above SolveResult.x_max_entries = {limit}: "
                    f"use res.predict(rows, cols) for entries, or the factors (x = L @ R.T from "
                    f"res.lowrank(); raise SolveResult.x_max_entries to form it anyway)")
            return self._form_x()
        raise KeyError(key)

    def _form_x(self):
        """``x = L @ R.T``, formed once whatever its size (for callers that return it)."""
        if dict.__contains__(self, "x"):
            return dict.__getitem__(self, "x")
        L, R = self._lowrank
        x = L @ R.T
        self["x"] = x
        return x

    def lowrank(self):
        """The thin factors ``(L, R)`` with ``x = L @ R.T`` (None when the result has none)."""
        return self._lowrank

    def __contains__(self, key):
        return dict.__contains__(self, key) or (key == "x" and self._lowrank is not None)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def predict(self, rows, cols) -> np.ndarray:
        """Entries ``x[rows_t, cols_t]`` of the recovered matrix, from the factors (the matrix
        is not formed): e.g. held-out ratings of a completion problem."""
        if self._lowrank is None:
            x = self["x"]
            return np.asarray(x)[np.asarray(rows), np.asarray(cols)]
        L, R = self._lowrank
        rows = np.asarray(rows)
        cols = np.asarray(cols)
        if rows.shape != cols.shape or rows.ndim != 1:
            raise ValueError(f"rows and cols must be 1-D of the same length, got shapes "
                             f"{rows.shape} and {cols.shape}")
        if rows.dtype.kind not in "iu" or cols.dtype.kind not in "iu":
            raise TypeError("rows and cols must hold integers")
        if rows.size and (rows.min() < 0 or rows.max() >= L.shape[0]):
            raise ValueError(f"rows must lie in [0, {L.shape[0]})")
        if cols.size and (cols.min() < 0 or cols.max() >= R.shape[0]):
            raise ValueError(f"cols must lie in [0, {R.shape[0]})")
        return lowrank_entries(L, R, rows, cols)

    def __reduce__(self):
        return (_rebuild, (type(self), dict(self), self._lowrank))

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__

    def __dir__(self):
        return list(self.keys())

    def __repr__(self):
        if not self:
            return "SolveResult()"
        keys = ["method", "success", "status", "stop_reason", "message", "nit", "nfev", "fun",
                "residual_norm", "effective_rank", "time"]
        width = max(map(len, keys))
        lines = []
        for k in keys:
            if k in self:
                v = self[k]
                v = f"{v:.6g}" if isinstance(v, float) else repr(v)
                lines.append(f"{k.rjust(width)}: {v}")
        if self._lowrank is not None and not dict.__contains__(self, "x"):
            shape = (self._lowrank[0].shape[0], self._lowrank[1].shape[0])
            lines.append(f"{'x'.rjust(width)}: array of shape {shape} (formed when read)")
        else:
            lines.append(f"{'x'.rjust(width)}: array of shape {np.shape(self.get('x'))}")
        lines.append(f"{'factors'.rjust(width)}: {sorted(self.get('factors', {}))}")
        lines.append(f"{'history'.rjust(width)}: {sorted(self.get('history', {}))}")
        return "\n".join(lines)

    @classmethod
    def finished(cls, stop_reason, **fields):
        """A final result: ``status``, ``success`` and ``message`` follow from ``stop_reason``."""
        status, success, message = STOP_REASONS[stop_reason]
        return cls(status=status, success=success, message=message, stop_reason=stop_reason,
                   **fields)


def _rebuild(cls, items, lowrank):
    out = cls(items)
    if lowrank is not None:
        out.set_lowrank(*lowrank)
    return out
