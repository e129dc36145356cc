"""The Cleaner's categorical columns: which columns are categories, and each
one's encoding as a lookup table.

A categorical column is encoded by one of scikit-learn's encoders, fitted on
the column's values as text once its missing entries are imputed with the
most frequent category: :class:`~sklearn.preprocessing.OneHotEncoder`
(rare categories grouped, unknown ones sent to the group or to zeros),
:class:`~sklearn.preprocessing.TargetEncoder` or
:class:`~sklearn.preprocessing.OrdinalEncoder`. Whichever it is, the fitted
encoder is then a function from the column's known categories (plus one
"unknown") to rows of numbers, so it is kept as a table: one row per known
category, in sorted order, and a last row for every category not seen in
fit. ``kernels.category_codes`` finds a value's row, and the Cleaner and
the serving runtime both gather the rows from the same table.
"""

import copy
import warnings
from numbers import Integral

import numpy as np

from ..kernels import _is_missing

# a datetime column is refused with this advice
_DATETIME_ADVICE = (
    "Convert it to numbers first: for example seconds since the epoch "
    "(df[col].astype('int64') // 10**9), or its year, month, day of week and "
    "hour as separate columns (df[col].dt.year, ...), or drop it."
)


def column_kinds(frame):
    """For each column of a pandas DataFrame: "numeric" or "categorical".

    Numbers and booleans are numeric, as is an object column holding only
    numbers; text, pandas categoricals and other objects are categorical.
    Datetimes, durations and periods are refused with advice.
    """
    import pandas as pd
    from pandas.api.types import (is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype,
                                  is_object_dtype, is_timedelta64_dtype)

    kinds = []
    for name, dtype in frame.dtypes.items():
        if is_datetime64_any_dtype(dtype) or is_timedelta64_dtype(dtype) or isinstance(
                dtype, pd.PeriodDtype):
            raise ValueError(
                f"Cleaner: column {name!r} holds dates or times ({dtype}), which it does "
                f"not encode. {_DATETIME_ADVICE}")
        if is_numeric_dtype(dtype) or is_bool_dtype(dtype):
            kinds.append("numeric")
        elif is_object_dtype(dtype) and all(
                isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                or _is_missing(v) for v in frame[name].tolist()):
            kinds.append("numeric")
        else:
            column = frame[name].dropna()
            if len(column) and all(hasattr(v, "isoformat") for v in column.head(100).tolist()):
                raise ValueError(
                    f"Cleaner: column {name!r} holds dates or times (Python "
                    f"{type(column.iloc[0]).__name__} objects), which it does not encode. "
                    f"{_DATETIME_ADVICE}")
            if not isinstance(dtype, pd.CategoricalDtype):
                _refuse_numbers_with_text(name, column)
            kinds.append("categorical")
    return kinds


def _is_number(value):
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _refuse_numbers_with_text(name, column):
    """A text column whose values are nearly all numbers is a numeric column
    with typos more likely than categories: refused, naming a text value.
    (A pandas categorical is encoded as categories whatever it holds.)"""
    values = column.head(1000).tolist()
    text = [v for v in values if not _is_number(v)]
    if text and len(text) <= 0.1 * len(values):
        raise ValueError(
            f"Cleaner: column {name!r} holds numbers and some text ({str(text[0])!r}): a "
            "numeric column with stray values, or categories? Fix or blank the text "
            "values for a numeric column; to encode it as categories, make it a pandas "
            "categorical (df[col].astype('category')).")


def as_frame(X):
    """``(frame, categorical)`` when ``X`` is a table with a non-numeric
    column (pandas, polars, or a 2-D object array holding text): it as a
    pandas DataFrame, and the mask of its categorical columns; else None."""
    module = type(X).__module__ or ""
    if module.startswith("polars"):
        if all(dtype.is_numeric() or str(dtype) == "Boolean" for dtype in X.schema.values()):
            return None  # numbers alone: no copy to pandas to find that out
        X = X.to_pandas()
    if hasattr(X, "dtypes") and hasattr(X, "iloc"):
        frame = X
    elif isinstance(X, np.ndarray) and X.dtype.kind == "O" and X.ndim == 2:
        import pandas as pd

        frame = pd.DataFrame(X)
        frame.columns = [f"x{j}" for j in range(X.shape[1])]
    else:
        return None
    categorical = np.array([kind == "categorical" for kind in column_kinds(frame)])
    return (frame, categorical) if categorical.any() else None


