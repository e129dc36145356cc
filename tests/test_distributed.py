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

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from skquant.distributed import dask_backend, dask_predict  # noqa: E402

X, Y = load_digits(return_X_y=True)
X, Y = X[:360], Y[:360]


def _search():
    return GridSearchCV(
        make_quant_pipeline("column", random_state=0, classify__epochs=2,
                            classify__batch_size=64),
        projection_grid(["column:pca", "tree:tsvq"], dims=(4, 8), random_state=0),
        cv=2,
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
    assert any(isinstance(a, distributed.Future) for a in arguments)
    # the work ran on the cluster, where TensorFlow uses one thread per worker
    threads = client.run(
        lambda: __import__("tensorflow").config.threading.get_intra_op_parallelism_threads()
    )
    assert set(threads.values()) == {1}


def test_a_worker_killed_mid_search_does_not_lose_the_search(client, serial_search):
    pids = client.run(os.getpid)
    outcome = {}

    def run_search():
        try:
            with dask_backend(client, scatter=[X, Y]):
                outcome["search"] = _search().fit(X, Y)
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=run_search)
    thread.start()
    # wait until the workers are busy with the search, then kill one
    deadline = time.monotonic() + 120
    while not any(client.processing().values()):
        assert time.monotonic() < deadline, "the search never reached the workers"
        time.sleep(0.05)
    # the worker holding the most data: without a copy of everything on
    # every worker, it would hold something (fold indices) that only it has
    held = client.has_what()
    victim_address = max(pids, key=lambda address: len(held.get(address, ())))
    victim_pid = pids[victim_address]
    os.kill(victim_pid, signal.SIGKILL)
    thread.join(timeout=600)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    # it completed, with the same results: the scheduler ran the lost tasks
    # again on the other worker, and the nanny restarted the dead one
    _same_results(outcome["search"], serial_search)
    client.wait_for_workers(2, timeout=120)
    assert victim_pid not in client.run(os.getpid).values()


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
