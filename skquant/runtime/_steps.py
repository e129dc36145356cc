"""The numpy steps a quantized pipeline runs: cleaning, every projection
family, and the classifier's forward pass.

Each step is built from plain arrays (see ``skquant.quantize`` for how a
fitted estimator becomes them) and computes in float32; weight matrices may
be stored as int8 (one scale per output row) or float16 and are expanded
to float32 once, when the artifact is loaded (the graph step's landmarks
excepted: they are read in float64 a block at a time, see
:class:`Float64Rows`). Each step also declares what it needs: ``PARAMS``,
the types and ranges of its manifest parameters, and ``layout``, which
claims its arrays with their dtypes and shapes, queues the checks of their
values (``skquant.runtime._schema``) and returns the width of its output;
and what it costs: ``row_bytes()``, the working memory it allocates per
input row, by which the pipeline sizes its blocks of rows. This module
imports numpy alone.
"""

import math

import numpy as np

from .. import kernels
from ..kernels import BLOCK_ELEMENTS as _BLOCK_ELEMENTS
from ..kernels import kernel_weights, nearest_landmarks  # noqa: F401 (shared names)
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


def restore(arrays, name, dtype=np.float32, *, transpose=False):
    """An array as stored by ``skquant.quantize``, back in ``dtype`` (or as
    is, for integer index arrays). A float32 array is returned as it is
    stored (a view of the artifact's blob), not copied. ``transpose`` gives
    the transpose, C-contiguous, in one allocation."""
    if f"{name}.q" in arrays:  # int8, symmetric, one scale per row
        codes = arrays[f"{name}.q"]
        scale = arrays[f"{name}.scale"].astype(dtype, copy=False)
        if transpose:
            restored = np.array(codes.T, dtype=dtype, order="C")
            restored *= scale[None, :]
        else:
            restored = codes.astype(dtype)
            restored *= scale[:, None]
        return restored
    array = arrays[name]
    if array.dtype.kind != "f":
        return array
    if transpose:
        return np.array(array.T, dtype=dtype, order="C")
    return array.astype(dtype, copy=False)


