"""Every bad input gets a clear error that names the problem and the fix."""

import importlib

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skquant import (
    Cleaner,
    ColumnProjection,
    GraphProjection,
    KerasMLPClassifier,
    OutlierFilter,
    TreeProjection,
    make_quant_pipeline,
)
from skquant.pipeline import _FAMILIES

RNG = np.random.RandomState(0)
X = RNG.normal(size=(30, 5))
Y = np.arange(30) % 3


# every registered family:method, from the registry
PROJECTIONS = [(getattr(importlib.import_module(module), name), method)
               for module, name, methods in _FAMILIES.values() for method in methods]
PROJECTION_IDS = [f"{cls.__name__}-{method}" for cls, method in PROJECTIONS]
PROJECTION_CLASSES = list(dict.fromkeys(cls for cls, _ in PROJECTIONS))
FAMILY_OF = {name: family for family, (_, name, _) in _FAMILIES.items()}

# whether each method defines inverse_transform
INVERTIBLE = {
    "column:pca": True, "column:qr": True, "column:random": True,
    "tree:tsvq": True, "tree:tsvq-local": True, "tree:random-trees": False,
    "graph:spectral": False, "graph:lpp": False,
    "union:pca+spectral": False,
}


def test_every_registered_method_says_whether_it_inverts():
    kinds = {f"{family}:{method}" for family, (_, _, methods) in _FAMILIES.items()
             for method in methods}
    assert set(INVERTIBLE) == kinds, "add each new method to INVERTIBLE"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("cls, method", PROJECTIONS, ids=PROJECTION_IDS)
def test_non_finite_values_reaching_a_projection(bad, cls, method):
    X_bad = X.copy()
    X_bad[3, 2] = bad
    projection = cls(2, method=method)
    with pytest.raises(ValueError, match="Put a skquant.Cleaner"):
        projection.fit(X_bad)
    with pytest.raises(ValueError, match="Put a skquant.Cleaner"):
        cls(2, method=method).partial_fit(X_bad)
    projection.fit(X)
    with pytest.raises(ValueError, match="NaN .* or infinity"):
        projection.transform(X_bad)
    with pytest.raises(ValueError, match="NaN .* or infinity"):
        projection.partial_fit(X_bad)


def test_non_finite_values_reaching_the_classifier():
    X_bad = X.copy()
    X_bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Cleaner"):
        KerasMLPClassifier(epochs=1).fit(X_bad, Y)


def test_pipeline_handles_non_finite_values_itself():
    X_bad = X.copy()
    X_bad[0, 0] = np.nan
    pipe = make_quant_pipeline("column", 2, random_state=0, classify__epochs=1)
    assert pipe.fit(X_bad, Y).predict(X_bad).shape == (30,)


@pytest.mark.parametrize(
    "estimator",
    [Cleaner(), *(cls(2, method=method) for cls, method in PROJECTIONS),
     OutlierFilter(LogisticRegression())],
    ids=["Cleaner", *PROJECTION_IDS, "OutlierFilter"],
)
def test_wrong_number_of_columns_after_fit(estimator):
    estimator.fit(X, Y)
    method = getattr(estimator, "transform", None) or estimator.predict
    with pytest.raises(ValueError, match="X has 4 features, but .* is expecting 5"):
        method(X[:, :4])


def test_wrong_number_of_columns_for_the_classifier():
    clf = KerasMLPClassifier(epochs=1).fit(X, Y)
    with pytest.raises(ValueError, match="X has 4 features, but KerasMLPClassifier is expecting 5"):
        clf.predict(X[:, :4])


@pytest.mark.parametrize("method", _FAMILIES["column"][2])
def test_n_components_larger_than_the_columns(method):
    with pytest.raises(ValueError, match=r"n_components=6 is larger than 5.*Choose n_components <= 5"):
        ColumnProjection(6, method=method).fit(X)
    with pytest.raises(ValueError, match="n_components=6 is larger than 5"):
        ColumnProjection(6, method=method).partial_fit(X)


