"""Distributed search: one grid search on 1 and 2 Dask workers, and the
per-task overhead of joblib's Dask backend against its default (loky).

1. The same GridSearchCV (digits, "column:pca" and "tree:tsvq" at 8, 16 and
   32 dimensions, cv=3: 18 fits and the refit) timed serially in this
   process, then through :func:`skquant.distributed.dask_backend` on a
   LocalCluster of 1 and of 2 single-threaded worker processes. Target: 2
   workers at least 1.6x faster than 1 on this 2-core machine (the
   scheduler and this process share those cores: that is measured too).
   The three searches must give the same best_params_ and mean test scores.
   Each runs twice, on the same process or cluster: the first (cold)
   search also traces each worker's compiled training loops, once per
   network shape and process; the second (warm) reuses them, as every later
   search on a long-lived cluster does. The target is read on the warm one.
2. Milliseconds per task of ``joblib.Parallel(batch_size=1)`` over --tasks
   trivial tasks, with loky (n_jobs=2) and with the 2-worker Dask backend:
   without data, and with one 1 MB array shared by every task.

Run: python benchmarks/bench_distributed.py [--rows 1797] [--epochs 30] [--tasks 400]
"""

import argparse
import time

import joblib
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skquant import make_quant_pipeline, projection_grid
from skquant.distributed import dask_backend
from skquant.neural._backend import load_keras

from _common import best_time, machine


def make_search(epochs):
    return GridSearchCV(
        make_quant_pipeline("column", random_state=0, classify__epochs=epochs),
        projection_grid(["column:pca", "tree:tsvq"], dims=(8, 16, 32), random_state=0),
        cv=3,
    )


def _warm_worker():
    # TensorFlow's import takes seconds per process; it is a one-off cost of
    # a worker, not of a search, so it is paid before the clock starts
    from skquant.neural._backend import load_keras as load, tensorflow_thread_cap

    load()
    return tensorflow_thread_cap()


def identity(i):
    return i


def touch(big, i):
    # reads the shared array, returns a small value: only the argument travels
    return i + int(big.shape[0] > 0)


def timed_fit(search, X, y):
    start = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - start, search


def start_cluster(n_workers):
    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    # a task pinned to each worker loads TensorFlow there, its thread pools
    # sized by the worker's nthreads; the returned caps show it
    caps = client.gather([
        client.submit(_warm_worker, pure=False, workers=[address], allow_other_workers=False)
        for address in client.scheduler_info()["workers"]
    ])
    print(f"{n_workers} worker(s) started, TensorFlow threads per worker: {caps}")
    return cluster, client


def per_task_ms(tasks, big, repeat):
    """{workload: ms per task} under the current joblib backend."""
    workloads = {
        "trivial f(i)": lambda: [joblib.delayed(identity)(i) for i in range(tasks)],
        "1 MB shared f(big, i)": lambda: [joblib.delayed(touch)(big, i) for i in range(tasks)],
    }
    result = {}
    for name, make in workloads.items():
        # a fresh Parallel per call, as a search makes; the first call also
        # starts loky's workers / scatters the array, which is not per-task cost
        run = lambda: joblib.Parallel(batch_size=1)(make())  # noqa: E731
        run()
        seconds, out = best_time(run, repeat=repeat)
        assert out == [i + (name != "trivial f(i)") for i in range(tasks)]
        result[name] = 1000 * seconds / tasks
    return result


def _comparable(params):
    # the "project" value is an estimator, which compares by identity: compare
    # its class and parameters instead
    return {
        key: (type(value).__name__, value.get_params()) if hasattr(value, "get_params") else value
        for key, value in params.items()
    }


