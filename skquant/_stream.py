"""fit_stream: fit a whole Pipeline from data that does not fit in memory.

The steps before the last learn in passes over the source; the rows they
produce (the last step's input) are then written once into a compact store
(:class:`_RowStore`), in memory or memory-mapped on disk, and every epoch of
the last step reads that store instead of the source.
"""

import inspect
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from numbers import Integral

import numpy as np
import scipy.sparse
from sklearn.base import clone, is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._store import _RowStore
from ._validation import forget_fit

DEFAULT_CHUNK_SIZE = 32768
DEFAULT_STORE_BUDGET = 2**30  # 1 GiB
STORE_DTYPES = ("float32", "int8")


@validate_params(
    {
        "pipeline": "no_validation",  # checked by _streamable_steps, with advice
        "source": "no_validation",  # checked by _open_source, with advice
        "y": "no_validation",
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "classes": ["array-like", None],
        "epochs": [Interval(Integral, 1, None, closed="left"), None],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "store_budget": [Interval(Integral, 1, None, closed="left")],
        "store_dtype": [StrOptions(set(STORE_DTYPES))],
        "temp_dir": [str, os.PathLike, None],
        "return_info": ["boolean"],
        "verbose": ["verbose"],
    },
    # the steps validate their own parameters when they learn
    prefer_skip_nested_validation=False,
)
def fit_stream(
    pipeline, source, y=None, *, chunk_size=None, classes=None, epochs=None,
    shuffle=True, random_state=None, store_budget=DEFAULT_STORE_BUDGET,
    store_dtype="float32", temp_dir=None, return_info=False, verbose=False,
):
    """Fit a Pipeline chunk by chunk, reading the source a fixed number of times.

    Each step before the last learns by ``partial_fit`` in one pass over
    the source: the first step in the first pass (which also collects the
    class labels), the second step in the second pass from the first step's
    output, and so on. One more pass then runs every row through the fitted
    steps and writes the result -- the rows the final estimator learns
    from, with their labels -- once into a compact store, and every epoch
    of the final estimator reads that store, never the source. For the
    skquant Pipeline that is one pass for the :class:`Cleaner` (exact
    counts, means and duplicates, and a fixed-size row sample for its
    quantiles), one for the projection and one to encode: **three reads of
    the source, whatever the number of epochs**, and the epochs cost only
    the classifier's own arithmetic. (A Pipeline of the final estimator
    alone reads the source once to encode, after a pass that collects the
    labels when ``classes`` is not given.)

    The store keeps the source's chunks, as ``store_dtype`` codes: float32,
    or int8 with a scale and an offset for each column of each chunk
    (its midpoint and half-range over that chunk, so that one pass
    encodes; 4x fewer bytes, each value within half a step of
    ``range / 254`` of the float32 one), decoded one chunk at a time as
    the epochs read it. Labels are stored as indices into the classes, in
    the smallest unsigned integer type that holds them (one byte up to 256
    classes); a regressor's targets as float64. The store lives in memory
    while it fits ``store_budget`` bytes; otherwise it is written to a
    ``numpy.memmap`` in a new directory under ``temp_dir``, which is
    removed when ``fit_stream`` returns or raises. With the default
    pipeline of 32 components, 10^7 rows of 100 float32 columns (4 GB)
    make a 1.3 GB float32 store (on disk under the default 1 GiB budget)
    or a 0.33 GB int8 one (in memory).

    Memory: a chunk, the copies the steps make of it, each step's
    fixed-size state, and the store when it is in memory (at most
    ``store_budget``; the pages of a store on disk are the operating
    system's file cache). That is about ``max(chunk_size,
    Cleaner.sketch_size) x n_features x 8`` bytes times a few, plus
    TensorFlow, plus at most ``store_budget``, whatever the number of rows.

    Each epoch visits the stored chunks in a new random order and shuffles
    the rows within every chunk (when ``shuffle``), seeded by
    ``random_state``: the same seed gives the same fitted pipeline.

    Errors about the pipeline, the arguments, the kind of source, a
    ``store_budget`` too small for one chunk and a ``temp_dir`` that cannot
    be written are raised before any pass over the source, and before the
    pipeline is changed; errors about the content (a chunk's columns or
    labels, a pass's row count) at the chunk where they show, before the
    final estimator trains.

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
          pairs on every call (it is called once per pass over the source),
          for example a function that reads a file chunk by chunk;
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
        own row blocks when None). A callable sets its own. The store keeps
        these chunks, and the final estimator's ``partial_fit`` gets one at
        a time.
    classes : array-like or None, default=None
        Every class label. When None, the first pass collects them.
    epochs : int or None, default=None
        Passes over the store that train the final estimator; None takes
        its ``epochs`` parameter when it has one (KerasMLPClassifier), else 1.
    shuffle : bool, default=True
        Each epoch, visit the stored chunks in a new random order, and
        shuffle the rows within every chunk.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling. The steps' own randomness follows their own
        ``random_state``.
    store_budget : int, default=2**30
        Bytes of memory the store of the final estimator's input may take
        (1 GiB by default): up to it the store is kept in memory, beyond it
        on disk. It must hold at least one chunk, counted before any pass at
        the source's width (``rows x source columns x`` the size of
        ``store_dtype``), since training holds a chunk at a time.
    store_dtype : {"float32", "int8"}, default="float32"
        How the store keeps the final estimator's input: as float32, or as
        int8 codes with a per-column scale and offset for each chunk (a
        quarter of the bytes, decoded to float32 chunk by chunk).
    temp_dir : str, path-like or None, default=None
        Where a store beyond ``store_budget`` is written, in a new
        subdirectory removed afterwards; None takes :mod:`tempfile`'s
        default. It must be writable: that is checked, by creating and
        removing a file there, before any pass.
    return_info : bool, default=False
        Also return a dict describing the fit (see Returns).
    verbose : bool, default=False
        Print one line per pass over the source and per epoch (rows,
        seconds), and the store's size against the raw rows', to stderr.

    Returns
    -------
    pipeline : Pipeline or estimator
        The fitted ``pipeline``: it predicts, pickles and quantizes like one
        fitted in memory.
    info : dict
        Only with ``return_info=True``: ``"source_passes"`` (reads of the
        source), ``"epochs"``, ``"n_rows"``, ``"n_source_columns"``,
        ``"n_store_columns"`` (the final estimator's input width),
        ``"store"`` (``"memory"`` or ``"memmap"``), ``"store_dtype"``,
        ``"store_bytes"`` (codes, scales and labels) and ``"raw_bytes"``
        (the rows and labels one pass over the source yields, as it yields
        them; None when a chunk's size is unknown).

    Raises
    ------
    TypeError
        A step cannot learn from a stream (it has no ``partial_fit``), or
        the source is of an unsupported kind. Raised before any data is read.
    ValueError
        An argument is invalid, ``store_budget`` cannot hold one chunk, or
        ``temp_dir`` cannot be written (raised before any pass); the source
        yields no rows, a chunk whose column count differs from the first
        chunk's, a chunk without labels, a different number of rows on a
        later pass, or (on a later pass) a label the first pass did not see;
        a step's output cannot be stored (not numeric, or beyond float32's
        range; NaN or infinite with ``store_dtype="int8"``).

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
    >>> pipe, info = fit_stream(pipe, X, y, chunk_size=600, random_state=0,
    ...                         store_dtype="int8", return_info=True)
    >>> pipe[0].n_samples_seen_
    1797
    >>> bool(pipe.score(X, y) > 0.8)
    True
    >>> info["source_passes"], info["store"], info["n_store_columns"]
    (3, 'memory', 16)
    >>> info["store_bytes"] < info["raw_bytes"] / 20   # float64 rows, int8 codes
    True
    """
    # every check before the pipeline is touched or a pass starts
    positions = _streamable_steps(pipeline)
    final = pipeline.steps[positions[-1]][1] if positions else pipeline
    chunks = _open_source(source, y, chunk_size)
    if epochs is None:
        epochs = final.get_params().get("epochs", 1) if hasattr(final, "get_params") else 1
    if isinstance(epochs, bool) or not (isinstance(epochs, (int, np.integer)) and epochs >= 1):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    temp_dir = _writable_directory(temp_dir)
    reader = _ChunkReader(chunks, classes, is_classifier(final))
    _check_store_budget(chunks, store_budget, store_dtype)  # reads a callable's first chunk
    rng = check_random_state(random_state)
    steps = _fresh_steps(pipeline, positions)
    final_name, final = steps[-1]

    fitted = []
    for name, step in steps[:-1]:
        started = time.perf_counter()
        for X_chunk, y_chunk in reader.read_pass():
            step.partial_fit(_transform(fitted, X_chunk), y_chunk)
        end = getattr(step, "_end_stream", None)
        if end is not None:  # a TreeProjection: its growth sample is complete
            end()
        reader.report(verbose, f"{name}: partial_fit", started)
        fitted.append(step)
    if not fitted and reader.labels and reader.classes is None:
        started = time.perf_counter()
        for _ in reader.read_pass():
            pass
        reader.report(verbose, "labels", started)

    store = _RowStore(
        store_budget, store_dtype, temp_dir,
        classes=reader.classes if reader.labels else None,
        expected_rows=reader.n_rows if reader.n_rows is not None else chunks.n_rows,
    )
    try:
        started = time.perf_counter()
        for index, (X_chunk, y_chunk) in enumerate(reader.read_pass()):
            store.append(_transform(fitted, X_chunk), y_chunk, index)
        store.finish()
        reader.report(verbose, f"encode the input of {final_name!r} into the store", started)
        info = {
            "source_passes": reader.passes, "epochs": int(epochs), "n_rows": store.n_rows,
            "n_source_columns": reader.n_features, "n_store_columns": store.width,
            "store": "memmap" if store.on_disk else "memory", "store_dtype": store_dtype,
            "store_bytes": store.nbytes, "raw_bytes": reader.raw_bytes,
        }
        if verbose:
            print(f"[fit_stream] {_describe(info)}", file=sys.stderr)

        pass_classes = is_classifier(final) and _accepts(final.partial_fit, "classes")
        for epoch in range(int(epochs)):
            started = time.perf_counter()
            for X_chunk, y_chunk in store.read(rng if shuffle else None):
                first = epoch == 0 and not hasattr(final, "classes_")
                extra = {"classes": reader.classes} if pass_classes and first else {}
                final.partial_fit(X_chunk, y_chunk, **extra)
            if verbose:
                print(
                    f"[fit_stream] epoch {epoch + 1}/{epochs} ({final_name}: partial_fit, "
                    f"from the store): {store.n_rows} rows in "
                    f"{time.perf_counter() - started:.1f} s",
                    file=sys.stderr,
                )
    finally:
        store.close()  # also removes a store on disk
    return (pipeline, info) if return_info else pipeline


