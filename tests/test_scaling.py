"""The Cleaner's scaling through every export target: the quantized numpy
pipeline (its fused plan and its steps), the artifact, ONNX and TFLite.

The other export tests run on digits, whose pixels share one scale and are
left unscaled by ``scaling="auto"``; here the columns are in different
units (breast cancer), so every pipeline scales, and each family meets the
scaling through a different path of the plan: folded into the affine map
after it (column), or run by the Cleaner's kernel before the closeness,
graph and union steps.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from skquant import load_quantized, make_quant_pipeline, quantize
from skquant.pipeline import _FAMILIES

KINDS = [(family, methods[0]) for family, (_, _, methods) in _FAMILIES.items()]
IDS = [f"{family}:{method}" for family, method in KINDS]


@pytest.fixture(scope="module")
def split():
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def test_rows(split):
    X = split[1].copy()
    X[::5, 3] = np.nan
    X[::7, 20] = np.inf
    X[1] = -np.inf
    return X


@pytest.fixture(scope="module")
def fitted(split):
    X_train, _, y_train, _ = split
    pipes = {kind: make_quant_pipeline(kind[0], 8, method=kind[1], random_state=0,
                                       classify__epochs=5).fit(X_train, y_train)
             for kind in KINDS}
    for pipe in pipes.values():
        assert pipe.named_steps["clean"].scaling_ == "standard"
    return pipes


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_the_served_pipeline_scales_as_the_fitted_one(fitted, test_rows, kind, tmp_path):
    pipe = fitted[kind]
    served = quantize(pipe, dtype="float32")
    expected = pipe.predict_proba(test_rows)
    np.testing.assert_allclose(served.predict_proba(test_rows), expected, atol=1e-4)
    # the steps one by one (the reference of the fused plan)
    clean = served._run_steps(test_rows)[0]
    np.testing.assert_allclose(clean, pipe.named_steps["clean"].transform(test_rows),
                               rtol=1e-5, atol=1e-5)
    path = served.save(tmp_path / "model.skq")
    np.testing.assert_array_equal(load_quantized(path).predict(test_rows),
                                  served.predict(test_rows))
    assert (served.predict(test_rows) == pipe.predict(test_rows)).mean() >= 0.99


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_onnx_scales_as_the_pipeline(fitted, test_rows, kind, tmp_path):
    pytest.importorskip("onnxruntime")
    from skquant import export_onnx, run_onnx

    pipe = fitted[kind]
    path = export_onnx(pipe, tmp_path / "model.onnx")
    np.testing.assert_allclose(run_onnx(path, test_rows), pipe.predict_proba(test_rows),
                               atol=1e-4)


def test_onnx_clean_emitter_holds_overflow_as_the_kernel(fitted):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from _onnx_step import run_step

    clean = quantize(fitted[("column", "pca")], dtype="float32")._run[0]
    largest = np.finfo(np.float32).max
    x = np.zeros((3, clean.keep.max() + 1), dtype=np.float32)
    x[0], x[1], x[2] = largest, -largest, 1.0
    got = run_step(clean, x)
    np.testing.assert_allclose(got, clean(x), rtol=1e-6)
    assert np.isfinite(got).all()


@pytest.mark.parametrize("kind", [("column", "pca"), ("graph", "spectral")],
                         ids=["column:pca", "graph:spectral"])
def test_tflite_scales_as_the_pipeline(fitted, test_rows, kind, tmp_path):
    pytest.importorskip("tensorflow")
    from skquant import export_tflite
    from skquant._tflite import run_tflite

    pipe = fitted[kind]
    path = export_tflite(pipe, tmp_path / "model.tflite", dtype="float32")
    reference = pipe.predict_proba(test_rows)
    proba = run_tflite(path, test_rows)
    np.testing.assert_allclose(proba, reference, atol=1e-4 if kind[0] == "column" else 0.05)
    np.testing.assert_array_equal(proba.argmax(axis=1), reference.argmax(axis=1))
