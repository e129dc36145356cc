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


def test_outlier_filter_routes_metadata_where_it_is_requested():
    import sklearn
    from sklearn.ensemble import IsolationForest
    from sklearn.exceptions import UnsetMetadataPassedError

    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(190, 2)), rng.normal(30, 1, size=(10, 2))])
    y = (X[:, 0] > 0).astype(int)
    weights = rng.uniform(0.5, 2.0, size=200)
    seen = {}

    class Recording(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            seen["fit"] = sample_weight
            return super().fit(X, y, sample_weight=sample_weight)

    with sklearn.config_context(enable_metadata_routing=True):
        # requested by the estimator, through a Pipeline: the inlier rows' weights
        estimator = Recording().set_fit_request(sample_weight=True).set_score_request(
            sample_weight=True)
        pipe = make_pipeline(Cleaner(), OutlierFilter(estimator, random_state=0))
        pipe.fit(X, y, sample_weight=weights)
        model = pipe[-1]
        inliers = model.detector_.predict(Cleaner().fit(X).transform(X)) == 1
        np.testing.assert_array_equal(seen["fit"], weights[inliers])
        assert model.n_outliers_ == int((~inliers).sum()) > 0
        # score routes them too; a detector that asks for them gets every row's
        assert pipe.score(X, y, sample_weight=weights) == pytest.approx(
            model.estimator_.score(Cleaner().fit(X).transform(X), y, sample_weight=weights))
        detector = IsolationForest(random_state=0).set_fit_request(sample_weight=True)
        OutlierFilter(Recording().set_fit_request(sample_weight=False), detector=detector,
                      random_state=0).fit(X, y, sample_weight=weights)
        assert seen["fit"] is None
        # a request that is not set: scikit-learn's own error, before any work
        with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
            OutlierFilter(Recording(), random_state=0).fit(X, y, sample_weight=weights)
        # nothing passed, nothing requested: a plain fit
        OutlierFilter(Recording(), random_state=0).fit(X, y)
    # routing off (the default): the weights go to the estimator, as before
    OutlierFilter(Recording(), random_state=0).fit(X, y, sample_weight=weights)
    assert seen["fit"] is not None and len(seen["fit"]) < 200


# ------------------------------------------------------------ partial_fit
def _messy(n_rows=3000, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_t(3, size=(n_rows, 10))
    X[rng.rand(*X.shape) < 0.1] = np.nan
    X[:, 3] = 5.0  # constant
    X[:, 4] = X[:, 0]  # duplicate
    X[:, 5] = np.nan  # all missing
    X[7, 6] = np.inf
    X[:, 7] = 0.0
    X[17, 7] = 1.0  # constant once clipped
    return X


@pytest.mark.parametrize("strategy", ["median", "mean", "most_frequent", "constant"])
def test_partial_fit_equals_fit_while_the_sample_holds_every_row(strategy):
    X = _messy()
    fitted = Cleaner(strategy=strategy, fill_value=-1.0).fit(X)
    streamed = Cleaner(strategy=strategy, fill_value=-1.0)
    for start in range(0, len(X), 256):
        streamed.partial_fit(X[start : start + 256])
    for name in ("statistics_", "lower_bounds_", "upper_bounds_", "support_"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(fitted, name))
    assert streamed.drop_reasons_ == fitted.drop_reasons_
    assert streamed.n_samples_seen_ == len(X)
    np.testing.assert_array_equal(streamed.transform(X), fitted.transform(X))


def test_partial_fit_beyond_the_sample_keeps_exact_what_it_can():
    X = _messy(20_000, seed=1)
    X[:, 8] = 0.0
    X[::5000, 8] = 1.0  # rare values, likely absent from a small sample
    streamed = Cleaner(sketch_size=500, clip_quantile=None, random_state=0)
    for start in range(0, len(X), 1000):
        streamed.partial_fit(X[start : start + 1000])
    fitted = Cleaner(clip_quantile=None).fit(X)
    assert streamed._sketch.sample.shape == (500, 10)  # memory: the sample only
    # exact: which columns are missing, constant or duplicates, and means
    assert streamed.drop_reasons_ == fitted.drop_reasons_
    assert "x8" not in streamed.drop_reasons_
    mean = Cleaner(strategy="mean", sketch_size=500, random_state=0)
    for start in range(0, len(X), 1000):
        mean.partial_fit(X[start : start + 1000])
    np.testing.assert_allclose(
        mean.statistics_, Cleaner(strategy="mean").fit(X).statistics_, rtol=1e-12
    )
    # estimated from the sample: medians and quantiles, close
    present = fitted.support_
    np.testing.assert_allclose(
        streamed.statistics_[present], fitted.statistics_[present], atol=0.15
    )
    clipped = Cleaner(sketch_size=2000, clip_quantile=0.05, random_state=0)
    for start in range(0, len(X), 1000):
        clipped.partial_fit(X[start : start + 1000])
    reference = Cleaner(clip_quantile=0.05).fit(X)
    keep = reference.support_
    np.testing.assert_allclose(
        clipped.lower_bounds_[keep], reference.lower_bounds_[keep], rtol=0.15
    )


def test_partial_fit_is_deterministic_and_pickles_without_its_sample():
    import pickle

    X = _messy(5000)

    def stream(seed):
        cleaner = Cleaner(sketch_size=300, random_state=seed)
        for start in range(0, len(X), 700):
            cleaner.partial_fit(X[start : start + 700])
        return cleaner

    np.testing.assert_array_equal(stream(0).lower_bounds_, stream(0).lower_bounds_)
    cleaner = stream(0)
    restored = pickle.loads(pickle.dumps(cleaner))
    assert not hasattr(restored, "_sketch")
    np.testing.assert_array_equal(restored.transform(X), cleaner.transform(X))
    # the sample is gone, so partial_fit cannot continue; it says so, and
    # starts afresh
    with pytest.warns(UserWarning, match="partial_fit starts a new fit"):
        restored.partial_fit(X[:10])
    assert restored.n_samples_seen_ == 10
    with pytest.warns(UserWarning, match="partial_fit starts a new fit"):
        Cleaner().fit(X).partial_fit(X)


def test_partial_fit_refuses_changed_parameters_and_columns():
    X = _messy(600)
    cleaner = Cleaner().partial_fit(X)
    cleaner.set_params(strategy="mean")
    with pytest.raises(ValueError, match="Parameters changed since the Cleaner's first partial_fit"):
        cleaner.partial_fit(X)
    cleaner = Cleaner().partial_fit(X)
    with pytest.raises(ValueError, match="X has 9 features"):
        cleaner.partial_fit(X[:, :9])


# The columns of issue 11: values near the top of the float range, where a
# median (the mean of the two middle values), a quantile (interpolated
# through a difference) or a mean (a sum) overflows.
NEAR_THE_RANGE = [
    np.array([3e38, 3.2e38, np.nan, 1.0], dtype=np.float32),
    np.array([1.7e308, 1.75e308, np.nan, 1.0]),
    np.array([1.7e308, -1.75e308, np.nan, 1.0, -1.79e308, 1.79e308]),
]


@pytest.mark.parametrize("column", NEAR_THE_RANGE, ids=["float32", "float64", "both-signs"])
@pytest.mark.parametrize("strategy", ["median", "mean", "most_frequent"])
@pytest.mark.parametrize("clip_quantile", [None, 0.001, 0.25])
def test_statistics_stay_finite_near_the_float_range(column, strategy, clip_quantile):
    X = np.column_stack([column, np.arange(column.size, dtype=column.dtype)])
    cleaner = Cleaner(strategy=strategy, clip_quantile=clip_quantile, scaling=None).fit(X)
    values = column[np.isfinite(column)].astype(np.float64)
    assert cleaner.support_[0]  # not mistaken for a constant column
    fill = cleaner.statistics_[0]
    assert np.isfinite(fill) and values.min() <= fill <= values.max()
    for bound in (cleaner.lower_bounds_[0], cleaner.upper_bounds_[0]):
        assert not np.isnan(bound)
        assert clip_quantile is None or values.min() <= bound <= values.max()
    out = cleaner.transform(X)
    assert out.dtype == X.dtype and np.isfinite(out).all()
    # the NaN, filled (and clipped, like every value)
    expected = np.clip(fill, cleaner.lower_bounds_[0], cleaner.upper_bounds_[0])
    assert out[2, 0] == np.asarray(expected, dtype=X.dtype)
    # the sketch path: exact while the sample holds every row, and beyond it
    for sketch_size in (100, 2):
        streamed = Cleaner(strategy=strategy, clip_quantile=clip_quantile,
                           sketch_size=sketch_size, random_state=0, scaling=None)
        for row in X:
            streamed.partial_fit(row[None])
        assert np.isfinite(streamed.statistics_[streamed.support_]).all()
        assert np.isfinite(streamed.transform(X)).all()


def test_statistics_near_the_float_range_are_the_exact_ones():
    column = np.array([1.7e308, 1.75e308, np.nan, 1.0, 1.72e308])
    X = np.column_stack([column, np.arange(5.0)])
    median = Cleaner(clip_quantile=None).fit(X).statistics_[0]
    assert median == 0.5 * 1.7e308 + 0.5 * 1.72e308  # numpy's median: inf
    mean = Cleaner(strategy="mean", clip_quantile=None).fit(X).statistics_[0]
    np.testing.assert_allclose(mean, (1.7e308 / 4 + 1.75e308 / 4 + 1.0 / 4 + 1.72e308 / 4))
    lower, upper = Cleaner(clip_quantile=0.25).fit(X).lower_bounds_[0], Cleaner(
        clip_quantile=0.25).fit(X).upper_bounds_[0]
    # numpy's linear interpolation, computed without the overflowing difference
    finite = np.sort(np.where(np.isnan(column), median, column))
    assert lower == finite[1] and upper == finite[3]


def test_running_means_of_a_long_stream_near_the_float_range():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.uniform(1.6e308, 1.79e308, 3000), rng.normal(size=3000)])
    X[::7, 0] = np.nan
    streamed = Cleaner(strategy="mean", sketch_size=100, random_state=0)
    for start in range(0, len(X), 250):
        streamed.partial_fit(X[start : start + 250])
    finite = X[~np.isnan(X[:, 0]), 0]
    # (np.mean itself overflows here)
    np.testing.assert_allclose(streamed.statistics_[0], np.sum(finite / finite.size), rtol=1e-12)


