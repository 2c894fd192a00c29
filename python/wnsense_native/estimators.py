"""scikit-learn estimators on the ratings model of :mod:`.ratings` (needs the ``sklearn`` extra:
``pip install wnsense_native[sklearn]``).

- :class:`LowRankRegressor`: ``fit(X, y)`` on ``(row id, column id)`` pairs and their values
  (ratings), ``predict`` at new pairs; clonable, picklable, usable in ``GridSearchCV`` and
  ``cross_val_score``.
- :class:`LowRankImputer`: a transformer filling the missing entries (NaN, or the entries not
  stored in a scipy.sparse input) of a samples x features array; new rows are folded in against
  the fitted feature factors. Passes ``sklearn.utils.estimator_checks.check_estimator``.

Both fit :func:`~wnsense_native.ratings.fit_ratings` (biases, the count-weighted ridge on the
factors, ``penalty="auto"`` by default) and keep it as ``model_``.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, OneToOneFeatureMixin, RegressorMixin, TransformerMixin
    from sklearn.utils.validation import check_is_fitted
except ImportError:  # pragma: no cover
    raise ImportError("wnsense_native.estimators needs scikit-learn "
                      "(pip install wnsense_native[sklearn])") from None

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
    _FINITE_KEYWORD = "ensure_all_finite"
except ImportError:  # pragma: no cover - scikit-learn 1.3 - 1.5
    _sk_validate_data = None
    _FINITE_KEYWORD = "force_all_finite"

from .ratings import fit_ratings

__all__ = ["LowRankRegressor", "LowRankImputer"]


def _validate_data(estimator, X, **kwargs):
    if "allow_nan" in kwargs:
        kwargs[_FINITE_KEYWORD] = "allow-nan" if kwargs.pop("allow_nan") else True
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, X, **kwargs)
    return estimator._validate_data(X, **kwargs)  # pragma: no cover


def _seed(random_state):
    """``random_state`` as :func:`fit_ratings` takes it (a legacy RandomState draws a seed)."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    return random_state


def _fit_options(est):
    return dict(rank=est.rank, penalty=est.penalty, bias_penalty=est.bias_penalty,
                count_exponent=est.count_exponent,
                validation_fraction=est.validation_fraction, max_sweeps=est.max_iter,
                tol=est.tol, rng=_seed(est.random_state), progress=bool(est.verbose))


_PARAMS_DOC = """
    rank : int, default=10
        Largest rank of the low-rank part; with ``penalty="auto"`` the fit keeps the rank read
        from the spectrum of the chosen penalty's fit.
    penalty : float or "auto", default="auto"
        Weight of the count-weighted ridge on the factors (each row's and column's factor
        scaled by its number of observed entries); ``"auto"`` chooses it on a held-out
        ``validation_fraction`` of the entries along a warm-started path, then refits on all.
    bias_penalty : float, default=5.0
        Ridge on the row and column biases.
    count_exponent : float, default=0.5
        The ridge on a row's (column's) factor is ``penalty * n**count_exponent``, ``n`` its
        number of observed entries: 1 is ALS-WR's (the weighted trace norm), 0 the uniform one.
    validation_fraction : float, default=0.1
        Share of the entries held out to choose the penalty (``penalty="auto"``).
    max_iter : int, default=100
        Largest number of alternating sweeps of the final fit.
    tol : float, default=1e-4
        The fit stops when a sweep lowers the objective by less than ``tol`` (relative).
    random_state : None, int, numpy Generator or RandomState, default=None
        The held-out draw and the starting factors: an int gives the same model bit for bit.
    verbose : bool, default=False
        A progress bar over the penalty path (needs tqdm).
"""


class _LowRankBase(BaseEstimator):

    def __init__(self, rank=10, penalty="auto", bias_penalty=5.0, count_exponent=0.5,
                 validation_fraction=0.1, max_iter=100, tol=1e-4, random_state=None,
                 verbose=False):
        self.rank = rank
        self.penalty = penalty
        self.bias_penalty = bias_penalty
        self.count_exponent = count_exponent
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose


