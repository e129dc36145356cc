"""The ``tsvq-local`` tree's local subspaces: each leaf's leading principal
axes of the sample rows nearest it (a tree of local linear models)."""

import math

import numpy as np
import scipy.linalg
from sklearn.utils.extmath import randomized_svd


def leaf_axes(centred, columns, prototypes, m, scale, seeds):
    """``(n_leaves, m, d)``: each leaf's ``m`` leading principal axes of its
    rows, around its prototype (float64, in the rows' units).

    ``columns`` gives each row's leaf, ``prototypes`` the leaves' points and
    ``scale`` the data's spread (its rounding level sets which axes are
    flat); ``seeds`` (one per leaf) seed the randomized SVDs. Leaves of at
    most 128 rows (or rows of at most 128 columns) get the exact axes, from
    the smaller Gram matrix (:func:`_leading_axes`); larger ones a
    randomized SVD. An axis along which a leaf's rows do not vary (a
    singular value at rounding level) is zero, so that it removes nothing
    from the distance; so are all of a leaf of fewer than two rows.
    """
    n_leaves = prototypes.shape[0]
    axes = np.zeros((n_leaves, m, centred.shape[1]))
    if m == 0:
        return axes
    order = np.argsort(columns, kind="stable")
    bounds = np.searchsorted(columns[order], np.arange(n_leaves + 1))
    for leaf, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        if stop - start < 2:
            continue
        rows = centred[order[start:stop]].astype(np.float64) - prototypes[leaf]
        if min(rows.shape) <= 128:
            values, vt = _leading_axes(rows, m)
        else:
            _, values, vt = randomized_svd(rows, m, random_state=int(seeds[leaf]))
        # zero where the rows are flat: against the leaf's spread, and
        # against rounding at the data's scale (a leaf of duplicated rows
        # has singular values of rounding error alone)
        rounding = 100 * np.finfo(centred.dtype).eps * scale * math.sqrt(stop - start)
        flat = values <= max(1e-7 * values[0], rounding, np.finfo(np.float64).tiny)
        vt[flat] = 0.0
        axes[leaf, : vt.shape[0]] = vt
    return axes


def _leading_axes(rows, m):
    """The ``m`` (or fewer) leading right singular vectors of ``rows`` and
    their singular values, largest first, from the eigenvectors of the
    smaller of its two Gram matrices (at most 128 x 128 here: a fraction of
    an exact SVD's cost on wide leaves)."""
    n, d = rows.shape
    size = min(n, d)
    take = min(m, size)
    if n < d:
        values, vectors = scipy.linalg.eigh(rows @ rows.T, subset_by_index=[size - take, size - 1])
    else:
        values, vectors = scipy.linalg.eigh(rows.T @ rows, subset_by_index=[size - take, size - 1])
    values, vectors = values[::-1], vectors[:, ::-1]
    singular = np.sqrt(np.maximum(values, 0.0))
    if n >= d:
        return singular, vectors.T
    # v = R^T u / s, for the axes that have an s to divide by; made
    # orthonormal again (rounding in u, small s), leading direction first
    vt = vectors.T @ rows
    np.divide(vt, singular[:, None], out=vt, where=singular[:, None] > 0)
    vt[singular == 0] = 0.0
    live = singular > 0
    if live.any():
        q, r = np.linalg.qr(vt[live].T)
        vt[live] = (q * np.where(np.diag(r) < 0, -1.0, 1.0)).T
    return singular, vt
