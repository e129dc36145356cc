"""ONNX export: the whole pipeline as one graph run by onnxruntime, each
step's emitter against its numpy kernel, the skl2onnx converters, and the
ways a bad file, input or output path is refused."""

import os
import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import skl2onnx
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skquant import (Cleaner, ColumnProjection, KerasMLPClassifier, export_onnx,
                     make_quant_pipeline, quantize, register_skl2onnx, run_onnx)
from skquant._atomic import OutputError
from skquant._onnx import _EMITTERS, load_onnx_model
from _onnx_step import run_step
from skquant.pipeline import _FAMILIES
from skquant.runtime._steps import STEPS

# every method of every registered projection family
KINDS = [(family, method) for family, (_, _, methods) in _FAMILIES.items()
         for method in methods]
IDS = [f"{family}:{method}" for family, method in KINDS]
FAST = {"classify__epochs": 3}


def _digits(jitter):
    X, y = load_digits(return_X_y=True)
    X, y = X[:1200], y[:1200]
    if jitter:
        # on raw digits (exactly dependent pixel columns) an LPP component
        # lies in the data's null space and quantize refuses the pipeline
        # (see test_an_ill_conditioned_projection_is_refused): a little noise
        # makes every method exportable
        X = X + np.random.RandomState(0).uniform(-0.01, 0.01, X.shape)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def digits():
    return _digits(jitter=True)


@pytest.fixture(scope="module")
def test_rows(digits):
    """Held-out rows with missing and infinite values, as raw data has them."""
    X = digits[1].copy()
    X[::7, 30] = np.nan
    X[::11, 5] = np.inf
    X[::13, 40] = -np.inf
    X[3] = np.nan  # a row with nothing known
    return X


@pytest.fixture(scope="module")
def fitted(digits):
    X_train, _, y_train, _ = digits
    return {kind: make_quant_pipeline(kind[0], 8, method=kind[1], random_state=0,
                                      **FAST).fit(X_train, y_train)
            for kind in KINDS}


@pytest.fixture(scope="module")
def text_labels(digits):
    """String classes, and the classifier inside an OutlierFilter."""
    X_train, _, y_train, _ = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    return make_quant_pipeline("column", 8, random_state=0, outlier_filter=True,
                               classify__estimator__epochs=3).fit(X_train, names[y_train])


def _session(model_or_path):
    source = model_or_path if isinstance(model_or_path, (str, os.PathLike)) else (
        model_or_path.SerializeToString())
    return onnxruntime.InferenceSession(os.fspath(source) if isinstance(
        source, os.PathLike) else source, providers=["CPUExecutionProvider"])


def _outputs(model_or_path, X):
    session = _session(model_or_path)
    return dict(zip([o.name for o in session.get_outputs()],
                    session.run(None, {"X": np.asarray(X, dtype=np.float32)})))


# ------------------------------------------------------------ float32 parity
@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_float32_onnx_predicts_as_the_pipeline(fitted, test_rows, kind, tmp_path):
    pipe = fitted[kind]
    path = export_onnx(pipe, tmp_path / "model.onnx")
    proba = run_onnx(path, test_rows)
    np.testing.assert_allclose(proba, pipe.predict_proba(test_rows), rtol=0, atol=1e-5)
    outputs = _outputs(path, test_rows)
    assert list(outputs) == ["label", "probabilities"]
    assert outputs["label"].dtype == np.int64
    np.testing.assert_array_equal(outputs["label"], pipe.predict(test_rows))


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_each_emitter_computes_its_numpy_step(fitted, test_rows, kind):
    """Rule 11: each step's ONNX nodes against the step's own numpy call,
    fed the numpy output of the step before."""
    served = quantize(fitted[kind], dtype="float32")
    x = test_rows.astype(np.float32)
    for step in served._run:
        got = run_step(step, x)
        expected = step(x)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5,
                                   err_msg=type(step).__name__)
        x = expected.astype(np.float32)


def test_every_runtime_step_has_an_emitter_and_is_tested(fitted):
    assert set(_EMITTERS) == set(STEPS.values())
    used = {type(step) for pipe in fitted.values() for step in quantize(pipe, "float32")._run}
    assert used == set(STEPS.values())  # the parity tests above reach every emitter


