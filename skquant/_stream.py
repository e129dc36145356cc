"""fit_stream: fit a whole Pipeline from data that does not fit in memory."""

import inspect
import sys
import time
from collections.abc import Iterator

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, check_random_state

from ._validation import forget_fit

DEFAULT_CHUNK_SIZE = 32768


def fit_stream(
    pipeline, source, y=None, *, chunk_size=None, classes=None, epochs=None,
    shuffle=True, random_state=None, verbose=False,
):
    """Fit a Pipeline chunk by chunk, in memory that does not grow with the rows.

    Each step learns by ``partial_fit`` in passes over the source: the first
    step in the first pass (which also collects the class labels), the
    second step in the second pass from the first step's output, and so on;
    the final estimator then trains for ``epochs`` passes. For the skquant
    Pipeline that is one pass for the :class:`Cleaner` (exact counts, means
    and duplicates, and a fixed-size row sample for its quantiles), one for
    the projection, and one per epoch for :class:`KerasMLPClassifier`. Only
    a chunk, the copies the steps make of it, and each step's fixed-size
    state are in memory at a time: peak memory is about
    ``max(chunk_size, Cleaner.sketch_size) x n_features x 8`` bytes times a
    few, plus TensorFlow, whatever the number of rows.

    Errors about the pipeline, the arguments and the kind of source are
    raised before anything is read or changed; errors about the content (a
    chunk's columns or labels, a pass's row count) at the chunk where they
    show, before the classifier trains whenever the pipeline has a step
    before it.

    Parameters
    ----------
    pipeline : Pipeline or estimator
        What to fit, in place: every step but the last needs ``partial_fit``
        and ``transform``, the last ``partial_fit``. Each step is replaced by
        an unfitted clone first, so that, as with ``fit``, nothing of an
        earlier fit is kept.
    source : callable, array-like or dask.array.Array
        The training rows:

        - a callable returning a new iterator of ``(X_chunk, y_chunk)``
          pairs on every call (it is called once per pass), for example a
          function that reads a file chunk by chunk;
        - a 2-D array, such as a ``numpy.memmap`` over a file on disk (or
          any array that slices lazily, like an HDF5 or Zarr dataset), read
          ``chunk_size`` rows at a time, with the labels in ``y``;
        - a 2-D Dask array, read block row by block row (computing one
          block at a time), with the labels in ``y`` (a Dask or numpy array).
    y : array-like of shape (n_samples,) or None, default=None
        The labels of an array source; None for a callable source.
    chunk_size : int or None, default=None
        Rows per chunk of an array source (about 32768 when None: the rows
        are split into chunks of nearly equal size), or of a Dask array (its
        own row blocks when None). A callable sets its own.
    classes : array-like or None, default=None
        Every class label. When None, the first pass collects them.
    epochs : int or None, default=None
        Passes that train the final estimator; None takes its ``epochs``
        parameter when it has one (KerasMLPClassifier), else 1.
    shuffle : bool, default=True
        Each epoch, visit the chunks of an array source in a new random
        order, and shuffle the rows within every chunk.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling. The steps' own randomness follows their own
        ``random_state``.
    verbose : bool, default=False
        Print one line per pass (rows, seconds) to stderr.

    Returns
    -------
    pipeline : Pipeline or estimator
        The fitted ``pipeline``: it predicts, pickles and quantizes like one
        fitted in memory.

    Raises
    ------
    TypeError
        A step cannot learn from a stream (it has no ``partial_fit``), or
        the source is of an unsupported kind. Raised before any data is read.
    ValueError
        The source yields no rows, a chunk whose column count differs from
        the first chunk's, a chunk without labels, a different number of
        rows on a later pass, or (on a later pass) a label the first pass
        did not see.

    See Also
    --------
    Cleaner.partial_fit, KerasMLPClassifier.partial_fit : the steps' updates.
    skquant.distributed.dask_predict : predict block by block on Dask.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skquant import fit_stream, make_quant_pipeline
    >>> X, y = load_digits(return_X_y=True)   # or a numpy.memmap of any size
    >>> pipe = make_quant_pipeline("column", 16, random_state=0,
    ...                            classify__epochs=5)
    >>> pipe = fit_stream(pipe, X, y, chunk_size=600, random_state=0)
    >>> pipe[0].n_samples_seen_
    1797
    >>> bool(pipe.score(X, y) > 0.8)
    True
    """
    # every check before the pipeline is touched or the source read
    positions = _streamable_steps(pipeline)
    final = pipeline.steps[positions[-1]][1] if positions else pipeline
    reader = _ChunkReader(_open_source(source, y, chunk_size), classes, is_classifier(final))
    if epochs is None:
        epochs = final.get_params().get("epochs", 1) if hasattr(final, "get_params") else 1
    if isinstance(epochs, bool) or not (isinstance(epochs, (int, np.integer)) and epochs >= 1):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    rng = check_random_state(random_state)
    steps = _fresh_steps(pipeline, positions)
    final_name, final = steps[-1]

    fitted = []
    for name, step in steps[:-1]:
        started = time.perf_counter()
        for X_chunk, y_chunk in reader.read_pass():
            step.partial_fit(_transform(fitted, X_chunk), y_chunk)
        reader.report(verbose, f"{name}: partial_fit", started)
        fitted.append(step)
    if reader.passes == 0 and reader.labels and reader.classes is None:
        started = time.perf_counter()
        for _ in reader.read_pass():
            pass
        reader.report(verbose, "labels", started)

    pass_classes = is_classifier(final) and _accepts(final.partial_fit, "classes")
    for epoch in range(int(epochs)):
        started = time.perf_counter()
        for X_chunk, y_chunk in reader.read_pass(rng if shuffle else None):
            X_chunk = _transform(fitted, X_chunk)
            if shuffle:
                order = rng.permutation(len(y_chunk))
                X_chunk, y_chunk = _safe_indexing(X_chunk, order), y_chunk[order]
            first = epoch == 0 and not hasattr(final, "classes_")
            extra = {"classes": reader.classes} if pass_classes and first else {}
            final.partial_fit(X_chunk, y_chunk, **extra)
        reader.report(verbose, f"{final_name}: epoch {epoch + 1}/{epochs}", started)
    return pipeline


