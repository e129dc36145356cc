"""Scale out on a Dask cluster: search through joblib's Dask backend, and
predict a Dask array block by block.

Dask is an optional dependency (``pip install "skquant[distributed]"``),
imported only when these functions run.

A grid search runs on the cluster through joblib, the way every
scikit-learn search does: each candidate fit is a task, and joblib's Dask
backend already sends large arguments (the training data) to the cluster
once rather than with every task. What skquant adds:

- :func:`dask_backend` makes the backend the default inside a ``with``
  block, and gives every object the backend shares with the tasks (the
  data, the fold indices) lineage: it is the result of a task whose input
  the scheduler keeps, so a copy lost with a worker is recomputed. (joblib
  scatters them, and scattered data cannot be recovered: with Dask's Active
  Memory Manager dropping spare copies every few seconds, the loss of the
  one worker left holding them failed the search with a bare
  ``FutureCancelledError``.) The price is one copy of the shared data on
  the scheduler for as long as the search runs;
- every skquant estimator pickles through cloudpickle (Dask's serializer),
  fitted or not, and a pickled KerasMLPClassifier does not import
  TensorFlow until it is used;
- in a Dask worker, TensorFlow uses as many threads as the worker has
  (``nthreads``) rather than one per core, so that several worker processes
  on one machine do not oversubscribe it (``SKQUANT_TF_THREADS`` overrides).

Results are reproducible (the same search gives the same scores on the
cluster as in one process) with one thread per worker process
(``threads_per_worker=1``): fits running side by side in threads of one
process share TensorFlow's process-wide seeds.

If a worker dies during a search, at any moment, the scheduler recomputes
what it held, runs its tasks again on the others (and a nanny restarts it):
the search completes with the same results. What cannot be survived: the
loss of the scheduler or of the client process (they hold the shared data
and the search), and a task that kills its worker again and again (three
times, Dask's ``distributed.scheduler.allowed-failures``), which ends the
search with Dask's ``KilledWorker`` error.
"""

import contextlib
import uuid
import warnings

import numpy as np

from ._stream import _is_dask_array

_INSTALL = 'Install Dask with: pip install "skquant[distributed]".'


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"skquant.distributed needs dask.distributed. {_INSTALL}") from exc
    return distributed


@contextlib.contextmanager
def dask_backend(client=None, *, scatter=None, n_jobs=-1):
    """Run joblib's parallel work, such as a grid search, on a Dask cluster.

    Inside the ``with`` block, every :class:`~sklearn.model_selection.GridSearchCV`
    (or anything else parallelized with joblib) whose ``n_jobs`` is None
    uses every worker thread of the cluster.

    Parameters
    ----------
    client : distributed.Client or None, default=None
        The cluster's client; None takes the current one
        (``distributed.get_client()``).
    scatter : list of array-like or None, default=None
        The data the tasks share (the ``X`` and ``y`` passed to ``fit``),
        sent to the cluster once, up front. Without it, each large argument
        is sent when the first task that needs it is submitted. Either way
        the tasks refer to the data on the cluster instead of carrying them,
        workers fetch them from each other as needed, and a copy lost with
        a worker is recomputed from the scheduler's.
    n_jobs : int, default=-1
        joblib's default ``n_jobs`` inside the block; -1 uses every worker
        thread.

    Yields
    ------
    client : distributed.Client
        The client in use.

    Raises
    ------
    ImportError
        If dask.distributed is not installed.
    ValueError
        If there is no client, or the cluster has no worker.

    See Also
    --------
    dask_predict : prediction over a Dask array, block by block.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import GridSearchCV
    >>> from distributed import Client, LocalCluster
    >>> from skquant import make_quant_pipeline
    >>> from skquant.distributed import dask_backend
    >>> X, y = load_digits(return_X_y=True)
    >>> X, y = X[:300], y[:300]
    >>> search = GridSearchCV(
    ...     make_quant_pipeline("column", random_state=0, classify__epochs=2),
    ...     {"project__n_components": [8, 16]}, cv=2)
    >>> with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
    ...                   dashboard_address=None) as cluster, Client(cluster) as client:
    ...     with dask_backend(client, scatter=[X, y]):
    ...         search = search.fit(X, y)
    >>> sorted(search.best_params_)
    ['project__n_components']
    """
    import joblib

    distributed = _import_distributed()
    if client is None:
        try:
            client = distributed.get_client()
        except ValueError:
            raise ValueError(
                "No Dask client: pass client=, or create one first "
                "(distributed.Client(address) or Client(LocalCluster()))."
            ) from None
    if not client.ncores():
        raise ValueError(
            f"The Dask cluster at {client.scheduler.address} has no worker; start "
            "workers before searching."
        )
    scatter = None if scatter is None else list(scatter)
    with joblib.parallel_config(
        backend="dask", n_jobs=n_jobs, client=_LineageClient(client), scatter=scatter
    ):
        yield client


def _recipe(value):
    """The task that holds a shared object on the cluster: it returns its
    argument, so the scheduler keeps the object as the task's input and can
    run the task again if every copy of the result is lost."""
    return value


