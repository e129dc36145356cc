"""fit_stream: the whole Pipeline fitted chunk by chunk, and its bad sources."""

import tracemalloc

import cloudpickle
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skquant import Cleaner, KerasMLPClassifier, fit_stream, make_quant_pipeline, quantize


def _digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    return X[order], y[order]


def _memmap(tmp_path, X, name="X.npy"):
    array = np.lib.format.open_memmap(tmp_path / name, mode="w+", dtype=X.dtype, shape=X.shape)
    array[:] = X
    array.flush()
    del array
    return np.load(tmp_path / name, mmap_mode="r")


def _chunks_of(X, y, size):
    return lambda: ((X[i : i + size], y[i : i + size]) for i in range(0, len(y), size))


def test_streamed_pipeline_matches_an_in_memory_fit(tmp_path):
    X, y = _digits()
    X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:], y[1400:]
    source = _memmap(tmp_path, X_train)

    def pipeline():
        return make_quant_pipeline("column", 16, random_state=0, classify__epochs=8)

    streamed = fit_stream(pipeline(), source, y_train, chunk_size=700, random_state=0)
    in_memory = pipeline().fit(X_train, y_train)
    # Stated tolerance: two points of test accuracy. The only differences are
    # the row order (chunk by chunk) and the standardization statistics
    # (learned from the first chunk).
    assert streamed.score(X_test, y_test) == pytest.approx(
        in_memory.score(X_test, y_test), abs=0.02
    )
    assert streamed.score(X_test, y_test) > 0.9
    # the streamed Cleaner learned exactly what fit learns (every row fits
    # in its sample)
    reference = Cleaner().fit(X_train)
    np.testing.assert_array_equal(streamed[0].support_, reference.support_)
    np.testing.assert_array_equal(streamed[0].lower_bounds_, reference.lower_bounds_)
    # an ordinary fitted pipeline: it quantizes and predicts unchanged
    quantized = quantize(streamed, "int8")
    assert np.mean(quantized.predict(X_test) == streamed.predict(X_test)) > 0.95
    restored = cloudpickle.loads(cloudpickle.dumps(streamed))
    np.testing.assert_array_equal(restored.predict(X_test), streamed.predict(X_test))


def test_peak_memory_is_set_by_the_chunk_not_the_rows(tmp_path):
    rng = np.random.RandomState(0)
    n_rows, n_features = 96_000, 32
    centres = rng.normal(scale=3.0, size=(4, n_features))
    y = np.arange(n_rows) % 4
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    for start in range(0, n_rows, 24_000):
        rows = slice(start, start + 24_000)
        X[rows] = centres[y[rows]] + rng.normal(size=(24_000, n_features))
    X.flush()
    del X
    X = np.load(path, mmap_mode="r")

    def streamed_peak(n):
        pipe = make_quant_pipeline(
            "column", 8, random_state=0, clean__sketch_size=5_000,
            classify__epochs=1, classify__batch_size=512,
        )
        tracemalloc.start()
        try:
            fit_stream(pipe, X[:n], y[:n], chunk_size=8_000, random_state=0)
            return tracemalloc.get_traced_memory()[1], pipe
        finally:
            tracemalloc.stop()

    streamed_peak(8_000)  # warm-up: first-use allocations (TensorFlow, caches)
    peak_quarter, _ = streamed_peak(n_rows // 4)
    peak_all, pipe = streamed_peak(n_rows)
    print(f"peak {peak_quarter / 2**20:.2f} MiB on {n_rows // 4} rows, "
          f"{peak_all / 2**20:.2f} MiB on {n_rows}")
    # numpy's allocations are traced (TensorFlow's own copy of a chunk is
    # not). What is held is a chunk (1 MB), the copies each step makes of
    # it, and fixed-size state such as the Cleaner's 5,000-row sample: the
    # 72,000 more rows may cost no more than 2 bytes each (a leak of one
    # float32 per row would cost 4), and the peak stays under the data (12 MB;
    # about 6.3 MB measured).
    assert peak_all - peak_quarter < 2 * (n_rows - n_rows // 4), (peak_quarter, peak_all)
    assert peak_all < n_rows * n_features * 4 * 0.75, f"peak {peak_all / 2**20:.1f} MiB"
    assert pipe.score(X[:20_000], y[:20_000]) > 0.95


def test_callable_source_and_generic_steps():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(900, 6))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    pipe = make_pipeline(Cleaner(), StandardScaler(), SGDClassifier(random_state=0))
    fitted = fit_stream(pipe, _chunks_of(X, y, 200), epochs=5, random_state=0)
    assert fitted is pipe
    assert pipe.score(X, y) > 0.9
    assert set(pipe.classes_) == {"no", "yes"}


def test_a_regressor_gets_no_label_checks():
    rng = np.random.RandomState(3)
    X = rng.normal(size=(800, 4))
    y = X @ [1.0, -2.0, 0.5, 0.0] + 0.01 * rng.normal(size=800)
    pipe = make_pipeline(StandardScaler(), SGDRegressor(random_state=0))
    fit_stream(pipe, _chunks_of(X, y, 200), epochs=5, random_state=0)
    assert pipe.score(X, y) > 0.95


def test_an_estimator_alone_and_a_classifier_without_steps():
    rng = np.random.RandomState(2)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] > 0).astype(int)
    clf = fit_stream(SGDClassifier(random_state=0), X, y, chunk_size=100, random_state=0)
    assert clf.score(X, y) > 0.9


