"""The numpy-only serving runtime: quantized pipelines and their artifacts.

Importing it imports numpy alone (no scikit-learn, no TensorFlow). An
artifact is validated in full before it is used (see
``skquant.runtime._artifact``); its checksum detects corruption, and an
optional key (HMAC-SHA256) detects tampering.
"""

from ._artifact import read_artifact
from ._pipeline import QuantizedPipeline, load_quantized
from ._schema import ArtifactError

__all__ = ["ArtifactError", "QuantizedPipeline", "load_quantized", "read_artifact"]
