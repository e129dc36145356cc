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


def _tensorflow():
    from .neural._backend import _quiet_stderr, load_keras

    load_keras()  # imports TensorFlow once, quietly
    with _quiet_stderr():
        import tensorflow as tf
    return tf


def _graph_steps(tf, quantized):
    """One TensorFlow function per runtime step."""
    from .runtime import _steps

    constant = lambda a, dtype=tf.float32: tf.constant(np.asarray(a), dtype=dtype)  # noqa: E731
    functions = []
    for step in quantized._run:
        if isinstance(step, _steps.Clean):
            keep, fill = constant(step.keep, tf.int32), constant(step.fill)
            lower, upper = constant(step.lower), constant(step.upper)

            def clean(x, keep=keep, fill=fill, lower=lower, upper=upper):
                x = tf.gather(x, keep, axis=1)
                # finite: not NaN (x == x) and below infinity; both are
                # TFLite builtins, where is_finite is not
                finite = tf.logical_and(tf.equal(x, x), tf.less(tf.abs(x), np.inf))
                x = tf.where(finite, x, fill + tf.zeros_like(x))
                return tf.minimum(tf.maximum(x, lower), upper)

            functions.append(clean)
        elif isinstance(step, _steps.Linear):
            mean, components = constant(step.mean), constant(step.components.T)
            functions.append(lambda x, m=mean, c=components: tf.matmul(x - m, c))
        elif isinstance(step, _steps.Select):
            columns = constant(step.columns, tf.int32)
            functions.append(lambda x, c=columns: tf.gather(x, c, axis=1))
        elif isinstance(step, _steps.Closeness):
            origin, prototypes = constant(step.origin), constant(step.prototypes.T)
            norms, factor = constant(step.norms), float(step.factor)

            def closeness(x, o=origin, p=prototypes, n=norms, f=factor):
                centred = x - o
                squared = -2.0 * tf.matmul(centred, p) + n
                squared += tf.reduce_sum(centred * centred, axis=1, keepdims=True)
                return tf.sqrt(tf.maximum(squared, 0.0)) * f

            functions.append(closeness)
        elif isinstance(step, _steps.RandomTrees):
            functions.append(_random_trees(tf, step, constant))
        elif isinstance(step, _steps.Nystrom):
            functions.append(_nystrom(tf, step, constant))
        elif isinstance(step, _steps.MLP):
            mean, scale = constant(step.mean), constant(step.scale)
            layers = [(constant(w.T), constant(b)) for w, b in zip(step.weights, step.biases)]

            def mlp(x, mean=mean, scale=scale, layers=layers):
                x = (x - mean) / scale
                for i, (weights, bias) in enumerate(layers):
                    x = tf.matmul(x, weights) + bias
                    if i < len(layers) - 1:
                        x = tf.nn.relu(x)
                return x

            functions.append(mlp)
        else:  # a runtime step without a graph: say so, never export half
            raise TypeError(f"export_tflite has no graph for {type(step).__name__}.")
    return functions


def _random_trees(tf, step, constant):
    feature = constant(step.feature, tf.int32)
    threshold = constant(step.threshold)
    children = constant(step.children, tf.int32)
    leaf_row = constant(step.leaf_row, tf.int32)
    lookup, shift = constant(step.lookup), constant(step.shift)

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


def _nystrom(tf, step, constant):
    landmarks = constant(step.landmarks.T)
    norms = constant(step.landmark_norms)
    scales = constant(step.landmark_scale)
    coordinates = constant(step.coordinates)
    k, floor = step.n_neighbors, float(step.floor)

    def nystrom(x):
        squared = -2.0 * tf.matmul(x, landmarks) + norms
        squared += tf.reduce_sum(x * x, axis=1, keepdims=True)
        negative, nearest = tf.math.top_k(-tf.maximum(squared, 0.0), k=k)
        distance = tf.sqrt(-negative)
        scale = tf.maximum(distance[:, -1:], floor)
        weights = tf.exp(-tf.square(distance) / (scale * tf.gather(scales, nearest)))
        weights /= tf.reduce_sum(weights, axis=1, keepdims=True)
        return tf.reduce_sum(weights[:, :, None] * tf.gather(coordinates, nearest), axis=1)

    return nystrom


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
