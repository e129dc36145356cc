"""The numpy steps a quantized pipeline runs: cleaning, every projection
family, and the classifier's forward pass.

Each step is built from plain arrays (see ``skquant.quantize`` for how a
fitted estimator becomes them) and computes in float32; weight matrices may
be stored as int8 (one scale per output row) or float16 and are expanded
once, when the artifact is loaded. Each step also declares what it needs:
``PARAMS``, the types and ranges of its manifest parameters, and
``layout``, which claims its arrays with their dtypes and shapes, queues the
checks of their values (``skquant.runtime._schema``) and returns the width
of its output. This module imports numpy alone.
"""

import numpy as np

from ._schema import MAX_LAYERS, MAX_TREE_DEPTH, MAX_TREE_STEPS, ArtifactError, Float, Int


class NonFiniteError(ValueError):
    """A step's output is not finite: the input overflowed float32 there."""

    def __init__(self, where, values):
        super().__init__(where)
        self.where, self.values = where, values


def check_finite(values, where):
    """Raise :class:`NonFiniteError` unless every value is finite (one pass:
    NaN propagates to the minimum, infinities show in the extremes)."""
    if values.size and not (np.isfinite(values.min()) and np.isfinite(values.max())):
        raise NonFiniteError(where, values)
    return values


def restore(arrays, name, dtype=np.float32):
    """An array as stored by ``skquant.quantize``, back in ``dtype`` (or as
    is, for integer index arrays). A float32 array is returned as it is
    stored (a view of the artifact's blob), not copied."""
    if f"{name}.q" in arrays:  # int8, symmetric, one scale per row
        codes = arrays[f"{name}.q"].astype(dtype)
        codes *= arrays[f"{name}.scale"].astype(dtype, copy=False)[:, None]
        return codes
    array = arrays[name]
    return array.astype(dtype, copy=False) if array.dtype.kind == "f" else array


class Clean:
    """Impute NaN and infinity, keep the informative columns, clip."""

    PARAMS = {}
    # whether the pipeline checks the output for overflow: not here (finite
    # fill, finite or infinite bounds: finite output by construction)
    OVERFLOWS = False

    @staticmethod
    def layout(params, arrays, width):
        kept = arrays.index("keep", high=width)[0]
        arrays.vector("fill", kept, what="one per kept column")
        arrays.vector("lower", kept, values="bounds", what="one per kept column")
        arrays.vector("upper", kept, values="bounds", what="one per kept column")

        def check(get):
            keep = get("keep")
            if keep.size > 1 and np.any(keep[1:] <= keep[:-1]):
                raise ArtifactError(f"{arrays.prefix}keep must list columns in "
                                    "increasing order, each once.")
            if np.any(get("lower") > get("upper")):
                raise ArtifactError(f"{arrays.prefix}lower lies above "
                                    f"{arrays.prefix}upper for some column.")

        arrays.require(check)
        return kept

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

    PARAMS = {}
    OVERFLOWS = True

    @staticmethod
    def layout(params, arrays, width):
        arrays.vector("mean", width, what="one per input column")
        return arrays.weight("components", cols=width, what="one column per input")[0]

    def __init__(self, params, get):
        self.mean, self.components = get("mean"), get("components")

    def __call__(self, X):
        return (X - self.mean) @ self.components.T


class Select:
    """Keep some columns (pivoted-QR selection)."""

    PARAMS = {}
    OVERFLOWS = False  # a subset of its (finite) input

    @staticmethod
    def layout(params, arrays, width):
        return arrays.index("columns", high=width)[0]

    def __init__(self, params, get):
        self.columns = get("columns").astype(np.intp)

    def __call__(self, X):
        return X[:, self.columns]


class Closeness:
    """TSVQ: negative distance to every leaf prototype, in units of scale."""

    PARAMS = {"scale": Float(1e-30, 1e30)}
    OVERFLOWS = True

    @staticmethod
    def layout(params, arrays, width):
        arrays.vector("origin", width, what="one per input column")
        return arrays.weight("prototypes", cols=width, what="one column per input")[0]

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


