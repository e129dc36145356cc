"""The graph family: projections through a k-nearest-neighbour graph.

Both methods build one graph on a bounded set of landmark rows (all rows up
to ``n_landmarks``, else a seeded uniform sample), so the fit costs the same
however many rows there are:

- ``"spectral"``: Laplacian eigenmaps, the eigenvectors of the graph's
  normalized adjacency. A new row is embedded by the Nyström extension: the
  eigenvector equation applied at the row, a weighted average of its
  nearest landmarks' coordinates. A training landmark passed to
  ``transform`` lands near its own coordinates.
- ``"lpp"``: locality preserving projections, the linear map whose output
  best keeps graph neighbours together (a d x d generalized eigenproblem);
  transform is one matrix product.

The edge weights are a heat kernel with local scaling (Zelnik-Manor and
Perona): ``exp(-d_ij^2 / (s_i s_j))``, with ``s_i`` the distance from row i
to its ``n_neighbors``-th neighbour, so that dense and sparse regions of the
data are treated alike (for a landmark with ``n_neighbors`` duplicates or
more, to its ``n_neighbors``-th distinct neighbour). Data near the float
range are centred and divided by a power of two first, so that no squared
distance overflows; the embedding does not depend on the data's scale.
"""

import warnings
from numbers import Integral

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import svd_flip
from sklearn.utils.validation import check_random_state

from .. import kernels
from .._registry import register_export
from .._validation import safe_mean
from ..kernels import kernel_weights, nearest_landmarks
from ._base import BaseProjection
from ._scaling import (
    choose_exponent,
    peak_magnitude,
    to_unit,
    wide_range_affine,
    wide_range_distances,
)

# Below this many landmarks a dense eigensolver is as fast as ARPACK and
# needs no start vector.
_DENSE_EIGEN_LIMIT = 600

# Rows embedded per block in transform: bounds the (rows x neighbours x
# components) gather.
_TRANSFORM_BLOCK = 8192


def _local_scale(distances, floor):
    """Each row's distance to its farthest listed neighbour, at least ``floor``.

    Duplicated rows can put every listed neighbour at distance 0; a scale of
    0 would make the kernel undefined.
    """
    return np.maximum(distances[:, -1].astype(np.float64), floor)


def _distinct_scale(landmarks, distances, scale, k):
    """The scales of landmarks with ``k`` or more duplicates, from their
    ``k``-th nearest *distinct* landmark.

    Their listed neighbours are all at distance 0. The floor alone would
    make their kernel so narrow that the landmarks around them, at
    ordinary distances, hang on edges of weight near 1e-300, and their
    spectral coordinates (which grow as one over the square root of the
    degree) reach 1e150: infinite in float32.
    """
    duplicated = np.flatnonzero(distances[:, -1] == 0)
    distinct = np.unique(landmarks, axis=0)
    if distinct.shape[0] < 2:
        return scale  # one point: the floor is all there is
    from sklearn.neighbors import NearestNeighbors

    # the nearest distinct row is the landmark itself, at distance 0
    n_neighbors = min(k + 1, distinct.shape[0])
    found, _ = NearestNeighbors(n_neighbors=n_neighbors).fit(distinct).kneighbors(
        landmarks[duplicated])
    scale = scale.copy()
    scale[duplicated] = np.maximum(found[:, -1], scale[duplicated])
    return scale


def _kernel_exponents(distances, scale, neighbour_scale):
    """``d**2 / (s_row s_neighbour)``, as ``(d / s_row) (d / s_neighbour)``,
    which does not overflow on the way."""
    distances = distances.astype(np.float64)
    with np.errstate(over="ignore"):
        exponents = (distances / scale[:, None]) * (distances / neighbour_scale)
    return np.minimum(exponents, np.finfo(np.float64).max)


