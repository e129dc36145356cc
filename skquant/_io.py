"""Reading tables (CSV, NPZ) for the command line, with clear errors."""

import bz2
import csv
import gzip
import lzma
import os

import numpy as np

_MISSING = {"", "na", "nan", "null", "none", "?"}
# the same, as pandas compares them (case-sensitively)
_NA_VALUES = sorted(_MISSING | {v.upper() for v in _MISSING} | {v.title() for v in _MISSING}
                    | {"N/A", "NaN"})


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


def read_table(path, label_column=None, require_label=True, *, header=None, notes=None,
               allow_text=False):
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
    header : bool or None, default=None
        Whether a CSV's first row is a header; ``None`` detects it by
        comparing the first row with the rows after it.
    notes : list or None, default=None
        Where given, a line saying what was detected (the separator, the
        header, the label column) is appended to it.
    allow_text : bool, default=False
        Whether feature columns may hold text (categories, for a Cleaner
        that encodes them). Without it such a column is an error.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) or DataFrame
        Features as float64, NaN for missing entries; with ``allow_text``
        and a text column, a pandas DataFrame (numbers as float64, text as
        str, missing entries NaN).
    y : ndarray of shape (n_samples,) or None
        Labels.
    feature_names : list of str or None
        Column names from the CSV header.
    """
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    stem, extension = os.path.splitext(path.lower())
    if extension in _COMPRESSED:
        stem, inner = os.path.splitext(stem)
        if inner not in (".csv", ".txt"):
            raise DataError(f"unsupported data file {path}: a compressed file must be a "
                            f"CSV ({'.csv' + extension}).")
        return _read_csv(path, label_column, require_label, header, notes, allow_text)
    if extension == ".npz":
        return _read_npz(path, label_column, require_label)
    if extension in (".csv", ".txt"):
        return _read_csv(path, label_column, require_label, header, notes, allow_text)
    if extension == ".parquet":
        return _read_parquet(path, label_column, require_label, allow_text, notes)
    raise DataError(f"unsupported data file {path}: use a .csv (also .csv.gz, .csv.bz2, "
                    ".csv.xz), .parquet or .npz file.")


# the bytes of CSV text that one streamed block holds: pyarrow's working
# memory is some 40 times a block (measured: a peak of 135 MiB at 1 MiB
# blocks, 715 MiB at 16 MiB, for 100 float columns)
_STREAM_BLOCK_BYTES = 1 << 20
_BINARY_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}


def iter_csv_blocks(path, label_column=None, *, header=None, notes=None, text_columns=()):
    """A CSV's feature rows a block at a time, for files larger than memory.

    The separator, header and label column are detected as
    :func:`read_table` does (the label column, where there is one, is left
    out: ``require_label=False``), then pyarrow's streaming reader parses
    blocks of about 1 MiB of text, every feature column as float64. The file
    is handed to pyarrow as an open Python file, which it reads as it
    parses (given a path, it reads far ahead, and memory grows with the
    file).

    ``text_columns`` (positions among the feature columns) are read as
    text, for a model that encodes them as categories; the blocks are then
    pandas DataFrames.

    Returns
    -------
    names : list of str or None
        The feature columns' names, from the header.
    blocks : iterator of ndarray of shape (n_rows, n_features) or DataFrame
        float64 rows, NaN for missing entries, in file order.
    """
    import pyarrow
    import pyarrow.csv as pacsv

    compression, rows, separator, has_header, raw, label_index = _detect(
        path, label_column, False, header)
    width = len(rows[0])
    if len(set(raw)) != len(raw):
        raise DataError(f"{path} names a column twice ({raw}); give each column once.")
    features = [name for j, name in enumerate(raw) if j != label_index]
    if notes is not None:
        notes.append(f"read {path} in blocks: separator "
                     f"{_SHOWN.get(separator, repr(separator))}, "
                     + ("a header row" if has_header else "no header row")
                     + ("" if label_index is None else
                        f", column {raw[label_index]!r} left out"))
    file_names = [h for h in rows[0]] if has_header else raw
    feature_index = [j for j in range(width) if j != label_index]
    text = {feature_index[j] for j in text_columns if j < len(feature_index)}
    options = dict(
        read_options=pacsv.ReadOptions(
            block_size=_STREAM_BLOCK_BYTES, column_names=file_names,
            skip_rows=1 if has_header else 0),
        parse_options=pacsv.ParseOptions(delimiter=separator),
        convert_options=pacsv.ConvertOptions(
            null_values=_NA_VALUES, strings_can_be_null=True,
            column_types={file_names[j]: pyarrow.string() if j in text else pyarrow.float64()
                          for j in range(width) if j != label_index},
            include_columns=[file_names[j] for j in range(width) if j != label_index]),
    )

    def blocks():
        try:
            with _BINARY_OPENERS.get(compression, open)(path, "rb") as handle:
                yield from convert(pacsv.open_csv(handle, **options))
        except (pyarrow.ArrowException, OSError, UnicodeDecodeError, EOFError,
                lzma.LZMAError) as exc:
            message = str(exc).splitlines()[0]
            if "conversion error to double" in message:
                raise DataError(f"{path}: a feature column holds a value that is not a "
                                f"number ({message}). Encode it as a number, or name the "
                                "label column with --label-column.") from None
            raise DataError(f"could not read {path} as CSV: {message}") from None

    def convert(reader):
        if text:
            import pandas as pd

            for batch in reader:
                frame = pd.DataFrame({name: column.to_numpy(zero_copy_only=False)
                                      for name, column in zip(features, batch.columns)})
                yield frame.astype({name: object for j, name in zip(feature_index, features)
                                    if j in text})
            return
        for batch in reader:
            yield np.column_stack([
                column.to_numpy(zero_copy_only=False) for column in batch.columns
            ]).astype(np.float64, copy=False) if batch.num_rows else np.empty(
                (0, len(features)))

    return (features if has_header else None), blocks()


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


# compressed CSV: what pandas infers from the name (and reads itself)
_COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}
# the start of the file that the separator and header are detected on
_SAMPLE_BYTES = 1 << 16
_SEPARATORS = ",;\t|"


def _open_text(path, compression):
    """The file as text (decompressed), for detection only."""
    if compression is None:
        return open(path, newline="", encoding="utf-8-sig")
    if compression in ("gzip", "bz2", "xz"):
        opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression]
        return opener(path, "rt", newline="", encoding="utf-8-sig")
    raise DataError(
        f"{path}: {compression} compression is read by pandas, but skquant detects the "
        "separator and header on gzip, bz2 or xz files only; decompress it first.")


def _sample_rows(path, compression):
    """The first lines (at most ``_SAMPLE_BYTES`` of text) and the separator."""
    try:
        with _open_text(path, compression) as handle:
            text = handle.read(_SAMPLE_BYTES)
    except (OSError, UnicodeDecodeError, EOFError, lzma.LZMAError) as exc:
        raise DataError(f"could not read {path} as CSV: {exc}") from exc
    lines = text.splitlines()
    if len(text) == _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise DataError(f"{path} is empty.")
    try:
        separator = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=_SEPARATORS).delimiter
    except csv.Error:  # one column, or no consistent separator: commas
        separator = ","
    rows = list(csv.reader(lines[:50], delimiter=separator))
    return rows, separator


def _detect(path, label_column, require_label, header):
    """What a CSV's first lines say: ``(compression, sample rows, separator,
    whether there is a header, column names, the label column's index)``."""
    compression = _COMPRESSED.get(os.path.splitext(path)[1].lower())
    rows, separator = _sample_rows(path, compression)
    has_header = _looks_like_header(rows) if header is None else header
    width = len(rows[0])
    names = [h.strip() for h in rows[0]] if has_header else [f"x{j}" for j in range(width)]
    label_index = _label_index(names, has_header, label_column, require_label, path)
    return compression, rows, separator, has_header, names, label_index


