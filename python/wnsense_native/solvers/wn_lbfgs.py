"""WN-LBFGS: weight-normalized Riemannian L-BFGS in the Gauss-Newton metric, the library's default
(``method="wn_rgd"``, ``variant="lbfgs"``). A project addition, not from the paper: the paper's
Algorithm 1 is ``variant="paper"`` (:mod:`.wn_rgd`). Native path; read against the formulas:

Symmetric, ``Z = X Theta X^T``, ``X`` on ``St(d, r)``, ``Theta`` symmetric, ``f = 1/4 ||A(Z) - y||^2``.

* Tangent vectors ``v = (K, zeta)``, ``X^T K = 0``, ``zeta`` symmetric, standing for
  ``DZ[v] = K X^T + X K^T + X zeta X^T``; metric ``<v, w> = <K_v, K_w> + 1/2 <zeta_v, zeta_w>``
  (``= 1/2 <DZ[v], DZ[w]>_F``). Under RIP the Gauss-Newton Hessian of ``f`` is then close to the
  identity whatever the condition number of ``Z*``: the metric removes kappa from the rate
  (the paper's direction ``S X Theta`` is scaled by ``Theta^2``, see SOLVER_NOTES).
* Gradient from one pass at ``(X, Theta)`` with the product ``S X``:
  ``g = ((I - X X^T) S X, D)``, ``D = sym(X^T S X)``.
* Damped Nystrom retraction along ``v`` with step ``t``: ``Theta_t = Theta + t zeta = W diag(w)
  W^T``, ``xi = t K W diag(1 / (|w| + lam)) W^T``, ``X+`` the polar factor of ``X + xi`` (``(X + xi)(I +
  xi^T xi)^{-1/2}`` in exact arithmetic; computed from the Gram matrix of ``X + xi``),
  ``Theta+ = N^{-1} Theta_t N^{-1}``, so ``Z+ = (X + xi) Theta_t (X + xi)^T``; ``lam = c ||r|| / 2``
  (``c = damping``, 1 by default: the units of sigma, as PrecGD's ``sqrt(f)``). The |w| (not w) is
  essential at exact rank (a signed inverse stalls at the rank-(r-1) saddle). The Newton step
  ``v = -g, t = 1`` is the SOLVER_NOTES direction ``(I - X X^T) S X (|Theta| + c sqrt(f))^{-1}``
  evaluated at the updated magnitude ``Theta - X^T S X`` (the ``mu = 2`` magnitude step) and taken
  jointly with it from one residual: one pass per iteration. In the population case it is the
  exact Nystrom update ``Z* X (X^T Z* X)^{-1} X^T Z*``.
* Directions: L-BFGS (memory 5) in that metric, vector transport by projection of ``DZ[v]`` onto
  the tangent space at the new point; pairs kept only when ``<s, y> > 1e-10 <s, s>``; an empty
  memory (the first step, after a reset) gives ``-g / q`` with ``q`` the last observed curvature
  ratio along the step (1 at first: the Gauss-Newton scale under RIP).
* Step rule: :class:`~._steps.QuadraticBacktracking` (first trial ``t = 1``); when it fails with a
  non-empty memory, the memory is dropped and the scaled gradient tried once more; when that
  fails too, its magnitude part alone (whose slope along the retraction is exact).
* Start: ``Theta_0 = 0``, ``X_0`` uniform on the Stiefel manifold; the first pass (at ``Z = 0``)
  returns ``S X_0 = -A*(y) X_0`` and ``power_steps`` (1) block power steps
  ``X <- orth(A*(y) X)`` follow, each a pass at ``Z = 0`` (a sketched spectral start: it saves
  3-5 passes). A warm start ``init={"X", "Theta"}`` skips them.
* Gain: observed entries at unit scale have ``A*A ~ p Id`` (``p = m / (d1 d2)``), not ``~ Id``.
  After the power steps one pass with zero measurements at ``Z1 = X B X^T``, ``B = X^T A*(y) X``,
  measures ``p = ||A(Z1)||^2 / ||Z1||_F^2`` (``gain``) and, from the same pass, moves to the
  least-squares magnitude ``Theta = B / p`` (the loss along ``alpha B`` is quadratic). The damping
  is ``lam = c ||r|| / (2 sqrt(p))`` (units of sigma), restarts are ``-g / q`` with ``q = p`` at
  first, and the pair test is ``<s, y> > 1e-10 p <s, s>``: the iteration is that of the
  RIP-normalized problem, invariant to ``A -> c A, y -> c y``. ``gain=1.0`` skips the probe
  (the iteration before the gain was measured).

Rectangular, ``Z = X_L Theta X_R^T``, ``Theta`` general, ``f = 1/2 ||A(Z) - y||^2``: tangent
``(K_L, K_R, zeta)``, Frobenius metric (``= ||DZ||_F^2``), gradient ``((I - X_L X_L^T) E X_R,
(I - X_R X_R^T) E^T X_L, X_L^T E X_R)``, retraction through the SVD ``Theta_t = U diag(s) V^T``:
``xi_L = t K_L V diag(1/(s+lam)) U^T``, ``xi_R = t K_R U diag(1/(s+lam)) V^T``,
``Theta+ = N_L^{-1} Theta_t N_R^{-1}``; the start's power step uses ``A*(y) X_R`` and
``A*(y)^T X_L``.

Cost: one pass per iteration when the first trial is accepted (each pass asks for ``S X``, resp.
``E X_R`` and ``E^T X_L``, nothing else), plus ``2 + power_steps`` at the start (``1 +
power_steps`` with a fixed ``gain``; the probe's pass costs 1-2 passes on the dense Gaussian grid
of bench_time_to_solution, 30-43 instead of 28-44). The small algebra of an iteration (the two-loop recursion, the retraction, the transport) is a few native calls
(cpp/wn_geometry.cpp); :mod:`wnsense_native.reference.wn_lbfgs` writes it out in numpy.

Options: ``memory`` (5), ``damping`` (``c``, 1.0), ``power_steps`` (1), ``gain`` (``"auto"``: the
probe above; a positive number: taken as the operator's gain, no probe), ``truncate`` (``"auto"``: on
for operators whose measurements are single entries; True: run at the rank Theta reveals and grow
it back when the run stalls, :mod:`.rank_adapt`), and the shared
``diagnostics`` / ``hessian_every``. ``history["grad_norm"]`` is the gradient's norm in the metric.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._validation import check_float, check_int
from ._init import orthonormal_basis, stiefel_start, user_factors
from ._method import Method
from ._problem import sym
from ._steps import QuadraticBacktracking
from .diagnostics import DIAGNOSTIC_OPTIONS, make_diagnostics, model_for
from .rank_adapt import RankAdaptation, complete_basis, pad_magnitude

# accept an L-BFGS pair only when <s, y> > PAIR_TOL <s, s> (curvature condition)
PAIR_TOL = 1e-10
# the curvature ratio that scales restarts is kept in [CURVATURE_MIN, CURVATURE_MAX]: wide,
# because operators far from isometric (observed entries at unit scale: ratio m / (d1 d2)) are
# legitimate, but finite
CURVATURE_MIN, CURVATURE_MAX = 1e-8, 1e8
# a direction whose predicted decrease is below this fraction of the loss is rounding noise
STALL_DECREASE = 1e-13
# below this fraction of ||y||^2 the gain probe's residual norm (a difference) is recomputed
PROBE_CANCELLATION = 1e-6


def _is_auto(value):
    return isinstance(value, str) and value == "auto"


def _combine(res0, normal, alpha, sumsq):
    """The pass at ``Z0 + alpha Z1`` from the pass at ``Z0`` (``res0``, with measurements) and
    the zero-measurement pass at ``Z1`` (``normal``): the products are affine in ``alpha``."""
    def mix(a, b):
        return None if a is None else a + alpha * b
    return type(res0)(None, sumsq, mix(res0.AV, normal.AV), mix(res0.AtU, normal.AtU))


class NativeGeometry:
    """The iteration's small algebra in the native core (packed tangent vectors)."""

    direction = staticmethod(_core.lbfgs_direction)
    inner = staticmethod(_core.tangent_inner)
    gradient_sym = staticmethod(_core.wn_gradient_sym)
    gradient_rect = staticmethod(_core.wn_gradient_rect)
    retract_sym = staticmethod(_core.nystrom_retract_sym)
    retract_rect = staticmethod(_core.nystrom_retract_rect)

    @staticmethod
    def transport_sym(X, X_new, V):      # V is the iteration's own scratch: transported in place
        return _core.wn_transport_sym(X, X_new, V, in_place=True)

    @staticmethod
    def transport_rect(XL, XR, XL_new, XR_new, V):
        return _core.wn_transport_rect(XL, XR, XL_new, XR_new, V, in_place=True)