def _principal_axes(rows, n_axes):
    """The mean and the ``n_axes`` leading principal axes (orthonormal rows,
    signs fixed by ``svd_flip``) of ``rows``, computed in the working units
    of :func:`_working_units`, so that rows near the float range give them
    without overflow; the mean in the rows' own units."""
    origin, exponent = _working_units(rows)
    work = np.asarray(rows, dtype=np.float64)
    if origin is not None:
        work = to_unit(work, origin, exponent)
    centre = work.mean(axis=0)
    u, _, vt = scipy.linalg.svd(work - centre, full_matrices=False)
    u, vt = svd_flip(u, vt)
    mean = centre if origin is None else origin + np.ldexp(centre, exponent)
    return mean, np.ascontiguousarray(vt[:n_axes])


def _working_units(landmarks):
    """``(origin, exponent)`` of the units the graph is built in.

    ``(None, 0)``, the landmarks as they are, for data of ordinary
    magnitude (as the serving runtime computes). Near the float range (or
    tiny), the landmarks centred on their mean and divided by a power of
    two, so that no squared distance overflows or underflows.
    """
    landmarks = landmarks.astype(np.float64)
    if choose_exponent(peak_magnitude(landmarks), np.float64) == 0:
        return None, 0
    origin = safe_mean(landmarks)
    peak = peak_magnitude(landmarks, origin)
    return origin, (int(np.frexp(peak)[1]) if peak < np.inf else 1024)


