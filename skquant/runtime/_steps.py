"""The numpy steps a quantized pipeline runs: cleaning, every projection
family, and the classifier's forward pass.

Each step is built from plain arrays (see ``skquant.quantize`` for how a
fitted estimator becomes them) and computes in float32; weight matrices may
be stored as int8 (one scale per output row) or float16 and are expanded
once, when the artifact is loaded. This module imports numpy alone.
"""

import numpy as np


def restore(arrays, name):
    """An array as stored by ``skquant.quantize``, back in float32 (or as is,
    for integer index arrays)."""
    if f"{name}.q" in arrays:  # int8, symmetric, one scale per row
        codes = arrays[f"{name}.q"].astype(np.float32)
        return codes * arrays[f"{name}.scale"].astype(np.float32)[:, None]
    array = arrays[name]
    return array.astype(np.float32) if array.dtype.kind == "f" else array


class Clean:
    """Impute NaN and infinity, keep the informative columns, clip."""

    def __init__(self, params, get):
        self.keep = get("keep").astype(np.intp)
        self.fill = get("fill")
        self.lower, self.upper = get("lower"), get("upper")

    def __call__(self, X):
        kept = X[:, self.keep]
        kept = np.where(np.isfinite(kept), kept, self.fill)
        return np.clip(kept, self.lower, self.upper, out=kept)


class Linear:
    """``(x - mean) @ components.T``: PCA, random projection, LPP."""

    def __init__(self, params, get):
        self.mean, self.components = get("mean"), get("components")

    def __call__(self, X):
        return (X - self.mean) @ self.components.T


class Select:
    """Keep some columns (pivoted-QR selection)."""

    def __init__(self, params, get):
        self.columns = get("columns").astype(np.intp)

    def __call__(self, X):
        return X[:, self.columns]


class Closeness:
    """TSVQ: negative distance to every leaf prototype, in units of scale."""

    def __init__(self, params, get):
        self.origin, self.prototypes = get("origin"), get("prototypes")
        self.norms = np.einsum("ij,ij->i", self.prototypes, self.prototypes)
        self.factor = np.float32(-1.0 / params["scale"])

    def __call__(self, X):
        centred = X - self.origin
        squared = centred @ (-2.0 * self.prototypes.T)
        squared += self.norms
        squared += np.einsum("ij,ij->i", centred, centred)[:, None]
        np.maximum(squared, 0, out=squared)
        np.sqrt(squared, out=squared)
        squared *= self.factor
        return squared


class RandomTrees:
    """Random-trees embedding: each tree's leaf row of a lookup table, summed."""

    def __init__(self, params, get):
        self.feature = get("feature").astype(np.intp)
        self.threshold = get("threshold")  # float32, rounded down: exact for float32 x
        self.children = get("children").astype(np.intp)
        self.leaf_row = get("leaf_row").astype(np.intp)
        self.roots = get("roots").astype(np.intp)
        self.depth = int(params["depth"])
        self.lookup = np.ascontiguousarray(get("lookup").T)  # stored one row per output
        self.shift = get("shift")

    def __call__(self, X):
        X = X.astype(np.float32)  # scikit-learn's trees compare float32 inputs
        rows = np.arange(X.shape[0])
        out = np.empty((X.shape[0], self.lookup.shape[1]), dtype=np.float32)
        out[:] = -self.shift
        for root in self.roots:
            node = np.full(X.shape[0], root)
            for _ in range(self.depth):
                internal = self.feature[node] >= 0
                if not internal.any():
                    break
                feature = np.where(internal, self.feature[node], 0)
                right = X[rows, feature] > self.threshold[node]
                node = np.where(internal, self.children[node, right.astype(np.intp)], node)
            out += self.lookup[self.leaf_row[node]]
        return out


def nearest_landmarks(X, landmarks, landmark_norms, k, block=256):
    """The ``k`` nearest landmarks of each row: ``(distances, indices)``,
    nearest first, ties to the lower index; float64, brute force (one
    matrix product and a partial sort), ``block`` rows at a time so that the
    distance matrix stays small enough for the allocator to reuse."""
    X = np.asarray(X, dtype=np.float64)
    distances = np.empty((X.shape[0], k))
    indices = np.empty((X.shape[0], k), dtype=np.intp)
    for start in range(0, X.shape[0], block):
        part = X[start : start + block]
        squared = part @ landmarks.T
        squared *= -2.0
        squared += landmark_norms
        squared += np.einsum("ij,ij->i", part, part)[:, None]
        np.maximum(squared, 0, out=squared)
        if k < squared.shape[1]:
            nearest = np.argpartition(squared, k - 1, axis=1)[:, :k]
        else:
            nearest = np.broadcast_to(np.arange(squared.shape[1]), squared.shape).copy()
        rows = np.arange(part.shape[0])[:, None]
        order = np.lexsort((nearest, squared[rows, nearest]), axis=1)
        nearest = nearest[rows, order]
        distances[start : start + block] = np.sqrt(squared[rows, nearest])
        indices[start : start + block] = nearest
    return distances, indices


class Nystrom:
    """Spectral graph embedding of new rows: the kernel-weighted mean of the
    nearest landmarks' coordinates (the Nystrom extension)."""

    def __init__(self, params, get):
        self.landmarks = get("landmarks").astype(np.float64)
        self.landmark_norms = np.einsum("ij,ij->i", self.landmarks, self.landmarks)
        self.landmark_scale = get("landmark_scale").astype(np.float64)
        self.coordinates = np.ascontiguousarray(get("coordinates").T)  # stored per output
        self.n_neighbors = int(params["n_neighbors"])
        self.floor = float(params["scale_floor"])

    def __call__(self, X):
        distances, nearest = nearest_landmarks(
            X, self.landmarks, self.landmark_norms, self.n_neighbors)
        scale = np.maximum(distances[:, -1], self.floor)
        weights = np.exp(-distances**2 / (scale[:, None] * self.landmark_scale[nearest]))
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("ij,ijk->ik", weights.astype(np.float32), self.coordinates[nearest])


class MLP:
    """Standardize, dense ReLU layers, then the output layer's logits."""

    def __init__(self, params, get):
        self.mean, self.scale = get("input_mean"), get("input_scale")
        n_layers = int(params["n_layers"])
        self.weights = [get(f"weights{i}") for i in range(n_layers)]
        self.biases = [get(f"bias{i}") for i in range(n_layers)]

    def __call__(self, X):
        activations = ((X - self.mean) / self.scale).astype(np.float32)
        last = len(self.weights) - 1
        for i, (weights, bias) in enumerate(zip(self.weights, self.biases)):
            activations = activations @ weights.T + bias
            if i < last:
                np.maximum(activations, 0, out=activations)
        return activations


STEPS = {
    "clean": Clean,
    "linear": Linear,
    "select": Select,
    "closeness": Closeness,
    "random_trees": RandomTrees,
    "nystrom": Nystrom,
    "mlp": MLP,
}