def test_a_tiny_column_that_varies_is_kept():
    # the variance of values near 1e-200 underflows to 0; the column is
    # not near-constant for variance_threshold=0 all the same
    tiny = np.array([1e-200, 2e-200, 3e-200, 4e-200, 5e-200])
    X = np.column_stack([tiny, np.full(5, 1e-200), np.arange(5.0)])
    cleaner = Cleaner(clip_quantile=None, scaling=None).fit(X)
    assert cleaner.drop_reasons_ == {"x1": "constant"}
    np.testing.assert_array_equal(cleaner.transform(X)[:, 0], tiny)
    assert Cleaner(clip_quantile=None, variance_threshold=1e-300).fit(X).drop_reasons_ == {
        "x0": "near-constant", "x1": "constant"}


def test_statistics_beyond_float32_transform_float32_rows_finitely():
    X = np.column_stack([[1e300, 2e300, 3e300, 4e300], [1.0, 2.0, 3.0, 4.0]])
    cleaner = Cleaner(clip_quantile=0.1, scaling=None).fit(X)
    out = cleaner.transform(np.array([[np.nan, 1.0], [5.0, np.inf]], dtype=np.float32))
    largest = np.finfo(np.float32).max
    assert out.dtype == np.float32 and np.isfinite(out).all()
    # the fill and the bounds, beyond float32, become its largest value
    np.testing.assert_array_equal(out[:, 0], [largest, largest])


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_says_it_is_sparse_and_what_to_do(fmt):
    import scipy.sparse

    sparse = scipy.sparse.random(20, 4, density=0.5, format=fmt, random_state=0)
    with pytest.raises(TypeError, match=r"Cleaner needs dense data.*sparse.*toarray\(\)"):
        Cleaner().fit(sparse)
    cleaner = Cleaner().fit(sparse.toarray())
    with pytest.raises(TypeError, match=r"Cleaner needs dense data.*sparse.*toarray\(\)"):
        cleaner.transform(sparse)


