"""The column family: linear projections for small and medium data.

Two methods share one one-pass statistics accumulator (a float64 mean and
scatter matrix, merged block by block, so ``partial_fit`` feeds it chunk by
chunk):

- ``"pca"``: exact principal components, the top eigenvectors of the
  covariance;
- ``"qr"``: column-subset selection by column-pivoted QR. Pivoted Cholesky of
  the covariance makes the same pivot choices as pivoted QR of the centred
  data, so the selection streams through the same accumulator;

and ``"random"``, a sparse random projection (scikit-learn's), needs no
statistics at all. With more columns than ``max_covariance_features``,
``fit`` works on the rows directly (randomized SVD, or pivoted QR).
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse
from sklearn.random_projection import SparseRandomProjection
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import randomized_svd, svd_flip
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    check_random_state,
)

from .. import kernels
from .._registry import index_dtype, register_export
from .._validation import peak_exponents, safe_mean
from ._base import BaseProjection
from ._scaling import choose_exponent, peak_magnitude, to_unit, wide_range_affine

# Rows per block when folding data into the scatter matrix: large enough for
# BLAS to run at full speed, small enough that the centred copy stays small.
_BLOCK_ROWS = 8192

# A block is centred before its product unless every column's mean is within
# this many variances (squared) of zero; the product of raw rows then loses
# at most log2(1 + ratio) bits to cancellation.
_CENTRING_RATIO = 16.0


def _centred_block(block, buffer):
    """``(block - shift, shift)``, with ``shift`` near the block's mean.

    ``buffer`` is a list that holds the scratch array once one is needed.

    A block already about centred (every column's mean within
    ``_CENTRING_RATIO`` variances, squared, of zero) is returned as it is with
    a zero shift: the product of its raw rows loses at most a few bits to
    cancellation, and skipping the copy saves a pass over the data.
    """
    # the head's mean and spread in float64, each column divided by a power
    # of two (exact), so that neither overflows for data near the float range
    head = block[:256].astype(np.float64)
    exponents = peak_exponents(head)
    scaled = np.ldexp(head, -exponents)
    scaled_shift = scaled.mean(axis=0)
    # a constant column is shifted by its value exactly, so that it centres
    # to zeros (a mean rounded off near 1e308 would leave 1e292s)
    constant = (head == head[0]).all(axis=0)
    scaled_shift[constant] = scaled[0, constant]
    shift = np.ldexp(scaled_shift, exponents).astype(block.dtype)
    if np.all(scaled_shift * scaled_shift <= _CENTRING_RATIO * scaled.var(axis=0)):
        return block, np.zeros_like(shift)
    if not buffer:
        # one array reused by every block of the call: a fresh array per
        # block costs page faults comparable to the centring itself
        buffer.append(np.empty(block.shape, block.dtype))  # blocks only shrink
    return np.subtract(block, shift, out=buffer[0][: block.shape[0]]), shift


def _underflow_limit(dtype):
    """Squares below this have lost precision to underflow (or soon will,
    summed with others): ``2**(minexp + 2 * mantissa bits)``."""
    info = np.finfo(dtype)
    return np.ldexp(1.0, info.minexp + 2 * info.nmant)


def _scaled_moments(block, shift):
    """``(c.T @ c, c.sum(0), e)`` for ``c = (block - shift) / 2**e`` in float64,
    with the power of two ``e`` chosen so that no square overflows or
    underflows."""
    block, shift = block.astype(np.float64), shift.astype(np.float64)
    peak = peak_magnitude(block, shift)
    # |block - shift| < 2**exponent (1024: the range exceeds float64)
    exponent = int(np.frexp(peak)[1]) if peak < np.inf else 1024
    scaled = to_unit(block, shift, exponent)
    return scaled.T @ scaled, scaled.sum(axis=0), exponent


def _centred_in_range(X, mean):
    """``(X - mean) / 2**e`` and ``e``: 0 for data of ordinary magnitude."""
    exponent = choose_exponent(peak_magnitude(X, mean), X.dtype)
    return to_unit(X, mean, exponent), exponent


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
        - ``"pca"``: exact principal components, from a covariance matrix
          accumulated in float64 in one pass over the data (each block's
          product is computed in the input dtype, or in float64 scaled by a
          power of two where its squares would overflow or underflow);
          ``partial_fit`` accepts the data in chunks. Components have a
          deterministic sign (the largest loading of each is positive).
          Data whose variance exceeds the float64 range (a spread beyond
          about 1e154) are refused, since ``explained_variance_`` cannot
          hold it; ``"qr"`` and ``"random"`` take them.
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
        The largest number of columns for which a d x d covariance matrix is
        formed. Beyond it, ``"pca"`` with ``solver="auto"`` uses the
        randomized solver and ``"qr"`` runs pivoted QR on the rows; both work
        on the whole array in ``fit`` and refuse ``partial_fit``.
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
        Least-squares map from the projection back to the input: from the
        centred kept columns to the centred input for ``"qr"``, and the
        pseudo-inverse of ``components_`` for ``"random"``.
    solver_ : str or None
        How the fit ran: ``"covariance"`` (``"pca"`` and ``"qr"``),
        ``"randomized"`` (``"pca"`` on wide data), ``"direct"`` (``"qr"`` on
        wide data), or None (``"random"``).

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
        if self.method == "pca" and self._resolve_solver(n_features) == "randomized":
            if n_samples < n_features:
                return n_samples, f"the randomized solver gets {n_samples} rows"
        return n_features, f"X has {n_features} columns"

    def _resolve_solver(self, n_features):
        if self.method == "random":
            return None
        wide = n_features > self.max_covariance_features
        if self.method == "qr":
            return "direct" if wide else "covariance"
        if self.solver == "auto":
            return "randomized" if wide else "covariance"
        return self.solver

    # the covariance path checks each block as it sums it (see _accumulate)
    _fit_checks_finite = True

    # the running scatter's unit, 4**_exponent (see _merge); 0 for
    # projections pickled before the unit existed
    _exponent = 0

    def __getstate__(self):
        # A pickle holds the fitted projection, not the running d x d scatter
        # (and mean) that partial_fit adds to: 4.9 MB for 784 columns against
        # 0.2 MB of components. A loaded projection transforms; partial_fit
        # on it warns and starts afresh (as the Cleaner's does).
        state = super().__getstate__()
        if "components_" in state and "_scatter" in state:
            state.pop("_scatter")
            state.pop("_mean", None)
            state["_stream_dropped"] = True
        return state

    def _start(self, X):
        """Resolve the solver and set up the state the first rows feed."""
        self.solver_ = self._resolve_solver(X.shape[1])
        self._dtype = X.dtype.name  # (a name: a pickle of it needs no numpy type)
        if self.method == "random":
            self._fit_random(X)
        elif self.solver_ == "covariance":
            self._mean = np.zeros(X.shape[1])
            self._scatter = np.zeros((X.shape[1], X.shape[1]))
            self._exponent = None  # the scatter's unit, 4**_exponent: set by the first block

    def _fit(self, X):
        self._start(X)
        if self.solver_ != "covariance":
            self._check_finite(X)
        if self.solver_ in ("randomized", "direct"):
            # these solvers need every row at once; fit holds them anyway
            self._rows = X
        elif self.method != "random":
            self._accumulate(X, n_before=0)

    def _partial_fit(self, X, first_call):
        if first_call:
            self._start(X)
        if self.solver_ == "randomized" and self.solver == "randomized":
            raise ValueError(
                "partial_fit cannot use solver='randomized', which needs every row "
                "at once. Call fit on the whole array, or use solver='covariance' "
                "(or 'auto') to feed chunks."
            )
        if self.solver_ in ("randomized", "direct"):
            raise ValueError(
                f"partial_fit cannot use the {self.solver_} solver that "
                f"ColumnProjection(method={self.method!r}) needs for "
                f"{X.shape[1]} columns (more than max_covariance_features="
                f"{self.max_covariance_features}, so no covariance matrix "
                "is formed). Call fit on the whole array, raise "
                "max_covariance_features, or use method='random'."
            )
        if self.method != "random":
            self._accumulate(X, n_before=0 if first_call else self.n_samples_seen_)

    def _accumulate(self, X, n_before):
        """Fold rows into the running mean and scatter matrix (float64).

        Each block whose mean is far from zero, relative to its spread, is
        centred on an estimate of that mean, so that its product, computed in
        the input dtype at BLAS speed, stays accurate however far the data
        drift; the blocks are then merged exactly with the pairwise update of
        Chan, Golub and LeVeque.
        """
        n = n_before
        buffer = []  # _centred_block's scratch array, made on first need
        # non-finite values and overflow are reported as clear errors (below
        # and in _finalize), not warned about along the way
        with np.errstate(invalid="ignore", over="ignore"):
            for start in range(0, X.shape[0], _BLOCK_ROWS):
                block = X[start : start + _BLOCK_ROWS]
                n_block = block.shape[0]
                centred, shift = _centred_block(block, buffer)
                residual = centred.sum(axis=0).astype(np.float64)
                # centred.T @ centred runs as one symmetric rank-k update (syrk)
                # at BLAS speed. numpy's BLAS throughout: a second BLAS
                # (scipy's) in this loop would fight it for the cores.
                product = centred.T @ centred
                exponent = 0
                if not (np.isfinite(residual).all() and np.isfinite(product).all()):
                    # NaN or inf in this block (fit checks here rather than in a
                    # separate pass), or else values so large that their
                    # squares overflowed: then the block's moments again, in
                    # float64 and scaled by a power of two
                    self._check_finite(block)
                    product, residual, exponent = _scaled_moments(block, shift)
                elif product.diagonal().max(initial=0) < _underflow_limit(product.dtype):
                    # squares so small that they lose precision (or vanish)
                    product, residual, exponent = _scaled_moments(block, shift)
                self._merge(product, residual, exponent, shift, n, n_block)
                n += n_block

    def _merge(self, product, residual, exponent, shift, n, n_block):
        """Merge one block's moments into the running mean and scatter.

        ``product`` and ``residual`` are the block's ``c.T @ c`` and
        ``c.sum(0)`` for ``c = (block - shift) / 2**exponent``. The scatter
        is kept in units of ``4**self._exponent``, which grows (by powers of
        two, exactly) when a block's squares would overflow float64, so that
        data anywhere in the float range merge without overflow. For data
        of ordinary magnitude every exponent is 0, and this is the pairwise
        update of Chan, Golub and LeVeque.
        """
        if self._exponent is None:  # the first block sets the unit
            self._exponent = exponent
        unit = max(self._exponent, exponent)
        if unit > self._exponent:
            self._scatter = np.ldexp(self._scatter, 2 * (self._exponent - unit))
            self._exponent = unit
        if exponent < unit:
            product = np.ldexp(product.astype(np.float64), 2 * (exponent - unit))
            residual = np.ldexp(residual, exponent - unit)
        n_total = n + n_block
        # the block's exact mean, in the data's units (within its range, so
        # finite), and its distance from the running mean, in scatter units
        block_mean = shift.astype(np.float64) + np.ldexp(residual / n_block, unit)
        delta = np.ldexp(block_mean, -unit) - np.ldexp(self._mean, -unit)
        # minus the residual's outer product (the scatter about the block's
        # exact mean) plus the between-means term of the merge, as one
        # rank-two product
        self._scatter += product
        self._scatter += np.column_stack([residual, delta]) @ np.vstack(
            [-residual / n_block, delta * (n * n_block / n_total)]
        )
        self._mean = np.ldexp(np.ldexp(self._mean, -unit) + delta * (n_block / n_total), unit)

    def _fit_random(self, X):
        projector = SparseRandomProjection(
            n_components=self.n_components_,
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
        n = self.n_samples_seen_
        if n < 2:
            raise ValueError(
                f"ColumnProjection(method={self.method!r}) needs at least 2 rows "
                f"to estimate the covariance; it has seen {n}. Feed more rows "
                "with partial_fit."
            )
        if self.solver_ == "randomized":
            self._finalize_randomized(self.__dict__.pop("_rows"))
        elif self.solver_ == "direct":
            self._finalize_qr_direct(self.__dict__.pop("_rows"))
        else:
            if not np.isfinite(self._scatter).all():
                raise ValueError(
                    "The products of the input values overflowed: the data's "
                    "range exceeds what float64 can hold. Scale the data first "
                    "(for example with sklearn's StandardScaler)."
                )
            self.mean_ = self._mean.copy()
            # in units of 4**_exponent: the components, the selection and
            # the reconstruction do not depend on the unit, the variances do
            covariance = self._scatter / (n - 1)
            if self.method == "pca":
                self._finalize_pca(covariance, self._exponent)
            else:
                self._finalize_qr(covariance)

    def _finalize_pca(self, covariance, exponent=0):
        d, k = covariance.shape[0], self.n_components_
        eigenvalues, eigenvectors = scipy.linalg.eigh(
            covariance, subset_by_index=[d - k, d - 1], driver="evr"
        )
        order = np.argsort(eigenvalues)[::-1]
        components = eigenvectors[:, order].T
        # sklearn's convention: the largest loading of each axis is positive
        _, components = svd_flip(None, components, u_based_decision=False)
        total_variance = np.trace(covariance)
        variance = np.maximum(eigenvalues[order], 0.0)
        with np.errstate(over="ignore"):
            explained = np.ldexp(variance, 2 * exponent)
        if not np.isfinite(explained).all():
            raise ValueError(
                "ColumnProjection(method='pca') cannot represent the variance of "
                f"this data (about 2**{int(np.frexp(variance[0])[1]) + 2 * exponent}) "
                "in float64: explained_variance_ overflows. Scale the data first "
                "(for example with sklearn's StandardScaler), or use method='qr' "
                "or 'random', which do not need it."
            )
        self.components_ = components
        self.explained_variance_ = explained
        self.explained_variance_ratio_ = (
            variance / total_variance if total_variance > 0 else np.zeros(k)
        )

    def _finalize_randomized(self, X):
        self.mean_ = safe_mean(X)
        centred, exponent = _centred_in_range(X, self.mean_)
        _, singular_values, components = randomized_svd(
            centred,
            self.n_components_,
            flip_sign=False,
            random_state=check_random_state(self.random_state),
        )
        _, components = svd_flip(None, components, u_based_decision=False)
        n = X.shape[0]
        total_variance = np.einsum("ij,ij->", centred, centred, dtype=np.float64)
        variance = singular_values.astype(np.float64) ** 2 / (n - 1)
        self.components_ = components.astype(np.float64)
        with np.errstate(over="ignore"):
            # (not finite where the data's variance overflows: refused after
            # the fit, by name)
            self.explained_variance_ = np.ldexp(variance, 2 * exponent)
        self.explained_variance_ratio_ = variance / max(
            total_variance / (n - 1), np.finfo(float).tiny
        )

    def _rank_tolerance(self, scale, size):
        return scale * size * np.finfo(self._dtype).eps

    def _finalize_qr(self, covariance):
        # Column-pivoted QR of the centred data X picks, at each step, the
        # column with the largest residual after projecting out the columns
        # already picked; pivoted Cholesky of X^T X makes the same choices
        # from the covariance alone, in O(d^2 k).
        d = covariance.shape[0]
        tol = self._rank_tolerance(max(np.max(np.diag(covariance)), 0.0), d)
        _, pivots, rank, _ = scipy.linalg.lapack.dpstrf(covariance, tol=tol)
        selected = pivots[: self.n_components_] - 1  # LAPACK counts from 1
        self._set_selection(selected, rank, covariance[np.ix_(selected, selected)],
                            covariance[selected])

    def _finalize_qr_direct(self, X):
        self.mean_ = safe_mean(X)
        centred, _ = _centred_in_range(X, self.mean_)  # the selection is scale-free
        r_factor, pivots = scipy.linalg.qr(centred, mode="r", pivoting=True)
        diagonal = np.abs(np.diag(r_factor))
        tol = self._rank_tolerance(diagonal.max() if diagonal.size else 0.0, max(X.shape))
        selected = pivots[: self.n_components_]
        kept = centred[:, selected].astype(np.float64)
        self._set_selection(selected, int(np.sum(diagonal > tol)), kept.T @ kept,
                            kept.T @ centred)

    def _set_selection(self, selected, rank, cov_selected, cov_selected_all):
        if self.n_components_ > rank:
            warnings.warn(
                f"The centred data has rank {rank}, below n_components="
                f"{self.n_components_}: some selected columns are linear "
                "combinations of the others.",
                UserWarning,
            )
        components = np.zeros((self.n_components_, cov_selected_all.shape[1]))
        components[np.arange(self.n_components_), selected] = 1.0
        self.selected_columns_ = selected
        self.components_ = components
        # least-squares reconstruction of every column from the kept ones
        self.inverse_components_ = np.linalg.pinv(cov_selected) @ cov_selected_all

    def _transform(self, X):
        if self.method == "qr":
            return kernels.select(X, self.selected_columns_)
        if self.method == "random":
            return np.asarray(kernels.linear(X, None, self.components_.astype(X.dtype)))
        return kernels.linear(X, self.mean_.astype(X.dtype), self.components_.astype(X.dtype))

    def _transform_wide_range(self, X):
        if self.method == "qr":
            return None  # a selection: nothing to overflow
        components = self.components_
        if scipy.sparse.issparse(components):
            components = components.toarray()
        return wide_range_affine(X, getattr(self, "mean_", None), components)

    def _has_inverse_transform(self):
        return True

    def _inverse_transform(self, Z):
        if self.method == "random":
            return Z @ self.inverse_components_
        if self.method == "qr":
            selected_mean = self.mean_[self.selected_columns_]
            return (Z - selected_mean) @ self.inverse_components_ + self.mean_
        return Z @ self.components_ + self.mean_

    def _export(self):
        """The runtime's ``select`` (QR) or ``linear`` step."""
        if self.method == "qr":
            return "select", {}, {"columns": np.asarray(self.selected_columns_).astype(
                index_dtype(self.n_features_in_))}, set()
        components = self.components_
        if scipy.sparse.issparse(components):
            components = components.toarray()
        mean = getattr(self, "mean_", None)
        if mean is None:  # the random projection is not centred
            mean = np.zeros(self.n_features_in_)
        return "linear", {}, {"mean": mean, "components": components}, {"components"}

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
        check_is_fitted(self, "n_samples_seen_")
        self._ensure_finalized()
        names = _check_feature_names_in(self, input_features)
        return np.asarray(names[self.selected_columns_], dtype=object)


register_export(ColumnProjection)
