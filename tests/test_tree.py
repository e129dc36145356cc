"""The tree projection family: tsvq, tsvq-local and random-trees."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs

from skquant import TreeProjection
from skquant.pipeline import _FAMILIES

# the contract every method keeps (partial_fit, batches, dtypes, seeds,
# pickling, memmap) is in test_contract.py
METHODS = list(_FAMILIES["tree"][2])


@pytest.fixture(scope="module")
def digits():
    return load_digits().data


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=12_000, n_features=8, centers=40, cluster_std=1.5,
                      random_state=0)
    return X


def quantization_error(X, centers):
    """Mean squared distance of each row to its nearest center."""
    squared = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=-1)
    return squared.min(axis=1).mean()


def feed(projection, X, chunk):
    for start in range(0, len(X), chunk):
        projection.partial_fit(X[start : start + chunk])
    return projection


def test_chunked_stream_matches_the_quality_of_fit(blobs):
    # beyond the sample, partial_fit streams the rows in arrival order and fit
    # streams the rows outside a uniform sample: the quantization errors
    # agree within 5%, and both are within 5% of full k-means
    rng = np.random.RandomState(1)
    X = blobs[rng.permutation(len(blobs))]
    whole = TreeProjection(32, max_samples=2000, random_state=0).fit(X)
    chunked = feed(TreeProjection(32, max_samples=2000, random_state=0), X, 1000)
    error_fit = quantization_error(X, whole.cluster_centers_)
    error_chunked = quantization_error(X, chunked.cluster_centers_)
    assert abs(error_chunked - error_fit) <= 0.05 * error_fit
    kmeans = KMeans(32, n_init=3, random_state=0).fit(X)
    reference = kmeans.inertia_ / len(X)
    assert error_fit <= 1.05 * reference and error_chunked <= 1.05 * reference
    assert chunked.leaf_sizes_.sum() == len(X) == whole.leaf_sizes_.sum()


def test_the_fitted_tree_describes_itself(digits):
    projection = TreeProjection(24, random_state=0).fit(digits)
    children, parent = projection.children_, projection.parent_
    n_nodes = children.shape[0]
    assert n_nodes == 2 * 24 - 1 and projection.n_components_ == 24
    internal = np.flatnonzero(children[:, 0] >= 0)
    assert len(internal) == 23 and parent[0] == -1
    for node in internal:
        assert (parent[children[node]] == node).all()
        sizes = projection.node_sizes_[children[node]]
        assert projection.node_sizes_[node] == sizes.sum()
        np.testing.assert_allclose(
            projection.node_centers_[node],
            sizes @ projection.node_centers_[children[node]] / sizes.sum(), atol=1e-9,
        )
    assert sorted(projection.leaves_) == sorted(set(range(n_nodes)) - set(internal))
    np.testing.assert_array_equal(projection.cluster_centers_,
                                  projection.node_centers_[projection.leaves_])
    assert projection.leaf_sizes_.sum() == len(digits)
    assert projection.max_depth_ >= int(np.ceil(np.log2(24)))


def test_features_are_closeness_to_every_prototype(digits):
    projection = TreeProjection(16, random_state=0).fit(digits)
    Z = projection.transform(digits[:100])
    distances = np.sqrt(((digits[:100, None] - projection.cluster_centers_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(Z, -distances / projection.scale_, atol=1e-9)
    # with at most 32 leaves the one bucket is searched exactly
    np.testing.assert_array_equal(projection.apply(digits),
                                  projection.transform(digits).argmax(axis=1))
    decoded = projection.inverse_transform(Z)
    np.testing.assert_array_equal(decoded, projection.cluster_centers_[Z.argmax(axis=1)])


def subspace_distances(X, centers, axes):
    """Distance of each row to each leaf's affine subspace, by brute force."""
    out = np.empty((len(X), len(centers)))
    for leaf, (center, basis) in enumerate(zip(centers, axes)):
        offset = X - center
        out[:, leaf] = np.linalg.norm(offset - (offset @ basis.T) @ basis, axis=1)
    return out