def _check_numeric(path, names, dtypes):
    bad = [name for name, dtype in zip(names, dtypes) if not _numeric(dtype)]
    if bad:
        raise DataError(
            f"{path}: column(s) {bad} are not numeric. Encode them as numbers or "
            "drop them (or name the label column with --label-column)."
        )


def _features(path, names, features, allow_text, notes):
    """The feature columns as float64, or with ``allow_text`` and a text
    column among them, as a DataFrame of float64 and str columns."""
    text = [name for name, dtype in zip(names, features.dtypes) if not _numeric(dtype)]
    if not text or not allow_text:
        _check_numeric(path, names, features.dtypes)
        return features.to_numpy(dtype=np.float64, na_value=np.nan)
    import pandas as pd

    columns = {}
    for name, (_, column) in zip(names, features.items()):
        if name in text:
            values = column.astype(object)
            columns[name] = values.where(values.notna(), np.nan)
        else:
            columns[name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    if notes is not None:
        notes.append(f"text column(s) {text[:10]}{' ...' if len(text) > 10 else ''} read as "
                     "categories")
    return pd.DataFrame(columns, index=pd.RangeIndex(len(features)))


def _read_csv(path, label_column, require_label, header=None, notes=None, allow_text=False):
    import pandas as pd

    compression, rows, separator, has_header, names, label_index = _detect(
        path, label_column, require_label, header)
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):  # beyond the sample: pyarrow's check
        if len(row) != width:
            raise DataError(f"{path}, line {number}: {len(row)} fields, expected {width}.")
    if has_header and len(rows) == 1:
        raise DataError(f"{path} has a header but no data rows.")
    try:  # strict where pandas' own engine is not: a short line is an error
        import pyarrow  # noqa: F401
    except ImportError:
        raise DataError(f"reading {path} needs pyarrow, a dependency of skquant: "
                        "pip install pyarrow.") from None
    options = dict(
        sep=separator, header=0 if has_header else None, names=None if has_header else names,
        compression=compression or "infer", na_values=_NA_VALUES,
        keep_default_na=True, encoding="utf-8-sig",
        # the label column as text, so that "1" and "1.0" stay two classes
        dtype=None if label_index is None else {
            (rows[0][label_index] if has_header else names[label_index]): str},
    )
    try:
        # nullable columns: an integer column with a hole stays readable
        frame = pd.read_csv(path, engine="pyarrow", dtype_backend="pyarrow", **options)
    except (ValueError, OSError, UnicodeDecodeError, EOFError, pd.errors.ParserError,
            pyarrow.ArrowException) as exc:
        raise DataError(f"could not read {path} as CSV (separator "
                        f"{_SHOWN.get(separator, repr(separator))}): "
                        f"{str(exc).splitlines()[0]}") from exc
    if frame.shape[1] != width:
        raise DataError(f"{path}: {frame.shape[1]} columns, but its first line has {width}; "
                        "every line needs the same number of fields.")
    if not len(frame):
        raise DataError(f"{path} has a header but no data rows.")
    frame.columns = names
    feature_names = [name for j, name in enumerate(names) if j != label_index]
    features = frame.iloc[:, [j for j in range(width) if j != label_index]]
    X = _features(path, feature_names, features, allow_text, notes)
    y = None
    if label_index is not None:
        values = frame.iloc[:, label_index]
        y = _labels(["" if missing else str(v).strip()
                     for v, missing in zip(values.tolist(), values.isna().tolist())], path)
    if notes is not None:
        notes.append(
            f"read {path}: separator {_SHOWN.get(separator, repr(separator))}, "
            + ("a header row" if has_header else "no header row")
            + ("" if label_index is None else f", labels from column {names[label_index]!r}"
               + _label_reason(names, has_header, label_column, label_index, y)))
    return X, y, (feature_names if has_header else None)