@pytest.mark.parametrize("method", _FAMILIES["tree"][2])
def test_n_components_larger_than_the_rows_seen(method):
    with pytest.raises(ValueError, match=r"n_components=31 is larger than 30.*rows"):
        TreeProjection(31, method=method).fit(X)
    projection = TreeProjection(31, method=method).partial_fit(np.vstack([X, X]))
    assert projection.n_samples_seen_ == 60
    with pytest.raises(ValueError, match=r"n_components=31 is larger than 10"):
        TreeProjection(31, method=method).partial_fit(X[:10])


def test_random_trees_with_too_few_leaves():
    rows = np.random.RandomState(0).normal(size=(300, 4))
    with pytest.raises(ValueError, match=r"larger than 14.*2 trees of depth 3.*raise n_estimators"):
        TreeProjection(20, method="random-trees", n_estimators=2, max_depth=3).fit(rows)


def test_partial_fit_with_other_columns_than_before():
    projection = TreeProjection(3).partial_fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but TreeProjection is expecting 5"):
        projection.partial_fit(X[:, :4])


@pytest.mark.parametrize("method", _FAMILIES["graph"][2])
def test_graph_n_neighbors_not_below_the_rows(method):
    with pytest.raises(ValueError, match=r"n_neighbors=30 must be below the number of "
                                         r"landmark rows, 30. Choose n_neighbors <= 29"):
        GraphProjection(2, method=method, n_neighbors=30).fit(X)
    projection = GraphProjection(2, method=method, n_neighbors=12, n_landmarks=10)
    with pytest.raises(ValueError, match="n_neighbors=12 must be below .* 10"):
        projection.fit(X)
    # partial_fit learns the number of rows only as they come: it says so on first use
    projection = GraphProjection(2, method=method, n_neighbors=12).partial_fit(X[:8])
    with pytest.raises(ValueError, match="n_neighbors=12 must be below .* 8"):
        projection.transform(X)


def test_graph_n_components_not_below_the_landmarks():
    with pytest.raises(ValueError, match=r"n_components=10 is larger than 9.*10 landmark rows"):
        GraphProjection(10, n_neighbors=3, n_landmarks=10).fit(X)
    with pytest.raises(ValueError, match=r"n_components=6 is larger than 5.*5 columns"):
        GraphProjection(6, method="lpp", n_neighbors=3).fit(X)


@pytest.mark.parametrize("cls", PROJECTION_CLASSES)
@pytest.mark.parametrize("value", [0, -3, 2.5, "ten"])
def test_invalid_n_components(cls, value):
    with pytest.raises(ValueError, match="n_components"):
        cls(value).fit(X)


@pytest.mark.parametrize(
    "params",
    [{"method": "kmeans"}, {"max_samples": 1}, {"refine_iter": -1}, {"n_estimators": 0},
     {"max_depth": 0}],
    ids=str,
)
def test_invalid_tree_parameters(params):
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"'{name}' parameter of TreeProjection must be"):
        TreeProjection(2, **params).fit(X)


@pytest.mark.parametrize(
    "params", [{"method": "umap"}, {"n_neighbors": 0}, {"n_landmarks": 2}], ids=str
)
def test_invalid_graph_parameters(params):
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"'{name}' parameter of GraphProjection must be"):
        GraphProjection(2, **params).fit(X)


@pytest.mark.parametrize(
    "estimator",
    [Cleaner(), *(cls(2, method=method) for cls, method in PROJECTIONS),
     KerasMLPClassifier(epochs=1)],
    ids=["Cleaner", *PROJECTION_IDS, "KerasMLPClassifier"],
)
def test_empty_input(estimator):
    with pytest.raises(ValueError, match="0 sample"):
        estimator.fit(np.empty((0, 5)), np.empty(0))


