"""The library's default options, decided in one place from what an operator states about itself
(``op.observes_entries``, ``op.unit_scale``, ``op.symmetric``); operators hold facts, not solver
policy.

The rules:

* :func:`wnsense_native.solve` on observed entries: WN-LBFGS (whose gain probe makes it work at
  unit scale) with ``truncate=True``. Overparameterized completion has many rank-``r``
  interpolants: truncation runs at the rank ``Theta`` reveals and grows it back when the run
  stalls (:mod:`.rank_adapt`). Measured: unit-scale entries, d = 80 symmetric, 30-90 % sampled,
  kappa 1-100, r = r*, 2r*: 24-50 passes to 1e-10, where the paper's WN-RGD with ``mu="auto"``
  (the previous default) reached 1e-2..1e-1 in 2100 passes on 9 of 12 rows. The paper's
  variant is one option away.
* :func:`wnsense_native.complete` (``imputation=True``, noisy data, often a ``penalty``): the
  paper's direction with the learned magnitude step, also when the caller names the variant;
  with a ``penalty`` the preconditioned direction (``S X`` moves ``X`` while ``Theta = 0``,
  which a penalized start needs).
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
        return {"variant": "lbfgs", "truncate": True}
    options = options or {}
    if "preconditioned" in options:
        return {}
    variant = options.get("variant", "preconditioned" if options.get("penalty", 0.0) else "paper")
    return {"variant": variant, "mu": "auto"} if variant == "paper" else {"variant": variant}
