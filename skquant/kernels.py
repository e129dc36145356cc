"""The arithmetic of each step, written once.

numpy-only, dtype-generic functions: each computes in the dtype of the
arrays it is given. The estimators' ``transform`` / ``predict`` and the
serving runtime (:mod:`skquant.runtime`) both call them, so that fitting
and serving compute with the same code; the exporters to other runtimes
(TFLite, ONNX) emit the same formulas, and a per-step parity test ties each
emitter to its kernel. What each side does around a kernel is its own: the
estimators validate their input and keep data near the float range in
working units (a power-of-two scale); the runtime computes in float32 from
stored (possibly int8) weights.

This module imports numpy alone.
"""

import numpy as np

# float64 elements a kernel converts at once (16 MiB)
BLOCK_ELEMENTS = 1 << 21


def clean(X, keep, fill, lower, upper, center=None, scale=None):
    """The Cleaner: keep some columns, impute non-finite values, clip, scale.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    keep : ndarray of int
        The kept columns.
    fill, lower, upper : ndarray of shape (n_kept,)
        Each kept column's imputed value and clipping bounds.
    center, scale : ndarray of shape (n_kept,) or None
        The scaling, ``(x - center) / scale`` after clipping; None for none.

    Returns
    -------
    ndarray of shape (n_samples, n_kept)
        Finite: a scaled value beyond the dtype's range becomes its largest.
    """
    kept = X[:, keep]
    kept = np.where(np.isfinite(kept), kept, fill)
    # maximum then minimum: np.clip's, without its wrapper's cost (a third
    # of a one-row call)
    np.maximum(kept, lower, out=kept)
    np.minimum(kept, upper, out=kept)
    if center is None:
        return kept
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.subtract(kept, center)
        scaled /= scale
    if not np.isfinite(scaled).all():
        # the difference overflowed (values of opposite signs near the
        # range's edge), or the quotient did (an input far beyond the
        # training range, with clipping off): each term divided first,
        # then what is still beyond the range held at its largest value
        rows, columns = np.nonzero(~np.isfinite(scaled))
        with np.errstate(over="ignore", invalid="ignore"):
            redone = (kept[rows, columns] / scale[columns]
                      - center[columns] / scale[columns])
        largest = np.finfo(scaled.dtype).max
        scaled[rows, columns] = np.clip(redone, -largest, largest)
    return scaled


def category_codes(text, missing, categories, missing_row):
    """Each value's row in its column's lookup table (see :func:`encode`).

    Parameters
    ----------
    text : ndarray of str of shape (n_samples,)
        The values as text.
    missing : ndarray of bool of shape (n_samples,)
        Which values are missing.
    categories : ndarray of str of shape (n_categories,)
        The known categories, sorted.
    missing_row : int
        The row of a missing value (its imputed category's).

    Returns
    -------
    ndarray of float32 of shape (n_samples,)
        The row of each value's category; ``n_categories`` (the table's last
        row) for a category not in ``categories``. float32 holds every row
        number exactly up to 2**24 categories.
    """
    position = np.searchsorted(categories, text)
    found = categories[np.minimum(position, categories.size - 1)] == text
    codes = np.where(found, position, categories.size)
    codes[missing] = missing_row
    return codes.astype(np.float32)


def encode(codes, table, missing_row):
    """The rows of a categorical column's lookup ``table`` for its ``codes``
    (:func:`category_codes`): NaN (a missing value) gets ``missing_row``,
    and a code outside the table the last row (an unknown category)."""
    rows = np.where(np.isnan(codes), missing_row, codes)
    rows = np.clip(rows, 0, table.shape[0] - 1).astype(np.intp)
    return table[rows]


