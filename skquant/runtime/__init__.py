"""The numpy-only serving runtime: quantized pipelines and their artifacts.

Importing it imports numpy alone (no scikit-learn, no TensorFlow).
"""

from ._artifact import ArtifactError
from ._pipeline import QuantizedPipeline, load_quantized

__all__ = ["ArtifactError", "QuantizedPipeline", "load_quantized"]