def test_same_seed_same_pipeline():
    X, y = _digits()
    X, y = X[:600], y[:600]

    def run():
        # a Cleaner sample smaller than the data: its draw counts too
        pipe = make_quant_pipeline("tree", 8, random_state=0, classify__epochs=1,
                                   clean__sketch_size=100)
        return fit_stream(pipe, X, y, chunk_size=300, random_state=3).predict_proba(X)

    np.testing.assert_array_equal(run(), run())


def test_refitting_starts_afresh():
    X, y = _digits()
    X, y = X[:600], y[:600]
    pipe = make_quant_pipeline("column", 8, random_state=0, classify__epochs=1)
    fit_stream(pipe, X, y, chunk_size=300)
    first = pipe[0]
    fit_stream(pipe, X[:300], y[:300], chunk_size=300)
    assert pipe[0] is not first
    assert pipe[0].n_samples_seen_ == 300 and pipe[-1].n_iter_ == 1


def test_dask_array_source():
    da = pytest.importorskip("dask.array")
    X, y = _digits()
    X, y = X[:600], y[:600]
    pipe = make_quant_pipeline("graph", 8, random_state=0, classify__epochs=2)
    fit_stream(pipe, da.from_array(X, chunks=(200, 32)), da.from_array(y, chunks=200),
               random_state=0)
    assert pipe[1].n_samples_seen_ == 600
    assert pipe.score(X, y) > 0.5


# ----------------------------------------------------------------- bad sources
def _cheap_pipeline():
    return make_quant_pipeline("column", 2, random_state=0, classify__epochs=1)


RNG = np.random.RandomState(0)
X_SMALL = RNG.normal(size=(60, 5))
Y_SMALL = np.arange(60) % 3


def test_a_chunk_with_other_columns():
    def source():
        yield X_SMALL[:30], Y_SMALL[:30]
        yield X_SMALL[30:, :4], Y_SMALL[30:]

    with pytest.raises(ValueError, match=r"Chunk 1 \(pass 1\) has 4 columns, but the first chunk had 5"):
        fit_stream(_cheap_pipeline(), source)


@pytest.mark.parametrize(
    "source, y",
    [
        (lambda: iter(()), None),
        (lambda: iter([(X_SMALL[:0], Y_SMALL[:0])]), None),
        (np.empty((0, 5)), np.empty(0)),
    ],
    ids=["no-chunks", "empty-chunk", "empty-array"],
)
def test_an_empty_source(source, y):
    with pytest.raises(ValueError, match="The source yielded no rows"):
        fit_stream(_cheap_pipeline(), source, y)


def test_a_label_the_first_pass_did_not_see():
    calls = []

    def source():
        calls.append(1)
        labels = Y_SMALL.copy()
        if len(calls) > 1:  # the data changed after the first pass
            labels[-1] = 7
        return iter([(X_SMALL[:30], labels[:30]), (X_SMALL[30:], labels[30:])])

    with pytest.raises(ValueError, match=r"Chunk 1 \(pass 2\) holds label\(s\) \[7\] that the first pass did not include"):
        fit_stream(_cheap_pipeline(), source)


def test_a_label_missing_from_declared_classes():
    with pytest.raises(ValueError, match=r"label\(s\) \[2\] that the classes passed did not include"):
        fit_stream(_cheap_pipeline(), X_SMALL, Y_SMALL, classes=[0, 1], chunk_size=20)


def test_a_source_that_cannot_be_read_again():
    chunks = iter([(X_SMALL, Y_SMALL)])
    with pytest.raises(ValueError, match="yielded no rows on pass 2, after 60 on the first"):
        fit_stream(_cheap_pipeline(), lambda: chunks)


def test_a_source_that_changes_length():
    calls = []

    def source():
        calls.append(1)
        rows = 60 if len(calls) == 1 else 40
        return iter([(X_SMALL[:rows], Y_SMALL[:rows])])

    with pytest.raises(ValueError, match="Pass 2 over the source yielded 40 rows, but the first yielded 60"):
        fit_stream(_cheap_pipeline(), source)