def _is_missing(value):
    """None, NaN, pandas' NA and NaT: a missing category."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return type(value).__name__ in ("NAType", "NaTType")


def as_text(values):
    """A categorical column's values (any sequence, or a pandas or polars
    Series) as a 1-D array of str, and the mask of the missing ones (left
    as empty strings). Numbers are written as Python writes them."""
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    missing = np.fromiter((_is_missing(v) for v in values), dtype=bool, count=len(values))
    text = np.array(["" if m else str(v) for v, m in zip(values, missing)], dtype=str)
    return text, missing


def linear(X, mean, components):
    """``(X - mean) @ components.T``: PCA, random projection, LPP.

    ``mean`` may be None (a map that is not centred).
    """
    if mean is not None:
        X = X - mean
    return X @ components.T


def select(X, columns):
    """Keep some columns (pivoted-QR selection)."""
    return X[:, columns]


def local_frame(axes, prototypes):
    """The local-axes arrays :func:`closeness` takes, from ``axes`` of shape
    ``(n_prototypes * m, n_features)`` (each prototype's ``m`` axes as rows,
    prototype by prototype) and the ``prototypes``: the axes transposed,
    contiguous, and each axis's product with its prototype (``U c``)."""
    k, d = prototypes.shape
    offsets = np.einsum("kmd,kd->km", axes.reshape(k, -1, d), prototypes).ravel()
    return np.ascontiguousarray(axes.T), offsets


def closeness(centred, minus_twice_prototypes, prototype_norms, factor, axes=None,
              axis_offsets=None):
    """TSVQ: distance to every prototype, times ``factor`` (negative).

    With ``axes``, the distance to each prototype's local principal
    subspace instead: the part of ``x - c`` that the prototype's ``m`` axes
    do not span, ``sqrt(|x - c|^2 - |U (x - c)|^2)``.

    Parameters
    ----------
    centred : ndarray of shape (n_samples, n_features)
        Rows minus the tree's origin (in the units the prototypes are in).
    minus_twice_prototypes : ndarray of shape (n_features, n_prototypes)
        ``-2`` times the prototypes (minus the origin), transposed.
    prototype_norms : ndarray of shape (n_prototypes,)
        Their squared norms.
    factor : scalar or None
        ``-1 / scale``; None leaves the distances as they are.
    axes : ndarray of shape (n_features, n_prototypes * m) or None
        Each prototype's ``m`` orthonormal local axes, transposed, prototype
        by prototype.
    axis_offsets : ndarray of shape (n_prototypes * m,) or None
        Each axis's product with its prototype (``U c``).

    Returns
    -------
    ndarray of shape (n_samples, n_prototypes)
    """
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, as one matrix product
    squared = centred @ minus_twice_prototypes
    squared += prototype_norms
    squared += np.einsum("ij,ij->i", centred, centred)[:, None]
    if axes is not None:
        # minus the squared coordinates along each prototype's axes
        along = centred @ axes
        along -= axis_offsets
        along = along.reshape(along.shape[0], squared.shape[1], -1)
        squared -= np.einsum("ijk,ijk->ij", along, along)
    np.maximum(squared, 0, out=squared)
    np.sqrt(squared, out=squared)
    if factor is not None:
        squared *= factor
    return squared


def tree_leaves(X, feature, threshold, children, roots, depth):
    """Each row's leaf in every tree of a forest: ``(n_samples, n_trees)``.

    The forest is stored as scikit-learn's trees are, one after another:
    ``feature`` (negative at a leaf), ``threshold``, ``children`` (left,
    right) and each tree's ``roots``; a row goes right where its value of
    the node's feature is above the threshold. Walks ``depth`` levels.
    """
    rows = np.arange(X.shape[0])
    leaves = np.empty((X.shape[0], len(roots)), dtype=np.intp)
    for tree, root in enumerate(roots):
        node = np.full(X.shape[0], root, dtype=np.intp)
        for _ in range(depth):
            internal = feature[node] >= 0
            if not internal.any():
                break
            split = np.where(internal, feature[node], 0)
            right = X[rows, split] > threshold[node]
            node = np.where(internal, children[node, right.astype(np.intp)], node)
        leaves[:, tree] = node
    return leaves