def test_tsvq_local_features_are_distances_to_each_leafs_subspace(digits):
    projection = TreeProjection(16, method="tsvq-local", local_components=3,
                                random_state=0).fit(digits)
    plain = TreeProjection(16, random_state=0).fit(digits)
    # the same tree; the local axes are each leaf's principal axes, orthonormal
    np.testing.assert_array_equal(projection.cluster_centers_, plain.cluster_centers_)
    axes = projection.local_axes_
    assert axes.shape == (16, 3, 64)
    for basis in axes:
        np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-10)
    Z = projection.transform(digits[:100])
    expected = subspace_distances(digits[:100], projection.cluster_centers_, axes)
    np.testing.assert_allclose(Z, -expected / projection.scale_, atol=1e-9)
    # nearer a subspace than its prototype, never farther
    assert np.all(Z >= plain.transform(digits[:100]) - 1e-12)
    leaf = plain.apply(digits) == 0
    rows = digits[leaf] - plain.cluster_centers_[0]
    leading = np.linalg.svd(rows, full_matrices=False)[2][:3]
    np.testing.assert_allclose(np.abs(leading @ axes[0].T), np.eye(3), atol=1e-6)


def test_tsvq_local_axes_where_a_leaf_is_flat():
    # two leaves of one point each (no direction to model) and a line of
    # points: a leaf's missing directions are rows of zeros
    X = np.array([[0.0, 0, 0]] * 5 + [[10.0, 10, 10]] * 5
                 + [[-10.0 + t, -10, 0] for t in np.linspace(0, 1, 6)])
    projection = TreeProjection(3, method="tsvq-local", local_components=5,
                                random_state=0).fit(X)
    axes = projection.local_axes_
    assert axes.shape == (3, 1, 3)  # at most half the columns
    ranks = sorted(int(np.abs(basis).sum(axis=1).astype(bool).sum()) for basis in axes)
    assert ranks == [0, 0, 1]
    Z = projection.transform(X)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(
        Z, -subspace_distances(X, projection.cluster_centers_, axes) / projection.scale_,
        atol=1e-7)  # (the square root of a rounding error, at a distance of 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tsvq_local_leaves_of_duplicated_rows_have_no_axes(dtype):
    # each leaf's rows are one point repeated: their singular values are
    # rounding error, and no direction may be made up from it
    X = np.repeat(np.random.RandomState(0).randn(10, 8), 20, axis=0).astype(dtype)
    local = TreeProjection(10, method="tsvq-local", random_state=0).fit(X)
    assert not local.local_axes_.any()
    plain = TreeProjection(10, random_state=0).fit(X)
    np.testing.assert_allclose(local.transform(X), plain.transform(X), atol=1e-6)


def test_tsvq_local_far_along_a_subspace_is_computed_without_cancelling():
    # a row 1e300 along a leaf's axis and 1e290 off it: the overflow-free
    # path measures the residual vector, not a difference of two squares
    rng = np.random.RandomState(0)
    projection = TreeProjection(8, method="tsvq-local", random_state=0).fit(rng.randn(300, 10))
    center, basis = projection.cluster_centers_[0], projection.local_axes_[0]
    off = 1e290 * rng.randn(10)
    row = center + 1e300 * basis[0] + off
    residual = off / 1e290 - basis.T @ (basis @ (off / 1e290))
    expected = -np.linalg.norm(residual) * 1e290 / projection.scale_
    np.testing.assert_allclose(projection.transform(row[None])[0, 0], expected, rtol=1e-6)