def _as_id_pairs(X):
    """``(rows, cols)`` int64 ids from an (n, 2) array or a two-column DataFrame."""
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        if X.shape[1] != 2:
            raise ValueError(f"X must have two columns (row id, column id), got {X.shape[1]}")
        cols = [np.asarray(X.iloc[:, c]) for c in range(2)]
    else:
        if isinstance(X, (str, bytes)) or X is None:
            raise TypeError(f"X must be an (n, 2) array of integer ids, got {type(X).__name__}")
        if hasattr(X, "toarray"):
            raise TypeError("X must be a dense (n, 2) array of integer ids, got a sparse matrix")
        try:
            arr = np.asarray(X)
        except Exception as exc:
            raise TypeError(f"X could not be converted to an array: {exc}") from None
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"X must be an (n, 2) array of (row id, column id), "
                             f"got shape {arr.shape}")
        cols = [arr[:, 0], arr[:, 1]]
    out = []
    for c in cols:
        if c.dtype.kind == "f":
            if not np.isfinite(c).all() or (c != np.round(c)).any():
                raise ValueError("X must hold integer ids, got non-integral or non-finite values")
        elif c.dtype.kind not in "iu" or c.dtype.kind == "b":
            raise TypeError(f"X must hold integer ids, got dtype {c.dtype}")
        if c.size and c.min() < 0:
            raise ValueError(f"X must hold non-negative ids, got {c.min()}")
        out.append(c.astype(np.int64))
    if out[0].size == 0:
        raise ValueError("X must not be empty (0 samples)")
    return out[0], out[1]


class LowRankRegressor(RegressorMixin, _LowRankBase):
    __doc__ = """Ratings regression on ``(row id, column id)`` pairs: ``y ~ mean + a_row + b_col +
    u_row . v_col`` with the count-weighted ridge on the factors.

    ``X`` is an (n, 2) array (or a two-column DataFrame) of non-negative integer ids, ``y`` the
    observed values. Ids not seen in ``fit`` fall back to the biases: an unseen row predicts
    ``mean + b_col``, an unseen column ``mean + a_row``, both unseen ``mean``.

    Parameters
    ----------""" + _PARAMS_DOC + """    clip : bool, default=True
        Clip predictions to the range of ``y`` seen in ``fit`` (ratings scales are bounded).

    Attributes
    ----------
    model_ : RatingsModel
        The fitted model (biases, factors, the chosen ``penalty``, the ``path``).
    n_features_in_ : int
        2.
    y_range_ : (float, float)
        Smallest and largest ``y`` in ``fit``.
    n_iter_ : int
        Alternating sweeps of the final fit.

    Examples
    --------
    >>> from wnsense_native.estimators import LowRankRegressor
    >>> reg = LowRankRegressor(random_state=0).fit(ids, ratings)    # doctest: +SKIP
    >>> reg.predict([[0, 5], [3, 7]])                                # doctest: +SKIP
    """

    def __init__(self, rank=10, penalty="auto", bias_penalty=5.0, count_exponent=0.5,
                 validation_fraction=0.1, clip=True, max_iter=100, tol=1e-4, random_state=None,
                 verbose=False):
        super().__init__(rank=rank, penalty=penalty, bias_penalty=bias_penalty,
                         count_exponent=count_exponent,
                         validation_fraction=validation_fraction, max_iter=max_iter, tol=tol,
                         random_state=random_state, verbose=verbose)
        self.clip = clip

    def fit(self, X, y):
        """Fit the model to the values ``y`` at the id pairs ``X``; returns ``self``."""
        rows, cols = _as_id_pairs(X)
        if isinstance(y, (str, bytes)) or y is None:
            raise TypeError(f"y must be a numeric array, got {type(y).__name__}")
        y_arr = np.asarray(y)
        if y_arr.dtype.kind not in "fiu":
            raise TypeError(f"y must be a real numeric array, got dtype {y_arr.dtype}")
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            y_arr = y_arr[:, 0]
        if y_arr.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y_arr.shape}")
        if y_arr.size != rows.size:
            raise ValueError(f"X and y have different lengths: {rows.size} and {y_arr.size}")
        y_arr = y_arr.astype(np.float64)
        if not np.isfinite(y_arr).all():
            raise ValueError("y contains NaN or Inf")
        self.model_ = fit_ratings(rows, cols, y_arr, **_fit_options(self))
        self.n_features_in_ = 2
        self.y_range_ = (float(y_arr.min()), float(y_arr.max()))
        self.n_iter_ = self.model_.n_sweeps
        return self

    def predict(self, X):
        """Predicted values at the id pairs ``X`` (a 1-D float64 array)."""
        check_is_fitted(self, "model_")
        rows, cols = _as_id_pairs(X)
        pred = self.model_.predict(rows, cols)
        if self.clip:
            np.clip(pred, *self.y_range_, out=pred)
        return pred


