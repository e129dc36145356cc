"""Mixed-type tables end to end: categorical columns encoded by the Cleaner,
through fit, predict, quantize, the artifact, ONNX and the command line, from
pandas and polars, with unknown and missing categories at predict time."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from skquant import Cleaner, load_quantized, make_quant_pipeline, quantize
from skquant.runtime import ArtifactError, QuantizedPipeline

FAST = {"classify__epochs": 30}


@pytest.fixture(scope="module")
def penguins():
    palmerpenguins = pytest.importorskip("palmerpenguins")
    frame = palmerpenguins.load_penguins()
    X, y = frame.drop(columns="species"), frame["species"].to_numpy()
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def fitted(penguins):
    X_train, _, y_train, _ = penguins
    return make_quant_pipeline("column", 4, random_state=0).fit(X_train, y_train)


@pytest.fixture(scope="module")
def odd_rows(penguins):
    """Held-out rows with an unknown island, missing categories and numbers."""
    X = penguins[1].copy()
    X.iloc[0, X.columns.get_loc("island")] = "Atlantis"
    X.iloc[1, X.columns.get_loc("island")] = None
    X.iloc[2, X.columns.get_loc("sex")] = np.nan
    X.iloc[3, X.columns.get_loc("bill_length_mm")] = np.nan
    return X


def test_the_raw_penguins_table_is_classified(penguins, fitted):
    _, X_test, _, y_test = penguins
    # measured 0.988 on this split (benchmarks/bench_tables.py has the target)
    assert fitted.score(X_test, y_test) >= 0.95
    cleaner = fitted.named_steps["clean"]
    assert cleaner.encodings_ == ["onehot", "onehot"]
    assert list(cleaner.get_feature_names_out()) == [
        "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year",
        "island_Biscoe", "island_Dream", "island_Torgersen", "sex_male"]
    assert cleaner.scaling_ == "standard"


def test_unknown_and_missing_categories_at_predict_time(fitted, odd_rows):
    cleaner = fitted.named_steps["clean"]
    out = cleaner.transform(odd_rows)
    islands = slice(5, 8)
    np.testing.assert_array_equal(out[0, islands], [0, 0, 0])  # unknown: no island
    # missing: the most frequent category, imputed
    fill = cleaner.category_fill_[0]
    expected = cleaner.transform(odd_rows.iloc[[1]].assign(island=fill))
    np.testing.assert_array_equal(out[1], expected[0])
    assert np.isfinite(out).all()
    assert len(fitted.predict(odd_rows)) == len(odd_rows)


def test_quantized_and_saved_pipelines_encode_as_the_fitted_one(fitted, odd_rows, tmp_path):
    expected = fitted.predict_proba(odd_rows)
    for dtype in ("float32", "int8"):
        served = quantize(fitted, dtype=dtype)
        tolerance = 1e-4 if dtype == "float32" else 0.1
        np.testing.assert_allclose(served.predict_proba(odd_rows), expected, atol=tolerance)
        # the steps one by one give what the fused plan gives
        path = served.save(tmp_path / f"{dtype}.skq")
        loaded = load_quantized(path)
        np.testing.assert_array_equal(loaded.predict(odd_rows), served.predict(odd_rows))
    served = quantize(fitted, dtype="float32")
    clean = served._run_steps(odd_rows)[0]
    # (float32 holds the year's centre, about 2008, to 1e-4)
    np.testing.assert_allclose(clean, fitted.named_steps["clean"].transform(odd_rows),
                               rtol=1e-4, atol=2e-4)
    # columns by name, in any order; an object array by position
    shuffled = odd_rows[list(reversed(odd_rows.columns))]
    np.testing.assert_array_equal(served.predict(shuffled), served.predict(odd_rows))
    as_objects = odd_rows.to_numpy(dtype=object)
    np.testing.assert_array_equal(served.predict(as_objects), served.predict(odd_rows))


@pytest.mark.parametrize("family", ["tree", "graph", "union"])
def test_every_family_takes_the_encoded_table(penguins, odd_rows, family):
    X_train, _, y_train, _ = penguins
    pipe = make_quant_pipeline(family, 8, random_state=0, **FAST).fit(X_train, y_train)
    served = quantize(pipe, dtype="float32")
    np.testing.assert_allclose(served.predict_proba(odd_rows), pipe.predict_proba(odd_rows),
                               atol=1e-4)


def test_polars_frames_go_through_fit_predict_and_the_artifact(penguins, odd_rows, tmp_path):
    pl = pytest.importorskip("polars")
    X_train, _, y_train, _ = penguins
    pipe = make_quant_pipeline("column", 4, random_state=0, **FAST).fit(
        pl.from_pandas(X_train), y_train)
    reference = make_quant_pipeline("column", 4, random_state=0, **FAST).fit(X_train, y_train)
    rows = pl.from_pandas(odd_rows)
    np.testing.assert_allclose(pipe.predict_proba(rows), reference.predict_proba(odd_rows))
    served = quantize(pipe, dtype="float32")
    np.testing.assert_allclose(served.predict_proba(rows), pipe.predict_proba(rows), atol=1e-4)
    loaded = load_quantized(served.save(tmp_path / "polars.skq"))
    np.testing.assert_array_equal(loaded.predict(rows), served.predict(odd_rows))


@pytest.mark.parametrize("dense", ["pandas", "polars"])
def test_set_output_names_every_encoded_column(penguins, dense):
    if dense == "polars":
        pytest.importorskip("polars")
    X_train, _, y_train, _ = penguins
    cleaner = Cleaner(random_state=0).set_output(transform=dense).fit(X_train, y_train)
    out = cleaner.transform(X_train)
    assert list(out.columns) == list(cleaner.get_feature_names_out())
    assert out.shape == (len(X_train), 9)


def test_onnx_takes_the_text_columns(fitted, odd_rows, tmp_path):
    pytest.importorskip("onnxruntime")
    from skquant import export_onnx, run_onnx

    path = export_onnx(fitted, tmp_path / "model.onnx")
    np.testing.assert_allclose(run_onnx(path, odd_rows), fitted.predict_proba(odd_rows),
                               atol=1e-4)
    with pytest.raises(TypeError, match="give it a table"):
        run_onnx(path, [[1.0] * 7])
    beyond = odd_rows.copy()
    beyond.iloc[5, beyond.columns.get_loc("bill_length_mm")] = 1e300
    with pytest.raises(ValueError, match="beyond float32's range"):
        run_onnx(path, beyond)
    with pytest.raises(ValueError, match="expecting 7 features"):
        run_onnx(path, odd_rows.iloc[:, :3])


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_tflite_takes_the_text_columns(fitted, odd_rows, tmp_path, dtype):
    from skquant import export_tflite
    from skquant._tflite import _text_positions, run_tflite

    # (the calibration check runs the model on the table too)
    path = export_tflite(fitted, tmp_path / "model.tflite", dtype=dtype, X_calibration=odd_rows)
    proba = run_tflite(path, odd_rows)
    np.testing.assert_allclose(proba, fitted.predict_proba(odd_rows), atol=1e-4)
    # a 2-D object array reads the same
    np.testing.assert_allclose(run_tflite(path, odd_rows.to_numpy(dtype=object)), proba)
    with pytest.raises(TypeError, match="give it a table"):
        run_tflite(path, [[1.0] * 7])
    with pytest.raises(ValueError, match="expecting 7 features"):
        run_tflite(path, odd_rows.iloc[:, :3])
    assert _text_positions("X_text_at_0_5") == [0, 5]
    assert _text_positions("X_text_at_0_x") is None and _text_positions("X") is None


def test_skl2onnx_converter_refuses_categories(fitted):
    pytest.importorskip("skl2onnx")
    from skquant._skl2onnx import _runtime_step

    with pytest.raises(NotImplementedError, match="export_onnx"):
        _runtime_step(fitted.named_steps["clean"])


def _wide_categories(n=400, seed=0):
    rng = np.random.RandomState(seed)
    codes = rng.randint(0, 40, n)
    y = (codes % 3 == 0).astype(int)
    frame = pd.DataFrame({
        "city": [f"city{c}" for c in codes],
        "colour": rng.choice(["red", "green", "blue", "mauve"], n, p=[0.5, 0.3, 0.19, 0.01]),
        "size": rng.normal(size=n),
    })
    return frame, y


def test_high_cardinality_columns_get_target_or_ordinal_encoding():
    from skquant.cleaning._categories import target_encoder

    frame, y = _wide_categories()
    cleaner = Cleaner(random_state=0)
    training = cleaner.fit_transform(frame, y)
    assert cleaner.encodings_ == ["target", "onehot"]
    # the training rows are cross-fitted, as scikit-learn's TargetEncoder gives them
    reference = target_encoder(y, 0).fit_transform(frame[["city"]], y)
    np.testing.assert_allclose(training[:, 1], reference[:, 0])
    # new rows read the encoder's full-data encodings
    full = target_encoder(y, 0).fit(frame[["city"]], y).transform(frame[["city"]])
    np.testing.assert_allclose(cleaner.transform(frame)[:, 1], full[:, 0])
    # without labels: ordinal codes
    unlabelled = Cleaner().fit(frame)
    assert unlabelled.encodings_ == ["ordinal", "onehot"]
    assert unlabelled.transform(pd.DataFrame({"city": ["nowhere"], "colour": ["red"],
                                              "size": [0.0]}))[0, 1] == -1
    with pytest.raises(ValueError, match="encoding='target' needs the labels y"):
        Cleaner(encoding="target").fit(frame)


def test_rare_categories_are_grouped_and_unknown_ones_join_them():
    frame, y = _wide_categories()
    cleaner = Cleaner(min_frequency=10, max_onehot=100).fit(frame, y)
    names = list(cleaner.get_feature_names_out())
    assert "colour_infrequent_sklearn" in names and "colour_mauve" not in names
    new = pd.DataFrame({"city": ["city1"], "colour": ["ultraviolet"], "size": [0.0]})
    out = pd.DataFrame(cleaner.transform(new), columns=names)
    assert out["colour_infrequent_sklearn"].item() == 1.0


def test_datetime_columns_and_streams_of_categories_are_refused_with_advice():
    frame = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=5),
                          "x": np.arange(5.0)})
    with pytest.raises(ValueError, match="column 'when' holds dates or times.*epoch"):
        Cleaner().fit(frame)
    text = pd.DataFrame({"kind": list("abcab"), "x": np.arange(5.0)})
    with pytest.raises(ValueError, match="partial_fit takes numeric columns only.*'kind'"):
        Cleaner().partial_fit(text)


def test_a_numeric_column_that_turns_to_text_is_a_clear_error(fitted, odd_rows):
    bad = odd_rows.copy()
    bad["year"] = bad["year"].astype(object)
    bad.iloc[0, bad.columns.get_loc("year")] = "last year"
    with pytest.raises(ValueError, match="column 'year' .*not a number"):
        fitted.predict(bad)
    with pytest.raises(ValueError, match="'year' must hold numbers"):
        quantize(fitted, "float32").predict(bad)
    with pytest.raises(TypeError, match="give it a table"):
        quantize(fitted, "float32").predict(np.zeros((2, 7), dtype=np.float32).tolist())


def test_the_artifact_checks_its_categories(fitted, tmp_path):
    served = quantize(fitted, dtype="float32")
    manifest, arrays = served.manifest, dict(served.arrays)
    prefix = manifest["steps"][0]["prefix"]
    broken = dict(arrays)
    broken[f"{prefix}category0.text"] = arrays[f"{prefix}category0.text"][::-1].copy()
    with pytest.raises(ArtifactError, match="sorted, each once"):
        QuantizedPipeline(manifest, broken)
    broken = dict(arrays)
    broken[f"{prefix}categorical"] = arrays[f"{prefix}keep"][:2].copy()
    with pytest.raises(ArtifactError, match="numeric or categorical"):
        QuantizedPipeline(manifest, broken)
    broken = dict(arrays)
    broken[f"{prefix}category0.missing"] = np.array([99], dtype=np.int8)
    with pytest.raises(ArtifactError, match="outside"):
        QuantizedPipeline(manifest, broken)


def test_read_table_keeps_text_columns_where_allowed(tmp_path, penguins):
    from skquant._io import DataError, read_table

    X_train, _, y_train, _ = penguins
    path = tmp_path / "penguins.csv"
    X_train.assign(species=y_train).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"\['island', 'sex'\] are not numeric"):
        read_table(str(path), "species")
    notes = []
    X, y, names = read_table(str(path), "species", allow_text=True, notes=notes)
    assert isinstance(X, pd.DataFrame) and list(X.columns) == names == list(X_train.columns)
    assert any("read as categories" in note for note in notes)
    assert list(y) == list(y_train)
    assert X["sex"].isna().sum() == X_train["sex"].isna().sum()


def test_numeric_polars_frames_and_polars_output_on_every_transformer():
    pl = pytest.importorskip("polars")
    from sklearn.datasets import load_digits

    from skquant import ColumnProjection, GraphProjection, TreeProjection, UnionProjection

    X, _ = load_digits(return_X_y=True)
    frame = pl.DataFrame(X[:300], schema=[f"p{j}" for j in range(64)])
    cleaner = Cleaner().set_output(transform="polars").fit(frame)
    cleaned = cleaner.transform(frame)
    assert isinstance(cleaned, pl.DataFrame)
    assert cleaned.columns == list(cleaner.get_feature_names_out())
    np.testing.assert_array_equal(cleaned.to_numpy(), Cleaner().fit(X[:300]).transform(X[:300]))
    for projection in (ColumnProjection(4), TreeProjection(4, random_state=0),
                       GraphProjection(4, random_state=0), UnionProjection(4, random_state=0)):
        out = projection.set_output(transform="polars").fit(cleaned).transform(cleaned)
        assert isinstance(out, pl.DataFrame) and out.shape == (300, 4)
        assert out.columns == list(projection.get_feature_names_out())


@pytest.mark.parametrize("method", ["qr", "random"])
def test_the_column_family_s_other_methods_take_the_encoded_table(penguins, odd_rows, method):
    # a selection (qr) after the encoded columns, and a random projection
    X_train, _, y_train, _ = penguins
    pipe = make_quant_pipeline("column", 6, method=method, random_state=0, **FAST).fit(
        X_train, y_train)
    served = quantize(pipe, dtype="float32")
    np.testing.assert_allclose(served.predict_proba(odd_rows), pipe.predict_proba(odd_rows),
                               atol=1e-4)


@pytest.mark.parametrize("target", ["numpy", "onnx", "tflite"])
def test_an_empty_string_is_a_category_and_not_a_missing_value(penguins, target, tmp_path):
    # "" seen in training is a category of its own; a missing value is
    # imputed; "" at predict time where it was never seen is unknown
    X_train, X_test, y_train, _ = penguins
    X_train = X_train.copy()
    X_train.loc[X_train.index[::4], "island"] = ""
    pipe = make_quant_pipeline("column", 4, random_state=0, clean__encoding="ordinal",
                               **FAST).fit(X_train, y_train)
    unseen = make_quant_pipeline("column", 4, random_state=0, clean__encoding="ordinal",
                                 **FAST).fit(penguins[0], y_train)
    rows = pd.concat([X_test.head(3)] * 2)  # the same rows: with "", then missing
    rows.iloc[:3, rows.columns.get_loc("island")] = ""
    rows.iloc[3:, rows.columns.get_loc("island")] = None
    for model in (pipe, unseen):
        if target == "numpy":
            proba = quantize(model, dtype="float32").predict_proba(rows)
        elif target == "onnx":
            pytest.importorskip("onnxruntime")
            from skquant import export_onnx, run_onnx

            proba = run_onnx(export_onnx(model, tmp_path / "m.onnx"), rows)
        else:
            from skquant import export_tflite
            from skquant._tflite import run_tflite

            proba = run_tflite(export_tflite(model, tmp_path / "m.tflite", dtype="float32"), rows)
        np.testing.assert_allclose(proba, model.predict_proba(rows), atol=1e-4)
    # ("" and a missing value do give the fitted pipelines different rows)
    for model in (pipe, unseen):
        encoded = model[:-1].transform(rows)
        assert not np.allclose(encoded[:3], encoded[3:])


def test_a_cleaner_whose_text_columns_are_all_dropped_reads_its_table():
    X = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2, "t": ["same"] * 10})
    cleaner = Cleaner().fit(X)
    assert cleaner.categorical_.tolist() == [False, False, True]
    assert cleaner.transform(X).shape == (10, 2)


@pytest.mark.parametrize("target", ["numpy", "onnx", "tflite"])
@pytest.mark.parametrize("keep_text", [True, False])
def test_a_dropped_text_column_is_not_read_when_serving(penguins, target, keep_text, tmp_path):
    # a constant text column, which the Cleaner drops: every target ignores
    # it at predict time (with categorical columns kept, or none)
    X_train, X_test, y_train, _ = penguins
    X_train = X_train.assign(source="field")
    if not keep_text:
        X_train = X_train.drop(columns=["island", "sex"])
    rows = X_test.assign(source="lab").reindex(columns=X_train.columns)
    pipe = make_quant_pipeline("column", 4, random_state=0, **FAST).fit(X_train, y_train)
    assert not pipe.named_steps["clean"].support_[-1]
    if target == "numpy":
        run = quantize(pipe, dtype="float32").predict_proba
    elif target == "onnx":
        pytest.importorskip("onnxruntime")
        from skquant import export_onnx, run_onnx

        path = export_onnx(pipe, tmp_path / "m.onnx")
        run = lambda X: run_onnx(path, X)  # noqa: E731
    else:
        from skquant import export_tflite
        from skquant._tflite import run_tflite

        path = export_tflite(pipe, tmp_path / "m.tflite", dtype="float32")
        run = lambda X: run_tflite(path, X)  # noqa: E731
    expected = pipe.predict_proba(rows)
    np.testing.assert_allclose(run(rows), expected, atol=1e-4)
    np.testing.assert_allclose(run(rows.to_numpy(dtype=object)), expected, atol=1e-4)
    if target == "numpy":  # the columns taken by name, in another order
        np.testing.assert_allclose(run(rows[rows.columns[::-1]]), expected, atol=1e-4)


def test_a_failed_tflite_calibration_leaves_the_existing_file(fitted, odd_rows, tmp_path):
    from skquant import export_tflite

    target = tmp_path / "model.tflite"
    target.write_bytes(b"the previous model")
    with pytest.raises(ValueError, match="expecting 7 features"):
        export_tflite(fitted, target, dtype="float32", X_calibration=odd_rows.iloc[:, :3])
    assert target.read_bytes() == b"the previous model"