@pytest.mark.parametrize(
    "estimator",
    [Cleaner(), *(cls(2, method=method) for cls, method in PROJECTIONS),
     KerasMLPClassifier(epochs=1)],
    ids=["Cleaner", *PROJECTION_IDS, "KerasMLPClassifier"],
)
def test_single_row(estimator):
    with pytest.raises(ValueError, match="1 sample"):
        estimator.fit(X[:1], Y[:1])


def test_single_row_is_fine_after_fit():
    projection = ColumnProjection(2).fit(X)
    assert projection.transform(X[:1]).shape == (1, 2)


@pytest.mark.parametrize(
    "estimator", [cls(2, method=method) for cls, method in PROJECTIONS], ids=PROJECTION_IDS,
)
def test_text_columns_in_an_array(estimator):
    # (the Cleaner encodes text columns: see tests/test_tables.py)
    X_text = X.astype(object)
    X_text[0, 1] = "blue"
    with pytest.raises(ValueError, match="needs numeric input.*OneHotEncoder"):
        estimator.fit(X_text)


def test_a_numeric_column_with_stray_text_is_refused_by_the_cleaner():
    X_text = X.astype(object)
    X_text[0, 1] = "blue"
    with pytest.raises(ValueError, match=r"column 'x1' holds numbers and some text \('blue'\)"):
        Cleaner().fit(X_text)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=list("abcde")).astype({"b": str})
    frame.loc[3, "b"] = "n/a?"
    with pytest.raises(ValueError, match=r"column 'b' holds numbers and some text.*category"):
        Cleaner().fit(frame)
    # as a pandas categorical, it is encoded as categories
    Cleaner().fit(frame.astype({"b": "category"}))


def test_text_columns_in_a_dataframe_are_named():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=list("abcde"))
    frame["colour"] = ["red", "blue", "green"] * 10
    with pytest.raises(ValueError, match=r"column\(s\) \['colour'\] are not numeric"):
        ColumnProjection(2).fit(frame)


def test_single_class():
    with pytest.raises(ValueError, match=r"at least two classes in y; it holds only \[7\]"):
        KerasMLPClassifier(epochs=1).fit(X, np.full(30, 7))


def test_continuous_targets():
    with pytest.raises(ValueError, match="Unknown label type"):
        KerasMLPClassifier(epochs=1).fit(X, RNG.normal(size=30))