def same_results(a, b):
    return _comparable(a.best_params_) == _comparable(b.best_params_) and np.array_equal(
        a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1797)
    # the classifier's default: with cheap fits, 10 epochs left the search
    # mostly fixed costs (tracing, scheduling)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3, help="timings of each overhead run")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X, y = X[: args.rows], y[: args.rows]
    n_fits = sum(len(g["project__n_components"]) for g in make_search(1).param_grid) * 3
    print(f"machine: {machine()}")
    print(f"digits: {len(X)} rows, {n_fits} fits + refit, {args.epochs} epochs each\n")

    load_keras()  # the serial run, too, does not count TensorFlow's import
    # Each process traces a compiled training loop once per network shape
    # (TensorFlow's one-time cost, about a second; see the classifier's
    # Notes), so a process's first search pays it and later ones do not:
    # every setting runs the same search twice, cold then warm.
    times, searches, cold = {}, {}, {}
    cold["serial (this process)"] = timed_fit(make_search(args.epochs), X, y)[0]
    times["serial (this process)"], searches["serial"] = timed_fit(
        make_search(args.epochs), X, y
    )
    overhead = {}
    for n_workers in (1, 2):
        cluster, client = start_cluster(n_workers)
        try:
            with dask_backend(client, scatter=[X, y]):
                label = f"Dask, {n_workers} worker{'s' * (n_workers > 1)}"
                cold[label] = timed_fit(make_search(args.epochs), X, y)[0]
                times[label], searches[n_workers] = timed_fit(make_search(args.epochs), X, y)
            if n_workers == 2:
                # the same cluster the 2-worker search ran on
                big = np.random.default_rng(0).random(2**17)  # 1 MiB of float64
                with joblib.parallel_config(backend="dask", n_jobs=-1, client=client):
                    overhead["dask"] = per_task_ms(args.tasks, big, args.repeat)
        finally:
            client.close()
            cluster.close()
    # loky memmaps arrays over 1e6 bytes (max_nbytes), so it shares `big` too
    with joblib.parallel_config(backend="loky", n_jobs=2):
        overhead["loky"] = per_task_ms(args.tasks, big, args.repeat)

    # GridSearchCV refits the best candidate in this process, after the
    # cross-validation and whatever the backend: the serial part of a search
    refits = {label: search.refit_time_ for label, search in
              zip(times, (searches["serial"], searches[1], searches[2]))}
    print(f"{'grid search':<24}{'cold s':>9}{'warm s':>9}{'vs serial':>11}{'refit s':>9}"
          f"{'CV s':>8}")
    serial = times["serial (this process)"]
    for label, seconds in times.items():
        print(f"{label:<24}{cold[label]:9.2f}{seconds:9.2f}{serial / seconds:10.2f}x"
              f"{refits[label]:9.2f}{seconds - refits[label]:8.2f}")
    speedup = times["Dask, 1 worker"] / times["Dask, 2 workers"]
    cold_speedup = cold["Dask, 1 worker"] / cold["Dask, 2 workers"]
    cv_one = times["Dask, 1 worker"] - refits["Dask, 1 worker"]
    cv_two = times["Dask, 2 workers"] - refits["Dask, 2 workers"]
    print(f"\nspeed-up, 2 workers vs 1 (warm, the second search): {speedup:.2f}x  [>= 1.6]; "
          f"cross-validation alone: {cv_one / cv_two:.2f}x; "
          f"first search on fresh workers: {cold_speedup:.2f}x")
    same = [same_results(searches["serial"], searches[n]) for n in (1, 2)]
    print(f"best_params_ and mean_test_score identical across the three runs: {all(same)}")
    for n, ok in zip((1, 2), same):
        if not ok:  # say how far apart, per fold, to tell noise from a bug
            a, b = (np.array([r.cv_results_[f"split{k}_test_score"] for k in range(3)])
                    for r in (searches["serial"], searches[n]))
            print(f"  {n} worker(s) vs serial: {int((a != b).sum())} of {a.size} fold scores "
                  f"differ, by up to {np.abs(a - b).max():.4f}")
    print(f"best: {searches['serial'].best_params_['project'].method} "
          f"{searches['serial'].best_params_['project__n_components']} dims, "
          f"score {searches['serial'].best_score_:.4f}")

    print(f"\n{'per task, ms (' + str(args.tasks) + ' tasks)':<28}"
          f"{'loky n_jobs=2':>14}{'Dask 2 workers':>16}{'dask/loky':>11}")
    for name in overhead["loky"]:
        loky, dask = overhead["loky"][name], overhead["dask"][name]
        print(f"{name:<28}{loky:14.2f}{dask:16.2f}{dask / loky:10.1f}x")

    verdict = "met" if speedup >= 1.6 else "NOT met"
    print(f"\nverdict: 1.6x target {verdict} ({speedup:.2f}x with 2 Dask workers vs 1, warm)")


if __name__ == "__main__":
    main()