class GraphProjection(BaseProjection):
    """Graph projection: Laplacian eigenmaps or locality preserving projections.

    The graph family suits data whose rows lie on a manifold or have spatial
    structure (images, sensor grids). It builds a k-nearest-neighbour graph
    on at most ``n_landmarks`` rows, so fitting costs the same however many
    rows there are, and it embeds new rows one at a time and
    deterministically: ``transform(X)[i]`` does not depend on the other rows
    of ``X`` (beyond the last bits of float64 rounding, which BLAS's matrix
    products vary with the number of rows, as for PCA).

    Parameters
    ----------
    n_components : int, default=32
        Number of output dimensions: below the number of landmarks
        (``"spectral"``), at most the number of input columns (``"lpp"``).
    method : {"spectral", "lpp"}, default="spectral"
        - ``"spectral"``: Laplacian eigenmaps. The landmarks' coordinates are
          the leading nontrivial eigenvectors of the graph's normalized
          adjacency ``D^-1/2 W D^-1/2`` (random-walk normalized, so that the
          Nyström extension is exact on the graph). A new row's coordinates
          are the kernel-weighted mean of its ``n_neighbors`` nearest
          landmarks' coordinates, divided by the eigenvalue, costing
          O(n_landmarks d) per row for the neighbour search.
        - ``"lpp"``: locality preserving projections: the linear map ``a``
          minimizing ``a' X' L X a`` subject to ``a' X' D X a = 1`` on the
          landmarks. Transform is one matrix product, O(d k) per row.
    n_neighbors : int, default=10
        Neighbours of each landmark in the graph, and landmarks a new row is
        interpolated from. Below the number of landmarks.
    n_landmarks : int, default=2000
        The most rows the graph is built on. ``fit`` draws them uniformly
        (seeded) when there are more rows; ``partial_fit`` keeps a uniform
        reservoir sample of every row it is fed.
    pca_components : int or None, default=64
        ``"spectral"``: with more input columns than this, the graph is built
        on the landmarks' first ``pca_components`` principal components (of
        the landmarks themselves), and new rows are projected on them before
        their neighbours are searched: neighbours in the leading principal
        subspace are less swayed by pixel noise than in the raw columns, and
        the search costs ``pca_components`` instead of ``n_features_in_`` per
        landmark. ``None`` builds it on the columns as they are. (``"lpp"``
        is linear and uses the columns as they are.)
    random_state : int, RandomState instance or None, default=None
        Seeds the landmark sample and the eigensolver's start vector.

    Attributes
    ----------
    n_components_ : int
        Number of output dimensions.
    n_features_in_ : int
        Number of columns seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of the columns seen during fit, when they are all strings.
    n_samples_seen_ : int
        Number of rows the projection has been fitted on.
    landmarks_ : ndarray of shape (n_landmarks, n_graph_features)
        The rows the graph is built on: the landmark rows, or, where
        ``pca_components_`` is set, their principal components.
    pca_mean_ : ndarray of shape (n_features_in,) or None
        ``"spectral"`` with more columns than ``pca_components``: the
        landmarks' mean, subtracted before projecting on ``pca_components_``;
        None otherwise.
    pca_components_ : ndarray of shape (n_graph_features, n_features_in) or None
        The principal axes the graph is built on (orthonormal rows), or
        None.
    n_landmarks_ : int
        Number of landmarks.
    affinity_ : scipy.sparse.csr_matrix of shape (n_landmarks, n_landmarks)
        The symmetric kNN graph's edge weights.
    n_connected_components_ : int
        Connected components of the kNN graph before they were joined (more
        than 1 comes with a warning).
    eigenvalues_ : ndarray of shape (n_components,)
        ``"spectral"``: the eigenvalues of the random-walk matrix ``D^-1 W``
        for each coordinate, in decreasing order (all below 1).
        ``"lpp"``: the generalized eigenvalues, in increasing order.
    embedding_ : ndarray of shape (n_landmarks, n_components)
        ``"spectral"``: the landmarks' coordinates.
    landmark_scale_ : ndarray of shape (n_landmarks,)
        ``"spectral"``: each landmark's local kernel scale: the distance to
        its ``n_neighbors``-th neighbour (distinct neighbour, for a landmark
        with that many duplicates).
    mean_ : ndarray of shape (n_features_in,)
        ``"lpp"``: mean of the landmarks, subtracted before projecting.
    components_ : ndarray of shape (n_components, n_features_in)
        ``"lpp"``: the projection matrix.

    See Also
    --------
    sklearn.manifold.SpectralEmbedding : Laplacian eigenmaps without
        ``transform``.
    sklearn.manifold.Isomap : geodesic embedding, cost growing with n^2.
    ColumnProjection : linear projections (PCA and others).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skquant import GraphProjection
    >>> X, _ = load_digits(return_X_y=True)
    >>> proj = GraphProjection(n_components=8, n_landmarks=1000, random_state=0).fit(X)
    >>> proj.transform(X).shape
    (1797, 8)
    >>> proj.embedding_.shape
    (1000, 8)
    >>> bool(np.allclose(proj.transform(X[:5]), proj.transform(X)[:5], rtol=1e-12))
    True
    >>> GraphProjection(n_components=8, method="lpp").fit(X).components_.shape
    (8, 64)
    """

    _parameter_constraints: dict = {
        **BaseProjection._parameter_constraints,
        "method": [StrOptions({"spectral", "lpp"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "n_landmarks": [Interval(Integral, 3, None, closed="left")],
        "pca_components": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    _derived_attributes = (
        "landmarks_",
        "n_landmarks_",
        "affinity_",
        "n_connected_components_",
        "eigenvalues_",
        "embedding_",
        "landmark_scale_",
        "mean_",
        "components_",
        "pca_mean_",
        "pca_components_",
    )

    def __init__(
        self,
        n_components=32,
        *,
        method="spectral",
        n_neighbors=10,
        n_landmarks=2000,
        pca_components=64,
        random_state=None,
    ):
        super().__init__(n_components)
        self.method = method
        self.n_neighbors = n_neighbors
        self.n_landmarks = n_landmarks
        self.pca_components = pca_components
        self.random_state = random_state

    # the working units of the graph (see _working_units): none, the
    # landmarks as they are, for data of ordinary magnitude and for
    # projections pickled before the units existed. For lpp, _exponent is
    # the power of two its centred rows are divided by.
    _origin = None
    _exponent = 0

    # derived from landmarks_ and embedding_: rebuilt on load, not stored twice
    _transient_attributes = ("_coordinates", "_landmarks64", "_landmark_norms",
                             "_landmark_scale_work", "_floor_work")

    def __getstate__(self):
        state = super().__getstate__()
        if state.get("_reservoir") is not None and state["_reservoir"] is state.get(
                "landmarks_"):
            # the same array: stored once (joblib's pickler would write it twice)
            state["_reservoir"] = "landmarks_"
        elif state.get("pca_components_") is not None and "embedding_" in state:
            # the landmark rows themselves (n_landmarks x n_features_in) serve
            # only partial_fit, whose reservoir they are: a pickle holds their
            # principal components; partial_fit on a loaded projection warns
            # and starts afresh (as the Cleaner's and the column family's do)
            state.pop("_reservoir", None)
            state["_stream_dropped"] = True
        affinity = state.get("affinity_")
        if scipy.sparse.issparse(affinity):
            # as plain arrays, which skops loads without trusting scipy's types
            affinity = affinity.tocsr()
            state["affinity_"] = {"csr": (affinity.data, affinity.indices, affinity.indptr),
                                  "shape": list(affinity.shape)}
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("affinity_"), dict):
            parts = state["affinity_"]
            state["affinity_"] = scipy.sparse.csr_matrix(tuple(parts["csr"]),
                                                         shape=tuple(parts["shape"]))
        if isinstance(state.get("_reservoir"), str):
            state["_reservoir"] = state["landmarks_"]
        super().__setstate__(state)
        if "embedding_" in state:
            self._set_interpolation()

    # ------------------------------------------------------------------ hooks
    def _max_components(self, n_samples, n_features):
        n_landmarks = min(n_samples, self.n_landmarks)
        if self.method == "lpp":
            return n_features, f"X has {n_features} columns"
        return n_landmarks - 1, (
            f"the graph has {n_landmarks} landmark rows and one eigenvector is "
            "trivial"
        )

    def _fit(self, X):
        self._start(X)
        n = X.shape[0]
        if n <= self.n_landmarks:
            self._reservoir = X.copy()
        else:
            draw = np.random.default_rng(self._rng.randint(np.iinfo(np.int32).max))
            self._reservoir = X[np.sort(draw.choice(n, self.n_landmarks, replace=False))]
        self._n_offered = n

    def _partial_fit(self, X, first_call):
        if first_call:
            self._start(X)
        # Reservoir sampling (algorithm R): after t rows, each is kept with
        # probability n_landmarks / t, so the landmarks are a uniform sample
        # of the whole stream.
        room = self.n_landmarks - self._reservoir.shape[0]
        if room > 0:
            self._reservoir = np.concatenate([self._reservoir, X[:room]])
            self._n_offered += min(room, X.shape[0])
            X = X[room:]
        if X.shape[0]:
            seen = self._n_offered + 1 + np.arange(X.shape[0])
            slots = (self._rng.uniform(size=X.shape[0]) * seen).astype(np.int64)
            kept = np.flatnonzero(slots < self.n_landmarks)
            # a slot written twice keeps the later row, as a loop would
            last = np.unique(slots[kept][::-1], return_index=True)[1]
            chosen = kept[::-1][last]
            self._reservoir[slots[chosen]] = X[chosen]
            self._n_offered += X.shape[0]

    def _start(self, X):
        self._rng = check_random_state(self.random_state)
        self._reservoir = np.empty((0, X.shape[1]), dtype=X.dtype)
        self._n_offered = 0

    def _reduces(self, n_features):
        return (self.method == "spectral" and self.pca_components is not None
                and n_features > self.pca_components)

    def _finalize(self):
        from sklearn.neighbors import NearestNeighbors

        landmarks = self._reservoir
        m = landmarks.shape[0]
        self.pca_mean_ = self.pca_components_ = None
        if self._reduces(landmarks.shape[1]) and m > 1:
            self.pca_mean_, self.pca_components_ = _principal_axes(
                landmarks, min(self.pca_components, m - 1))
            landmarks = self._reduce(landmarks)
        if self.n_neighbors >= m:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} must be below the number of "
                f"landmark rows, {m}. Choose n_neighbors <= {m - 1} or fit on "
                "more rows."
            )
        limit, reason = self._max_components(m, self.n_features_in_)
        if self.n_components > limit:
            raise ValueError(
                f"n_components={self.n_components} is larger than {limit}, the most "
                f"GraphProjection can give here ({reason}). Choose n_components "
                f"<= {limit}."
            )
        # the reservoir itself (not a copy): partial_fit drops this attribute
        # before it changes the reservoir, and a pickle stores it once
        self.landmarks_ = landmarks
        self.n_landmarks_ = m
        # the graph is built in working units (see _working_units): the
        # landmarks themselves, unless they lie near the float range
        self._origin, self._exponent = _working_units(landmarks)
        work = self._working(landmarks)
        neighbors = NearestNeighbors(n_neighbors=self.n_neighbors).fit(work)
        distances, indices = neighbors.kneighbors()  # each row's own excluded
        # the floor for duplicated rows: a small fraction of the typical scale,
        # fixed at fit so that a new row's embedding needs no other row
        positive = distances[:, -1][distances[:, -1] > 0]
        floor = 1e-3 * float(np.median(positive)) if positive.size else 1.0
        scale = _local_scale(distances, floor)
        if positive.size < m:
            scale = _distinct_scale(work, distances, scale, self.n_neighbors)
        with np.errstate(over="ignore"):  # (refused after the fit, by name)
            self._scale_floor = float(np.ldexp(floor, self._exponent))
            self.landmark_scale_ = np.ldexp(scale, self._exponent)
        affinity = self._affinity(work, distances, indices, scale)
        self.affinity_ = affinity
        self.n_connected_components_ = self._n_components_before_joining
        rng = check_random_state(self._rng.randint(np.iinfo(np.int32).max))
        if self.method == "spectral":
            self._finalize_spectral(affinity, rng, scale, floor)
        else:
            self._finalize_lpp(affinity, landmarks)
        if self.method == "lpp":
            del self.landmark_scale_
        self.n_components_ = self.n_components

    def _export(self):
        """The runtime's ``linear`` (lpp) or ``nystrom`` (spectral) step."""
        self._ensure_finalized()
        if self.method == "lpp":
            return "linear", {}, {"mean": self.mean_, "components": self.components_}, {
                "components"}
        arrays = {
            "landmarks": self.landmarks_,
            "landmark_scale": self.landmark_scale_,
            "coordinates": self._coordinates.T,  # rows: output columns
        }
        if self.__dict__.get("pca_components_") is not None:
            arrays["reduce_mean"] = self.pca_mean_
            arrays["reduce_components"] = self.pca_components_
        return "nystrom", {
            "n_neighbors": int(self.n_neighbors), "scale_floor": float(self._scale_floor),
        }, arrays, {"landmarks", "coordinates"}

    def _reduce(self, X):
        """Rows projected on the principal axes the graph is built on
        (float64), or the rows as they are without them."""
        if self.__dict__.get("pca_components_") is None:
            return X
        with np.errstate(over="ignore", invalid="ignore"):
            reduced = kernels.linear(np.asarray(X, dtype=np.float64), self.pca_mean_,
                                     self.pca_components_)
        bad = ~np.isfinite(reduced).all(axis=1)
        if bad.any():  # rows near the float range: without overflow on the way
            reduced[bad] = wide_range_affine(X[bad], self.pca_mean_, self.pca_components_)
        return reduced

    def _transform(self, X):
        dtype = X.dtype
        X = self._reduce(X)
        if self.method == "lpp":
            if self._exponent == 0:
                return kernels.linear(X, self.mean_.astype(X.dtype),
                                      self.components_.astype(X.dtype))
            # data near the float range: in the working units of the fit
            components = np.ldexp(self.components_, self._exponent)
            return kernels.linear(to_unit(X, self.mean_, self._exponent), None,
                                  components.astype(X.dtype))
        out = np.empty((X.shape[0], self.n_components_), dtype=dtype)
        for start in range(0, X.shape[0], _TRANSFORM_BLOCK):
            block = self._working(X[start : start + _TRANSFORM_BLOCK])
            # brute force in numpy (one product, a partial sort): for a few
            # thousand landmarks several times faster than NearestNeighbors'
            # per-call overhead, and the same code the serving runtime runs
            distances, indices = nearest_landmarks(
                block, self._landmarks64, self._landmark_norms, self.n_neighbors)
            out[start : start + _TRANSFORM_BLOCK] = self._interpolate(distances, indices)
        return out

    def _transform_wide_range(self, X):
        if self.method == "lpp":
            return wide_range_affine(X, self.mean_, self.components_)
        if self.__dict__.get("pca_components_") is not None:
            X = wide_range_affine(X, self.pca_mean_, self.pca_components_)
        # rows so far from the landmarks that their squared distances
        # overflow: the distances again, each row scaled by a power of two on
        # the way, in units of 2**halvings of the data's own (where the
        # working units could not hold them, nor the data's own units a
        # distance across the whole float range). The kernel depends on
        # ratios of distances only, so the units do not matter.
        halvings = 1 + int(np.ceil(0.5 * np.log2(X.shape[1])))
        tiny = np.finfo(np.float64).smallest_subnormal
        landmarks = np.ldexp(np.asarray(self.landmarks_, dtype=np.float64), -halvings)
        distances, nearest = wide_range_distances(
            X, np.zeros(X.shape[1]), halvings, landmarks, k=self.n_neighbors)
        return self._interpolate(
            distances, nearest,
            max(float(np.ldexp(self._scale_floor, -halvings)), tiny),
            np.maximum(np.ldexp(self.landmark_scale_, -halvings), tiny),
        )

    # ---------------------------------------------------------------- helpers
    def _working(self, X):
        """Rows in the units the graph was built in (float64)."""
        X = np.asarray(X, dtype=np.float64)
        if self._origin is None:
            return X
        return to_unit(X, self._origin, self._exponent)

    def _interpolate(self, distances, indices, floor=None, landmark_scale=None):
        """Nystrom: the eigenvector equation, psi = P psi / lambda, at each row.

        ``distances`` to the ``indices`` landmarks are in working units,
        unless ``floor`` and ``landmark_scale`` are given in theirs.
        """
        if floor is None:
            floor, landmark_scale = self._floor_work, self._landmark_scale_work
        scale = _local_scale(distances, floor)
        # the runtime's own kernel (stable for rows far from every landmark)
        weights = kernel_weights(
            distances.astype(np.float64), scale.astype(np.float64),
            landmark_scale[indices].astype(np.float64))
        return kernels.nystrom(weights, self._coordinates[indices])

    def _affinity(self, landmarks, distances, indices, scale):
        m, k = indices.shape
        weights = np.exp(-_kernel_exponents(distances, scale, scale[indices]))
        graph = scipy.sparse.csr_matrix(
            (weights.ravel(), indices.ravel(), np.arange(0, m * k + 1, k)), shape=(m, m)
        )
        graph = graph.maximum(graph.T).tocsr()
        # an edge whose weight underflowed to 0 is no edge: a landmark left
        # without any is joined below like any other component (a degree of
        # 1e-300 would give it a coordinate of 1e150)
        graph.eliminate_zeros()
        n_parts, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
        self._n_components_before_joining = n_parts
        if n_parts == 1:
            return graph
        warnings.warn(
            f"The {k}-nearest-neighbour graph of the {m} landmarks has {n_parts} "
            "connected components; they were joined by their closest pairs of rows "
            "with weak edges, so the embedding is still defined, but it mostly "
            "separates the components. Raise n_neighbors for a connected graph.",
            UserWarning,
        )
        return self._join_components(graph, landmarks, labels, n_parts)

    def _join_components(self, graph, landmarks, labels, n_parts):
        """Link every component to the nearest row outside it (a weak edge)."""
        from sklearn.metrics import pairwise_distances_argmin_min

        weakest = graph.data.min()
        rows, cols = [], []
        for part in range(n_parts):
            inside = np.flatnonzero(labels == part)
            outside = np.flatnonzero(labels != part)
            nearest, gaps = pairwise_distances_argmin_min(landmarks[inside], landmarks[outside])
            best = int(np.argmin(gaps))
            rows.append(inside[best])
            cols.append(outside[nearest[best]])
        bridges = scipy.sparse.csr_matrix(
            (np.full(len(rows), weakest), (rows, cols)), shape=graph.shape
        )
        graph = graph.maximum(bridges).tocsr()
        graph = graph.maximum(graph.T).tocsr()
        if scipy.sparse.csgraph.connected_components(graph, directed=False)[0] > 1:
            # components that were each other's nearest: repeat on the rest
            _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
            return self._join_components(graph, landmarks, labels, labels.max() + 1)
        return graph

    def _finalize_spectral(self, affinity, rng, scale, floor):
        degree = np.asarray(affinity.sum(axis=1)).ravel()
        inverse_root = 1.0 / np.sqrt(degree)
        normalized = scipy.sparse.diags(inverse_root) @ affinity @ scipy.sparse.diags(inverse_root)
        m, k = affinity.shape[0], self.n_components + 1
        if m <= _DENSE_EIGEN_LIMIT or k >= m - 1:
            eigenvalues, vectors = scipy.linalg.eigh(
                normalized.toarray(), subset_by_index=[m - k, m - 1]
            )
        else:
            eigenvalues, vectors = scipy.sparse.linalg.eigsh(
                normalized, k=k, which="LA", v0=rng.uniform(-1, 1, m)
            )
        order = np.argsort(eigenvalues)[::-1][1:]  # the top one is trivial (1)
        eigenvalues = eigenvalues[order]
        # random-walk eigenvectors psi = D^-1/2 v, scaled to unit mean square
        # (weighted by degree) so that the output is O(1) at any size
        psi = inverse_root[:, None] * vectors[:, order] * np.sqrt(degree.sum())
        _, psi_t = svd_flip(None, psi.T, u_based_decision=False)  # sign convention
        self.eigenvalues_ = eigenvalues
        self.embedding_ = psi_t.T.copy()
        self._set_interpolation(scale, floor)

    def _set_interpolation(self, scale=None, floor=None):
        """The landmarks (float64, in working units, with their squared
        norms and kernel scales) and the coordinates that transform
        interpolates."""
        self._landmarks64 = np.asarray(self._working(self.landmarks_), dtype=np.float64)
        self._landmark_norms = np.einsum("ij,ij->i", self._landmarks64, self._landmarks64)
        self._landmark_scale_work = (
            np.ldexp(self.landmark_scale_, -self._exponent) if scale is None else scale)
        self._floor_work = (
            float(np.ldexp(self._scale_floor, -self._exponent)) if floor is None else floor)
        # psi_j / lambda: a landmark's own neighbourhood gives back its
        # coordinates
        tiny = np.finfo(float).eps
        self._coordinates = self.embedding_ / np.where(
            np.abs(self.eigenvalues_) > tiny, self.eigenvalues_, tiny)

    def _finalize_lpp(self, affinity, landmarks):
        degree = np.asarray(affinity.sum(axis=1)).ravel()
        landmarks = landmarks.astype(np.float64)
        self.mean_ = safe_mean(landmarks)
        # centred, and divided by a power of two for data near the float
        # range (0 otherwise); transform works in the same units
        self._origin = None  # (the graph's units; lpp's are mean_ and _exponent)
        self._exponent = choose_exponent(peak_magnitude(landmarks, self.mean_), np.float64)
        centred = to_unit(landmarks, self.mean_, self._exponent)
        laplacian = scipy.sparse.diags(degree) - affinity
        spread = centred.T @ (degree[:, None] * centred)
        locality = centred.T @ (laplacian @ centred)
        # a small ridge keeps the constraint matrix definite when columns are
        # constant or collinear
        ridge = 1e-9 * max(np.trace(spread) / spread.shape[0], np.finfo(float).tiny)
        spread[np.diag_indices_from(spread)] += ridge
        eigenvalues, vectors = scipy.linalg.eigh(
            locality, spread, subset_by_index=[0, self.n_components - 1]
        )
        _, components = svd_flip(None, vectors.T, u_based_decision=False)
        self.eigenvalues_ = eigenvalues
        with np.errstate(over="ignore", under="ignore"):  # (refused by name)
            self.components_ = np.ldexp(components * np.sqrt(degree.sum()), -self._exponent)


register_export(GraphProjection)