@pytest.mark.parametrize(
    "source, y, error, match",
    [
        (iter([(X_SMALL, Y_SMALL)]), None, TypeError, "can be read only once"),
        ([[1.0, 2.0]], None, TypeError, "Unsupported source list"),
        (X_SMALL[:, 0], Y_SMALL, ValueError, "must be 2-D"),
        (X_SMALL, None, ValueError, "An array source needs its labels"),
        (X_SMALL, Y_SMALL[:10], ValueError, "source has 60 rows but y has 10 labels"),
        (lambda: iter([(X_SMALL, Y_SMALL)]), Y_SMALL, ValueError, "y must be None with a callable"),
        (lambda: iter([X_SMALL]), None, ValueError, r"must be an \(X, y\) pair"),
        (lambda: iter([(X_SMALL, None)]), None, ValueError, "has no labels"),
        (lambda: iter([(X_SMALL, Y_SMALL[:5])]), None, ValueError, "one label per row"),
        (lambda: 5, None, TypeError, "returned int, not an iterable"),
    ],
    ids=["iterator", "list", "1-D", "no-y", "short-y", "y-with-callable", "not-a-pair",
         "no-labels", "label-count", "not-iterable"],
)
def test_bad_sources(source, y, error, match):
    with pytest.raises(error, match=match):
        fit_stream(_cheap_pipeline(), source, y)


def test_a_step_that_cannot_stream_is_refused_before_reading():
    read = []

    def source():
        read.append(1)
        return iter([(X_SMALL, Y_SMALL)])

    pipe = make_quant_pipeline("column", 2, outlier_filter=True)
    with pytest.raises(TypeError, match="Step 'classify' \\(OutlierFilter\\) cannot learn from a stream"):
        fit_stream(pipe, source)
    with pytest.raises(TypeError, match="fit_stream fits a Pipeline or an estimator with partial_fit"):
        fit_stream(LogisticRegression(), source)
    with pytest.raises(ValueError, match="set early_stopping=False"):
        fit_stream(make_quant_pipeline(classify__early_stopping=True), source)
    assert not read


def test_dask_arrays_of_unknown_length():
    da = pytest.importorskip("dask.array")
    blocks = da.from_array(X_SMALL, chunks=20)
    filtered = blocks[blocks[:, 0] > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        fit_stream(_cheap_pipeline(), filtered, Y_SMALL)


def test_array_chunks_have_nearly_equal_sizes():
    from skquant._stream import _ArraySource

    sizes = [len(y) for _, y in _ArraySource(X_SMALL, Y_SMALL, 25).chunks()]
    assert sizes == [30, 30]  # not 25, 25, 10
    sizes = [len(y) for _, y in _ArraySource(X_SMALL, Y_SMALL, 100).chunks()]
    assert sizes == [60]


@pytest.mark.parametrize("kwargs, match", [
    ({"chunk_size": 0}, "chunk_size must be a positive integer"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"epochs": True}, "epochs must be a positive integer"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_stream(_cheap_pipeline(), X_SMALL, Y_SMALL, **kwargs)


def test_keras_partial_fit_contract():
    X, y = _digits()
    X, y = X[:400], y[:400]
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        KerasMLPClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="set early_stopping=False"):
        KerasMLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.arange(10))
    clf = KerasMLPClassifier(random_state=0)
    # a first chunk without class 9 still builds a 10-class network
    clf.partial_fit(X[y != 9], y[y != 9], classes=np.arange(10))
    assert clf.predict_proba(X[:2]).shape == (2, 10)
    with pytest.raises(ValueError, match=r"label\(s\) \[10\] that are not among the classes"):
        clf.partial_fit(X[:5], np.full(5, 10))
    with pytest.raises(ValueError, match="differs from classes_"):
        clf.partial_fit(X, y, classes=np.arange(5))
    with pytest.raises(ValueError, match="X has 63 features"):
        clf.partial_fit(X[:, :63], y)
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    clf.set_params(hidden_layer_sizes=(32,))
    with pytest.raises(ValueError, match=r"\['hidden_layer_sizes'\] changed since the network was built"):
        clf.partial_fit(X, y)
    clf.set_params(hidden_layer_sizes=(64,))

    def run():
        model = KerasMLPClassifier(random_state=0)
        for start in range(0, 400, 100):
            model.partial_fit(X[start:start + 100], y[start:start + 100], classes=np.arange(10))
        return model.predict_proba(X)

    np.testing.assert_array_equal(run(), run())
    # partial_fit after fit continues training the fitted network
    fitted = KerasMLPClassifier(epochs=2, random_state=0).fit(X, y)
    before = fitted.coefs_[0].copy()
    fitted.partial_fit(X, y)
    assert fitted.n_iter_ == 3 and not np.array_equal(before, fitted.coefs_[0])


def test_a_bad_source_leaves_a_fitted_pipeline_as_it_was():
    pipe = make_pipeline(StandardScaler(), SGDClassifier(random_state=0)).fit(X_SMALL, Y_SMALL)
    scaler = pipe[0]
    for source, y in [([[1.0]], None), (X_SMALL, None), (X_SMALL, Y_SMALL[:5])]:
        with pytest.raises((TypeError, ValueError)):
            fit_stream(pipe, source, y)
    assert pipe[0] is scaler
    pipe.predict(X_SMALL)  # still fitted
