"""The column family: linear projections for small and medium data.

Three methods share one one-pass statistics accumulator:

- ``"pca"``: exact principal components from a float64 covariance matrix
  accumulated over row blocks (``partial_fit`` feeds it chunk by chunk);
- ``"qr"``: column-subset selection by column-pivoted QR. Pivoted QR of the
  centred data picks the same columns as pivoted QR of any square root of its
  scatter matrix, so the selection streams through the same accumulator;
- ``"random"``: a sparse random projection (scikit-learn's), which needs no
  statistics at all.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.sparse
from sklearn.random_projection import SparseRandomProjection
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import randomized_svd, svd_flip
from sklearn.utils.validation import check_random_state

from ._base import BaseProjection

# Rows per block when folding data into the scatter matrix: large enough for
# BLAS to run at full speed, small enough that the centred copy stays small.
_BLOCK_ROWS = 8192


class ColumnProjection(BaseProjection):
    """Linear projection: PCA, pivoted-QR column selection or random projection.

    The column family suits small and medium data: fitting costs one pass over
    the rows, and transform is one matrix product (or, for ``"qr"``, a column
    selection).

    Parameters
    ----------
    n_components : int, default=32
        Number of output dimensions. At most the number of input columns.
    method : {"pca", "qr", "random"}, default="pca"
        - ``"pca"``: exact principal components, computed from a float64
          covariance matrix accumulated in one pass over the data;
          ``partial_fit`` accepts the data in chunks. Components have a
          deterministic sign (the largest loading of each is positive).
        - ``"qr"``: keeps ``n_components`` of the original columns, chosen by
          column-pivoted QR of the centred data; transform is a selection and
          :meth:`get_feature_names_out` returns the kept columns' names.
        - ``"random"``: a sparse random projection.
    solver : {"auto", "covariance", "randomized"}, default="auto"
        How ``"pca"`` finds its components. ``"covariance"`` eigendecomposes
        the d x d covariance matrix; ``"randomized"`` runs a randomized SVD on
        the centred data (one-shot ``fit`` only). ``"auto"`` uses the
        covariance unless there are more than ``max_covariance_features``
        columns. Ignored by the other methods.
    max_covariance_features : int, default=4096
        With ``solver="auto"``, the largest number of columns for which a
        d x d covariance matrix is formed.
    density : float or "auto", default="auto"
        Density of the ``"random"`` projection matrix, as in
        :class:`sklearn.random_projection.SparseRandomProjection`.
    random_state : int, RandomState instance or None, default=None
        Seeds the ``"random"`` projection and the ``"randomized"`` solver.

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
    mean_ : ndarray of shape (n_features_in,)
        Per-column mean of the training rows (``"pca"`` and ``"qr"``).
    components_ : ndarray of shape (n_components, n_features_in)
        The projection matrix: principal axes for ``"pca"``, unit rows that
        select columns for ``"qr"``, and the random matrix (sparse) for
        ``"random"`` (dense when the density is 1).
    density_ : float
        Density of the ``"random"`` matrix.
    explained_variance_ : ndarray of shape (n_components,)
        Variance of the training rows along each component (``"pca"``).
    explained_variance_ratio_ : ndarray of shape (n_components,)
        Fraction of the total variance along each component (``"pca"``).
    selected_columns_ : ndarray of shape (n_components,)
        Indices of the kept columns, in pivot order (``"qr"``).
    inverse_components_ : ndarray of shape (n_components, n_features_in)
        Least-squares map from the projection back to the centred input
        (``"qr"`` and ``"random"``).
    solver_ : str
        The solver ``"pca"`` used: ``"covariance"`` or ``"randomized"``.

    See Also
    --------
    sklearn.decomposition.PCA : PCA without chunked fitting.
    sklearn.decomposition.IncrementalPCA : chunked PCA by repeated SVDs.
    sklearn.random_projection.SparseRandomProjection : the ``"random"`` method.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skquant import ColumnProjection
    >>> X, _ = load_digits(return_X_y=True)
    >>> proj = ColumnProjection(n_components=8).fit(X)
    >>> proj.transform(X).shape
    (1797, 8)
    >>> chunked = ColumnProjection(n_components=8)
    >>> for start in range(0, len(X), 500):
    ...     chunked = chunked.partial_fit(X[start:start + 500])
    >>> bool(abs(chunked.components_ - proj.components_).max() < 1e-8)
    True
    >>> ColumnProjection(n_components=3, method="qr").fit(X).get_feature_names_out()
    array(['x42', 'x44', 'x21'], dtype=object)
    """

    _parameter_constraints: dict = {
        **BaseProjection._parameter_constraints,
        "method": [StrOptions({"pca", "qr", "random"})],
        "solver": [StrOptions({"auto", "covariance", "randomized"})],
        "max_covariance_features": [Interval(Integral, 1, None, closed="left")],
        "density": [Interval(Real, 0.0, 1.0, closed="right"), StrOptions({"auto"})],
        "random_state": ["random_state"],
    }

    _derived_attributes = (
        "mean_",
        "components_",
        "explained_variance_",
        "explained_variance_ratio_",
        "selected_columns_",
        "inverse_components_",
    )

    def __init__(
        self,
        n_components=32,
        *,
        method="pca",
        solver="auto",
        max_covariance_features=4096,
        density="auto",
        random_state=None,
    ):
        super().__init__(n_components)
        self.method = method
        self.solver = solver
        self.max_covariance_features = max_covariance_features
        self.density = density
        self.random_state = random_state

    # ------------------------------------------------------------------ hooks
    def _max_components(self, n_samples, n_features):
        return n_features, f"X has {n_features} columns"

    def _resolve_solver(self, n_features):
        if self.method != "pca":
            return None
        if self.solver == "auto":
            return (
                "covariance"
                if n_features <= self.max_covariance_features
                else "randomized"
            )
        return self.solver

    def _partial_fit(self, X, first_call):
        n_features = X.shape[1]
        if first_call:
            self.solver_ = self._resolve_solver(n_features)
            self._scatter = None
            if self.method == "random":
                self._fit_random(X)
            elif self.solver_ != "randomized":
                # Shifting by the first block's mean keeps the float32 block
                # products well conditioned, as centring would.
                self._shift = X[:_BLOCK_ROWS].mean(axis=0, dtype=np.float64)
                self._shifted_sum = np.zeros(n_features)
                self._scatter = np.zeros((n_features, n_features))
            else:
                self._randomized_rows = X
                return
        elif self.solver_ == "randomized":
            raise ValueError(
                "partial_fit cannot use the randomized solver: with "
                f"{n_features} columns (more than max_covariance_features="
                f"{self.max_covariance_features}) no covariance matrix is "
                "formed. Call fit on the whole array, raise "
                "max_covariance_features, or use method='random'."
            )
        if self._scatter is not None:
            self._accumulate(X)

    def _accumulate(self, X):
        shift = self._shift.astype(X.dtype)
        for start in range(0, X.shape[0], _BLOCK_ROWS):
            block = X[start : start + _BLOCK_ROWS] - shift
            # shifted values are small, so a block's sum is exact enough in
            # the input dtype; the running total is float64
            self._shifted_sum += block.sum(axis=0)
            # block.T @ block runs as one symmetric rank-k update (syrk)
            self._scatter += block.T @ block

    def _fit_random(self, X):
        projector = SparseRandomProjection(
            n_components=self.n_components,
            density=self.density,
            dense_output=True,
            random_state=self.random_state,
        ).fit(X[:1])
        self._random_matrix = projector.components_
        self.density_ = projector.density_

    def _finalize(self):
        if self.method == "random":
            self.components_ = self._random_matrix
            dense = (
                self.components_.toarray()
                if scipy.sparse.issparse(self.components_)
                else self.components_
            )
            self.inverse_components_ = np.linalg.pinv(dense).T
            return
        if self.solver_ == "randomized":
            self._finalize_randomized()
            return
        n = self.n_samples_seen_
        mean_offset = self._shifted_sum / n
        self.mean_ = self._shift + mean_offset
        # scatter about the mean = shifted scatter - n * offset offset^T
        covariance = self._scatter - n * np.outer(mean_offset, mean_offset)
        covariance /= max(n - 1, 1)
        if self.method == "pca":
            self._finalize_pca(covariance)
        else:
            self._finalize_qr(covariance)

    def _finalize_pca(self, covariance):
        d, k = covariance.shape[0], self.n_components
        eigenvalues, eigenvectors = scipy.linalg.eigh(
            covariance, subset_by_index=[d - k, d - 1], driver="evr"
        )
        order = np.argsort(eigenvalues)[::-1]
        components = eigenvectors[:, order].T
        # sklearn's convention: the largest loading of each axis is positive
        _, components = svd_flip(None, components, u_based_decision=False)
        total_variance = np.trace(covariance)
        self.components_ = components
        self.explained_variance_ = np.maximum(eigenvalues[order], 0.0)
        self.explained_variance_ratio_ = (
            self.explained_variance_ / total_variance
            if total_variance > 0
            else np.zeros(k)
        )

    def _finalize_randomized(self):
        X = self._randomized_rows
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        centred = X - self.mean_.astype(X.dtype)
        _, singular_values, components = randomized_svd(
            centred,
            self.n_components,
            flip_sign=False,
            random_state=check_random_state(self.random_state),
        )
        _, components = svd_flip(None, components, u_based_decision=False)
        n = X.shape[0]
        total_variance = np.einsum("ij,ij->", centred, centred, dtype=np.float64)
        self.components_ = components.astype(np.float64)
        self.explained_variance_ = singular_values.astype(np.float64) ** 2 / (n - 1)
        self.explained_variance_ratio_ = self.explained_variance_ / max(
            total_variance / (n - 1), np.finfo(float).tiny
        )
        del self._randomized_rows

    def _finalize_qr(self, covariance):
        # Any R with R^T R = covariance has the same column geometry as the
        # centred data, so pivoted QR of R picks the same columns.
        eigenvalues, eigenvectors = scipy.linalg.eigh(covariance)
        root = np.sqrt(np.maximum(eigenvalues, 0.0))[:, None] * eigenvectors.T
        _, _, pivots = scipy.linalg.qr(root, mode="economic", pivoting=True)
        selected = pivots[: self.n_components]
        rank = int(np.sum(eigenvalues > eigenvalues.max() * 1e-12)) if eigenvalues.size else 0
        if self.n_components > rank:
            warnings.warn(
                f"The centred data has rank {rank}, below n_components="
                f"{self.n_components}: some selected columns are linear "
                "combinations of the others.",
                UserWarning,
            )
        components = np.zeros((self.n_components, covariance.shape[0]))
        components[np.arange(self.n_components), selected] = 1.0
        self.selected_columns_ = selected
        self.components_ = components
        # least-squares reconstruction of every column from the kept ones
        self.inverse_components_ = np.linalg.pinv(
            covariance[np.ix_(selected, selected)]
        ) @ covariance[selected]

    def _transform(self, X):
        if self.method == "qr":
            return X[:, self.selected_columns_]
        if self.method == "random":
            return np.asarray(X @ self.components_.T.astype(X.dtype))
        centred = X - self.mean_.astype(X.dtype)
        return centred @ self.components_.T.astype(X.dtype)

    def _inverse_transform(self, Z):
        if self.method == "random":
            return Z @ self.inverse_components_
        if self.method == "qr":
            selected_mean = self.mean_[self.selected_columns_]
            return (Z - selected_mean) @ self.inverse_components_ + self.mean_
        return Z @ self.components_ + self.mean_

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input column names; defaults to ``feature_names_in_`` or
            ``x0 ... x(n-1)``. Only used by ``method="qr"``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``"qr"``: the kept columns' names. Otherwise
            ``columnprojection0 ... columnprojection(k-1)``.
        """
        if self.method != "qr":
            return super().get_feature_names_out(input_features)
        from sklearn.utils.validation import _check_feature_names_in

        self._ensure_finalized()
        names = _check_feature_names_in(self, input_features)
        return np.asarray(names[self.selected_columns_], dtype=object)