def test_spectral_parity_on_tied_distances(tmp_path):
    # integer pixels: many rows lie at exactly the same distance from two
    # landmarks, so the parity rests on ties broken by index alike in numpy
    # (nearest_landmarks) and in ONNX (TopK)
    X_train, X_test, y_train, _ = _digits(jitter=False)
    pipe = make_quant_pipeline("graph", 8, method="spectral", random_state=0,
                               **FAST).fit(X_train, y_train)
    proba = run_onnx(export_onnx(pipe, tmp_path / "m.onnx"), X_test)
    np.testing.assert_allclose(proba, pipe.predict_proba(X_test), rtol=0, atol=1e-5)


# --------------------------------------------------------------------- int8
@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_int8_onnx_agrees_with_the_pipeline(fitted, digits, test_rows, kind, tmp_path,
                                            record_property):
    X_train = digits[0]
    pipe = fitted[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # calibrated: no low-agreement warning
        path = export_onnx(pipe, tmp_path / "int8.onnx", dtype="int8",
                           X_calibration=X_train)
    model = load_onnx_model(path)
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    assert metadata["skquant.dtype"] == "int8"
    types = {tensor.data_type for tensor in model.graph.initializer}
    assert onnx.TensorProto.INT8 in types  # int8 weights are stored
    agreement = float(np.mean(run_onnx(path, test_rows).argmax(axis=1)
                              == pipe.predict_proba(test_rows).argmax(axis=1)))
    record_property("int8_agreement", agreement)
    print(f"{kind[0]}:{kind[1]} int8 ONNX agreement on held-out rows: {agreement:.4f} "
          f"(float32 MatMuls: {metadata['skquant.float32_matmuls'] or 'none'})")
    assert agreement >= 0.99
    assert os.path.getsize(path) < os.path.getsize(export_onnx(pipe, tmp_path / "f.onnx"))


def test_int8_keeps_float32_weights_until_the_rows_agree(fitted, digits, tmp_path):
    from skquant._onnx import _calibrated_int8, _graph_model, _weight_matmuls

    pipe = fitted["column", "pca"]
    model = _graph_model(quantize(pipe, dtype="float32"), "int8")
    X = digits[1]
    # an agreement no int8 weight can keep: every MatMul goes back to float32
    quantized, agreement = _calibrated_int8(model, X, pipe.predict(X), target=1.01)
    metadata = {entry.key: entry.value for entry in quantized.metadata_props}
    assert sorted(metadata["skquant.float32_matmuls"].split(",")) == sorted(
        _weight_matmuls(model))
    assert "MatMulInteger" not in {node.op_type for node in quantized.graph.node}
    assert agreement == 1.0  # float32 weights: the pipeline's own classes


def test_a_low_calibration_agreement_warns(fitted, digits, tmp_path, monkeypatch):
    monkeypatch.setattr("skquant._onnx._agreement", lambda model, X, predicted: 0.5)
    with pytest.warns(UserWarning, match="predicts the pipeline's class on only 50.0%"):
        export_onnx(fitted["column", "pca"], tmp_path / "m.onnx", X_calibration=digits[1])
    metadata = {e.key: e.value for e in load_onnx_model(tmp_path / "m.onnx").metadata_props}
    assert metadata["skquant.calibration_agreement"] == "0.5"


# ---------------------------------------------------------- labels, skl2onnx
def test_string_labels_and_an_outlier_filter(text_labels, test_rows, tmp_path):
    path = export_onnx(text_labels, tmp_path / "text.onnx")
    outputs = _outputs(path, test_rows)
    np.testing.assert_array_equal(outputs["label"].astype(str), text_labels.predict(test_rows))
    np.testing.assert_allclose(outputs["probabilities"], text_labels.predict_proba(test_rows),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_skl2onnx_converts_a_skquant_pipeline(fitted, test_rows, kind):
    assert register_skl2onnx() == register_skl2onnx()  # idempotent
    pipe = fitted[kind]
    model = skl2onnx.to_onnx(pipe, test_rows[:1].astype(np.float32))
    outputs = _outputs(model, test_rows)
    assert list(outputs) == ["label", "probabilities"]
    np.testing.assert_allclose(outputs["probabilities"], pipe.predict_proba(test_rows),
                               rtol=0, atol=1e-5)
    np.testing.assert_array_equal(outputs["label"], pipe.predict(test_rows))


def test_skl2onnx_converts_mixed_pipelines(digits, text_labels, test_rows):
    register_skl2onnx()
    X_train, X_test, y_train, _ = (np.asarray(a, dtype=np.float32) if a.ndim == 2 else a
                                   for a in digits)
    mixed = make_pipeline(StandardScaler(), ColumnProjection(16),
                          LogisticRegression(max_iter=500)).fit(X_train, y_train)
    model = skl2onnx.to_onnx(mixed, X_train[:1], options={"zipmap": False})
    outputs = _outputs(model, X_test)
    np.testing.assert_allclose(outputs["probabilities"], mixed.predict_proba(X_test),
                               rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="need target_opset >= 13"):
        skl2onnx.to_onnx(mixed, X_train[:1], options={"zipmap": False}, target_opset=12)
    # string labels through an OutlierFilter, as skl2onnx's classifiers give them
    model = skl2onnx.to_onnx(text_labels, X_train[:1])
    outputs = _outputs(model, test_rows)
    np.testing.assert_array_equal(outputs["label"], text_labels.predict(test_rows))
    np.testing.assert_allclose(outputs["probabilities"], text_labels.predict_proba(test_rows),
                               rtol=0, atol=1e-5)


# --------------------------------------------------------------- bad inputs
def _no_conversion(*args, **kwargs):
    raise AssertionError("the conversion started before the arguments were checked")


def test_a_bad_dtype_is_refused_before_any_work(fitted, tmp_path, monkeypatch):
    monkeypatch.setattr("skquant._export.quantize", _no_conversion)
    for dtype in ("float16", "int4"):
        with pytest.raises(ValueError, match="'dtype' parameter of export_onnx must be a "
                                             "str among") as caught:
            export_onnx(fitted["column", "pca"], tmp_path / "m.onnx", dtype=dtype)
        assert "'float32'" in str(caught.value) and "'int8'" in str(caught.value)
        assert repr(dtype) in str(caught.value)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_unsupported_estimator_is_named(digits, fitted, tmp_path, monkeypatch):
    X_train, _, y_train, _ = digits
    other = make_pipeline(Cleaner(), LogisticRegression(max_iter=50)).fit(
        X_train, y_train)
    with pytest.raises(TypeError, match="export_onnx: .*LogisticRegression.*register_skl2onnx"):
        export_onnx(other, tmp_path / "m.onnx")
    # a runtime step without an ONNX emitter is refused, never exported in part
    from skquant.runtime._steps import Linear

    monkeypatch.delitem(_EMITTERS, Linear)
    with pytest.raises(TypeError, match="runtime step Linear to ONNX"):
        export_onnx(fitted["column", "pca"], tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_corrupt_and_invalid_files_are_refused(fitted, tmp_path):
    path = export_onnx(fitted["column", "pca"], tmp_path / "good.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xffnot an onnx model at all")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(path, "rb").read()[:2000])
    for bad in (garbage, truncated):
        with pytest.raises(ValueError, match="is not a (readable|valid) ONNX model"):
            run_onnx(bad, np.zeros((1, 64)))
    model = onnx.load(path)
    model.graph.node.add().CopyFrom(onnx.helper.make_node("Relu", ["missing"], ["extra"]))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError, match="onnx.checker refuses it"):
        run_onnx(broken, np.zeros((1, 64)))
    model = onnx.load(path)
    next(e for e in model.metadata_props if e.key == "skquant.n_features_in").value = "many"
    edited = tmp_path / "edited.onnx"
    edited.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError, match="it was changed since"):
        run_onnx(edited, np.zeros((1, 64)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_foreign_onnx_model_is_refused(digits, tmp_path):
    X_train, _, y_train, _ = digits
    plain = LogisticRegression(max_iter=50).fit(X_train, y_train)
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(skl2onnx.to_onnx(plain, X_train[:1].astype(np.float32))
                        .SerializeToString())
    with pytest.raises(ValueError, match="made by skl2onnx, not by skquant.export_onnx"):
        run_onnx(foreign, X_train[:2])


def test_bad_rows_are_refused_before_running(fitted, digits, tmp_path):
    path = export_onnx(fitted["column", "pca"], tmp_path / "m.onnx")
    X = digits[1]
    with pytest.raises(ValueError, match="X has 10 features, but the ONNX model is "
                                         "expecting 64 features"):
        run_onnx(path, X[:, :10])
    with pytest.raises(ValueError, match="2-D array"):
        run_onnx(path, X[0])
    beyond = X[:3].copy()
    beyond[1, 20] = 1e300  # inf in float32: it would be imputed as missing
    with pytest.raises(ValueError, match=r"1e\+300 \(row 1, column 20\), beyond float32"):
        run_onnx(path, beyond)
    with pytest.raises(ValueError, match="must be numeric"):
        run_onnx(path, np.full((2, 64), "text"))


def test_nan_is_refused_without_a_cleaner(digits, tmp_path):
    X_train, X_test, y_train, _ = digits
    pipe = Pipeline([("project", ColumnProjection(8, random_state=0)),
                     ("classify", KerasMLPClassifier(epochs=1, random_state=0))]
                    ).fit(X_train, y_train)
    path = export_onnx(pipe, tmp_path / "m.onnx")
    np.testing.assert_allclose(run_onnx(path, X_test), pipe.predict_proba(X_test),
                               rtol=0, atol=1e-5)
    X = X_test.copy()
    X[2, 4] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(row 2, column 4\).*no Cleaner"):
        run_onnx(path, X)


@pytest.mark.parametrize(
    "make, force, message",
    [
        (lambda d: (d / "old.onnx").write_bytes(b"previous") and d / "old.onnx", False,
         "already exists; pass --force"),
        (lambda d: d / "missing" / "m.onnx", True, "does not exist; create it first"),
        (lambda d: d, True, "is a directory; give a file path"),
    ],
    ids=["exists-without-force", "missing-directory", "directory"],
)
def test_bad_output_paths_are_refused_before_the_conversion(
        fitted, tmp_path, monkeypatch, make, force, message):
    monkeypatch.setattr("skquant._export.quantize", _no_conversion)
    path = make(tmp_path)
    with pytest.raises(OutputError, match=message):
        export_onnx(fitted["column", "pca"], path, force=force)
    if path.is_file():
        assert path.read_bytes() == b"previous"


def test_an_existing_file_is_replaced_atomically_by_default(fitted, digits, tmp_path):
    pipe = fitted["column", "qr"]
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    assert export_onnx(pipe, path) == str(path)  # as joblib.dump
    np.testing.assert_allclose(run_onnx(path, digits[1]), pipe.predict_proba(digits[1]),
                               rtol=0, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left


def test_missing_onnx_says_how_to_install(fitted, tmp_path, monkeypatch):
    path = export_onnx(fitted["column", "pca"], tmp_path / "m.onnx")
    for module in ("onnx", "onnxruntime", "skl2onnx"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it now fails
    install = r'pip install "skquant\[onnx\]"'
    with pytest.raises(ImportError, match=install):
        export_onnx(fitted["column", "pca"], tmp_path / "other.onnx")
    with pytest.raises(ImportError, match=install):
        run_onnx(path, np.zeros((1, 64)))
    with pytest.raises(ImportError, match=install):
        register_skl2onnx()
    assert not (tmp_path / "other.onnx").exists()


def test_import_skquant_loads_no_onnx(tmp_path):
    code = (
        "import sys, skquant, skquant.cli\n"
        "from skquant import export_onnx, run_onnx, register_skl2onnx\n"
        "try:\n    skquant.cli.main(['quantize', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED:' + ','.join(m for m in ('onnx', 'onnxruntime', 'skl2onnx', "
        "'onnxconverter_common') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LOADED:"