class Float64Rows:
    """A stored matrix (float32, float16, or int8 codes with one float32
    scale per row) handed out in float64 a block of rows at a time, so that
    a large one is never held as a whole float64 copy. A small one (up to
    ``_BLOCK_ELEMENTS``) is converted once and kept.

    The values are those of ``restore(arrays, name, np.float64)``.
    """

    def __init__(self, arrays, name):
        if f"{name}.q" in arrays:
            self._stored, self._scale = arrays[f"{name}.q"], arrays[f"{name}.scale"]
        else:
            self._stored, self._scale = arrays[name], None
        self.shape = self._stored.shape
        self._step = max(1, _BLOCK_ELEMENTS // max(self.shape[1], 1))
        self._whole = self._rows(0, self.shape[0]) if self.shape[0] <= self._step else None

    def _rows(self, start, stop):
        rows = self._stored[start:stop].astype(np.float64)
        if self._scale is not None:
            rows *= self._scale[start:stop, None]
        return rows

    def blocks(self):
        """``(first row, float64 rows)`` for consecutive blocks of rows."""
        if self._whole is not None:
            yield 0, self._whole
            return
        for start in range(0, self.shape[0], self._step):
            yield start, self._rows(start, start + self._step)

    def toarray(self):
        """The whole matrix in float64 (a copy for a large one)."""
        return self._whole if self._whole is not None else self._rows(0, self.shape[0])


class Clean:
    """Impute NaN and infinity, keep the informative columns, clip, and
    scale them where the Cleaner scales (the optional arrays ``center`` and
    ``scale``)."""

    PARAMS = {}
    # whether the pipeline checks the output for overflow: not here (finite
    # fill, finite or infinite bounds, scaled values held in range: finite
    # output by construction)
    OVERFLOWS = False

    @staticmethod
    def layout(params, arrays, width):
        kept = arrays.index("keep", high=width)[0]
        arrays.vector("fill", kept, what="one per kept column")
        arrays.vector("lower", kept, values="bounds", what="one per kept column")
        arrays.vector("upper", kept, values="bounds", what="one per kept column")
        if arrays.has("center") or arrays.has("scale"):
            # the scaling: both or neither
            arrays.vector("center", kept, what="one per kept column")
            arrays.vector("scale", kept, values="positive", what="one per kept column")
        out = kept
        n_categorical = 0
        if arrays.has("categorical"):
            # the categorical columns: each one's sorted categories, its
            # lookup table (a row per category, the last for unknown ones)
            # and the row of a missing value
            n_categorical = arrays.index("categorical", high=width)[0]
            for number in range(n_categorical):
                name = f"category{number}"
                n_categories = arrays.text(f"{name}.text")
                out += arrays.matrix(f"{name}.table", n_categories + 1, None,
                                     what="one row per category and one for unknown ones")[1]
                arrays.index(f"{name}.missing", (1,), high=n_categories)

        def check(get):
            keep = get("keep")
            if keep.size > 1 and np.any(keep[1:] <= keep[:-1]):
                raise ArtifactError(f"{arrays.prefix}keep must list columns in "
                                    "increasing order, each once.")
            lower, upper = get("lower"), get("upper")
            if np.any(lower > upper):
                raise ArtifactError(f"{arrays.prefix}lower lies above "
                                    f"{arrays.prefix}upper for some column.")
            # -inf below and +inf above mean "no bound"; the other way round
            # they would make every value of the column infinite
            if np.any(lower == np.inf) or np.any(upper == -np.inf):
                raise ArtifactError(f"{arrays.prefix}lower holds +inf or "
                                    f"{arrays.prefix}upper holds -inf: the column "
                                    "would be infinite whatever its value.")
            if n_categorical:
                categorical = get("categorical")
                if categorical.size > 1 and np.any(categorical[1:] <= categorical[:-1]):
                    raise ArtifactError(f"{arrays.prefix}categorical must list columns in "
                                        "increasing order, each once.")
                if np.intersect1d(categorical, keep).size:
                    raise ArtifactError(f"{arrays.prefix}categorical and {arrays.prefix}keep "
                                        "share a column: a column is numeric or categorical.")

        arrays.require(check)
        return out

    def __init__(self, params, get):
        self.keep = get("keep").astype(np.intp)
        self.fill = get("fill")
        self.lower, self.upper = get("lower"), get("upper")
        self.center = self.scale = None
        if get.has("center"):
            self.center, self.scale = get("center"), get("scale")
        # the categorical columns: (position, categories, table, missing row)
        self.categories = []
        if get.has("categorical"):
            for number, column in enumerate(get("categorical").astype(np.intp).tolist()):
                name = f"category{number}"
                self.categories.append((column, get(f"{name}.text"), get(f"{name}.table"),
                                        int(get(f"{name}.missing")[0])))

    def row_bytes(self):
        # the kept columns, their mask, the imputed copy (and the scaled one)
        encoded = sum(table.shape[1] for _, _, table, _ in self.categories)
        return (12 if self.center is None else 16) * self.keep.size + 8 * encoded

    def output_bounds(self):
        """The lowest and highest value of each output column (float64;
        ±inf where a column has no clipping bound)."""
        lower, upper = self.lower.astype(np.float64), self.upper.astype(np.float64)
        if self.center is not None:
            center, scale = self.center.astype(np.float64), self.scale.astype(np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                lower, upper = (lower - center) / scale, (upper - center) / scale
        tables = [table.astype(np.float64) for _, _, table, _ in self.categories]
        return (np.concatenate([lower] + [table.min(axis=0) for table in tables]),
                np.concatenate([upper] + [table.max(axis=0) for table in tables]))

    def codes(self, text, missing, number):
        """The float32 codes of categorical column ``number``'s values (as
        ``kernels.as_text`` gives them): what the pipeline's input holds at
        that column's position."""
        _, categories, _, missing_row = self.categories[number]
        return kernels.category_codes(text, missing, categories, missing_row)

    def __call__(self, X):
        out = kernels.clean(X, self.keep, self.fill, self.lower, self.upper,
                            self.center, self.scale)
        if not self.categories:
            return out
        return np.hstack([out] + [kernels.encode(X[:, column], table, missing_row)
                                  for column, _, table, missing_row in self.categories])


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

    def row_bytes(self):
        return 4 * (self.mean.size + self.components.shape[0])

    def __call__(self, X):
        return kernels.linear(X, self.mean, self.components)


class Select:
    """Keep some columns (pivoted-QR selection)."""

    PARAMS = {}
    OVERFLOWS = False  # a subset of its (finite) input

    @staticmethod
    def layout(params, arrays, width):
        return arrays.index("columns", high=width)[0]

    def __init__(self, params, get):
        self.columns = get("columns").astype(np.intp)

    def row_bytes(self):
        return 4 * self.columns.size

    def __call__(self, X):
        return kernels.select(X, self.columns)


class Closeness:
    """TSVQ: negative distance to every leaf prototype (or, with local
    ``axes``, to every leaf's local subspace), in units of scale."""

    # any float32 unit whose reciprocal is a float32 too; too large a
    # model is refused by its prototypes' norms, with the cause
    PARAMS = {"scale": Float(1e-37, float(np.finfo(np.float32).max))}
    OVERFLOWS = True

    @staticmethod
    def layout(params, arrays, width):
        arrays.vector("origin", width, what="one per input column")
        k = arrays.weight("prototypes", cols=width, what="one column per input")[0]
        if arrays.has("axes") or arrays.has("axes.q"):
            # optional: each prototype's local axes, m rows per prototype
            rows = arrays.weight("axes", cols=width, what="one column per input")[0]
            if rows % k or not 0 < rows // k <= width:
                raise ArtifactError(
                    f"the closeness step has {rows} local axes for {k} prototypes: it "
                    "needs the same number m (1 <= m <= the input width) for each.")
        return k

    def __init__(self, params, get):
        self.origin, self.prototypes = get("origin"), get("prototypes")
        self.axes = self.axis_offsets = self.axes_t = None
        self.axis_norm = 0.0  # the largest norm of a local axis
        if get.has("axes") or get.has("axes.q"):
            self.axes = get("axes")  # (k m, d), prototype by prototype
            d = self.prototypes.shape[1]
            # unit vectors (or zero), give or take their quantization: an
            # int8 row is off by at most half a step per element
            allowed = 1.001 + math.sqrt(d) / 254
            with np.errstate(over="ignore"):
                norms = np.sqrt(np.einsum("ij,ij->i", self.axes.astype(np.float64),
                                          self.axes.astype(np.float64)))
            if not norms.max(initial=0.0) <= allowed:
                row = int(np.argmax(norms))
                raise ArtifactError(
                    f"the closeness step's local axis {row} has norm {norms[row]:.4g}: each "
                    f"axis must be a unit vector or zero (at most {allowed:.4g} once "
                    "quantized). The artifact was changed or is not from skquant.quantize.")
            self.axis_norm = float(norms.max(initial=0.0))
            with np.errstate(over="ignore", invalid="ignore"):
                self.axes_t, self.axis_offsets = kernels.local_frame(self.axes, self.prototypes)
            if not np.isfinite(self.axis_offsets).all():
                raise ArtifactError(
                    "the closeness step's local axes times its prototypes overflow "
                    "float32: no input could be served.")
        with np.errstate(over="ignore"):
            self.norms = np.einsum("ij,ij->i", self.prototypes, self.prototypes)
        if not np.isfinite(self.norms).all():
            raise ArtifactError(
                "the closeness step's prototypes are too large for float32: their "
                "squared norms overflow, so no input could be served (a model of "
                "data beyond about 1e18: rescale the data and fit again).")
        self.factor = np.float32(-1.0 / params["scale"])
        self._minus_twice = np.ascontiguousarray(-2.0 * self.prototypes.T)  # exact

    def axis_sums(self):
        """``(k m, k)`` float32: 1 where a local axis belongs to a prototype
        (how the exports sum the squares along each prototype's axes)."""
        k = self.prototypes.shape[0]
        return np.repeat(np.eye(k, dtype=np.float32), self.axes.shape[0] // k, axis=0)

    def row_bytes(self):
        local = 0 if self.axes is None else 4 * self.axes.shape[0]
        return 4 * (2 * self.origin.size + 2 * self.prototypes.shape[0]) + local

    def __call__(self, X):
        return kernels.closeness(X - self.origin, self._minus_twice, self.norms, self.factor,
                                 self.axes_t, self.axis_offsets)


_NODE_BLOCK = 1 << 20  # nodes checked at once: the checks' memory stays small


def _check_forest(get, prefix, depth):
    """The trees are a forest that the kernel walks in ``depth`` steps: each
    tree's nodes are consecutive from its root, every internal node's two
    children are later nodes of its tree, every node but a root has exactly
    one parent (so no cycle, no sharing), and the deepest leaf is exactly
    ``depth`` steps down. O(nodes) time, in blocks of nodes and in the
    stored integer dtypes, so that checking costs less memory than the
    arrays themselves."""
    feature, children, leaf_row = get("feature"), get("children"), get("leaf_row")
    roots = get("roots").astype(np.int64)  # at most MAX_TREE_STEPS of them
    n_nodes = feature.size
    if roots[0] != 0 or np.any(roots[1:] <= roots[:-1]):
        raise ArtifactError(f"{prefix}roots must start at 0 and increase: each tree's "
                            "nodes follow its root.")
    ends = np.append(roots[1:], n_nodes)  # one past each tree's last node
    for first in range(0, n_nodes, _NODE_BLOCK):
        node = np.arange(first, min(first + _NODE_BLOCK, n_nodes))
        leaf = feature[node] < 0
        pairs, rows = children[node], leaf_row[node]
        if np.any(pairs[leaf] != -1) or np.any(rows[leaf] < 0):
            raise ArtifactError(f"{prefix}children: a leaf (feature < 0) must have no "
                                "children (-1, -1) and a row of the lookup table.")
        internal = ~leaf
        end = ends[np.searchsorted(roots, node, side="right") - 1]
        pairs, node, end = pairs[internal], node[internal], end[internal]
        later = (pairs > node[:, None]) & (pairs < end[:, None])
        if not later.all() or np.any(pairs[:, 0] == pairs[:, 1]):
            raise ArtifactError(f"{prefix}children: an internal node's two children must "
                                "be distinct later nodes of its own tree.")
        if np.any(rows[internal] != -1):
            raise ArtifactError(f"{prefix}leaf_row must be -1 at internal nodes.")
    # the children are later nodes of their own tree, so none is a root: if
    # they are all distinct and as many as the nodes that are not roots,
    # every such node is the child of exactly one node
    listed = children[feature >= 0].ravel()  # a copy, sorted in place
    listed.sort()
    if listed.size != n_nodes - roots.size or np.any(listed[1:] == listed[:-1]):
        raise ArtifactError(f"{prefix}children: every node but a root must be the "
                            "child of exactly one node.")
    del listed
    # each leaf its own row of the lookup table (as the export writes them):
    # then the table has a row per leaf, at least one per tree, and summing
    # a row per tree costs no more than the table's size per input row
    rows = leaf_row[feature < 0]  # a copy, sorted in place
    rows.sort()
    if np.any(rows[1:] == rows[:-1]):
        raise ArtifactError(f"{prefix}leaf_row gives two leaves the same row of the "
                            "lookup table; each leaf has its own.")
    del rows
    level, frontier = 0, roots
    while True:
        frontier = children[frontier[feature[frontier] >= 0]].ravel()
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
        # the index arrays as stored (views of the artifact, not intp copies)
        self.feature = get("feature")
        self.threshold = get("threshold")  # float32, rounded down: exact for float32 x
        self.children = get("children")
        self.leaf_row = get("leaf_row")
        self.roots = get("roots").astype(np.intp)
        self.depth = int(params["depth"])
        self.lookup = get("lookup", transpose=True)  # stored one row per output
        self.shift = get("shift")

    def row_bytes(self):
        return 8 * self.lookup.shape[1] + 64  # the output, each tree's node vectors

    def __call__(self, X):
        X = X.astype(np.float32)  # scikit-learn's trees compare float32 inputs
        leaves = kernels.tree_leaves(X, self.feature, self.threshold, self.children,
                                     self.roots, self.depth)
        return kernels.leaf_lookup(self.leaf_row[leaves], self.lookup, self.shift)


class Nystrom:
    """Spectral graph embedding of new rows: the kernel-weighted mean of the
    nearest landmarks' coordinates (the Nystrom extension)."""

    PARAMS = {"n_neighbors": Int(1, 1 << 20), "scale_floor": Float(0.0, 1e300, positive=True)}
    OVERFLOWS = True

    @staticmethod
    def layout(params, arrays, width):
        if arrays.has("reduce_mean") or arrays.has("reduce_components"):
            # the principal axes the graph is built on: both or neither
            arrays.vector("reduce_mean", width, what="one per input column")
            width = arrays.matrix("reduce_components", cols=width,
                                  what="one column per input column")[0]
        n_landmarks = arrays.weight("landmarks", cols=width, what="one column per input")[0]
        arrays.vector("landmark_scale", n_landmarks, values="positive",
                      what="one per landmark")
        out = arrays.weight("coordinates", cols=n_landmarks, what="one column per landmark")[0]
        if params["n_neighbors"] > n_landmarks:
            raise ArtifactError(f"{arrays.where}: n_neighbors={params['n_neighbors']} "
                                f"exceeds the {n_landmarks} landmarks.")
        return out

    def __init__(self, params, get):
        # float64 distances without a float64 copy of many landmarks
        self._landmarks = get.float64_rows("landmarks")
        # what the search reads: the float64 array itself where it is kept
        # whole (no per-call copy into blocks)
        self._searched = self._landmarks._whole
        if self._searched is None:
            self._searched = self._landmarks
        self.landmark_norms = np.concatenate(
            [np.einsum("ij,ij->i", rows, rows) for _, rows in self._landmarks.blocks()])
        self.landmark_scale = get("landmark_scale", np.float64)
        self.coordinates = get("coordinates", transpose=True)  # stored per output
        self.n_neighbors = int(params["n_neighbors"])
        self.floor = float(params["scale_floor"])
        self.reduce_mean = self.reduce_components = None
        if get.has("reduce_mean"):
            self.reduce_mean = get("reduce_mean", np.float64)
            self.reduce_components = get("reduce_components", np.float64)

    @property
    def landmarks(self):
        """The landmarks in float64 (for exporters; a copy when they are many)."""
        return self._landmarks.toarray()

    def row_bytes(self):
        n_landmarks, n_out = self.coordinates.shape
        # the distances to every landmark and their partial sort; the
        # neighbours' weights, indices and coordinates; the reduced row
        reduced = 0 if self.reduce_components is None else 16 * self.reduce_components.shape[0]
        return 24 * n_landmarks + self.n_neighbors * (40 + 4 * n_out) + reduced

    def neighbours(self, X):
        """Each row's nearest landmarks and their weights (float32, summing
        to 1): ``(weights, indices)``."""
        if self.reduce_components is not None:
            # on the principal axes the graph is built on, in float64 as the
            # search is
            X = kernels.linear(X.astype(np.float64), self.reduce_mean, self.reduce_components)
        distances, nearest = nearest_landmarks(
            X, self._searched, self.landmark_norms, self.n_neighbors)
        scale = np.maximum(distances[:, -1], self.floor)
        weights = kernel_weights(distances, scale, self.landmark_scale[nearest])
        return weights.astype(np.float32), nearest

    def __call__(self, X):
        weights, nearest = self.neighbours(X)
        return kernels.nystrom(weights, self.coordinates[nearest])


class Union:
    """Principal components next to the spectral embedding: ``[linear(x),
    nystrom(x)]``, from the arrays of both (their names do not collide)."""

    PARAMS = Nystrom.PARAMS
    OVERFLOWS = True

    @staticmethod
    def layout(params, arrays, width):
        return Linear.layout({}, arrays, width) + Nystrom.layout(params, arrays, width)

    def __init__(self, params, get):
        self.linear, self.graph = Linear({}, get), Nystrom(params, get)

    def row_bytes(self):
        return self.linear.row_bytes() + self.graph.row_bytes()

    def __call__(self, X):
        return np.concatenate([self.linear(X), self.graph(X)], axis=1)


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

    def row_bytes(self):
        return 4 * (self.mean.size + 2 * max(weights.shape[0] for weights in self.weights))

    def __call__(self, X):
        activations = ((X - self.mean) / self.scale).astype(np.float32)
        # a hidden layer's overflow would be hidden by the ReLU (-inf -> 0)
        return kernels.dense_layers(
            activations, [weights.T for weights in self.weights], self.biases,
            check=lambda values, i: check_finite(values, f"layer {i} of the classifier"))


STEPS = {
    "clean": Clean,
    "linear": Linear,
    "select": Select,
    "closeness": Closeness,
    "random_trees": RandomTrees,
    "nystrom": Nystrom,
    "union": Union,
    "mlp": MLP,
}
