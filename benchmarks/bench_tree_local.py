"""What ``tsvq-local`` costs next to ``tsvq`` and PCA: fit, transform, size.

On the Cleaner's output of digits (59 columns) and ``images28`` (784
columns; ``benchmarks/_datasets.py``), float32, k = 32: each projection is
fitted on the cleaned rows, then transforms them tiled to about 20,000 rows
(the median of 7 calls). Printed: seconds, the ratios to ``tsvq``, and the
size of the pickled projection. The accuracies are in
``bench_families.py`` and ``bench_tree_quality.py``.

Run: python benchmarks/bench_tree_local.py
"""

import pickle
import time
import warnings

import numpy as np

from skquant import Cleaner, ColumnProjection, TreeProjection

import _datasets
from _common import machine


def median_seconds(call, repeat=7):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    warnings.filterwarnings("ignore")
    print(f"machine: {machine()}\n")
    print(f"{'set':<10}{'projection':<13}{'fit s':>8}{'transform ms':>14}{'rows':>7}"
          f"{'fit / tsvq':>12}{'transform / tsvq':>18}{'pickle KB':>11}")
    for name in ("digits", "images28"):
        X, _ = _datasets.load(name)
        A = Cleaner().fit(X).transform(X).astype(np.float32)
        rows = np.tile(A, (max(1, 20000 // len(A)), 1))
        measured = {}
        for label, projection in (
            ("pca", ColumnProjection(32)),
            ("tsvq", TreeProjection(32, random_state=0)),
            ("tsvq-local", TreeProjection(32, method="tsvq-local", random_state=0)),
        ):
            fit = median_seconds(lambda: projection.fit(A), repeat=3)
            projection.transform(rows[:10])  # warm
            transform = median_seconds(lambda: projection.transform(rows))
            measured[label] = fit, transform, len(pickle.dumps(projection)) / 1e3
        for label, (fit, transform, size) in measured.items():
            base_fit, base_transform, _ = measured["tsvq"]
            print(f"{name:<10}{label:<13}{fit:>8.3f}{transform * 1e3:>14.1f}{len(rows):>7}"
                  f"{fit / base_fit:>11.2f}x{transform / base_transform:>17.2f}x{size:>11.0f}")


if __name__ == "__main__":
    main()