def _unknown_value(categories):
    """A text that is not one of ``categories``: how an unseen one is asked
    of the fitted encoder."""
    candidate = "\x00unknown"
    known = set(categories.tolist())
    while candidate in known:
        candidate += "\x00"
    return candidate


class CategoryColumn:
    """One categorical column, fitted: its sorted ``categories``, the
    imputed ``fill``, the ``encoding`` and fitted ``encoder``, and ``table``
    (one row per category, the last for unknown ones)."""

    def __init__(self, categories, fill, encoding, encoder, table, names):
        self.categories, self.fill, self.encoding = categories, fill, encoding
        self.encoder, self.table, self.names = encoder, table, names

    @property
    def missing_row(self):
        """The row a missing value gets: the imputed category's."""
        return int(np.searchsorted(self.categories, self.fill))


def target_encoder(y, random_state):
    """scikit-learn's TargetEncoder, its cross fitting shuffled by
    ``random_state`` (through ``cv`` from scikit-learn 1.9, which deprecates
    its ``random_state``)."""
    import inspect

    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.preprocessing import TargetEncoder
    from sklearn.utils.multiclass import type_of_target

    if inspect.signature(TargetEncoder).parameters["random_state"].default == "deprecated":
        folds = KFold if type_of_target(y) == "continuous" else StratifiedKFold
        return TargetEncoder(cv=folds(5, shuffle=True, random_state=random_state))
    return TargetEncoder(random_state=random_state)


def fit_column(text, missing, name, y, *, encoding, max_onehot, min_frequency,
               random_state):
    """Fit one categorical column (``as_text``'s output).

    Returns ``(column, training_output)``: the fitted column, or None when it
    carries nothing (all missing, or a single category; then
    ``training_output`` is the reason), and the encoded training rows (the
    cross-fitted ones for target encoding, as scikit-learn's
    ``TargetEncoder.fit_transform`` gives them).
    """
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    present = text[~missing]
    if present.size == 0:
        return None, "all missing"
    categories, counts = np.unique(present, return_counts=True)
    if categories.size == 1:
        return None, "constant"
    fill = str(categories[np.argmax(counts)])
    imputed = np.where(missing, fill, text)[:, None]
    if encoding == "auto":
        encoding = "onehot" if categories.size <= max_onehot else (
            "ordinal" if y is None else "target")
    if encoding == "target" and y is None:
        raise ValueError(
            f"Cleaner: encoding='target' needs the labels y to encode column {name!r}: "
            "fit the Cleaner with y (a Pipeline passes it), or choose encoding='onehot' "
            "or 'ordinal'.")
    if encoding == "onehot":
        # a two-category column becomes one 0/1 column (its second column
        # would repeat it, exactly dependent)
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", drop="if_binary",
                                min_frequency=min_frequency, sparse_output=False)
        training = encoder.fit_transform(imputed)
    elif encoding == "ordinal":
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        training = encoder.fit_transform(imputed)
    else:
        encoder = target_encoder(y, random_state)
        training = encoder.fit_transform(imputed, y)
    asked = np.append(categories, _unknown_value(categories))[:, None]
    with warnings.catch_warnings():
        # the last row asks for a category it has not seen, on purpose
        warnings.simplefilter("ignore", UserWarning)
        table = np.asarray(encoder.transform(asked), dtype=np.float64)
    names = [str(n) for n in encoder.get_feature_names_out([str(name)])]
    column = CategoryColumn(categories, fill, encoding, encoder, table, names)
    return column, np.asarray(training, dtype=np.float64)


def without_splitter(encoder):
    """``encoder``, a target encoder's cross-fitting splitter (used by its
    ``fit_transform`` only) replaced by its number of folds: plain data,
    which skops loads without trusting scikit-learn's splitters."""
    cv = getattr(encoder, "cv", None)
    if cv is None or isinstance(cv, Integral) or not hasattr(cv, "get_n_splits"):
        return encoder
    encoder = copy.copy(encoder)
    encoder.cv = int(cv.get_n_splits())
    return encoder


def categorical_names(table):
    """The first names of a table's categorical columns (``as_frame``'s pair)."""
    frame, categorical = table
    return [str(name) for name in frame.columns[categorical]][:5]


def numeric_values(frame, columns, names):
    """The numeric columns of a table as float64, NaN for missing."""
    try:
        return frame.iloc[:, columns].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        for j in columns:
            try:
                frame.iloc[:, [j]].to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Cleaner: column {names[j]!r} was numeric when the Cleaner was "
                    f"fitted, but holds a value that is not a number now ({exc}). Give "
                    "it numbers (a missing one as empty or NaN).") from None
        raise
