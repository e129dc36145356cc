"""Input checks shared by every skquant estimator.

Each helper raises before any expensive work and says what was wrong and
what to do about it. The module also holds the few overflow-safe
statistics that the estimators share: data anywhere in the float range is
legitimate, and a mean or a product of values near it must not turn into
infinity or NaN on the way.
"""

import numpy as np
import scipy.sparse
from sklearn.utils.validation import validate_data


def _non_numeric_columns(X):
    """Names of a DataFrame's columns that are not numeric, else ``[]``."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "items"):
        return []
    # X is a DataFrame, so pandas is importable
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return [
        str(name)
        for name, dtype in dtypes.items()
        if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype))
    ]


def validate_numeric(estimator, X, y=None, *, reset, allow_nan=False, advice="", **kwargs):
    """Validate ``X`` as a 2-D float array with a clear message for text data.

    Parameters
    ----------
    estimator : estimator instance
        The estimator being fitted or applied; records ``n_features_in_``
        and ``feature_names_in_`` when ``reset`` is True.
    X : array-like of shape (n_samples, n_features)
        Input data.
    y : array-like of shape (n_samples,) or None, default=None
        Targets, validated with ``X`` (any label type) when given.
    reset : bool
        True in ``fit``, False in ``transform``/``predict``.
    allow_nan : bool, default=False
        Whether NaN and infinity may pass (the Cleaner's job is to remove them).
    advice : str, default=""
        What to suggest when non-finite values are found.
    **kwargs : dict
        Passed on to :func:`sklearn.utils.validation.validate_data`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The validated array, float64 or float32.
    y : ndarray of shape (n_samples,)
        The validated targets; returned only when ``y`` is given.
    """
    name = type(estimator).__name__
    if scipy.sparse.issparse(X):
        raise TypeError(
            f"{name} needs dense data, but X is a sparse {X.format.upper()} "
            f"matrix of shape {X.shape}. Convert it with X.toarray() (it then "
            f"takes {np.prod(X.shape, dtype=np.float64) * 8 / 2**20:.3g} MiB as "
            "float64), or reduce its columns first, for example with sklearn's "
            "TruncatedSVD, which accepts sparse input."
        )
    bad = _non_numeric_columns(X)
    if bad:
        raise ValueError(
            f"{name} needs numeric columns, but column(s) {bad} are not numeric. "
            "Encode them first, for example with sklearn's OneHotEncoder or "
            "OrdinalEncoder in a ColumnTransformer, or drop them."
        )
    kwargs.setdefault("dtype", [np.float64, np.float32])
    try:
        if y is None:
            X = validate_data(estimator, X, reset=reset, ensure_all_finite=False, **kwargs)
        else:
            X, y = validate_data(
                estimator, X, y, reset=reset, ensure_all_finite=False,
                y_numeric=False, **kwargs,
            )
    except ValueError as exc:
        if "could not convert" in str(exc):
            raise ValueError(
                f"{name} needs numeric input, but X holds text ({exc}). Encode "
                "text columns first (sklearn's OneHotEncoder or OrdinalEncoder) "
                "or drop them."
            ) from exc
        raise
    if not allow_nan:
        check_finite(X, name, advice)
    return X if y is None else (X, y)


def check_finite(X, name, advice=""):
    """Raise a ValueError naming how many NaN / infinite values ``X`` holds."""
    # A finite sum (in the input dtype, the fastest) proves every value
    # finite; a non-finite one can also come from overflow, which the exact
    # test below settles.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum()):
            return
    finite = np.isfinite(X)
    if finite.all():
        return
    n_nan = int(np.isnan(X).sum())
    n_inf = int((~finite).sum()) - n_nan
    raise ValueError(
        f"Input X contains NaN ({n_nan} value(s)) or infinity ({n_inf} value(s)); "
        f"{name} needs finite values. "
        + (advice or "Put a skquant.Cleaner() first to impute them.")
    )


# Attributes that scikit-learn's own machinery keeps on an estimator (output
# configuration, metadata requests, callback contexts): they are not fitted
# state, and a Pipeline or set_output expects them to outlive a failed fit.
_SKLEARN_STATE_PREFIXES = (
    "_sklearn", "_skl_", "_metadata_request", "_parent_callback", "_callback",
)


def forget_fit(estimator):
    """Remove everything a failed ``fit`` may have set, keeping the parameters.

    A fit that raises after validation has already recorded the new
    ``n_features_in_`` (and perhaps more); left beside the previous fit's
    attributes, that state could make ``transform`` give wrong numbers. After
    this, the estimator is simply not fitted. scikit-learn's own bookkeeping
    (``set_output`` configuration, metadata requests, callback contexts) is
    kept.
    """
    params = estimator.get_params(deep=False)
    for name in list(vars(estimator)):
        if name not in params and not name.startswith(_SKLEARN_STATE_PREFIXES):
            del estimator.__dict__[name]


def peak_exponents(X, axis=0):
    """Per column (``axis=0``) the exponent ``e`` with ``max |X| < 2**e``.

    0 for columns that hold only zeros (or NaN). ``np.ldexp(X, -e)`` brings
    a column below 1 in magnitude exactly, since scaling by a power of two
    rounds nothing (outside the subnormal range).
    """
    magnitude = np.abs(X)
    peak = np.max(np.where(np.isnan(magnitude), 0, magnitude), axis=axis, initial=0)
    return np.frexp(peak)[1]


def safe_mean(X):
    """Column means of ``X`` (float64, NaN ignored) that cannot overflow.

    The plain mean is taken first; only columns whose sum overflowed (values
    near the float64 range) are summed again, scaled by a power of two. The
    mean of a constant column (without NaN) is its value exactly: a mean
    rounded off by one unit in the last place of 1e308 would leave centred
    values of 1e292, whose squares drown everything else.
    """
    has_nan = X.dtype.kind == "f" and np.isnan(X).any()
    with np.errstate(over="ignore", invalid="ignore"):
        mean = np.nanmean(X, axis=0, dtype=np.float64) if has_nan else (
            X.mean(axis=0, dtype=np.float64))
    if not has_nan and X.shape[0]:
        constant = (X == X[0]).all(axis=0)
        mean[constant] = X[0, constant]
    bad = ~np.isfinite(mean)
    if bad.any():
        bad = np.flatnonzero(bad & ~np.isnan(X).all(axis=0))
        columns = X[:, bad].astype(np.float64)
        exponents = peak_exponents(columns)
        if bad.size:
            mean[bad] = np.ldexp(
                np.nanmean(np.ldexp(columns, -exponents), axis=0), exponents)
    return mean
