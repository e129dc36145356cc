"""Export a fitted skquant pipeline to the numpy runtime, quantized.

Each supported estimator has an exporter that turns its fitted state into
plain arrays and a step kind the runtime knows (``skquant/runtime``). A
family added later registers its exporter in ``_exporters()``.
"""

import numpy as np

# scikit-learn is imported by the exporter only: the runtime that serves
# the artifacts (skquant.runtime) never imports this module
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import HasMethods, StrOptions

from . import __version__
from .runtime._schema import INT8_SCALE_MAX

_DTYPES = ("float32", "float16", "int8")


_LIMITS = {"float32": float(np.finfo(np.float32).max),
           "float16": float(np.finfo(np.float16).max)}


def _store(arrays, name, array, dtype, quantize, owner="its estimator"):
    """Put ``array`` in ``arrays``, quantized to ``dtype`` if ``quantize``.

    int8 is symmetric with one scale per row (per output channel): each row
    is divided by its largest magnitude over 127 and rounded. A finite value
    that the stored dtype cannot hold (beyond float32's ±3.4e38, float16's
    ±65504) is refused: the runtime could only give NaN from it.
    """
    array = np.asarray(array)
    if array.dtype.kind != "f":
        arrays[name] = array
        return
    int8 = quantize and dtype == "int8"
    stored = dtype if quantize and not int8 else "float32"  # int8's scales: float32
    largest = float(np.max(np.abs(array[np.isfinite(array)]), initial=0.0))
    if largest > _LIMITS[stored]:
        fix = ("float16 cannot store these weights: choose dtype='float32' or 'int8'."
               if stored == "float16" else
               "the training data are too large for the float32 runtime: rescale them "
               "(divide the columns by a power of ten) and fit again.")
        raise ValueError(
            f"quantize cannot export this pipeline: {owner} holds values up to "
            f"{largest:.3g} (the array {name!r}), beyond {stored}'s range "
            f"(±{_LIMITS[stored]:.3g}), from which the quantized runtime could only give "
            f"NaN or infinity; {fix}")
    if not int8:
        arrays[name] = array.astype(stored)
    else:
        matrix = np.atleast_2d(array.astype(np.float64))
        scale = np.abs(matrix).max(axis=1) / 127.0
        scale[scale == 0] = 1.0
        # so that 127 times the float32 scale stays finite (weights at the
        # very top of float32's range): the codes round a hair larger
        scale = np.minimum(scale, float(INT8_SCALE_MAX))
        arrays[f"{name}.q"] = np.clip(np.rint(matrix / scale[:, None]), -127, 127).astype(np.int8)
        arrays[f"{name}.scale"] = scale.astype(np.float32)


def _export_cleaner(cleaner):
    support = cleaner.support_
    return "clean", {}, {
        "keep": np.flatnonzero(support).astype(_index_dtype(support.size)),
        "fill": cleaner.statistics_[support],
        "lower": cleaner.lower_bounds_[support],
        "upper": cleaner.upper_bounds_[support],
    }, set()


def _export_column(projection):
    import scipy.sparse

    if projection.method == "qr":
        columns = np.asarray(projection.selected_columns_)
        return "select", {}, {
            "columns": columns.astype(_index_dtype(projection.n_features_in_))}, set()
    components = projection.components_
    if scipy.sparse.issparse(components):
        components = components.toarray()
    mean = getattr(projection, "mean_", None)
    if mean is None:  # the random projection is not centred
        mean = np.zeros(projection.n_features_in_)
    return "linear", {}, {"mean": mean, "components": components}, {"components"}


