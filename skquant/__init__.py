"""skquant: clean, project, classify and quantize with scikit-learn.

Public names are resolved lazily (PEP 562), so that ``import skquant`` stays
cheap: scikit-learn is imported on first use of an estimator, and TensorFlow
only when a Keras classifier is fitted or loaded.
"""

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Cleaner": "skquant.cleaning",
    "OutlierFilter": "skquant.cleaning",
    "ColumnProjection": "skquant.projection",
    "TreeProjection": "skquant.projection",
    "GraphProjection": "skquant.projection",
    "UnionProjection": "skquant.projection",
    "KerasMLPClassifier": "skquant.neural",
    "make_quant_pipeline": "skquant.pipeline",
    "fit_stream": "skquant._stream",
    "projection_grid": "skquant.pipeline",
    "quantize": "skquant._export",
    "QuantizedClassifier": "skquant._export",
    "budget_scorer": "skquant._export",
    "export_tflite": "skquant._tflite",
    "export_onnx": "skquant._onnx",
    "run_onnx": "skquant._onnx",
    "register_skl2onnx": "skquant._skl2onnx",
    "register_step": "skquant._registry",
    "trusted_types": "skquant._skops",
    "QuantizedPipeline": "skquant.runtime",
    "load_quantized": "skquant.runtime",
}

_SUBMODULES = {
    "cleaning", "projection", "neural", "pipeline", "runtime", "cli", "distributed",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"skquant.{name}")
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'skquant' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