def leaf_lookup(leaves, lookup, shift):
    """Random-trees embedding: each tree's leaf row of ``lookup``, summed,
    minus ``shift``. ``leaves`` index rows of ``lookup``, one column per
    tree; the output has ``lookup``'s dtype."""
    out = np.empty((leaves.shape[0], lookup.shape[1]), dtype=lookup.dtype)
    out[:] = -shift
    for tree in range(leaves.shape[1]):
        out += lookup[leaves[:, tree]]
    return out


def _products(X, landmarks):
    """``X @ landmarks.T`` for an array, or for rows handed out in blocks
    (an object with ``shape`` and ``blocks()``, see the runtime)."""
    if isinstance(landmarks, np.ndarray):
        return X @ landmarks.T
    out = np.empty((X.shape[0], landmarks.shape[0]))
    for start, rows in landmarks.blocks():
        out[:, start : start + rows.shape[0]] = X @ rows.T
    return out


def _lowest_indices(squared, kth, k):
    """Per row, the ``k`` smallest values' indices, ties to the lower index,
    given each row's k-th smallest value ``kth``; in increasing index order."""
    below = squared < kth[:, None]
    tied = squared == kth[:, None]
    slots = k - below.sum(axis=1)  # what the tied values fill, lowest first
    chosen = below | (tied & (np.cumsum(tied, axis=1) <= slots[:, None]))
    return np.nonzero(chosen)[1].reshape(len(squared), k)


def smallest(values, k, *, with_values=False):
    """Per row, the indices of the ``k`` smallest values, smallest first,
    ties to the lower index (as a stable sort, and ONNX's TopK, give them),
    by a partial sort; with ``with_values``, ``(indices, those values)``."""
    if values.shape[0] == 1 and k < values.shape[1]:
        # one row (serving): the same in 1-D, where indexing costs a fifth
        nearest, chosen = _smallest_of_row(values[0], k)
        return (nearest[None], chosen[None]) if with_values else nearest[None]
    rows = np.arange(values.shape[0])[:, None]
    if k < values.shape[1]:
        # the k + 1 smallest, the (k+1)-th last: where it ties with the
        # k-th, argpartition's choice among the tied is arbitrary, so those
        # rows (rare: exactly equal values) take the lowest indices
        partition = np.argpartition(values, k, axis=1)
        nearest = partition[:, :k]
        chosen = values[rows, nearest]
        kth = chosen.max(axis=1)
        tied = np.flatnonzero(kth == values[rows[:, 0], partition[:, k]])
        if tied.size:
            nearest[tied] = _lowest_indices(values[tied], kth[tied], k)
            chosen[tied] = values[tied[:, None], nearest[tied]]
    else:
        nearest = np.broadcast_to(np.arange(values.shape[1]), values.shape).copy()
        chosen = values.copy()
    order = np.lexsort((nearest, chosen), axis=1)
    if with_values:
        return nearest[rows, order], chosen[rows, order]
    return nearest[rows, order]


def _smallest_of_row(values, k):
    """:func:`smallest` of one row (1-D ``values``, ``k`` below their size)."""
    partition = np.argpartition(values, k)
    # the k + 1 smallest in order (value, then index): where the k-th ties
    # with the (k+1)-th, argpartition may have left out a lower tied index
    candidates = partition[: k + 1]
    found = values[candidates]
    order = np.lexsort((candidates, found))
    candidates, found = candidates[order], found[order]
    if found[k - 1] == found[k]:
        nearest = _lowest_indices(values[None], found[k - 1 : k], k)[0]
        chosen = values[nearest]
        order = np.lexsort((nearest, chosen))
        return nearest[order], chosen[order]
    return candidates[:k], found[:k]


