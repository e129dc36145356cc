"""TFLite export: the whole pipeline as one graph, run by LiteRT."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skquant import export_tflite, make_quant_pipeline
from skquant._tflite import run_tflite

CASES = [("column", "pca"), ("column", "qr"), ("tree", "tsvq"), ("tree", "random-trees"),
         ("graph", "spectral"), ("graph", "lpp")]


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.mark.parametrize("family, method", CASES, ids=[f"{f}:{m}" for f, m in CASES])
def test_the_tflite_model_predicts_as_the_pipeline(digits_split, family, method, tmp_path):
    X_train, X_test, y_train, _ = digits_split
    params = {"project__n_estimators": 5} if method == "random-trees" else {}
    pipe = make_quant_pipeline(family, 12, method=method, random_state=0,
                               classify__epochs=3, **params).fit(X_train, y_train)
    X_test = X_test.copy()
    X_test[::7, 30] = np.nan  # the graph cleans, as the pipeline does
    reference = pipe.predict_proba(X_test)
    path = export_tflite(pipe, tmp_path / "float32.tflite", dtype="float32")
    proba = run_tflite(path, X_test)
    np.testing.assert_array_equal(proba.argmax(axis=1), reference.argmax(axis=1))
    # float32 arithmetic throughout (the numpy runtime computes neighbour
    # distances in float64, hence the looser bound for the graph family)
    np.testing.assert_allclose(proba, reference, atol=0.05 if method == "spectral" else 1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no low-agreement warning
        path = export_tflite(pipe, tmp_path / "int8.tflite", dtype="int8",
                             X_calibration=X_test[:200])
    agreement = np.mean(run_tflite(path, X_test).argmax(axis=1) == reference.argmax(axis=1))
    assert agreement >= 0.98


def test_bad_dtype_and_unsupported_pipelines(digits_split, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X_train, _, y_train, _ = digits_split
    pipe = make_quant_pipeline("column", 4, random_state=0, classify__epochs=1).fit(
        X_train, y_train)
    with pytest.raises(ValueError, match="dtype must be one of"):
        export_tflite(pipe, tmp_path / "m.tflite", dtype="int4")
    other = make_pipeline(LogisticRegression(max_iter=20)).fit(X_train[:100], y_train[:100])
    with pytest.raises(TypeError, match="cannot export LogisticRegression"):
        export_tflite(other, tmp_path / "m.tflite")