def _numeric(dtype):
    """Numbers, booleans, or a column with no value at all (NaN throughout)."""
    arrow = getattr(dtype, "pyarrow_dtype", None)
    if arrow is not None:
        import pyarrow

        if pyarrow.types.is_null(arrow):
            return True
    return getattr(dtype, "kind", "O") in "biuf"


_SHOWN = {",": "',' (comma)", ";": "';' (semicolon)", "\t": "tab", "|": "'|'"}


def _label_reason(names, has_header, label_column, label_index, y):
    if label_column is not None:
        return ""
    if has_header and names[label_index] in ("label", "target", "class", "y"):
        return " (by its name)"
    reason = " (the last column"
    if y is not None and y.dtype.kind == "U" and len(np.unique(y)) > max(20, len(y) // 2):
        reason += f"; it holds {len(np.unique(y))} distinct values, which looks continuous:"
        reason += " name the label with --label-column"
    return reason + ")"


def _read_parquet(path, label_column, require_label, allow_text=False, notes=None):
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow "
                        f"({exc}).") from None
    except Exception as exc:  # a damaged or foreign file: whatever pyarrow raises
        raise DataError(f"could not read {path} as Parquet: {exc}") from exc
    names = [str(name) for name in frame.columns]
    label_index = _label_index(names, True, label_column, require_label, path)
    feature_index = [j for j in range(len(names)) if j != label_index]
    features = frame.iloc[:, feature_index]
    y = None
    if label_index is not None:
        values = frame.iloc[:, label_index]
        if values.isna().any():
            raise DataError(f"{path}: data row {int(np.flatnonzero(values.isna())[0]) + 1} "
                            "has no label; drop or label such rows.")
        y = values.to_numpy()
    X = _features(path, [names[j] for j in feature_index], features, allow_text, notes)
    return X, y, [names[j] for j in feature_index]


def _is_number(text):
    try:
        _to_float(text)
    except ValueError:
        return False
    return True


def _looks_like_header(rows):
    """Whether the first row is a header, compared with the rows after it:
    a field of it is text where the next row has a number (a text label
    column alone does not make a header), every field is text, or it numbers
    the columns ``0, 1, ...`` (or ``1, 2, ...``) where the rows after it do
    not (what ``pandas.DataFrame(X).to_csv(index=False)`` writes)."""
    first = [v.strip() for v in rows[0]]
    if len(rows) == 1:
        return not all(_is_number(v) for v in first)
    second = rows[1]
    if any(not _is_number(a) and _is_number(b) for a, b in zip(first, second)) or (
            not any(_is_number(v) for v in first) and len(first) == len(second)):
        return True
    for offset in (0, 1):
        numbering = [str(j + offset) for j in range(len(first))]
        if first == numbering and all([v.strip() for v in row] != numbering
                                      for row in rows[1:]):
            return True
    return False


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