class LowRankImputer(OneToOneFeatureMixin, TransformerMixin, _LowRankBase):
    __doc__ = """Fill missing entries with a bias + low-rank model of the samples x features array.

    Missing entries are NaN in a dense ``X``; in a scipy.sparse ``X`` the stored entries are the
    observed ones (a stored NaN is missing too) and the output is dense. Each feature is
    standardized by its observed mean and standard deviation before the fit. ``transform``
    folds each row in against the fitted feature factors (one weighted ridge regression per row)
    and returns ``X`` with its missing entries filled (observed entries unchanged).

    A row without any observed entry is filled from the biases (the feature means), with a
    warning; a feature without any observed entry in ``fit`` is filled with 0, with a warning.

    Parameters
    ----------""" + _PARAMS_DOC + """
    Attributes
    ----------
    model_ : RatingsModel
        The model of the standardized training rows.
    mean_, scale_ : ndarray of shape (n_features,)
        The standardization of each feature.
    empty_features_ : ndarray of int
        Features without any observed entry in ``fit`` (imputed as 0).
    n_features_in_ : int
    n_iter_ : int
        Alternating sweeps of the final fit.

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.pipeline import make_pipeline
    >>> pipe = make_pipeline(LowRankImputer(random_state=0), Ridge())   # doctest: +SKIP
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"allow_nan": True}

    def _observed(self, X):
        """``(rows, cols, values)`` of the observed entries of the validated ``X``."""
        if hasattr(X, "tocoo"):
            coo = X.tocsr()
            coo.sum_duplicates()
            coo = coo.tocoo()
            keep = ~np.isnan(coo.data)
            return (coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64),
                    coo.data[keep].astype(np.float64))
        rows, cols = np.nonzero(~np.isnan(X))
        return rows, cols, X[rows, cols]

    def _check(self, X, reset):
        return _validate_data(self, X, reset=reset, accept_sparse=("csr", "csc", "coo"),
                              dtype=np.float64, allow_nan=True)

    def fit(self, X, y=None):
        """Fit the model to the observed entries of ``X``; returns ``self``."""
        X = self._check(X, reset=True)
        rows, cols, vals = self._observed(X)
        n, d = X.shape
        if vals.size == 0:
            raise ValueError("X has no observed (non-NaN) entries")
        count = np.bincount(cols, minlength=d)
        total = np.bincount(cols, vals, minlength=d)
        mean = total / np.maximum(count, 1)
        var = np.bincount(cols, (vals - mean[cols]) ** 2, minlength=d) / np.maximum(count, 1)
        scale = np.sqrt(var)
        scale[~(scale > 0)] = 1.0
        self.mean_, self.scale_ = mean, scale
        self.empty_features_ = np.flatnonzero(count == 0)
        if self.empty_features_.size:
            warnings.warn(f"X has features without observed entries ({self.empty_features_}); "
                          "they are imputed as 0", UserWarning, stacklevel=2)
        self.model_ = fit_ratings(rows, cols, (vals - mean[cols]) / scale[cols], (n, d),
                                  **_fit_options(self))
        self.n_iter_ = self.model_.n_sweeps
        return self

    def transform(self, X):
        """``X`` with its missing entries filled (a dense float64 array)."""
        check_is_fitted(self, "model_")
        X = self._check(X, reset=False)
        rows, cols, vals = self._observed(X)
        n = X.shape[0]
        model = self.model_
        z = (vals - self.mean_[cols]) / self.scale_[cols]
        bias, factors = model.fold_in(rows, cols, z, n)
        empty_rows = np.bincount(rows, minlength=n) == 0
        if empty_rows.any():
            warnings.warn(f"X has {int(empty_rows.sum())} rows without observed entries; they are "
                          "filled from the biases (the feature means)", UserWarning, stacklevel=2)
        filled = (model.mean + bias[:, None] + model.col_bias[None, :]
                  + factors @ model.col_factors.T)
        filled = filled * self.scale_ + self.mean_
        filled[:, self.empty_features_] = 0.0
        filled[rows, cols] = vals
        return filled
