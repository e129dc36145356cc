"""Export a fitted pipeline as one TensorFlow Lite model.

The whole pipeline becomes one graph: the Cleaner (imputation, kept columns,
clipping, scaling, categorical columns), the projection (every family) and
the classifier, ending in the class probabilities. It is built from the
same arrays as the numpy runtime's float32 export, so the two compute the
same function.
"""

import os

import numpy as np

from ._atomic import check_output_path, write_bytes
from ._export import _DTYPES, quantize
from ._registry import emitter_for, register_emitter
from .runtime import _steps
from .runtime._pipeline import is_count


def _tensorflow():
    from .neural._backend import _quiet_stderr, load_keras

    load_keras()  # imports TensorFlow once, quietly
    with _quiet_stderr():
        import tensorflow as tf
    return tf


def _constant(tf, array, dtype=None):
    return tf.constant(np.asarray(array), dtype=dtype or tf.float32)


# the model's inputs: the numeric columns (at a categorical one: NaN where
# its value is missing), and for a pipeline whose Cleaner encodes
# categories, their values as text, the input's name giving their positions
# in the table (TFLite has no model metadata that its interpreters read
# back): "X_text_at_4_5" for columns 4 and 5
_INPUT, _TEXT_PREFIX = "X", "X_text_at"
# a numeric input named "X_unread_at_7" (and not "X"): the Cleaner dropped
# column 7, whose values, text or not, the model does not read
_UNREAD_PREFIX = "X_unread_at"


def _text_input_name(positions):
    return "_".join([_TEXT_PREFIX, *map(str, positions)])


def _positions(name, prefix):
    """The column positions an input's name gives after ``prefix``, or None."""
    if not name.startswith(prefix + "_"):
        return None
    parts = name[len(prefix) + 1:].split("_")
    if not all(is_count(part) for part in parts):
        return None
    return [int(part) for part in parts]


def _text_positions(name):
    """The categorical positions a text input's name gives, or None."""
    return _positions(name, _TEXT_PREFIX)


def _emit_clean(tf, step):
    keep, fill = _constant(tf, step.keep, tf.int32), _constant(tf, step.fill)
    lower, upper = _constant(tf, step.lower), _constant(tf, step.upper)

    def clean(x):
        x = tf.gather(x, keep, axis=1)
        # finite: not NaN (x == x) and below infinity; both are TFLite
        # builtins, where is_finite is not
        finite = tf.logical_and(tf.equal(x, x), tf.less(tf.abs(x), np.inf))
        x = tf.where(finite, x, fill + tf.zeros_like(x))
        x = tf.minimum(tf.maximum(x, lower), upper)
        if center is None:
            return x
        # as kernels.clean: (x - center) / scale; where the difference
        # overflows, x / scale - center / scale; then held within range
        scaled = (x - center) / scale
        redone = x / scale - shift
        scaled = tf.where(tf.less(tf.abs(scaled), np.inf), scaled, redone)
        return tf.minimum(tf.maximum(scaled, -largest), largest)

    center = scale = shift = None
    if step.center is not None:
        center, scale = _constant(tf, step.center), _constant(tf, step.scale)
        shift = _constant(tf, step.center / step.scale)
    largest = float(np.finfo(np.float32).max)
    if not step.categories:
        return clean
    # each categorical column: its text -> its row in the lookup table, by a
    # static hash table (TFLite's built-in HASHTABLE ops): an unknown
    # category the last row; a missing value (NaN at the column's position
    # in x) the imputed category's, as the numpy runtime and ONNX do
    lookups = []
    for column, categories, table, missing_row in step.categories:
        hashed = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(categories.tolist(), tf.string),
                tf.constant(np.arange(categories.size), tf.int64)),
            default_value=categories.size)
        lookups.append((column, hashed, _constant(tf, table), missing_row))

    def encoded(x, text):
        blocks = [clean(x)]
        for number, (column, hashed, table, missing_row) in enumerate(lookups):
            values = text[:, number]  # (a strided slice: a gather of strings is no builtin)
            flag = x[:, column]
            codes = tf.where(tf.not_equal(flag, flag), tf.constant(missing_row, tf.int64),
                             hashed.lookup(values))
            blocks.append(tf.gather(table, codes, axis=0))
        return tf.concat(blocks, axis=1)

    encoded.tables = [hashed for _, hashed, _, _ in lookups]
    return encoded


def _emit_linear(tf, step):
    mean, components = _constant(tf, step.mean), _constant(tf, step.components.T)
    return lambda x: tf.matmul(x - mean, components)