def _accepts(method, name):
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _transform(fitted, X):
    for step in fitted:
        X = step.transform(X)
    return X


def _streamable_steps(pipeline):
    """Check that every step can learn from a stream; return the positions
    of the steps to fit in ``pipeline.steps`` (empty for an estimator)."""
    from .neural import KerasMLPClassifier

    if isinstance(pipeline, Pipeline):
        positions = [
            i for i, (_, step) in enumerate(pipeline.steps)
            if step is not None and step != "passthrough"
        ]
        if not positions:
            raise TypeError("The pipeline has no step to fit.")
        steps = [pipeline.steps[i] for i in positions]
    elif hasattr(pipeline, "partial_fit"):
        positions, steps = [], [("estimator", pipeline)]
    else:
        raise TypeError(
            f"fit_stream fits a Pipeline or an estimator with partial_fit, got "
            f"{type(pipeline).__name__}."
        )
    for position, (name, step) in enumerate(steps):
        last = position == len(steps) - 1
        needed = ("partial_fit",) if last else ("partial_fit", "transform")
        missing = [method for method in needed if not hasattr(step, method)]
        if missing:
            raise TypeError(
                f"Step {name!r} ({type(step).__name__}) cannot learn from a stream: "
                f"it has no {' or '.join(missing)}. Use steps that learn chunk by "
                "chunk (skquant's Cleaner, projections and KerasMLPClassifier; "
                "sklearn's StandardScaler, IncrementalPCA, SGDClassifier, ...), "
                "or fit in memory with pipeline.fit."
            )
    final = steps[-1][1]
    if isinstance(final, KerasMLPClassifier) and final.early_stopping:
        raise ValueError(
            "early_stopping holds out part of the whole training set, which a "
            "stream never shows at once; set early_stopping=False (for a "
            "Pipeline: classify__early_stopping=False) to fit from a stream."
        )
    return positions


