"""What the Cleaner's scaling does to each family's accuracy.

For each data set, family and k, the default pipeline (Cleaner ->
projection -> default KerasMLPClassifier) is fitted three ways: without
scaling, with standard scaling and with robust scaling (``clean__scaling``
None, "standard", "robust"), on a 75/25 stratified split, as the mean test
accuracy over ``--seeds`` seeds (the seed drives the split, the projection
and the network). The last column says what ``scaling="auto"`` (the
default) chooses on the set.

Data (nothing downloaded): sklearn's digits (pixels that share one
scale), breast cancer and wine (columns in mixed units), and the numeric
columns of the Palmer penguins (``palmerpenguins``).

Run: python benchmarks/bench_cleaner_scaling.py [--seeds 3] [--sets digits,breast-cancer,wine,penguins]
"""

import argparse
import os
import warnings

import numpy as np
from sklearn.model_selection import train_test_split

from skquant import Cleaner, make_quant_pipeline

import _datasets
from _common import machine

KINDS = ("column:pca", "tree:tsvq", "graph:spectral", "union:pca+spectral")
SCALINGS = (None, "standard", "robust")


def _load(name):
    if name == "wine":
        from sklearn.datasets import load_wine

        return load_wine(return_X_y=True)
    if name == "penguins":
        import palmerpenguins

        frame = palmerpenguins.load_penguins()
        columns = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
        return frame[columns].to_numpy(dtype=float), frame["species"].to_numpy()
    return _datasets.load(name)


def _dims(n_columns):
    if n_columns >= 32:
        return (16, 32)
    if n_columns >= 16:
        return (8, 16)
    return (2, 4)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sets", default="digits,breast-cancer,wine,penguins")
    args = parser.parse_args()
    print(machine())
    print(f"{'set':<14}{'family':<20}{'k':>3}" + "".join(
        f"{str(s):>10}" for s in SCALINGS) + "  auto chooses")
    for name in args.sets.split(","):
        X, y = _load(name)
        chosen = Cleaner().fit(X).scaling_
        for kind in KINDS:
            family, _, method = kind.partition(":")
            for k in _dims(X.shape[1]):
                means = []
                for scaling in SCALINGS:
                    scores = []
                    for seed in range(args.seeds):
                        X_train, X_test, y_train, y_test = train_test_split(
                            X, y, test_size=0.25, stratify=y, random_state=seed)
                        pipe = make_quant_pipeline(family, k, method=method,
                                                   random_state=seed,
                                                   clean__scaling=scaling)
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            scores.append(pipe.fit(X_train, y_train).score(X_test, y_test))
                    means.append(np.mean(scores))
                print(f"{name:<14}{kind:<20}{k:>3}" + "".join(f"{m:>10.4f}" for m in means)
                      + f"  {chosen}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
