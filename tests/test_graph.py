"""The graph projection family: spectral (Laplacian eigenmaps) and lpp."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.neighbors import KNeighborsClassifier

from skquant import GraphProjection

METHODS = ["spectral", "lpp"]


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


@pytest.mark.parametrize("method", METHODS)
def test_transform_of_a_row_does_not_depend_on_the_batch(digits, method):
    X, _ = digits
    projection = GraphProjection(12, method=method, n_landmarks=800, random_state=0).fit(X)
    together = projection.transform(X[:60])
    one_by_one = np.vstack([projection.transform(row[None]) for row in X[:60]])
    np.testing.assert_allclose(one_by_one, together, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_output_across_processes(digits, method, tmp_path):
    X, _ = digits
    script = (
        "import numpy as np\n"
        "from sklearn.datasets import load_digits\n"
        "from skquant import GraphProjection\n"
        "X, _ = load_digits(return_X_y=True)\n"
        f"p = GraphProjection(10, method={method!r}, n_landmarks=700, random_state=3).fit(X)\n"
        "np.save(__import__('sys').argv[1], p.transform(X[:100]))\n"
    )
    outputs = []
    for run in range(2):
        path = tmp_path / f"run{run}.npy"
        result = subprocess.run([sys.executable, "-c", script, str(path)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        outputs.append(np.load(path))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    here = GraphProjection(10, method=method, n_landmarks=700, random_state=3).fit(X)
    np.testing.assert_allclose(here.transform(X[:100]), outputs[0], rtol=1e-10, atol=1e-12)


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
    projection = GraphProjection(8, n_landmarks=300, random_state=0).fit(X)
    assert projection.n_landmarks_ == 300 and projection.landmarks_.shape == (300, 64)
    assert projection.affinity_.shape == (300, 300)
    assert projection.n_samples_seen_ == len(X)
    # the landmarks are rows of X
    rows = {row.tobytes() for row in X}
    assert all(row.tobytes() in rows for row in projection.landmarks_)


@pytest.mark.parametrize("method", METHODS)
def test_partial_fit_in_chunks(digits, method):
    X, _ = digits
    whole = GraphProjection(8, method=method, n_landmarks=2000, random_state=0).fit(X)
    chunked = GraphProjection(8, method=method, n_landmarks=2000, random_state=0)
    for start in range(0, len(X), 500):
        chunked.partial_fit(X[start : start + 500])
    # all rows fit in the landmark set: chunks change nothing
    np.testing.assert_allclose(chunked.transform(X[:50]), whole.transform(X[:50]),
                               rtol=1e-10, atol=1e-10)
    # beyond it, a reservoir keeps a uniform sample of the stream
    sampled = GraphProjection(8, method=method, n_landmarks=400, random_state=0)
    for start in range(0, len(X), 300):
        sampled.partial_fit(X[start : start + 300])
    assert sampled.n_landmarks_ == 400 and sampled.n_samples_seen_ == len(X)
    late = np.isin(sampled.landmarks_.view([("", X.dtype)] * 64).ravel(),
                   X[1000:].view([("", X.dtype)] * 64).ravel()).mean()
    assert 0.25 < late < 0.7  # about 797 / 1797 of a uniform sample


@pytest.mark.parametrize("method", METHODS)
def test_float32_is_preserved(digits, method):
    X, _ = digits
    X32 = X.astype(np.float32)
    projection = GraphProjection(5, method=method, random_state=0).fit(X32)
    assert projection.transform(X32).dtype == np.float32


@pytest.mark.parametrize("method", METHODS)
def test_pickle_round_trip_without_derived_copies(digits, method):
    import pickle

    X, _ = digits
    projection = GraphProjection(8, method=method, n_landmarks=500, random_state=0).fit(X)
    blob = pickle.dumps(projection)
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.transform(X[:40]), projection.transform(X[:40]))
    # the landmarks are stored once, the neighbour index not at all
    assert len(blob) < 2.2 * projection.landmarks_.nbytes + projection.affinity_.data.nbytes * 3
    restored.partial_fit(X[:100])  # and it goes on learning
    assert restored.n_samples_seen_ == len(X) + 100
