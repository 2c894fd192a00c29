"""Spectral Neural Network (SNN; Chu, Ghosh, Lam, Mukherjee, arXiv 2402.17595), native path.
Read against SPEC section 3.2:

    parameters   U_k, V_k (d x d, k = 1..d_1),  alpha^(l) (d_l x d_{l+1}, l = 1..L, d_{L+1} = 1)
    X^(0)_k = U_k V_k^T
    X^(l)_j = sum_k alpha^(l)_{kj} Gamma(X^(l-1)_k),  Gamma(Q) = P tanh(Sigma) R^T (Q = P Sigma R^T)
    X       = X^(L)_1                                   (the network output, ``res.x``)
    loss    = 1/(2m) sum_i (<A_i, X> - y_i)^2 = ||A(X) - y||^2 / (2m)
    plain gradient descent on all parameters at once.

**Loss convention.** The SNN defines its own loss, ``||A(X) - y||^2 / (2m)``, not the library's
``1/4 ||r||^2`` (symmetric) / ``1/2 ||r||^2`` (rectangular): ``res.fun`` and ``history["loss"]``
are this loss. The operator decides the family, as for every method:

- rectangular (square ``d x d``) operator: ``A(X)_i = <A_i, X>`` with the stored ``A_i``, gradient
  ``dloss/dX = A*(r) / m`` (the network output is a general matrix);
- symmetric operator: only ``sym(A_i)`` counts (the symmetric problem family,
  ``wn.dense_sensing(M, symmetric=True)``): ``A(X)_i = <sym(A_i), X> = <A_i, sym(X)>``, gradient
  ``sym(A*(r)) / m``. With ``U_k = V_k`` at the start the network then stays symmetric: the
  backward pass of a symmetric gradient at symmetric layers is symmetric, so ``U_k = V_k``
  throughout (to rounding).

What the SNN recovers depends on the target and the family; each statement below names both.
Measured with widths ``[2, 2, 2, 2]``, the default start, constant step 1e-2 and 10,001
iterations on 75 measurements with i.i.d. N(0, 10^2) entries plus N(0, 0.01^2) noise; error
``||X - X*||_F / ||X*||_F``:

- the SNN paper's Fig. 2 target (``X* = 100 U U^T / ||100 U U^T||_*``, ``U`` 10 x 6 i.i.d.
  U(0, 1): rank 6, nuclear norm 1, nearly rank 1, effective rank about 2.2) on the rectangular
  family (raw ``<A_i, X>``, the paper's mis-specified setting): the SNN ends at 0.02-0.11
  (20 instances; 0.053 in ``reproduce snn``), plain GD on ``X`` from 0 and the min-norm
  interpolant at 0.39-0.63, while all of them fit the training data
  (``python -m wnsense_native reproduce snn``; tests/test_snn.py);
- a rank-6 PSD target with a flat spectrum (eigenvalues 1/6) on the rectangular family: the SNN
  ends at 0.60-0.67 (3 instances), no better than the min-norm interpolant (0.42-0.59): 75
  measurements are fewer than the 84 degrees of freedom of a rank-6 10 x 10 matrix, and the
  interpolant of least nuclear norm is not the target;
- either target on the symmetric family: 75 >= 55 = d(d+1)/2 measurements, so least squares over
  symmetric ``X`` alone determines ``X*`` up to the noise (error 2e-3 on the paper's target,
  where the SNN reaches 1e-3): a low error there needs no implicit bias. With fewer
  measurements than 55 (a rank-3 target, m = 40) the SNN recovers where symmetric least squares
  does not (tests/test_snn.py).

``rank`` is accepted for the common signature and ignored: the network's size is set by the option
``widths = [d_1, ..., d_L]`` (default ``[2, 2, 2, 2]``: two (U_k, V_k) pairs, four mixing layers).

Factors (``res.factors``, also the keys of a warm start ``init``): ``"U"`` and ``"V"`` of shape
``(d_1, d, d)`` (``U[k]`` is ``U_k``), and ``"alpha_1"``, ..., ``"alpha_L"`` with ``alpha_l`` of
shape ``(d_l, d_{l+1})`` (the last one ``(d_L, 1)``).

Start (:func:`snn_start`, shared with the reference): ``U_k = V_k = init_scale (I + init_jitter
diag(g_k))`` with ``g`` i.i.d. N(0, 1) (one jitter, so that ``X^(0)_k`` starts symmetric positive
definite), ``alpha`` i.i.d. U(0, 1). Draw order: the jitters ``(d_1, d)``, then
``alpha_1, ..., alpha_L``. Defaults ``init_scale = 1e-4`` (SPEC) and ``init_jitter = 1e-3``
(relative; it separates the singular values and the branches k). This is the paper's "identity"
initialization (the authors' notebook: ``U_k = V_k = 1e-4 I``, plus independent 1e-6 diagonal
jitters on ``U_k`` and ``V_k``) up to the jitter.

Step size: a number is the paper's constant learning rate (plain GD); ``step_size=None`` is the
library's Armijo backtracking along the full parameter gradient (first trial ``m / ||y||^2``).

Native work per iteration: one forward pass (the SVDs and spectral activations, C++), one fused
residual + adjoint pass over the sensing data at ``X`` (``problem.residual(X, I, right=I)``:
the network output is itself d x d, so its gradient ``A*(r)`` is the one dense product), one backward
pass (C++): the accepted trial's residual and forward tape give the next gradient.

History extras, every iteration: ``nuclear_norm`` (``||X||_*``) and ``effective_rank``
(``exp(H(sigma / sum sigma))``, the exponential of the entropy of the normalized spectrum of X).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _core
from .._validation import check_float
from ._init import user_factors
from ._method import Method
from ._problem import sym

DEFAULT_WIDTHS = (2, 2, 2, 2)


# -- pieces shared with the reference implementation -------------------------------------------
def check_widths(widths) -> tuple:
    """``widths = [d_1, ..., d_L]``: a non-empty sequence of positive integers."""
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__"):
        raise TypeError(f"widths must be a list of positive integers, got {type(widths).__name__}")
    out = []
    for w in widths:
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, numbers.Integral):
            raise TypeError(f"widths must hold integers, got {w!r}")
        if w < 1:
            raise ValueError(f"widths must hold positive integers, got {list(widths)}")
        out.append(int(w))
    if not out:
        raise ValueError("widths must not be empty (at least one mixing layer)")
    return tuple(out)


def snn_factor_shapes(d: int, widths) -> dict:
    """Name -> shape of the SNN parameters (the keys of ``res.factors``)."""
    shapes = {"U": (widths[0], d, d), "V": (widths[0], d, d)}
    dims = list(widths) + [1]
    for l in range(len(widths)):
        shapes[f"alpha_{l + 1}"] = (dims[l], dims[l + 1])
    return shapes


def snn_start(gen: np.random.Generator, d: int, widths, init_scale: float,
              init_jitter: float) -> dict:
    """The SNN's starting parameters (SPEC 3.2), drawn from ``gen`` in a fixed order: the
    jitters ``g`` (``(d_1, d)`` i.i.d. N(0, 1)), then ``alpha_1, ..., alpha_L`` (i.i.d. U(0, 1)).
    ``U_k = V_k = init_scale (I + init_jitter diag(g_k))``."""
    d1 = widths[0]
    eye = np.eye(d)
    jitter = gen.standard_normal((d1, d))
    U = init_scale * (eye + init_jitter * jitter[:, :, None] * eye)
    factors = {"U": U, "V": U.copy()}
    for name, shape in snn_factor_shapes(d, widths).items():
        if name.startswith("alpha_"):
            factors[name] = gen.uniform(0.0, 1.0, shape)
    return factors


def snn_options(problem, widths, init_scale, init_jitter):
    """Validate the SNN's options and problem (square d x d)."""
    if problem.d1 != problem.d2:
        raise ValueError(f"method='snn' needs square d x d matrices, got {problem.d1} x "
                         f"{problem.d2}")
    widths = check_widths(widths)
    init_scale = check_float("init_scale", init_scale, minimum=0.0, strict_minimum=True)
    init_jitter = check_float("init_jitter", init_jitter, minimum=0.0)
    return widths, init_scale, init_jitter


