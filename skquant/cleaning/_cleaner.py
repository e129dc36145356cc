"""Cleaner: the row-preserving first step of every skquant pipeline."""

import hashlib
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from .._validation import forget_fit, validate_numeric


class Cleaner(TransformerMixin, BaseEstimator):
    """Impute missing values, drop useless columns and clip outliers.

    At fit time the Cleaner learns, per column, a fill value for missing
    entries (NaN and ±inf count as missing), robust clipping bounds, and
    whether the column carries information at all. Columns that are entirely
    missing, constant (or constant once clipped), or exact duplicates of an
    earlier column are dropped. Every row is kept: to drop outlier *rows* at
    training time, wrap the final estimator in :class:`OutlierFilter`.

    Parameters
    ----------
    strategy : {"median", "mean", "most_frequent", "constant"}, default="median"
        How the fill value of each column is learned from its finite values.
    fill_value : float, default=0.0
        The fill value when ``strategy="constant"``.
    clip_quantile : float in [0, 0.5) or None, default=0.001
        Each column is clipped to its ``[clip_quantile, 1 - clip_quantile]``
        quantiles of the training data. ``None`` or 0 disables clipping.
    variance_threshold : float, default=0.0
        Columns whose variance, after imputation and clipping, is at most this
        value are dropped as near-constant. Columns whose values are all
        equal, or all equal once clipped, are always dropped.
    drop_duplicates : bool, default=True
        Drop columns whose cleaned training values equal those of an earlier
        column.

    Attributes
    ----------
    n_features_in_ : int
        Number of columns seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of the columns seen during fit, when they are all strings.
    statistics_ : ndarray of shape (n_features_in,)
        Fill value of each input column (NaN for an all-missing column).
    lower_bounds_ : ndarray of shape (n_features_in,)
        Lower clipping bound of each column (-inf when clipping is off).
    upper_bounds_ : ndarray of shape (n_features_in,)
        Upper clipping bound of each column (+inf when clipping is off).
    support_ : ndarray of bool of shape (n_features_in,)
        Mask of the kept columns.
    drop_reasons_ : dict
        For each dropped column name, why it was dropped: ``"all missing"``,
        ``"constant"``, ``"near-constant"`` (constant once clipped, or at most
        ``variance_threshold`` in variance) or ``"duplicate of <name>"``.

    See Also
    --------
    OutlierFilter : drops outlier rows at fit time.
    sklearn.impute.SimpleImputer : imputation alone.
    sklearn.feature_selection.VarianceThreshold : constant-column removal alone.

    Examples
    --------
    >>> import numpy as np
    >>> from skquant import Cleaner
    >>> X = np.array([[1.0, 5.0, 1.0, 7.0],
    ...               [np.nan, 5.0, np.nan, 8.0],
    ...               [3.0, 5.0, 3.0, np.inf],
    ...               [4.0, 5.0, 4.0, 9.0]])
    >>> cleaner = Cleaner(clip_quantile=None).fit(X)
    >>> cleaner.get_feature_names_out()
    array(['x0', 'x3'], dtype=object)
    >>> cleaner.drop_reasons_
    {'x1': 'constant', 'x2': 'duplicate of x0'}
    >>> cleaner.transform(X)
    array([[1., 7.],
           [3., 8.],
           [3., 8.],
           [4., 9.]])
    """

    _parameter_constraints: dict = {
        "strategy": [StrOptions({"median", "mean", "most_frequent", "constant"})],
        "fill_value": [Real],
        "clip_quantile": [Interval(Real, 0, 0.5, closed="left"), None],
        "variance_threshold": [Interval(Real, 0, None, closed="left")],
        "drop_duplicates": ["boolean"],
    }

    def __init__(
        self,
        *,
        strategy="median",
        fill_value=0.0,
        clip_quantile=0.001,
        variance_threshold=0.0,
        drop_duplicates=True,
    ):
        self.strategy = strategy
        self.fill_value = fill_value
        self.clip_quantile = clip_quantile
        self.variance_threshold = variance_threshold
        self.drop_duplicates = drop_duplicates

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn fill values, clipping bounds and which columns to keep.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; may hold NaN and ±inf.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted Cleaner.
        """
        try:
            return self._fit(X)
        except Exception:
            forget_fit(self)  # a failed fit leaves nothing half-fitted
            raise

    def _fit(self, X):
        X = validate_numeric(self, X, reset=True, allow_nan=True, ensure_min_samples=2)
        X = np.where(np.isfinite(X), X, np.nan)
        names = _check_feature_names_in(self, None)
        n_features = X.shape[1]
        reasons = {}

        missing = np.isnan(X)
        all_missing = missing.all(axis=0)
        statistics = self._fill_values(X, all_missing)
        X = np.where(missing, statistics, X)
        present = ~all_missing
        # constant before clipping: every value equal (exactly, unlike a
        # variance, which rounding makes 1e-34 for a column of 0.1s)
        constant = present & (np.ptp(X, axis=0) == 0)

        lower = np.full(n_features, -np.inf)
        upper = np.full(n_features, np.inf)
        if self.clip_quantile and present.any():
            lower[present], upper[present] = np.quantile(
                X[:, present], [self.clip_quantile, 1 - self.clip_quantile], axis=0
            )
            np.clip(X, lower, upper, out=X)

        support = present.copy()
        for j in np.flatnonzero(all_missing):
            reasons[j] = "all missing"
        # near-constant: constant once its outliers are clipped, or with a
        # variance at most variance_threshold
        flat = present & ((np.ptp(X, axis=0) == 0) | (X.var(axis=0) <= self.variance_threshold))
        for j in np.flatnonzero(flat):
            reasons[j] = "constant" if constant[j] else "near-constant"
        support &= ~flat

        if self.drop_duplicates:
            first_seen = {}
            for j in np.flatnonzero(support):
                column = np.ascontiguousarray(X[:, j])
                key = hashlib.blake2b(column.tobytes(), digest_size=16).digest()
                earlier = first_seen.get(key)
                if earlier is not None and np.array_equal(column, X[:, earlier]):
                    support[j] = False
                    reasons[j] = f"duplicate of {names[earlier]}"
                else:
                    first_seen.setdefault(key, j)

        if not support.any():
            raise ValueError(
                "Cleaner dropped every column ("
                + ", ".join(f"{names[j]}: {why}" for j, why in sorted(reasons.items()))
                + "); nothing is left to "
                "learn from. Check the data, or lower variance_threshold."
            )
        self.statistics_ = statistics
        self.lower_bounds_, self.upper_bounds_ = lower, upper
        self.support_ = support
        self.drop_reasons_ = {str(names[j]): why for j, why in sorted(reasons.items())}
        return self

    def _fill_values(self, X, all_missing):
        n_features = X.shape[1]
        fill = np.full(n_features, np.nan)
        present = ~all_missing
        if not present.any():
            return fill
        columns = X[:, present]
        if self.strategy == "constant":
            fill[present] = self.fill_value
        elif self.strategy == "mean":
            fill[present] = np.nanmean(columns, axis=0)
        elif self.strategy == "median":
            fill[present] = np.nanmedian(columns, axis=0)
        else:
            values = []
            for column in columns.T:
                uniques, counts = np.unique(column[~np.isnan(column)], return_counts=True)
                values.append(uniques[np.argmax(counts)])
            fill[present] = values
        return fill

    def transform(self, X):
        """Impute, clip and keep the informative columns of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows with the columns seen in fit; may hold NaN and ±inf.

        Returns
        -------
        X_clean : ndarray of shape (n_samples, n_kept_columns)
            Finite rows, in the input's float dtype.
        """
        check_is_fitted(self)
        X = validate_numeric(self, X, reset=False, allow_nan=True)
        kept = X[:, self.support_]
        fill = self.statistics_[self.support_].astype(X.dtype)
        kept = np.where(np.isfinite(kept), kept, fill)
        lower = self.lower_bounds_[self.support_].astype(X.dtype)
        upper = self.upper_bounds_[self.support_].astype(X.dtype)
        return np.clip(kept, lower, upper, out=kept)

    def get_feature_names_out(self, input_features=None):
        """Names of the kept columns.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input column names; defaults to ``feature_names_in_`` or
            ``x0 ... x(n-1)``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The kept columns' names.
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        return np.asarray(names[self.support_], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
