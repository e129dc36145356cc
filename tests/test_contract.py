"""The contract that every projection method keeps, checked on each one.

The methods come from the registry, ``skquant.pipeline._FAMILIES``, so that
a family registered there is checked here without anyone editing this
module. Every method gets the strictest promise (exact equality) unless one
of the tables below lists it, with the reason; the family modules
(test_column, test_tree, test_graph) keep what is particular to a family:
quality, and the behaviour of its own algorithm.
"""

import importlib
import json
import pickle
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits

from skquant.pipeline import _FAMILIES

KINDS = [f"{family}:{method}" for family, (_, _, methods) in _FAMILIES.items()
         for method in methods]

# A table entry is keyed by "family:method", or by "family" for all of its
# methods; a method listed in no table gets the default.

# partial_fit in several chunks equals fit exactly, except where rounding
# may differ: the column family sums its scatter matrix chunk by chunk, and
# the graph family gathers its landmarks and solves its eigenproblem from
# them (both promise equality "up to floating point rounding").
CHUNKED_TOLERANCE = {
    "column": {"atol": 1e-8},
    "graph": {"rtol": 1e-10, "atol": 1e-10},
    "union": {"atol": 1e-8},  # a column part and a graph part
}

# Methods whose output does not depend on random_state at all; for every
# other method, another seed gives another projection.
SEED_FREE = {"column:pca", "column:qr"}

# Settings under which a method samples its rows (tree growth sample, graph
# landmarks) on the 600 rows used here, so that the seed and the sampling
# path are exercised.
SAMPLING_PARAMS = {
    "tree": {"max_samples": 300},
    "graph": {"n_landmarks": 300},
    "union": {"n_landmarks": 300},
}

N_COMPONENTS = 8
CHUNK = 150


def lookup(table, kind, default=None):
    family = kind.partition(":")[0]
    return table.get(kind, table.get(family, default))


def make(kind, *, n_components=N_COMPONENTS, random_state=0, **params):
    family, _, method = kind.partition(":")
    module, name, _ = _FAMILIES[family]
    cls = getattr(importlib.import_module(module), name)
    return cls(n_components, method=method, random_state=random_state, **params)


def settings(kind):
    """The method's default settings, and its sampling ones where it has them."""
    sampling = lookup(SAMPLING_PARAMS, kind, {})
    return [{}, sampling] if sampling else [{}]


def feed(projection, X, chunk=CHUNK):
    for start in range(0, len(X), chunk):
        projection.partial_fit(X[start : start + chunk])
    return projection


def assert_agree(actual, expected, tolerance):
    """Exact equality where ``tolerance`` is None, else assert_allclose."""
    if tolerance is None:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, **tolerance)


def fitted_values(projection):
    """The public fitted attributes that hold numbers, as arrays."""
    values = {}
    for name in sorted(vars(projection)):
        if not name.endswith("_") or name.startswith("_"):
            continue
        value = vars(projection)[name]
        if scipy.sparse.issparse(value):
            value = value.toarray()
        if isinstance(value, (np.ndarray, int, float, np.number)):
            values[name] = np.asarray(value)
    return values


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:600]


@pytest.fixture
def read_only_rows(digits, tmp_path):
    """The digits as float32 in a read-only np.memmap, as from a file."""
    path = tmp_path / "rows.dat"
    stored = np.memmap(path, dtype=np.float32, mode="w+", shape=digits.shape)
    stored[:] = digits
    stored.flush()
    del stored
    return np.memmap(path, dtype=np.float32, mode="r", shape=digits.shape)


def test_the_registry_lists_every_family_and_the_tables_only_registered_ones():
    assert {"column", "tree", "graph"} <= set(_FAMILIES)
    assert len(KINDS) == len(set(KINDS)) >= 7
    for table in (CHUNKED_TOLERANCE, SEED_FREE, SAMPLING_PARAMS):
        stale = set(table) - set(KINDS) - set(_FAMILIES)
        assert not stale, f"entries for no registered family or method: {stale}"


