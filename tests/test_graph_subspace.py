"""The graph family on principal components (``pca_components`` below the
number of columns) through every target: the quantized numpy pipeline (its
fused plan and its steps), the artifact, ONNX (each emitter against its
numpy step) and TFLite. The other export tests run on digits, whose 58-60
cleaned columns are below the default of 64, so the reduction runs here."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skquant import load_quantized, make_quant_pipeline, quantize


@pytest.fixture(scope="module")
def split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X[:900], y[:900], test_size=0.25, stratify=y[:900],
                            random_state=0)


@pytest.fixture(scope="module")
def fitted(split):
    X_train, _, y_train, _ = split
    return {family: make_quant_pipeline(family, 8, random_state=0, classify__epochs=3,
                                        project__pca_components=20).fit(X_train, y_train)
            for family in ("graph", "union")}


def _graph_part(pipe):
    project = pipe.named_steps["project"]
    return getattr(project, "graph_", project)


@pytest.mark.parametrize("family", ["graph", "union"])
def test_the_served_pipeline_reduces_as_the_fitted_one(fitted, split, family, tmp_path):
    _, X_test, _, _ = split
    pipe = fitted[family]
    n_clean = int(pipe.named_steps["clean"].support_.sum())
    assert _graph_part(pipe).pca_components_.shape == (20, n_clean)
    served = quantize(pipe, dtype="float32")
    np.testing.assert_allclose(served.predict_proba(X_test), pipe.predict_proba(X_test),
                               atol=1e-4)
    steps = served._run_steps(X_test)
    expected = pipe[:-1].transform(X_test)
    np.testing.assert_allclose(steps[1], expected, rtol=1e-4, atol=1e-4)
    loaded = load_quantized(served.save(tmp_path / "model.skq"))
    np.testing.assert_array_equal(loaded.predict(X_test), served.predict(X_test))
    assert (served.predict(X_test) == pipe.predict(X_test)).mean() >= 0.99


@pytest.mark.parametrize("family", ["graph", "union"])
def test_onnx_reduces_as_the_numpy_step(fitted, split, family, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from _onnx_step import run_step

    from skquant import export_onnx, run_onnx

    _, X_test, _, _ = split
    pipe = fitted[family]
    path = export_onnx(pipe, tmp_path / "model.onnx")
    np.testing.assert_allclose(run_onnx(path, X_test), pipe.predict_proba(X_test), atol=1e-4)
    # the projection step's nodes against the numpy step, fed the clean step's output
    served = quantize(pipe, dtype="float32")
    x = served._run[0](X_test.astype(np.float32)).astype(np.float32)
    step = served._run[1]
    np.testing.assert_allclose(run_step(step, x), step(x), rtol=1e-5, atol=1e-5)


def test_tflite_reduces_as_the_pipeline(fitted, split, tmp_path):
    pytest.importorskip("tensorflow")
    from skquant import export_tflite
    from skquant._tflite import run_tflite

    _, X_test, _, _ = split
    pipe = fitted["graph"]
    path = export_tflite(pipe, tmp_path / "model.tflite", dtype="float32")
    proba = run_tflite(path, X_test)
    reference = pipe.predict_proba(X_test)
    # (TFLite searches the neighbours in float32, the runtime in float64)
    np.testing.assert_allclose(proba, reference, atol=0.05)
    assert (proba.argmax(axis=1) == reference.argmax(axis=1)).mean() >= 0.99


def test_the_artifact_checks_the_reduction(fitted):
    from skquant.runtime import ArtifactError, QuantizedPipeline

    served = quantize(fitted["graph"], dtype="float32")
    prefix = served.manifest["steps"][1]["prefix"]
    broken = dict(served.arrays)
    del broken[f"{prefix}reduce_mean"]
    with pytest.raises(ArtifactError, match="reduce_mean"):
        QuantizedPipeline(served.manifest, broken)
    broken = dict(served.arrays)
    broken[f"{prefix}reduce_components"] = broken[f"{prefix}reduce_components"][:, :5].copy()
    with pytest.raises(ArtifactError, match="reduce_components"):
        QuantizedPipeline(served.manifest, broken)
