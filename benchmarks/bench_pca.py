"""ColumnProjection(method="pca") against scikit-learn's PCA solvers.

200,000 x 784 float32 rows, k = 32: fit time, explained variance and peak
memory of

- ColumnProjection(pca) fitted in one call,
- ColumnProjection(pca) fed 10,000-row chunks through partial_fit,
- sklearn PCA() (default solver), PCA(svd_solver="randomized") and
  IncrementalPCA fed the same chunks,

then the ratios the issue sets as targets, and the chunked fit's peak memory
at 50,000 / 100,000 / 200,000 rows (it should not grow with the rows).

Run: python benchmarks/bench_pca.py [--rows 200000] [--repeat 5]
"""

import argparse

import numpy as np
from sklearn.decomposition import PCA, IncrementalPCA

from skquant import ColumnProjection

from _common import best_time, machine, mib, peak_bytes

K, CHUNK = 32, 10_000


def make_data(n_rows, n_features=784, rank=60, seed=0):
    """Low-rank signal plus noise, like flattened images."""
    rng = np.random.default_rng(seed)
    scales = np.linspace(5.0, 0.5, rank).astype(np.float32)
    basis = rng.standard_normal((rank, n_features), dtype=np.float32)
    X = (rng.standard_normal((n_rows, rank), dtype=np.float32) * scales) @ basis
    X += rng.standard_normal((n_rows, n_features), dtype=np.float32)
    X += np.float32(3.0)
    return X


def chunked(estimator, X):
    for start in range(0, X.shape[0], CHUNK):
        estimator.partial_fit(X[start : start + CHUNK])
    return estimator


def chunked_projection(X):
    """The chunked fit, including deriving the components (done on first use)."""
    projection = chunked(ColumnProjection(K), X)
    projection.components_
    return projection


def explained(estimator):
    return float(np.sum(estimator.explained_variance_))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    X = make_data(args.rows)
    print(f"machine: {machine()}")
    print(f"data: {X.shape[0]} x {X.shape[1]} float32, k = {K}, chunks of {CHUNK} rows\n")

    candidates = {
        "skquant ColumnProjection fit": lambda: ColumnProjection(K).fit(X),
        "skquant ColumnProjection partial_fit": lambda: chunked_projection(X),
        "sklearn PCA() default": lambda: PCA(K).fit(X),
        "sklearn PCA(randomized)": lambda: PCA(K, svd_solver="randomized", random_state=0).fit(X),
        "sklearn IncrementalPCA chunks": lambda: chunked(IncrementalPCA(K), X),
    }
    results = {}
    for name, fit in candidates.items():
        repeat = 1 if "Incremental" in name else args.repeat
        seconds, model = best_time(fit, repeat)
        memory = peak_bytes(fit)
        solver = getattr(model, "_fit_svd_solver", getattr(model, "solver_", ""))
        results[name] = (seconds, explained(model), memory)
        print(f"{name:<40} {seconds:8.3f} s  explained variance {explained(model):12.2f}"
              f"  peak {mib(memory):8.1f} MiB  {solver}")

    sklearn_fastest = min(
        (results[n][0], n) for n in ("sklearn PCA() default", "sklearn PCA(randomized)")
    )
    ours_fit, ours_chunked = results["skquant ColumnProjection fit"], results[
        "skquant ColumnProjection partial_fit"]
    ipca = results["sklearn IncrementalPCA chunks"]
    reference = results["sklearn PCA() default"][1]
    print("\nratios (target in brackets)")
    print(f"  fit / fastest sklearn ({sklearn_fastest[1]}): "
          f"{ours_fit[0] / sklearn_fastest[0]:.2f}x  [<= 1.2]")
    print(f"  chunked partial_fit / fastest sklearn: "
          f"{ours_chunked[0] / sklearn_fastest[0]:.2f}x")
    print(f"  IncrementalPCA / chunked partial_fit: {ipca[0] / ours_chunked[0]:.1f}x faster  [>= 100]")
    for name in ("skquant ColumnProjection fit", "skquant ColumnProjection partial_fit",
                 "sklearn PCA(randomized)", "sklearn IncrementalPCA chunks"):
        gap = abs(results[name][1] - reference) / reference
        print(f"  explained variance vs PCA(): {name}: {100 * gap:.4f}%  [<= 0.1%]")

    print("\nchunked partial_fit peak memory against rows (should be flat)")
    for rows in (args.rows // 4, args.rows // 2, args.rows):
        part = X[:rows]
        memory = peak_bytes(lambda: chunked_projection(part))
        print(f"  {rows:>9} rows: {mib(memory):7.1f} MiB")


if __name__ == "__main__":
    main()
