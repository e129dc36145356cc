"""The tree family: tree-structured projections for large data sets.

- ``"tsvq"``: tree-structured vector quantization. A binary tree of
  prototypes is grown by recursive 2-means splits (bisecting k-means,
  splitting the leaf with the largest squared error first) until it has
  ``n_components`` leaves, and polished by a few Lloyd iterations on the
  sample. Every internal node routes a row to the nearer of its two children,
  a test against one hyperplane, so finding a row's leaf costs O(d log k)
  instead of the O(d k) of a flat quantizer. In practice the tests run a
  block of nodes per matrix product, stop at a subtree of at most
  32 leaves (a bucket) whose nearest leaf is found exactly,
  and the top block also tries the other side of each row's least certain
  test. The features of a row are its closeness to every leaf prototype.
- ``"tsvq-local"``: the same tree with each leaf's local principal axes (a
  tree of local linear models); the features are distances to every leaf's
  local subspace.
- ``"random-trees"``: totally random trees (scikit-learn's
  :class:`~sklearn.ensemble.RandomTreesEmbedding`); each row's leaf
  indicators are reduced to ``n_components`` dense columns by the principal
  axes of the indicator matrix.

Both grow their trees on a bounded sample of the rows (the first
``max_samples`` rows fed to ``partial_fit``, or a uniform sample in ``fit``)
and then stream the rest: ``"tsvq"`` refines its prototypes with mini-batch
updates routed through the tree, ``"random-trees"`` accumulates the
co-occurrence counts of leaves. Memory does not grow with the number of rows.
"""

import copy
import math
import warnings
from numbers import Integral

import numpy as np
import scipy.linalg
import scipy.sparse
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state

from .. import kernels
from .._registry import register_export
from .._validation import safe_mean
from ._base import BaseProjection
from ._scaling import choose_exponent, peak_magnitude, to_unit, wide_range_distances
from ._tree_local import leaf_axes
from ._tree_random import cooccurrence, grow_forest, indicator_axes, leaf_indices
from ._tree_structure import (
    RoutingBlock, block_exits, buckets, depths, forest_arrays, grow, leaf_order,
    move_prototypes,
)

# Rows per streamed block (and routing call): up to 32,768, and at most
# 16 MiB of rows, so that the block buffer stays small for wide data.
_BLOCK_ROWS = 32768
_BLOCK_BYTES = 2**24


