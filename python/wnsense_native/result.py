"""The result of a solve: a ``scipy.optimize.OptimizeResult``-compatible dict with attribute access."""
from __future__ import annotations

import numpy as np

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
}


class SolveResult(dict):
    """Result of :func:`wnsense_native.solve`, compatible with ``scipy.optimize.OptimizeResult``.

    Fields: ``x`` (the recovered ``d1 x d2`` matrix), ``fun`` (final loss), ``nit``, ``nfev``
    (residual evaluations, each one pass over dense sensing data), ``success``, ``status``,
    ``message``, ``stop_reason`` (one of :data:`STOP_REASONS`), ``factors`` (dict of factor
    arrays), ``history`` (dict of 1-D arrays, entry 0 is the starting point), ``time`` (seconds),
    ``method``, ``residual_norm`` (``||A(x) - y|| / ||y||``).
    """

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
                "residual_norm", "time"]
        width = max(map(len, keys))
        lines = []
        for k in keys:
            if k in self:
                v = self[k]
                v = f"{v:.6g}" if isinstance(v, float) else repr(v)
                lines.append(f"{k.rjust(width)}: {v}")
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
