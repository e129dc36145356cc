"""The column projection family: pca, qr and random."""

import numpy as np
import pytest
import scipy.linalg
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skquant import ColumnProjection
from skquant.pipeline import _FAMILIES

# the contract every method keeps (partial_fit, batches, dtypes, seeds,
# pickling, memmap) is in test_contract.py
METHODS = list(_FAMILIES["column"][2])


@pytest.fixture(scope="module")
def digits():
    return load_digits().data


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pca_matches_sklearn(digits, dtype):
    X = digits.astype(dtype)
    ours = ColumnProjection(10).fit(X)
    reference = PCA(10, svd_solver="full").fit(X.astype(np.float64))
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(
        ours.explained_variance_, reference.explained_variance_, rtol=rtol
    )
    np.testing.assert_allclose(
        ours.explained_variance_ratio_, reference.explained_variance_ratio_, rtol=rtol
    )
    # same axes up to sign; our sign convention: largest loading positive
    np.testing.assert_allclose(
        np.abs(ours.components_), np.abs(reference.components_), atol=1e-3 if rtol > 1e-6 else 1e-8
    )
    largest = np.abs(ours.components_).argmax(axis=1)
    assert np.all(ours.components_[np.arange(10), largest] > 0)
    assert ours.transform(X).dtype == dtype


def test_pca_sign_is_deterministic_under_row_order(digits):
    a = ColumnProjection(6).fit(digits)
    b = ColumnProjection(6).fit(digits[::-1])
    np.testing.assert_allclose(a.components_, b.components_, atol=1e-8)


def test_randomized_solver_agrees_with_covariance(digits):
    exact = ColumnProjection(5).fit(digits)
    approx = ColumnProjection(5, solver="randomized", random_state=0).fit(digits)
    assert approx.solver_ == "randomized"
    np.testing.assert_allclose(
        approx.explained_variance_, exact.explained_variance_, rtol=1e-2
    )


def test_auto_solver_falls_back_for_wide_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 30))
    proj = ColumnProjection(3, max_covariance_features=20, random_state=0).fit(X)
    assert proj.solver_ == "randomized"
    with pytest.raises(ValueError, match="partial_fit cannot use the randomized"):
        ColumnProjection(3, max_covariance_features=20).partial_fit(X)
    with pytest.raises(ValueError, match="partial_fit cannot use the randomized"):
        proj.partial_fit(X)


def test_qr_on_wide_data_selects_the_same_columns_from_the_rows(digits):
    narrow = ColumnProjection(10, method="qr").fit(digits)
    wide = ColumnProjection(10, method="qr", max_covariance_features=8).fit(digits)
    assert (narrow.solver_, wide.solver_) == ("covariance", "direct")
    np.testing.assert_array_equal(wide.selected_columns_, narrow.selected_columns_)
    np.testing.assert_allclose(wide.inverse_components_, narrow.inverse_components_, atol=1e-8)


def test_chunked_float32_pca_stays_accurate_when_the_mean_drifts():
    rng = np.random.RandomState(0)
    n, d = 40_000, 20
    X = rng.normal(size=(n, d)) * np.linspace(3, 0.5, d)
    X += np.linspace(0, 2_000, n)[:, None]  # the mean drifts far from the first chunk's
    X32 = X.astype(np.float32)
    reference = PCA(5).fit(X32.astype(np.float64))  # the same values, in float64
    chunked = ColumnProjection(5)
    for start in range(0, n, 5_000):
        chunked.partial_fit(X32[start : start + 5_000])
    # a single shift for all chunks (centring on the first chunk's mean) is
    # off by 0.3-1.8% here; per-block centring with exact merges is ~1e-4
    np.testing.assert_allclose(chunked.explained_variance_, reference.explained_variance_, rtol=1e-3)
    np.testing.assert_allclose(chunked.mean_, reference.mean_, rtol=1e-6)