def _block_rows(n_features, dtype):
    row_bytes = n_features * np.dtype(dtype).itemsize
    return int(max(256, min(_BLOCK_ROWS, _BLOCK_BYTES // row_bytes)))

class TreeProjection(BaseProjection):
    """Tree-structured projection: TSVQ prototypes or random-trees embedding.

    The tree family holds the most capacity and suits large data sets: it
    grows its trees on a bounded sample, then streams the remaining rows
    chunk by chunk (``partial_fit``, or numpy memmaps through ``fit``) with
    memory that does not grow with the number of rows.

    Parameters
    ----------
    n_components : int, default=32
        Number of output dimensions: leaves of the tree for ``"tsvq"``,
        principal axes of the leaf indicators for ``"random-trees"``. At most
        the number of rows seen.
    method : {"tsvq", "tsvq-local", "random-trees"}, default="tsvq"
        - ``"tsvq"``: tree-structured vector quantization. Bisecting 2-means
          grows a binary tree of prototypes, splitting the leaf with the
          largest squared error first, until it has ``n_components`` leaves.
          Each internal node sends a row to the nearer of its two children (a
          hyperplane test), so routing a row to its leaf costs O(d log k)
          (:meth:`apply`). Lloyd iterations on the sample and mini-batch
          updates over the streamed rows, each routed through the tree,
          refine the prototypes. A row's features are its closeness to every
          leaf prototype: the negative Euclidean distance, in units of
          ``scale_``, computed by one matrix product.
        - ``"tsvq-local"``: the same tree, with a local principal subspace
          per leaf (a tree of local linear models): each leaf's
          ``local_components`` leading principal axes of the sample rows
          nearest it, fitted once the tree is grown. A row's features are
          its distance to every leaf's subspace (the part of the row minus
          the prototype that the leaf's axes do not span), in units of
          ``scale_``. A row near a leaf's subspace is one that the leaf
          models well, which a distance to its prototype alone cannot tell.
          On digits at 32 dimensions this is 1.9 points more accurate than
          ``"tsvq"`` and 0.6 above PCA, at ``local_components + 1`` times
          the arithmetic of ``"tsvq"``'s transform. Streamed rows move the
          prototypes (routed as in ``"tsvq"``), not the axes. Every
          attribute marked ``"tsvq"`` below is set for it too.
        - ``"random-trees"``: ``n_estimators`` totally random trees
          (:class:`~sklearn.ensemble.RandomTreesEmbedding`) grown on the
          sample; each row's one-hot leaf indicators are projected on the
          ``n_components`` principal axes of the indicators, accumulated over
          every row. The trees compare values in float32, as scikit-learn's
          do: values beyond float32's range are clipped to it for growing
          them, and go the way of the largest float32 value after.
    max_samples : int, default=32768
        Rows the trees are grown on. ``fit`` draws them uniformly from ``X``;
        ``partial_fit`` takes the first ``max_samples`` rows it is fed (feed
        chunks in random order). The rows after them are streamed. A larger
        sample gives better trees at a higher fit cost. Used before its
        sample is full, the projection has trees grown on the rows so far;
        they grow again on the whole sample once it fills, so a transform in
        between changes nothing after. Until then it keeps the rows it has
        taken (at most ``max_samples``), also after a transform;
        :func:`~skquant.fit_stream` grows the trees for good at the end of
        its pass and frees them. A pickle (or copy) taken before the sample
        is full holds the trees grown so far, not the rows: a loaded
        ``"tsvq"`` or ``"tsvq-local"`` copy refines them with its later
        rows, with a warning; a ``"random-trees"`` one, as after any pickle,
        transforms and refuses ``partial_fit``.
    refine_iter : int, default=2
        ``"tsvq"``: Lloyd iterations on the sample once the tree is grown:
        each assigns every sample row to its nearest leaf and moves each leaf
        prototype to the mean of its rows (internal nodes follow). Greedy
        splits leave some prototypes off their best place; two iterations
        recover most of the gap to k-means.
    local_components : int, default=4
        ``"tsvq-local"``: principal axes per leaf, at most half the number of
        columns (a subspace spanning every column would leave no distance to
        measure; on one column there is none, and the features are
        ``"tsvq"``'s). A leaf whose sample rows span fewer directions gets
        rows of zeros for the others.
    n_estimators : int, default=30
        ``"random-trees"``: number of trees. More trees give richer features
        (on digits, 10 trees reach about 0.83 accuracy at 32 dimensions, 30
        about 0.94, 100 about 0.95) and a larger model; the leaf statistics
        take (n_estimators x leaves per tree)^2 numbers while fitting.
    max_depth : int or None, default=None
        ``"random-trees"``: depth of each tree. None chooses the smallest
        depth, at least 5, whose leaves number at least twice
        ``n_components`` over all trees.
    random_state : int, RandomState instance or None, default=None
        Seeds the sample, the splits and the random trees.

    Attributes
    ----------
    n_components_ : int
        Number of output dimensions. Below ``n_components`` (with a warning)
        when the rows hold fewer distinct points than ``n_components``.
    n_features_in_ : int
        Number of columns seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of the columns seen during fit, when they are all strings.
    n_samples_seen_ : int
        Number of rows the projection has been fitted on.
    node_centers_ : ndarray of shape (n_nodes, n_features_in)
        ``"tsvq"``: the prototype of every node of the tree; an internal
        node's is the size-weighted mean of its leaves'. Node 0 is the root.
    node_sizes_ : ndarray of shape (n_nodes,)
        ``"tsvq"``: rows assigned to each node during the fit (in the last
        Lloyd iteration on the sample, plus every streamed row).
    children_ : ndarray of shape (n_nodes, 2)
        ``"tsvq"``: the left and right child of each node, -1 for leaves.
        A row goes right when it is nearer the right child's prototype.
    parent_ : ndarray of shape (n_nodes,)
        ``"tsvq"``: the parent of each node, -1 for the root.
    leaves_ : ndarray of shape (n_components,)
        ``"tsvq"``: the node of each output column, in depth-first order.
    leaf_sizes_ : ndarray of shape (n_components,)
        ``"tsvq"``: rows assigned to each leaf during the fit, as in
        ``node_sizes_``.
    cluster_centers_ : ndarray of shape (n_components, n_features_in)
        ``"tsvq"``: the leaf prototypes, one per output column.
    max_depth_ : int
        Depth of the tree (``"tsvq"``) or of each random tree.
    scale_ : float
        ``"tsvq"``: the unit of the output distances, the root mean squared
        distance of the sample rows to their mean.
    local_axes_ : ndarray of shape (n_components, m, n_features_in)
        ``"tsvq-local"``: each leaf's orthonormal local principal axes, in
        the order of ``cluster_centers_``; ``m`` is ``local_components``, or
        half the columns where that is fewer (rows of zeros where a leaf's
        sample rows span fewer directions).
    embedding_ : sklearn.ensemble.RandomTreesEmbedding
        ``"random-trees"``: the fitted random trees.
    components_ : ndarray of shape (n_components, n_leaves)
        ``"random-trees"``: principal axes of the leaf indicators.
    indicator_mean_ : ndarray of shape (n_leaves,)
        ``"random-trees"``: fraction of the rows reaching each leaf.
    explained_variance_ : ndarray of shape (n_components,)
        ``"random-trees"``: variance of the indicators along each axis.

    See Also
    --------
    ColumnProjection : linear projections for small and medium data.
    sklearn.cluster.BisectingKMeans : a flat clustering grown the same way.
    sklearn.cluster.MiniBatchKMeans : streaming k-means, O(d k) per row.
    sklearn.ensemble.RandomTreesEmbedding : the ``"random-trees"`` trees.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skquant import TreeProjection
    >>> X, _ = load_digits(return_X_y=True)
    >>> proj = TreeProjection(n_components=16, random_state=0).fit(X)
    >>> proj.transform(X).shape
    (1797, 16)
    >>> proj.cluster_centers_.shape, proj.children_.shape
    ((16, 64), (31, 2))
    >>> int(proj.leaf_sizes_.sum())
    1797
    >>> proj.apply(X[:5]).shape
    (5,)
    >>> chunked = TreeProjection(n_components=16, random_state=0)
    >>> for start in range(0, len(X), 500):
    ...     chunked = chunked.partial_fit(X[start:start + 500])
    >>> bool(abs(chunked.transform(X) - proj.transform(X)).max() < 1e-8)
    True
    """

    _parameter_constraints: dict = {
        **BaseProjection._parameter_constraints,
        "method": [StrOptions({"tsvq", "tsvq-local", "random-trees"})],
        "max_samples": [Interval(Integral, 2, None, closed="left")],
        "refine_iter": [Interval(Integral, 0, None, closed="left")],
        "local_components": [Interval(Integral, 1, None, closed="left")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, 30, closed="both"), None],
        "random_state": ["random_state"],
    }

    _derived_attributes = (
        "node_centers_",
        "node_sizes_",
        "children_",
        "parent_",
        "leaves_",
        "leaf_sizes_",
        "cluster_centers_",
        "max_depth_",
        "scale_",
        "local_axes_",
        "embedding_",
        "components_",
        "indicator_mean_",
        "explained_variance_",
    )

    def __init__(
        self,
        n_components=32,
        *,
        method="tsvq",
        max_samples=32768,
        refine_iter=2,
        local_components=4,
        n_estimators=30,
        max_depth=None,
        random_state=None,
    ):
        super().__init__(n_components)
        self.method = method
        self.max_samples = max_samples
        self.refine_iter = refine_iter
        self.local_components = local_components
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.random_state = random_state

    # tsvq's working units: rows are centred on _origin and divided by
    # 2**_exponent, which is 0 (nothing divided) for data of ordinary
    # magnitude and for projections pickled before the units existed
    _exponent = 0

    # caches that _set_routing derives from the prototypes: not pickled
    # the routing caches, rebuilt from the prototypes on load
    _transient_attributes = ("_normals", "_offsets", "_inverse_norms", "_prototypes",
                             "_prototype_norms")

    def __getstate__(self):
        # the base finalizes first: buffered rows are folded in, so a pickle
        # holds neither the stream buffer nor, once finalized, the growth sample
        state = super().__getstate__()
        if state.get("_pending") is not None and not state.get("_needs_finalize"):
            # pickled before the sample was full: the trees grown on the rows
            # so far are the fitted projection, and a loaded copy streams its
            # later rows into them, with a warning (the original keeps
            # filling its sample, see _grow_provisionally). A projection that
            # could not be finalized keeps its rows: it has no trees yet.
            state["_pending"] = None
            state["_grown_early"] = True
        if self.method == "random-trees" and not state.get("_needs_finalize"):
            # the leaf co-occurrence counts (n_leaves^2) would dwarf the
            # fitted projection; without them partial_fit cannot resume
            state.pop("_cooccurrence", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_children" in state:
            self._set_routing()

    # ------------------------------------------------------------------ hooks
    def _max_components(self, n_samples, n_features):
        if self.method != "random-trees":
            return n_samples, f"a tree grown on {n_samples} rows has at most that many leaves"
        depth = self._resolve_depth()
        n_leaves = self.n_estimators * (2**depth - 1)
        if n_samples < n_leaves:
            return n_samples, f"{n_samples} rows"
        return n_leaves, (
            f"{self.n_estimators} trees of depth {depth} give {n_leaves} independent "
            "leaf indicators; raise n_estimators or max_depth"
        )

    def _resolve_depth(self):
        if self.max_depth is not None:
            return self.max_depth
        per_tree = 2 * self.n_components / self.n_estimators + 1
        return max(5, math.ceil(math.log2(per_tree)))

    def _fit(self, X):
        self._start(X)
        n = X.shape[0]
        if n <= self.max_samples:
            self._grow(X)
            return
        # A uniform sample grows the trees; the other rows are streamed, a
        # block at a time (a memmap is read block by block, never whole).
        # (a Generator draws without replacement in O(max_samples) memory)
        draw = np.random.default_rng(self._rng.randint(np.iinfo(np.int32).max))
        sample = np.sort(draw.choice(n, self.max_samples, replace=False))
        self._grow(X[sample])
        step = _block_rows(X.shape[1], X.dtype)
        for start in range(0, n, step):
            stop = min(start + step, n)
            lo, hi = np.searchsorted(sample, [start, stop])
            keep = np.ones(stop - start, dtype=bool)
            keep[sample[lo:hi] - start] = False
            block = X[start:stop]
            self._stream(block if keep.all() else block[keep])

    def _partial_fit(self, X, first_call):
        if first_call:
            self._start(X)
        if self.__dict__.pop("_grown_early", False):
            warnings.warn(
                "This TreeProjection was pickled (or copied) before its sample of "
                f"max_samples={self.max_samples} rows was full: its trees are the ones "
                f"grown on the {self._n_pending} rows it had, and partial_fit refines "
                "them, where the original grows them again on the full sample. For "
                "the same trees, feed the copy from the start, or pickle after the "
                "sample is full.", UserWarning, stacklevel=4)  # the caller of partial_fit
        if self.method == "random-trees" and self._pending is None and (
            "_cooccurrence" not in self.__dict__
        ):
            raise ValueError(
                "This random-trees TreeProjection was loaded from a pickle, which "
                "keeps the fitted projection but not the leaf statistics that "
                "partial_fit adds to. Call fit, or partial_fit from the start on "
                "a fresh estimator."
            )
        if self._pending is None:  # the trees are grown: stream the rows
            self._stream(X)
            return
        # Still filling the sample: keep rows until there are max_samples.
        room = self.max_samples - self._n_pending
        self._pending.append(np.array(X[:room]))
        self._n_pending += min(room, X.shape[0])
        if self._n_pending == self.max_samples:
            self._grow(self._take_pending())
            if X.shape[0] > room:
                self._stream(X[room:])

    def _start(self, X):
        self._rng = check_random_state(self.random_state)
        self._dtype = X.dtype.name  # (a name: a pickle of it needs no numpy type)
        self._pending, self._n_pending = [], 0
        self._buffer, self._n_buffered = None, 0

    def _take_pending(self):
        rows = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending = None
        return rows

    def _grow_provisionally(self):
        """Grow the trees on the rows fed so far, for the fitted attributes,
        and keep filling the sample: a ``partial_fit`` after a transform (or
        a pickle) grows them again from the same random state once the
        sample is full, as if nothing had been asked in between, rather than
        keeping trees grown on the first chunks."""
        rows = self._take_pending()
        # grown with a copy of the generator: the one kept (which may be the
        # user's RandomState, shared with other estimators) is not advanced
        kept = self._rng
        self._rng = copy.deepcopy(kept)
        try:
            self._grow(rows)
        finally:
            self._rng = kept
            self._pending = [rows]

    def _end_stream(self):
        """The stream is over (``fit_stream`` says so after its pass): grow
        the trees on the sample as it is, for good, and free its rows."""
        if self.__dict__.get("_pending") is not None:
            self._grow(self._take_pending())
            self._drop_derived()
            self._needs_finalize = True

    def _grow(self, rows):
        self._pending = None
        if self.method != "random-trees":
            self._grow_tsvq(rows)
        else:
            self._grow_random_trees(rows)

    def _stream(self, rows):
        if rows.shape[0] == 0:
            return
        step = _block_rows(rows.shape[1], self._dtype)
        if self.method == "random-trees":
            for start in range(0, rows.shape[0], step):
                self._count_leaves(rows[start : start + step])
            return
        # Rows are centred into a buffer and routed a block at a time:
        # routing has a fixed cost per call, which small chunks would pay
        # again and again.
        if self._buffer is None:
            self._buffer = np.empty((step, rows.shape[1]), dtype=self._dtype)
            self._n_buffered = 0
        start = 0
        while start < rows.shape[0]:
            take = min(step - self._n_buffered, rows.shape[0] - start)
            into = self._buffer[self._n_buffered : self._n_buffered + take]
            if self._exponent == 0:
                np.subtract(rows[start : start + take], self._origin, out=into)
            else:
                into[:] = to_unit(rows[start : start + take], self._origin, self._exponent)
            self._n_buffered += take
            start += take
            if self._n_buffered == step:
                self._flush(release=False)

    def _flush(self, release):
        """Route the buffered rows; ``release`` also frees the buffer."""
        if self._buffer is not None and self._n_buffered:
            # the prototypes before the update, kept in case the rows overflow
            # them (a few nodes by d: small)
            before = self._centers.copy(), self._sizes.copy()
            with np.errstate(over="ignore", invalid="ignore"):
                self._update_prototypes(self._buffer[: self._n_buffered], lloyd=False)
            if not np.isfinite(self._centers).all():
                self._centers, self._sizes = before
                self._set_routing()
                self._n_buffered = 0
                raise ValueError(
                    "TreeProjection cannot take these rows: they lie so far beyond "
                    "the rows the tree was grown on that the prototypes overflow "
                    "(the chunk was not learned from). Scale the data (for example "
                    "with sklearn's StandardScaler) so that every chunk is of the "
                    "same magnitude."
                )
        self._n_buffered = 0
        if release:
            self._buffer = None

    def _finalize(self):
        if self._pending is not None:  # fewer rows than max_samples so far
            self._grow_provisionally()
        if self.method != "random-trees":
            self._flush(release=True)
            self._finalize_tsvq()
        else:
            self._finalize_random_trees()

    def _transform(self, X):
        if self.method != "random-trees":
            return self._closeness(X)
        return self._embed(X)

    def _transform_wide_range(self, X):
        if self.method == "random-trees":
            return None  # a sum of table rows: nothing to overflow
        distances = wide_range_distances(
            X, self._origin.astype(np.float64), self._exponent, self._prototypes,
            axes=self._axes_or_none())
        return distances * (-1.0 / self._scale)

    def _export(self):
        """The runtime's ``closeness`` (tsvq) or ``random_trees`` step."""
        self._ensure_finalized()
        if self.method != "random-trees":
            origin = self._origin.astype(np.float64)
            arrays = {"origin": origin, "prototypes": self.cluster_centers_ - origin}
            if self._axes_or_none() is not None:
                # prototype by prototype, m rows each (rows are output
                # channels: one int8 scale per axis)
                arrays["axes"] = self.local_axes_.reshape(-1, self.n_features_in_)
            return "closeness", {"scale": float(self.scale_)}, arrays, {"prototypes"} | (
                {"axes"} & set(arrays))
        trees = [tree.tree_ for tree in self.embedding_.estimators_]
        return "random_trees", {"depth": int(max(tree.max_depth for tree in trees))}, {
            **forest_arrays(trees, self._leaf_column, self._leaf_offsets),
            # rows of the stored matrices are output channels: one int8
            # scale per output column of the lookup table
            "lookup": self._lookup.T,
            "shift": self._lookup_shift,
        }, {"lookup"}

    def _has_inverse_transform(self):
        # a quantizer decodes; the random trees' leaf indicators do not
        return self.method != "random-trees"

    def _inverse_transform(self, Z):
        # decoding a quantizer: each row becomes its closest prototype
        return self.cluster_centers_[np.argmax(Z, axis=1)]

    # ------------------------------------------------------------------- tsvq
    def _grow_tsvq(self, rows):
        # Work in coordinates centred on the sample mean: the hyperplane tests
        # and distances, computed in the input dtype, then lose no precision
        # to a far-off origin. Data near the float range (or tiny) are also
        # divided by a power of two, so that their squares neither overflow
        # nor underflow (the exponent is 0 for data of ordinary magnitude).
        origin = safe_mean(rows)
        self._exponent = choose_exponent(peak_magnitude(rows, origin), rows.dtype)
        self._origin = origin.astype(rows.dtype)
        centred = to_unit(rows, self._origin, self._exponent)
        spread = np.einsum("ij,ij->", centred, centred, dtype=np.float64)
        # (in units of 2**_exponent)
        self._scale = math.sqrt(spread / rows.shape[0]) or 1.0
        centers, sizes, children = grow(centred, self.n_components, self._rng)
        n_leaves = int(np.sum(children[:, 0] < 0))
        if n_leaves < self.n_components:
            warnings.warn(
                f"The {rows.shape[0]} rows the tree is grown on hold only "
                f"{n_leaves} distinct point(s), fewer than n_components="
                f"{self.n_components}: duplicated rows cannot be split. The tree "
                f"has {n_leaves} leaves and n_components_={n_leaves}. Pass "
                "fewer n_components or more varied rows.",
                UserWarning,
            )
        self.n_components_ = n_leaves
        self._centers, self._sizes, self._children = centers, sizes, children
        self._leaves = leaf_order(children)
        depth = depths(children)
        self._depth = int(depth.max())
        internal = np.flatnonzero(children[:, 0] >= 0)
        # internal nodes grouped by depth, deepest first, for bottom-up updates
        self._internal_by_depth = [
            internal[depth[internal] == level] for level in range(self._depth - 1, -1, -1)
        ]
        # the routing structure: blocks of hyperplanes down to the buckets
        self._is_bucket, self._bucket_columns = buckets(children, self._leaves)
        # 16-bit sort keys for the buckets (numpy radix-sorts them)
        key = np.uint16 if children.shape[0] < 2**16 else np.uint32
        self._bucket_rank = np.cumsum(self._is_bucket, dtype=key)
        self._blocks, pending = {}, [0]
        while pending:
            root = pending.pop()
            if self._is_bucket[root]:
                continue
            block = RoutingBlock(root, children, self._is_bucket)
            self._blocks[root] = block
            pending.extend(node for node in block.exits if not self._is_bucket[node])
        self._set_routing()
        for _ in range(self.refine_iter):
            self._update_prototypes(centred, lloyd=True)
        self._axes = self._local_axes(centred) if self.method == "tsvq-local" else None

    def _local_axes(self, centred):
        """``(n_leaves, m, d)``: each leaf's leading principal axes of the
        sample rows nearest it (see :func:`._tree_local.leaf_axes`); ``m``
        is at most half the columns: a subspace spanning them all would
        leave no distance to measure (one column: no subspace, tsvq's
        features)."""
        m = min(int(self.local_components), centred.shape[1] // 2)
        seeds = self._rng.randint(np.iinfo(np.int32).max, size=self._leaves.size) if m else None
        return leaf_axes(centred, self._nearest(centred), self._prototypes, m,
                         self._scale, seeds)

    def _set_routing(self):
        """Hyperplanes of the internal nodes, from their children's
        prototypes (each node's bisector), and the leaf prototypes."""
        internal = np.flatnonzero(self._children[:, 0] >= 0)
        left = self._centers[self._children[internal, 0]]
        right = self._centers[self._children[internal, 1]]
        self._normals = np.zeros_like(self._centers)
        self._offsets = np.zeros(self._centers.shape[0])
        self._normals[internal] = right - left
        self._offsets[internal] = 0.5 * (
            np.einsum("ij,ij->i", right, right) - np.einsum("ij,ij->i", left, left)
        )
        norms = np.sqrt(np.einsum("ij,ij->i", self._normals, self._normals))
        self._inverse_norms = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self._prototypes = self._centers[self._leaves]
        self._prototype_norms = np.einsum("ij,ij->i", self._prototypes, self._prototypes)

    def _exits(self, block, part, probe):
        return block_exits(block, part, self._normals, self._offsets, self._inverse_norms,
                           probe)

    def _route(self, centred):
        """Leaf column of each (centred) row.

        Hyperplane tests, a block of nodes per matrix product, take each row
        down to a bucket; the top block also follows a second path, with its
        least certain test flipped. Among the leaves of the bucket(s) a row
        reaches, one matrix product finds the nearest.
        """
        n = centred.shape[0]
        line = np.arange(n)
        if self._is_bucket[0]:
            entry_row, entry_node = line, np.zeros(n, dtype=np.intp)
        else:
            first, second = self._exits(self._blocks[0], centred, probe=True)
            distinct = second != first
            entry_row = np.concatenate([line, line[distinct]])
            entry_node = np.concatenate([first, second[distinct]])
        # deeper blocks, one path each
        while True:
            deeper = ~self._is_bucket[entry_node]
            if not deeper.any():
                break
            for node in np.unique(entry_node[deeper]):
                chosen = np.flatnonzero(entry_node == node)
                part = np.take(centred, entry_row[chosen], axis=0)
                entry_node[chosen] = self._exits(self._blocks[node], part, probe=False)
        # entries sorted by bucket (a radix sort on 16-bit keys): one gather,
        # then a contiguous slice per bucket
        order = np.argsort(self._bucket_rank[entry_node], kind="stable")
        entry_node, entry_row = entry_node[order], entry_row[order]
        starts = np.flatnonzero(np.r_[True, entry_node[1:] != entry_node[:-1], True])
        grouped = np.take(centred, entry_row, axis=0)
        prototypes = self._prototypes.astype(centred.dtype)
        norms = self._prototype_norms.astype(centred.dtype)
        best_score = np.full(n, np.inf, dtype=centred.dtype)
        columns = np.zeros(n, dtype=np.intp)
        for start, stop in zip(starts[:-1], starts[1:]):
            members = self._bucket_columns[entry_node[start]]
            rows = entry_row[start:stop]
            # nearest leaf: argmin of |c|^2 - 2 x.c (|x|^2 is the same for all)
            scores = grouped[start:stop] @ (-2 * prototypes[members].T)
            scores += norms[members]
            pick = np.argmin(scores, axis=1)
            score = scores[np.arange(rows.size), pick]
            better = score < best_score[rows]  # a row is in a bucket once
            best_score[rows[better]] = score[better]
            columns[rows[better]] = members[pick[better]]
        return columns

    def _nearest(self, centred):
        """Exact nearest leaf of each row, by brute force (O(d k) a row)."""
        prototypes = self._prototypes.astype(centred.dtype)
        norms = self._prototype_norms.astype(centred.dtype)
        columns = np.empty(centred.shape[0], dtype=np.intp)
        for start in range(0, centred.shape[0], 8192):
            scores = centred[start : start + 8192] @ (-2 * prototypes.T)
            scores += norms
            columns[start : start + 8192] = np.argmin(scores, axis=1)
        return columns

    def _update_prototypes(self, centred, lloyd):
        """Assign the rows to leaves (their exact nearest with ``lloyd``, a
        Lloyd iteration on the sample; else routed down the tree, a
        mini-batch step) and move the prototypes (see
        :func:`._tree_structure.move_prototypes`)."""
        columns = self._nearest(centred) if lloyd else self._route(centred)
        move_prototypes(centred, columns, self._centers, self._sizes, self._leaves,
                        self._children, self._internal_by_depth, lloyd)
        self._set_routing()

    def _finalize_tsvq(self):
        children = self._children
        parent = np.full(children.shape[0], -1, dtype=np.intp)
        internal = children[:, 0] >= 0
        parent[children[internal, 0]] = np.flatnonzero(internal)
        parent[children[internal, 1]] = np.flatnonzero(internal)
        origin = self._origin.astype(np.float64)
        if self._exponent == 0:
            self.node_centers_ = self._centers + origin
        else:  # added in the working units, so that nothing overflows
            with np.errstate(over="ignore"):  # (refused after the fit, by name)
                self.node_centers_ = np.ldexp(
                    self._centers + np.ldexp(origin, -self._exponent), self._exponent)
        self.node_sizes_ = self._sizes.copy()
        self.children_ = children.copy()
        self.parent_ = parent
        self.leaves_ = self._leaves.copy()
        self.leaf_sizes_ = self.node_sizes_[self._leaves]
        self.cluster_centers_ = self.node_centers_[self._leaves]
        self.max_depth_ = self._depth
        with np.errstate(over="ignore"):
            self.scale_ = float(np.ldexp(self._scale, self._exponent))
        if getattr(self, "_axes", None) is not None:
            # directions, the same in every unit (one array: a pickle stores it once)
            self.local_axes_ = self._axes

    def _axes_or_none(self):
        """The local axes, or None without any (another method, or a leaf
        subspace of no dimension)."""
        axes = getattr(self, "_axes", None)
        return None if axes is None or axes.shape[1] == 0 else axes

    def _local_arrays(self, dtype):
        """The kernel's ``axes`` (d, k m) and ``axis_offsets`` (k m,), or
        ``(None, None)`` without local axes."""
        axes = self._axes_or_none()
        if axes is None:
            return None, None
        axes_t, offsets = kernels.local_frame(axes.reshape(-1, axes.shape[2]), self._prototypes)
        return axes_t.astype(dtype), offsets.astype(dtype)

    def _closeness(self, X):
        axes, offsets = self._local_arrays(X.dtype)
        return kernels.closeness(
            to_unit(X, self._origin, self._exponent),
            -2.0 * self._prototypes.T.astype(X.dtype),
            self._prototype_norms.astype(X.dtype), X.dtype.type(-1.0 / self._scale),
            axes, offsets)

    def apply(self, X):
        """Route each row down the tree(s) to its leaf.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to route, finite, with the columns seen in ``fit``.

        Returns
        -------
        leaves : ndarray of shape (n_samples,) or (n_samples, n_estimators)
            ``"tsvq"``: the output column of each row's leaf (its
            tree-quantized code), found in O(d log k) per row.
            ``"random-trees"``: each row's leaf index in every tree.
        """
        check_is_fitted(self, "n_samples_seen_")
        self._ensure_finalized()
        X = self._validate_input(X, reset=False)
        if self.method == "random-trees":
            return self._leaf_indices(X) - self._leaf_offsets[:-1]
        step = _block_rows(X.shape[1], X.dtype)
        return np.concatenate([
            self._route(to_unit(X[start : start + step], self._origin, self._exponent))
            for start in range(0, X.shape[0], step)
        ])

    # ----------------------------------------------------------- random-trees
    # (the arithmetic is in _tree_random.py; the state stays here)
    def _grow_random_trees(self, rows):
        self._embedding, self._leaf_column, self._leaf_offsets = grow_forest(
            rows, self.n_estimators, self._resolve_depth(),
            self._rng.randint(np.iinfo(np.int32).max))
        n_leaves = int(self._leaf_offsets[-1])
        self._cooccurrence = scipy.sparse.csr_matrix((n_leaves, n_leaves))
        self._stream(rows)

    def _leaf_indices(self, X):
        """Global indicator column of each row's leaf in every tree."""
        return leaf_indices(X, self._embedding, self._leaf_column, self._leaf_offsets)

    def _count_leaves(self, rows):
        """Add the rows' leaf co-occurrence counts (the indicators' Gram matrix)."""
        self._cooccurrence = self._cooccurrence + cooccurrence(
            self._leaf_indices(rows), int(self._leaf_offsets[-1]))

    def _finalize_random_trees(self):
        components, mean, eigenvalues = indicator_axes(
            self._cooccurrence, self.n_samples_seen_, self.n_components)
        self.n_components_ = components.shape[0]
        self.embedding_ = self._embedding
        self.components_ = components
        self.indicator_mean_ = mean
        self.explained_variance_ = eigenvalues
        self.max_depth_ = self._resolve_depth()
        # transform is a sum of one row of this table per tree
        self._lookup = components.T.copy()
        self._lookup_shift = mean @ self._lookup

    def _embed(self, X):
        # the leaves by scikit-learn's trees (compiled), the sum as served
        return kernels.leaf_lookup(self._leaf_indices(X), self._lookup.astype(X.dtype),
                                   self._lookup_shift.astype(X.dtype))


register_export(TreeProjection)