@pytest.mark.parametrize("kind", KINDS)
def test_partial_fit_in_one_chunk_equals_fit(digits, kind):
    whole = make(kind).fit(digits)
    streamed = make(kind).partial_fit(digits)
    assert streamed.n_samples_seen_ == len(digits)
    np.testing.assert_array_equal(streamed.transform(digits), whole.transform(digits))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", KINDS)
def test_partial_fit_in_chunks_equals_fit(digits, kind, dtype):
    # while every row fits in the family's sample, chunks change nothing
    # but rounding: the transform and every fitted attribute agree
    X = digits.astype(dtype)
    tolerance = lookup(CHUNKED_TOLERANCE, kind)
    whole = make(kind).fit(X)
    chunked = feed(make(kind), X)
    assert chunked.n_samples_seen_ == len(X)
    expected = fitted_values(whole)
    for name in expected:  # read first: derived lazily, before any transform
        getattr(chunked, name)
    actual = fitted_values(chunked)
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        if value.dtype.kind == "f":
            assert_agree(actual[name], value, tolerance)
        else:
            np.testing.assert_array_equal(actual[name], value, err_msg=name)
    assert_agree(chunked.transform(X), whole.transform(X), tolerance)


@pytest.mark.parametrize("kind", KINDS)
def test_transform_of_a_row_does_not_depend_on_the_batch(digits, kind):
    # 40 components: the tree family routes rows through its hyperplane
    # blocks beyond 32 leaves, rather than searching one bucket
    projection = make(kind, n_components=40, **lookup(SAMPLING_PARAMS, kind, {}))
    projection.fit(digits)
    rows = digits[:50]
    together = projection.transform(rows)
    one_by_one = np.vstack([projection.transform(row[None]) for row in rows])
    np.testing.assert_allclose(one_by_one, together, rtol=1e-12, atol=1e-12)
    uneven = np.vstack([projection.transform(rows[a:b])
                        for a, b in [(0, 7), (7, 8), (8, 50)]])
    np.testing.assert_allclose(uneven, together, rtol=1e-12, atol=1e-12)
    if hasattr(projection, "apply"):
        np.testing.assert_array_equal(
            np.concatenate([projection.apply(row[None]) for row in rows]),
            projection.apply(rows))


@pytest.mark.parametrize("fit_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", KINDS)
def test_the_dtype_of_the_input_is_preserved(digits, kind, fit_dtype):
    X = digits.astype(fit_dtype)
    for projection in (make(kind).fit(X), feed(make(kind), X)):
        for dtype in (np.float32, np.float64):
            assert projection.transform(X.astype(dtype)).dtype == dtype


