"""The graph projection family: spectral (Laplacian eigenmaps) and lpp."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.neighbors import KNeighborsClassifier

from skquant import GraphProjection
from skquant.pipeline import _FAMILIES

# the contract every method keeps (partial_fit, batches, dtypes, seeds,
# pickling, memmap) is in test_contract.py
METHODS = list(_FAMILIES["graph"][2])


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def test_training_rows_land_close_to_their_embedding(digits):
    X, _ = digits
    projection = GraphProjection(8, random_state=0).fit(X)  # every row a landmark
    embedded = projection.embedding_
    relative = np.linalg.norm(projection.transform(X) - embedded, axis=1) / np.linalg.norm(
        embedded, axis=1)
    assert np.median(relative) < 0.1


def test_the_embedding_separates_the_classes(digits):
    X, y = digits
    train, test = slice(0, 1300), slice(1300, None)
    for method in METHODS:
        projection = GraphProjection(16, method=method, random_state=0).fit(X[train])
        knn = KNeighborsClassifier(5).fit(projection.transform(X[train]), y[train])
        assert knn.score(projection.transform(X[test]), y[test]) > 0.9, method


def test_sign_convention_and_eigenvalues(digits):
    X, _ = digits
    projection = GraphProjection(6, random_state=0).fit(X)
    largest = np.abs(projection.embedding_).argmax(axis=0)
    assert np.all(projection.embedding_[largest, np.arange(6)] > 0)
    values = projection.eigenvalues_
    assert np.all(np.diff(values) <= 0) and values[0] < 1
    # refits from another seed (another ARPACK start) agree, sign included
    other = GraphProjection(6, random_state=7).fit(X)
    np.testing.assert_allclose(other.embedding_, projection.embedding_, atol=1e-6)
    lpp = GraphProjection(6, method="lpp").fit(X)
    largest = np.abs(lpp.components_).argmax(axis=1)
    assert np.all(lpp.components_[np.arange(6), largest] > 0)
    assert np.all(np.diff(lpp.eigenvalues_) >= 0)


def test_a_disconnected_graph_warns_and_still_embeds():
    X, labels = make_blobs(n_samples=300, centers=[[0, 0], [100, 100], [-100, 100]],
                           cluster_std=1.0, random_state=0)
    with pytest.warns(UserWarning, match="has 3 connected components"):
        projection = GraphProjection(4, n_neighbors=5, random_state=0).fit(X)
    assert projection.n_connected_components_ == 3
    Z = projection.transform(X)
    assert np.isfinite(Z).all() and Z.shape == (300, 4)
    # the first coordinates tell the three groups apart
    means = np.array([Z[labels == c, :2].mean(axis=0) for c in range(3)])
    assert min(np.linalg.norm(means[a] - means[b]) for a, b in [(0, 1), (0, 2), (1, 2)]) > 0.1


def test_duplicated_rows_and_ties():
    rng = np.random.RandomState(0)
    base = rng.normal(size=(40, 3))
    X = np.vstack([base, base, base[:5]])  # every row at least twice
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicates may split the graph
        projection = GraphProjection(3, n_neighbors=4, random_state=0).fit(X)
    Z = projection.transform(X)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z[:40], Z[40:80])  # identical rows, identical output


def test_landmarks_bound_the_graph(digits):
    X, _ = digits
    projection = GraphProjection(8, n_landmarks=300, pca_components=None,
                                 random_state=0).fit(X)
    assert projection.n_landmarks_ == 300 and projection.landmarks_.shape == (300, 64)
    assert projection.affinity_.shape == (300, 300)
    assert projection.n_samples_seen_ == len(X)
    # the landmarks are rows of X
    rows = {row.tobytes() for row in X}
    assert all(row.tobytes() in rows for row in projection.landmarks_)
    # on more columns than pca_components: the landmarks' principal components
    reduced = GraphProjection(8, n_landmarks=300, pca_components=20, random_state=0).fit(X)
    assert reduced.landmarks_.shape == (300, 20) and reduced.pca_components_.shape == (20, 64)
    np.testing.assert_allclose(reduced.pca_components_ @ reduced.pca_components_.T,
                               np.eye(20), atol=1e-10)
    np.testing.assert_allclose(
        reduced.landmarks_, (projection.landmarks_ - reduced.pca_mean_) @ reduced.pca_components_.T,
        atol=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_partial_fit_beyond_the_landmarks_keeps_a_uniform_sample(digits, method):
    # while every row fits in the landmark set, chunks change nothing
    # (test_contract.py); beyond it, a reservoir keeps a uniform sample
    X, _ = digits
    sampled = GraphProjection(8, method=method, n_landmarks=400, pca_components=None,
                              random_state=0)
    for start in range(0, len(X), 300):
        sampled.partial_fit(X[start : start + 300])
    assert sampled.n_landmarks_ == 400 and sampled.n_samples_seen_ == len(X)
    late = np.isin(sampled.landmarks_.view([("", X.dtype)] * 64).ravel(),
                   X[1000:].view([("", X.dtype)] * 64).ravel()).mean()
    assert 0.25 < late < 0.7  # about 797 / 1797 of a uniform sample


@pytest.mark.parametrize("method", METHODS)
def test_pickle_round_trip_without_derived_copies(digits, method):
    import pickle

    X, _ = digits
    projection = GraphProjection(8, method=method, n_landmarks=500, pca_components=None,
                                 random_state=0).fit(X)
    blob = pickle.dumps(projection)
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.transform(X[:40]), projection.transform(X[:40]))
    # the landmarks are stored once, the neighbour index not at all
    assert len(blob) < 2.2 * projection.landmarks_.nbytes + projection.affinity_.data.nbytes * 3
    restored.partial_fit(X[:100])  # and it goes on learning
    assert restored.n_samples_seen_ == len(X) + 100
    if method == "spectral":
        # on principal components: the pickle holds the landmarks' components,
        # not the landmark rows, which only partial_fit's reservoir needs
        reduced = GraphProjection(8, n_landmarks=500, pca_components=20, random_state=0).fit(X)
        blob = pickle.dumps(reduced)
        assert len(blob) < X[:500].nbytes  # the 500 landmark rows alone take this
        restored = pickle.loads(blob)
        assert "_reservoir" not in vars(restored)
        np.testing.assert_array_equal(restored.transform(X[:40]), reduced.transform(X[:40]))
        with pytest.warns(UserWarning, match="partial_fit starts a new fit"):
            restored.partial_fit(X[:100])
        assert restored.n_samples_seen_ == 100


# Powers of two scale exactly, so the embedding of scaled data must be the
# embedding of the data: issue 11 found all-NaN output at 1e300.
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("exponent, dtype", [
    (1000, np.float64), (500, np.float64), (-1000, np.float64),
    (120, np.float32), (-120, np.float32),
])
def test_the_embedding_does_not_depend_on_the_data_scale(method, exponent, dtype):
    X, _ = make_blobs(n_samples=300, n_features=4, centers=3, random_state=0)
    X = X.astype(dtype)
    scaled = np.ldexp(X, exponent)
    make = lambda: GraphProjection(3, method=method, n_landmarks=200,  # noqa: E731
                                   random_state=0)
    reference = make().fit(X)
    projection = make().fit(scaled)
    Z = projection.transform(scaled)
    assert Z.dtype == dtype and np.isfinite(Z).all()
    rtol = 1e-7 if dtype == np.float64 else 2e-3
    expected = reference.transform(X)
    np.testing.assert_allclose(Z, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    if method == "spectral":
        np.testing.assert_allclose(projection.landmark_scale_,
                                   np.ldexp(reference.landmark_scale_, exponent), rtol=rtol)


def test_a_row_far_from_every_landmark_gets_its_nearest_landmarks_mean():
    # every kernel weight of such a row underflows to 0 (0 / 0 = NaN before):
    # the weights are normalized, so its nearest landmarks still count
    X, _ = make_blobs(n_samples=200, n_features=3, centers=2, random_state=0)
    projection = GraphProjection(2, n_neighbors=5, random_state=0).fit(X)
    for distance in (1e3, 1e100, 1e300, 1.7e308):
        far = np.full((1, 3), distance)
        Z = projection.transform(far)
        assert np.isfinite(Z).all(), distance
    # as far away as it is, the row takes the coordinates of the landmark(s)
    # nearest to it: the same for 1e100 and 1e300 along one direction
    np.testing.assert_allclose(projection.transform(np.full((1, 3), 1e100)),
                               projection.transform(np.full((1, 3), 1e300)), rtol=1e-6)


def test_twelve_rows_are_enough_for_spectral():
    # issue 11: a reshape error from inside scikit-learn's kneighbors
    rng = np.random.RandomState(0)
    for scale in (1.0, 1e300, 1e-300):
        X = rng.normal(size=(12, 4)) * scale
        Z = GraphProjection(2, random_state=0).fit(X).transform(X)
        assert Z.shape == (12, 2) and np.isfinite(Z).all()
    with pytest.raises(ValueError, match="n_neighbors=10 must be below the number of "
                                         "landmark rows, 10. Choose n_neighbors <= 9"):
        GraphProjection(2, random_state=0).fit(rng.normal(size=(10, 4)))


def test_duplicated_landmarks_keep_their_neighbours_connected():
    # four duplicates: their k nearest neighbours are all at distance 0, so
    # their kernel scale is their nearest distinct landmarks' distance, not
    # the floor, whose narrow kernel left the other landmarks on edges of
    # weight 1e-275 and with spectral coordinates of 1e137 (infinite in
    # float32)
    X = np.array([[0.0, 0.0]] * 4 + [[-5.6, -2.4], [9.2, 9.4]], dtype=np.float32)
    projection = GraphProjection(1, n_neighbors=3, random_state=0).fit(X)
    assert projection.n_connected_components_ == 1
    assert projection.affinity_.data.min() > 0.1
    np.testing.assert_allclose(projection.landmark_scale_[:4], np.hypot(9.2, 9.4), rtol=1e-6)
    assert np.abs(projection.embedding_).max() < 10
    Z = projection.transform(X)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    # the weakest edges of a far outlier that do underflow are no edges: its
    # component is joined like any other, by the weakest real edge
    X = np.vstack([np.repeat(np.eye(3), 4, axis=0), [[1e4, 1e4, 1e4]]])
    with pytest.warns(UserWarning, match="connected components"):
        projection = GraphProjection(2, n_neighbors=3, random_state=0).fit(X)
    assert projection.affinity_.data.min() > 0 and np.isfinite(projection.transform(X)).all()


def test_one_kernel_serves_rows_far_from_every_landmark():
    from skquant.runtime._steps import kernel_weights

    # every exp(-d**2) underflows to 0 here; the weights must not be 0/0
    distances = np.array([[40.0, 45.0, 90.0], [1.0, 1.5, 2.0]])
    weights = kernel_weights(distances, np.array([1.0, 1.0]), np.ones((2, 3)))
    assert np.isfinite(weights).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert weights[0, 0] == 1.0 and weights[0, 2] == 0.0
    # ordinary rows: the plain formula, normalized
    plain = np.exp(-distances[1] ** 2)
    np.testing.assert_allclose(weights[1], plain / plain.sum(), rtol=1e-12)


def test_rows_beyond_the_float_range_find_their_nearest_landmarks(monkeypatch):
    # a row so far away that its distances to every landmark round to the
    # same number (the wide-range path): the landmarks are ranked without
    # the row's own squared norm, so its neighbours are still the nearest
    # ones (those furthest along its direction), not a tie broken by index
    # (which picked landmarks 0-4 before)
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=300, n_features=3, centers=2, random_state=0)
    projection = GraphProjection(2, n_neighbors=5, random_state=0).fit(X)
    projection.transform(X[:1])
    seen = []
    interpolate = projection._interpolate
    monkeypatch.setattr(projection, "_interpolate",
                        lambda d, i, *rest: seen.append(i) or interpolate(d, i, *rest))
    Z = projection._transform_wide_range(np.array([[1e300, 0.0, 0.0]]))
    assert np.isfinite(Z).all()
    furthest = np.argsort(-projection.landmarks_[:, 0], kind="stable")[:5]
    assert seen[0].tolist() == [furthest.tolist()]
    # the same neighbours as the ordinary path finds for a row within range
    seen.clear()
    projection.transform(np.array([[1e100, 0.0, 0.0]]))
    assert seen[0].tolist() == [furthest.tolist()]