def _emit_select(tf, step):
    columns = _constant(tf, step.columns, tf.int32)
    return lambda x: tf.gather(x, columns, axis=1)


def _emit_closeness(tf, step):
    origin, prototypes = _constant(tf, step.origin), _constant(tf, step.prototypes.T)
    norms, factor = _constant(tf, step.norms), float(step.factor)
    local = None
    if step.axes is not None:
        local = (_constant(tf, step.axes_t), _constant(tf, step.axis_offsets),
                 _constant(tf, step.axis_sums()))

    def closeness(x):
        centred = x - origin
        squared = -2.0 * tf.matmul(centred, prototypes) + norms
        squared += tf.reduce_sum(centred * centred, axis=1, keepdims=True)
        if local is not None:  # minus the squares along each prototype's axes
            along = tf.matmul(centred, local[0]) - local[1]
            squared -= tf.matmul(along * along, local[2])
        return tf.sqrt(tf.maximum(squared, 0.0)) * factor

    return closeness


def _emit_random_trees(tf, step):
    feature = _constant(tf, step.feature, tf.int32)
    threshold = _constant(tf, step.threshold)
    children = _constant(tf, step.children, tf.int32)
    leaf_row = _constant(tf, step.leaf_row, tf.int32)
    lookup, shift = _constant(tf, step.lookup), _constant(tf, step.shift)

    def random_trees(x):
        out = -shift + tf.zeros([tf.shape(x)[0], lookup.shape[1]])
        for root in step.roots:
            node = tf.fill([tf.shape(x)[0]], int(root))
            for _ in range(step.depth):
                split = tf.gather(feature, node)
                internal = split >= 0
                # the row's value of the split feature, by a one-hot product
                value = tf.reduce_sum(x * tf.one_hot(tf.maximum(split, 0), x.shape[1]), axis=1)
                right = tf.cast(value > tf.gather(threshold, node), tf.int32)
                pair = tf.gather(children, node)
                child = tf.where(right > 0, pair[:, 1], pair[:, 0])
                node = tf.where(internal, child, node)
            out += tf.gather(lookup, tf.gather(leaf_row, node))
        return out

    return random_trees


def _emit_nystrom(tf, step):
    landmarks = _constant(tf, step.landmarks.T)
    norms = _constant(tf, step.landmark_norms)
    scales = _constant(tf, step.landmark_scale)
    coordinates = _constant(tf, step.coordinates)
    k, floor = step.n_neighbors, float(step.floor)
    reduce = None
    if step.reduce_components is not None:
        reduce = (_constant(tf, step.reduce_mean), _constant(tf, step.reduce_components.T))

    def nystrom(x):
        if reduce is not None:  # on the principal axes the graph is built on
            x = tf.matmul(x - reduce[0], reduce[1])
        # ranked by |l|^2 - 2 x.l, as the kernel ranks them
        negative, nearest = tf.math.top_k(2.0 * tf.matmul(x, landmarks) - norms, k=k)
        squared = tf.reduce_sum(x * x, axis=1, keepdims=True) - negative
        distance = tf.sqrt(tf.maximum(squared, 0.0))
        scale = tf.maximum(distance[:, -1:], floor)
        weights = tf.exp(-tf.square(distance) / (scale * tf.gather(scales, nearest)))
        weights /= tf.reduce_sum(weights, axis=1, keepdims=True)
        return tf.reduce_sum(weights[:, :, None] * tf.gather(coordinates, nearest), axis=1)

    return nystrom


def _emit_mlp(tf, step):
    mean, scale = _constant(tf, step.mean), _constant(tf, step.scale)
    layers = [(_constant(tf, w.T), _constant(tf, b)) for w, b in zip(step.weights, step.biases)]

    def mlp(x):
        x = (x - mean) / scale
        for i, (weights, bias) in enumerate(layers):
            x = tf.matmul(x, weights) + bias
            if i < len(layers) - 1:
                x = tf.nn.relu(x)
        return x

    return mlp


def _emit_union(tf, step):
    linear, graph = _emit_linear(tf, step.linear), _emit_nystrom(tf, step.graph)

    def union(x):
        return tf.concat([linear(x), graph(x)], axis=1)

    return union


# one emitter per runtime step kind: emitter(tf, step) -> a function of the
# step's input tensor
for _step, _emitter in {
    _steps.Clean: _emit_clean,
    _steps.Linear: _emit_linear,
    _steps.Select: _emit_select,
    _steps.Closeness: _emit_closeness,
    _steps.RandomTrees: _emit_random_trees,
    _steps.Nystrom: _emit_nystrom,
    _steps.Union: _emit_union,
    _steps.MLP: _emit_mlp,
}.items():
    register_emitter("tflite", _step, _emitter, replace=False)
