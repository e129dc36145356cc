"""Reading tables (CSV, NPZ) for the command line, with clear errors."""

import csv
import os

import numpy as np

_MISSING = {"", "na", "nan", "null", "none", "?"}


class DataError(ValueError):
    """A data file that cannot be used, with the reason."""


def _to_float(text):
    if text.strip().lower() in _MISSING:
        return np.nan
    return float(text)


def _labels(values, path):
    """Labels as integers when every one is written as an integer, else as
    strings (so "1" and "1.0" stay different classes); none may be missing."""
    for number, value in enumerate(values, start=1):
        if value.lower() in _MISSING:
            raise DataError(
                f"{path}: data row {number} has no label ({value!r}); drop or "
                "label such rows."
            )
    try:
        integers = np.array([int(v) for v in values])
    except ValueError:
        return np.array(values, dtype=object).astype(str)
    if all(str(i) == v for i, v in zip(integers.tolist(), values)):
        return integers
    return np.array(values, dtype=object).astype(str)


def read_table(path, label_column=None, require_label=True):
    """Read features (and labels) from a CSV or NPZ file.

    Parameters
    ----------
    path : str
        A ``.csv`` file (a header row is optional) or an ``.npz`` file holding
        arrays ``X`` and, for labels, ``y``.
    label_column : str or None, default=None
        The CSV column (name or 0-based index) or NPZ array holding the labels.
        ``None``: a column named ``label``, ``target``, ``class`` or ``y`` if
        there is one, else the last column (CSV), or the array ``y`` (NPZ).
    require_label : bool, default=True
        Whether the file must hold labels. When False and the default label
        column is absent, every column is a feature.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Features as float64, NaN for missing entries.
    y : ndarray of shape (n_samples,) or None
        Labels.
    feature_names : list of str or None
        Column names from the CSV header.
    """
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npz":
        return _read_npz(path, label_column, require_label)
    if extension in (".csv", ".txt"):
        return _read_csv(path, label_column, require_label)
    raise DataError(f"unsupported data file {path}: use a .csv or .npz file.")


def _read_npz(path, label_column, require_label):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise DataError(f"could not read {path} as an .npz archive: {exc}") from exc
    if "X" not in arrays:
        raise DataError(f"{path} holds arrays {sorted(arrays)}; it needs one named 'X'.")
    X = arrays["X"]
    if X.ndim != 2:
        raise DataError(f"array 'X' in {path} must be 2-D, got shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"array 'X' in {path} must be numeric, got dtype {X.dtype}.")
    key = label_column or "y"
    if key not in arrays:
        if require_label or label_column:
            raise DataError(f"{path} has no label array {key!r}; arrays: {sorted(arrays)}.")
        return X.astype(np.float64), None, None
    y = arrays[key]
    if y.shape[0] != X.shape[0]:
        raise DataError(f"{path}: 'X' has {X.shape[0]} rows but {key!r} has {y.shape[0]}.")
    return X.astype(np.float64), y, None


def _read_csv(path, label_column, require_label):
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"could not read {path} as CSV: {exc}") from exc
    if not rows:
        raise DataError(f"{path} is empty.")
    header = None
    if _looks_like_header(rows):
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    if not rows:
        raise DataError(f"{path} has a header but no data rows.")
    width = len(header) if header else len(rows[0])
    for number, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise DataError(f"{path}, line {number}: {len(row)} fields, expected {width}.")
    names = header or [f"x{j}" for j in range(width)]

    label_index = _label_index(names, header, label_column, require_label, path)
    feature_idx = [j for j in range(width) if j != label_index]
    columns = list(zip(*rows))
    X = np.empty((len(rows), len(feature_idx)))
    bad = []
    for out, j in enumerate(feature_idx):
        try:
            X[:, out] = [_to_float(v) for v in columns[j]]
        except ValueError:
            bad.append(names[j])
    if bad:
        raise DataError(
            f"{path}: column(s) {bad} are not numeric. Encode them as numbers or "
            "drop them (or name the label column with --label-column)."
        )
    y = None if label_index is None else _labels([v.strip() for v in columns[label_index]], path)
    return X, y, ([names[j] for j in feature_idx] if header else None)


def _is_number(text):
    try:
        _to_float(text)
    except ValueError:
        return False
    return True


def _looks_like_header(rows):
    """The first row is a header if a field of it is text where the next row
    has a number (a text label column alone does not make a header)."""
    first = rows[0]
    if len(rows) == 1:
        return not all(_is_number(v) for v in first)
    second = rows[1]
    return any(
        not _is_number(a) and _is_number(b) for a, b in zip(first, second)
    ) or (not any(_is_number(v) for v in first) and len(first) == len(second))


def _label_index(names, header, label_column, require_label, path):
    if label_column is not None:
        if header and label_column in names:
            return names.index(label_column)
        if str(label_column).isdigit() and int(label_column) < len(names):
            return int(label_column)
        raise DataError(
            f"{path} has no column {label_column!r}; columns: {names} "
            f"(or an index from 0 to {len(names) - 1})."
        )
    if header:
        for candidate in ("label", "target", "class", "y"):
            if candidate in names:
                return names.index(candidate)
    return len(names) - 1 if require_label else None