class _LBFGSCore(RankAdaptation, Method):
    """The WN-LBFGS iteration, shared by both families (mixins below: the model, its pass, start,
    gradient, retraction and transport in packed form) and both backends (``geometry``)."""

    name = "wn_rgd"
    label = ("WN-LBFGS (weight-normalized Riemannian L-BFGS, Gauss-Newton metric; "
             "project addition, not the paper's Algorithm 1)")
    OPTIONS = {"variant": "lbfgs", "memory": 5, "damping": 1.0, "power_steps": 1,
               "gain": "auto", "truncate": "auto", **DIAGNOSTIC_OPTIONS}
    default_step_rule = QuadraticBacktracking
    geometry = NativeGeometry
    theta_weight = 1.0

    def _setup(self, problem, rank, gen, init, *, variant, memory, damping, power_steps,
               gain="auto", truncate="auto", diagnostics=(), hessian_every=1):
        shapes = self.factor_shapes(problem, rank)
        self.diagnostics = make_diagnostics(diagnostics, hessian_every, shapes)
        self.memory = check_int("memory", memory, minimum=0, maximum=100)
        self.damping = check_float("damping", damping, minimum=0.0)
        self.power_steps = check_int("power_steps", power_steps, minimum=0, maximum=20)
        self.gain = None if _is_auto(gain) else check_float("gain", gain, minimum=0.0,
                                                             strict_minimum=True)
        if _is_auto(truncate):
            # on for operators of single (weighted) entries (a fact the operator states).
            # Measured (weighted single entries, sparse_sensing, rectangular, kappa 10, r* = 3,
            # r = 6): 60 x 50 at 90 %: 41 passes to error 1.4e-10 with truncation, 2.5e-2 at the
            # residual tol without; 100 x 80 at 30 %: 75 passes to 1.7e-10, 0.22 without
            truncate = bool(getattr(problem.op, "observes_entries", False))
        elif not isinstance(truncate, (bool, np.bool_)):
            raise TypeError(f"truncate must be 'auto' or a bool, got {truncate!r}")
        self._init_rank_adaptation(truncate, rank, gen)
        model = model_for(shapes)
        if init is not None:
            start = user_factors(init, shapes, orthonormal=model.stiefel)
            for k in model.symmetric_factors:
                start[k] = sym(start[k])
            self.power_steps = 0          # a warm start is taken as given
            self.warm = True
            return start
        self.warm = False
        return self._draw(gen, problem, rank)

    def step_hint(self):
        return 1.0

    # -- the packed tangent metric ---------------------------------------------------------
    def _inner(self, a, b):
        return self.geometry.inner(a, b, self.theta_row, self.theta_weight)

    def _adopt(self, point, res):
        self.point, self.sumsq = point, res.sumsq
        self.loss = self.problem.loss(res.sumsq)
        self.g = self._gradient(point, res)
        self.grad_norm = math.sqrt(max(self._inner(self.g, self.g), 0.0))

    def _begin(self, start):
        point = self._point(start)
        res = self._pass(point)
        for _ in range(self.power_steps):       # X <- orth(A*(y) X) at Z = 0 (Theta = 0)
            if np.any(point[1]) or not self._can_power(res):
                break
            point = self._power_step(point, res)
            res = self._pass(point)
        if self.gain is None:
            point, res = self._gain_probe(point, res)
        self.curvature = self.gain       # the Gauss-Newton scale of a restart: A*A ~ gain Id
        self._adopt(point, res)
        n, r = self.g.shape
        self.S = np.empty((0, n, r))
        self.Y = np.empty((0, n, r))

    # -- one iteration -----------------------------------------------------------------------
    def _gain_probe(self, point, res):
        """Estimate the operator's gain ``p = ||A(Z1)||^2 / ||Z1||_F^2`` on a model ``Z1`` in the
        span of ``X`` and set ``self.gain``; returns the (possibly new) iterate and its pass.

        Cold start (``Theta = 0``): ``Z1 = X B X^T`` (resp. ``X_L B X_R^T``) with ``B = X^T
        A*(y) X`` read off the start's pass, and one pass with zero measurements at ``Z1``
        (``||A(Z1)||^2`` and ``A*A(Z1)`` times the factors). The loss along ``alpha B`` is a
        quadratic in ``alpha`` and the residual products are affine in it, so the same pass also
        gives the least-squares magnitude ``alpha* = ||B||^2 / ||A(Z1)||^2 = 1 / p`` and the
        residual products there: the iterate moves to ``Theta = alpha* B`` with no further pass.
        A warm start is taken as given: the pass only measures (at ``Z1 = Z0``, or at ``X B X^T``
        when its ``Theta`` is 0).

        Why: observed entries at unit scale have ``A*A ~ p Id``, ``p = m / (d1 d2)``, not ``~
        Id``; a metric that assumes RIP then mixes a damping ``||r||`` in the units of
        ``sqrt(p) sigma`` with magnitudes ``p sigma`` and the solve stalls (4000 x 4000, m = 4e5,
        r = 5: loss 5.92e5 -> 5.91e5 in 150 iterations, no L-BFGS pair ever accepted). With the
        gain, damping, restarts and pair test are those of the RIP-normalized problem, so the
        iterates are invariant to ``A -> c A, y -> c y`` and ``y -> c y``."""
        self.gain = 1.0
        theta = point[1]
        if np.any(theta):
            bb = float(np.vdot(theta, theta))
            probe, move = point, False
        else:
            B = self._probe_direction(point, res)
            bb = float(np.vdot(B, B))
            if not bb > 0:
                return point, res                   # A*(y) X = 0: nothing to measure
            probe, move = self._with_theta(point, B), not self.warm
        normal = self._normal_pass(probe)
        a = normal.sumsq                             # ||A(Z1)||^2
        if not (a > 0 and math.isfinite(a)):
            return point, res
        self.gain = min(max(a / bb, CURVATURE_MIN), CURVATURE_MAX)
        if not move:                                # a warm start is taken as given
            return point, res
        alpha = bb / a
        point = self._with_theta(point, alpha * B)
        # r(alpha) = alpha A(Z1) - y, <A(Z1), y> = ||B||^2: ||r||^2 = ||y||^2 - alpha ||B||^2,
        # a difference that cancels when the start already fits: then one honest pass
        yy = self.problem.y_norm ** 2
        sumsq = yy - alpha * bb
        if not sumsq > PROBE_CANCELLATION * yy:
            return point, self._pass(point)
        return point, _combine(res, normal, alpha, sumsq)

    def step(self):
        ok = self._lbfgs_step()
        return self._adapt_rank(ok) if self.truncate else ok

    def _lbfgs_step(self):
        # the damping in the units of sigma: ||r|| / sqrt(gain) ~ ||Z - Z*||_F
        lam = self.damping * 0.5 * math.sqrt(self.sumsq / self.gain)
        p, reset = self.geometry.direction(self.g, self.S, self.Y, self.theta_row,
                                           self.theta_weight, self.curvature)
        if reset:
            self._forget()
        outcome = self._search(p, lam)
        if outcome is None and len(self.S) and self.step_rule.safeguarded:
            self._forget()                     # retry once along the scaled gradient
            p = -self.g / self.curvature
            outcome = self._search(p, lam)
        if outcome is None and self.step_rule.safeguarded and np.any(self.point[1]):
            # the magnitude alone: its slope along the retraction is exact, where the direction
            # part moves X by K (|Theta| + lam)^{-1}, whose slope has the sign of Theta's
            # eigenvalues (an indefinite Theta at a poor start: symmetric completion, 150 x 150,
            # 10 % sampled, r = r* = 2, Theta_0 eigenvalues (-0.33, 0.05), truth (1, 0.5): every
            # trial of the joint step rose, the solve stopped at its first iteration)
            p = -self.g / self.curvature
            p[:self.theta_row] = 0.0
            outcome = self._search(p, lam)
        if outcome is None:
            self.step_size = 0.0
            return False                       # no decrease: keep the iterate, stop
        t, loss_new, point, res, slope = outcome
        self.step_size = t
        # the curvature ratio along the step (1 under exact RIP): the scale of the next restart
        q = 2.0 * (loss_new - self.loss + t * slope) / (t * t * self._inner(p, p))
        if math.isfinite(q) and q > 0:
            self.curvature = min(max(q, CURVATURE_MIN), CURVATURE_MAX)
        g_old = self.g
        old_point = self.point
        self._adopt(point, res)
        if not self.memory:
            return True                        # no pairs kept: nothing to transport
        # transport the memory, the step and the old gradient in one call, laid out as
        # [S..., s, Y..., g_old] so that the new memory is two views of the result (each vector
        # is transported on its own: the layout does not change its bits)
        k = len(self.S)
        stack = np.concatenate([self.S, (t * p)[None], self.Y, g_old[None]])
        moved = self._transport(old_point, point, stack)
        s, yv = moved[k], moved[2 * k + 1]
        np.subtract(self.g, yv, out=yv)        # y = g - T(g_old), in place of T(g_old)
        if self._inner(s, yv) > PAIR_TOL * self.gain * self._inner(s, s):
            self.S, self.Y = moved[:k + 1][-self.memory:], moved[k + 1:][-self.memory:]
        else:
            self.S, self.Y = moved[:k], moved[k + 1:2 * k + 1]
        return True

    def _forget(self):
        self.S, self.Y = self.S[:0], self.Y[:0]

    def _search(self, p, lam):
        """The step-size search along the retraction curve: ``(t, loss, point, pass, slope)``
        or None when the loss cannot decrease along ``p``."""
        slope = -self._inner(self.g, p)            # decrease rate, > 0 for a descent direction
        if not slope > STALL_DECREASE * self.loss:
            return None

        def trial(t):
            point = self._retract(self.point, p, t, lam)
            res = self._pass(point)
            return self.problem.loss(res.sumsq), (point, res)

        t, loss, (point, res), ok = self.step_rule.search(self.loss, slope, trial,
                                                          self.step_hint())
        if not ok and self.step_rule.safeguarded:
            return None
        return t, loss, point, res, slope


