"""KerasMLPClassifier's defaults against sklearn's MLPClassifier(64) on digits.

Stratified 25% test split; test accuracy and fit time of both, over several
seeds, and the fit-time ratio. Target: skquant's default at least as
accurate as MLPClassifier(hidden_layer_sizes=(64,)) (about 0.975).

Run: python benchmarks/bench_classifier.py [--seeds 3]
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skquant import KerasMLPClassifier
from skquant.neural._keras import load_keras

from _common import machine


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    load_keras()  # TensorFlow's one-off import is not part of a fit
    print(f"machine: {machine()}")
    print(f"digits: {len(X_train)} train / {len(X_test)} test rows\n")
    rows = {"sklearn MLPClassifier((64,))": [], "skquant KerasMLPClassifier()": []}
    for seed in range(args.seeds):
        for name, model in (
            ("sklearn MLPClassifier((64,))", MLPClassifier((64,), random_state=seed)),
            ("skquant KerasMLPClassifier()", KerasMLPClassifier(random_state=seed)),
        ):
            start = time.perf_counter()
            model.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            rows[name].append((model.score(X_test, y_test), seconds))
    for name, values in rows.items():
        accuracy = np.array([v[0] for v in values])
        seconds = np.array([v[1] for v in values])
        print(f"{name:<30} accuracy {accuracy.mean():.4f} (min {accuracy.min():.4f}, "
              f"seeds {np.round(accuracy, 4).tolist()})  fit {seconds.mean():6.2f} s")
    ours = np.array(rows["skquant KerasMLPClassifier()"])
    anchor = np.array(rows["sklearn MLPClassifier((64,))"])
    print(f"\naccuracy difference (skquant - sklearn): {ours[:, 0].mean() - anchor[:, 0].mean():+.4f}"
          "  [>= 0]")
    print(f"fit-time ratio (skquant / sklearn): {ours[:, 1].mean() / anchor[:, 1].mean():.2f}x")


if __name__ == "__main__":
    main()
