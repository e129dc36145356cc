"""QuantizedPipeline: a fitted skquant pipeline as numpy arrays and steps."""

import numpy as np

from .. import kernels
from . import _artifact
from ._plan import build_plan
from ._schema import ARTIFACT_KEYS, MAX_ARRAY_BYTES, ArtifactError, check_model, layout_of
from ._steps import STEPS, Float64Rows, NonFiniteError, check_finite, restore

# the working memory of one block of rows (bytes): the rows of a call are
# run through the steps a block at a time, so that a wide step (one that a
# small file can declare) costs this much and not this much per row
_BLOCK_BYTES = 64 << 20


class _Arrays:
    """What a step's constructor reads its arrays with: ``get(name, dtype,
    transpose=...)`` restores one (see :func:`restore`), and
    ``get.float64_rows(name)`` gives a :class:`Float64Rows`."""

    def __init__(self, arrays, prefix):
        self._arrays, self._prefix = arrays, prefix

    def __call__(self, name, dtype=np.float32, *, transpose=False):
        return restore(self._arrays, self._prefix + name, dtype, transpose=transpose)

    def float64_rows(self, name):
        return Float64Rows(self._arrays, self._prefix + name)

    def has(self, name):
        """Whether the step has the (optional) array ``name``."""
        return self._prefix + name in self._arrays


def _column(X, j):
    """Column ``j`` of a pandas or polars DataFrame or a 2-D array."""
    if hasattr(X, "iloc"):
        return X.iloc[:, j]
    if hasattr(X, "to_series"):
        return X.to_series(j)
    return X[:, j]


def _numbers(column, name):
    """A numeric input column as float64, NaN for a missing value."""
    try:
        if hasattr(column, "iloc"):  # pandas
            return column.to_numpy(dtype=np.float64, na_value=np.nan)
        if hasattr(column, "to_numpy"):  # polars: nulls become NaN
            column = column.to_numpy()
        column = np.asarray(column)
        if column.dtype.kind == "O":
            column = [np.nan if kernels._is_missing(v) else v for v in column.tolist()]
        return np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X's column {name} must hold numbers, as in training, but holds "
                         f"a value that is not one ({exc}).") from None


def split_table(X, categorical, n_features, what="model", names=None, unread=()):
    """A table's columns as the two kinds a model that encodes categories
    reads: ``(numbers, texts)``, ``numbers`` the float64 columns (NaN at
    the categorical positions, and for a missing number), ``texts`` each
    categorical position's ``kernels.as_text`` pair. The columns at
    ``unread`` (the Cleaner dropped them: the model reads nothing there)
    are left NaN, whatever they hold. The numpy runtime, :func:`skquant.run_onnx`
    and ``run_tflite`` read tables through it."""
    if not (hasattr(X, "columns") or (isinstance(X, np.ndarray) and X.ndim == 2)):
        shown = "" if names is None else " (" + ", ".join(names) + ")"
        raise TypeError(
            f"This {what} encodes categorical columns{shown}: give it a table (a pandas or "
            f"polars DataFrame, or a 2-D object array), not {type(X).__name__}.")
    width = len(X.columns) if hasattr(X, "columns") else X.shape[1]
    if width != n_features:
        raise ValueError(f"X has {width} features, but the {what} is expecting "
                         f"{n_features} features as input.")
    numbers = np.full((X.shape[0], n_features), np.nan)
    texts = {}
    for j in range(n_features):
        column = _column(X, j)
        if j in categorical:
            texts[j] = kernels.as_text(column)
        elif j not in unread:
            numbers[:, j] = _numbers(column, _column_name(X, j, names))
    return numbers, texts


def _column_name(X, j, names):
    """How an error names column ``j``: its name in ``names``, else its
    position and the table's own name for it."""
    if names is not None:
        return names[j]
    if hasattr(X, "columns"):
        return f"{j} ({str(X.columns[j])!r})"
    return str(j)