class WNLBFGSSymmetricMixin:
    """``Z = X Theta X^T``: packed tangent ``[K; zeta]``, metric weight 1/2 on ``zeta``."""

    theta_weight = 0.5

    @classmethod
    def factor_shapes(cls, problem, rank):
        return {"X": (problem.d1, rank), "Theta": (rank, rank)}

    def _draw(self, gen, problem, rank):
        return {"X": stiefel_start(gen, problem.d1, rank), "Theta": np.zeros((rank, rank))}

    def _point(self, start):
        self.theta_row = start["X"].shape[0]
        return (start["X"], start["Theta"])

    def _pass(self, point):
        X, Theta = point
        return self.problem.residual(X @ Theta, X, right=X)          # S X

    def _can_power(self, res):
        return bool(np.any(res.AV))

    def _power_step(self, point, res):
        return (orthonormal_basis(-res.AV), point[1])

    def _probe_direction(self, point, res):       # B = X^T A*(y) X (the pass at Theta = 0)
        return -sym(point[0].T @ res.AV)

    def _with_theta(self, point, theta):
        return (point[0], theta)

    def _normal_pass(self, point):
        X, Theta = point
        return self.problem.normal_products(X @ Theta, X, right=X)

    def _gradient(self, point, res):
        return self.geometry.gradient_sym(point[0], res.AV)

    def _retract(self, point, v, t, lam):
        return self.geometry.retract_sym(point[0], point[1], v, t, lam)

    def _transport(self, old, new, stack):
        return self.geometry.transport_sym(old[0], new[0], stack)

    def _magnitudes(self):
        return np.abs(np.linalg.eigvalsh(self.point[1]))

    def _truncated(self, k):
        X, Theta = self.point
        w, W = np.linalg.eigh(Theta)
        order = np.argsort(-np.abs(w), kind="stable")
        keep, rest = order[:k], order[k:]
        return (np.ascontiguousarray(X @ W[:, keep]), np.diag(w[keep])), (X @ W[:, rest],)

    def _grown(self):
        X, Theta = self.point
        G = self._random_block(X.shape[0], self.search_rank - X.shape[1] + 2)
        u = self._new_direction(X, self.problem.residual(X @ Theta, X, right=G).AV)
        if u is None:
            return None
        point = (np.hstack([X, u]), pad_magnitude(Theta, X.shape[1] + 1))
        return point, self._pass(point)

    @property
    def factors(self):
        X, Theta = self.point
        need = self.search_rank - X.shape[1]
        if need <= 0:
            return {"X": X, "Theta": Theta}
        return {"X": np.hstack([X, complete_basis(X, self.dropped[0], need)]),
                "Theta": pad_magnitude(Theta, self.search_rank)}

    def lowrank(self):
        X, Theta = self.point
        return X @ Theta, X