# ------------------------------------------------------------------ scaling
def _mixed_units(n=300, seed=0):
    """Columns in different units (grams, millimetres, a ratio), some missing."""
    rng = np.random.RandomState(seed)
    X = np.column_stack([rng.normal(4000, 800, n), rng.normal(45, 5, n),
                         rng.uniform(0, 0.01, n), rng.normal(200, 15, n)])
    X[::9, 1] = np.nan
    return X


def test_auto_scaling_standardizes_columns_in_different_units():
    from sklearn.preprocessing import StandardScaler

    X = _mixed_units()
    cleaner = Cleaner().fit(X)
    assert cleaner.scaling_ == "standard"
    unscaled = Cleaner(scaling=None).fit(X).transform(X)
    np.testing.assert_allclose(cleaner.transform(X), StandardScaler().fit_transform(unscaled),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cleaner.center_, unscaled.mean(axis=0))
    np.testing.assert_allclose(cleaner.scale_, unscaled.std(axis=0))


def test_auto_scaling_leaves_columns_that_share_a_scale():
    from sklearn.datasets import load_digits

    X = load_digits().data  # pixels, 0 to 16: scaled one by one, blank ones grow
    cleaner = Cleaner().fit(X)
    assert cleaner.scaling_ is None and cleaner.center_ is None and cleaner.scale_ is None
    np.testing.assert_array_equal(cleaner.transform(X), Cleaner(scaling=None).fit_transform(X))
    # asked for, it scales all the same
    assert Cleaner(scaling="standard").fit(X).scaling_ == "standard"