def _export_tree(projection):
    projection._ensure_finalized()
    if projection.method == "tsvq":
        origin = projection._origin.astype(np.float64)
        return "closeness", {"scale": float(projection.scale_)}, {
            "origin": origin,
            "prototypes": projection.cluster_centers_ - origin,
        }, {"prototypes"}
    trees = [tree.tree_ for tree in projection.embedding_.estimators_]
    offsets = np.cumsum([0] + [tree.node_count for tree in trees])
    children = np.vstack([
        np.column_stack([tree.children_left, tree.children_right]) + np.where(
            np.column_stack([tree.children_left, tree.children_right]) >= 0, start, 0)
        for tree, start in zip(trees, offsets)
    ])
    leaf_row = np.concatenate([
        np.where(column >= 0, column + row_offset, -1)
        for column, row_offset in zip(projection._leaf_column, projection._leaf_offsets)
    ])
    index = _index_dtype(offsets[-1])
    return "random_trees", {"depth": int(max(tree.max_depth for tree in trees))}, {
        "feature": np.concatenate([tree.feature for tree in trees]).astype(index),
        "threshold": _float32_at_or_below(np.concatenate([tree.threshold for tree in trees])),
        "children": children.astype(index),
        "leaf_row": leaf_row.astype(index),
        "roots": offsets[:-1].astype(index),
        # rows of the stored matrices are output channels: one int8 scale
        # per output column of the lookup table
        "lookup": projection._lookup.T,
        "shift": projection._lookup_shift,
    }, {"lookup"}


def _index_dtype(largest):
    return np.int16 if largest < 2**15 else np.int32


def _float32_at_or_below(thresholds):
    """The largest float32 at or below each threshold.

    The trees compare float32 inputs with float64 thresholds; for a float32
    x, ``x <= t`` exactly when ``x <= t32`` with t32 this rounding, so the
    stored thresholds take half the space and send every input the same way.
    """
    rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def _export_graph(projection):
    projection._ensure_finalized()
    if projection.method == "lpp":
        return "linear", {}, {"mean": projection.mean_,
                              "components": projection.components_}, {"components"}
    return "nystrom", {
        "n_neighbors": int(projection.n_neighbors),
        "scale_floor": float(projection._scale_floor),
    }, {
        "landmarks": projection.landmarks_,
        "landmark_scale": projection.landmark_scale_,
        "coordinates": projection._coordinates.T,  # rows: output columns
    }, {"landmarks", "coordinates"}


def _export_mlp(classifier):
    arrays = {"input_mean": classifier.input_mean_, "input_scale": classifier.input_scale_}
    for i, (weights, bias) in enumerate(zip(classifier.coefs_, classifier.intercepts_)):
        arrays[f"weights{i}"] = np.asarray(weights).T  # rows: output units
        arrays[f"bias{i}"] = bias
    return "mlp", {"n_layers": len(classifier.coefs_)}, arrays, {
        f"weights{i}" for i in range(len(classifier.coefs_))}


def _exporters():
    from .cleaning import Cleaner
    from .neural import KerasMLPClassifier
    from .projection import ColumnProjection, GraphProjection, TreeProjection

    return {
        Cleaner: _export_cleaner,
        ColumnProjection: _export_column,
        TreeProjection: _export_tree,
        GraphProjection: _export_graph,
        KerasMLPClassifier: _export_mlp,
    }


def _steps_of(estimator):
    """The estimators a prediction runs through, OutlierFilter unwrapped."""
    from sklearn.pipeline import Pipeline

    from .cleaning import OutlierFilter

    steps = []
    for name, step in estimator.steps if isinstance(estimator, Pipeline) else [("", estimator)]:
        if step is None or step == "passthrough":
            continue
        if isinstance(step, Pipeline):
            steps.extend(_steps_of(step))
        elif isinstance(step, OutlierFilter):
            # the filter only drops training rows: at predict time it is its
            # inner estimator
            from sklearn.utils.validation import check_is_fitted

            check_is_fitted(step)
            steps.append(step.estimator_)
        else:
            steps.append(step)
    return steps