def text_input(numbers, texts, positions):
    """The text input of an exported model (ONNX, TFLite) from
    :func:`split_table`'s output: one str column per categorical position,
    in order; and ``numbers`` marked in place, at each such position, NaN
    where the value is missing and 0 where it is not (the exported models
    read a missing category from ``X``: no text can stand for it, as any
    text, "" included, may be a category)."""
    text = np.empty((numbers.shape[0], len(positions)), dtype=object)
    for number, j in enumerate(positions):
        values, missing = texts[j]
        text[:, number] = values
        numbers[:, j] = np.where(missing, np.nan, 0.0)
    return text


def _has_text(X, only_in=None):
    """Whether ``X`` is a table that may hold text: a 2-D object array, or a
    pandas or polars DataFrame with a column that is not numeric. With
    ``only_in`` (positions): a table with text columns, all among them (a
    DataFrame's non-numeric columns; an object array's columns holding a
    str)."""
    if isinstance(X, np.ndarray):
        if X.dtype.kind != "O" or X.ndim != 2:
            return False
        if only_in is None:
            return True
        text = {j for j in range(X.shape[1])
                if any(isinstance(value, str) for value in X[:, j].tolist())}
        return bool(text) and text <= set(only_in)
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "columns"):
        return False
    text = set()
    for j, dtype in enumerate(list(dtypes)):
        if hasattr(dtype, "is_numeric"):  # polars
            if not (dtype.is_numeric() or str(dtype) == "Boolean"):
                text.add(j)
        elif getattr(dtype, "kind", "O") not in "biuf":
            text.add(j)
    return bool(text) and (only_in is None or text <= set(only_in))


def refuse_beyond_float32(values, rows, what, cleans=True):
    """Raise where a finite value of ``values`` became infinite in its
    float32 copy ``rows``: a model that computes in float32 (the numpy
    runtime, ONNX, TFLite) would read it as missing, or overflow."""
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4 or not values.size:
        return
    with np.errstate(invalid="ignore"):
        overflow = np.isinf(rows) & np.isfinite(values)
    if overflow.any():
        row, column = np.argwhere(overflow)[0]
        raise ValueError(
            f"X holds {values[row, column]:.3g} (row {row}, column {column}), beyond "
            f"float32's range (about ±3.4e38): the {what} computes in float32, so it "
            "serves inputs within that range. Rescale such columns" + (
                ", or mark the values missing (NaN) for its Cleaner to impute."
                if cleans else "."))


def float32_rows(values, what, cleans=True):
    """``values`` as contiguous float32 rows, for a model that computes in
    float32 (ONNX, TFLite), refusing a finite value that becomes infinite on
    the way (:func:`refuse_beyond_float32`)."""
    with np.errstate(over="ignore"):
        rows = np.ascontiguousarray(values, dtype=np.float32)
    refuse_beyond_float32(values, rows, what, cleans)
    return rows


def is_count(text):
    """Whether ``text`` is a plain decimal number, as an exported model's
    metadata and input names write column positions ("²" is a digit to
    ``str.isdigit``)."""
    return text.isascii() and text.isdigit()


def unread_columns(clean, n_features):
    """The input columns a pipeline's first step (a Clean step) reads
    nothing from: those its Cleaner dropped, text ones included."""
    read = set(clean.keep.tolist()) | {column for column, _, _, _ in clean.categories}
    return frozenset(j for j in range(n_features) if j not in read)


def _is_sparse(X):
    """A scipy.sparse matrix or array (or pydata sparse), without importing scipy."""
    module = type(X).__module__ or ""
    densify = hasattr(X, "toarray") or hasattr(X, "todense")
    return (module.startswith(("scipy.sparse", "sparse.")) and densify) or (
        hasattr(X, "tocsr") and hasattr(X, "nnz"))


