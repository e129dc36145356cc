"""The graph family on principal components: landmarks, neighbours, subspace.

For digits and ``images28`` (``benchmarks/_datasets.py``), the Cleaner's
output is projected by ``GraphProjection(k)`` with each setting of
``pca_components`` (None: the raw columns), ``n_neighbors`` and
``n_landmarks`` below, and a 5-NN classifier and the default
KerasMLPClassifier are trained on the projected training rows; the test
accuracies are means over ``--seeds`` seeds (75/25 stratified split, seed 0).
Then the transform time of 20,000 rows and of one row (median of 200 calls)
on digits-like data, for the settings that change it, and of 20,000
images28-like rows (its cleaned rows plus noise) for the default and the
setting that lifts images28 most.

Run: python benchmarks/bench_graph_subspace.py [--seeds 2] [--sets digits,images28]
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier

from skquant import Cleaner, GraphProjection, KerasMLPClassifier

import _datasets
from _common import machine

# (pca_components, n_neighbors, n_landmarks)
SETTINGS = [(None, 10, 2000), (64, 10, 2000), (50, 10, 2000), (64, 6, 3000), (50, 6, 3000),
            (64, 10, 3000), (32, 6, 3000)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--sets", default="digits,images28")
    args = parser.parse_args()
    print(machine())
    warnings.simplefilter("ignore")
    for name in args.sets.split(","):
        C_train, C_test, y_train, y_test = _datasets.cleaned_split(name)
        for pca, neighbours, landmarks in SETTINGS:
            for k in (16, 32):
                knn, keras = [], []
                for seed in range(args.seeds):
                    graph = GraphProjection(k, n_neighbors=neighbours, n_landmarks=landmarks,
                                            pca_components=pca, random_state=seed)
                    Z_train = graph.fit(C_train).transform(C_train)
                    Z_test = graph.transform(C_test)
                    knn.append(KNeighborsClassifier(5).fit(Z_train, y_train).score(Z_test, y_test))
                    keras.append(KerasMLPClassifier(random_state=seed).fit(Z_train, y_train)
                                 .score(Z_test, y_test))
                print(f"{name:<9} pca_components={str(pca):<5} n_neighbors={neighbours:<3} "
                      f"n_landmarks={landmarks:<5} k={k:<3} 5-NN {np.mean(knn):.4f}  "
                      f"Keras {np.mean(keras):.4f}", flush=True)
    X, _ = load_digits(return_X_y=True)
    rng = np.random.RandomState(0)
    rows = X[rng.randint(0, len(X), 20000)] + rng.uniform(0, 0.1, (20000, X.shape[1]))
    for pca, _, landmarks in [(None, 10, 2000), (50, 10, 2000), (50, 10, 3000)]:
        # (digits has 64 columns: pca_components=50 reduces them, 64 leaves them)
        graph = GraphProjection(32, n_landmarks=landmarks, pca_components=pca,
                                random_state=0).fit(rows)
        many, one = [], []
        for _ in range(5):
            start = time.perf_counter()
            graph.transform(rows)
            many.append(time.perf_counter() - start)
        for _ in range(200):
            start = time.perf_counter()
            graph.transform(rows[:1])
            one.append(time.perf_counter() - start)
        print(f"digits-like transform, pca_components={pca}, n_landmarks={landmarks}: "
              f"20,000 rows {min(many):.3f} s, 1 row {1e6 * np.median(one):.0f} us")
    X, _ = _datasets.load("images28")
    cleaned = Cleaner().fit(X).transform(X).astype(np.float32)
    rows = cleaned[rng.randint(0, len(cleaned), 20000)] + rng.normal(
        0, 0.1, (20000, cleaned.shape[1])).astype(np.float32)
    for pca, neighbours, landmarks in [(64, 10, 2000), (32, 6, 3000)]:
        graph = GraphProjection(32, n_neighbors=neighbours, n_landmarks=landmarks,
                                pca_components=pca, random_state=0).fit(rows)
        many = []
        for _ in range(5):
            start = time.perf_counter()
            graph.transform(rows)
            many.append(time.perf_counter() - start)
        print(f"images28-like transform, pca_components={pca}, n_neighbors={neighbours}, "
              f"n_landmarks={landmarks}: 20,000 rows {min(many):.3f} s", flush=True)


if __name__ == "__main__":
    main()