def _size(n_bytes):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} bytes"


def _describe(info):
    """The store against the raw rows, in one line."""
    where = "in memory" if info["store"] == "memory" else "on disk (memmap)"
    line = (
        f"store: {info['n_rows']} rows x {info['n_store_columns']} columns as "
        f"{info['store_dtype']} {where}, {_size(info['store_bytes'])} with the labels"
    )
    if info["raw_bytes"]:
        line += (
            f", against {_size(info['raw_bytes'])} of raw rows and labels "
            f"({info['store_bytes'] / info['raw_bytes']:.1%}); the source was read "
            f"{info['source_passes']} times"
        )
    return line


def _writable_directory(temp_dir):
    """``temp_dir`` (tempfile's default for None), checked by writing a file there."""
    directory = tempfile.gettempdir() if temp_dir is None else os.fspath(temp_dir)
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix="skquant-fit-stream-check-"):
            pass
    except OSError as error:
        raise ValueError(
            f"temp_dir={directory!r} cannot be written ({error.strerror or error}); "
            "fit_stream writes the final estimator's input there when it exceeds "
            "store_budget. Pass an existing, writable directory as temp_dir."
        ) from error
    return directory


def _check_store_budget(chunks, budget, dtype):
    """Refuse a budget below one chunk of the store (at the source's width)."""
    shape = chunks.first_chunk_shape()
    if shape is None:
        return  # not a 2-D chunk: the first pass says what is wrong with it
    rows, columns = shape
    needed = rows * columns * np.dtype(dtype).itemsize
    if needed > budget:
        smaller = (
            "chunk_size" if not isinstance(chunks, _CallableSource)
            else "a source that yields fewer rows per chunk"
        )
        raise ValueError(
            f"store_budget={budget} bytes cannot hold one chunk of the store: "
            f"{rows} rows x {columns} columns as {dtype} take {needed} bytes. Raise "
            f"store_budget to at least {needed}, or use smaller chunks ({smaller})"
            + (", or store_dtype='int8' (a quarter of the bytes)." if dtype != "int8" else ".")
        )


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
            "reads the data once per step before the last, and once more to store "
            "the last step's input. Pass the function that "
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
    n_rows = None  # known after the first pass

    def __init__(self, make_chunks):
        self.make_chunks = make_chunks
        self._pending = None  # the first pass's chunks, once peeked at

    def chunks(self):
        pending, self._pending = self._pending, None
        return pending if pending is not None else self._read()

    def first_chunk_shape(self):
        """Shape of the first chunk, read from the first pass's iterator (so
        peeking calls the source no more often); None if it is not 2-D."""
        chunks = self._read()
        first = next(chunks, None)
        self._pending = chunks if first is None else itertools.chain([first], chunks)
        if first is None:
            return None  # no chunks: the first pass says so
        X = first[0] if hasattr(first[0], "shape") else np.asarray(first[0])
        return tuple(X.shape) if len(X.shape) == 2 else None

    def _read(self):
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
    def __init__(self, X, y, chunk_size):
        self.X, self.y, self.chunk_size = X, y, int(chunk_size)
        # chunks of nearly equal size (none shorter than chunk_size / 2): a
        # short tail chunk, shuffled to the front, would be all the first
        # partial_fit call sees (the classifier learns its standardization
        # there)
        self.n_rows = X.shape[0]
        n_chunks = max(1, int(round(self.n_rows / self.chunk_size)))
        self.bounds = np.linspace(0, self.n_rows, n_chunks + 1).astype(np.int64)

    def first_chunk_shape(self):
        return int(np.diff(self.bounds).max()), self.X.shape[1]

    def chunks(self):
        for start, stop in zip(self.bounds[:-1], self.bounds[1:]):
            rows = slice(int(start), int(stop))
            yield _safe_indexing(self.X, rows), _safe_indexing(self.y, rows)


