"""Export a fitted skquant pipeline to the numpy runtime, quantized.

Each estimator's module registers how it exports (``skquant._registry``):
its runtime step's kind, parameters and arrays, which this module stores
(quantized where they are weights) and validates as a loaded artifact.
"""

import numpy as np

# scikit-learn is imported by the exporter only: the runtime that serves
# the artifacts (skquant.runtime) never imports this module
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.utils._param_validation import HasMethods, StrOptions

from . import __version__
from ._doc_link import DocLinkMixin
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


def _exporters():
    """Estimator class -> export function, for every registered estimator
    (the built-in families register when their modules are imported)."""
    from . import _registry, cleaning, neural, projection  # noqa: F401 (they register)

    return dict(_registry._EXPORTS)


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
        For an unknown ``dtype``, a fitted value that the stored dtype
        cannot hold (training data beyond float32's range, say), or a
        projection so ill-conditioned that float32 would serve noise (an
        LPP component in the data's null space).

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

    from ._registry import exporter_for
    from .runtime import ArtifactError, QuantizedPipeline

    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}.")
    _exporters()  # the built-in families registered
    steps = _steps_of(pipeline)
    if not steps:
        raise ValueError("The pipeline has no steps to export.")
    exports = [exporter_for(step) for step in steps]  # each step exportable
    if not is_classifier(steps[-1]):
        raise TypeError(
            f"The pipeline must end with a KerasMLPClassifier, not "
            f"{type(steps[-1]).__name__}."
        )
    manifest_steps, arrays = [], {}
    for position, (step, export) in enumerate(zip(steps, exports)):
        check_is_fitted(step)
        kind, params, step_arrays, weights = export(step)
        if (kind == "mlp") != (position == len(steps) - 1):
            raise TypeError(
                f"The pipeline must end with its one classifier: {type(step).__name__} "
                f"(step {position + 1} of {len(steps)}) exports as {kind!r}.")
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
    _check_float32_conditioning(quantized)
    if X_calibration is not None:
        reference = pipeline.predict(X_calibration)
        agreement = float(np.mean(quantized.predict(X_calibration) == reference))
        manifest["calibration"] = {"rows": int(len(reference)), "agreement": agreement}
    return quantized


# float32 rounding error, relative to the classifier's input scale, past
# which the runtime's predictions are noise (measured: an LPP projection of
# raw digits, relative error about 10, agreed with its pipeline on 9-12% of
# rows; well-conditioned ones are below 1e-4)
_FLOAT32_NOISE = 0.05


def _check_float32_conditioning(quantized):
    """Refuse a linear projection whose float32 rounding the classifier would
    amplify into noise.

    A projection's output that is a small difference of large terms (an
    ill-conditioned LPP, say: weights of thousands on near-constant columns)
    is rounded in float32 by about ``eps * sum_i |w_i| * |x_i|``; the
    classifier divides it by its input scale. Where that error passes
    ``_FLOAT32_NOISE`` of the scale, the float32 runtime (and ONNX, TFLite)
    could only serve noise: an error now beats a silently wrong model.
    """
    from .runtime import _steps

    run = quantized._run
    for before, step, after in zip(run, run[1:], run[2:]):
        if not (isinstance(before, _steps.Clean) and isinstance(step, _steps.Linear)
                and isinstance(after, _steps.MLP)):
            continue
        # the runtime subtracts the mean first (exact in float32), so the
        # terms are the components times the spread around the mean
        mean = step.mean.astype(np.float64)
        lower, upper = before.output_bounds()
        spread = np.maximum(np.abs(lower - mean), np.abs(upper - mean))
        if not np.all(np.isfinite(spread)):
            continue  # no clipping bounds: nothing bounds the terms to judge
        terms = np.abs(step.components.astype(np.float64)) @ spread
        error = np.finfo(np.float32).eps * terms * np.sqrt(spread.size)
        relative = error / after.scale.astype(np.float64)
        worst = int(np.argmax(relative))
        if relative[worst] > _FLOAT32_NOISE:
            raise ValueError(
                f"quantize cannot serve this pipeline in float32: output {worst} of its "
                f"projection is a difference of terms up to {terms[worst]:.3g}, which "
                f"float32 rounds by about {error[worst]:.2g}, while the classifier reads "
                f"it in units of {after.scale[worst]:.2g} (its standard deviation in "
                "training): served predictions would be noise. The projection is "
                "ill-conditioned (an LPP component that lies in the data's null space, "
                "say): choose another method (PCA, or LPP on data without exactly "
                "dependent columns), and fit again.")


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




class QuantizedClassifier(DocLinkMixin, ClassifierMixin, BaseEstimator):
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
