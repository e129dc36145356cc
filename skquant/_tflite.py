"""Export a fitted pipeline as one TensorFlow Lite model.

The whole pipeline becomes one graph: the Cleaner (imputation, kept columns,
clipping), the projection (every family) and the classifier, ending in the
class probabilities. It is built from the same arrays as the numpy runtime's
float32 export, so the two compute the same function.
"""

import os

import numpy as np

from ._atomic import check_output_path, write_bytes
from ._export import _DTYPES, quantize
from ._registry import emitter_for, register_emitter
from .runtime import _steps


def _tensorflow():
    from .neural._backend import _quiet_stderr, load_keras

    load_keras()  # imports TensorFlow once, quietly
    with _quiet_stderr():
        import tensorflow as tf
    return tf


def _constant(tf, array, dtype=None):
    return tf.constant(np.asarray(array), dtype=dtype or tf.float32)


_NO_CATEGORIES = (
    "export_tflite cannot export a Cleaner that encodes categorical columns: "
    "TFLite's built-in operators have no string lookup. Serve it with "
    "skquant.quantize (the numpy runtime) or skquant.export_onnx, which take "
    "the raw table, text included; or encode those columns as numbers before "
    "the pipeline.")


def _emit_clean(tf, step):
    if step.categories:
        raise ValueError(_NO_CATEGORIES)
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
    return clean


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
    for mobile and edge runtimes (LiteRT).

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
    if served._categorical:  # before TensorFlow is loaded
        raise ValueError(_NO_CATEGORIES)
    tf = _tensorflow()
    functions = _graph_steps(tf, served)
    n_features = served.n_features_in_

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)])
    def predict_proba(x):
        for function in functions:
            x = function(x)
        return tf.nn.softmax(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [predict_proba.get_concrete_function()])
    if dtype == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif dtype == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range
    from .neural._backend import _quiet_stderr

    with _quiet_stderr():
        model = converter.convert()
    write_bytes(path, model, force=force)
    if X_calibration is not None:
        rows = np.asarray(X_calibration, dtype=np.float32)
        agreement = np.mean(
            run_tflite(path, rows).argmax(axis=1)
            == np.searchsorted(served.classes_, pipeline.predict(X_calibration)))
        if agreement < 0.99:
            import warnings

            warnings.warn(
                f"The {dtype} TFLite model predicts the pipeline's class on only "
                f"{agreement:.1%} of the calibration rows. Use dtype='float32' or "
                "'float16' where that matters.",
                UserWarning,
            )
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
        Raw rows.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        Interpreter = _tensorflow().lite.Interpreter
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
    X = np.asarray(X, dtype=np.float32)
    interpreter = Interpreter(model_path=os.fspath(path))
    entry = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entry["index"], list(X.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], X)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()