def _check_forest(get, prefix, depth):
    """The trees are a forest that the kernel walks in ``depth`` steps: each
    tree's nodes are consecutive from its root, every internal node's two
    children are later nodes of its tree, every node but a root has exactly
    one parent (so no cycle, no sharing), and the deepest leaf is exactly
    ``depth`` steps down. One vectorized pass per level: O(nodes)."""
    feature = get("feature").astype(np.int64)
    children = get("children").astype(np.int64)
    leaf_row = get("leaf_row").astype(np.int64)
    roots = get("roots").astype(np.int64)
    n_nodes = feature.size
    if roots[0] != 0 or np.any(roots[1:] <= roots[:-1]):
        raise ArtifactError(f"{prefix}roots must start at 0 and increase: each tree's "
                            "nodes follow its root.")
    ends = np.append(roots[1:], n_nodes)
    end = np.repeat(ends, ends - roots)  # one past the last node of each node's tree
    leaf = feature < 0
    if np.any(children[leaf] != -1) or np.any(leaf_row[leaf] < 0):
        raise ArtifactError(f"{prefix}children: a leaf (feature < 0) must have no "
                            "children (-1, -1) and a row of the lookup table.")
    internal = ~leaf
    node = np.arange(n_nodes)[:, None]
    later = (children > node) & (children < end[:, None])
    if not later[internal].all() or np.any(children[internal, 0] == children[internal, 1]):
        raise ArtifactError(f"{prefix}children: an internal node's two children must "
                            "be distinct later nodes of its own tree.")
    if np.any(leaf_row[internal] != -1):
        raise ArtifactError(f"{prefix}leaf_row must be -1 at internal nodes.")
    parents = np.bincount(children[internal].ravel(), minlength=n_nodes)
    expected = np.ones(n_nodes, dtype=parents.dtype)
    expected[roots] = 0
    if not np.array_equal(parents, expected):
        raise ArtifactError(f"{prefix}children: every node but a root must be the "
                            "child of exactly one node.")
    level, frontier = 0, roots
    while True:
        frontier = children[frontier[internal[frontier]]].ravel()
        if frontier.size == 0:
            break
        level += 1
        if level > depth:
            break
    if level != depth:
        raise ArtifactError(f"the random-trees step declares depth {depth}, but its "
                            f"deepest leaf is {'deeper' if level > depth else level}.")


class RandomTrees:
    """Random-trees embedding: each tree's leaf row of a lookup table, summed."""

    PARAMS = {"depth": Int(0, MAX_TREE_DEPTH)}
    OVERFLOWS = True

    @staticmethod
    def layout(params, arrays, width):
        out, n_leaves = arrays.weight("lookup", what="one row per output")
        arrays.vector("shift", out, what="one per output")
        n_nodes = arrays.index("feature", low=-2, high=width)[0]
        arrays.vector("threshold", n_nodes, what="one per node")
        arrays.index("children", (n_nodes, 2), low=-1, high=n_nodes,
                     what="two per node")
        arrays.index("leaf_row", (n_nodes,), low=-1, high=n_leaves, what="one per node")
        n_trees = arrays.index("roots", low=0, high=n_nodes)[0]
        depth = params["depth"]
        if n_trees * max(depth, 1) > MAX_TREE_STEPS:
            raise ArtifactError(
                f"{arrays.where}: {n_trees} trees of depth {depth} take "
                f"{n_trees * max(depth, 1)} steps per call, more than the "
                f"{MAX_TREE_STEPS} this runtime allows.")
        arrays.require(lambda get: _check_forest(get, arrays.prefix, depth))
        return out

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

    PARAMS = {"n_neighbors": Int(1, 1 << 20), "scale_floor": Float(0.0, 1e300, positive=True)}
    OVERFLOWS = True

    @staticmethod
    def layout(params, arrays, width):
        n_landmarks = arrays.weight("landmarks", cols=width, what="one column per input")[0]
        arrays.vector("landmark_scale", n_landmarks, values="positive",
                      what="one per landmark")
        out = arrays.weight("coordinates", cols=n_landmarks, what="one column per landmark")[0]
        if params["n_neighbors"] > n_landmarks:
            raise ArtifactError(f"{arrays.where}: n_neighbors={params['n_neighbors']} "
                                f"exceeds the {n_landmarks} landmarks.")
        return out

    def __init__(self, params, get):
        self.landmarks = get("landmarks", np.float64)
        self.landmark_norms = np.einsum("ij,ij->i", self.landmarks, self.landmarks)
        self.landmark_scale = get("landmark_scale", np.float64)
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

    PARAMS = {"n_layers": Int(1, MAX_LAYERS)}
    OVERFLOWS = False  # it checks each of its layers itself

    @staticmethod
    def layout(params, arrays, width):
        arrays.vector("input_mean", width, what="one per input column")
        arrays.vector("input_scale", width, values="positive", what="one per input column")
        for i in range(params["n_layers"]):
            width = arrays.weight(f"weights{i}", cols=width,
                                  what="one column per unit of the layer before")[0]
            arrays.vector(f"bias{i}", width, what=f"one per row of weights{i}")
        return width

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
            # a hidden layer's overflow would be hidden by the ReLU (-inf -> 0)
            check_finite(activations, f"layer {i} of the classifier")
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
