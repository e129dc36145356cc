"""skl2onnx converters for skquant's estimators (:func:`register_skl2onnx`).

Each converter writes its step with the same ONNX emitters as
:func:`skquant.export_onnx` (``skquant/_onnx.py``), through a builder that
writes into skl2onnx's scope and container, from the arrays the estimator
exports for the numpy runtime.
"""

import numpy as np

from ._onnx import (
    _LABEL, _MIN_OPSET, _PROBABILITIES, ML_OPSET, _Builder, _emit, _emit_head, _label_values,
    _onnx_dtype, _require,
)
from ._registry import exporter_for
from .runtime import _steps


class _ContainerBuilder(_Builder):
    """Writes into skl2onnx's scope and container, for a converter."""

    def __init__(self, scope, container):
        self.scope, self.container = scope, container
        self.opset = int(container.target_opset)
        if self.opset < _MIN_OPSET:
            raise ValueError(
                f"skquant's ONNX converters need target_opset >= {_MIN_OPSET}, got "
                f"{self.opset}: call skl2onnx.to_onnx with a newer target_opset.")

    def unique(self, hint):
        return self.scope.get_unique_variable_name(hint)

    def constant(self, array, hint):
        from onnx import TensorProto

        name = self.unique(hint)
        tensor = self._tensor(array, name)
        if tensor.data_type == TensorProto.STRING:  # held as string_data, not raw bytes
            self.container.add_initializer(name, TensorProto.STRING, list(tensor.dims),
                                           list(tensor.string_data))
        else:
            self.container.add_initializer(name, tensor.data_type, list(tensor.dims), tensor)
        return name

    def node(self, op_type, inputs, hint, *, n_outputs=1, domain="", output=None,
             **attributes):
        outputs = ([output] if output is not None else
                   [self.unique(hint) for _ in range(n_outputs)])
        self.container.add_node(
            op_type, list(inputs), outputs, op_domain=domain,
            op_version=ML_OPSET if domain == "ai.onnx.ml" else None,
            name=self.scope.get_unique_operator_name(hint), **attributes)
        return outputs[0] if n_outputs == 1 else outputs


def _alias(cls):
    """skl2onnx's name for a skquant estimator class."""
    return f"Skquant{cls.__name__}"


def _runtime_step(estimator):
    """The runtime step of one fitted estimator, from the arrays its
    exporter gives (stored in float32), as :func:`quantize` builds it."""
    from sklearn.utils.validation import check_is_fitted

    from ._export import _exporters, _steps_of, _store
    from .runtime._pipeline import _Arrays

    (estimator,) = _steps_of(estimator)  # an OutlierFilter: its fitted classifier
    _exporters()  # the built-in families registered
    exporter = exporter_for(estimator)
    check_is_fitted(estimator)
    kind, params, step_arrays, weights = exporter(estimator)
    arrays = {}
    for name, array in step_arrays.items():
        _store(arrays, name, array, "float32", quantize=name in weights,
               owner=f"its {type(estimator).__name__}")
    step = _steps.STEPS[kind](params, _Arrays(arrays, ""))
    if getattr(step, "categories", None):
        raise NotImplementedError(
            "skl2onnx's converter for skquant.Cleaner takes numeric columns only, but this "
            "Cleaner encodes categorical ones: export the whole pipeline with "
            "skquant.export_onnx, whose model takes the text columns as a second input.")
    return step


def _float_input(b, operator):
    from skl2onnx.common.data_types import FloatTensorType

    variable = operator.inputs[0]
    if isinstance(variable.type, FloatTensorType):
        return variable.full_name
    return b.node("Cast", [variable.full_name], "skquant_float_input", to=_onnx_dtype(np.float32))


def _convert_transformer(scope, operator, container):
    b = _ContainerBuilder(scope, container)
    features = _emit(b, _runtime_step(operator.raw_operator), _float_input(b, operator))
    b.node("Identity", [features], "skquant_output", output=operator.outputs[0].full_name)


def _transformer_shape(operator):
    from skl2onnx.common.data_types import FloatTensorType

    model = operator.raw_operator
    step = _runtime_step(model)
    width = step(np.zeros((1, model.n_features_in_), dtype=np.float32)).shape[1]
    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(),
                                                width])