def test_tsvq_local_on_one_column_has_tsvqs_features():
    X = np.random.RandomState(0).normal(size=(200, 1))
    local = TreeProjection(4, method="tsvq-local", random_state=0).fit(X)
    assert local.local_axes_.shape == (4, 0, 1)
    plain = TreeProjection(4, random_state=0).fit(X)
    np.testing.assert_array_equal(local.transform(X), plain.transform(X))
    assert TreeProjection(4, method="tsvq-local").fit(X[:, [0, 0, 0, 0]] * [1, 2, 3, 4]
                                                      ).local_axes_.shape == (4, 2, 4)
    # (a bool is an int to scikit-learn's checks, and to the fit)
    assert TreeProjection(4, method="tsvq-local", local_components=True).fit(
        np.random.RandomState(0).normal(size=(100, 6))).local_axes_.shape == (4, 1, 6)


def test_tsvq_local_on_wide_data_uses_a_seeded_randomized_svd():
    # leaves with more than 128 rows and columns: the randomized SVD
    rng = np.random.RandomState(0)
    X = rng.normal(size=(900, 150)) @ rng.normal(size=(150, 150))
    first = TreeProjection(2, method="tsvq-local", random_state=3).fit(X)
    again = TreeProjection(2, method="tsvq-local", random_state=3).fit(X)
    np.testing.assert_array_equal(first.local_axes_, again.local_axes_)
    leaf = first.apply(X) == 0
    rows = X[leaf] - first.cluster_centers_[0]
    leading = np.linalg.svd(rows, full_matrices=False)[2][:4]
    # the randomized axes span nearly the leading subspace
    overlap = np.linalg.svd(leading @ first.local_axes_[0].T, compute_uv=False)
    assert overlap.min() > 0.9


def test_routing_through_a_deep_tree_finds_nearly_the_nearest_leaf(blobs):
    # 256 leaves: rows descend hyperplane blocks to a bucket of at most 32
    # leaves; almost every row lands on its exact nearest prototype
    projection = TreeProjection(256, max_samples=6000, random_state=0).fit(blobs)
    assert len(projection._bucket_columns) > 1  # the tree is routed, not searched flat
    routed = projection.apply(blobs[:3000])
    nearest = projection.transform(blobs[:3000]).argmax(axis=1)
    assert np.mean(routed == nearest) > 0.95


def test_duplicated_rows_warn_and_give_fewer_leaves():
    X = np.repeat(np.arange(15, dtype=float).reshape(5, 3), 8, axis=0)
    with pytest.warns(UserWarning, match="only 5 distinct point"):
        projection = TreeProjection(8, random_state=0).fit(X)
    assert projection.n_components_ == 5
    assert projection.transform(X).shape == (40, 5)
    assert projection.get_feature_names_out().shape == (5,)


def test_random_trees_report_too_few_distinct_rows():
    X = np.repeat(np.arange(6, dtype=float).reshape(3, 2), 10, axis=0)
    with pytest.warns(UserWarning, match="rank"):
        projection = TreeProjection(4, method="random-trees", random_state=0).fit(X)
    assert projection.transform(X).shape[1] == projection.n_components_


def test_random_trees_components(digits):
    projection = TreeProjection(20, method="random-trees", random_state=0).fit(digits)
    variance = projection.explained_variance_
    assert np.all(np.diff(variance) <= 1e-12) and variance[0] > 0
    n_leaves = projection.components_.shape[1]
    assert n_leaves == sum(
        int((tree.tree_.children_left < 0).sum()) for tree in projection.embedding_.estimators_
    )
    np.testing.assert_allclose(projection.indicator_mean_.sum(), projection.n_estimators)
    np.testing.assert_allclose(projection.transform(digits).mean(axis=0), 0, atol=1e-9)
    assert projection.apply(digits[:3]).shape == (3, projection.n_estimators)
    # leaf indicators do not decode: the method is not there at all
    assert not hasattr(projection, "inverse_transform")


