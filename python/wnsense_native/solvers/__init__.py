"""Native solvers and :func:`solve`, the library's one entry point."""
from __future__ import annotations

from .._blas import single_threaded_blas
from ._frontend import solve_with
from ._backend import NATIVE, native_residual as _native_residual  # noqa: F401
from ._registry import bind

# method name -> factory(symmetric[, options]) -> method class, on the native backend (the one
# registry: ._registry.METHODS)
NATIVE_METHODS = bind(NATIVE)


def solve(op, y, rank, *, method="wn_rgd", max_iter=1000, tol=1e-10, step_size=None, rng=None,
          init=None, x_true=None, callback=None, n_threads=None, gtol=0.0, xtol=0.0,
          max_time=None, progress=False, validation=None, patience=10, expected_rank=None,
          **method_options):
    """Recover a low-rank matrix from measurements ``y = A(Z*)``.

    Parameters
    ----------
    op : SensingOperator
        The measurement operator; a symmetric operator selects the symmetric model, a
        rectangular one the asymmetric model.
    y : array_like, shape (m,)
        The measurements.
    rank : int
        Search rank ``r`` (width of the factors); ``r > rank(Z*)`` is the overparameterized case.
    method : {"wn", "wn_rgd", "gd", "precgd", "scaledgd", "column_wn", "snn"}
        ``"wn"`` (or its original spelling ``"wn_rgd"``): weight-normalized Riemannian methods
        on ``Z = X Theta X^T``
        (rectangular operators: ``X_L Theta X_R^T``, see :mod:`.wn_rgd_rect`), by ``variant``:
        ``"lbfgs"`` (the default; this project's addition: Riemannian L-BFGS in a Gauss-Newton
        metric, options ``memory``, ``damping``, ``power_steps``, see :mod:`.wn_lbfgs`),
        ``"paper"`` (the paper's Algorithm 1, options ``retraction``, ``mu``, ``theta0``,
        ``penalty``, ``start``), ``"preconditioned"`` (direction ``S X``; the same options;
        ``preconditioned=True`` is the older spelling). WN-LBFGS also takes ``gain`` (the
        operator's ``A*A ~ gain Id``, measured at the start by default) and ``truncate``
        (run at the rank ``Theta`` reveals, see :mod:`.rank_adapt`; ``"auto"``: on for
        operators of single entries). An operator of observed
        entries (:func:`~wnsense_native.completion_sensing`, ``entry_sampling``) defaults to
        ``variant="lbfgs", truncate=True``: an overparameterized completion has many rank-``r``
        interpolants, and the unadapted iteration can fit another. ``res.message`` names the
        variant that ran; ``"gd"``: factorized GD (options ``init_scale``,
        and ``imbalanced`` for rectangular operators); ``"precgd"`` / ``"scaledgd"``: GD
        preconditioned by ``(Y^T Y + lambda I)^{-1}`` (options ``init_scale``, ``imbalanced``,
        and ``damping_scale`` / ``damping``; see :mod:`.precgd`); ``"column_wn"``: column-wise
        weight normalization, symmetric only (option ``init_scale``); ``"snn"``: the spectral
        neural network of Chu et al. (options ``widths``, ``init_scale``, ``init_jitter``; its
        own loss ``||A(X) - y||^2 / (2m)``, ``rank`` unused; see :mod:`.snn`). All but ``"snn"``
        also take ``diagnostics`` (names from ``"alignment"``, ``"theta_svals"``,
        ``"hessian"``) and ``hessian_every``: see :mod:`.diagnostics`.
    max_iter, tol : stop after ``max_iter`` iterations or when ``||A(x) - y|| / ||y|| <= tol``.
    gtol, xtol, max_time : further stops: gradient norm, relative change of the iterate,
        wall-clock seconds (0 / None: off).
    step_size : None or float
        None: the safeguarded default (Armijo backtracking along the retraction); a number: a
        constant step.
    rng : None, int or numpy.random.Generator
        Seeds the random start; the same seed gives the same result bit for bit, whatever
        ``n_threads``.
    init : dict, optional
        Warm start with the keys of ``res.factors`` (e.g. ``{"X": X0, "Theta": T0}``).
    x_true : array_like or (U, V), optional
        Ground truth, a ``d1 x d2`` array or factors ``(U, V)`` of ``U V^T`` (never densified):
        records ``history["rel_error"]``.
    validation : (op_val, y_val), optional
        Held-out measurements of the same matrix (e.g. a split of the observed entries): records
        ``history["validation_residual"]`` (``||A_val(x) - y_val|| / ||y_val||``, one forward
        pass per iteration, counted in ``res.nfev_validation``), stops with ``stop_reason ==
        "validation"`` when it has not improved for ``patience`` iterations, and returns the
        best-validation iterate (``res.best_iteration``) whatever stopped the run.
    patience : int
        Iterations without a new best validation residual before early stopping (default 10).
    expected_rank : int, optional
        The rank the caller expects of ``Z*``: an effective rank of the result above it marks the
        fit as suspect (below).
    callback : callable, optional
        ``callback(intermediate_result)`` after each iteration; may raise ``StopIteration``.
    n_threads : int, optional
        Threads of the native kernels (default: OpenMP's default). While the solve runs,
        numpy's OpenBLAS is kept on one thread (its idle workers spin on the cores the native
        kernels need; the loop's own matrix products are small) and restored afterwards.
    progress : bool
        Show a tqdm progress bar (needs the ``progress`` extra).

    Returns
    -------
    SolveResult
        ``x``, ``fun``, ``nit``, ``nfev``, ``success``, ``status``, ``message``,
        ``stop_reason``, ``factors``, ``history``, ``time``, ``residual_norm``,
        ``spectrum`` (singular values of ``x``, from the factors), ``effective_rank`` (those
        above 1e-6 of the largest) and ``suspect`` (reasons the fit may not be the matrix
        sought: an effective rank above ``expected_rank``, or a held-out residual of
        ``validation`` more than 10x the training residual). A suspect fit has ``success`` False,
        says why in ``message`` and warns (:class:`~.fit_report.SuspectFitWarning`).
    """
    # numpy's BLAS on one thread meanwhile: its spinning workers would take the cores the native
    # passes need (see _blas.py); restored on return
    with single_threaded_blas():
        return solve_with(NATIVE_METHODS, NATIVE.make_residual, op, y, rank, method=method,
                          max_iter=max_iter, tol=tol, step_size=step_size, rng=rng, init=init,
                          x_true=x_true, callback=callback, n_threads=n_threads, gtol=gtol,
                          xtol=xtol, max_time=max_time, progress=progress, validation=validation,
                          patience=patience, expected_rank=expected_rank, **method_options)
