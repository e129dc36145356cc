"""Benchmark data sets, all generated or bundled (nothing is downloaded).

- ``digits``: scikit-learn's 8 x 8 digits (1,797 rows, 64 columns).
- ``images28``: the same digits rendered at 28 x 28 with a random rotation,
  shift, stroke width and noise per copy (784 columns, a few thousand
  rows), by :func:`images28`: an image set with the structure of the ones
  users bring (MNIST-like), which no skquant default was tuned on.
- ``breast-cancer``: scikit-learn's breast cancer table (569 rows, 30
  numeric columns on very different scales).
"""

import numpy as np
from scipy import ndimage
from sklearn.datasets import load_breast_cancer, load_digits


def images28(copies=2, random_state=0):
    """The digits rendered at 28 x 28, ``copies`` distorted copies of each.

    Each copy is upsampled (cubic spline) to 20 x 20 and placed in a 28 x 28
    frame, rotated by up to ±15 degrees, shifted by up to ±3 pixels, its
    strokes thickened or thinned (a grey dilation or erosion, or neither),
    and given Gaussian noise (sd 4% of the range), clipped to [0, 1].

    Returns ``(X, y)``: float32 ``(copies * 1797, 784)`` and int labels.
    """
    rng = np.random.RandomState(random_state)
    digits = load_digits()
    images, labels = [], []
    for _ in range(copies):
        for image, label in zip(digits.images, digits.target):
            small = ndimage.zoom(image / 16.0, 2.5, order=3)  # 20 x 20
            frame = np.zeros((28, 28))
            frame[4:24, 4:24] = small
            frame = ndimage.rotate(frame, rng.uniform(-15, 15), reshape=False, order=1)
            frame = ndimage.shift(frame, rng.uniform(-3, 3, size=2), order=1)
            stroke = rng.randint(3)
            if stroke == 1:
                frame = ndimage.grey_dilation(frame, size=(2, 2))
            elif stroke == 2:
                frame = ndimage.grey_erosion(frame, size=(2, 2))
            frame = frame + rng.normal(0, 0.04, frame.shape)
            images.append(np.clip(frame, 0, 1).ravel())
            labels.append(label)
    return np.asarray(images, dtype=np.float32), np.asarray(labels)


def load(name, random_state=0):
    """``(X, y)`` of a named set."""
    if name == "digits":
        return load_digits(return_X_y=True)
    if name == "images28":
        return images28(random_state=random_state)
    if name == "breast-cancer":
        return load_breast_cancer(return_X_y=True)
    raise ValueError(f"unknown data set {name!r}")


def cleaned_split(name):
    """``(C_train, C_test, y_train, y_test)``: a named set split 75/25
    (stratified, seed 0) and cleaned by a Cleaner fitted on the training
    rows, as the family benchmarks compare projections on it."""
    from sklearn.model_selection import train_test_split

    from skquant import Cleaner

    X, y = load(name)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    cleaner = Cleaner().fit(X_train)
    return cleaner.transform(X_train), cleaner.transform(X_test), y_train, y_test


SETS = ("digits", "images28", "breast-cancer")
