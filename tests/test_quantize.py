"""Quantized export: the numpy runtime, the artifact, and their failure modes."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline

import skquant
from skquant import Cleaner, load_quantized, make_quant_pipeline, quantize
from skquant.runtime import ArtifactError

FAST = {"classify__epochs": 3, "classify__batch_size": 64}
FAMILIES = [
    ("column", "pca"), ("column", "qr"), ("column", "random"),
    ("tree", "tsvq"), ("tree", "random-trees"),
    ("graph", "spectral"), ("graph", "lpp"),
]


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def fitted(digits_split):
    X_train, _, y_train, _ = digits_split
    return {
        (family, method): make_quant_pipeline(family, 16, method=method, random_state=0,
                                              **FAST).fit(X_train, y_train)
        for family, method in FAMILIES
    }


@pytest.mark.parametrize("family, method", FAMILIES, ids=[f"{f}:{m}" for f, m in FAMILIES])
def test_float32_export_predicts_as_the_pipeline(fitted, digits_split, family, method):
    _, X_test, _, _ = digits_split
    pipe = fitted[family, method]
    served = quantize(pipe, dtype="float32")
    np.testing.assert_array_equal(served.predict(X_test), pipe.predict(X_test))
    np.testing.assert_allclose(served.predict_proba(X_test), pipe.predict_proba(X_test),
                               atol=1e-5)


@pytest.mark.parametrize("family, method", FAMILIES, ids=[f"{f}:{m}" for f, m in FAMILIES])
def test_int8_and_float16_stay_close(fitted, digits_split, family, method):
    _, X_test, _, y_test = digits_split
    pipe = fitted[family, method]
    reference = pipe.score(X_test, y_test)
    for dtype in ("float16", "int8"):
        served = quantize(pipe, dtype=dtype, X_calibration=X_test)
        assert served.score(X_test, y_test) >= reference - 0.02, dtype
        assert served.manifest["calibration"]["agreement"] > 0.95


def test_int8_costs_at_most_half_a_point_on_digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    pipe = make_quant_pipeline("column", 32, random_state=0).fit(X_train, y_train)
    assert quantize(pipe, dtype="int8").score(X_test, y_test) >= (
        pipe.score(X_test, y_test) - 0.005)


def test_int8_shrinks_the_weights_to_under_a_third(fitted, tmp_path):
    for key, pipe in fitted.items():
        sizes, weights = {}, {}
        for dtype in ("float32", "int8"):
            path = tmp_path / f"{dtype}.skq"
            served = quantize(pipe, dtype=dtype)
            served.save(path)
            sizes[dtype] = os.path.getsize(path)
            # the weight matrices: stored whole in float32, as codes + scales in int8
            weights[dtype] = sum(a.nbytes for name, a in served.arrays.items()
                                 if a.ndim == 2 and a.dtype.kind == "f" or
                                 name.endswith((".q", ".scale")))
        assert weights["int8"] <= 0.3 * weights["float32"], (key, weights)
        # vectors (means, bounds, biases) and the trees' structure stay as they
        # are, so the whole file shrinks less for these small models
        assert sizes["int8"] <= 0.6 * sizes["float32"], (key, sizes)


def test_save_and_load_round_trip(fitted, digits_split, tmp_path):
    _, X_test, _, _ = digits_split
    served = quantize(fitted["tree", "tsvq"], dtype="int8")
    path = served.save(tmp_path / "model.skq")
    loaded = load_quantized(path)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), served.predict_proba(X_test))
    assert loaded.dtype == "int8" and loaded.n_features_in_ == 64
    np.testing.assert_array_equal(loaded.classes_, np.arange(10))
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format_version"] == 2 and manifest["checksum"].startswith("sha256:")
    assert "signature" not in manifest
    assert manifest["skquant_version"] == skquant.__version__


def test_string_labels_feature_names_and_missing_values(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(X[:600], columns=[f"px{i}" for i in range(64)])
    labels = np.array(["even", "odd"])[y[:600] % 2]
    pipe = make_quant_pipeline("column", 8, random_state=0, **FAST).fit(frame, labels)
    served = load_quantized(quantize(pipe, dtype="float32").save(tmp_path / "m.skq"))
    assert list(served.feature_names_in_[:2]) == ["px0", "px1"]
    shuffled = frame[frame.columns[::-1]]
    np.testing.assert_array_equal(served.predict(shuffled), pipe.predict(frame))
    holes = frame.to_numpy().copy()
    holes[::3, 20] = np.nan
    np.testing.assert_array_equal(served.predict(holes), pipe.predict(holes))
    assert set(served.predict(holes)) <= {"even", "odd"}


def test_outlier_filter_exports_as_its_classifier(digits_split):
    X_train, X_test, y_train, _ = digits_split
    pipe = make_quant_pipeline("column", 8, outlier_filter=True, random_state=0,
                               classify__estimator__epochs=2).fit(X_train, y_train)
    served = quantize(pipe, dtype="float32")
    np.testing.assert_array_equal(served.predict(X_test), pipe.predict(X_test))


def test_serving_imports_neither_tensorflow_nor_sklearn(fitted, digits_split, tmp_path):
    _, X_test, _, _ = digits_split
    path = quantize(fitted["graph", "spectral"], dtype="int8").save(tmp_path / "m.skq")
    np.save(tmp_path / "X.npy", X_test[:5])
    script = (
        "import sys, numpy as np, skquant\n"
        f"model = skquant.load_quantized({str(path)!r})\n"
        f"print(model.predict(np.load({str(tmp_path / 'X.npy')!r})).tolist())\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'scipy') if m in sys.modules]\n"
        "print('HEAVY:' + ','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY:"


@pytest.mark.parametrize("damage", ["truncate", "tamper", "version", "not_zip", "other_zip"])
def test_damaged_artifacts_are_refused(fitted, tmp_path, damage):
    path = quantize(fitted["column", "pca"], dtype="int8").save(tmp_path / "m.skq")
    data = open(path, "rb").read()
    if damage == "truncate":
        open(path, "wb").write(data[: len(data) // 2])
        message = "truncated or corrupt artifact: the zip's end record is missing"
    elif damage == "tamper":
        with zipfile.ZipFile(path) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
        blob = bytearray(entries["arrays.bin"])
        blob[len(blob) // 2] ^= 0x7F
        entries["arrays.bin"] = bytes(blob)
        with zipfile.ZipFile(path, "w") as archive:
            for name, payload in entries.items():
                archive.writestr(name, payload)
        message = "fails its checksum"
    elif damage == "version":
        with zipfile.ZipFile(path) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
        manifest = json.loads(entries["manifest.json"])
        manifest["format_version"] = 99
        entries["manifest.json"] = json.dumps(manifest).encode()
        with zipfile.ZipFile(path, "w") as archive:
            for name, payload in entries.items():
                archive.writestr(name, payload)
        message = "format version 99; this skquant reads version 2. Upgrade skquant"
    elif damage == "not_zip":
        open(path, "wb").write(b"print('hello')\n" * 10)
        message = "not a skquant artifact"
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "hi")
        message = "not a skquant artifact: it has no manifest.json"
    with pytest.raises(ArtifactError, match=message):
        load_quantized(path)


def test_object_arrays_are_never_loaded(tmp_path):
    # an index entry claiming an object dtype (which would need pickle) is
    # refused, even with a valid checksum
    from skquant.runtime._artifact import _Digests, _body
    from skquant.runtime._schema import canonical

    path = tmp_path / "evil.skq"
    blob = b"\x00" * 16
    manifest = {"format": "skquant-quantized", "format_version": 2,
                "arrays": {"classes": ["|O", [2], 0]}}
    digests = _Digests(_body(manifest), None)
    digests.update(blob)
    manifest["checksum"] = digests.checksum()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", canonical(manifest))
        archive.writestr("arrays.bin", blob)
    with pytest.raises(ArtifactError, match=r"has the dtype '\|O', which artifacts never hold"):
        load_quantized(path)
    with pytest.raises(TypeError, match="numbers and strings only"):
        quantize_arrays = {"classes": np.array([{"a": 1}], dtype=object)}
        from skquant.runtime._artifact import write_artifact
        write_artifact(tmp_path / "x.skq", {}, quantize_arrays)


def test_a_version_1_artifact_asks_for_a_re_export(fitted, tmp_path):
    path = quantize(fitted["column", "pca"], dtype="int8").save(tmp_path / "m.skq")
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(entries["manifest.json"])
    manifest["format_version"] = 1
    entries["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
    with pytest.raises(ArtifactError, match="format version 1, written by an older skquant"
                                            ".*Re-export the model"):
        load_quantized(path)


def test_save_is_atomic_and_signs_with_a_key(fitted, digits_split, tmp_path, monkeypatch):
    from skquant import _atomic

    _, X_test, _, _ = digits_split
    served = quantize(fitted["column", "pca"], dtype="int8")
    key = b"a secret of thirty-two bytes...."
    path = served.save(tmp_path / "m.skq", key=key)
    assert isinstance(path, str)
    np.testing.assert_array_equal(load_quantized(path, key=key).predict(X_test),
                                  served.predict(X_test))
    # without a key the signature is not checked, the checksum is
    np.testing.assert_array_equal(load_quantized(path).predict(X_test),
                                  served.predict(X_test))
    with pytest.raises(ArtifactError, match="signature that does not match the key"):
        load_quantized(path, key=b"another key")
    unsigned = served.save(tmp_path / "u.skq")
    with pytest.raises(ArtifactError, match="is not signed, and a key was given"):
        load_quantized(unsigned, key=key)
    with pytest.raises(TypeError, match="key must be bytes, not str"):
        load_quantized(path, key="secret")
    with pytest.raises(ValueError, match="key is empty"):
        served.save(tmp_path / "e.skq", key=b"")
    # the same model gives the same bytes (a fixed zip date, canonical JSON)
    assert open(served.save(tmp_path / "again.skq"), "rb").read() == open(unsigned, "rb").read()
    # a save that fails part-way leaves the previous file as it was
    before = open(path, "rb").read()

    def broken(handle_path, data, **kwargs):
        with _atomic.atomic_write(handle_path, "wb") as handle:
            handle.write(data[:100])
            raise KeyboardInterrupt

    monkeypatch.setattr(_atomic, "write_bytes", broken)
    with pytest.raises(KeyboardInterrupt):
        served.save(path)
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["again.skq", "m.skq", "u.skq"]


def test_unsupported_steps_and_dtypes_are_refused(fitted):
    X, y = load_digits(return_X_y=True)
    other = make_pipeline(Cleaner(), LogisticRegression(max_iter=50)).fit(X[:200], y[:200])
    with pytest.raises(TypeError, match="cannot export LogisticRegression"):
        quantize(other)
    with pytest.raises(ValueError, match="dtype must be one of"):
        quantize(fitted["column", "pca"], dtype="int4")


def test_bad_input_at_predict_time(fitted):
    served = quantize(fitted["column", "pca"])
    with pytest.raises(ValueError, match="X has 3 features, but the model is expecting 64"):
        served.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Reshape a single row"):
        served.predict(np.zeros(64))
    with pytest.raises(ValueError, match="X must be numeric"):
        served.predict([["a"] * 64])


def test_a_pipeline_beyond_float32_is_refused_at_export(digits_split):
    # trained at 1e50: the float32 runtime could only give NaN from it
    X_train, X_test, y_train, _ = digits_split
    pipe = make_quant_pipeline("column", 8, random_state=0, classify__epochs=1).fit(
        X_train[:300] * 1e50, y_train[:300])
    for dtype in ("float32", "float16", "int8"):
        with pytest.raises(ValueError, match=r"quantize cannot export this pipeline: its "
                                             r"Cleaner holds values up to .*e\+5\d .*"
                                             r"beyond float32's range"):
            quantize(pipe, dtype=dtype)
    # the classifier alone holds its input means (about 1e50) too
    with pytest.raises(ValueError, match="its KerasMLPClassifier holds values up to"):
        quantize(pipe[-1], dtype="float32")


def test_float16_weights_beyond_its_range_are_refused(fitted):
    pipe = fitted["column", "random"]
    projection, classifier = pipe.named_steps["project"], pipe.named_steps["classify"]
    original = projection.components_, classifier.input_mean_, classifier.input_scale_
    try:
        # beyond float16's 65504; the classifier's input statistics scaled
        # alike, so that the model stays the same function
        projection.components_ = original[0] * 1e6
        classifier.input_mean_, classifier.input_scale_ = original[1] * 1e6, original[2] * 1e6
        with pytest.raises(ValueError, match=r"'s1.components'\), beyond float16's range.*"
                                             "float16 cannot store these weights: choose "
                                             "dtype='float32' or 'int8'"):
            quantize(pipe, dtype="float16")
        quantize(pipe, dtype="int8")  # int8 scales stay within float32
    finally:
        projection.components_, classifier.input_mean_, classifier.input_scale_ = original


def test_inputs_outside_the_exported_range_raise_instead_of_nan(fitted, digits_split):
    from sklearn.pipeline import Pipeline

    _, X_test, _, _ = digits_split
    X = X_test[:20].copy()
    served = quantize(fitted["column", "pca"], dtype="float32")
    # beyond float32's range: refused (the pipeline computes in float32)
    X[3, 5] = 1e39
    with pytest.raises(ValueError, match=r"X holds 1e\+39 \(row 3, column 5\), beyond "
                                         "float32's range.*mark the values missing"):
        served.predict_proba(X)
    # NaN and infinity: imputed by the Cleaner, finite probabilities
    X[3, 5], X[4, 6], X[7, 1] = np.nan, np.inf, -np.inf
    proba = served.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # without a Cleaner, NaN is an error, not a NaN probability
    bare = quantize(Pipeline(fitted["tree", "tsvq"].steps[1:]), dtype="float32")
    assert bare.steps == ["closeness", "mlp"]
    width = bare.n_features_in_  # the Cleaner's kept columns
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(row 3, column 5\), "
                                         "and this pipeline has no Cleaner"):
        bare.predict(X[:, :width])
    # finite float32 inputs whose squared distances overflow: a clear error
    huge = X_test[:6, :width].astype(np.float32)
    huge[2] = 1e20
    for method in (bare.predict, bare.predict_proba):
        with pytest.raises(ValueError, match=r"closeness step overflowed float32 on 1 of 6 "
                                             r"row\(s\) \(the first: row 2\)"):
            method(huge)
    # the MLP's hidden layers are checked too (a ReLU would hide -inf)
    from skquant import QuantizedPipeline

    manifest = {"dtype": "float32", "n_features_in": 2, "steps": [
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 2}}]}
    arrays = {"classes": np.array([0, 1]),
              "c.input_mean": np.zeros(2, np.float32), "c.input_scale": np.ones(2, np.float32),
              "c.weights0": np.full((1, 2), -10.0, np.float32), "c.bias0": np.zeros(1, np.float32),
              "c.weights1": np.ones((2, 1), np.float32),
              "c.bias1": np.array([0.0, 1.0], np.float32)}
    classifier = QuantizedPipeline(manifest, arrays)
    assert classifier.predict([[1.0, 2.0], [0.0, 0.0]]).tolist() == [1, 1]
    with pytest.raises(ValueError, match=r"layer 0 of the classifier overflowed float32 on "
                                         r"1 of 2 row\(s\) \(the first: row 1\)"):
        classifier.predict_proba([[1.0, 2.0], [3e38, 3e38]])
    assert classifier.predict(np.zeros((0, 2))).shape == (0,)


def test_sparse_and_non_numeric_input_get_clear_messages(fitted, digits_split):
    import scipy.sparse

    _, X_test, _, _ = digits_split
    served = quantize(fitted["column", "pca"])
    for sparse in (scipy.sparse.csr_matrix(X_test[:3]), scipy.sparse.coo_array(X_test[:3])):
        with pytest.raises(TypeError, match=r"X is a sparse matrix \(\w+\); the quantized "
                                            r"runtime takes dense arrays: pass X.toarray\(\)"):
            served.predict(sparse)
    np.testing.assert_array_equal(
        served.predict(scipy.sparse.csr_matrix(X_test[:3]).toarray()), served.predict(X_test[:3]))
    with pytest.raises(ValueError, match="X must be numeric, but it holds complex128"):
        served.predict(X_test[:2] + 1j)
    with pytest.raises(ValueError, match="X must be a 2-D array of numbers"):
        served.predict([[1.0] * 64, [1.0] * 63])
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_test[:3])
    frame[10] = ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"its column\(s\) \['10'\] hold non-numeric values"):
        served.predict(frame)
    frame[10] = pd.array([1, None, 3], dtype="Int64")  # a nullable column: NaN, imputed
    assert served.predict(frame).shape == (3,)


def test_cli_quantize_then_predict(fitted, digits_split, tmp_path, capsys):
    import joblib

    from skquant.cli import main

    _, X_test, _, y_test = digits_split
    pipe = fitted["column", "pca"]
    model_path, artifact = tmp_path / "pipe.joblib", tmp_path / "pipe.skq"
    joblib.dump(pipe, model_path)
    np.savez(tmp_path / "check.npz", X=X_test, y=y_test)
    assert main(["quantize", "--trust-pickle", str(model_path), "--dtype", "int8",
                 "-o", str(artifact),
                 "--check", str(tmp_path / "check.npz")]) == 0
    printed = capsys.readouterr().out
    assert "int8" in printed and "accuracy on" in printed and "same prediction on" in printed
    np.savez(tmp_path / "rows.npz", X=X_test[:7])
    assert main(["predict", str(artifact), str(tmp_path / "rows.npz")]) == 0
    predicted = capsys.readouterr().out.split()
    assert predicted == [str(p) for p in load_quantized(artifact).predict(X_test[:7])]
    # quantizing an artifact again, or a damaged one, is a clear error
    assert main(["quantize", str(artifact), "-o", str(tmp_path / "again.skq")]) == 2
    assert "already a quantized artifact" in capsys.readouterr().err
    data = open(artifact, "rb").read()
    open(artifact, "wb").write(data[:200])
    assert main(["predict", str(artifact), str(tmp_path / "rows.npz")]) == 2
    err = capsys.readouterr().err
    # the message names the file and what is wrong with it, not just "error"
    assert err.startswith(f"skquant: error: {artifact}"), err
    assert "truncated or corrupt" in err and "artifact" in err and "joblib" not in err, err


def test_grid_search_over_dtype_within_a_budget(digits_split):
    from sklearn.model_selection import GridSearchCV

    from skquant import QuantizedClassifier, budget_scorer

    X_train, X_test, y_train, y_test = digits_split
    pipe = make_quant_pipeline("column", 8, random_state=0, **FAST)
    grid = {"dtype": ["float32", "int8"], "estimator__project__n_components": [8, 24]}
    sizes = {}
    for dtype in grid["dtype"]:
        for k in grid["estimator__project__n_components"]:
            model = QuantizedClassifier(pipe, dtype=dtype).set_params(
                estimator__project__n_components=k).fit(X_train, y_train)
            sizes[dtype, k] = model.artifact_bytes_
    assert sizes["int8", 24] < sizes["float32", 24]
    # a budget that only the int8 models meet: the search must pick one
    budget = max(sizes["int8", 8], sizes["int8", 24]) + 1
    assert budget < min(sizes["float32", 8], sizes["float32", 24])
    search = GridSearchCV(QuantizedClassifier(pipe), grid, cv=2,
                          scoring=budget_scorer(budget)).fit(X_train, y_train)
    assert search.best_params_["dtype"] == "int8"
    scores = search.cv_results_["mean_test_score"]
    over = [i for i, p in enumerate(search.cv_results_["params"]) if p["dtype"] == "float32"]
    assert all(scores[i] == 0.0 for i in over)
    assert search.best_estimator_.score(X_test, y_test) > 0.5


def test_budget_scorer_bad_arguments():
    from skquant import budget_scorer

    with pytest.raises(ValueError, match="max_bytes must be a positive"):
        budget_scorer(0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        budget_scorer(1000, dtype="int4")


def test_named_columns_are_matched_by_name_whatever_their_type(digits_split):
    from skquant import QuantizedPipeline

    pd = pytest.importorskip("pandas")
    manifest = {"dtype": "float32", "n_features_in": 2, "steps": [
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 1}}]}
    arrays = {"classes": np.array([0, 1]), "feature_names": np.array(["0", "1"]),
              "c.input_mean": np.zeros(2, np.float32), "c.input_scale": np.ones(2, np.float32),
              "c.weights0": np.eye(2, dtype=np.float32), "c.bias0": np.zeros(2, np.float32)}
    served = QuantizedPipeline(manifest, arrays)
    rows = [[3.0, 1.0], [0.0, 2.0]]
    # integer column labels 0 and 1 name the columns "0" and "1" (a KeyError before)
    assert served.predict(pd.DataFrame(rows)).tolist() == [0, 1]
    assert served.predict(pd.DataFrame(rows, columns=["1", "0"])).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"X has the column\(s\) \['1'\] more than once"):
        served.predict(pd.DataFrame([[3.0, 1.0, 5.0]], columns=["0", "1", "1"]))
    with pytest.raises(ValueError, match=r"X lacks the column\(s\) \['1'\]"):
        served.predict(pd.DataFrame([[3.0]], columns=["0"]))


def test_arrays_of_other_ranks_and_labels_of_other_shapes(fitted, digits_split):
    _, X_test, _, y_test = digits_split
    served = quantize(fitted["column", "pca"])
    for bad in (X_test[None, :5], X_test[:8].reshape(8, 8, 8), np.float64(1.0)):
        with pytest.raises(ValueError, match=rf"Expected a 2-D array of shape \(n_samples, "
                                             rf"64\), got a {bad.ndim}-D one"):
            served.predict(bad)
    assert served.score(X_test, y_test) > 0.5
    # a column of labels compared with the row of predictions: all pairs, before
    with pytest.raises(ValueError, match=r"y has the shape \(450, 1\); it must hold one "
                                         r"label per row of X, shape \(450,\)"):
        served.score(X_test, y_test[:, None])


def test_int8_weights_at_the_top_of_float32_stay_finite():
    from skquant._export import _store
    from skquant.runtime._steps import restore

    top = float(np.finfo(np.float32).max)
    arrays = {}
    _store(arrays, "w", np.array([[top, 1.0], [-top, 0.5]]), "int8", quantize=True)
    restored = restore(arrays, "w")
    # the float32 scale rounded up once made 127 x scale infinite
    assert np.isfinite(restored).all()
    np.testing.assert_allclose(restored[:, 0], [top, -top], rtol=1e-6)


def test_fuzzed_inputs_give_finite_probabilities_or_clear_errors(fitted, digits_split):
    """300 seeded property-based inputs per run over the seven families in
    three dtypes: NaN, infinities, values near and beyond float32's range,
    wrong widths, ranks and dtypes, DataFrames and sparse matrices. Each
    gives finite probabilities summing to 1 (that predict agrees with) or a
    ValueError/TypeError that names the problem."""
    pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    pd = pytest.importorskip("pandas")
    import scipy.sparse

    _, X_test, _, _ = digits_split
    served = {(key, dtype): quantize(pipe, dtype=dtype)
              for key, pipe in fitted.items() for dtype in ("float32", "float16", "int8")}
    values = st.one_of(st.floats(0, 16), st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 3.5e38,
                                        1e20, -1e20, 1e-320, 0.0]))
    forms = {
        "float64": lambda X: X, "float32": lambda X: X.astype(np.float32),
        "object": lambda X: X.astype(object), "list": lambda X: X.tolist(),
        "frame": lambda X: pd.DataFrame(X),
        "sparse": lambda X: scipy.sparse.csr_matrix(np.nan_to_num(X)),
        "1-D": lambda X: X.ravel(), "3-D": lambda X: X[None], "text": lambda X: X.astype(str),
        "complex": lambda X: X.astype(complex),
    }
    messages = ("X has", "X holds", "X contains", "Expected a 2-D array", "X must be",
                "X is a sparse matrix", "overflowed float32")
    outcomes = {"finite": 0, "refused": 0}

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(key=st.sampled_from(sorted(served)), rows=st.integers(0, 6),
           width=st.sampled_from([0, 0, 0, -1, 1]),
           form=st.sampled_from(["float64"] * 4 + ["float32"] * 2 + sorted(forms)),
           data=st.data())
    def check(key, rows, width, form, data):
        model = served[key]
        base = X_test[:rows, : model.n_features_in_ + width]
        if base.shape[1] < model.n_features_in_ + width:  # wider than the data
            base = np.hstack([base, np.zeros((rows, 1))])
        # a few cells of real rows replaced (most rows stay servable)
        mask = data.draw(hnp.arrays(bool, base.shape, elements=st.sampled_from(
            [False] * 30 + [True])))
        X = np.where(mask, data.draw(hnp.arrays(float, base.shape, elements=values)), base)
        with np.errstate(all="ignore"):
            X = forms[form](X)
        try:
            proba = model.predict_proba(X)
        except (ValueError, TypeError) as exc:
            assert any(message in str(exc) for message in messages), str(exc)
            outcomes["refused"] += 1
            return
        assert np.isfinite(proba).all() and proba.shape == (rows, model.classes_.size)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(model.predict(X),
                                      model.classes_[np.argmax(proba, axis=1)])
        outcomes["finite"] += 1

    check()
    assert outcomes["finite"] > 60 and outcomes["refused"] > 60, outcomes


@pytest.mark.parametrize("family, method", FAMILIES, ids=[f"{f}:{m}" for f, m in FAMILIES])
@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_the_fused_plan_computes_what_the_steps_do(fitted, digits_split, family, method, dtype):
    # predictions run the steps fused (runtime/_plan.py); the steps one by
    # one are the reference, on clean rows and on rows with holes
    _, X_test, _, _ = digits_split
    served = quantize(fitted[family, method], dtype=dtype)
    holes = X_test.copy()
    holes[::4, 10], holes[1::5, 30], holes[2::7, 50] = np.nan, np.inf, -np.inf
    for rows in (X_test, holes, X_test[:1], X_test.astype(np.float32)):
        logits = served._run_steps(rows)[-1]
        np.testing.assert_allclose(served._logits(rows), logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(served.predict(rows),
                                      served.classes_[logits.argmax(axis=1)])
    if method in ("pca", "qr", "random", "lpp"):
        # the Cleaner's column selection is folded into the projection's
        # matrix (it reads all 64 raw columns); at 16 dimensions of 64
        # columns, the projection and the first layer stay two products
        # (64x16 and 16x64 cost half of one 64x64)
        # (a column selection, QR's, always folds: into the first layer)
        shapes = [op.matrix.shape for op in served._plan]
        assert shapes == ([(64, 64), (64, 10)] if method == "qr"
                          else [(64, 16), (16, 64), (64, 10)]), shapes
    if method == "spectral":
        # the first layer folds into the landmarks' coordinates (a weighted
        # mean commutes with an affine map), the Cleaner only clips
        assert [type(op).__name__ for op in served._plan] == ["NystromOp", "AffineOp"]
        assert not served._clip.gather and served._plan[0].relu
        n_landmarks = served._run[1].coordinates.shape[0]
        assert served._plan[0].values.shape == (n_landmarks, 64)
    if method == "pca+spectral":
        # both parts take the first layer: its rows for the principal
        # components multiply their matrix, the others fold into the landmarks
        assert [type(op).__name__ for op in served._plan] == ["UnionOp", "AffineOp"]
        assert served._plan[0].folded and served._plan[0].relu
    if method == "tsvq":
        # digits' pixels lie near the tree's origin: the distances to the raw
        # prototypes, without the subtraction
        assert type(served._plan[0]).__name__ == "DistanceOp"
        assert served._plan[0].origin is None


def test_a_projection_and_first_layer_fold_where_that_is_cheaper(digits_split):
    X_train, X_test, y_train, _ = digits_split
    pipe = make_quant_pipeline("column", 32, random_state=0, **FAST).fit(X_train, y_train)
    served = quantize(pipe, dtype="float32")
    # 64x64 costs what 64x32 and 32x64 do, in one call instead of two
    assert [op.matrix.shape for op in served._plan] == [(64, 64), (64, 10)]
    np.testing.assert_allclose(served._logits(X_test), served._run_steps(X_test)[-1],
                               rtol=1e-4, atol=1e-4)


def test_the_fused_plan_proves_most_overflow_checks_unneeded(fitted):
    # a Cleaner's finite bounds bound every value after it: no check is run
    for key, pipe in fitted.items():
        served = quantize(pipe, dtype="float32")
        assert served._guarded, key
    # without a Cleaner nothing bounds the input: every map is checked
    bare = quantize(Pipeline(fitted["column", "pca"].steps[1:]), dtype="float32")
    assert not bare._guarded and all(op.check for op in bare._plan)


def test_a_large_model_runs_its_steps_unfused():
    # fused copies of its matrices would double a large model's memory
    from skquant import QuantizedPipeline
    from skquant.runtime._plan import _FOLD_LIMIT

    width = _FOLD_LIMIT // 8 + 1
    rng = np.random.default_rng(0)
    manifest = {"dtype": "float32", "n_features_in": width, "steps": [
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 2}}]}
    arrays = {"classes": np.array([0, 1]),
              "c.input_mean": np.zeros(width, np.float32),
              "c.input_scale": np.ones(width, np.float32),
              "c.weights0": rng.normal(size=(8, width)).astype(np.float32),
              "c.bias0": np.zeros(8, np.float32),
              "c.weights1": rng.normal(size=(2, 8)).astype(np.float32),
              "c.bias1": np.zeros(2, np.float32)}
    model = QuantizedPipeline(manifest, arrays)
    assert [type(op).__name__ for op in model._plan] == ["StepOp"]
    X = rng.normal(size=(3, width)).astype(np.float32)
    np.testing.assert_array_equal(model._logits(X), model._run_steps(X)[-1])


def test_an_ill_conditioned_projection_is_refused():
    # on raw digits (exactly dependent pixel columns) an LPP component lies in
    # the data's null space: values of 1e-13 computed from terms of 1e3. In
    # float32 that is noise, which the classifier divides by the training
    # spread (1e-14): the served model agreed with its pipeline on 9-12% of
    # rows. quantize refuses it instead.
    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X[:1200], y[:1200], test_size=0.25,
                                              stratify=y[:1200], random_state=0)
    pipe = make_quant_pipeline("graph", 8, method="lpp", random_state=0,
                               **FAST).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"cannot serve this pipeline in float32: output 0 "
                                         r"of its projection .*served predictions would be "
                                         r"noise.*choose another method"):
        quantize(pipe, dtype="float32")


def _manifest_pipeline(d, steps, arrays, rng, n_classes=2, hidden=16):
    """A QuantizedPipeline from steps' manifest entries and arrays, ending in
    a random two-layer classifier."""
    from skquant import QuantizedPipeline

    width = arrays.pop("_width")
    manifest = {"dtype": "float32", "n_features_in": d, "steps": steps + [
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 2}}]}
    arrays.update({
        "classes": np.arange(n_classes),
        "c.input_mean": np.zeros(width, np.float32), "c.input_scale": np.ones(width, np.float32),
        "c.weights0": rng.normal(size=(hidden, width)).astype(np.float32),
        "c.bias0": np.zeros(hidden, np.float32),
        "c.weights1": rng.normal(size=(n_classes, hidden)).astype(np.float32),
        "c.bias1": np.zeros(n_classes, np.float32)})
    return QuantizedPipeline(manifest, arrays)


def test_the_fused_plan_keeps_float32_precision_on_data_with_an_offset():
    # 20 columns at 1e6 +- 10: folding PCA's mean into the bias would compute
    # x @ C at 1e6 (errors of 0.4); the plan subtracts it first, as the steps do
    rng = np.random.default_rng(0)
    d, offset = 20, 1e6
    components = np.linalg.qr(rng.normal(size=(d, 2)))[0].T.astype(np.float32)
    arrays = {"_width": 2, "a.keep": np.arange(d).astype(np.int16),
              "a.fill": np.full(d, offset, np.float32),
              "a.lower": np.full(d, offset - 10, np.float32),
              "a.upper": np.full(d, offset + 10, np.float32),
              "b.mean": np.full(d, offset, np.float32), "b.components": components}
    model = _manifest_pipeline(d, [{"kind": "clean", "prefix": "a.", "params": {}},
                                   {"kind": "linear", "prefix": "b.", "params": {}}],
                               arrays, rng)
    X = (offset + rng.normal(size=(2000, d))).astype(np.float32)
    exact = (X.astype(np.float64) - offset) @ components.T.astype(np.float64)
    np.testing.assert_allclose(model._run_steps(X)[1], exact, atol=1e-5)
    np.testing.assert_allclose(model._logits(X), model._run_steps(X)[-1], rtol=1e-5, atol=1e-4)
    # and quantize's conditioning check judges the terms around the mean
    from skquant._export import _check_float32_conditioning

    _check_float32_conditioning(model)
    # without clipping bounds (clip_quantile=None) it cannot judge: accepted
    arrays_unclipped = {"_width": 2, "a.keep": np.arange(d).astype(np.int16),
                        "a.fill": np.zeros(d, np.float32),
                        "a.lower": np.full(d, -np.inf, np.float32),
                        "a.upper": np.full(d, np.inf, np.float32),
                        "b.mean": np.zeros(d, np.float32), "b.components": components}
    _check_float32_conditioning(_manifest_pipeline(
        d, [{"kind": "clean", "prefix": "a.", "params": {}},
            {"kind": "linear", "prefix": "b.", "params": {}}], arrays_unclipped, rng))


def test_a_selection_before_the_closeness_step_is_gathered(fitted, digits_split):
    # the closeness step reads every input column only right after the
    # Cleaner (whose dropped columns are zero); after another selection
    # (QR, here with a repeated column) the plan gathers first
    rng = np.random.default_rng(0)
    _, X_test, _, _ = digits_split
    tsvq = fitted["tree", "tsvq"].named_steps["project"]
    cleaner = fitted["tree", "tsvq"].named_steps["clean"]
    kept = int(cleaner.support_.sum())
    columns = np.r_[np.arange(kept - 1), 0].astype(np.int16)  # one column twice
    arrays = {"_width": tsvq.n_components_}
    steps = []
    for prefix, (kind, params, values, _) in zip(
            ("a.", "q.", "t."), (cleaner._export(), ("select", {}, {"columns": columns}, set()),
                                 tsvq._export())):
        steps.append({"kind": kind, "prefix": prefix, "params": params})
        arrays.update({prefix + name: np.asarray(value, dtype=np.float32)
                       if np.asarray(value).dtype.kind == "f" else value
                       for name, value in values.items()})
    model = _manifest_pipeline(64, steps, arrays, rng)
    assert [type(op).__name__ for op in model._plan][:2] == ["_GatherOp", "DistanceOp"]
    np.testing.assert_allclose(model._logits(X_test), model._run_steps(X_test)[-1],
                               rtol=1e-4, atol=1e-4)


def test_a_fused_map_beyond_float32_falls_back_to_the_steps():
    # the classifier's standardization (scale 1e-30) times its weights (1e10)
    # is beyond float32 as one matrix; served step by step it is not
    rng = np.random.default_rng(0)
    arrays = {"_width": 2, "a.keep": np.arange(2).astype(np.int16),
              "a.fill": np.zeros(2, np.float32), "a.lower": np.full(2, -1e-30, np.float32),
              "a.upper": np.full(2, 1e-30, np.float32)}
    model = _manifest_pipeline(2, [{"kind": "clean", "prefix": "a.", "params": {}}], arrays,
                               rng, hidden=2)
    model.arrays["c.input_scale"][:] = 1e-30
    model.arrays["c.weights0"][:] = 1e10
    from skquant import QuantizedPipeline

    model = QuantizedPipeline(model.manifest, model.arrays)
    assert [type(op).__name__ for op in model._plan] == ["StepOp", "StepOp"]
    X = np.array([[1e-30, -1e-30], [0.0, 1e-30]], np.float32)
    np.testing.assert_array_equal(model._logits(X), model._run_steps(X)[-1])
    assert np.isfinite(model.predict_proba(X)).all()
