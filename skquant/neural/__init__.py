"""The Keras classifier. TensorFlow is imported only when it is first used."""

from ._keras import KerasMLPClassifier

__all__ = ["KerasMLPClassifier"]