def _fresh_steps(pipeline, positions):
    """Replace each step by an unfitted clone, as ``fit`` starts afresh."""
    if not positions:
        if hasattr(pipeline, "get_params"):
            forget_fit(pipeline)  # an estimator alone: the same object is returned
        return [("estimator", pipeline)]
    pipeline.set_params(**{pipeline.steps[i][0]: clone(pipeline.steps[i][1]) for i in positions})
    return [pipeline.steps[i] for i in positions]


def _is_dask(obj):
    return type(obj).__module__.partition(".")[0] in ("dask", "dask_expr")


def _is_dask_array(obj):
    return _is_dask(obj) and hasattr(obj, "chunks")


def _open_source(source, y, chunk_size):
    if chunk_size is not None and (isinstance(chunk_size, bool) or not (
        isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1
    )):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
    if isinstance(source, Iterator):
        raise TypeError(
            "source is an iterator, which can be read only once, but fitting "
            "reads the data once per step and epoch. Pass the function that "
            "makes it (source=lambda: read_chunks(path))."
        )
    if callable(source) and not hasattr(source, "shape"):
        if y is not None:
            raise ValueError(
                "y must be None with a callable source: its chunks are (X, y) pairs."
            )
        if chunk_size is not None:
            raise ValueError(
                "chunk_size applies to array sources; a callable source yields "
                "its own chunks."
            )
        return _CallableSource(source)
    if _is_dask(source) and not _is_dask_array(source):
        raise TypeError(
            f"Unsupported source {type(source).__name__}: a Dask collection must be "
            "a 2-D Dask array; convert a Dask DataFrame with "
            "ddf.to_dask_array(lengths=True)."
        )
    if _is_dask_array(source) and any(np.isnan(size) for size in source.chunks[0]):
        raise ValueError(
            "The Dask array's row blocks have unknown sizes; call "
            "source.compute_chunk_sizes() first."
        )
    if getattr(source, "ndim", None) == 2 and hasattr(source, "__getitem__"):
        if y is None:
            raise ValueError(
                "An array source needs its labels: pass y, an array with one "
                "label per row."
            )
        if len(y) != source.shape[0]:
            raise ValueError(
                f"source has {source.shape[0]} rows but y has {len(y)} labels."
            )
        if _is_dask_array(source):
            return _DaskSource(source, y, chunk_size)
        return _ArraySource(source, y, chunk_size or DEFAULT_CHUNK_SIZE)
    if getattr(source, "ndim", None) is not None:
        raise ValueError(
            f"An array source must be 2-D (rows x columns), got shape "
            f"{getattr(source, 'shape', None)}."
        )
    raise TypeError(
        f"Unsupported source {type(source).__name__}: pass a function returning "
        "an iterator of (X, y) chunks, a 2-D array such as a numpy.memmap, or a "
        "2-D Dask array."
    )


class _CallableSource:
    random_access = False

    def __init__(self, make_chunks):
        self.make_chunks = make_chunks

    def chunks(self, rng=None):
        chunks = self.make_chunks()
        try:
            iterator = iter(chunks)
        except TypeError:
            raise TypeError(
                f"The source function returned {type(chunks).__name__}, not an "
                "iterable of (X, y) chunks."
            ) from None
        for item in iterator:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ValueError(
                    "Each chunk of a callable source must be an (X, y) pair, got "
                    f"{type(item).__name__}"
                    + (f" of length {len(item)}" if isinstance(item, tuple) else "")
                    + "."
                )
            yield item


class _ArraySource:
    random_access = True

    def __init__(self, X, y, chunk_size):
        self.X, self.y, self.chunk_size = X, y, int(chunk_size)

    def chunks(self, rng=None):
        # chunks of nearly equal size (none shorter than chunk_size / 2): a
        # short tail chunk, shuffled to the front, would be all the first
        # partial_fit call sees (the classifier learns its standardization
        # there)
        n_rows = self.X.shape[0]
        n_chunks = max(1, int(round(n_rows / self.chunk_size)))
        bounds = np.linspace(0, n_rows, n_chunks + 1).astype(np.int64)
        order = np.arange(n_chunks)
        if rng is not None:
            rng.shuffle(order)
        for chunk in order:
            rows = slice(int(bounds[chunk]), int(bounds[chunk + 1]))
            yield _safe_indexing(self.X, rows), _safe_indexing(self.y, rows)


