"""The ``"random-trees"`` method's arithmetic: totally random trees, their
leaf indicators, and the principal axes of those indicators.

:class:`~skquant.projection._tree.TreeProjection` keeps the state (the
forest, the running co-occurrence counts) and calls these functions; the
serving runtime reads the same arrays through its ``_export``.
"""

import warnings

import numpy as np
import scipy.linalg
import scipy.sparse
from sklearn.utils.extmath import svd_flip


def in_float32_range(rows):
    """``rows``, clipped to the float32 range for scikit-learn's trees.

    A tree splits between values it sees as float32; values beyond that
    range, all alike in float32, are clipped to its largest ones, so that
    fitting them raises no overflow.
    """
    largest = np.finfo(np.float32).max
    if rows.dtype == np.float32 or np.abs(rows).max(initial=0) <= largest:
        return rows
    return np.clip(rows, -largest, largest)


def grow_forest(rows, n_estimators, depth, seed):
    """``(embedding, leaf_column, leaf_offsets)``: scikit-learn's
    :class:`~sklearn.ensemble.RandomTreesEmbedding` grown on ``rows``; for
    each tree, the indicator column of each of its nodes (-1 for internal
    nodes), counted from that tree's offset: each tree's leaves get
    consecutive columns of the indicator matrix."""
    from sklearn.ensemble import RandomTreesEmbedding

    # (scikit-learn's finite test sums the float32 rows, which may
    # overflow: harmless, and no business of the user's)
    with np.errstate(over="ignore", invalid="ignore"):
        embedding = RandomTreesEmbedding(
            n_estimators=n_estimators, max_depth=depth, random_state=seed,
        ).fit(in_float32_range(rows))
    leaf_column = []
    offsets = [0]
    for tree in embedding.estimators_:
        is_leaf = tree.tree_.children_left < 0
        column = np.full(is_leaf.size, -1, dtype=np.intp)
        column[is_leaf] = np.arange(np.count_nonzero(is_leaf))
        leaf_column.append(column)
        offsets.append(offsets[-1] + np.count_nonzero(is_leaf))
    return embedding, leaf_column, np.array(offsets, dtype=np.intp)


def leaf_indices(X, embedding, leaf_column, leaf_offsets):
    """Global indicator column of each row's leaf in every tree."""
    # scikit-learn's trees compare float32 values; a value beyond the
    # float32 range becomes +-inf, which every threshold sends the same
    # way as the value itself
    with np.errstate(over="ignore"):
        X32 = np.asarray(X, dtype=np.float32)
    return np.column_stack([
        column[tree.tree_.apply(X32)] + offset
        for tree, column, offset in zip(embedding.estimators_, leaf_column, leaf_offsets)
    ])


def cooccurrence(leaves, n_columns):
    """The rows' leaf co-occurrence counts (the indicators' Gram matrix),
    sparse, from their ``leaves`` (one global column per tree)."""
    n, n_trees = leaves.shape
    indicators = scipy.sparse.csr_matrix(
        (np.ones(leaves.size), leaves.ravel(), np.arange(0, n * n_trees + 1, n_trees)),
        shape=(n, n_columns),
    )
    return indicators.T @ indicators


def indicator_axes(counts, n_rows, n_components):
    """``(components, mean, eigenvalues)``: the leading principal axes of
    the leaf indicators (rows, signs fixed by ``svd_flip``), their mean and
    the variance along each axis, from the co-occurrence ``counts`` of
    ``n_rows`` rows; at most as many axes as there are leaves. Warns when
    the indicators have fewer than ``n_components`` directions."""
    gram = counts.toarray() / n_rows
    mean = np.diag(gram).copy()  # indicators are 0/1: E[h^2] = E[h]
    covariance = gram - np.outer(mean, mean)
    n_leaves = covariance.shape[0]
    k = min(n_components, n_leaves)
    eigenvalues, eigenvectors = scipy.linalg.eigh(
        covariance, subset_by_index=[n_leaves - k, n_leaves - 1], driver="evr"
    )
    order = np.argsort(eigenvalues)[::-1]
    components = eigenvectors[:, order].T
    _, components = svd_flip(None, components, u_based_decision=False)
    eigenvalues = np.maximum(eigenvalues[order], 0.0)
    tol = max(eigenvalues.max(initial=0.0), 1.0) * n_leaves * np.finfo(float).eps
    rank = int(np.sum(eigenvalues > tol))
    if rank < n_components:
        warnings.warn(
            f"The leaf indicators have rank {rank}, below n_components="
            f"{n_components} (too few distinct rows, or too few leaves "
            "reached): the last components carry no information.",
            UserWarning,
        )
    return components, mean, eigenvalues
