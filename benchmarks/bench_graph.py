"""GraphProjection against UMAP, Isomap and PCA on digits, and at scale.

Digits (stratified 25% test split, the Cleaner's output), k = 16 and 32:
for GraphProjection(spectral), GraphProjection(lpp), umap.UMAP,
sklearn.manifold.Isomap and ColumnProjection(pca), all in the same run:

- fit seconds (on the training rows) and transform seconds (the test rows),
- test accuracy of a 5-NN classifier and of the default KerasMLPClassifier
  (mean over ``--seeds`` seeds) trained on the projected rows.

UMAP is warmed up once first (numba compiles its kernels on first use), so
its timings are those of a warm process. Targets (the issue's): spectral at
least as accurate as UMAP and Isomap; fit at least 10x faster than UMAP;
transform of the test rows at least 100x faster than UMAP's and 10x faster
than Isomap's.

Scale: 1,000,000 x 50 float32 rows (a 5-dimensional manifold in 50
columns, plus noise), n_landmarks = 2,000: fit time and peak memory of one
``fit`` on all rows, and transform throughput, for both methods.

Needs umap-learn (a benchmark-only dependency: pip install umap-learn).
Run: python benchmarks/bench_graph.py [--seeds 3] [--rows 1000000]
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.manifold import Isomap
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skquant import Cleaner, ColumnProjection, GraphProjection, KerasMLPClassifier

from _common import machine, mib, peak_bytes

DIMS = (16, 32)


def umap_model(k, seed):
    import umap

    return umap.UMAP(n_components=k, random_state=seed)


CANDIDATES = {
    "skquant graph:spectral": lambda k, seed: GraphProjection(k, random_state=seed),
    "skquant graph:lpp": lambda k, seed: GraphProjection(k, method="lpp", random_state=seed),
    "umap.UMAP": umap_model,
    "sklearn Isomap": lambda k, seed: Isomap(n_components=k),
    "skquant column:pca": lambda k, seed: ColumnProjection(k),
}


def digits_run(seeds):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    cleaner = Cleaner().fit(X_train)
    X_train, X_test = cleaner.transform(X_train), cleaner.transform(X_test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        umap_model(2, 0).fit(X_train[:300])  # numba compiles here, not below
    print(f"digits: {len(X_train)} train / {len(X_test)} test rows, "
          f"{X_train.shape[1]} columns after cleaning\n")
    print(f"{'projection':<24}{'k':>4}{'fit s':>9}{'transform s':>13}"
          f"{'5-NN acc':>10}{'Keras acc':>11}")
    results = {}
    for k in DIMS:
        for name, make in CANDIDATES.items():
            model = make(k, 0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                model.fit(X_train)
                fit_seconds = time.perf_counter() - start
                Z_train = model.transform(X_train)
                start = time.perf_counter()
                Z_test = model.transform(X_test)
                transform_seconds = time.perf_counter() - start
            knn = KNeighborsClassifier(5).fit(Z_train, y_train).score(Z_test, y_test)
            keras = np.mean([
                KerasMLPClassifier(random_state=seed).fit(Z_train, y_train).score(Z_test, y_test)
                for seed in range(seeds)
            ])
            results[name, k] = (fit_seconds, transform_seconds, knn, keras)
            print(f"{name:<24}{k:>4}{fit_seconds:>9.3f}{transform_seconds:>13.4f}"
                  f"{knn:>10.4f}{keras:>11.4f}")
        print()
    print("ratios (target in brackets)")
    for k in DIMS:
        ours, umap_, isomap = (results["skquant graph:spectral", k], results["umap.UMAP", k],
                               results["sklearn Isomap", k])
        print(f"  k={k}: 5-NN acc spectral - UMAP {ours[2] - umap_[2]:+.4f}, - Isomap "
              f"{ours[2] - isomap[2]:+.4f}; Keras acc spectral - UMAP {ours[3] - umap_[3]:+.4f},"
              f" - Isomap {ours[3] - isomap[3]:+.4f}  [>= 0]")
        print(f"  k={k}: fit UMAP / spectral {umap_[0] / ours[0]:.1f}x  [>= 10]; transform "
              f"UMAP / spectral {umap_[1] / ours[1]:.0f}x  [>= 100], Isomap / spectral "
              f"{isomap[1] / ours[1]:.1f}x  [>= 10]")


def manifold_rows(n_rows, n_features=50, seed=0):
    """A smooth 5-dimensional manifold embedded in ``n_features`` columns."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((10, n_features)).astype(np.float32)
    X = np.empty((n_rows, n_features), dtype=np.float32)
    for start in range(0, n_rows, 100_000):
        stop = min(start + 100_000, n_rows)
        latent = rng.uniform(-np.pi, np.pi, (stop - start, 5)).astype(np.float32)
        X[start:stop] = np.hstack([np.sin(latent), np.cos(latent)]) @ mixing
        X[start:stop] += 0.05 * rng.standard_normal((stop - start, n_features), dtype=np.float32)
    return X


def scale_run(n_rows):
    X = manifold_rows(n_rows)
    probe = X[:100_000]
    print(f"\nscale: {n_rows} x {X.shape[1]} float32 rows, n_landmarks = 2000, k = 16")
    for method in ("spectral", "lpp"):
        make = lambda: GraphProjection(16, method=method, n_landmarks=2000,  # noqa: E731
                                       random_state=0)
        start = time.perf_counter()
        model = make().fit(X)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        model.transform(probe)
        rate = len(probe) / (time.perf_counter() - start)
        peaks = [mib(peak_bytes(lambda: make().fit(X[:rows]))) for rows in
                 (n_rows // 4, n_rows // 2, n_rows)]
        print(f"  {method:<9} fit {fit_seconds:6.2f} s   transform {rate:12,.0f} rows/s   "
              f"fit peak memory at 1/4, 1/2, all rows: "
              + ", ".join(f"{p:.1f}" for p in peaks) + " MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    digits_run(args.seeds)
    scale_run(args.rows)


if __name__ == "__main__":
    main()