class QuantizedPipeline:
    """A fitted pipeline that predicts with numpy alone.

    Made by :func:`skquant.quantize` from a fitted Pipeline (cleaning,
    projection, classifier), saved with :meth:`save` as one portable file and
    read back with :func:`skquant.load_quantized`. It has scikit-learn's
    prediction interface, and neither TensorFlow nor scikit-learn is
    imported to use it.

    Parameters
    ----------
    manifest : dict
        The JSON description of the steps (as in the artifact).
    arrays : dict of str to ndarray
        The steps' arrays, quantized as the manifest's ``dtype`` says.

    Raises
    ------
    skquant.runtime.ArtifactError
        If the manifest and arrays do not make a valid pipeline: they are
        checked as an artifact's are (schema, dtypes, shapes chained from
        step to step, finite weights, indices in range).

    Notes
    -----
    The runtime computes in float32 and serves inputs within float32's
    range: ``predict`` and ``predict_proba`` raise ``ValueError`` for finite
    inputs beyond it, for NaN or infinity when the pipeline does not start
    with a Cleaner, and for rows on which a step overflows float32, so that
    no output is ever NaN. Sparse input raises ``TypeError``: pass
    ``X.toarray()``. Rows are run through the steps in blocks whose working
    memory is at most about 64 MiB, however wide the steps are.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Input column names, when the pipeline was fitted with named columns.
    dtype : str
        How the weights are stored: ``"float32"``, ``"float16"`` or ``"int8"``.
    steps : list of str
        The kind of each step, in order.
    nbytes : int
        Bytes of the stored arrays.

    See Also
    --------
    skquant.quantize : make one from a fitted pipeline.
    skquant.load_quantized : read a saved one.

    Examples
    --------
    >>> import numpy as np
    >>> from skquant.runtime import QuantizedPipeline
    >>> manifest = {"dtype": "float32", "n_features_in": 2, "steps": [
    ...     {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 1}}]}
    >>> arrays = {"classes": np.array([0, 1]),
    ...           "c.input_mean": np.zeros(2, np.float32),
    ...           "c.input_scale": np.ones(2, np.float32),
    ...           "c.weights0": np.array([[1., 0.], [0., 1.]], np.float32),
    ...           "c.bias0": np.zeros(2, np.float32)}
    >>> QuantizedPipeline(manifest, arrays).predict(np.array([[3.0, 1.0], [0.0, 2.0]]))
    array([0, 1])
    """

    def __init__(self, manifest, arrays):
        plan = check_model(manifest, layout_of(arrays), STEPS, allow=ARTIFACT_KEYS)
        plan.check_values(arrays)
        self._build(manifest, arrays, plan)

    @classmethod
    def _validated(cls, manifest, arrays, plan):
        """One made from what :func:`~skquant.runtime._artifact.load` checked."""
        pipeline = cls.__new__(cls)
        pipeline._build(manifest, arrays, plan)
        return pipeline

    def _build(self, manifest, arrays, plan):
        self.manifest = manifest
        self.arrays = arrays
        self.dtype = manifest["dtype"]
        self.classes_ = arrays["classes"]
        self.n_features_in_ = int(manifest["n_features_in"])
        if "feature_names" in arrays:
            self.feature_names_in_ = arrays["feature_names"].astype(object)
        self.steps = [step["kind"] for step in manifest["steps"]]
        # NaN and infinity are imputed only where the pipeline starts cleaning
        self._cleans = self.steps[0] == "clean"
        run = []
        for step, params, prefix in plan.steps:
            try:
                run.append(step(params, _Arrays(arrays, prefix)))
            except (MemoryError, ArtifactError):  # an ArtifactError: a derived
                raise  # quantity (a norm, say) that no input could be served with
            except Exception as exc:  # validated above: this would be a bug
                raise ArtifactError(
                    f"the {prefix!r} step could not be built ({type(exc).__name__}: "
                    f"{exc}), although its arrays passed validation; please report "
                    "this as a bug of skquant.") from None
        self._run = run
        # the categorical input columns: position -> their number in the
        # Cleaner's step (whose codes the input holds there)
        self._categorical = {column: number for number, (column, _, _, _) in enumerate(
            run[0].categories)} if self._cleans else {}
        # the input columns the Cleaner dropped: a table's text there is not read
        self._unread = unread_columns(run[0], self.n_features_in_) if self._cleans else frozenset()
        # what predictions run: the steps fused into fewer operations
        self._clip, self._plan = build_plan(run, self.steps, self.n_features_in_)
        # whether no operation can overflow, whatever the (finite) input
        self._guarded = self._clip is not None and not any(op.check for op in self._plan)
        # rows per block: the widest step's working memory (and the output
        # of the step before it) within _BLOCK_BYTES; a multiple of 256 rows
        # (of the graph step's blocks of 128), where it can be
        per_row = 4 * self.n_features_in_ + 2 * max(step.row_bytes() for step in run)
        rows = max(1, _BLOCK_BYTES // per_row)
        self._block_rows = rows - rows % 256 if rows >= 256 else rows

    @property
    def nbytes(self):
        return int(sum(array.nbytes for array in self.arrays.values()))

    def _as_float32(self, X):
        if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a DataFrame
            text = [str(column) for column, dtype in zip(X.columns, X.dtypes)
                    if getattr(dtype, "kind", "O") not in "biuf"]
            if text:
                raise ValueError(
                    f"X must be numeric, but its column(s) {text[:5]} hold non-numeric "
                    "values (text, categories, dates, objects): encode them as numbers "
                    "before predicting.")
            if hasattr(X, "to_numpy"):
                X = X.to_numpy(dtype=np.float64, na_value=np.nan)
        try:
            values = np.asarray(X)
            if values.dtype.kind == "O":
                values = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"X must be a 2-D array of numbers ({exc}). Encode text columns as "
                "numbers before predicting.") from None
        if values.dtype.kind not in "biuf":
            raise ValueError(
                f"X must be numeric, but it holds {values.dtype} values. Encode text "
                "columns as numbers before predicting.")
        if values.ndim == 1:
            raise ValueError(
                "Expected a 2-D array, got a 1-D one. Reshape a single row with "
                "X.reshape(1, -1).")
        if values.ndim != 2:
            raise ValueError(
                f"Expected a 2-D array of shape (n_samples, {self.n_features_in_}), got "
                f"a {values.ndim}-D one of shape {values.shape}.")
        if values.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {values.shape[1]} features, but the model is expecting "
                f"{self.n_features_in_} features as input.")
        return values, values.astype(np.float32, copy=False)

    def _table_as_float32(self, X):
        """A table with categorical columns as the steps' input: numbers
        where it has numbers, each categorical column's codes (its rows in
        the Cleaner's lookup tables) where it has categories."""
        names = [self._column_name(j) for j in range(self.n_features_in_)]
        values, texts = split_table(X, self._categorical, self.n_features_in_,
                                    names=names, unread=self._unread)
        clean = self._run[0]
        for j, (text, missing) in texts.items():
            values[:, j] = clean.codes(text, missing, self._categorical[j])
        return values, values.astype(np.float32)

    def _column_name(self, j):
        names = getattr(self, "feature_names_in_", None)
        return repr(str(names[j])) if names is not None else str(j)

    def _check(self, X):
        ordered = False
        if (self._categorical or self._unread) and hasattr(X, "columns") and hasattr(
                self, "feature_names_in_"):
            # first: the positions of a table's text columns count below
            X, ordered = self._by_name(X), True
        if self._categorical or (self._unread and _has_text(X, only_in=self._unread)):
            values, X = self._table_as_float32(X)
            return X, self._finite(values, X)
        if type(X) is np.ndarray and X.dtype == np.float32 and X.ndim == 2 and (
                X.shape[1] == self.n_features_in_):
            # the serving fast path: nothing to convert
            values = X
        else:
            values, X = self._convert(X, ordered)
        return X, self._finite(values, X)

    def _convert(self, X, ordered=False):
        if _is_sparse(X):
            raise TypeError(
                f"X is a sparse matrix ({type(X).__name__}); the quantized runtime takes "
                "dense arrays: pass X.toarray().")
        if not ordered and hasattr(X, "columns") and hasattr(self, "feature_names_in_"):
            X = self._by_name(X)
        return self._as_float32(X)

    def _by_name(self, X):
        """The DataFrame's columns in the model's order, by name."""
        names = [str(c) for c in X.columns]
        missing = [n for n in self.feature_names_in_ if n not in names]
        if missing:
            raise ValueError(f"X lacks the column(s) {missing[:5]} the model was "
                             "fitted on.")
        repeated = sorted({n for n in self.feature_names_in_ if names.count(n) > 1})
        if repeated:
            raise ValueError(f"X has the column(s) {repeated[:5]} more than once: "
                             "give each column once.")
        # by position: the names compared as strings may be other objects
        order = [names.index(n) for n in self.feature_names_in_]
        if hasattr(X, "iloc"):
            return X.iloc[:, order]
        return X.select([X.columns[j] for j in order])  # polars

    def _finite(self, values, X):
        """Whether every value of ``X`` is finite; raises where the input
        cannot be served (beyond float32, or non-finite with no Cleaner)."""
        # one pass over the input: NaN propagates to the extremes (a small
        # input: one call, where two reductions cost more)
        if X.size <= 4096:
            finite = bool(np.isfinite(X).all())
        else:
            finite = bool(np.isfinite(X.min()) and np.isfinite(X.max()))
        if not finite:
            refuse_beyond_float32(values, X, "quantized pipeline", self._cleans)
            if not self._cleans:
                row, column = np.argwhere(~np.isfinite(X))[0]
                raise ValueError(
                    f"X contains NaN or infinity (row {row}, column {column}), and this "
                    "pipeline has no Cleaner to impute them: impute them before "
                    "predicting, or put skquant.Cleaner first in the pipeline and "
                    "quantize it again.")
        return finite

    def _logits(self, X):
        # overflow surfaces as non-finite values, checked (one pass each) on
        # the input and after each operation that can overflow (see
        # _plan.py: most are proved unable to): a clear error instead of
        # numpy's warnings and NaN probabilities
        if self._guarded and type(X) is np.ndarray and X.dtype == np.float32:
            # nothing can warn: a float32 input needs no cast, and each
            # operation's output is bounded (the error state costs a
            # microsecond, a tenth of a one-row call)
            X, finite = self._check(X)
            if X.shape[0] <= self._block_rows:
                return self._run_plan(X, finite)
        with np.errstate(all="ignore"):
            X, finite = self._check(X)
            if X.shape[0] <= self._block_rows:
                try:
                    return self._run_plan(X, finite)
                except NonFiniteError as exc:
                    raise self._overflow(exc, 0, X.shape[0]) from None
            logits = np.empty((X.shape[0], self.classes_.size), dtype=np.float32)
            for start in range(0, X.shape[0], self._block_rows):
                try:
                    block = self._run_plan(X[start : start + self._block_rows], finite)
                except NonFiniteError as exc:
                    raise self._overflow(exc, start, X.shape[0]) from None
                logits[start : start + block.shape[0]] = block
        return logits

    def _run_plan(self, block, finite):
        if self._clip is not None:
            block = self._clip(block, finite)
        for operation in self._plan:
            block = operation(block)
        return block

    def _run_steps(self, X):
        """Each step's output in turn, step by step (the reference the
        fused plan is checked against): a list of float32 arrays."""
        with np.errstate(all="ignore"):
            block, _ = self._check(X)
            outputs = []
            for kind, step in zip(self.steps, self._run):
                block = step(block)
                if step.OVERFLOWS:
                    check_finite(block, f"{kind} step")
                outputs.append(block)
        return outputs

    @staticmethod
    def _overflow(exc, start, n_rows):
        bad = np.flatnonzero(~np.isfinite(exc.values).all(axis=1))
        rows = exc.values.shape[0]
        where = (f"{bad.size} of {rows} row(s)" if rows == n_rows else
                 f"{bad.size} of the {rows} row(s) from row {start}")
        return ValueError(
            f"The quantized pipeline's {exc.where} overflowed float32 on {where} (the "
            f"first: row {start + bad[0]}): they lie outside the range it was exported "
            "for, which needs every step's values to stay finite in float32. Check "
            "those rows for extreme values; a Cleaner with clipping bounds keeps inputs "
            "in range.")

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in)
            Raw rows, as the fitted pipeline took them (NaN allowed where the
            pipeline cleans).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        # exp in float32, as the logits are (half the time of float64); the
        # normalization in float64, so that each row sums to 1 to float64's
        # precision, as scikit-learn's probabilities do
        logits = self._logits(X)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        return np.divide(logits, logits.sum(axis=1, keepdims=True, dtype=np.float64),
                         dtype=np.float64)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in)
            Raw rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[np.argmax(self._logits(X), axis=1)]

    def score(self, X, y):
        """Accuracy of :meth:`predict` on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in)
            Raw rows.
        y : array-like of shape (n_samples,)
            True labels.

        Returns
        -------
        accuracy : float
        """
        y = np.asarray(y)
        predicted = self.predict(X)
        if y.shape != predicted.shape:
            raise ValueError(f"y has the shape {y.shape}; it must hold one label per row "
                             f"of X, shape {predicted.shape}.")
        return float(np.mean(predicted == y))

    def artifact_size(self):
        """Bytes of the saved artifact (written to memory, not to disk; unsigned).

        Returns
        -------
        n_bytes : int
        """
        return len(_artifact.artifact_bytes(self.manifest, self.arrays))

    def save(self, path, *, key=None):
        """Write the artifact: one file of arrays and a JSON manifest.

        The file is written atomically (a temporary file beside ``path``,
        then ``os.replace``): an interrupted save leaves any previous file
        at ``path`` intact. An existing file is replaced.

        Parameters
        ----------
        path : str or path-like
            Where to write it (conventionally ``*.skq``).
        key : bytes or None, default=None
            A secret (32 random bytes, say) to sign the artifact with
            (HMAC-SHA256), so that :func:`load_quantized` given the same key
            can tell that the file is unchanged and comes from a holder of
            the key. Without one, the file carries a checksum only, which
            detects corruption but not tampering.

        Returns
        -------
        path : str
            The path written.
        """
        return _artifact.write_artifact(path, self.manifest, self.arrays, key=key)

    def __repr__(self):
        return (f"QuantizedPipeline(steps={self.steps}, dtype={self.dtype!r}, "
                f"n_features_in={self.n_features_in_}, n_classes={len(self.classes_)})")


