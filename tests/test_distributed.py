"""Grid search and prediction on a real Dask cluster (a LocalCluster with two
worker processes, started here)."""

import os
import signal
import threading
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skquant import make_quant_pipeline, projection_grid, quantize

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from _cluster_gate import Gate  # noqa: E402
from skquant.distributed import _LineageClient, dask_backend, dask_predict  # noqa: E402

X, Y = load_digits(return_X_y=True)
X, Y = X[:360], Y[:360]


def _search(gate=None):
    pipeline = make_quant_pipeline("column", random_state=0, classify__epochs=2,
                                   classify__batch_size=64)
    if gate is not None:  # it holds every fit until the test opens it
        pipeline.steps.insert(0, ("gate", Gate(gate)))
    return GridSearchCV(
        pipeline,
        projection_grid(["column:pca", "tree:tsvq"], dims=(4, 8), random_state=0),
        # one task per worker at a time: then each worker holds fold indices
        # that only its own task needs, and the memory manager soon drops
        # every other copy of them (the case a lost worker used to fail on)
        cv=2, pre_dispatch="n_jobs",
    )


@pytest.fixture(scope="module")
def client():
    # Starting worker processes sets OMP_NUM_THREADS=1 (and MKL's, OpenBLAS's)
    # in this process's environment for good; the processes later tests start
    # would inherit it.
    environment = dict(os.environ)
    try:
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        ) as cluster, distributed.Client(cluster) as client:
            # the workers unpickle the Gate step by importing its module
            client.run(__import__, "_cluster_gate")
            yield client
    finally:
        os.environ.clear()
        os.environ.update(environment)


@pytest.fixture(scope="module")
def serial_search():
    return _search().fit(X, Y)


def _same_results(search, reference):
    assert search.best_params_.keys() == reference.best_params_.keys()
    assert search.best_params_["project__n_components"] == reference.best_params_["project__n_components"]
    assert type(search.best_params_["project"]) is type(reference.best_params_["project"])
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"]
    )


def test_search_on_the_cluster_matches_the_serial_search(client, serial_search, monkeypatch):
    submitted = []
    submit = client.submit

    def spy(*args, **kwargs):
        submitted.append(kwargs.get("tasks", ()))
        return submit(*args, **kwargs)

    monkeypatch.setattr(client, "submit", spy)
    with dask_backend(client, scatter=[X, Y]):
        search = _search().fit(X, Y)
    _same_results(search, serial_search)
    # every task refers to the data on the workers instead of carrying it:
    # no argument of a submitted task is an array of more than a kilobyte
    arguments = [
        value for tasks in submitted for _, args, kwargs in tasks
        for value in list(args) + list(kwargs.values())
    ]
    assert len(submitted) >= 8 and arguments
    assert not [a for a in arguments if isinstance(a, np.ndarray) and a.nbytes > 1000]
    # ... and those copies are dask_backend's, which can be recomputed
    shared = [a for a in arguments if isinstance(a, distributed.Future)]
    assert shared and all(f.key.startswith("skquant-shared-") for f in shared)
    # the work ran on the cluster, where TensorFlow uses one thread per worker
    threads = client.run(
        lambda: __import__("tensorflow").config.threading.get_intra_op_parallelism_threads()
    )
    assert set(threads.values()) == {1}


def _shared_keys(client):
    """Where each object dask_backend shared lives: key -> worker addresses."""
    return {key: set(workers) for key, workers in client.who_has().items()
            if str(key).startswith("skquant-shared-")}


