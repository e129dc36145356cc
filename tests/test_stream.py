"""fit_stream: the whole Pipeline fitted chunk by chunk, its store of the
final step's input, and its bad sources and arguments."""

import os
import tracemalloc
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
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


def _counted(make_chunks):
    """A callable source that counts its calls (reads of the source)."""

    def source():
        source.calls += 1
        return make_chunks()

    source.calls = 0
    return source


def _files_under(directory):
    return sorted(str(path.relative_to(directory))
                  for path in Path(directory).rglob("*") if path.is_file())


class _Watcher(ClassifierMixin, BaseEstimator):
    """A final step that learns nothing: at every partial_fit call it records
    the files under ``directory``, the memory numpy holds (when traced) and,
    with ``keep``, the chunk; it raises on call number ``fail_on``."""

    def __init__(self, directory=None, fail_on=None, keep=False):
        self.directory = directory
        self.fail_on = fail_on
        self.keep = keep

    def partial_fit(self, X, y, classes=None):
        if classes is not None:
            self.classes_ = np.asarray(classes)
        self.calls_ = getattr(self, "calls_", 0) + 1
        if self.directory is not None:
            self.listings_ = [*getattr(self, "listings_", []), _files_under(self.directory)]
        if tracemalloc.is_tracing():
            self.held_ = max(getattr(self, "held_", 0), tracemalloc.get_traced_memory()[0])
        self.X_types_ = {*getattr(self, "X_types_", set()), type(X).__name__}
        if self.keep:
            self.seen_ = [*getattr(self, "seen_", []), (np.array(X), np.array(y))]
        if self.calls_ == self.fail_on:
            raise RuntimeError("stopped mid-training")
        return self


EPOCHS = 10


def _digits_pipeline(**params):
    return make_quant_pipeline("column", 16, random_state=0, classify__epochs=EPOCHS, **params)


@pytest.fixture(scope="module")
def digits_split():
    X, y = _digits()
    return X[:1400], y[:1400], X[1400:], y[1400:]


@pytest.fixture(scope="module")
def in_memory(digits_split):
    X_train, y_train, _, _ = digits_split
    return _digits_pipeline().fit(X_train, y_train)


@pytest.fixture(scope="module")
def streamed(digits_split):
    """The digits pipeline streamed from a callable source, float32 store."""
    X_train, y_train, _, _ = digits_split
    source = _counted(_chunks_of(X_train, y_train, 350))
    pipe, info = fit_stream(_digits_pipeline(), source, random_state=0, return_info=True)
    return pipe, info, source.calls


def test_ten_epochs_read_a_callable_source_three_times(streamed, in_memory, digits_split):
    _, _, X_test, y_test = digits_split
    pipe, info, calls = streamed
    # Cleaner, projection, encode: the epochs read the store, not the source
    assert calls == 3 and info["source_passes"] == 3
    assert info["epochs"] == EPOCHS and pipe[-1].n_iter_ == EPOCHS * 4  # 4 chunks an epoch
    assert info["store"] == "memory" and info["n_rows"] == 1400
    assert info["n_source_columns"] == 64 and info["n_store_columns"] == 16
    # float32 codes of 16 columns and 1-byte labels, against float64 rows of
    # 64 columns and int64 labels
    assert info["store_bytes"] == 1400 * (16 * 4 + 1)
    assert info["raw_bytes"] == 1400 * (64 * 8 + 8)
    # Stated tolerance: two points of test accuracy. The only differences are
    # the row order (chunk by chunk) and the standardization statistics
    # (learned from the first chunk).
    assert pipe.score(X_test, y_test) == pytest.approx(in_memory.score(X_test, y_test), abs=0.02)
    assert pipe.score(X_test, y_test) > 0.9


def test_streamed_pipeline_matches_an_in_memory_fit(tmp_path, in_memory, digits_split):
    X_train, y_train, X_test, y_test = digits_split
    source = _memmap(tmp_path, X_train)
    streamed = fit_stream(_digits_pipeline(), source, y_train, chunk_size=700, random_state=0)
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