@pytest.mark.parametrize("kind", KINDS)
def test_float32_data_give_nearly_the_float64_projection(digits, kind):
    single = make(kind).fit(digits.astype(np.float32))
    double = make(kind).fit(digits)
    np.testing.assert_allclose(single.transform(digits.astype(np.float32)),
                               double.transform(digits), atol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_output(digits, kind):
    params = lookup(SAMPLING_PARAMS, kind, {})
    output = lambda seed: make(kind, random_state=seed, **params).fit_transform(  # noqa: E731
        digits)
    np.testing.assert_array_equal(output(3), output(3))
    if kind in SEED_FREE:
        np.testing.assert_array_equal(output(4), output(3))
    else:
        assert not np.array_equal(output(4), output(3))


_IN_A_NEW_PROCESS = textwrap.dedent("""
    import importlib, json, pickle, sys
    from sklearn.datasets import load_digits
    X = load_digits().data[:600]
    outputs = {}
    for kind, module, name, params in json.loads(sys.argv[1]):
        cls = getattr(importlib.import_module(module), name)
        outputs[kind] = cls(**params).fit(X).transform(X[:100])
    with open(sys.argv[2], "wb") as file:
        pickle.dump(outputs, file)
""")


def _seeded_params(kind):
    method = kind.partition(":")[2]
    return {"n_components": N_COMPONENTS, "method": method, "random_state": 3,
            **lookup(SAMPLING_PARAMS, kind, {})}


@pytest.fixture(scope="module")
def outputs_of_two_processes(tmp_path_factory):
    """Every method's output in each of two fresh interpreters (another hash
    seed, another ARPACK start vector if anything leaked into it)."""
    spec = [[kind, *_FAMILIES[kind.partition(":")[0]][:2], _seeded_params(kind)]
            for kind in KINDS]
    folder = tmp_path_factory.mktemp("processes")
    paths = [folder / f"run{run}.pickle" for run in range(2)]
    runs = [subprocess.Popen([sys.executable, "-c", _IN_A_NEW_PROCESS, json.dumps(spec),
                              str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
            for path in paths]
    for run in runs:
        _, stderr = run.communicate()
        assert run.returncode == 0, stderr
    outputs = []
    for path in paths:
        with open(path, "rb") as file:
            outputs.append(pickle.load(file))
    return outputs


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_output_across_processes(digits, kind, outputs_of_two_processes):
    first, second = (outputs[kind] for outputs in outputs_of_two_processes)
    np.testing.assert_array_equal(first, second)
    family, _, _ = kind.partition(":")
    module, name, _ = _FAMILIES[family]
    here = getattr(importlib.import_module(module), name)(**_seeded_params(kind))
    np.testing.assert_allclose(here.fit(digits).transform(digits[:100]), first,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_round_trip_after_partial_fit(digits, kind):
    for params in settings(kind):  # within and beyond the sample
        projection = feed(make(kind, **params), digits)
        restored = pickle.loads(pickle.dumps(projection))  # before anything is derived
        assert restored.n_samples_seen_ == len(digits)
        np.testing.assert_array_equal(restored.transform(digits), projection.transform(digits))


@pytest.mark.parametrize("kind", KINDS)
def test_changing_parameters_between_partial_fit_calls_is_refused(digits, kind):
    family, _, method = kind.partition(":")
    projection = make(kind, n_components=4).partial_fit(digits[:100])
    before = projection.transform(digits[:20])
    changes = [{"n_components": 2}, {"random_state": 1}]
    changes += [{"method": other} for other in _FAMILIES[family][2] if other != method][:1]
    for change in changes:
        projection.set_params(**change)
        with pytest.raises(ValueError, match=re.escape(f"{list(change)} changed") + ".* Call fit"):
            projection.partial_fit(digits[100:200])
        projection.set_params(n_components=4, method=method, random_state=0)
        # refused before anything was folded in
        assert projection.n_samples_seen_ == 100
        np.testing.assert_array_equal(projection.transform(digits[:20]), before)
    projection.partial_fit(digits[100:200])  # the original parameters go on
    assert projection.n_samples_seen_ == 200
    projection.set_params(n_components=2).fit(digits)  # fit starts again with the new value
    assert projection.n_components_ == 2
    assert projection.transform(digits).shape == (len(digits), 2)


@pytest.mark.parametrize("kind", KINDS)
def test_read_only_memmap_input(digits, kind, read_only_rows):
    rows, in_memory = read_only_rows, digits.astype(np.float32)
    assert not rows.flags.writeable
    for params in settings(kind):  # within and beyond the sample
        for learn in (lambda p, X: p.fit(X), feed):
            mapped = learn(make(kind, **params), rows)
            reference = learn(make(kind, **params), in_memory)
            assert mapped.n_samples_seen_ == len(rows)
            Z = mapped.transform(rows[:100])
            assert Z.dtype == np.float32
            np.testing.assert_array_equal(Z, reference.transform(in_memory[:100]))
            expected = fitted_values(reference)
            actual = fitted_values(mapped)
            assert actual.keys() == expected.keys()
            for name, value in expected.items():
                np.testing.assert_array_equal(actual[name], value, err_msg=name)