class _LineageClient:
    """A Dask client, as joblib's Dask backend sees it: what it scatters can
    be recomputed.

    joblib scatters the data named by ``scatter`` and each large argument of
    the tasks (GridSearchCV's fold indices, or the data when ``scatter`` does
    not name it) with ``Client.scatter``. Scattered data have no lineage:
    once the last worker holding them dies, they are gone for good, and every
    task that needs them fails with ``FutureCancelledError``. Copying them to
    every worker (``broadcast=True``) does not help, because Dask's Active
    Memory Manager drops the replicas that no waiting task needs within
    seconds. Here each object becomes the result of a tiny task that returns
    it: the scheduler keeps the object as that task's input, Dask places and
    moves the result like any other, and a lost result is recomputed from the
    scheduler's copy.
    """

    def __init__(self, client):
        self._client = client
        # The data ride in the task on purpose, once: that copy is what makes
        # them recoverable, so distributed's advice against large graphs does
        # not apply. (A filter set once, not catch_warnings around each
        # submit: joblib scatters from the client's event-loop thread, and
        # catch_warnings is not thread-safe.)
        warnings.filterwarnings(
            "ignore", message="Sending large graph", category=UserWarning,
            module="distributed.client")

    def _hold(self, value):
        return self._client.submit(
            _recipe, value, key=f"skquant-shared-{uuid.uuid4().hex}", pure=False)

    def scatter(self, data, asynchronous=False, **_):
        # broadcast=, hash= and direct= are Client.scatter's placement and
        # naming options; the tasks here are placed by the scheduler
        if isinstance(data, (list, tuple)):
            futures = [self._hold(value) for value in data]
        else:
            futures = self._hold(data)
        if asynchronous:
            async def ready():
                return futures

            return ready()
        return futures

    def __getattr__(self, name):
        return getattr(self._client, name)


def _apply_block(block, estimator, method, empty):
    if block.shape[0] == 0:  # dask allows empty blocks; estimators do not
        return empty
    return getattr(estimator, method)(block)


def dask_predict(estimator, X, *, method="predict"):
    """Apply a fitted estimator to a Dask array, block by block, lazily.

    Each row block is predicted on the worker that holds it, with the
    estimator sent to each worker once. Works with a fitted Pipeline, a
    :class:`QuantizedPipeline` (numpy only: no TensorFlow on the workers),
    or any estimator with the method.

    Parameters
    ----------
    estimator : fitted estimator
        What predicts.
    X : dask.array.Array of shape (n_samples, n_features)
        The rows. Blocks split across columns are joined first.
    method : str, default="predict"
        The estimator's method to apply: ``"predict"``, ``"predict_proba"``,
        ``"predict_log_proba"``, ``"decision_function"`` or ``"transform"``.

    Returns
    -------
    result : dask.array.Array
        ``(n_samples,)`` for ``predict``, ``(n_samples, n_outputs)`` for the
        others, chunked by row like ``X``; call ``.compute()`` for numpy.

    Raises
    ------
    TypeError
        If ``X`` is not a 2-D Dask array.
    AttributeError
        If the estimator has no such method.

    See Also
    --------
    dask_backend : grid search on a Dask cluster.
    skquant.fit_stream : fit from data larger than memory.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skquant.distributed import dask_predict
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticRegression(max_iter=500).fit(X, y)
    >>> labels = dask_predict(model, da.from_array(X, chunks=(50, 4)))
    >>> labels.chunks
    ((50, 50, 50),)
    >>> bool((labels.compute() == model.predict(X)).all())
    True
    """
    if not _is_dask_array(X) or X.ndim != 2:
        raise TypeError(
            f"X must be a 2-D dask.array.Array, got {type(X).__name__}"
            + (f" with shape {X.shape}" if hasattr(X, "shape") else "")
            + "; wrap a numpy array with dask.array.from_array(X, chunks=...)."
        )
    if not callable(getattr(estimator, method, None)):
        raise AttributeError(
            f"{type(estimator).__name__} has no method {method!r} to apply."
        )
    import dask

    # one row of zeros shows the output's shape and dtype (and any mismatch
    # in the columns) before anything is computed
    probe = np.asarray(getattr(estimator, method)(np.zeros((1, X.shape[1]), dtype=X.dtype)))
    dtype = probe.dtype
    if method == "predict" and hasattr(estimator, "classes_"):
        dtype = np.asarray(estimator.classes_).dtype  # (a string label's width)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    empty = np.empty((0,) + probe.shape[1:], dtype=dtype)
    # one graph node holds the estimator, which every block task refers to
    # (not pure: tokenizing would pickle the whole estimator once more)
    shared = dask.delayed(estimator, pure=False, traverse=False)
    if probe.ndim == 1:
        return X.map_blocks(
            _apply_block, shared, method, empty, drop_axis=1, dtype=dtype, meta=empty
        )
    return X.map_blocks(
        _apply_block, shared, method, empty,
        chunks=(X.chunks[0],) + probe.shape[1:], dtype=dtype, meta=empty,
    )