del _step, _emitter


def _graph_steps(tf, quantized):
    """One TensorFlow function per runtime step (a step without an emitter
    is refused: never export half a pipeline)."""
    return [emitter_for("tflite", step)(tf, step) for step in quantized._run]


def export_tflite(pipeline, path, dtype="int8", X_calibration=None, *, force=True):
    """Write a fitted pipeline as one TensorFlow Lite model.

    Cleaning, projection (any family) and classifier become one graph from
    raw rows (NaN allowed where the pipeline cleans) to class probabilities,
    for mobile and edge runtimes (LiteRT). A Cleaner that encodes
    categorical columns makes a model of two inputs: ``X``, the numeric
    columns (anything, NaN say, at the categorical ones), and a string
    input named ``X_text_at_<positions>`` (``X_text_at_0_5``: the table's
    columns 0 and 5), their values as text, a missing one marked by NaN at
    its position in ``X`` (any other number there: present); they are
    looked up by TFLite's built-in hash-table operators. Where the Cleaner
    of such a table dropped columns, ``X`` is named
    ``X_unread_at_<positions>`` instead: the model reads nothing there,
    and :func:`run_tflite` does not parse what a table holds there.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted pipeline that :func:`quantize` can export.
    path : str or path-like
        The ``.tflite`` file to write.
    dtype : {"int8", "float16", "float32"}, default="int8"
        ``"float32"``: no quantization. ``"float16"``: float16 weights.
        ``"int8"``: dynamic-range quantization, int8 weights with float
        activations. (Full-integer quantization, calibrated on training
        rows, was measured and rejected: the imputation, distance and
        neighbour-search ops quantize badly, and it predicted the pipeline's
        class on only 17-63% of digits test rows.)
    X_calibration : array-like of shape (n_samples, n_features) or None, default=None
        Raw rows to check the written model on: it is run with TensorFlow
        Lite's interpreter, and a warning says so if it predicts a class
        other than the pipeline's on more than 1% of them.
    force : bool, default=True
        Whether an existing file at ``path`` may be replaced (as
        ``joblib.dump`` does). ``False`` refuses one, before any conversion
        work. Either way the file is written atomically: a temporary file
        beside it replaces it only once complete, so an interrupted export
        leaves the previous file intact.

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    skquant._atomic.OutputError
        If ``path`` is a directory or lies in a directory that does not
        exist, or, with ``force=False``, if it exists. Checked before the
        conversion starts.

    See Also
    --------
    quantize : the numpy export, which needs no TensorFlow to serve.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skquant
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = skquant.make_quant_pipeline("column", 8, random_state=0,
    ...                                    classify__epochs=2).fit(X, y)
    >>> path = skquant.export_tflite(pipe, os.path.join(tempfile.mkdtemp(), "m.tflite"),
    ...                              dtype="float32")
    >>> os.path.getsize(path) > 0
    True
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}.")
    path = check_output_path(path, force=force, what="the TFLite file")
    served = quantize(pipeline, dtype="float32")  # validates the pipeline first
    tf = _tensorflow()
    functions = _graph_steps(tf, served)
    n_features = served.n_features_in_
    positions = sorted(served._categorical)
    # the hash tables of the categorical columns, tracked for the converter
    holder = tf.Module()
    holder.tables = list(getattr(functions[0], "tables", []))
    # (named only for a pipeline that saw text: a table may hold text there)
    first = pipeline.steps[0][1] if hasattr(pipeline, "steps") else None
    saw_text = bool(getattr(first, "_saw_text", lambda: False)())
    unread = sorted(served._unread) if saw_text else []
    numeric_name = "_".join([_UNREAD_PREFIX, *map(str, unread)]) if unread else _INPUT
    signature = [tf.TensorSpec([None, n_features], tf.float32, name=numeric_name)]
    if positions:
        signature.append(tf.TensorSpec([None, len(positions)], tf.string,
                                       name=_text_input_name(positions)))

    @tf.function(input_signature=signature)
    def predict_proba(x, *text):
        x = functions[0](x, *text)
        for function in functions[1:]:
            x = function(x)
        return tf.nn.softmax(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [predict_proba.get_concrete_function()], holder)
    if dtype == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif dtype == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range
    from .neural._backend import _quiet_stderr

    with _quiet_stderr():
        model = converter.convert()
    if X_calibration is not None:
        # checked before the file is written: a calibration that fails (rows
        # the model cannot take) leaves an existing file as it was
        rows = X_calibration if positions or unread else np.asarray(X_calibration,
                                                                     dtype=np.float32)
        agreement = np.mean(
            _run(_interpreter(content=model), rows, "the converted model").argmax(axis=1)
            == np.searchsorted(served.classes_, pipeline.predict(X_calibration)))
        if agreement < 0.99:
            import warnings

            warnings.warn(
                f"The {dtype} TFLite model predicts the pipeline's class on only "
                f"{agreement:.1%} of the calibration rows. Use dtype='float32' or "
                "'float16' where that matters.",
                UserWarning,
            )
    write_bytes(path, model, force=force)
    return path


def run_tflite(path, X):
    """Class probabilities of a ``.tflite`` model from :func:`export_tflite`.

    Runs LiteRT's interpreter (``ai-edge-litert``) when installed, else
    TensorFlow's.

    Parameters
    ----------
    path : str or path-like
        The model file.
    X : array-like of shape (n_samples, n_features)
        Raw rows; for a pipeline whose Cleaner encodes categorical columns,
        the raw table (a pandas or polars DataFrame, or a 2-D object array),
        text included.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
    """
    return _run(_interpreter(path=path), X, os.fspath(path))


def _interpreter(path=None, content=None):
    """LiteRT's interpreter (``ai-edge-litert``) when installed, else
    TensorFlow's, for a model file or a model's bytes."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        Interpreter = _tensorflow().lite.Interpreter
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
    if content is not None:
        return Interpreter(model_content=content)
    return Interpreter(model_path=os.fspath(path))