def test_a_single_row_in_total_is_not_enough(digits):
    proj = ColumnProjection(2).partial_fit(digits[:1])
    with pytest.raises(ValueError, match="needs at least 2 rows"):
        proj.transform(digits[:3])
    proj.partial_fit(digits[1:5])
    assert proj.transform(digits[:3]).shape == (3, 2)


def test_get_feature_names_out_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ColumnProjection(2, method="qr").get_feature_names_out()


def test_qr_selects_the_columns_of_pivoted_qr_on_centred_data(digits):
    proj = ColumnProjection(8, method="qr").fit(digits)
    _, _, pivots = scipy.linalg.qr(digits - digits.mean(axis=0), pivoting=True, mode="economic")
    assert list(proj.selected_columns_) == list(pivots[:8])
    np.testing.assert_array_equal(proj.transform(digits), digits[:, pivots[:8]])


def test_qr_feature_names_are_the_kept_columns(digits):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(digits, columns=[f"pixel_{i}" for i in range(64)])
    proj = ColumnProjection(4, method="qr").fit(frame)
    names = proj.get_feature_names_out()
    assert list(names) == [f"pixel_{i}" for i in proj.selected_columns_]
    out = proj.set_output(transform="pandas").transform(frame)
    assert list(out.columns) == list(names)


def test_set_output_pandas_for_pca(digits):
    pytest.importorskip("pandas")
    out = ColumnProjection(3).set_output(transform="pandas").fit_transform(digits)
    assert list(out.columns) == ["columnprojection0", "columnprojection1", "columnprojection2"]


@pytest.mark.filterwarnings("ignore:The centred data has rank")  # digits: rank 61 < 64
@pytest.mark.parametrize("method", METHODS)
def test_inverse_transform(digits, method):
    proj = ColumnProjection(64, method=method, random_state=0).fit(digits)
    # with every dimension kept the reconstruction is exact
    # (random: 64 random directions span the space almost surely)
    np.testing.assert_allclose(
        proj.inverse_transform(proj.transform(digits)), digits, atol=1e-6
    )
    small = ColumnProjection(20, method=method, random_state=0).fit(digits)
    error = np.mean((small.inverse_transform(small.transform(digits)) - digits) ** 2)
    # better than the trivial reconstruction: the mean for the centred
    # methods, zero for the (uncentred) random projection
    trivial = digits if method == "random" else digits - digits.mean(axis=0)
    assert error < np.mean(trivial**2)


def test_pca_reconstruction_error_beats_other_methods(digits):
    errors = {}
    for method in METHODS:
        proj = ColumnProjection(16, method=method, random_state=0).fit(digits)
        errors[method] = np.mean((proj.inverse_transform(proj.transform(digits)) - digits) ** 2)
    assert errors["pca"] <= errors["qr"] and errors["pca"] <= errors["random"]


def test_fitted_attributes_available_after_partial_fit(digits):
    proj = ColumnProjection(4).partial_fit(digits[:500])
    assert proj.components_.shape == (4, 64)
    proj.partial_fit(digits[500:])
    full = ColumnProjection(4).fit(digits)
    np.testing.assert_allclose(proj.components_, full.components_, atol=1e-8)


def _correlated(n=300, d=6, seed=0):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)