class _DaskSource:
    def __init__(self, X, y, chunk_size):
        if chunk_size is not None:
            X = X.rechunk({0: chunk_size})
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})  # whole rows in each block
        self.X, self.y = X, y
        self.bounds = np.cumsum((0,) + X.chunks[0])
        self.n_rows = int(self.bounds[-1])

    def first_chunk_shape(self):
        return int(max(self.X.chunks[0], default=0)), self.X.shape[1]

    def chunks(self):
        import dask

        for start, stop in zip(self.bounds[:-1], self.bounds[1:]):
            rows = slice(int(start), int(stop))
            yield dask.compute(self.X[rows], self.y[rows])


def _nbytes(array):
    """Bytes an array-like chunk takes as the source gave it (None if unknown)."""
    if hasattr(array, "nbytes"):
        return int(array.nbytes)
    if hasattr(array, "memory_usage"):  # a pandas DataFrame
        return int(array.memory_usage(index=False).sum())
    if scipy.sparse.issparse(array) and hasattr(array, "data"):
        return sum(int(getattr(array, part).nbytes) for part in ("data", "indices", "indptr")
                   if hasattr(array, part))
    return None


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
        self.raw_bytes = None  # what the first pass yielded, as it yielded it

    def read_pass(self):
        self.passes += 1
        number = self.passes
        rows, raw_bytes = 0, 0
        seen = []
        for index, (X, y) in enumerate(self.source.chunks()):
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
            if number == 1 and raw_bytes is not None:
                chunk_bytes = _nbytes(X)
                raw_bytes = None if chunk_bytes is None else raw_bytes + chunk_bytes + y.nbytes
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
            self.n_rows, self.raw_bytes = rows, raw_bytes
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
                f"[fit_stream] pass {self.passes} over the source ({what}): {self.n_rows} "
                f"rows in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
