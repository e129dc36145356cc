"""Property-based probes: no estimator returns NaN or infinity, or crashes.

Every probe builds a small array of the kinds that break numerics (NaN,
+-inf, values near the float32 and float64 ranges, subnormals, constant
columns, duplicated rows, few rows, one column; float32, float64 and
integer dtypes), fits an estimator on it (by ``fit`` or by chunks of
``partial_fit``), and transforms it and a second such array. Every outcome
must be one of two:

- a finite output of the right shape, in the input's float dtype;
- a ValueError or TypeError raised by skquant itself, or by scikit-learn's
  validation of the input as skquant calls it: never one from deep inside
  numpy, scipy or scikit-learn ("probabilities contain NaN", "cannot
  reshape array"), nor a numpy RuntimeWarning about overflow.

Probes tried (the examples hypothesis runs; each test checks its count):

- the Cleaner: 1,200;
- each of the seven projections (column pca/qr/random, tree tsvq and
  random-trees, graph spectral/lpp) on finite data: 300 each, 2,100;
- each projection behind a Cleaner, on messy data: 150 each, 1,050;

4,350 in all, plus 10 of the whole pipeline (cheap Keras fits, still the
slowest). Each test counts its probes and fails if fewer ran, or if fewer
than 30% of them gave output (a suite that refused everything would pass
vacuously). The seed is fixed (``derandomize=True``) and no example
database is kept, so every run tries the same probes.

Measured when this was written: of the 4,350 probes, the code before it
returned non-finite output silently in 318, raised from inside numpy,
scipy or scikit-learn in 195, and crashed with other exceptions in 19; now
2,449 give finite output and 1,901 a clear refusal.
"""

import traceback
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skquant import (
    Cleaner,
    ColumnProjection,
    GraphProjection,
    TreeProjection,
    make_quant_pipeline,
)


@pytest.fixture(autouse=True)
def one_thread():
    # the arrays are tiny: BLAS and OpenMP threads (scikit-learn's neighbour
    # search) would only cost their start-up, several times the work on a
    # busy machine
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


N_CLEANER = 1200
N_PROJECTION = 300
N_CHAINED = 150
N_PIPELINE = 10