def test_cleaner_that_would_drop_every_column():
    with pytest.raises(ValueError, match="dropped every column"):
        Cleaner().fit(np.ones((10, 3)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": 0}, "hidden_layer_sizes"),
        ({"dropout": 1.0}, "dropout"),
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_invalid_classifier_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        KerasMLPClassifier(**params).fit(X, Y)


def test_inverse_transform_with_wrong_width():
    projection = ColumnProjection(2).fit(X)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
        projection.inverse_transform(np.ones((3, 4)))


def test_outlier_filter_without_y():
    with pytest.raises(ValueError, match="requires y"):
        OutlierFilter(LogisticRegression()).fit(X, None)


@pytest.mark.parametrize("solver_limit", [4096, 3])  # covariance path, row-based path
def test_non_finite_value_deep_in_a_large_fit(solver_limit):
    from sklearn.exceptions import NotFittedError

    rows = np.random.RandomState(1).normal(size=(20_000, 5))
    rows[17_000, 3] = np.nan  # past the first blocks the fit folds in
    projection = ColumnProjection(2, max_covariance_features=solver_limit, random_state=0)
    with pytest.raises(ValueError, match="Put a skquant.Cleaner"):
        projection.fit(rows)
    with pytest.raises(NotFittedError):
        projection.transform(rows[:3])


def test_outlier_filter_with_continuous_targets_for_a_classifier():
    with pytest.raises(ValueError, match="Unknown label type"):
        OutlierFilter(LogisticRegression()).fit(X, RNG.normal(size=30))


@pytest.mark.parametrize("method", _FAMILIES["column"][2])
def test_a_failed_refit_leaves_the_projection_unfitted(method):
    from sklearn.exceptions import NotFittedError

    projection = ColumnProjection(2, method=method, random_state=0).fit(X)
    with pytest.raises(ValueError, match="n_components=2 is larger than 1"):
        projection.fit(X[:, :1])
    with pytest.raises(NotFittedError):
        projection.transform(X[:3, :1])


def test_a_failed_refit_leaves_the_cleaner_unfitted():
    from sklearn.exceptions import NotFittedError

    cleaner = Cleaner().fit(X)
    with pytest.raises(ValueError, match="dropped every column"):
        cleaner.fit(np.ones((10, 1)))
    with pytest.raises(NotFittedError):
        cleaner.transform(np.ones((3, 1)))


def test_a_failed_first_partial_fit_can_be_retried_with_new_parameters():
    projection = ColumnProjection(2, max_covariance_features=3)
    with pytest.raises(ValueError, match="raise max_covariance_features"):
        projection.partial_fit(X)
    projection.set_params(max_covariance_features=10).partial_fit(X)
    assert projection.transform(X).shape == (30, 2)


def test_partial_fit_with_an_explicit_randomized_solver():
    with pytest.raises(ValueError, match="cannot use solver='randomized'.*solver='covariance'"):
        ColumnProjection(2, solver="randomized").partial_fit(X)


def test_randomized_solver_needs_as_many_rows_as_components():
    with pytest.raises(ValueError, match="n_components=6 is larger than 4.*randomized solver gets 4 rows"):
        ColumnProjection(6, solver="randomized").fit(RNG.normal(size=(4, 10)))


def test_values_whose_squares_overflow_float32_are_fitted_in_float64():
    # float32 values of 1e20 have squares beyond float32: the covariance is
    # formed in float64 for those blocks, and PCA is the same as on the
    # unscaled data
    big = (X * 1e20).astype(np.float32)
    reference = ColumnProjection(2).fit(X)
    projection = ColumnProjection(2).fit(big)
    np.testing.assert_allclose(np.abs(projection.components_), np.abs(reference.components_),
                               rtol=1e-4, atol=1e-5)
    assert np.isfinite(projection.transform(big)).all()


def test_a_variance_beyond_float64_is_refused_by_name():
    with pytest.raises(ValueError, match="explained_variance_ overflows.*StandardScaler"):
        ColumnProjection(2).fit(X * 1e200)
    # the selection needs no variance: it works at any magnitude
    selected = ColumnProjection(2, method="qr").fit(X).selected_columns_
    np.testing.assert_array_equal(
        ColumnProjection(2, method="qr").fit(X * 1e200).selected_columns_, selected)


def test_a_result_beyond_float32_is_refused_not_infinite():
    projection = ColumnProjection(2, method="random", density=1.0, random_state=0).fit(X)
    huge = np.full((2, 5), 3e38, dtype=np.float32)
    with pytest.raises(ValueError, match="transform overflowed float32.*pass float64"):
        projection.transform(huge)
    assert np.isfinite(projection.transform(huge.astype(np.float64))).all()


@pytest.mark.parametrize("cls, method", PROJECTIONS, ids=PROJECTION_IDS)
def test_inverse_transform_exists_only_where_it_is_defined(cls, method):
    projection = cls(2, method=method).fit(X)
    if not INVERTIBLE[f"{FAMILY_OF[cls.__name__]}:{method}"]:
        assert not hasattr(projection, "inverse_transform")
        assert not hasattr(cls(2, method=method), "inverse_transform")
        with pytest.raises(AttributeError, match="inverse_transform"):
            projection.inverse_transform(np.zeros((1, 2)))
    else:
        assert hasattr(projection, "inverse_transform")
        assert projection.inverse_transform(projection.transform(X)).shape == X.shape


SPARSE_ESTIMATORS = [Cleaner()] + [cls(2, method=method) for cls, method in PROJECTIONS]


@pytest.mark.parametrize("estimator", SPARSE_ESTIMATORS, ids=["Cleaner"] + PROJECTION_IDS)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_is_named_with_what_to_do(estimator, fmt):
    import scipy.sparse

    sparse = scipy.sparse.random(30, 5, density=0.5, format=fmt, random_state=0)
    name = type(estimator).__name__
    pattern = rf"{name} needs dense data, but X is a sparse {fmt.upper()} matrix.*toarray\(\)"
    with pytest.raises(TypeError, match=pattern):
        estimator.fit(sparse)
    with pytest.raises(TypeError, match=pattern):
        estimator.partial_fit(sparse)
    estimator.fit(sparse.toarray())
    with pytest.raises(TypeError, match=pattern):
        estimator.transform(sparse)


def test_sparse_input_to_the_outlier_filter():
    import scipy.sparse
    from sklearn.pipeline import make_pipeline

    sparse = scipy.sparse.csr_matrix(np.where(np.abs(X) > 1, X, 0.0))
    # supported when the wrapped estimator takes sparse input
    model = OutlierFilter(LogisticRegression(), random_state=0).fit(sparse, Y)
    assert model.predict(sparse).shape == (30,)
    # refused, saying what to do, when it does not
    dense_only = OutlierFilter(make_pipeline(Cleaner(), LogisticRegression()), random_state=0)
    with pytest.raises(TypeError, match="Sparse data was passed.*dense data is required.*toarray"):
        dense_only.fit(sparse, Y)


def test_outlier_filter_whose_detector_flags_every_row():
    class FlagEverything(LogisticRegression):
        def fit_predict(self, X, y=None):
            return -np.ones(len(X), dtype=int)

    with pytest.raises(ValueError, match="flagged all 30 training rows"):
        OutlierFilter(LogisticRegression(), detector=FlagEverything()).fit(X, Y)


def test_early_stopping_that_leaves_no_training_rows():
    with pytest.raises(ValueError, match="leaves no rows to train on"):
        KerasMLPClassifier(epochs=1, early_stopping=True, validation_fraction=0.99).fit(X, Y)


def test_a_failed_fit_keeps_sklearn_bookkeeping_and_the_real_error():
    # n_components larger than the columns, inside a Pipeline: the error is
    # the projection's, and set_output's configuration survives the failure
    pipe = make_quant_pipeline("column", 6, classify__epochs=1).set_output(transform="pandas")
    with pytest.raises(ValueError, match="n_components=6 is larger than 5"):
        pipe.fit(X, Y)
    projection = ColumnProjection(6).set_output(transform="pandas")
    with pytest.raises(ValueError, match="n_components=6 is larger than 5"):
        projection.fit(X)
    assert projection.set_params(n_components=2).fit(X).transform(X).__class__.__name__ == "DataFrame"


@pytest.mark.parametrize("cls, method", PROJECTIONS, ids=PROJECTION_IDS)
@pytest.mark.parametrize("column", [
    np.array([3e38, 3.2e38, np.nan, 1.0] * 8, dtype=np.float32),
    np.array([1.7e308, 1.75e308, np.nan, 1.0] * 8),
], ids=["float32", "float64"])
def test_a_cleaned_column_near_the_float_range_reaches_the_projection(cls, method, column):
    # issue 11: the Cleaner learned an infinite fill, output NaN, and the
    # projection then asked for "a Cleaner first", although there was one
    from sklearn.pipeline import make_pipeline

    X = np.column_stack([column, RNG.normal(size=column.size).astype(column.dtype)])
    pipe = make_pipeline(Cleaner(clip_quantile=None), cls(1, method=method, random_state=0))
    try:
        Z = pipe.fit_transform(X)
    except ValueError as exc:  # only what float32/float64 cannot represent
        assert "Put a skquant.Cleaner" not in str(exc), exc
        assert "explained_variance_ overflows" in str(exc) or (
            "transform overflowed" in str(exc) and method == "random"), exc
        return
    assert Z.dtype == column.dtype and np.isfinite(Z).all()