def _label_tensor_type(classes):
    from skl2onnx.common.data_types import (DoubleTensorType, Int64TensorType,
                                            StringTensorType)

    kind = _label_values(classes).dtype.kind
    return {"i": Int64TensorType, "f": DoubleTensorType}.get(kind, StringTensorType)


def _parse_classifier(scope, model, inputs, custom_parsers=None):
    from skl2onnx.common.data_types import FloatTensorType

    operator = scope.declare_local_operator(_alias(type(model)), model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable(
        _LABEL, _label_tensor_type(model.classes_)([None])))
    operator.outputs.append(scope.declare_local_variable(
        _PROBABILITIES, FloatTensorType([None, len(model.classes_)])))
    return operator.outputs


def _parse_outlier_filter(scope, model, inputs, custom_parsers=None):
    # at predict time the filter is its fitted estimator, whatever it is:
    # skl2onnx parses (and converts) that one
    from sklearn.utils.validation import check_is_fitted
    from skl2onnx._parse import _parse_sklearn

    check_is_fitted(model)
    return _parse_sklearn(scope, model.estimator_, inputs, custom_parsers=custom_parsers)


def _classifier_shape(operator):
    rows = operator.inputs[0].get_first_dimension()
    classes = operator.raw_operator.classes_
    operator.outputs[0].type = _label_tensor_type(classes)([rows])
    operator.outputs[1].type.shape = [rows, len(classes)]


def _convert_classifier(scope, operator, container):
    b = _ContainerBuilder(scope, container)
    logits = _emit(b, _runtime_step(operator.raw_operator), _float_input(b, operator))
    _emit_head(b, logits, operator.raw_operator.classes_,
               label=operator.outputs[0].full_name,
               probabilities=operator.outputs[1].full_name)


def register_skl2onnx():
    """Register skl2onnx converters for skquant's estimators.

    Afterwards ``skl2onnx.to_onnx`` converts a skquant pipeline, and any
    scikit-learn pipeline with skquant steps in it (say a StandardScaler, a
    :class:`ColumnProjection` and a LogisticRegression). Each skquant step
    converts to the same ONNX nodes as in :func:`export_onnx`, from the same
    exported arrays as the numpy runtime's; a :class:`KerasMLPClassifier`
    gives the outputs ``label`` and ``probabilities`` (no ZipMap), an
    :class:`OutlierFilter` converts as its fitted inner estimator. Calling
    it again changes nothing.

    Returns
    -------
    aliases : dict of type to str
        The registered estimator classes and their skl2onnx aliases.

    Raises
    ------
    ImportError
        Without skl2onnx: ``pip install "skquant[onnx]"``.

    See Also
    --------
    export_onnx : a whole skquant pipeline, without skl2onnx.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> import skl2onnx
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> import skquant
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.astype(np.float32)
    >>> pipe = make_pipeline(StandardScaler(), skquant.ColumnProjection(16),
    ...                      LogisticRegression(max_iter=500)).fit(X, y)
    >>> _ = skquant.register_skl2onnx()
    >>> model = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    >>> session = onnxruntime.InferenceSession(model.SerializeToString(),
    ...                                        providers=["CPUExecutionProvider"])
    >>> label, proba = session.run(None, {"X": X[:50]})
    >>> bool(np.allclose(proba, pipe.predict_proba(X[:50]), atol=1e-4))
    True
    """
    skl2onnx = _require("skl2onnx")
    from .cleaning import Cleaner, OutlierFilter
    from .neural import KerasMLPClassifier
    from .pipeline import _FAMILIES, _family

    registered = {}
    # the Cleaner and every registered projection family
    families = [_family(name)[0] for name in _FAMILIES]
    for cls in [Cleaner, *families]:
        skl2onnx.update_registered_converter(
            cls, _alias(cls), _transformer_shape, _convert_transformer)
        registered[cls] = _alias(cls)
    # the OutlierFilter's parser hands skl2onnx its inner estimator; its
    # converter (the classifier's, which unwraps the filter) serves callers
    # that declare the filter as an operator themselves
    for cls, parser in ((KerasMLPClassifier, _parse_classifier),
                        (OutlierFilter, _parse_outlier_filter)):
        skl2onnx.update_registered_converter(
            cls, _alias(cls), _classifier_shape, _convert_classifier, parser=parser)
        registered[cls] = _alias(cls)
    return registered
