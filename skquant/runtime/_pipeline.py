"""QuantizedPipeline: a fitted skquant pipeline as numpy arrays and steps."""

import os

import numpy as np

from . import _artifact
from ._steps import STEPS, restore


class QuantizedPipeline:
    """A fitted pipeline that predicts with numpy alone.

    Made by :func:`skquant.quantize` from a fitted Pipeline (cleaning,
    projection, classifier), saved with :meth:`save` as one portable file and
    read back with :func:`skquant.load_quantized`. It has scikit-learn's
    prediction interface, and neither TensorFlow nor scikit-learn is
    imported to use it.

    Parameters
    ----------
    manifest : dict
        The JSON description of the steps (as in the artifact).
    arrays : dict of str to ndarray
        The steps' arrays, quantized as the manifest's ``dtype`` says.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Input column names, when the pipeline was fitted with named columns.
    dtype : str
        How the weights are stored: ``"float32"``, ``"float16"`` or ``"int8"``.
    steps : list of str
        The kind of each step, in order.
    nbytes : int
        Bytes of the stored arrays.

    See Also
    --------
    skquant.quantize : make one from a fitted pipeline.
    skquant.load_quantized : read a saved one.

    Examples
    --------
    >>> import numpy as np
    >>> from skquant.runtime import QuantizedPipeline
    >>> manifest = {"dtype": "float32", "n_features_in": 2, "steps": [
    ...     {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 1}}]}
    >>> arrays = {"classes": np.array([0, 1]),
    ...           "c.input_mean": np.zeros(2, np.float32),
    ...           "c.input_scale": np.ones(2, np.float32),
    ...           "c.weights0": np.array([[1., 0.], [0., 1.]], np.float32),
    ...           "c.bias0": np.zeros(2, np.float32)}
    >>> QuantizedPipeline(manifest, arrays).predict(np.array([[3.0, 1.0], [0.0, 2.0]]))
    array([0, 1])
    """

    def __init__(self, manifest, arrays):
        self.manifest = manifest
        self.arrays = arrays
        self.dtype = manifest["dtype"]
        self.classes_ = arrays["classes"]
        self.n_features_in_ = int(manifest["n_features_in"])
        if "feature_names" in arrays:
            self.feature_names_in_ = arrays["feature_names"].astype(object)
        self.steps = [step["kind"] for step in manifest["steps"]]
        self._run = []
        for step in manifest["steps"]:
            prefix = step["prefix"]
            kind = STEPS.get(step["kind"])
            if kind is None:
                raise _artifact.ArtifactError(
                    f"unknown step kind {step['kind']!r}: the artifact was written by a "
                    "newer skquant. Upgrade skquant to read it."
                )
            try:
                self._run.append(kind(step.get("params", {}),
                                      lambda name, p=prefix: restore(arrays, p + name)))
            except KeyError as exc:
                raise _artifact.ArtifactError(
                    f"the artifact lacks the array {exc.args[0]!r} its "
                    f"{step['kind']!r} step needs."
                ) from None

    @property
    def nbytes(self):
        return int(sum(array.nbytes for array in self.arrays.values()))

    def _check(self, X):
        if hasattr(X, "columns") and hasattr(self, "feature_names_in_"):
            names = [str(c) for c in X.columns]
            missing = [n for n in self.feature_names_in_ if n not in names]
            if missing:
                raise ValueError(f"X lacks the column(s) {missing} the model was "
                                 "fitted on.")
            X = X[list(self.feature_names_in_)]
        try:
            X = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"X must be numeric ({exc}). Encode text columns before predicting."
            ) from None
        if X.ndim == 1:
            raise ValueError(
                "Expected a 2-D array, got a 1-D one. Reshape a single row with "
                "X.reshape(1, -1)."
            )
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[-1] if X.ndim else 0} features, but the model is "
                f"expecting {self.n_features_in_} features as input."
            )
        return X

    def _logits(self, X):
        X = self._check(X)
        for step in self._run:
            X = step(X)
        return X

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in)
            Raw rows, as the fitted pipeline took them (NaN allowed where the
            pipeline cleans).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        logits = self._logits(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in)
            Raw rows.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[np.argmax(self._logits(X), axis=1)]

    def score(self, X, y):
        """Accuracy of :meth:`predict` on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in)
            Raw rows.
        y : array-like of shape (n_samples,)
            True labels.

        Returns
        -------
        accuracy : float
        """
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def artifact_size(self):
        """Bytes of the saved artifact (written to memory, not to disk).

        Returns
        -------
        n_bytes : int
        """
        import io

        buffer = io.BytesIO()
        _artifact.write_artifact(buffer, self.manifest, self.arrays)
        return buffer.tell()

    def save(self, path):
        """Write the artifact: one file of arrays and a JSON manifest.

        Parameters
        ----------
        path : str or path-like
            Where to write it (conventionally ``*.skq``).

        Returns
        -------
        path : str
            The path written.
        """
        _artifact.write_artifact(path, self.manifest, self.arrays)
        return os.fspath(path)

    def __repr__(self):
        return (f"QuantizedPipeline(steps={self.steps}, dtype={self.dtype!r}, "
                f"n_features_in={self.n_features_in_}, n_classes={len(self.classes_)})")


def load_quantized(path):
    """Read a :class:`QuantizedPipeline` saved with its ``save`` method.

    Reading runs no pickle: an artifact from an untrusted source cannot run
    code. Only numpy is imported.

    Parameters
    ----------
    path : str or path-like
        The artifact file.

    Returns
    -------
    pipeline : QuantizedPipeline

    Raises
    ------
    skquant.runtime.ArtifactError
        For a file that is not an artifact, is corrupt, truncated or
        tampered with, or has an unknown format version.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skquant
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = skquant.make_quant_pipeline("column", 16, random_state=0,
    ...                                    classify__epochs=3).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "digits.skq")
    >>> _ = skquant.quantize(pipe, dtype="int8").save(path)
    >>> served = skquant.load_quantized(path)
    >>> served.predict(X[:3]).shape
    (3,)
    """
    manifest, arrays = _artifact.read_artifact(path)
    return QuantizedPipeline(manifest, arrays)