class _DaskSource:
    random_access = True

    def __init__(self, X, y, chunk_size):
        if chunk_size is not None:
            X = X.rechunk({0: chunk_size})
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})  # whole rows in each block
        self.X, self.y = X, y
        self.bounds = np.cumsum((0,) + X.chunks[0])

    def chunks(self, rng=None):
        import dask

        order = np.arange(len(self.bounds) - 1)
        if rng is not None:
            rng.shuffle(order)
        for block in order:
            rows = slice(int(self.bounds[block]), int(self.bounds[block + 1]))
            yield dask.compute(self.X[rows], self.y[rows])


class _ChunkReader:
    """Reads passes over a source, checking that every pass yields chunks of
    the same shape, the same number of rows, and no label the first did
    not see."""

    def __init__(self, source, classes, labels=True):
        self.source = source
        self.labels = labels  # whether y holds class labels (a classifier's)
        self.classes = None if classes is None else np.unique(np.asarray(classes))
        self.declared = classes is not None
        self.passes = 0
        self.n_features = None
        self.n_rows = None

    def read_pass(self, rng=None):
        self.passes += 1
        number = self.passes
        rows = 0
        seen = []
        for index, (X, y) in enumerate(self.source.chunks(rng)):
            X, y = self._check_chunk(X, y, index, number)
            if y.shape[0] == 0:
                continue
            if not self.labels:
                pass
            elif number == 1 and not self.declared:
                seen.append(np.unique(y))
            else:
                self._check_labels(y, index, number)
            rows += y.shape[0]
            yield X, y
        if rows == 0:
            raise ValueError(
                "The source yielded no rows"
                + (f" on pass {number}, after {self.n_rows} on the first" if number > 1 else "")
                + ". "
                + ("A callable source must return a new iterator on every call."
                   if number > 1 else "Check the source is not empty.")
            )
        if number == 1:
            self.n_rows = rows
            if self.labels and not self.declared:
                self.classes = np.unique(np.concatenate(seen))
        elif rows != self.n_rows:
            raise ValueError(
                f"Pass {number} over the source yielded {rows} rows, but the first "
                f"yielded {self.n_rows}: the source must give the same rows on every "
                "pass (a callable source must return a new iterator over the same "
                "data on every call)."
            )

    def _check_chunk(self, X, y, index, number):
        where = f"Chunk {index} (pass {number})"
        if y is None:
            raise ValueError(f"{where} has no labels (y is None); every chunk needs them.")
        if not hasattr(X, "shape"):
            X = np.asarray(X)
        y = np.asarray(y)
        if len(X.shape) != 2:
            raise ValueError(f"{where}: X must be 2-D, got shape {X.shape}.")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"{where}: X has {X.shape[0]} rows but y has shape {y.shape}; "
                "each chunk needs one label per row."
            )
        if self.n_features is None:
            self.n_features = X.shape[1]
        elif X.shape[1] != self.n_features:
            raise ValueError(
                f"{where} has {X.shape[1]} columns, but the first chunk had "
                f"{self.n_features}; every chunk must have the same columns."
            )
        return X, y

    def _check_labels(self, y, index, number):
        unknown = np.setdiff1d(np.unique(y), self.classes)
        if unknown.size:
            source = "the classes passed" if self.declared else "the first pass"
            raise ValueError(
                f"Chunk {index} (pass {number}) holds label(s) {unknown.tolist()[:10]} "
                f"that {source} did not include ({self.classes.tolist()[:20]}). "
                + ("Pass every label as classes." if self.declared else
                   "The source must give the same rows on every pass; or pass "
                   "every label as classes.")
            )

    def report(self, verbose, what, started):
        if verbose:
            print(
                f"[fit_stream] pass {self.passes} ({what}): {self.n_rows} rows in "
                f"{time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