def test_robust_scaling_uses_median_and_interquartile_range():
    from sklearn.preprocessing import RobustScaler

    X = _mixed_units()
    X[:40, 2] = 0.005  # quartiles still apart
    cleaner = Cleaner(scaling="robust").fit(X)
    unscaled = Cleaner(scaling=None).fit(X).transform(X)
    np.testing.assert_allclose(cleaner.transform(X), RobustScaler().fit_transform(unscaled),
                               rtol=1e-10, atol=1e-10)
    # a column whose quartiles are equal is scaled by its standard deviation
    X[:250, 3] = 200.0
    cleaner = Cleaner(scaling="robust", clip_quantile=None).fit(X)
    column = Cleaner(scaling=None, clip_quantile=None).fit(X).transform(X)[:, 3]
    assert cleaner.scale_[3] == pytest.approx(column.std())


def test_scaling_is_tunable_and_checked():
    X = _mixed_units()
    with pytest.raises(ValueError, match="scaling"):
        Cleaner(scaling="minmax").fit(X)
    y = (X[:, 0] > 4000).astype(int)
    search = GridSearchCV(make_pipeline(Cleaner(), LogisticRegression()),
                          {"cleaner__scaling": [None, "standard", "robust"]}, cv=3).fit(X, y)
    assert search.best_params_["cleaner__scaling"] in (None, "standard", "robust")


def test_scaled_columns_keep_their_names_and_dropped_ones_get_neutral_statistics():
    X = np.column_stack([_mixed_units(), np.full(300, 7.0)])
    cleaner = Cleaner().fit(X)
    assert list(cleaner.get_feature_names_out()) == ["x0", "x1", "x2", "x3"]
    assert cleaner.center_[4] == 0.0 and cleaner.scale_[4] == 1.0


@pytest.mark.parametrize("scaling", ["standard", "robust"])
def test_partial_fit_scales_as_fit_while_the_sample_holds_every_row(scaling):
    X = _mixed_units()
    fitted = Cleaner(scaling=scaling).fit(X)
    streamed = Cleaner(scaling=scaling, random_state=0)
    for start in range(0, len(X), 64):
        streamed.partial_fit(X[start : start + 64])
    np.testing.assert_allclose(streamed.center_, fitted.center_)
    np.testing.assert_allclose(streamed.scale_, fitted.scale_)
    np.testing.assert_allclose(streamed.transform(X), fitted.transform(X))


@pytest.mark.parametrize("column", NEAR_THE_RANGE, ids=["float32", "float64", "both-signs"])
@pytest.mark.parametrize("scaling", ["standard", "robust"])
@pytest.mark.parametrize("clip_quantile", [None, 0.25])
def test_scaling_stays_finite_near_the_float_range(column, scaling, clip_quantile):
    X = np.column_stack([column, np.arange(column.size, dtype=column.dtype)])
    cleaner = Cleaner(scaling=scaling, clip_quantile=clip_quantile).fit(X)
    assert np.isfinite(cleaner.center_).all() and (cleaner.scale_ > 0).all()
    assert np.isfinite(cleaner.scale_).all()
    out = cleaner.transform(X)
    assert out.dtype == X.dtype and np.isfinite(out).all()
    # the second column, ordinary, is scaled as ever
    second = Cleaner(scaling=None, clip_quantile=clip_quantile).fit(X).transform(X)[:, 1]
    np.testing.assert_allclose(out[:, 1], (second - cleaner.center_[1]) / cleaner.scale_[1])
    # far beyond the training range (clipping off), a value is held at the largest
    far = np.array([[np.finfo(X.dtype).max, 1e30]], dtype=X.dtype)
    assert np.isfinite(cleaner.transform(far)).all()


def test_scaled_float32_rows_are_scaled_in_float32():
    X = _mixed_units()
    cleaner = Cleaner().fit(X)
    out32 = cleaner.transform(X.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, cleaner.transform(X), rtol=1e-5, atol=1e-5)
