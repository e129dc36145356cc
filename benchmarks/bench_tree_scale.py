"""TreeProjection(tsvq) against MiniBatchKMeans on a large stream.

1,000,000 x 100 float32 rows fed in 10,000-row chunks, k = 32 and k = 256:

- fit time over the chunks (TreeProjection.partial_fit, including deriving
  the fitted attributes, against MiniBatchKMeans.partial_fit),
- quantization error: mean squared distance of every row to its nearest
  prototype (leaf prototypes for the tree, centres for k-means),
- transform throughput (rows/s) on 200,000 rows,
- peak memory of the chunked fit at a quarter, half and all of the rows
  (it should not grow with the rows),

and the ratios the issue sets as targets. ``random-trees`` is timed too,
for information.

Run: python benchmarks/bench_tree_scale.py [--rows 1000000] [--repeat 3]
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from skquant import TreeProjection

from _common import best_time, machine, mib, peak_bytes

CHUNK = 10_000
N_FEATURES = 100


def make_data(n_rows, n_blobs=500, seed=0):
    """Gaussian blobs of unit spread around 500 centres (spread 3)."""
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((n_blobs, N_FEATURES), dtype=np.float32)
    X = rng.standard_normal((n_rows, N_FEATURES), dtype=np.float32)
    for start in range(0, n_rows, 100_000):
        stop = min(start + 100_000, n_rows)
        X[start:stop] += centres[rng.integers(0, n_blobs, stop - start)]
    return X


def chunked(estimator, X):
    for start in range(0, X.shape[0], CHUNK):
        estimator.partial_fit(X[start : start + CHUNK])
    return estimator


def tree(k, method="tsvq"):
    def fit(X):
        projection = chunked(TreeProjection(k, method=method, random_state=0), X)
        projection.n_components_  # derive the fitted attributes (lazy)
        projection._ensure_finalized()
        return projection
    return fit


def kmeans(k):
    def fit(X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return chunked(MiniBatchKMeans(k, random_state=0, n_init=1), X)
    return fit


def quantization_error(X, centres):
    """Mean squared distance of each row to its nearest centre (float64)."""
    centres = centres.astype(np.float64)
    norms = np.einsum("ij,ij->i", centres, centres)
    total = 0.0
    for start in range(0, X.shape[0], 50_000):
        block = X[start : start + 50_000].astype(np.float64)
        squared = norms - 2 * block @ centres.T
        total += np.sum(np.maximum(squared.min(axis=1) + np.einsum("ij,ij->i", block, block), 0))
    return total / X.shape[0]


def throughput(model, X, repeat):
    seconds, _ = best_time(lambda: model.transform(X), repeat)
    return X.shape[0] / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    X = make_data(args.rows)
    probe = X[:200_000]
    print(f"machine: {machine()}")
    print(f"data: {X.shape[0]} x {X.shape[1]} float32, chunks of {CHUNK} rows\n")
    for k in (32, 256):
        print(f"k = {k}")
        rows = {}
        for name, fit in (
            ("MiniBatchKMeans.partial_fit", kmeans(k)),
            ("TreeProjection(tsvq)", tree(k)),
            ("TreeProjection(random-trees)", tree(k, "random-trees")),
        ):
            seconds, model = best_time(lambda: fit(X), args.repeat)
            centres = getattr(model, "cluster_centers_", None)
            error = quantization_error(X, centres) if centres is not None else float("nan")
            speed = throughput(model, probe, args.repeat)
            rows[name] = (seconds, error, speed)
            print(f"  {name:<30} fit {seconds:7.2f} s  quantization error {error:9.2f}"
                  f"  transform {speed:12,.0f} rows/s")
        anchor, ours = rows["MiniBatchKMeans.partial_fit"], rows["TreeProjection(tsvq)"]
        target = ">= 3" if k == 256 else ">= 1"
        print(f"  fit speed-up over MiniBatchKMeans: {anchor[0] / ours[0]:.2f}x  [{target}]")
        print(f"  quantization error / MiniBatchKMeans: {ours[1] / anchor[1]:.3f}"
              f"  [<= 1.05]")
        print(f"  transform throughput / MiniBatchKMeans: {ours[2] / anchor[2]:.2f}x  [>= 1]")
        print("  chunked fit peak memory against rows (should be flat):")
        for n_rows in (args.rows // 4, args.rows // 2, args.rows):
            part = X[:n_rows]
            ours_peak = peak_bytes(lambda: tree(k)(part))
            anchor_peak = peak_bytes(lambda: kmeans(k)(part))
            print(f"    {n_rows:>9} rows: TreeProjection {mib(ours_peak):7.1f} MiB"
                  f"   MiniBatchKMeans {mib(anchor_peak):7.1f} MiB")
        print()


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.0f} s")