def spectral_diagnostics(X: np.ndarray) -> dict:
    """``nuclear_norm`` and ``effective_rank = exp(H(sigma / sum sigma))`` of ``X`` (effective
    rank 0 for X = 0)."""
    s = np.linalg.svd(X, compute_uv=False)
    nuc = float(s.sum())
    if not np.isfinite(nuc) or nuc <= 0:
        return {"nuclear_norm": nuc, "effective_rank": 0.0 if nuc == 0 else float("nan")}
    p = s[s > 0] / nuc
    return {"nuclear_norm": nuc, "effective_rank": float(np.exp(-np.sum(p * np.log(p))))}


class SNNSetup(Method):
    """Options and start of the SNN, shared by the native and the reference method: ``widths``,
    ``init_scale``, ``init_jitter`` (:func:`snn_options`); :func:`snn_start`, or a warm start
    with the keys and shapes of :func:`snn_factor_shapes`. Sets ``widths``, ``d`` and ``_eye``
    (the right factor of the residual pass at ``X``)."""

    name = "snn"
    OPTIONS = {"widths": DEFAULT_WIDTHS, "init_scale": 1e-4, "init_jitter": 1e-3}

    @classmethod
    def factor_shapes(cls, problem, rank, widths=DEFAULT_WIDTHS):
        return snn_factor_shapes(problem.d1, check_widths(widths))

    def _setup(self, problem, rank, gen, init, *, widths, init_scale, init_jitter):
        self.widths, init_scale, init_jitter = snn_options(problem, widths, init_scale,
                                                           init_jitter)
        self.d = problem.d1
        self._eye = np.eye(self.d)
        if init is None:
            return snn_start(gen, self.d, self.widths, init_scale, init_jitter)
        return user_factors(init, snn_factor_shapes(self.d, self.widths))


