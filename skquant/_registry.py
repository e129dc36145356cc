"""The export registry: what each estimator exports, and how each target
emits each step.

Two tables, filled where the code they describe lives:

- **exports**: estimator class -> ``export(estimator)``, which returns the
  estimator's runtime step as ``(kind, params, arrays, weights)``: a step
  kind the numpy runtime knows (``skquant.runtime._steps.STEPS``), its
  manifest parameters, its named arrays (read from documented fitted
  attributes, or by the family's own ``_export`` method), and the names of
  the arrays that are weight matrices (stored in the artifact's dtype,
  int8 included). Each estimator's module registers it at its bottom.
- **emitters**: target (``"onnx"``, ``"tflite"``) -> runtime step class ->
  the function that writes that step in the target's graph. Each target's
  module registers its own when it is imported.

:func:`register_step` is the public way in, for a user's own transformer.
This module imports nothing heavy: the families import it to register.
"""

import importlib

import numpy as np

_EXPORTS = {}
_EMITTERS = {"onnx": {}, "tflite": {}}
# the module that registers each target's built-in emitters
_TARGET_MODULES = {"onnx": "skquant._onnx", "tflite": "skquant._tflite"}
_TARGET_NAMES = {"onnx": "ONNX", "tflite": "TFLite"}


def index_dtype(largest):
    """The stored integer dtype of indices below ``largest``."""
    return np.int16 if largest < 2**15 else np.int32


def register_export(estimator_class, export=None):
    """Register how ``estimator_class`` exports (default: its ``_export``)."""
    _EXPORTS[estimator_class] = export if export is not None else estimator_class._export
    return estimator_class


def exporter_for(estimator):
    """The export function of an estimator's class (or of its nearest
    registered base class), or a TypeError that names it."""
    for cls in type(estimator).__mro__:
        if cls in _EXPORTS:
            return _EXPORTS[cls]
    known = sorted(cls.__name__ for cls in _EXPORTS)
    raise TypeError(
        f"skquant cannot export {type(estimator).__name__}: no export is registered for "
        f"it (registered: {known}, and OutlierFilter around the classifier). Register "
        "one with skquant.register_step; see the developer guide.")


def register_emitter(target, step_class, emitter, *, replace=True):
    """Register ``target``'s emitter for the runtime steps of ``step_class``
    (the built-ins register with ``replace=False``: a user's own, made
    before the target's module was imported, stays)."""
    if target not in _EMITTERS:
        raise ValueError(f"Unknown export target {target!r}; choose one of "
                         f"{sorted(_EMITTERS)}.")
    if replace or step_class not in _EMITTERS[target]:
        _EMITTERS[target][step_class] = emitter


def emitter_for(target, step):
    """``target``'s emitter for a runtime step, or a TypeError naming both."""
    importlib.import_module(_TARGET_MODULES[target])  # registers the built-ins
    # the exact class: a subclass of a built-in step (registered as a kind
    # of its own) computes its own __call__, which the parent's emitter
    # would not
    if type(step) in _EMITTERS[target]:
        return _EMITTERS[target][type(step)]
    raise TypeError(
        f"skquant cannot export the runtime step {type(step).__name__} to "
        f"{_TARGET_NAMES[target]}: no {_TARGET_NAMES[target]} emitter is registered for it "
        f"(there are for {sorted(cls.__name__ for cls in _EMITTERS[target])}). Register "
        f"one with skquant.register_step(..., {target}=...), or serve the model with the "
        "numpy runtime (skquant.quantize), which runs every registered step.")


def register_step(estimator_class, export, *, kind=None, step=None, onnx=None, tflite=None):
    """Teach skquant to export, serve and convert a transformer of your own.

    The simplest registration maps the transformer onto a step kind the
    runtime already has (``"linear"``: ``(x - mean) @ components.T``;
    ``"select"``: some columns; and the others of
    ``skquant.runtime._steps.STEPS``): then only ``export`` is needed, and
    every target already emits the step. A new kind also needs its runtime
    step class (``step``) and, for each target that should convert it, an
    emitter.

    Parameters
    ----------
    estimator_class : type
        The fitted transformer's class (subclasses included).
    export : callable
        ``export(estimator) -> (kind, params, arrays, weights)``: the step
        kind, its manifest parameters (a dict of JSON scalars), its arrays
        (a dict of name to ndarray) and the set of array names that are
        weight matrices (stored in the artifact's dtype, int8 included).
    kind : str or None, default=None
        A new step kind that ``step`` serves. Required with ``step``.
    step : type or None, default=None
        The runtime step class of the new kind, written as those of
        ``skquant.runtime._steps`` are (``PARAMS``, ``OVERFLOWS``, a static
        ``layout``, ``__init__(params, get)``, ``row_bytes`` and
        ``__call__``). Artifacts holding the kind load in a process that
        has registered it; elsewhere they are refused as unknown.
    onnx, tflite : callable or None, default=None
        Emitters of ``step`` for :func:`skquant.export_onnx` and
        :func:`skquant.export_tflite`, written as the built-in ones.

    Returns
    -------
    estimator_class : type

    Raises
    ------
    ValueError
        If ``kind`` and ``step`` are not given together, or ``kind`` is
        already a runtime step kind.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator, TransformerMixin
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> import skquant
    >>> class Halve(TransformerMixin, BaseEstimator):
    ...     def fit(self, X, y=None):
    ...         self.n_features_in_ = np.shape(X)[1]
    ...         return self
    ...     def transform(self, X):
    ...         return np.asarray(X) / 2
    >>> def export_halve(halve):  # a linear map: (x - 0) @ (I / 2).T
    ...     n = halve.n_features_in_
    ...     return "linear", {}, {"mean": np.zeros(n),
    ...                           "components": np.eye(n) / 2}, {"components"}
    >>> _ = skquant.register_step(Halve, export_halve)
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = make_pipeline(Halve(), skquant.KerasMLPClassifier(epochs=2, random_state=0))
    >>> served = skquant.quantize(pipe.fit(X, y), dtype="float32")
    >>> served.steps
    ['linear', 'mlp']
    >>> bool((served.predict(X) == pipe.predict(X)).all())
    True
    """
    from .runtime import _steps

    if (kind is None) != (step is None):
        raise ValueError("kind and step go together: a new step kind needs its runtime "
                         "step class, and a step class its kind.")
    if kind is not None:
        if kind in _steps.STEPS and _steps.STEPS[kind] is not step:
            raise ValueError(f"{kind!r} is already a runtime step kind "
                             f"({_steps.STEPS[kind].__name__}); choose another name.")
        _steps.STEPS[kind] = step
    register_export(estimator_class, export)
    for target, emitter in (("onnx", onnx), ("tflite", tflite)):
        if emitter is not None:
            if step is None:
                raise ValueError(f"An {target} emitter is for a new step kind: give kind "
                                 "and step too (an existing kind has its emitters).")
            register_emitter(target, step, emitter)
    return estimator_class