# Powers of two scale exactly; the data then span the float range: squares
# of 2**600 overflow float64, of 2**-600 underflow it, and of 2**+-70
# overflow or underflow float32.
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("exponent, dtype", [
    (600, np.float64), (1000, np.float64), (-600, np.float64), (-1000, np.float64),
    (70, np.float32), (120, np.float32), (-70, np.float32), (-120, np.float32),
])
@pytest.mark.parametrize("max_covariance_features", [4096, 2])  # covariance, rows
def test_projections_do_not_depend_on_the_data_scale(method, exponent, dtype,
                                                     max_covariance_features):
    X = _correlated().astype(dtype)
    scaled = np.ldexp(X, exponent)
    make = lambda: ColumnProjection(3, method=method, random_state=0,  # noqa: E731
                                    max_covariance_features=max_covariance_features)
    if method == "pca" and exponent in (600, 1000):
        # the variance itself, 2**1200 or more, cannot be represented
        with pytest.raises(ValueError, match="explained_variance_"):
            make().fit(scaled)
        return
    reference = make().fit(X)
    projection = make().fit(scaled)
    Z = projection.transform(scaled)
    assert Z.dtype == dtype and np.isfinite(Z).all()
    rtol = 1e-9 if dtype == np.float64 else 2e-3
    expected = reference.transform(X).astype(np.float64)
    np.testing.assert_allclose(np.ldexp(Z.astype(np.float64), -exponent), expected,
                               rtol=rtol, atol=rtol * np.abs(expected).max())
    if method == "qr":
        np.testing.assert_array_equal(projection.selected_columns_,
                                      reference.selected_columns_)
    if method == "pca" and exponent < 0:
        # tiny data: the variances, in float64, are the scaled ones
        np.testing.assert_allclose(
            projection.explained_variance_,
            np.ldexp(reference.explained_variance_, 2 * exponent), rtol=max(rtol, 1e-7))


@pytest.mark.parametrize("method", ["pca", "qr"])
def test_chunks_of_very_different_magnitude_merge_exactly(method):
    # the first chunks are ordinary, a later one has squares beyond float64:
    # the running scatter changes units on the way, and the fit is the one
    # on all the rows at once
    X = _correlated(900)
    X[600:] = np.ldexp(X[600:], 500)
    whole = ColumnProjection(3, method=method).fit(X)
    chunked = ColumnProjection(3, method=method)
    for start in range(0, 900, 150):
        chunked.partial_fit(X[start : start + 150])
    np.testing.assert_allclose(chunked.mean_, whole.mean_, rtol=1e-10)
    np.testing.assert_allclose(chunked.components_, whole.components_, atol=1e-8)
    if method == "pca":
        np.testing.assert_allclose(chunked.explained_variance_, whole.explained_variance_,
                                   rtol=1e-8)
    Z = chunked.transform(X)
    assert np.isfinite(Z).all()


def test_rows_whose_arithmetic_overflows_are_computed_on_the_slow_path():
    # fitted on a column at -1.5e308 and one of spread 1e150: for a row at
    # +1.5e308, x - mean_ overflows, but its projection on the first axis
    # (the second column) does not
    rng = np.random.RandomState(0)
    X = np.column_stack([np.full(200, -1.5e308), rng.normal(size=200) * 1e150])
    pca = ColumnProjection(1).fit(X)
    row = np.array([[1.5e308, 2e150]])
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite((row - pca.mean_) @ pca.components_.T).all()  # the fast path
    Z = pca.transform(row)
    centred = np.array([1.5e308 / 2 - pca.mean_[0] / 2, (2e150 - pca.mean_[1]) / 2])
    np.testing.assert_allclose(Z[0] / 2, centred @ pca.components_.T, rtol=1e-12)


def test_a_pickle_holds_the_components_not_the_running_scatter():
    import pickle
    import warnings

    rng = np.random.RandomState(0)
    X = rng.normal(size=(500, 200))
    projection = ColumnProjection(8, random_state=0).fit(X)
    blob = pickle.dumps(projection)
    # the 200 x 200 scatter (320 KB) only serves partial_fit
    assert len(blob) < 200 * 200 * 8 / 4
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.transform(X), projection.transform(X))
    with pytest.warns(UserWarning, match="partial_fit starts a new fit"):
        restored.partial_fit(X[:100])
    assert restored.n_samples_seen_ == 100
    np.testing.assert_allclose(
        np.abs(restored.components_), np.abs(ColumnProjection(8).fit(X[:100]).components_),
        atol=1e-8)
    # without a pickle in between, partial_fit goes on as ever
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        projection.partial_fit(X[:100])
    assert projection.n_samples_seen_ == 600