def _run(interpreter, X, where):
    from .runtime._pipeline import _has_text, float32_rows

    inputs = interpreter.get_signature_list().get("serving_default", {}).get("inputs", [])
    text_names = [name for name in inputs if _text_positions(name) is not None]
    unread_names = [name for name in inputs if _positions(name, _UNREAD_PREFIX) is not None]
    unread = _positions(unread_names[0], _UNREAD_PREFIX) if unread_names else []
    if text_names or (unread and _has_text(X, only_in=unread)):
        return _run_table(interpreter, inputs, text_names, unread_names, unread, X, where)
    try:
        values = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be a 2-D array of numbers ({exc}).") from None
    entry = interpreter.get_input_details()[0]
    width = int(entry["shape_signature"][1])
    if values.ndim != 2 or values.shape[1] != width:
        raise ValueError(
            f"X must be a 2-D array of shape (n_samples, {width}) for {where}, got one "
            f"of shape {values.shape}" + ("; reshape a single row with X.reshape(1, -1)."
                                          if values.ndim == 1 else "."))
    X = float32_rows(values, "TFLite model", cleans=False)  # (it may not clean)
    interpreter.resize_tensor_input(entry["index"], list(X.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], X)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def _run_table(interpreter, inputs, text_names, unread_names, unread, X, where):
    """Run a model on the raw table ``X``: its numbers to the numeric input
    (NaN at a categorical position where the value is missing; nothing read
    at the columns the Cleaner dropped) and its categorical columns' text to
    the text input, as :func:`skquant.run_onnx` feeds them."""
    from .runtime._pipeline import float32_rows, split_table, text_input

    positions = _text_positions(text_names[0]) if text_names else []
    numeric_name = unread_names[0] if unread_names else _INPUT
    numeric = next((entry for entry in interpreter.get_input_details()
                    if entry["name"].endswith(f"_{numeric_name}:0")), None)
    expected = sorted([numeric_name] + text_names[:1])
    width = None if numeric is None else int(numeric["shape_signature"][1])
    if (sorted(inputs) != expected or numeric is None
            or len(set(positions) | set(unread)) != len(positions) + len(unread)
            or max(positions + unread) >= width):
        raise ValueError(
            f"{where} has inputs {inputs}, not those that export_tflite "
            "writes: it was changed since. Export the model again.")
    numbers, texts = split_table(X, set(positions), width, what="TFLite model",
                                 unread=set(unread))
    feed = {}
    if positions:  # (marks the missing ones in numbers)
        feed[text_names[0]] = text_input(numbers, texts, positions)
    feed[numeric_name] = float32_rows(numbers, "TFLite model")
    out = interpreter.get_signature_runner("serving_default")(**feed)
    return np.asarray(next(iter(out.values()))).copy()