class WNLBFGSRectangularMixin:
    """``Z = X_L Theta X_R^T``: packed tangent ``[K_L; K_R; zeta]``, Frobenius metric."""

    theta_weight = 1.0

    @classmethod
    def factor_shapes(cls, problem, rank):
        return {"X_L": (problem.d1, rank), "Theta": (rank, rank), "X_R": (problem.d2, rank)}

    def _draw(self, gen, problem, rank):
        XL = stiefel_start(gen, problem.d1, rank)
        XR = stiefel_start(gen, problem.d2, rank)
        return {"X_L": XL, "Theta": np.zeros((rank, rank)), "X_R": XR}

    def _point(self, start):
        self.theta_row = start["X_L"].shape[0] + start["X_R"].shape[0]
        return (start["X_L"], start["Theta"], start["X_R"])

    def _pass(self, point):
        XL, Theta, XR = point
        return self.problem.residual(XL @ Theta, XR, right=XR, left=XL)   # E X_R, E^T X_L

    def _can_power(self, res):
        return bool(np.any(res.AV) and np.any(res.AtU))

    def _power_step(self, point, res):
        return (orthonormal_basis(-res.AV), point[1], orthonormal_basis(-res.AtU))

    def _probe_direction(self, point, res):       # B = X_L^T A*(y) X_R
        return -(point[0].T @ res.AV)

    def _with_theta(self, point, theta):
        return (point[0], theta, point[2])

    def _normal_pass(self, point):
        XL, Theta, XR = point
        return self.problem.normal_products(XL @ Theta, XR, right=XR, left=XL)

    def _gradient(self, point, res):
        return self.geometry.gradient_rect(point[0], point[2], res.AV, res.AtU)

    def _retract(self, point, v, t, lam):
        XL, Theta, XR = self.geometry.retract_rect(point[0], point[1], point[2], v, t, lam)
        return (XL, Theta, XR)

    def _transport(self, old, new, stack):
        return self.geometry.transport_rect(old[0], old[2], new[0], new[2], stack)

    def _magnitudes(self):
        return np.linalg.svd(self.point[1], compute_uv=False)

    def _truncated(self, k):
        XL, Theta, XR = self.point
        U, s, Vt = np.linalg.svd(Theta)
        point = (np.ascontiguousarray(XL @ U[:, :k]), np.diag(s[:k]),
                 np.ascontiguousarray(XR @ Vt[:k].T))
        return point, (XL @ U[:, k:], XR @ Vt[k:].T)

    def _grown(self):
        XL, Theta, XR = self.point
        q = self.search_rank - XL.shape[1] + 2
        GL = self._random_block(XL.shape[0], q)
        GR = self._random_block(XR.shape[0], q)
        res = self.problem.residual(XL @ Theta, XR, right=GR, left=GL)
        uL, uR = self._new_direction(XL, res.AV), self._new_direction(XR, res.AtU)
        if uL is None or uR is None:
            return None
        point = (np.hstack([XL, uL]), pad_magnitude(Theta, XL.shape[1] + 1), np.hstack([XR, uR]))
        return point, self._pass(point)

    @property
    def factors(self):
        XL, Theta, XR = self.point
        need = self.search_rank - XL.shape[1]
        if need <= 0:
            return {"X_L": XL, "Theta": Theta, "X_R": XR}
        return {"X_L": np.hstack([XL, complete_basis(XL, self.dropped[0], need)]),
                "Theta": pad_magnitude(Theta, self.search_rank),
                "X_R": np.hstack([XR, complete_basis(XR, self.dropped[1], need)])}

    def lowrank(self):
        XL, Theta, XR = self.point
        return XL @ Theta, XR


class WNLBFGS(WNLBFGSSymmetricMixin, _LBFGSCore):
    """Symmetric WN-LBFGS, native path (see the module docstring)."""


class RectangularWNLBFGS(WNLBFGSRectangularMixin, _LBFGSCore):
    """Rectangular WN-LBFGS on ``Z = X_L Theta X_R^T``, native path (see the module docstring)."""