class SNNBase(SNNSetup):
    """The GD loop shared by the native and reference SNN; subclasses provide ``_forward(params)
    -> (X, tape)`` and ``_backward(tape, GX) -> grads`` (dicts keyed like the factors)."""

    def _begin(self, params):
        self._adopt(*self._evaluate(params)[1])

    # -- state ----------------------------------------------------------------------------------
    def _evaluate(self, params):
        """Forward pass and one residual pass at ``params``: (loss, payload)."""
        X, tape = self._forward(params)
        # the network's output is a dense d x d matrix, so its gradient is one: the pass at
        # Z = X I^T with the product A*(r) @ I (symmetric family: S @ I = sym(A*(r)), and only
        # sym(A_i) counts: <sym(A_i), X> = <A_i, sym(X)>)
        Z = sym(X) if self.problem.symmetric else X
        res = self.problem.residual(Z, self._eye, right=self._eye)
        return res.sumsq / (2 * self.problem.m), (params, X, tape, res.sumsq, res.AV)

    def _adopt(self, params, X, tape, sumsq, G):
        self.params, self.X, self.sumsq = params, X, sumsq
        self.loss = sumsq / (2 * self.problem.m)
        self.grads = self._backward(tape, G / self.problem.m)  # dL/dX = A*(r) / m
        self.grad_norm = float(np.sqrt(sum(np.sum(g * g) for g in self.grads.values())))
        self._diag = spectral_diagnostics(X) if np.all(np.isfinite(X)) else {
            "nuclear_norm": float("nan"), "effective_rank": float("nan")}

    @property
    def factors(self):
        return self.params

    def lowrank(self):
        return self.X, self._eye

    def extra_history(self):
        return dict(self._diag)

    # -- one iteration ----------------------------------------------------------------------------
    def step(self):
        def trial(eta):
            return self._evaluate({k: v - eta * self.grads[k] for k, v in self.params.items()})

        hint = self.problem.m / max(self.problem.y_norm ** 2, 1e-300)
        eta, _, payload, ok = self.step_rule.search(self.loss, self.grad_norm ** 2, trial, hint)
        self.step_size = eta
        self._adopt(*payload)
        return ok


class SNN(SNNBase):
    """Spectral neural network, native forward / backward (cpp/spectral.cpp). Options ``widths``
    (``[d_1, ..., d_L]``, default ``[2, 2, 2, 2]``), ``init_scale`` (1e-4), ``init_jitter``
    (1e-3). See the module docstring for the loss convention and the factor layout."""

    def _alphas(self, params):
        return [params[f"alpha_{l + 1}"] for l in range(len(self.widths))]

    def _forward(self, params):
        n = self.widths[0] * self.d
        tape = _core.snn_forward(params["U"].reshape(n, self.d), params["V"].reshape(n, self.d),
                                 self._alphas(params))
        return tape.x, tape

    def _backward(self, tape, GX):
        gU, gV, galphas = _core.snn_backward(tape, np.ascontiguousarray(GX))
        shape = (self.widths[0], self.d, self.d)
        grads = {"U": gU.reshape(shape), "V": gV.reshape(shape)}
        for l, ga in enumerate(galphas):
            grads[f"alpha_{l + 1}"] = ga
        return grads


def snn_for(symmetric: bool):
    return SNN