def test_partial_fit_goes_on_after_a_transform(blobs):
    projection = TreeProjection(16, max_samples=2000, random_state=0)
    feed(projection, blobs[:6000], 1000)
    first = projection.transform(blobs[:10])
    feed(projection, blobs[6000:], 1000)
    assert projection.n_samples_seen_ == len(blobs)
    assert projection.leaf_sizes_.sum() == len(blobs)
    assert not np.array_equal(projection.transform(blobs[:10]), first)


@pytest.mark.parametrize("method", METHODS)
def test_a_transform_before_the_sample_is_full_changes_nothing_after(blobs, method):
    # the trees grow on the whole sample however often the projection is
    # used (or pickled) while the sample fills: not on the first chunks
    def make():
        return TreeProjection(8, method=method, max_samples=3000, random_state=0)

    plain = feed(make(), blobs[:6000], 1000)
    asked = make()
    for start in range(0, 6000, 1000):
        asked.partial_fit(blobs[start : start + 1000])
        if start < 3000:  # the sample holds 1000, 2000, 3000 rows
            early = asked.transform(blobs[:20])
            copy = pickle.loads(pickle.dumps(asked))
            np.testing.assert_array_equal(copy.transform(blobs[:20]), early)
    np.testing.assert_array_equal(asked.transform(blobs), plain.transform(blobs))
    assert asked.n_samples_seen_ == plain.n_samples_seen_ == 6000


def test_a_copy_pickled_before_the_sample_is_full_streams_into_its_trees(blobs):
    projection = TreeProjection(8, max_samples=3000, random_state=0).partial_fit(blobs[:1000])
    copy = pickle.loads(pickle.dumps(projection))
    # the copy holds no sample rows; the trees grown on the first 1,000 rows
    # are its fitted projection, and its later rows refine them
    assert copy.__dict__.get("_pending") is None
    with pytest.warns(UserWarning, match="pickled \\(or copied\\) before its sample"):
        feed(copy, blobs[1000:6000], 1000)
    assert copy.n_samples_seen_ == 6000 and copy.leaf_sizes_.sum() == 6000


def test_an_early_transform_does_not_advance_a_shared_random_state(blobs):
    def run(ask):
        shared = np.random.RandomState(0)
        first = TreeProjection(8, max_samples=3000, random_state=shared)
        second = TreeProjection(8, max_samples=3000, random_state=shared)
        for start in range(0, 6000, 1000):
            first.partial_fit(blobs[start : start + 1000])
            second.partial_fit(blobs[start : start + 1000])
            if ask and start < 3000:
                first.transform(blobs[:5])
        return first.transform(blobs), second.transform(blobs), shared.randint(1 << 30)

    for asked, plain in zip(run(True), run(False)):
        np.testing.assert_array_equal(asked, plain)


def test_a_copy_made_before_the_sample_is_full_warns_when_it_goes_on(blobs):
    import copy

    projection = TreeProjection(8, max_samples=3000, random_state=0).partial_fit(blobs[:1000])
    for duplicate in (copy.deepcopy(projection), pickle.loads(pickle.dumps(projection))):
        with pytest.warns(UserWarning, match="before its sample of max_samples=3000 rows was "
                                             "full.*grown on the 1000 rows") as caught:
            duplicate.partial_fit(blobs[1000:2000])
        assert caught[0].filename == __file__  # said at the caller's line
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once
            duplicate.partial_fit(blobs[2000:3000])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the original just goes on
        projection.partial_fit(blobs[1000:2000])


def test_a_pickle_of_a_projection_that_cannot_finalize_keeps_its_rows(blobs, monkeypatch):
    projection = TreeProjection(8, max_samples=3000, random_state=0).partial_fit(blobs[:1000])
    from skquant.projection import _tree

    def fail(*args, **kwargs):
        raise ValueError("cannot grow")

    with monkeypatch.context() as patched:
        patched.setattr(_tree, "grow", fail)
        copy = pickle.loads(pickle.dumps(projection))
    assert sum(len(rows) for rows in copy._pending) == 1000
    feed(copy, blobs[1000:6000], 1000)
    plain = feed(TreeProjection(8, max_samples=3000, random_state=0), blobs[:6000], 1000)
    np.testing.assert_array_equal(copy.transform(blobs), plain.transform(blobs))