def load_quantized(path, *, key=None, max_bytes=MAX_ARRAY_BYTES):
    """Read a :class:`QuantizedPipeline` saved with its ``save`` method.

    Reading runs no pickle: an artifact from an untrusted source cannot run
    code. Everything is validated before the arrays are read (sizes, the
    manifest's schema, the array index, the steps' shapes) or used (finite
    weights, indices in range, tree structures); memory is bounded by the
    declared array bytes. Only numpy is imported.

    Parameters
    ----------
    path : str, path-like or binary file object
        The artifact file.
    key : bytes or None, default=None
        The secret the artifact was signed with (``save(path, key=...)``).
        Given, the file must carry a matching HMAC-SHA256 signature: an
        unsigned, differently signed or changed file is refused. Without a
        key the checksum is checked, which catches corruption and
        truncation but not a deliberate edit.
    max_bytes : int, default=512 MiB
        The most array bytes to accept; a larger file is refused before
        anything is read.

    Returns
    -------
    pipeline : QuantizedPipeline

    Raises
    ------
    skquant.runtime.ArtifactError
        For any file that is not a valid artifact: not a zip, truncated,
        corrupt, malformed, unsigned or wrongly signed when a key is given,
        or of another format version (version 1: re-export the model).
    OSError
        If the file cannot be opened.
    TypeError
        For a file object that cannot seek or is open in text mode.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skquant
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = skquant.make_quant_pipeline("column", 16, random_state=0,
    ...                                    classify__epochs=3).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "digits.skq")
    >>> key = b"a secret of thirty-two bytes...."
    >>> _ = skquant.quantize(pipe, dtype="int8").save(path, key=key)
    >>> served = skquant.load_quantized(path, key=key)
    >>> served.predict(X[:3]).shape
    (3,)
    >>> skquant.load_quantized(path, key=b"another key")
    Traceback (most recent call last):
    ...
    skquant.runtime.ArtifactError: ...signature that does not match the key...
    """
    manifest, arrays, plan = _artifact.load(path, key=key, max_bytes=max_bytes)
    return QuantizedPipeline._validated(manifest, arrays, plan)
