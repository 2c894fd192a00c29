"""Bit-for-bit regression check of the solvers: a recorded set of small solves (every method and
WN variant, symmetric and rectangular, every operator family, both backends ``wn.solve`` and
``wn.reference.solve``), ~30 iterations each, a few seconds in all.

    python bench/check_bit_identity.py --record /tmp/base.npz    # at the commit to keep
    python bench/check_bit_identity.py --check /tmp/base.npz     # after a change: exit 1 on
                                                                 # any array not array_equal

A restructuring that claims "no change of behaviour" must pass ``--check`` against a recording
made before it: every factor, every history column, ``nit``, ``nfev`` and the messages compared
with ``np.array_equal`` (NaN equal to NaN).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import wnsense_native as wn

D, D2, R_TRUE, RANK, ITERS = 10, 8, 2, 3, 30


def _families():
    """name -> (operator, ground truth); small problems, fixed seeds."""
    Zs = wn.low_rank_target(D, R_TRUE, kappa=3, rng=0)
    gen = np.random.default_rng(1)
    Zr = gen.standard_normal((D, R_TRUE)) @ gen.standard_normal((R_TRUE, D2))
    fams = {
        "dense_sym": (wn.gaussian_sensing(D, 8 * D * R_TRUE, rng=2), Zs),
        "dense_rect": (wn.gaussian_sensing(D, 8 * (D + D2) * R_TRUE, d2=D2, rng=3), Zr),
        "packed32_sym": (wn.gaussian_sensing(D, 8 * D * R_TRUE, dtype="float32", packed=True,
                                             rng=4), Zs),
        "entries_sym": (wn.entry_sampling(D, 70, rng=5), Zs),
        "entries_rect": (wn.entry_sampling(D, 60, d2=D2, rng=6), Zr),
        "rank_one_sym": (wn.rank_one_sensing(D, 8 * D * R_TRUE, rng=7), Zs),
        "identity_sym": (wn.identity_sensing(D), Zs),
        "identity_rect": (wn.identity_sensing(D, d2=D2), Zr),
    }
    rows, cols = np.nonzero(np.random.default_rng(8).random((D, D2)) < 0.6)
    fams["completion_rect"] = (wn.completion_sensing(rows, cols, (D, D2)), Zr)
    return fams


# (label, method, options); a method the family does not support is recorded as its error
METHODS = [
    ("wn_default", "wn_rgd", {}),
    ("wn_lbfgs", "wn_rgd", {"variant": "lbfgs"}),
    ("wn_paper", "wn_rgd", {"variant": "paper"}),
    ("wn_paper_qr", "wn_rgd", {"variant": "paper", "retraction": "qr"}),
    ("wn_paper_cayley_auto", "wn_rgd", {"variant": "paper", "retraction": "cayley",
                                        "mu": "auto"}),
    ("wn_precond", "wn_rgd", {"variant": "preconditioned"}),
    ("wn_precond_flag", "wn_rgd", {"preconditioned": True}),
    ("wn_penalty", "wn_rgd", {"variant": "preconditioned", "penalty": 1e-3}),
    ("gd", "gd", {"init_scale": 1e-2}),
    ("precgd", "precgd", {}),
    ("scaledgd", "scaledgd", {}),
    ("column_wn", "column_wn", {"init_scale": 1e-2}),
]
EXTRA = [  # diagnostics (the model gradients and JVPs), a constant step, validation
    ("dense_sym", "wn_diag", "wn_rgd", {"variant": "paper", "diagnostics": ("hessian",
                                                                            "theta_svals")}),
    ("dense_rect", "gd_diag", "gd", {"diagnostics": "hessian", "imbalanced": True}),
    ("dense_sym", "colwn_diag", "column_wn", {"diagnostics": "hessian"}),
    ("dense_sym", "gd_const", "gd", {"step_size": 0.05}),
]


def _run(solve, op, Z, method, options, key, out):
    y = op.forward(Z)
    opts = dict(options)
    try:
        res = solve(op, y, RANK, method=method, max_iter=ITERS, tol=1e-14, rng=11,
                    x_true=Z, **opts)
    except Exception as exc:  # noqa: BLE001  (the error is part of the behaviour recorded)
        out[f"{key}|error"] = np.array(f"{type(exc).__name__}: {exc}")
        return
    for k, v in res.factors.items():
        out[f"{key}|factor|{k}"] = np.asarray(v)
    for k, v in res.history.items():
        if k == "time":      # wall clock: not part of the behaviour
            continue
        out[f"{key}|history|{k}"] = np.asarray(v)
    out[f"{key}|counts"] = np.array([res.nit, res.nfev, res.status])
    out[f"{key}|message"] = np.array(f"{res.stop_reason}|{res.message}")


def run_all() -> dict:
    out = {}
    fams = _families()
    backends = {"native": wn.solve, "reference": wn.reference.solve}
    for bname, solve in backends.items():
        for fname, (op, Z) in fams.items():
            for label, method, options in METHODS:
                _run(solve, op, Z, method, options, f"{bname}|{fname}|{label}", out)
            if op.symmetric and fname in ("dense_sym", "identity_sym"):
                _run(solve, op, Z, "snn", {"widths": [2, 2], "step_size": 1e-2},
                     f"{bname}|{fname}|snn", out)
        for fname, label, method, options in EXTRA:
            op, Z = fams[fname]
            opts = dict(options)
            _run(solve, op, Z, method, opts, f"{bname}|{fname}|{label}", out)
        # held-out entries: the validation path and the best-iterate return
        op, Z = fams["completion_rect"]
        rows, cols = np.nonzero(np.random.default_rng(9).random((D, D2)) < 0.3)
        val = wn.completion_sensing(rows, cols, (D, D2))
        _run(lambda *a, **k: solve(*a, validation=(val, val.forward(Z)), patience=3, **k),
             op, Z, "wn_rgd", {}, f"{bname}|completion_rect|validation", out)
        if bname == "native":   # wn.complete: its own default options (no reference twin)
            Zc = np.random.default_rng(10).standard_normal((D, R_TRUE)) @ \
                np.random.default_rng(11).standard_normal((R_TRUE, D2))
            X = np.where(np.random.default_rng(12).random((D, D2)) < 0.6, Zc, np.nan)
            for label, opts in [("plain", {}), ("penalty", {"penalty": 1e-3}),
                                ("paper", {"variant": "paper"}), ("val", {
                                    "validation_fraction": 0.2})]:
                def complete(op, y, rank, *, method, x_true, **kw):
                    completed, res = wn.complete(X, rank, return_result=True, **kw, **opts)
                    return res
                _run(complete, *fams["completion_rect"], "wn_rgd", {},
                     f"complete|{label}", out)
    return out


def compare(base: dict, new: dict) -> list[str]:
    bad = []
    for k in sorted(base):
        if k not in new:
            bad.append(f"missing: {k}")
        elif not np.array_equal(base[k], new[k], equal_nan=base[k].dtype.kind == "f"):
            bad.append(f"differs: {k}")
    for k in sorted(set(new) - set(base)):
        bad.append(f"new: {k}")
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", metavar="FILE.npz")
    g.add_argument("--check", metavar="FILE.npz")
    args = ap.parse_args(argv)
    out = run_all()
    if args.record:
        np.savez(args.record, **out)
        print(f"recorded {len(out)} arrays to {args.record}")
        return 0
    with np.load(args.check) as f:
        base = {k: f[k] for k in f.files}
    bad = compare(base, out)
    for line in bad:
        print(line)
    print(f"{len(base) - len(bad)} of {len(base)} arrays identical; {len(bad)} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