def test_fit_stream_grows_the_trees_for_good_and_frees_the_sample(blobs):
    from skquant import Cleaner, fit_stream
    from sklearn.pipeline import make_pipeline
    from sklearn.linear_model import SGDClassifier

    y = (blobs[:, 0] > np.median(blobs[:, 0])).astype(int)
    pipe = make_pipeline(Cleaner(), TreeProjection(8, random_state=0),
                         SGDClassifier(random_state=0))
    fit_stream(pipe, blobs[:4000], y[:4000], chunk_size=1000, random_state=0)
    tree = pipe.steps[1][1]
    assert tree.__dict__.get("_pending") is None  # 4,000 rows, below max_samples
    assert tree.n_samples_seen_ == 4000 and tree.leaf_sizes_.sum() == 4000


def test_pickle_is_small_and_round_trips(blobs):
    projection = feed(TreeProjection(16, max_samples=2000, random_state=0), blobs, 1000)
    blob = pickle.dumps(projection)
    # the stream buffer and the growth sample are not stored
    assert len(blob) < 50_000
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.transform(blobs[:20]), projection.transform(blobs[:20]))


def test_no_warnings_on_ordinary_data(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in METHODS:
            TreeProjection(64, method=method, random_state=0).fit(digits).transform(digits)


def test_a_pickled_random_trees_projection_transforms_but_does_not_resume(blobs):
    projection = feed(TreeProjection(8, method="random-trees", max_samples=2000,
                                     random_state=0), blobs, 1000)
    restored = pickle.loads(pickle.dumps(projection))
    np.testing.assert_array_equal(restored.transform(blobs[:20]), projection.transform(blobs[:20]))
    with pytest.raises(ValueError, match="loaded from a pickle.*Call fit"):
        restored.partial_fit(blobs[:100])
    projection.partial_fit(blobs[:100])  # the original goes on
    assert restored.fit(blobs).n_samples_seen_ == len(blobs)


# Powers of two scale exactly, so the projection of scaled data must be the
# projection of the data: squares of 2**600 overflow float64, of 2**-600
# underflow it, and of 2**+-70 overflow or underflow float32.
@pytest.mark.parametrize("exponent, dtype", [
    (600, np.float64), (1000, np.float64), (-600, np.float64), (-1000, np.float64),
    (70, np.float32), (120, np.float32), (-70, np.float32), (-120, np.float32),
])
@pytest.mark.parametrize("method", ["tsvq", "tsvq-local"])
def test_tsvq_does_not_depend_on_the_data_scale(exponent, dtype, method):
    X, _ = make_blobs(n_samples=600, n_features=5, centers=6, random_state=0)
    X = X.astype(dtype)
    scaled = np.ldexp(X, exponent)
    reference = TreeProjection(8, method=method, max_samples=400, random_state=0).fit(X)
    projection = TreeProjection(8, method=method, max_samples=400, random_state=0).fit(scaled)
    Z = projection.transform(scaled)
    assert Z.dtype == dtype and np.isfinite(Z).all()
    rtol = 1e-9 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(Z, reference.transform(X), rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(projection.apply(scaled), reference.apply(X))
    np.testing.assert_allclose(projection.scale_, np.ldexp(reference.scale_, exponent),
                               rtol=rtol)
    np.testing.assert_allclose(np.ldexp(projection.cluster_centers_, -exponent),
                               reference.cluster_centers_, rtol=rtol, atol=rtol)


def test_tsvq_on_float32_near_its_range():
    # issue 11: numpy's "probabilities contain NaN", or NaN/-inf features
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(300, 4)) * 1e38).astype(np.float32)
    Z = TreeProjection(6, random_state=0).fit(X).transform(X)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()