def test_an_int8_store_trains_as_well_as_float32(streamed, digits_split):
    X_train, y_train, X_test, y_test = digits_split
    source = _counted(_chunks_of(X_train, y_train, 350))
    pipe, info = fit_stream(_digits_pipeline(), source, random_state=0, store_dtype="int8",
                            return_info=True)
    float32_pipe, float32_info, _ = streamed
    assert source.calls == 3 and info["store_dtype"] == "int8"
    # a byte per value, and per chunk a float32 scale and offset per column
    assert info["store_bytes"] == 1400 * (16 + 1) + 4 * 2 * 16 * 4
    assert info["store_bytes"] < float32_info["store_bytes"] / 3
    # Stated tolerance: one point of test accuracy (each value is within
    # 1/254 of its column's range over the chunk).
    assert pipe.score(X_test, y_test) == pytest.approx(
        float32_pipe.score(X_test, y_test), abs=0.01
    )


def test_a_store_on_disk_gives_the_same_network(tmp_path, streamed, digits_split):
    X_train, y_train, X_test, _ = digits_split
    # one chunk at the source's width is 350 x 64 x 4 bytes
    pipe, info = fit_stream(
        _digits_pipeline(), _chunks_of(X_train, y_train, 350), random_state=0,
        store_budget=350 * 64 * 4, temp_dir=tmp_path, return_info=True,
    )
    assert info["store"] == "memmap"
    assert _files_under(tmp_path) == []  # removed afterwards
    # the same codes, read back from disk: the same network bit for bit
    np.testing.assert_array_equal(pipe.predict_proba(X_test), streamed[0].predict_proba(X_test))


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

    def streamed_peak(n, traced=True):
        pipe = make_quant_pipeline(
            "column", 8, random_state=0, clean__sketch_size=5_000,
            classify__epochs=1, classify__batch_size=512,
        )
        if traced:
            tracemalloc.start()
        try:
            # the least store budget (one chunk at the source's width), so
            # that the store (33 bytes a row) of 48,000 rows or more goes to
            # disk; the memory an in-memory store takes is tested by
            # test_the_store_is_in_memory_up_to_its_budget
            _, info = fit_stream(pipe, X[:n], y[:n], chunk_size=8_000, random_state=0,
                                 store_budget=8_000 * n_features * 4,
                                 temp_dir=tmp_path, return_info=True)
            return tracemalloc.get_traced_memory()[1], pipe, info
        finally:
            tracemalloc.stop()

    # warm-up, untraced (tracing TensorFlow's start-up is slow): first-use
    # allocations (TensorFlow, caches) then count in neither measurement
    streamed_peak(8_000, traced=False)
    peak_half, _, info_half = streamed_peak(n_rows // 2)
    peak_all, pipe, info_all = streamed_peak(n_rows)
    assert info_half["store"] == info_all["store"] == "memmap"
    print(f"peak {peak_half / 2**20:.2f} MiB on {n_rows // 2} rows, "
          f"{peak_all / 2**20:.2f} MiB on {n_rows}")
    # numpy's allocations are traced (TensorFlow's own copy of a chunk is
    # not; nor are the store's file pages). What is held is a chunk (1 MB),
    # the copies each step makes of it, and fixed-size state such as the
    # Cleaner's 5,000-row sample: the 48,000 more rows may cost no more than
    # 2 bytes each (a leak of one float32 per row would cost 4), and the
    # peak stays under the data (12 MB; about 6.3 MB measured).
    assert peak_all - peak_half < 2 * (n_rows - n_rows // 2), (peak_half, peak_all)
    assert peak_all < n_rows * n_features * 4 * 0.75, f"peak {peak_all / 2**20:.1f} MiB"
    assert pipe.score(X[:20_000], y[:20_000]) > 0.95


def test_the_store_is_in_memory_up_to_its_budget(tmp_path):
    rng = np.random.RandomState(4)
    n_rows, n_features, chunk = 48_000, 32, 8_000
    X = _memmap(tmp_path, rng.normal(size=(n_rows, n_features)).astype(np.float32))
    y = np.arange(n_rows) % 3
    store_bytes = n_rows * (n_features * 4 + 1)  # float32 codes, uint8 labels

    def held(budget):
        pipe = make_pipeline(StandardScaler(), _Watcher(directory=tmp_path / "store"))
        (tmp_path / "store").mkdir(exist_ok=True)
        tracemalloc.start()
        try:
            _, info = fit_stream(pipe, X, y, chunk_size=chunk, epochs=2, random_state=0,
                                 store_budget=budget, temp_dir=tmp_path / "store",
                                 return_info=True)
        finally:
            tracemalloc.stop()
        assert info["store_bytes"] == store_bytes
        return pipe[-1], info

    # numpy's allocations while the final step trains: the whole store when
    # it is in memory, a chunk and its shuffled copy (2 MB) when it is on disk
    in_memory, info = held(store_bytes)
    assert info["store"] == "memory" and in_memory.calls_ == 2 * n_rows // chunk
    assert store_bytes < in_memory.held_ < store_bytes + 4 * chunk * n_features * 4
    assert all(listing == [] for listing in in_memory.listings_)
    on_disk, info = held(store_bytes - 1)
    print(f"held while training: {in_memory.held_} bytes (store in memory), "
          f"{on_disk.held_} (on disk), store {store_bytes}")
    assert info["store"] == "memmap"
    assert on_disk.held_ < 4 * chunk * n_features * 4, on_disk.held_
    # a file in temp_dir while training, none afterwards
    assert all(len(listing) == 2 for listing in on_disk.listings_)
    assert _files_under(tmp_path / "store") == []


def test_the_store_on_disk_is_removed_after_an_error(tmp_path):
    X, y = X_SMALL.astype(np.float32), Y_SMALL
    budget = 20 * 5 * 4  # one chunk of 20 rows: the 60 rows' store goes to disk
    # raised while the final step trains
    pipe = make_pipeline(StandardScaler(), _Watcher(directory=tmp_path, fail_on=4))
    with pytest.raises(RuntimeError, match="stopped mid-training"):
        fit_stream(pipe, X, y, chunk_size=20, epochs=3, store_budget=budget, temp_dir=tmp_path)
    assert pipe[-1].calls_ == 4 and len(pipe[-1].listings_[-1]) == 2
    assert _files_under(tmp_path) == []
    # raised by the source while the store is written
    seen = []

    def source():
        seen.append(_files_under(tmp_path))
        yield X[:20], y[:20]
        yield X[20:40], y[20:40]
        if len(seen) == 2:  # the second pass: the one that writes the store
            seen.append(_files_under(tmp_path))
            raise OSError("the disk went away")
        yield X[40:], y[40:]

    pipe = make_pipeline(StandardScaler(), _Watcher())
    with pytest.raises(OSError, match="the disk went away"):
        fit_stream(pipe, source, store_budget=budget, temp_dir=tmp_path)
    assert seen[0] == seen[1] == [] and len(seen[2]) == 2
    assert _files_under(tmp_path) == []


@pytest.mark.parametrize("store_dtype", ["float32", "int8"])
def test_every_epoch_reads_every_stored_row(store_dtype):
    X, y = X_SMALL, np.array(["a", "b", "c"])[Y_SMALL]
    watcher = fit_stream(_Watcher(keep=True), X, y, chunk_size=20, epochs=3, classes=["a", "b", "c"],
                         shuffle=False, store_dtype=store_dtype)
    assert watcher.calls_ == 9 and watcher.X_types_ == {"ndarray"}
    # in the source's order, every epoch alike; labels as they were given
    rows = np.concatenate([X_chunk for X_chunk, _ in watcher.seen_[:3]])
    labels = np.concatenate([y_chunk for _, y_chunk in watcher.seen_[:3]])
    np.testing.assert_array_equal(labels, y)
    if store_dtype == "float32":
        np.testing.assert_array_equal(rows, X.astype(np.float32))
    else:
        # within half a step of each chunk's column range over 254 steps
        for chunk in range(3):
            part = X[20 * chunk : 20 * chunk + 20]
            step = (part.max(axis=0) - part.min(axis=0)) / 254
            error = np.abs(rows[20 * chunk : 20 * chunk + 20] - part)
            assert np.all(error <= step / 2 * (1 + 1e-5) + 1e-6), error.max()
    for epoch in (1, 2):
        again = np.concatenate([X_chunk for X_chunk, _ in watcher.seen_[3 * epoch : 3 * epoch + 3]])
        np.testing.assert_array_equal(again, rows)

    # shuffled: each epoch a new order of the same rows, the same for the same seed
    def epochs(random_state):
        fitted = fit_stream(_Watcher(keep=True), X, y, chunk_size=20, epochs=2, classes=["a", "b", "c"],
                            random_state=random_state, store_dtype=store_dtype)
        return [np.concatenate([X_chunk for X_chunk, _ in fitted.seen_[3 * e : 3 * e + 3]])
                for e in (0, 1)]

    first, second = epochs(0)
    for order in (first, second):
        assert not np.array_equal(order, rows)
        np.testing.assert_array_equal(np.sort(order, axis=0), np.sort(rows, axis=0))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(epochs(0)[1], second)


def test_the_store_keeps_a_dataframe_s_columns():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(X_SMALL, columns=[f"c{i}" for i in range(5)])
    pipe = make_pipeline(StandardScaler(), SGDClassifier(random_state=0))
    pipe.set_output(transform="pandas")
    fit_stream(pipe, X, Y_SMALL, chunk_size=20, epochs=2, random_state=0)
    # as in pipe.fit, the final step learns from DataFrames, and so knows the names
    assert list(pipe[-1].feature_names_in_) == list(X.columns)
    assert pipe.predict(X).shape == (60,)


def test_verbose_reports_the_store_against_the_raw_rows(capsys):
    fit_stream(make_pipeline(StandardScaler(), SGDClassifier(random_state=0)), X_SMALL,
               Y_SMALL, chunk_size=20, epochs=2, store_dtype="int8", verbose=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "[fit_stream] pass 1 over the source", "[fit_stream] pass 2 over the source",
        "[fit_stream] store: 60 rows x 5 columns as int8 in memory, 480 bytes with the labels, "
        "against 2.8 KiB of raw rows and labels",
        "[fit_stream] epoch 1/2", "[fit_stream] epoch 2/2",
    ]
    assert lines[2].endswith("the source was read 2 times")


def test_callable_source_and_generic_steps():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(900, 6))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    pipe = make_pipeline(Cleaner(), StandardScaler(), SGDClassifier(random_state=0))
    source = _counted(_chunks_of(X, y, 200))
    fitted = fit_stream(pipe, source, epochs=5, random_state=0)
    assert fitted is pipe
    assert source.calls == 3  # Cleaner, StandardScaler, encode; the epochs read the store
    assert pipe.score(X, y) > 0.9
    assert set(pipe.classes_) == {"no", "yes"}


def test_a_regressor_gets_no_label_checks():
    rng = np.random.RandomState(3)
    X = rng.normal(size=(800, 4))
    y = X @ [1.0, -2.0, 0.5, 0.0] + 0.01 * rng.normal(size=800)
    pipe = make_pipeline(StandardScaler(), SGDRegressor(random_state=0))
    _, info = fit_stream(pipe, _chunks_of(X, y, 200), epochs=5, random_state=0,
                         return_info=True)
    assert pipe.score(X, y) > 0.95
    assert info["store_bytes"] == 800 * (4 * 4 + 8)  # the targets kept as float64


def test_an_estimator_alone_and_a_classifier_without_steps():
    rng = np.random.RandomState(2)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] > 0).astype(int)
    clf, info = fit_stream(SGDClassifier(random_state=0), X, y, chunk_size=100,
                           random_state=0, return_info=True)
    assert clf.score(X, y) > 0.9
    assert info["source_passes"] == 2  # the labels, then the store
    _, info = fit_stream(clf, X, y, chunk_size=100, classes=[0, 1], return_info=True)
    assert info["source_passes"] == 1  # classes given: the store alone


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
    ({"chunk_size": 0}, r"'chunk_size' parameter of fit_stream must be an int in the range \[1, inf\)"),
    ({"chunk_size": True}, "chunk_size must be a positive integer"),
    ({"epochs": 0}, r"'epochs' parameter of fit_stream must be an int in the range \[1, inf\)"),
    ({"epochs": True}, "epochs must be a positive integer"),
    ({"store_budget": 0}, r"'store_budget' parameter of fit_stream must be an int"),
    ({"store_budget": None}, r"'store_budget' parameter of fit_stream must be an int"),
    ({"store_dtype": "float16"}, r"'store_dtype' parameter of fit_stream must be a str among"),
    ({"temp_dir": 3}, r"'temp_dir' parameter of fit_stream must be an instance of 'str'"),
    ({"shuffle": "yes"}, r"'shuffle' parameter of fit_stream must be an instance of 'bool'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_stream(_cheap_pipeline(), X_SMALL, Y_SMALL, **kwargs)


def _fitted_small_pipeline():
    return make_pipeline(StandardScaler(), SGDClassifier(random_state=0)).fit(X_SMALL, Y_SMALL)


def test_a_store_budget_below_one_chunk_is_refused_before_any_pass():
    pipe = _fitted_small_pipeline()
    scaler = pipe[0]
    # 30 rows x 5 columns of float32 take 600 bytes
    with pytest.raises(ValueError, match=r"store_budget=599 bytes cannot hold one chunk of the "
                       r"store: 30 rows x 5 columns as float32 take 600 bytes\. Raise "
                       r"store_budget to at least 600, or use smaller chunks \(chunk_size\)"):
        fit_stream(pipe, X_SMALL, Y_SMALL, chunk_size=30, store_budget=599)
    # a callable source: its first chunk is read (one call, which the first
    # pass then goes on with), no step learns
    source = _counted(_chunks_of(X_SMALL, Y_SMALL, 30))
    with pytest.raises(ValueError, match=r"as int8 take 150 bytes.*fewer rows per chunk"):
        fit_stream(pipe, source, store_budget=149, store_dtype="int8")
    assert source.calls == 1
    assert pipe[0] is scaler
    pipe.predict(X_SMALL)  # still fitted
    # one chunk is enough; the peeked chunk is not lost to the first pass
    _, info = fit_stream(pipe, source, store_budget=150, store_dtype="int8", return_info=True)
    assert source.calls == 1 + 2 and info["n_rows"] == 60 and info["store"] == "memmap"


@pytest.mark.parametrize("where", ["missing", "a-file"])
def test_a_temp_dir_that_cannot_be_written_is_refused_before_any_pass(tmp_path, where):
    temp_dir = tmp_path / "missing"
    if where == "a-file":
        temp_dir = tmp_path / "a-file"
        temp_dir.write_text("")
    pipe = _fitted_small_pipeline()
    scaler = pipe[0]
    source = _counted(_chunks_of(X_SMALL, Y_SMALL, 30))
    with pytest.raises(ValueError, match=r"temp_dir='.*' cannot be written .*Pass an existing, "
                       "writable directory as temp_dir"):
        fit_stream(pipe, source, temp_dir=temp_dir)
    assert source.calls == 0 and pipe[0] is scaler
    assert sorted(os.listdir(tmp_path)) == ([] if where == "missing" else ["a-file"])


def test_a_read_only_temp_dir_is_refused(tmp_path, monkeypatch):
    import tempfile

    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root writes to a read-only directory: have the write fail as it
        # would for anyone else
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="cannot be written .Permission denied"):
            fit_stream(_cheap_pipeline(), X_SMALL, Y_SMALL, temp_dir=tmp_path)
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize("bad, match", [
    (np.nan, "NaN or infinite values, which store_dtype='int8' cannot code"),
    (1e300, "values beyond float32's range"),
])
@pytest.mark.parametrize("store_dtype", ["float32", "int8"])
def test_a_step_output_the_store_cannot_keep(bad, match, store_dtype):
    X = X_SMALL.copy()
    X[7, 2] = bad
    pipe = make_pipeline(StandardScaler(with_std=False), SGDClassifier(random_state=0))
    if store_dtype == "float32" and np.isnan(bad):
        # float32 keeps NaN: the final step sees it, and says what it thinks
        with pytest.raises(ValueError, match="NaN"):
            fit_stream(pipe, X, Y_SMALL, chunk_size=20, store_dtype=store_dtype)
        return
    with pytest.raises(ValueError, match=r"Chunk 0: the input of the final estimator holds " + match):
        fit_stream(pipe, X, Y_SMALL, chunk_size=20, store_dtype=store_dtype)


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
