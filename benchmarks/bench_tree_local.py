"""What ``tsvq-local`` costs next to ``tsvq`` and PCA: fit, transform, size.

On the Cleaner's output of digits (59 columns) and ``images28`` (784
columns; ``benchmarks/_datasets.py``), float32, k = 32: each projection is
fitted on the cleaned rows, then transforms them tiled to about 20,000 rows
(the median of 7 calls). Printed: seconds, the ratios to ``tsvq``, and the
size of the pickled projection. The accuracies are in
``bench_families.py`` and ``bench_tree_quality.py``; ``--axes 4,8,16``
adds the default classifier's test accuracy at k = 32 for each number of
axes per leaf (``local_components``), on the families benchmark's split
(75/25, stratified, seed 0), the mean over seeds 0-1 (projection and
network).

Run: python benchmarks/bench_tree_local.py [--axes 4,8,16] [--costs | --no-costs]
"""

import argparse
import pickle
import time
import warnings

import numpy as np

from skquant import Cleaner, ColumnProjection, KerasMLPClassifier, TreeProjection

import _datasets
from _common import machine


def median_seconds(call, repeat=7):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def axes_accuracy(counts, seeds=(0, 1)):
    print(f"\n{'set':<10}{'axes per leaf':>14}{'Keras test accuracy (k = 32)':>30}")
    for name in ("digits", "images28"):
        A, B, y_train, y_test = _datasets.cleaned_split(name)
        for count in counts:
            scores = []
            for seed in seeds:
                projection = TreeProjection(32, method="tsvq-local", local_components=count,
                                            random_state=seed).fit(A)
                network = KerasMLPClassifier(random_state=seed).fit(
                    projection.transform(A), y_train)
                scores.append(network.score(projection.transform(B), y_test))
            print(f"{name:<10}{count:>14}{np.mean(scores):>30.4f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--axes", default=None,
                        help="comma-separated local_components to measure accuracy at")
    parser.add_argument("--costs", action=argparse.BooleanOptionalAction, default=True,
                        help="measure fit, transform and size (default: yes)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"machine: {machine()}\n")
    if args.costs:
        costs()
    if args.axes:
        axes_accuracy([int(count) for count in args.axes.split(",")])


def costs():
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