def test_a_chunk_that_would_overflow_the_prototypes_is_refused_and_changes_nothing():
    # grown on ordinary rows, then fed rows near the float range: the sums
    # that move the prototypes overflow, and the chunk is refused
    rng = np.random.RandomState(0)
    projection = TreeProjection(4, max_samples=100, random_state=0)
    projection.partial_fit(rng.normal(size=(200, 3)))
    rows = rng.normal(size=(5, 3))
    before = projection.transform(rows)
    with pytest.raises(ValueError, match="prototypes overflow.*StandardScaler"):
        projection.partial_fit(np.full((50_000, 3), 1.7e308))
    np.testing.assert_array_equal(projection.transform(rows), before)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_random_trees_beyond_float32_route_like_float32(scale):
    # scikit-learn's trees compare float32 values: data beyond float32's
    # range are clipped to it for fitting, and route like +-inf after
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4)) * scale
    projection = TreeProjection(4, method="random-trees", n_estimators=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # (tiny data: fewer distinct rows)
        Z = projection.fit(X).transform(X)
    assert np.isfinite(Z).all()
    if scale > 1:
        largest = np.finfo(np.float32).max
        np.testing.assert_array_equal(
            projection.apply(X), projection.apply(np.clip(X, -largest, largest)))


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_the_artifact_serves_and_checks_the_local_axes(digits, dtype):
    from sklearn.pipeline import Pipeline

    from skquant import Cleaner, KerasMLPClassifier, quantize
    from skquant.runtime import ArtifactError, QuantizedPipeline

    clean = Cleaner().fit(digits)
    projection = TreeProjection(8, method="tsvq-local", random_state=0).fit(
        clean.transform(digits))
    Z = projection.transform(clean.transform(digits))
    rng = np.random.default_rng(0)
    classifier = KerasMLPClassifier()  # fitted by hand: no TensorFlow
    classifier.coefs_ = [rng.normal(size=(8, 12)), rng.normal(size=(12, 3))]
    classifier.intercepts_ = [rng.normal(size=12) * 0.1, rng.normal(size=3) * 0.1]
    classifier.input_mean_, classifier.input_scale_ = Z.mean(axis=0), Z.std(axis=0)
    classifier.classes_, classifier.n_features_in_ = np.arange(3), 8
    pipe = Pipeline([("clean", clean), ("project", projection), ("classify", classifier)])
    served = quantize(pipe, dtype=dtype)
    prefix = served.manifest["steps"][1]["prefix"]
    axes = f"{prefix}axes" if dtype == "float32" else f"{prefix}axes.q"
    assert served.arrays[axes].shape == (8 * 4, clean.transform(digits).shape[1])
    atol = 1e-4 if dtype == "float32" else 0.05
    np.testing.assert_allclose(served.predict_proba(digits), pipe.predict_proba(digits),
                               atol=atol)
    broken = dict(served.arrays)
    broken[axes] = broken[axes][:-1].copy()  # 31 axes for 8 prototypes
    if dtype == "int8":
        broken[f"{prefix}axes.scale"] = broken[f"{prefix}axes.scale"][:-1].copy()
    with pytest.raises(ArtifactError, match="31 local axes for 8 prototypes"):
        QuantizedPipeline(served.manifest, broken)
    broken = dict(served.arrays)
    broken[axes] = broken[axes][:, :5].copy()
    with pytest.raises(ArtifactError, match="axes"):
        QuantizedPipeline(served.manifest, broken)
    # axes that are not unit vectors: refused, never NaN or a collapse to 0
    broken = dict(served.arrays)
    if dtype == "float32":
        broken[axes] = broken[axes] * np.float32(1e20)
    else:
        broken[f"{prefix}axes.scale"] = broken[f"{prefix}axes.scale"] * np.float32(1e20)
    with pytest.raises(ArtifactError, match="local axis .* has norm"):
        QuantizedPipeline(served.manifest, broken)
