"""Cleaner: the row-preserving first step of every skquant pipeline."""

import hashlib
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    check_random_state,
    validate_data,
)

from .. import kernels
from .._doc_link import DocLinkMixin
from .._registry import index_dtype, register_export
from .._validation import forget_fit, safe_mean, validate_numeric
from ._categories import (as_frame, categorical_names, fit_column, numeric_values,
                          without_splitter)
from ._statistics import (_in_range, _medians, _quantiles, _scaling_statistics,
                          _variance_at_most)
from ._sketch import ColumnSketch

# the fitted attributes that partial_fit leaves to be derived on first use
_DERIVED = ("statistics_", "lower_bounds_", "upper_bounds_", "support_", "drop_reasons_",
            "scaling_", "center_", "scale_")

# scaling="auto" leaves the columns as they are where they already share one
# scale: the widest kept column's range (after clipping) is at most this many
# times the range of the column at the 10th percentile of ranges (an image's
# pixels: digits 3.3, 28x28 digits 7.4; tables in mixed units: breast
# cancer 77,000, wine 1,060, penguins 250)
_SHARED_SCALE_RATIO = 20.0


class Cleaner(DocLinkMixin, TransformerMixin, BaseEstimator):
    """Impute missing values, drop useless columns and clip outliers.

    At fit time the Cleaner learns, per column, a fill value for missing
    entries (NaN and ±inf count as missing), robust clipping bounds, and
    whether the column carries information at all. Columns that are entirely
    missing, constant (or constant once clipped), or exact duplicates of an
    earlier column are dropped. Every row is kept: to drop outlier *rows* at
    training time, wrap the final estimator in :class:`OutlierFilter`.

    The learned values are finite for any finite data, up to the edges of
    the float range (where numpy's own median, quantiles or mean overflow),
    and ``transform`` returns finite values whatever it is given: statistics
    learned in float64 beyond the range of a float32 input become its
    largest finite values.

    ``partial_fit`` learns from a stream of chunks in one pass, in memory
    that does not grow with the rows: counts, means, extremes and duplicate
    columns are kept exactly, and the statistics that need the values
    themselves (median, most frequent value, clipping quantiles, variance)
    come from a uniform random sample of ``sketch_size`` rows. Up to
    ``sketch_size`` rows in all, the sample is the data and ``partial_fit``
    learns exactly what ``fit`` learns.

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
    scaling : {"auto", "standard", "robust"} or None, default="auto"
        How the kept columns are put on comparable scales once imputed and
        clipped, so that distances, trees and graphs downstream do not
        depend on the columns' units:

        - ``"standard"``: minus the column's mean, over its standard
          deviation (as :class:`~sklearn.preprocessing.StandardScaler`);
        - ``"robust"``: minus the median, over the interquartile range (as
          :class:`~sklearn.preprocessing.RobustScaler`), which outliers
          move less; a column whose quartiles are equal is scaled by its
          standard deviation instead;
        - ``"auto"``: ``"standard"``, unless the columns already share one
          scale, as an image's pixels do: the widest kept column's range is
          at most 20 times the range at the 10th percentile of the columns'
          ranges. Scaling such columns one by one magnifies the nearly
          blank ones (on sklearn's digits it costs the tree and graph
          families 1.3 to 2.4 points of accuracy), so they are left as they
          are. ``scaling_`` says what was chosen;
        - ``None``: no scaling.
    encoding : {"auto", "onehot", "ordinal", "target"}, default="auto"
        How a text or categorical column of a table is encoded, once its
        missing values are imputed with its most frequent category:

        - ``"onehot"``: scikit-learn's
          :class:`~sklearn.preprocessing.OneHotEncoder`, one 0/1 column per
          category (one column for a column of two); categories seen in
          fewer than ``min_frequency`` rows share one "infrequent" column,
          and a category unseen in fit goes there, or to all zeros;
        - ``"target"``: :class:`~sklearn.preprocessing.TargetEncoder`, each
          category's smoothed mean of the labels (one column per class for
          more than two), cross-fitted on the training rows by
          ``fit_transform``; needs ``y``;
        - ``"ordinal"``: :class:`~sklearn.preprocessing.OrdinalEncoder`, the
          category's rank, -1 for an unseen one;
        - ``"auto"``: one-hot up to ``max_onehot`` categories, above that
          target encoding when ``y`` is given and ordinal otherwise.
    max_onehot : int, default=16
        ``encoding="auto"``: the most categories a column is one-hot encoded
        with.
    min_frequency : int, float or None, default=5
        One-hot encoding: a category in fewer rows (an int) or a smaller
        fraction of them (a float) is grouped with the other infrequent
        ones; None groups none.
    drop_duplicates : bool, default=True
        Drop columns whose cleaned training values equal those of an earlier
        column. (After ``partial_fit`` on more than ``sketch_size`` rows:
        whose raw values equal those of an earlier column.)
    sketch_size : int, default=100_000
        Rows of the uniform sample that ``partial_fit`` keeps to estimate
        medians, modes, quantiles and variances. Unused by ``fit``.
    random_state : int, RandomState instance or None, default=None
        Draws the rows of ``partial_fit``'s sample. Unused by ``fit``.

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
    scaling_ : {"standard", "robust"} or None
        The scaling applied: ``scaling``, or what ``"auto"`` chose.
    center_ : ndarray of shape (n_features_in,) or None
        What is subtracted from each column once imputed and clipped (0 for
        dropped columns); None without scaling.
    scale_ : ndarray of shape (n_features_in,) or None
        What each column is then divided by (1 for dropped columns); None
        without scaling.
    categorical_ : ndarray of bool of shape (n_features_in,)
        Mask of the columns encoded as categories (text, pandas
        categoricals, objects); all False for numeric input. The numeric
        attributes above hold NaN, ±inf, 0 and 1 there.
    categories_ : list of ndarray of str
        For each kept categorical column, in input order, its categories
        (sorted, as text).
    category_fill_ : list of str
        For each kept categorical column, the category a missing value
        gets (its most frequent).
    encodings_ : list of str
        For each kept categorical column, its encoding (``"onehot"``,
        ``"target"`` or ``"ordinal"``).
    encoders_ : list of estimator
        For each kept categorical column, the fitted scikit-learn encoder.
    category_tables_ : list of ndarray of shape (n_categories + 1, n_outputs)
        For each kept categorical column, its encoding as a lookup table:
        one row per category of ``categories_``, the last for categories
        unseen in fit. The encoded columns follow the numeric ones in the
        output.
    n_samples_seen_ : int
        Rows learned from (by ``fit``, or by every ``partial_fit`` call).

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
    >>> cleaner = Cleaner(clip_quantile=None, scaling=None).fit(X)
    >>> cleaner.get_feature_names_out()
    array(['x0', 'x3'], dtype=object)
    >>> cleaner.drop_reasons_
    {'x1': 'constant', 'x2': 'duplicate of x0'}
    >>> cleaner.transform(X)
    array([[1., 7.],
           [3., 8.],
           [3., 8.],
           [4., 9.]])

    Columns in different units are scaled (``scaling="auto"``):

    >>> X = np.array([[1.0, 1000.0], [2.0, 3000.0], [3.0, 2000.0], [4.0, 6000.0]])
    >>> cleaner = Cleaner(clip_quantile=None).fit(X)
    >>> cleaner.scaling_
    'standard'
    >>> cleaner.transform(X).std(axis=0)
    array([1., 1.])
    """

    _parameter_constraints: dict = {
        "strategy": [StrOptions({"median", "mean", "most_frequent", "constant"})],
        "fill_value": [Real],
        "clip_quantile": [Interval(Real, 0, 0.5, closed="left"), None],
        "variance_threshold": [Interval(Real, 0, None, closed="left")],
        "scaling": [StrOptions({"auto", "standard", "robust"}), None],
        "encoding": [StrOptions({"auto", "onehot", "ordinal", "target"})],
        "max_onehot": [Interval(Integral, 1, None, closed="left")],
        "min_frequency": [Interval(Integral, 1, None, closed="left"),
                          Interval(Real, 0, 1, closed="neither"), None],
        "drop_duplicates": ["boolean"],
        "sketch_size": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        strategy="median",
        fill_value=0.0,
        clip_quantile=0.001,
        variance_threshold=0.0,
        scaling="auto",
        encoding="auto",
        max_onehot=16,
        min_frequency=5,
        drop_duplicates=True,
        sketch_size=100_000,
        random_state=None,
    ):
        self.strategy = strategy
        self.fill_value = fill_value
        self.clip_quantile = clip_quantile
        self.variance_threshold = variance_threshold
        self.scaling = scaling
        self.encoding = encoding
        self.max_onehot = max_onehot
        self.min_frequency = min_frequency
        self.drop_duplicates = drop_duplicates
        self.sketch_size = sketch_size
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn fill values, clipping bounds and which columns to keep.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training data; may hold NaN and ±inf, and, in a pandas or polars
            DataFrame (or a 2-D object array), text and categorical columns.
        y : array-like of shape (n_samples,) or None, default=None
            Labels, used by target encoding only.

        Returns
        -------
        self : object
            The fitted Cleaner.
        """
        self._fit(X, y)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit, then transform ``X``.

        The same as ``fit(X, y).transform(X)``, except for target-encoded
        columns: their training rows are cross-fitted, as scikit-learn's
        :class:`~sklearn.preprocessing.TargetEncoder` gives them, so that a
        model trained on them does not learn each row's own label.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training data; may hold NaN and ±inf, and, in a DataFrame,
            categorical columns.
        y : array-like of shape (n_samples,) or None, default=None
            Labels, needed for target encoding only.

        Returns
        -------
        X_clean : ndarray of shape (n_samples, n_features_out)
            The cleaned training rows.
        """
        training = self._fit(X, y)
        out = self.transform(X)
        start = int(np.count_nonzero(self.support_ & ~self.categorical_))
        for table, encoding, rows in zip(self.category_tables_, self.encodings_, training):
            width = table.shape[1]
            if encoding == "target":
                out[:, start : start + width] = rows
            start += width
        return out

    def _fit(self, X, y):
        """Fit on ``X``; returns the encoded training rows of each kept
        categorical column (for ``fit_transform``)."""
        try:
            table = as_frame(X)
            self.__dict__.pop("_sketch", None)
            self._needs_finalize = False
            if table is None:
                X = validate_numeric(self, X, reset=True, allow_nan=True,
                                     ensure_min_samples=2)
                self._learn(np.where(np.isfinite(X), X, np.nan))
                self.categorical_ = np.zeros(X.shape[1], dtype=bool)
                training = []
                self._set_categories([])
                self.n_samples_seen_ = X.shape[0]
            else:
                training = self._fit_table(X, *table, y)
                self.n_samples_seen_ = len(table[0])
        except Exception:
            forget_fit(self)  # a failed fit leaves nothing half-fitted
            raise
        return training

    def _set_categories(self, columns):
        self.categories_ = [column.categories for column in columns]
        self.category_fill_ = [column.fill for column in columns]
        self.encodings_ = [column.encoding for column in columns]
        self.encoders_ = [column.encoder for column in columns]
        self.category_tables_ = [column.table for column in columns]

    def _fit_table(self, X, frame, categorical, y):
        """Fit on a table with categorical columns (``frame``: it as pandas;
        ``categorical``: the mask of those columns)."""
        validate_data(self, X if isinstance(X, np.ndarray) else frame,
                      skip_check_array=True, reset=True)
        if len(frame) < 2:
            raise ValueError(f"Cleaner needs at least 2 rows to fit, got {len(frame)}.")
        if y is not None:
            y = np.asarray(y)
            if y.shape[0] != len(frame):
                raise ValueError(f"X has {len(frame)} rows but y has {y.shape[0]}; give "
                                 "one label per row.")
        names = _check_feature_names_in(self, None)
        columns, training, reasons = [], [], {}
        for j in np.flatnonzero(categorical):
            text, missing = kernels.as_text(frame.iloc[:, j])
            column, rows = fit_column(
                text, missing, names[j], y, encoding=self.encoding,
                max_onehot=self.max_onehot, min_frequency=self.min_frequency,
                random_state=self.random_state)
            if column is None:
                reasons[j] = rows
            else:
                columns.append((j, column))
                training.append(rows)
        numeric = np.flatnonzero(~categorical)
        values = numeric_values(frame, numeric, names)
        self._learn(np.where(np.isfinite(values), values, np.nan),
                    names=names[numeric], others=bool(columns) or None)
        # the numeric statistics at the table's positions; categorical
        # columns have none (NaN, no bounds, no scaling)
        n_features = len(names)
        for name, empty in (("statistics_", np.nan), ("lower_bounds_", -np.inf),
                            ("upper_bounds_", np.inf), ("center_", 0.0), ("scale_", 1.0)):
            learned = getattr(self, name)
            if learned is not None:
                full = np.full(n_features, empty)
                full[numeric] = learned
                setattr(self, name, full)
        support = np.zeros(n_features, dtype=bool)
        support[numeric] = self.support_
        support[[j for j, _ in columns]] = True
        numeric_reasons, self.drop_reasons_ = self.drop_reasons_, {}
        for j, name in enumerate(map(str, names)):
            why = reasons.get(j) if categorical[j] else numeric_reasons.get(name)
            if why is not None:
                self.drop_reasons_[name] = why
        if not support.any():
            raise ValueError(
                "Cleaner dropped every column (" + ", ".join(
                    f"{name}: {why}" for name, why in self.drop_reasons_.items())
                + "); nothing is left to learn from. Check the data.")
        self.support_, self.categorical_ = support, categorical
        self._set_categories([column for _, column in columns])
        return training

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Learn from one more chunk of rows.

        The fitted attributes are derived from everything seen so far on
        first use after the call, so that feeding many chunks costs one
        derivation. The rows are kept in a fixed-size sketch, which ``fit``
        does not make and a pickle (or a copy) leaves out: on a Cleaner
        fitted by ``fit``, copied or loaded, ``partial_fit`` warns and starts
        a new fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data; may hold NaN and ±inf.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The updated Cleaner.
        """
        first_call = "_sketch" not in self.__dict__
        if first_call and "n_samples_seen_" in self.__dict__:
            warnings.warn(
                "This Cleaner was fitted by fit, or copied or loaded from a "
                "pickle, which keep its statistics but not the row sample that "
                "partial_fit adds to: partial_fit starts a new fit from this "
                "chunk. To learn from all the rows, call fit on them, or "
                "partial_fit on each chunk of them from an unfitted Cleaner.",
                UserWarning, stacklevel=2,
            )
        if not first_call and self._sketch_params != self._stream_params():
            raise ValueError(
                "Parameters changed since the Cleaner's first partial_fit call; "
                "partial_fit can only add rows. Call fit, or clone the Cleaner, "
                "to start again with the new parameters."
            )
        table = as_frame(X)
        if table is not None:
            raise ValueError(
                "Cleaner.partial_fit takes numeric columns only, but X has categorical "
                f"ones ({', '.join(map(repr, categorical_names(table)))}): fit the Cleaner "
                "on the whole table with fit, or encode those columns as numbers first.")
        try:
            X = validate_numeric(
                self, X, reset=first_call, allow_nan=True, ensure_min_samples=1
            )
        except Exception:
            if first_call:
                forget_fit(self)
            raise
        if first_call:
            for name in _DERIVED:
                self.__dict__.pop(name, None)
            self.categorical_ = np.zeros(X.shape[1], dtype=bool)
            self._set_categories([])
            self._sketch = ColumnSketch(
                X.shape[1], self.sketch_size, check_random_state(self.random_state)
            )
            self._sketch_params = self._stream_params()
            self.n_samples_seen_ = 0
        self._sketch.update(X)
        self.n_samples_seen_ += X.shape[0]
        for name in _DERIVED:  # stale now; derived again on first use
            self.__dict__.pop(name, None)
        self._needs_finalize = True
        return self

    def _stream_params(self):
        return self.get_params(deep=False)

    def __getattr__(self, name):
        # Only reached when normal lookup fails: derive the fitted attributes
        # after partial_fit. __dict__ is read directly so that copy and
        # pickle, which probe before __dict__ is filled, get AttributeError.
        state = self.__dict__
        if name in _DERIVED and state.get("_needs_finalize"):
            sketch = state["_sketch"]
            self._learn(sketch.sample, sketch=None if sketch.is_exact else sketch)
            self._needs_finalize = False
            if name in state:
                return state[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self):
        # A pickle holds the fitted statistics, not partial_fit's sample
        # (up to sketch_size rows): a loaded Cleaner transforms; partial_fit
        # on it warns and starts afresh.
        state = dict(super().__getstate__())
        if self.__dict__.get("_needs_finalize"):
            try:
                self.support_
            except ValueError:
                # not derivable (every column dropped): keep the sketch, so
                # that the loaded Cleaner raises the same clear error
                return state
            state = dict(super().__getstate__())
        state.pop("_sketch", None)
        state.pop("_sketch_params", None)
        if state.get("encoders_"):
            # a target encoder's cross-fitting splitter (used by its
            # fit_transform only) saved as its number of folds: plain data,
            # which skops loads without trusting scikit-learn's splitters
            state["encoders_"] = [without_splitter(encoder) for encoder in state["encoders_"]]
        return state

    def _learn(self, X, sketch=None, names=None, others=None):
        """Learn every numeric fitted attribute from ``X`` (float, NaN for missing).

        ``X`` is all the training rows, or, with ``sketch``, a uniform
        sample of a longer stream, whose exact per-column summaries then
        settle what a sample cannot: which columns are missing or constant
        throughout, their means, and which are duplicates. ``names`` are
        its columns' names (default: the input's); ``others`` names the
        table's categorical columns kept, which spare the error of a table
        whose numeric columns are all dropped.
        """
        if names is None:
            names = _check_feature_names_in(self, None)
        n_features = X.shape[1]
        reasons = {}

        missing = np.isnan(X)
        if sketch is None:
            all_missing = missing.all(axis=0)
        else:
            all_missing = sketch.n_finite == 0
        statistics = self._fill_values(X, all_missing, sketch)
        X = np.where(missing, statistics, X)
        present = ~all_missing
        if sketch is None:
            low, high = X.min(axis=0), X.max(axis=0)
        else:
            # the extremes of the imputed column: the fill value counts where
            # some value was missing
            has_missing = sketch.n_finite < sketch.n_rows
            low = np.fmin(sketch.minima, np.where(has_missing, statistics, np.inf))
            high = np.fmax(sketch.maxima, np.where(has_missing, statistics, -np.inf))
        # constant before clipping: every value equal (exactly, unlike a
        # variance, which rounding makes 1e-34 for a column of 0.1s)
        constant = present & (high == low)

        lower = np.full(n_features, -np.inf)
        upper = np.full(n_features, np.inf)
        if self.clip_quantile and present.any():
            lower[present], upper[present] = _quantiles(
                X[:, present], [self.clip_quantile, 1 - self.clip_quantile]
            )
            np.clip(X, lower, upper, out=X)

        support = present.copy()
        for j in np.flatnonzero(all_missing):
            reasons[j] = "all missing"
        # near-constant: constant once its outliers are clipped, or with a
        # variance at most variance_threshold
        # (a range that overflows is inf, and not flat)
        with np.errstate(over="ignore"):
            clipped_ptp = np.minimum(high, upper) - np.maximum(low, lower)
        flat = present & (clipped_ptp <= 0)
        if sketch is None or self.variance_threshold > 0:
            # (a sample's zero variance does not prove the column flat:
            # its rare values may have been left out of the sample)
            flat |= present & _variance_at_most(X, self.variance_threshold)
        for j in np.flatnonzero(flat):
            reasons[j] = "constant" if constant[j] else "near-constant"
        support &= ~flat

        if self.drop_duplicates:
            digests = None if sketch is None else sketch.digests()
            first_seen = {}
            for j in np.flatnonzero(support):
                column = np.ascontiguousarray(X[:, j])
                if digests is None:
                    key = hashlib.blake2b(column.tobytes(), digest_size=16).digest()
                    earlier = first_seen.get(key)
                    duplicate = earlier is not None and np.array_equal(column, X[:, earlier])
                else:
                    # the whole stream's raw values, not the sample's
                    key = digests[j]
                    earlier = first_seen.get(key)
                    duplicate = earlier is not None
                if duplicate:
                    support[j] = False
                    reasons[j] = f"duplicate of {names[earlier]}"
                else:
                    first_seen.setdefault(key, j)

        if not support.any() and not others:
            raise ValueError(
                "Cleaner dropped every column ("
                + ", ".join(f"{names[j]}: {why}" for j, why in sorted(reasons.items()))
                + "); nothing is left to "
                "learn from. Check the data, or lower variance_threshold."
            )
        scaling, center, scale = self.scaling, None, None
        if not support.any():
            scaling = None
        if scaling == "auto":
            # half ranges: a column's range near the float range overflows
            halves = (0.5 * np.minimum(high, upper) - 0.5 * np.maximum(low, lower))[support]
            narrow = np.percentile(halves, 10, method="lower")
            shared = halves.max() / _SHARED_SCALE_RATIO <= narrow
            scaling = None if shared else "standard"
        if scaling is not None:
            center, scale = np.zeros(n_features), np.ones(n_features)
            center[support], scale[support] = _scaling_statistics(X[:, support], scaling)
        self.statistics_ = statistics
        self.lower_bounds_, self.upper_bounds_ = lower, upper
        self.scaling_, self.center_, self.scale_ = scaling, center, scale
        self.support_ = support
        self.drop_reasons_ = {str(names[j]): why for j, why in sorted(reasons.items())}

    def _fill_values(self, X, all_missing, sketch=None):
        n_features = X.shape[1]
        fill = np.full(n_features, np.nan)
        # a column present in the stream may have no value in the sample:
        # it is filled with its exact mean
        in_sample = ~all_missing & ~np.isnan(X).all(axis=0)
        if self.strategy == "constant":
            fill[~all_missing] = self.fill_value
            return fill
        if sketch is not None:
            present = ~all_missing
            fill[present] = sketch.means[present]
            if self.strategy == "mean":
                return fill
        present = in_sample
        if not present.any():
            return fill
        columns = X[:, present]
        if self.strategy == "mean":
            fill[present] = safe_mean(columns)
        elif self.strategy == "median":
            fill[present] = _medians(columns)
        else:
            values = []
            for column in columns.T:
                uniques, counts = np.unique(column[~np.isnan(column)], return_counts=True)
                values.append(uniques[np.argmax(counts)])
            fill[present] = values
        return fill

    def transform(self, X):
        """Impute, clip, keep the informative columns of ``X`` and scale them,
        then encode its categorical columns.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows with the columns seen in fit; may hold NaN and ±inf, and
            unseen or missing categories.

        Returns
        -------
        X_clean : ndarray of shape (n_samples, n_features_out)
            Finite rows, in the input's float dtype. A scaled value beyond
            the dtype's range (an input far outside the training data, with
            clipping off) becomes its largest finite value.
        """
        check_is_fitted(self)
        if self._encodes() or self._saw_text():
            return self._transform_table(X)
        X = validate_numeric(self, X, reset=False, allow_nan=True)
        return self._clean(X)

    def _encodes(self):
        return bool(self.__dict__.get("categories_"))

    def _saw_text(self):
        """Whether the fit saw categorical columns (kept or dropped: a table
        whose text columns were all dropped is read as a table still)."""
        categorical = self.__dict__.get("categorical_")
        return categorical is not None and bool(categorical.any())

    def _transform_table(self, X):
        """``transform`` of a Cleaner with categorical columns: the numeric
        columns cleaned, then each categorical one's encoding."""
        module = type(X).__module__ or ""
        frame = X.to_pandas() if module.startswith("polars") else X
        if isinstance(frame, np.ndarray) and frame.ndim == 2:
            import pandas as pd

            frame = pd.DataFrame(frame)
        if not (hasattr(frame, "iloc") and hasattr(frame, "dtypes")):
            raise TypeError(
                "This Cleaner encodes categorical columns "
                f"({', '.join(map(repr, self._categorical_inputs()))}): give it a table "
                f"(a pandas or polars DataFrame, or a 2-D object array), not "
                f"{type(X).__name__}.")
        validate_data(self, X if isinstance(X, np.ndarray) else frame,
                      skip_check_array=True, reset=False)
        return self._clean(self._coded(frame))

    def _categorical_inputs(self):
        names = _check_feature_names_in(self, None)
        return [str(names[j]) for j in np.flatnonzero(self.categorical_)]

    def _coded(self, frame):
        """The table as one float64 matrix: numbers where it has numbers,
        and each kept categorical column's rows in its lookup table (see
        ``kernels.category_codes``)."""
        names = _check_feature_names_in(self, None)
        numeric = np.flatnonzero(~self.categorical_)
        coded = np.full((len(frame), self.n_features_in_), np.nan)
        coded[:, numeric] = numeric_values(frame, numeric, names)
        kept = np.flatnonzero(self.categorical_ & self.support_)
        for j, categories, fill in zip(kept, self.categories_, self.category_fill_):
            text, missing = kernels.as_text(frame.iloc[:, j])
            coded[:, j] = kernels.category_codes(
                text, missing, categories, int(np.searchsorted(categories, fill)))
        return coded

    def _clean(self, X):
        # statistics learned in float64 beyond X's range (float32) become
        # X's largest finite values, so that the output stays finite
        support = self.support_ & ~self.categorical_
        fill, lower, upper = (
            _in_range(values[support], X.dtype)
            for values in (self.statistics_, self.lower_bounds_, self.upper_bounds_)
        )
        center = scale = None
        if self.scaling_ is not None:
            center = _in_range(self.center_[support], X.dtype)
            # (a scale below the dtype's smallest normal would divide by 0)
            scale = np.maximum(_in_range(self.scale_[support], X.dtype),
                               np.finfo(X.dtype).tiny)
        out = kernels.clean(X, support, fill, lower, upper, center, scale)
        if not self._encodes():
            return out
        kept = np.flatnonzero(self.categorical_ & self.support_)
        blocks = [out] + [
            kernels.encode(X[:, j], table.astype(X.dtype, copy=False),
                           int(np.searchsorted(categories, fill_value)))
            for j, table, categories, fill_value in zip(
                kept, self.category_tables_, self.categories_, self.category_fill_)]
        return np.hstack(blocks)

    def _export(self):
        """The runtime's ``clean`` step: kept columns, fill values, bounds,
        and the scaling's centre and scale where it scales."""
        support = self.support_ & ~self.categorical_
        arrays = {
            "keep": np.flatnonzero(support).astype(index_dtype(support.size)),
            "fill": self.statistics_[support],
            "lower": self.lower_bounds_[support],
            "upper": self.upper_bounds_[support],
        }
        if self.scaling_ is not None:
            # (a scale below float32's smallest normal would divide by 0 there)
            arrays["center"] = self.center_[support]
            arrays["scale"] = np.maximum(self.scale_[support], np.finfo(np.float32).tiny)
        if self._encodes():
            # each kept categorical column: its position, its sorted
            # categories, its lookup table and a missing value's row
            kept = np.flatnonzero(self.categorical_ & self.support_)
            arrays["categorical"] = kept.astype(index_dtype(support.size))
            for number, (categories, fill, table) in enumerate(zip(
                    self.categories_, self.category_fill_, self.category_tables_)):
                arrays[f"category{number}.text"] = np.asarray(categories, dtype=str)
                arrays[f"category{number}.table"] = table
                arrays[f"category{number}.missing"] = np.array(
                    [np.searchsorted(categories, fill)], dtype=index_dtype(len(categories)))
        return "clean", {}, arrays, set()

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
        out = [str(name) for name in names[self.support_ & ~self.categorical_]]
        kept = np.flatnonzero(self.categorical_ & self.support_)
        for j, encoder in zip(kept, self.encoders_):
            out += [str(name) for name in encoder.get_feature_names_out([str(names[j])])]
        return np.asarray(out, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        # text and categorical columns are encoded (a table's)
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


register_export(Cleaner)