def _wait(condition, what, seconds, thread, outcome):
    """Poll ``condition`` until true; fail at once if the search died."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert "error" not in outcome, f"the search failed: {outcome['error']!r}"
        assert thread.is_alive() or "search" in outcome, "the search thread died"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_shared_data_are_recomputed_when_their_only_copy_is_lost(client):
    # what dask_backend adds to joblib's scatter: every shared object can be
    # rebuilt, so losing the one worker that held it loses nothing
    rows = np.arange(5000.0).reshape(1000, 5)
    [shared] = _LineageClient(client).scatter([rows], broadcast=True, hash=False)
    shared.result(timeout=60)
    [holder] = client.who_has([shared])[shared.key]
    pids = client.run(os.getpid)
    os.kill(pids[holder], signal.SIGKILL)
    total = client.submit(np.sum, shared, pure=False).result(timeout=120)
    assert total == rows.sum()
    assert holder not in client.who_has([shared])[shared.key]
    client.wait_for_workers(2, timeout=120)


def test_a_worker_killed_mid_search_does_not_lose_the_search(client, serial_search, tmp_path):
    gate = tmp_path / "open"
    pids = client.run(os.getpid)
    outcome = {}

    def run_search():
        try:
            with dask_backend(client, scatter=[X, Y]):
                outcome["search"] = _search(str(gate)).fit(X, Y)
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc

    # a daemon thread: if the search hangs, pytest can still exit
    thread = threading.Thread(target=run_search, daemon=True)
    thread.start()
    try:
        # every worker is busy with a fit that waits at the gate
        _wait(lambda: all(client.processing().values()) and len(client.processing()) == 2,
              "both workers to run a fit", 120, thread, outcome)
        # Let Dask's Active Memory Manager run a few times: it drops the
        # replicas no waiting task needs, so that some shared objects (the
        # data, the fold indices) end up on one worker only
        interval = dask.config.get("distributed.scheduler.active-memory-manager.interval")
        time.sleep(3 * dask.utils.parse_timedelta(interval))
        _wait(lambda: any(len(w) == 1 for w in _shared_keys(client).values()),
              "a shared object held by one worker only", 60, thread, outcome)
        held = _shared_keys(client)
        only = {address: [k for k, w in held.items() if w == {address}] for address in pids}
        victim = max(pids, key=lambda address: len(only[address]))
        assert only[victim], held
        os.kill(pids[victim], signal.SIGKILL)
        # the scheduler notices the death (and forgets the copies it held)
        _wait(lambda: victim not in client.ncores(), "the scheduler to see the kill",
              120, thread, outcome)
    finally:
        gate.touch()  # even when failing: let the search end
    thread.join(timeout=300)
    assert not thread.is_alive(), "the search did not finish within 300 s"
    assert "error" not in outcome, repr(outcome.get("error"))
    # it completed, with the same results: the scheduler recomputed the lost
    # objects, ran the lost tasks again on the other worker, and the nanny
    # restarted the dead one
    _same_results(outcome["search"], serial_search)
    client.wait_for_workers(2, timeout=120)
    assert pids[victim] not in client.run(os.getpid).values()


def test_dask_predict_matches_predict(client, serial_search):
    model = serial_search.best_estimator_
    blocks = da.from_array(X, chunks=(100, 32))
    labels = dask_predict(model, blocks)
    assert labels.chunks == ((100, 100, 100, 60),)
    np.testing.assert_array_equal(labels.compute(), model.predict(X))
    quantized = quantize(model, "int8")
    proba = dask_predict(quantized, blocks, method="predict_proba")
    assert proba.shape == (360, 10)
    # float32 arithmetic, whose rounding depends on the block size
    np.testing.assert_allclose(proba.compute(), quantized.predict_proba(X), rtol=1e-5)


def test_dask_predict_bad_input(serial_search):
    model = serial_search.best_estimator_
    with pytest.raises(TypeError, match="X must be a 2-D dask.array.Array, got ndarray"):
        dask_predict(model, X)
    with pytest.raises(AttributeError, match="has no method 'transform'"):
        dask_predict(model, da.from_array(X), method="transform")
    # a column mismatch is caught before anything is computed
    with pytest.raises(ValueError, match="64 features"):
        dask_predict(model, da.from_array(X[:, :10]))


def test_dask_backend_without_a_client(monkeypatch):
    def no_client():
        raise ValueError("No clients found")

    # (the module's cluster would otherwise be the current client)
    monkeypatch.setattr(distributed, "get_client", no_client)
    with pytest.raises(ValueError, match="No Dask client"):
        with dask_backend():
            pass
