"""TFLite export: the whole pipeline as one graph, run by LiteRT."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skquant import export_tflite, make_quant_pipeline
from skquant._tflite import run_tflite
from skquant.pipeline import _FAMILIES

CASES = [(family, method) for family, (_, _, methods) in _FAMILIES.items()
         for method in methods]

# Where a method differs from the defaults: fewer trees, to fit quickly;
# probabilities within 1e-4 of the pipeline's (float32 arithmetic
# throughout), except for spectral, since the numpy runtime computes
# neighbour distances in float64.
PIPELINE_PARAMS = {"tree:random-trees": {"project__n_estimators": 5}}
PROBABILITY_ATOL = {"graph:spectral": 0.05}


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.mark.parametrize("family, method", CASES, ids=[f"{f}:{m}" for f, m in CASES])
def test_the_tflite_model_predicts_as_the_pipeline(digits_split, family, method, tmp_path):
    X_train, X_test, y_train, _ = digits_split
    kind = f"{family}:{method}"
    pipe = make_quant_pipeline(family, 12, method=method, random_state=0, classify__epochs=3,
                               **PIPELINE_PARAMS.get(kind, {})).fit(X_train, y_train)
    X_test = X_test.copy()
    X_test[::7, 30] = np.nan  # the graph cleans, as the pipeline does
    reference = pipe.predict_proba(X_test)
    path = export_tflite(pipe, tmp_path / "float32.tflite", dtype="float32")
    proba = run_tflite(path, X_test)
    np.testing.assert_array_equal(proba.argmax(axis=1), reference.argmax(axis=1))
    np.testing.assert_allclose(proba, reference, atol=PROBABILITY_ATOL.get(kind, 1e-4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no low-agreement warning
        path = export_tflite(pipe, tmp_path / "int8.tflite", dtype="int8",
                             X_calibration=X_test[:200])
    agreement = np.mean(run_tflite(path, X_test).argmax(axis=1) == reference.argmax(axis=1))
    assert agreement >= 0.98


def test_the_exceptions_name_registered_methods():
    kinds = {f"{family}:{method}" for family, method in CASES}
    assert set(PIPELINE_PARAMS) | set(PROBABILITY_ATOL) <= kinds


@pytest.fixture(scope="module")
def tiny_pipe(digits_split):
    X_train, _, y_train, _ = digits_split
    return make_quant_pipeline("column", 4, random_state=0, classify__epochs=1).fit(
        X_train[:300], y_train[:300])


def test_bad_dtype_and_unsupported_pipelines(digits_split, tiny_pipe, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X_train, _, y_train, _ = digits_split
    pipe = tiny_pipe
    with pytest.raises(ValueError, match="dtype must be one of"):
        export_tflite(pipe, tmp_path / "m.tflite", dtype="int4")
    other = make_pipeline(LogisticRegression(max_iter=20)).fit(X_train[:100], y_train[:100])
    with pytest.raises(TypeError, match="cannot export LogisticRegression"):
        export_tflite(other, tmp_path / "m.tflite")


def _no_conversion(*args, **kwargs):
    raise AssertionError("the conversion started before the output path was checked")


@pytest.mark.parametrize(
    "make, force, message",
    [
        (lambda d: (d / "old.tflite").write_bytes(b"previous") and d / "old.tflite", False,
         "already exists; pass --force"),
        (lambda d: d / "missing" / "m.tflite", True, "does not exist; create it first"),
        (lambda d: d, True, "is a directory; give a file path"),
    ],
    ids=["exists-without-force", "missing-directory", "directory"],
)
def test_bad_output_paths_are_refused_before_the_conversion(
        tiny_pipe, tmp_path, monkeypatch, make, force, message):
    import skquant._tflite
    from skquant._atomic import OutputError

    monkeypatch.setattr(skquant._tflite, "_tensorflow", _no_conversion)
    path = make(tmp_path)
    with pytest.raises(OutputError, match=message):
        export_tflite(tiny_pipe, path, dtype="float32", force=force)
    if path.is_file():
        assert path.read_bytes() == b"previous"


def test_an_existing_file_is_replaced_atomically_by_default(digits_split, tiny_pipe, tmp_path):
    _, X_test, _, _ = digits_split
    path = tmp_path / "m.tflite"
    path.write_bytes(b"previous")
    assert export_tflite(tiny_pipe, path, dtype="float32") == str(path)  # as joblib.dump
    np.testing.assert_allclose(run_tflite(path, X_test[:20]),
                               tiny_pipe.predict_proba(X_test[:20]), atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]  # no temporary left


def test_rows_the_model_cannot_take_get_clear_messages(digits_split, tiny_pipe, tmp_path):
    _, X_test, _, _ = digits_split
    path = export_tflite(tiny_pipe, tmp_path / "m.tflite", dtype="float32")
    beyond = X_test[:3].copy()
    beyond[1, 20] = 1e300  # inf in float32: it would be imputed as missing
    with pytest.raises(ValueError, match=r"1e\+300 \(row 1, column 20\), beyond float32"):
        run_tflite(path, beyond)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 64\).*\(3, 10\)"):
        run_tflite(path, X_test[:3, :10])
    with pytest.raises(ValueError, match=r"reshape a single row"):
        run_tflite(path, X_test[0])
    with pytest.raises(ValueError, match="2-D array of numbers"):
        run_tflite(path, [["a"] * 64])
