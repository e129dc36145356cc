"""KerasMLPClassifier and the skquant pipeline against scikit-learn's MLP on digits.

Stratified 25% test split, inputs standardized (on the training rows). Two
pairs, fitted in turn within one run so that both sides of a ratio see the
same machine load:

- ``KerasMLPClassifier()`` (defaults) against ``MLPClassifier((64,))``;
- ``make_quant_pipeline("column", 32)`` against
  ``make_pipeline(PCA(32), StandardScaler(), MLPClassifier((64,)))``.

Each is fitted once per seed; the test accuracy is averaged over the seeds.
skquant's first fit of a network shape in a process also traces and
optimizes its compiled training loop (TensorFlow's one-time cost, paid once
per process and shape); it is reported apart from the later fits, which
reuse the loop. TensorFlow's import is not counted. Targets: the classifier
fits in at most 1.0x, the pipeline in at most 1.5x, scikit-learn's time,
with mean accuracy at least scikit-learn's.

Run: python benchmarks/bench_classifier.py [--seeds 3] [--repeats 2]
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skquant import KerasMLPClassifier, make_quant_pipeline
from skquant.neural._backend import load_keras

from _common import machine

PAIRS = {
    "classifier": (
        ("sklearn MLPClassifier((64,))", lambda seed: MLPClassifier((64,), random_state=seed)),
        ("skquant KerasMLPClassifier()", lambda seed: KerasMLPClassifier(random_state=seed)),
        1.0,
    ),
    "pipeline": (
        ("sklearn PCA(32)+Scaler+MLP(64)", lambda seed: make_pipeline(
            PCA(32, random_state=seed), StandardScaler(), MLPClassifier((64,), random_state=seed))),
        ("skquant make_quant_pipeline(column, 32)", lambda seed: make_quant_pipeline(
            "column", 32, random_state=seed)),
        1.5,
    ),
}


def timed_fit(model, X, y):
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds, one fit each")
    parser.add_argument("--repeats", type=int, default=2,
                        help="extra fits per seed and model, timed only")
    args = parser.parse_args()
    # MLPClassifier stops at max_iter=200 on the PCA features; its default
    # is the anchor, so its warning is noise here
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    start = time.perf_counter()
    load_keras()  # TensorFlow's one-off import is not part of a fit
    print(f"machine: {machine()}")
    print(f"TensorFlow import: {time.perf_counter() - start:.2f} s (not counted)")
    print(f"digits: {len(X_train)} train / {len(X_test)} test rows, standardized\n")

    for pair, (anchor, ours, target) in PAIRS.items():
        accuracy = {anchor[0]: [], ours[0]: []}
        seconds = {anchor[0]: [], ours[0]: []}
        first = None
        for seed in range(args.seeds):
            for _ in range(1 + args.repeats):
                for name, make in (anchor, ours):
                    model = make(seed)
                    elapsed = timed_fit(model, X_train, y_train)
                    if name == ours[0] and first is None:
                        first = elapsed  # traces the compiled loop of this shape
                    else:
                        seconds[name].append(elapsed)
                    if len(accuracy[name]) == seed:
                        accuracy[name].append(model.score(X_test, y_test))
        print(f"== {pair} ==")
        for name in (anchor[0], ours[0]):
            acc, sec = np.array(accuracy[name]), np.array(seconds[name])
            print(f"{name:<42} accuracy {acc.mean():.4f} (seeds {np.round(acc, 4).tolist()})"
                  f"  fit {sec.mean():.3f} s (median {np.median(sec):.3f}, n={len(sec)})")
        print(f"{ours[0] + ' first fit':<42} {'':>47}{first:.3f} s (traces the loop)")
        ratio = np.mean(seconds[ours[0]]) / np.mean(seconds[anchor[0]])
        first_ratio = first / np.mean(seconds[anchor[0]])
        difference = np.mean(accuracy[ours[0]]) - np.mean(accuracy[anchor[0]])
        print(f"fit-time ratio skquant/sklearn, later fits: {ratio:.2f}x  [target <= {target}x]")
        print(f"fit-time ratio skquant/sklearn, first fit:  {first_ratio:.2f}x")
        print(f"accuracy difference skquant - sklearn: {difference:+.4f}  [target >= 0]\n")


if __name__ == "__main__":
    main()