def nearest_landmarks(X, landmarks, landmark_norms, k, block=128):
    """The ``k`` nearest landmarks of each row: ``(distances, indices)``,
    nearest first, ties to the lower index; float64, brute force (one
    matrix product and a partial sort), ``block`` rows at a time (fewer
    where the landmarks are so many that the block's distance matrix would
    pass ``4 * BLOCK_ELEMENTS`` numbers), so that the distance matrix stays
    small enough for the allocator to reuse (128 rows of a few thousand
    distances stay within a core's cache: at 1,347 landmarks 10% faster than
    256). ``landmarks`` is a float64 array, or rows handed out in blocks
    (the runtime's ``Float64Rows``).

    The landmarks are ranked by ``|l|^2 - 2 x.l``, which orders them as
    ``|x - l|^2`` does (``|x|^2`` is the row's constant); the row's own
    squared norm is added to the ``k`` chosen only, which spares two passes
    over the distance matrix.
    """
    X = np.asarray(X, dtype=np.float64)
    block = max(1, min(block, 4 * BLOCK_ELEMENTS // max(landmarks.shape[0], 1)))
    if X.shape[0] <= block:  # one block (a single row, in serving): no copies
        return _nearest_block(X, landmarks, landmark_norms, k)
    distances = np.empty((X.shape[0], k))
    indices = np.empty((X.shape[0], k), dtype=np.intp)
    for start in range(0, X.shape[0], block):
        distances[start : start + block], indices[start : start + block] = _nearest_block(
            X[start : start + block], landmarks, landmark_norms, k)
    return distances, indices


def _nearest_block(X, landmarks, landmark_norms, k):
    # -2 x.l as (-2 x).l: the same numbers (a power of two scales exactly)
    ranks = _products(X * -2.0, landmarks)
    ranks += landmark_norms
    nearest, squared = smallest(ranks, k, with_values=True)
    squared += np.einsum("ij,ij->i", X, X)[:, None]
    np.maximum(squared, 0, out=squared)
    return np.sqrt(squared, out=squared), nearest


def kernel_weights(distances, scale, neighbour_scale):
    """The Nystrom extension's weights of each row's nearest landmarks.

    ``exp(-d**2 / (s_row * s_neighbour))``, normalized to sum to 1 over each
    row. The exponent is computed as ``(d / s_row) * (d / s_neighbour)``,
    which does not overflow on the way, and each row's smallest is taken out
    before ``exp`` (the normalization cancels it), so that a row far from
    every landmark, whose every weight would underflow to 0 (and give 0/0),
    still gets its nearest landmarks' weighted mean.

    Parameters
    ----------
    distances : ndarray of shape (n_rows, k)
        Distances to the nearest landmarks, float64.
    scale : ndarray of shape (n_rows,)
        Each row's local scale.
    neighbour_scale : ndarray of shape (n_rows, k)
        Each neighbouring landmark's scale.

    Returns
    -------
    weights : ndarray of shape (n_rows, k)
    """
    with np.errstate(over="ignore"):
        exponents = distances / scale[:, None]
        exponents *= distances / neighbour_scale
    np.minimum(exponents, np.finfo(exponents.dtype).max, out=exponents)
    # exp(smallest - exponent): at most 1, the nearest's 1
    weights = np.subtract(exponents.min(axis=1, keepdims=True), exponents, out=exponents)
    np.exp(weights, out=weights)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights


def nystrom(weights, neighbour_coordinates):
    """The Nystrom extension: each row's weighted mean of its nearest
    landmarks' coordinates, ``(n_rows, k)`` weights and ``(n_rows, k,
    n_components)`` coordinates."""
    return np.einsum("ij,ijk->ik", weights, neighbour_coordinates)


def dense_layers(activations, kernels, biases, check=None):
    """The MLP's forward pass from its (standardized) input to its logits:
    ``x @ kernel + bias`` per layer, ReLU between layers.

    ``kernels`` are ``(n_in, n_out)`` matrices; ``check(values, layer)``,
    where given, is called on each layer's output before its ReLU (which
    would hide an overflow to -inf).
    """
    last = len(kernels) - 1
    for number, (kernel, bias) in enumerate(zip(kernels, biases)):
        activations = activations @ kernel + bias
        if check is not None:
            check(activations, number)
        if number < last:
            np.maximum(activations, 0, out=activations)
    return activations