def quantize(pipeline, dtype="int8", X_calibration=None):
    """Turn a fitted pipeline into a :class:`QuantizedPipeline` that runs on numpy.

    Every step is exported: the :class:`Cleaner` (imputation, kept columns,
    clipping), the projection (column, tree or graph family) and the
    :class:`KerasMLPClassifier`'s forward pass; an :class:`OutlierFilter`
    exports as its inner classifier. Weight matrices (projection matrices,
    prototypes, landmarks and their coordinates, layer weights) are stored in
    ``dtype``; the rest in float32. The runtime computes in float32 with
    weights expanded once at load, so no activation ranges are needed.

    The export is validated as a loaded artifact is. It serves inputs within
    float32's range, the range it is exported for: a fitted value beyond
    the stored dtype's range is refused here, and at predict time inputs
    beyond float32's range, or rows on which a step overflows, raise a
    ``ValueError`` instead of giving NaN.

    Parameters
    ----------
    pipeline : Pipeline or KerasMLPClassifier
        A fitted pipeline from :func:`make_quant_pipeline` (or any Pipeline
        of these steps), or a fitted classifier alone.
    dtype : {"int8", "float16", "float32"}, default="int8"
        Storage of the weight matrices. ``"int8"``: symmetric, with one
        float32 scale per output channel (row).
    X_calibration : array-like of shape (n_samples, n_features) or None, default=None
        Rows to check the quantized pipeline on: the share of them on which it
        predicts the original pipeline's class is recorded as
        ``manifest["calibration"]["agreement"]``.

    Returns
    -------
    quantized : QuantizedPipeline

    Raises
    ------
    TypeError
        For a step that cannot be exported.
    ValueError
        For an unknown ``dtype``, or a fitted value that the stored dtype
        cannot hold (training data beyond float32's range, say).

    See Also
    --------
    load_quantized : read a saved artifact.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> import skquant
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = skquant.make_quant_pipeline("column", 16, random_state=0,
    ...                                    classify__epochs=3).fit(X, y)
    >>> small = skquant.quantize(pipe, dtype="int8", X_calibration=X[:200])
    >>> small.steps
    ['clean', 'linear', 'mlp']
    >>> bool(small.manifest["calibration"]["agreement"] > 0.95)
    True
    """
    from sklearn.utils.validation import check_is_fitted

    from .runtime import ArtifactError, QuantizedPipeline

    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}.")
    exporters = _exporters()
    steps = _steps_of(pipeline)
    if not steps:
        raise ValueError("The pipeline has no steps to export.")
    manifest_steps, arrays = [], {}
    for position, step in enumerate(steps):
        exporter = exporters.get(type(step))
        if exporter is None:
            raise TypeError(
                f"skquant cannot export {type(step).__name__}: quantize supports "
                f"{sorted(cls.__name__ for cls in exporters)} (and OutlierFilter "
                "around the classifier)."
            )
        if position == len(steps) - 1 and exporter is not _export_mlp:
            raise TypeError(
                f"The pipeline must end with a KerasMLPClassifier, not "
                f"{type(step).__name__}."
            )
        check_is_fitted(step)
        kind, params, step_arrays, weights = exporter(step)
        prefix = f"s{position}."
        for name, array in step_arrays.items():
            _store(arrays, prefix + name, array, dtype, quantize=name in weights,
                   owner=f"its {type(step).__name__}")
        manifest_steps.append({"kind": kind, "prefix": prefix, "params": params,
                               "estimator": type(step).__name__})
    classifier = steps[-1]
    arrays["classes"] = _plain(classifier.classes_)
    first = steps[0]
    names = getattr(pipeline, "feature_names_in_", getattr(first, "feature_names_in_", None))
    if names is not None:
        arrays["feature_names"] = np.asarray(names, dtype=str)
    manifest = {
        "skquant_version": __version__,
        "dtype": dtype,
        "n_features_in": int(first.n_features_in_),
        "steps": manifest_steps,
    }
    try:  # validated as a loaded artifact would be
        quantized = QuantizedPipeline(manifest, arrays)
    except ArtifactError as exc:
        raise ValueError(f"quantize cannot export this pipeline: {exc}") from None
    if X_calibration is not None:
        reference = pipeline.predict(X_calibration)
        agreement = float(np.mean(quantized.predict(X_calibration) == reference))
        manifest["calibration"] = {"rows": int(len(reference)), "agreement": agreement}
    return quantized