def fuzz_settings(n):
    return settings(
        max_examples=n, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Values that break numerics, and column-wide magnitudes to scale by.
NON_FINITE = [np.nan, np.inf, -np.inf]
EXTREMES = [
    0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 1.7e308, -1.7e308, 1e154, 3e38, -3e38,
    3.4e38, 1e38, 1e-300, 1e-40, 1e-45, 1e-310, 5e-324, -5e-324,
]
MAGNITUDES = [1.0, 1.0, 1.0, 1e-300, 1e-40, 1e-20, 1e20, 1e38, 1e154, 1e300, 5e-324]
DTYPES = [np.float64, np.float64, np.float32, np.int64]


@st.composite
def arrays(draw, finite=False, min_rows=1, max_rows=14, min_cols=1, max_cols=5, n_cols=None):
    """A small 2-D array with the features that break numerics.

    Hypothesis draws the structure (shape, dtype, magnitudes, how many
    special values, constant columns, duplicated rows) and a seed; the
    values themselves come from numpy's generator with that seed, which is
    many times faster to draw than value by value.
    """
    n_rows = draw(st.integers(min_rows, max_rows))
    if n_cols is None:
        n_cols = draw(st.integers(min_cols, max_cols))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.uniform(-10, 10, size=(n_rows, n_cols))
    with np.errstate(over="ignore"):
        if draw(st.booleans()):  # one magnitude for the whole array ...
            X *= draw(st.sampled_from(MAGNITUDES))
        else:  # ... or one per column
            X *= rng.choice(MAGNITUDES, size=n_cols)
    specials = EXTREMES if finite else EXTREMES + NON_FINITE * 3
    n_special = draw(st.integers(0, 4))
    X[rng.integers(0, n_rows, n_special), rng.integers(0, n_cols, n_special)] = rng.choice(
        specials, size=n_special)
    if draw(st.integers(0, 3)) == 0:  # a constant column
        X[:, rng.integers(0, n_cols)] = rng.choice(EXTREMES)
    if n_rows > 1 and draw(st.integers(0, 3)) == 0:  # duplicated rows
        X[rng.integers(1, n_rows):] = X[0]
    dtype = draw(st.sampled_from(DTYPES))
    if dtype == np.int64:
        X = np.clip(np.nan_to_num(X, nan=0.0), -2.0**62, 2.0**62).astype(np.int64)
    elif dtype == np.float32:
        if finite:
            largest = np.finfo(np.float32).max
            X = np.clip(X, -largest, largest)
        with np.errstate(over="ignore"):
            X = X.astype(np.float32)
    if finite and X.dtype.kind == "f":
        largest = np.finfo(X.dtype).max
        X = np.nan_to_num(X, nan=0.0, posinf=largest, neginf=-largest)
    return X


# numpy's own messages for what skquant must catch first
_INTERNAL_MESSAGES = ("probabilities contain NaN", "cannot reshape", "array must not contain")
_VALIDATION_FILES = ("sklearn/utils/validation.py", "sklearn/utils/_param_validation.py")


def assert_clear_error(exc):
    """The error is skquant's, or scikit-learn's check of the input itself."""
    assert isinstance(exc, (ValueError, TypeError)), repr(exc)
    message = str(exc)
    assert not any(text in message for text in _INTERNAL_MESSAGES), message
    frames = traceback.extract_tb(exc.__traceback__)
    origin = frames[-1].filename.replace("\\", "/")
    ours = [frame.filename for frame in frames if "/skquant/" in frame.filename.replace("\\", "/")]
    if "/skquant/" in origin:
        return
    assert origin.endswith(_VALIDATION_FILES), (
        f"{type(exc).__name__} raised in {origin}, not by skquant: {message}")
    # scikit-learn's validation of the caller's own X, as skquant calls it
    # (validate_numeric), or of the parameters (before skquant's code runs)
    assert not ours or ours[-1].endswith("_validation.py"), (
        f"scikit-learn's validation failed on skquant's internal data: {message}")


def outcome(run, refusals, check_dtype=True):
    """'finite' or 'refused' (its message added to ``refusals``): anything
    else fails the probe."""
    with warnings.catch_warnings():
        # numpy's overflow warnings must not reach the user; skquant's own
        # advice (fewer leaves, a disconnected graph) may
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            results = run()
        except (ValueError, TypeError) as exc:
            assert_clear_error(exc)
            refusals.append(str(exc))
            return "refused"
    for X, Z, width in results:
        assert Z.shape == (X.shape[0], width), (Z.shape, X.shape, width)
        if check_dtype:
            assert Z.dtype == (X.dtype if X.dtype.kind == "f" else np.float64), (
                Z.dtype, X.dtype)
        assert np.isfinite(Z).all(), (X, Z)
    return "finite"


def fit_by(estimator, X, chunks):
    """``fit``, or ``partial_fit`` on ``chunks`` consecutive slices."""
    if chunks == 1:
        return estimator.fit(X)
    for rows in np.array_split(np.arange(X.shape[0]), chunks):
        if rows.size:
            estimator.partial_fit(X[rows])
    return estimator


PROJECTIONS = {
    "pca": lambda k, seed: ColumnProjection(k, method="pca", random_state=seed),
    "qr": lambda k, seed: ColumnProjection(k, method="qr", random_state=seed),
    "random": lambda k, seed: ColumnProjection(k, method="random", random_state=seed),
    "tsvq": lambda k, seed: TreeProjection(k, max_samples=8, random_state=seed),
    "random-trees": lambda k, seed: TreeProjection(
        k, method="random-trees", n_estimators=3, max_depth=3, max_samples=8,
        random_state=seed),
    "spectral": lambda k, seed: GraphProjection(
        k, n_neighbors=3, n_landmarks=10, random_state=seed),
    "lpp": lambda k, seed: GraphProjection(
        k, method="lpp", n_neighbors=3, n_landmarks=10, random_state=seed),
}


def report(name, outcomes, expected, refusals):
    reasons = Counter(text.split(":")[0][:70] for text in refusals)
    print(f"{name}: {sum(outcomes.values())} probes, {dict(outcomes)}; refused: "
          f"{reasons.most_common(6)}")
    assert sum(outcomes.values()) >= expected, outcomes
    # not a vacuous pass: most probes produce output
    assert outcomes["finite"] >= 0.3 * expected, outcomes


def test_cleaner():
    outcomes = Counter()

    @fuzz_settings(N_CLEANER)
    @given(
        X=arrays(max_rows=12),
        other=st.data(),
        strategy=st.sampled_from(["median", "mean", "most_frequent", "constant"]),
        clip=st.sampled_from([None, 0.001, 0.25]),
        threshold=st.sampled_from([0.0, 1e-3]),
        chunks=st.sampled_from([1, 1, 2, 3]),
        sketch_size=st.sampled_from([2, 3, 100_000]),
        fill=st.sampled_from([0.0, 1e300, -3e38]),
        scaling=st.sampled_from(["auto", None, "standard", "robust"]),
    )
    def probe(X, other, strategy, clip, threshold, chunks, sketch_size, fill, scaling):
        X_new = other.draw(arrays(n_cols=X.shape[1], max_rows=4))

        def run():
            cleaner = Cleaner(strategy=strategy, clip_quantile=clip, fill_value=fill,
                              variance_threshold=threshold, sketch_size=sketch_size,
                              scaling=scaling, random_state=0)
            fit_by(cleaner, X, chunks)
            width = int(cleaner.support_.sum())
            for name in ("statistics_", "lower_bounds_", "upper_bounds_"):
                kept = getattr(cleaner, name)[cleaner.support_]
                assert not np.isnan(kept).any(), (name, kept)
            assert np.isfinite(cleaner.statistics_[cleaner.support_]).all()
            if cleaner.scaling_ is not None:
                assert np.isfinite(cleaner.center_).all() and (cleaner.scale_ > 0).all()
                assert np.isfinite(cleaner.scale_).all()
            return [(A, cleaner.transform(A), width) for A in (X, X_new)]

        outcomes[outcome(run, refusals)] += 1

    refusals = []
    probe()
    report("Cleaner", outcomes, N_CLEANER, refusals)


@pytest.mark.parametrize("method", list(PROJECTIONS))
def test_projection(method):
    outcomes = Counter()

    @fuzz_settings(N_PROJECTION)
    @given(
        X=arrays(finite=True),
        other=st.data(),
        n_components=st.integers(1, 3),
        chunks=st.sampled_from([1, 1, 2]),
    )
    def probe(X, other, n_components, chunks):
        X_new = other.draw(arrays(finite=True, n_cols=X.shape[1], max_rows=4))

        def run():
            projection = fit_by(PROJECTIONS[method](n_components, 0), X, chunks)
            return [(A, projection.transform(A), projection.n_components_) for A in (X, X_new)]

        outcomes[outcome(run, refusals)] += 1

    refusals = []
    probe()
    report(method, outcomes, N_PROJECTION, refusals)


@pytest.mark.parametrize("method", list(PROJECTIONS))
def test_projection_behind_a_cleaner(method):
    # what a pipeline does: messy data, cleaned, then projected; the
    # projection must never ask for a Cleaner that is already there
    outcomes = Counter()

    @fuzz_settings(N_CHAINED)
    @given(X=arrays(min_rows=2), other=st.data(), n_components=st.integers(1, 2))
    def probe(X, other, n_components):
        X_new = other.draw(arrays(n_cols=X.shape[1], max_rows=4))

        def run():
            cleaner = Cleaner(random_state=0).fit(X)
            projection = PROJECTIONS[method](n_components, 0).fit(cleaner.transform(X))
            results = []
            for A in (X, X_new):
                Z = projection.transform(cleaner.transform(A))
                results.append((A, Z, projection.n_components_))
            return results

        outcomes[outcome(run, refusals)] += 1

    refusals = []
    probe()
    report(f"Cleaner -> {method}", outcomes, N_CHAINED, refusals)
    assert not [text for text in refusals if "Cleaner()" in text], refusals


def test_pipeline():
    outcomes = Counter()
    kinds = [("column", "pca"), ("column", "qr"), ("tree", "tsvq"),
             ("tree", "random-trees"), ("graph", "spectral"), ("graph", "lpp")]

    @fuzz_settings(N_PIPELINE)
    @given(X=arrays(min_rows=8, max_rows=14, min_cols=2, max_cols=4),
           kind=st.sampled_from(kinds))
    def probe(X, kind):
        y = np.arange(X.shape[0]) % 2

        def run():
            family, method = kind
            pipe = make_quant_pipeline(
                family, 1, method=method, random_state=0, classify__epochs=1,
                classify__hidden_layer_sizes=(4,), classify__batch_size=8,
            )
            if family == "graph":
                pipe.set_params(project__n_neighbors=3)
            if method == "random-trees":
                pipe.set_params(project__n_estimators=3)
            pipe.fit(X, y)
            proba = pipe.predict_proba(X)
            return [(X, proba, 2)]

        outcomes[outcome(run, refusals, check_dtype=False)] += 1

    refusals = []
    probe()
    print(f"pipeline: {sum(outcomes.values())} probes, {dict(outcomes)}; refused: "
          f"{[text[:90] for text in refusals]}")
    assert sum(outcomes.values()) >= N_PIPELINE
    assert not [text for text in refusals if "Cleaner()" in text], refusals
