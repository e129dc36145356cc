"""The union family: principal components next to a spectral embedding.

A linear map keeps what varies most across the whole data set; a spectral
embedding of the kNN graph keeps which rows are near which, what a linear
map flattens away. Measured on digits and on a 28 x 28 image set (see the
benchmarks page), a classifier on both, at the same total
``n_components``, beats it on either alone; so the union is a family of its
own, searched like the others.

The two parts are fitted on the same rows, side by side (neither sees the
other's output), so the union streams as its parts do: ``partial_fit``
feeds each chunk to both.
"""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .._registry import register_export
from ._base import BaseProjection
from ._column import ColumnProjection
from ._graph import GraphProjection


class UnionProjection(BaseProjection):
    """Principal components and a spectral graph embedding, side by side.

    The first ``n_linear`` output columns are the data's leading principal
    components (a :class:`ColumnProjection`), the other ``n_components -
    n_linear`` its Laplacian eigenmap (a :class:`GraphProjection`), both
    fitted on the same rows. A new row's embedding depends on that row only.

    Parameters
    ----------
    n_components : int, default=32
        Number of output dimensions, both parts together.
    method : {"pca+spectral"}, default="pca+spectral"
        The parts: principal components and the spectral embedding.
    n_linear : int or None, default=None
        How many of the ``n_components`` are principal components (below
        ``n_components``, at most the number of input columns); ``None``:
        half of them, rounded down.
    n_neighbors : int, default=10
        The graph part's neighbours (see :class:`GraphProjection`).
    n_landmarks : int, default=2000
        The most rows the graph part is built on (see
        :class:`GraphProjection`).
    pca_components : int or None, default=64
        The graph part's principal subspace, on data with more columns (see
        :class:`GraphProjection`).
    random_state : int, RandomState instance or None, default=None
        Seeds the graph part's landmark sample and eigensolver.

    Attributes
    ----------
    n_components_ : int
        Number of output dimensions.
    n_linear_ : int
        Number of principal components among them (the first columns).
    n_features_in_ : int
        Number of columns seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of the columns seen during fit, when they are all strings.
    n_samples_seen_ : int
        Number of rows the projection has been fitted on.
    linear_ : ColumnProjection or None
        The fitted principal components (None when ``n_linear_`` is 0).
    graph_ : GraphProjection
        The fitted spectral embedding.

    See Also
    --------
    ColumnProjection : the linear part alone.
    GraphProjection : the graph part alone.
    sklearn.pipeline.FeatureUnion : the same arrangement for any transformers
        (without a quantized export).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skquant import UnionProjection
    >>> X, _ = load_digits(return_X_y=True)
    >>> proj = UnionProjection(n_components=16, random_state=0).fit(X)
    >>> proj.transform(X).shape
    (1797, 16)
    >>> proj.n_linear_, proj.graph_.n_components_
    (8, 8)
    >>> import numpy as np
    >>> bool(np.allclose(proj.transform(X[:5]), proj.transform(X)[:5]))
    True
    """

    _parameter_constraints: dict = {
        **BaseProjection._parameter_constraints,
        "method": [StrOptions({"pca+spectral"})],
        "n_linear": [Interval(Integral, 0, None, closed="left"), None],
        # the graph part's, as GraphProjection declares them
        **{name: GraphProjection._parameter_constraints[name]
           for name in ("n_neighbors", "n_landmarks", "pca_components", "random_state")},
    }

    def __init__(
        self,
        n_components=32,
        *,
        method="pca+spectral",
        n_linear=None,
        n_neighbors=10,
        n_landmarks=2000,
        pca_components=64,
        random_state=None,
    ):
        super().__init__(n_components)
        self.method = method
        self.n_linear = n_linear
        self.n_neighbors = n_neighbors
        self.n_landmarks = n_landmarks
        self.pca_components = pca_components
        self.random_state = random_state

    def __setstate__(self, state):
        super().__setstate__(state)
        # a part loaded without its running statistics (the column family's
        # scatter, the graph's landmark rows): partial_fit starts the whole
        # union afresh, with a warning, rather than one part alone
        parts = (state.get("linear_"), state.get("graph_"))
        if any(part is not None and vars(part).get("_stream_dropped") for part in parts):
            self._stream_dropped = True

    # ------------------------------------------------------------------ hooks
    def _split(self):
        """``(principal components, graph dimensions)``."""
        n_linear = self.n_components // 2 if self.n_linear is None else self.n_linear
        return n_linear, self.n_components - n_linear

    def _parts(self):
        n_linear, n_graph = self._split()
        linear = ColumnProjection(n_linear, method="pca") if n_linear else None
        graph = GraphProjection(n_graph, method="spectral", n_neighbors=self.n_neighbors,
                                n_landmarks=self.n_landmarks,
                                pca_components=self.pca_components,
                                random_state=self.random_state)
        return linear, graph

    def _max_components(self, n_samples, n_features):
        linear, graph = ColumnProjection(method="pca"), GraphProjection(
            method="spectral", n_landmarks=self.n_landmarks)
        linear_limit, linear_reason = linear._max_components(n_samples, n_features)
        graph_limit, graph_reason = graph._max_components(n_samples, n_features)
        reason = f"principal components: {linear_reason}; graph: {graph_reason}"
        if self.n_linear is None:  # half each: the linear part rounds down
            return min(2 * linear_limit + 1, 2 * graph_limit), reason
        return min(self.n_linear, linear_limit) + graph_limit, reason

    def _check_split(self, n_samples, n_features):
        n_linear, n_graph = self._split()
        if n_graph < 1:
            raise ValueError(
                f"n_linear={self.n_linear} leaves no dimension of n_components="
                f"{self.n_components} to the graph part. Choose n_linear below "
                "n_components (or use ColumnProjection for principal components alone).")
        limit, reason = ColumnProjection(method="pca")._max_components(n_samples, n_features)
        if n_linear > limit:
            raise ValueError(
                f"n_linear={n_linear} principal components is more than {limit}, the "
                f"most the data give ({reason}). Choose n_linear <= {limit}.")

    def _fit(self, X):
        self._check_split(*X.shape)
        linear, graph = self._parts()
        if linear is not None:
            linear.fit(X)
        graph.fit(X)
        self.linear_, self.graph_, self.n_linear_ = linear, graph, self._split()[0]

    def _partial_fit(self, X, first_call):
        if first_call:
            self._check_split(*X.shape)
            linear, graph = self._parts()
        else:
            linear, graph = self.linear_, self.graph_
        if linear is not None:
            linear.partial_fit(X)
        graph.partial_fit(X)
        self.linear_, self.graph_, self.n_linear_ = linear, graph, self._split()[0]

    def _finalize(self):
        # each part derives its own attributes (and raises its own errors)
        for part in (self.linear_, self.graph_):
            if part is not None:
                part._ensure_finalized()

    def _transform(self, X):
        parts = [self.graph_.transform(X)]
        if self.linear_ is not None:
            parts.insert(0, self.linear_.transform(X))
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def _export(self):
        """The runtime's ``union`` step: both parts' arrays, side by side
        (their names do not collide); a graph part alone exports as it is."""
        self._ensure_finalized()
        graph_kind, params, arrays, weights = self.graph_._export()
        if self.linear_ is None:
            return graph_kind, params, arrays, weights
        _, _, linear_arrays, linear_weights = self.linear_._export()
        return "union", params, {**linear_arrays, **arrays}, weights | linear_weights


register_export(UnionProjection)