def budget_scorer(max_bytes, dtype="int8"):
    """A scorer: accuracy, or 0 for a model whose artifact exceeds a size budget.

    Use it as GridSearchCV's ``scoring`` to pick the most accurate candidate
    that fits in ``max_bytes``. A :class:`QuantizedClassifier` is sized by
    its own quantized artifact; any other fitted pipeline is quantized to
    ``dtype`` to be sized (it is scored on its own predictions).

    Parameters
    ----------
    max_bytes : int
        The size budget of the saved artifact, in bytes.
    dtype : {"int8", "float16", "float32"}, default="int8"
        How to size a candidate that is not a :class:`QuantizedClassifier`.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, as GridSearchCV expects.

    See Also
    --------
    QuantizedClassifier : makes the weight dtype a searchable parameter.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> import skquant
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = skquant.make_quant_pipeline("column", 8, random_state=0,
    ...                                    classify__epochs=2).fit(X, y)
    >>> roomy, tight = skquant.budget_scorer(10**6), skquant.budget_scorer(1000)
    >>> bool(roomy(pipe, X, y) > 0.5), tight(pipe, X, y)
    (True, 0.0)
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}.")
    if not max_bytes > 0:
        raise ValueError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}.")

    def score(estimator, X, y):
        quantized = getattr(estimator, "quantized_", None)
        if quantized is None:
            quantized = quantize(estimator, dtype=dtype)
        if quantized.artifact_size() > max_bytes:
            return 0.0
        return float(np.mean(estimator.predict(X) == np.asarray(y)))

    return score


def _plain(labels):
    """Class labels as an array without Python objects (numbers or str)."""
    labels = np.asarray(labels)
    if labels.dtype.hasobject:
        if all(isinstance(label, str) for label in labels):
            return labels.astype(str)
        raise TypeError(
            "The class labels mix types that an artifact cannot hold without "
            "pickle; use numbers or strings as labels."
        )
    return labels




class QuantizedClassifier(ClassifierMixin, BaseEstimator):
    """Fit a pipeline, then predict with its quantized export.

    Wrapping the pipeline makes the weight dtype a parameter, so that
    GridSearchCV searches it together with the projection family and
    dimension, scoring each candidate as it will serve (with
    :func:`budget_scorer`, within a size budget).

    Parameters
    ----------
    estimator : estimator
        The pipeline to fit (from :func:`make_quant_pipeline`, or any
        pipeline :func:`quantize` can export).
    dtype : {"int8", "float16", "float32"}, default="int8"
        Storage of the weight matrices in the export.

    Attributes
    ----------
    estimator_ : estimator
        The fitted pipeline.
    quantized_ : QuantizedPipeline
        Its export, which ``predict`` uses.
    artifact_bytes_ : int
        Size of the saved artifact.
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Input column names, when fitted on named columns.

    See Also
    --------
    quantize : the export itself.
    budget_scorer : accuracy within a size budget.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import GridSearchCV
    >>> import skquant
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = skquant.make_quant_pipeline("column", 8, random_state=0, classify__epochs=2)
    >>> search = GridSearchCV(
    ...     skquant.QuantizedClassifier(pipe),
    ...     {"dtype": ["float32", "int8"], "estimator__project__n_components": [4, 8]},
    ...     scoring=skquant.budget_scorer(max_bytes=6000), cv=2,
    ... ).fit(X[:400], y[:400])
    >>> search.best_estimator_.artifact_bytes_ <= 6000
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"])],
        "dtype": [StrOptions(set(_DTYPES))],
    }

    def __init__(self, estimator, dtype="int8"):
        self.estimator = estimator
        self.dtype = dtype

    def fit(self, X, y, **fit_params):
        """Fit the pipeline, then quantize it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,)
            Labels.
        **fit_params : dict
            Passed to the pipeline's ``fit``.

        Returns
        -------
        self : object
        """
        self._validate_params()
        fitted = clone(self.estimator).fit(X, y, **fit_params)
        quantized = quantize(fitted, dtype=self.dtype)
        self.estimator_, self.quantized_ = fitted, quantized
        self.artifact_bytes_ = quantized.artifact_size()
        self.classes_ = quantized.classes_
        self.n_features_in_ = quantized.n_features_in_
        if hasattr(fitted, "feature_names_in_"):
            self.feature_names_in_ = fitted.feature_names_in_
        return self

    def _served(self, X):
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        # NaN passes only where the pipeline cleans it
        cleans = self.__sklearn_tags__().input_tags.allow_nan
        return validate_data(self, X, reset=False, ensure_all_finite=not cleans,
                             dtype=[np.float64, np.float32])

    def predict(self, X):
        """Labels predicted by the quantized export.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        X = self._served(X)  # checks fitted first
        return self.quantized_.predict(X)

    def predict_proba(self, X):
        """Class probabilities from the quantized export.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw rows.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        X = self._served(X)
        return self.quantized_.predict_proba(X)

    def __sklearn_tags__(self):
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        # NaN is fine where the pipeline cleans it (a Cleaner first)
        tags.input_tags.allow_nan = get_tags(self.estimator).input_tags.allow_nan
        return tags
