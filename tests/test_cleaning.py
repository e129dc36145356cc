"""Cleaner and OutlierFilter."""

import numpy as np
import pytest
from sklearn.base import is_classifier
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline

from skquant import Cleaner, OutlierFilter


def test_cleaner_imputes_nan_and_inf_with_fit_statistics():
    X = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0], [np.inf, 40.0], [5.0, -np.inf]])
    cleaner = Cleaner(clip_quantile=None).fit(X)
    np.testing.assert_allclose(cleaner.statistics_, [2.5, 30.0])
    out = cleaner.transform(np.array([[np.nan, np.inf]]))
    np.testing.assert_allclose(out, [[2.5, 30.0]])


@pytest.mark.parametrize(
    "strategy, expected", [("mean", 2.0), ("median", 1.5), ("most_frequent", 1.0), ("constant", -7.0)]
)
def test_cleaner_strategies(strategy, expected):
    X = np.array([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0], [4.0, 1.0], [np.nan, 0.0]])
    cleaner = Cleaner(strategy=strategy, fill_value=-7.0, clip_quantile=None).fit(X)
    assert cleaner.statistics_[0] == pytest.approx(expected)


def test_cleaner_drops_useless_columns_and_names_the_rest():
    rng = np.random.RandomState(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    X = np.column_stack([a, np.full(50, 3.0), a, np.full(50, np.nan), b])
    cleaner = Cleaner(clip_quantile=None).fit(X)
    assert cleaner.drop_reasons_ == {
        "x1": "constant", "x2": "duplicate of x0", "x3": "all missing"
    }
    assert list(cleaner.get_feature_names_out()) == ["x0", "x4"]
    np.testing.assert_array_equal(cleaner.transform(X), X[:, [0, 4]])


def test_cleaner_near_constant_column_is_dropped_after_clipping():
    X = np.zeros((2000, 2))
    X[:, 0] = np.arange(2000)
    X[0, 1] = 99.0  # a single outlier in an otherwise constant column
    cleaner = Cleaner(clip_quantile=0.001).fit(X)
    assert cleaner.drop_reasons_ == {"x1": "near-constant"}


def test_cleaner_constant_column_with_inexact_float_values():
    X = np.column_stack([np.arange(10.0), np.full(10, 0.1)])  # var() gives 1.9e-34
    assert Cleaner().fit(X).drop_reasons_ == {"x1": "constant"}


def test_cleaner_variance_threshold():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.normal(size=100), 0.01 * rng.normal(size=100)])
    cleaner = Cleaner(clip_quantile=None, variance_threshold=0.001).fit(X)
    assert cleaner.drop_reasons_ == {"x1": "near-constant"}


def test_cleaner_clips_to_training_quantiles():
    X = np.arange(1000, dtype=float).reshape(-1, 1)
    cleaner = Cleaner(clip_quantile=0.01).fit(X)
    out = cleaner.transform(np.array([[-1e9], [1e9], [500.0]]))
    np.testing.assert_allclose(out.ravel(), [np.quantile(X, 0.01), np.quantile(X, 0.99), 500.0])


def test_cleaner_keeps_every_row_and_float32():
    X = np.random.RandomState(0).normal(size=(30, 4)).astype(np.float32)
    out = Cleaner().fit_transform(X)
    assert out.shape == (30, 4) and out.dtype == np.float32


def test_cleaner_pandas_names_and_set_output():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"height": [1.0, 2.0, 3.0], "constant": [1.0, 1.0, 1.0], "age": [5.0, None, 7.0]})
    out = Cleaner(clip_quantile=None).set_output(transform="pandas").fit_transform(frame)
    assert list(out.columns) == ["height", "age"]
    assert out["age"].tolist() == [5.0, 6.0, 7.0]


def test_cleaner_parameters_are_tunable_by_grid_search():
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    X[::7, 2] = np.nan
    search = GridSearchCV(
        make_pipeline(Cleaner(), LogisticRegression()),
        {"cleaner__strategy": ["mean", "median"], "cleaner__clip_quantile": [None, 0.01]},
        cv=3,
    ).fit(X, y)
    assert set(search.best_params_) == {"cleaner__strategy", "cleaner__clip_quantile"}


def test_outlier_filter_drops_rows_at_fit_only():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(190, 2)), rng.normal(30, 1, size=(10, 2))])
    y = (X[:, 0] > 0).astype(int)
    model = OutlierFilter(LogisticRegression(), random_state=0).fit(X, y)
    assert model.n_outliers_ >= 10
    assert model.detector_.predict(X[-10:]).tolist() == [-1] * 10
    assert model.predict(X).shape == (200,)
    assert is_classifier(model)
    np.testing.assert_array_equal(model.classes_, [0, 1])


def test_outlier_filter_accepts_any_detector_and_filters_sample_weight():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(100, 3))
    y = rng.randint(0, 2, 100)
    weights = np.ones(100)
    model = OutlierFilter(
        LogisticRegression(), detector=LocalOutlierFactor(n_neighbors=10, contamination=0.1)
    ).fit(X, y, sample_weight=weights)
    assert model.n_outliers_ == 10


def test_outlier_filter_keeps_a_class_the_detector_removed():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(95, 2)), rng.normal(40, 1, size=(5, 2))])
    y = np.array([0] * 48 + [1] * 47 + [2] * 5)  # class 2 is the far cluster
    with pytest.warns(UserWarning, match="every training row of class"):
        model = OutlierFilter(LogisticRegression(), random_state=0).fit(X, y)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])


def test_outlier_filter_last_in_a_pipeline_under_grid_search():
    X, y = make_classification(n_samples=150, n_features=5, random_state=0)
    pipe = make_pipeline(Cleaner(), OutlierFilter(LogisticRegression(), random_state=0))
    search = GridSearchCV(pipe, {"outlierfilter__estimator__C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert search.best_estimator_.predict(X).shape == (150,)
