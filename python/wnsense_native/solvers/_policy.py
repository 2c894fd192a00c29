"""The library's default options, decided in one place from what an operator states about itself
(``op.observes_entries``, ``op.unit_scale``, ``op.symmetric``); operators hold facts, not solver
policy.

Today's one rule: on observed entries the WN family defaults to the paper's direction with the
learned magnitude step (``variant="paper", mu="auto"``). Overparameterized completion has many
rank-``r`` interpolants; that variant keeps the implicit bias towards the low-rank one (at
1e5 x 1e5, m = 1e7: held-out error 1.6e-8 in 105 iterations), where WN-LBFGS stalls (0.31 after
300). :func:`wnsense_native.complete` (``imputation=True``) applies it also when the caller names
the variant, and with a ``penalty`` takes the preconditioned direction (``S X`` moves ``X`` while
``Theta = 0``, which a penalized start needs).
"""
from __future__ import annotations

# the names of the WN family in the registry
WN_METHODS = ("wn", "wn_rgd")


def preferred_options(op, method, options=None, *, imputation=False) -> dict:
    """The options the library prefers for ``method`` on ``op``, under the caller's ``options``
    (which win). ``imputation``: the rule of :func:`~wnsense_native.complete`."""
    if method not in WN_METHODS or not getattr(op, "observes_entries", False):
        return {}
    if not imputation:
        return {"variant": "paper", "mu": "auto"}
    options = options or {}
    if "preconditioned" in options:
        return {}
    variant = options.get("variant", "preconditioned" if options.get("penalty", 0.0) else "paper")
    return {"variant": variant, "mu": "auto"} if variant == "paper" else {"variant": variant}
