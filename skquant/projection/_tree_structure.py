"""Growing and routing the tsvq tree: functions on plain arrays.

``grow`` builds the binary tree by bisecting 2-means; ``leaf_order``,
``depths`` and ``buckets`` describe it; ``RoutingBlock`` batches the
hyperplane tests of a block of nodes into one matrix product, which
``block_exits`` routes rows through; ``move_prototypes`` updates the
prototypes from the rows assigned to them. The estimator
(``_tree.TreeProjection``) owns the fitted state and the streaming.
"""

import heapq

import numpy as np
import scipy.sparse

from .._registry import index_dtype


# A split's 2-means iterates on at most this many of the node's rows, then
# assigns all of them once: the split hyperplane is found as well from a
# sample, and big nodes near the root stay cheap.
_SPLIT_SAMPLE = 1024
_SPLIT_MAX_ITER = 15

# Internal nodes routed by one matrix product (a block, grown breadth-first
# from its root). Computing all of a block's hyperplane tests for a row costs
# more flops than the few on its path, but a dense product runs at BLAS
# speed while a per-row gather does not; a block of 63 nodes covers at least
# 6 levels, so the blocks a row passes through still grow like log k.
_BLOCK_NODES = 63

# Routing stops descending at a subtree of at most this many leaves (a
# "bucket") and picks the nearest of its leaves exactly, by one small matrix
# product: as cheap as the last levels of hyperplanes, and it makes no
# mistake at the fine splits, where the hyperplane tests err most.
_BUCKET_LEAVES = 32


def bisect(rows, rng):
    """Split ``rows`` in two by 2-means; the "goes right" mask, or None.

    The 2-means iterates on a sample of at most ``_SPLIT_SAMPLE`` rows, then
    assigns every row once. None means the rows cannot be separated (they
    are all the same point).
    """
    n = rows.shape[0]
    if n > _SPLIT_SAMPLE:
        # drawn with replacement: O(sample) work, where a draw without
        # replacement would permute all n rows
        sample = rows[np.sort(rng.randint(n, size=_SPLIT_SAMPLE))]
    else:
        sample = rows
    first = sample[rng.randint(sample.shape[0])]
    gaps = np.einsum("ij,ij->i", sample - first, sample - first, dtype=np.float64)
    if not gaps.any():
        if sample is rows or not np.any(rows != first):
            return None
        sample = rows  # the sample holds one point only; seed from all rows
        gaps = np.einsum("ij,ij->i", sample - first, sample - first, dtype=np.float64)
    # k-means++ seeding: the second seed is drawn in proportion to the
    # squared distance from the first
    second = sample[rng.choice(sample.shape[0], p=gaps / gaps.sum())]
    centers = np.vstack([first, second]).astype(np.float64)
    total = sample.sum(axis=0, dtype=np.float64)
    right = None
    for _ in range(_SPLIT_MAX_ITER):
        normal, offset = bisector(centers[0], centers[1])
        new_right = sample @ normal.astype(sample.dtype) > offset
        if right is not None and np.array_equal(new_right, right):
            break
        right = new_right
        n_right = np.count_nonzero(right)
        if n_right in (0, sample.shape[0]):
            break
        # the two means from one product: sum of the right rows, and the rest
        right_sum = right.astype(sample.dtype) @ sample
        centers = np.vstack([
            (total - right_sum) / (sample.shape[0] - n_right), right_sum / n_right
        ])
    normal, offset = bisector(centers[0], centers[1])
    goes_right = rows @ normal.astype(rows.dtype) > offset
    if np.count_nonzero(goes_right) in (0, n):
        return None
    return goes_right


def bisector(left, right):
    """Hyperplane ``x @ normal > offset`` <=> ``x`` is nearer ``right``."""
    normal = right - left
    return normal, 0.5 * (right @ right - left @ left)


def grow(rows, n_leaves, rng):
    """Bisecting 2-means on ``rows`` until there are ``n_leaves`` leaves.

    The leaf with the largest squared error is split first. Returns the node
    arrays (centers, sizes, children) with parents before children.
    """
    # squared errors from sums: sum |x|^2 - n |mean|^2 (rows are centred, so
    # the difference does not cancel)
    norms = np.einsum("ij,ij->i", rows, rows, dtype=np.float64)
    sums = [rows.sum(axis=0, dtype=np.float64)]
    sizes = [rows.shape[0]]
    children = [[-1, -1]]
    members = {0: np.arange(rows.shape[0])}

    def squared_error(node):
        return norms[members[node]].sum() - sums[node] @ sums[node] / sizes[node]

    # max-heap on squared error; ties broken by node id, for determinism
    heap = [(-squared_error(0), 0)]
    n_leaves_now = 1
    while n_leaves_now < n_leaves and heap:
        neg_error, node = heapq.heappop(heap)
        if neg_error >= 0:
            break
        index = members.pop(node)
        node_rows = rows[index]
        goes_right = bisect(node_rows, rng)
        if goes_right is None:
            continue  # identical rows: this leaf stays a leaf
        right_sum = (goes_right.astype(rows.dtype) @ node_rows).astype(np.float64)
        pair = []
        for side, side_sum in ((~goes_right, sums[node] - right_sum), (goes_right, right_sum)):
            child = len(sums)
            pair.append(child)
            members[child] = index[side]
            sums.append(side_sum)
            sizes.append(members[child].size)
            children.append([-1, -1])
            if sizes[child] > 1:
                heapq.heappush(heap, (-squared_error(child), child))
        children[node] = pair
        n_leaves_now += 1
    sizes = np.array(sizes, dtype=np.float64)
    return np.array(sums) / sizes[:, None], sizes, np.array(children, dtype=np.intp)


def leaf_order(children):
    """Leaves in depth-first, left-to-right order: neighbours in the tree
    become neighbouring output columns."""
    order, stack = [], [0]
    while stack:
        node = stack.pop()
        if children[node, 0] < 0:
            order.append(node)
        else:
            stack.extend((children[node, 1], children[node, 0]))
    return np.array(order, dtype=np.intp)


def depths(children):
    depth = np.zeros(children.shape[0], dtype=np.intp)
    for node in range(children.shape[0]):  # parents come before children
        if children[node, 0] >= 0:
            depth[children[node]] = depth[node] + 1
    return depth


class RoutingBlock:
    """Up to ``_BLOCK_NODES`` internal nodes, routed by one matrix product.

    ``nodes`` are the block's internal nodes (local index = position);
    ``table[local, side]`` is the next local position: an internal node, or
    ``len(nodes) + e`` for exit ``e``, which maps to itself (absorbing), so
    every row takes ``depth`` steps. ``exits[e]`` is the node a row leaves
    the block at: a bucket, or the root of a deeper block.
    """

    def __init__(self, root, children, is_bucket):
        nodes, exits, frontier, depth = [], [], [root], 0
        while frontier:
            deeper = []
            for node in frontier:
                if is_bucket[node] or len(nodes) + len(frontier) > _BLOCK_NODES:
                    exits.append(node)
                else:
                    nodes.append(node)
                    deeper.extend(children[node])
            frontier = deeper
            depth += bool(deeper)
        local = {node: i for i, node in enumerate(nodes)}
        exit_pos = {node: len(nodes) + e for e, node in enumerate(exits)}
        table = np.empty((len(nodes) + len(exits), 2), dtype=np.intp)
        for i, node in enumerate(nodes):
            for side in (0, 1):
                child = children[node, side]
                table[i, side] = local.get(child, exit_pos.get(child))
        table[len(nodes):] = np.arange(len(nodes), len(nodes) + len(exits))[:, None]
        self.nodes = np.array(nodes, dtype=np.intp)
        self.table = table
        self.exits = np.array(exits, dtype=np.intp)
        self.depth = depth


def block_exits(block, part, normals, offsets, inverse_norms, probe):
    """Route rows through one block; the node each leaves it at. ``normals``,
    ``offsets`` and ``inverse_norms`` are the tree's hyperplanes (rows by node).

    With ``probe``, also the exit of a second path: the one that takes
    the other side at the row's least certain test (the hyperplane it
    passes nearest), where a hyperplane test errs most often.
    """
    dtype = part.dtype
    m = block.nodes.size
    margins = part @ normals[block.nodes].T.astype(dtype)
    margins -= offsets[block.nodes].astype(dtype)
    # 1 where a row goes right at the block's node; the extra column of
    # zeros serves rows already at an exit
    right = np.zeros((part.shape[0], m + 1), dtype=np.uint8)
    np.greater(margins, 0, out=right[:, :m])
    flat_right = right.ravel()
    base = np.arange(0, flat_right.size, m + 1)
    position = np.zeros(part.shape[0], dtype=np.intp)
    if probe:
        # distance to each hyperplane; +inf for rows already at an exit
        distance = np.full((part.shape[0], m + 1), np.inf, dtype=dtype)
        np.multiply(np.abs(margins), inverse_norms[block.nodes].astype(dtype),
                    out=distance[:, :m])
        flat_distance = distance.ravel()
        nearest = np.full(part.shape[0], np.inf, dtype=dtype)
        doubtful = np.zeros(part.shape[0], dtype=np.intp)
    for _ in range(block.depth):
        here = base + np.minimum(position, m)
        if probe:
            closer = flat_distance[here] < nearest
            nearest[closer] = flat_distance[here[closer]]
            doubtful[closer] = position[closer]
        position = block.table[position, flat_right[here]]
    exits = block.exits[position - m]
    if not probe:
        return exits
    line = np.arange(part.shape[0])
    other = block.table[doubtful, 1 - right[line, doubtful]]
    for _ in range(block.depth - 1):
        other = block.table[other, flat_right[base + np.minimum(other, m)]]
    return exits, block.exits[other - m]


def move_prototypes(centred, columns, centers, sizes, leaves, children, internal_by_depth,
                    lloyd):
    """Move the prototypes to the rows assigned to them, in place.

    ``columns`` is each row's leaf (a column of ``leaves``). ``lloyd``: a
    Lloyd iteration on the sample, each prototype moved to the mean of its
    rows; a leaf that gets no row keeps its prototype. Otherwise a
    mini-batch step over new rows: every prototype becomes the mean of all
    the rows it has received (MacQueen's online k-means). Internal nodes
    follow as size-weighted means of their children (``internal_by_depth``:
    the internal nodes, deepest level first). ``centers`` and ``sizes`` are
    updated.
    """
    k = leaves.size
    counts = np.bincount(columns, minlength=k).astype(np.float64)
    # summing rows by leaf: a one-nonzero-per-row sparse product is one
    # pass over the rows
    membership = scipy.sparse.csr_matrix(
        (np.ones(columns.size, dtype=centred.dtype), columns, np.arange(columns.size + 1)),
        shape=(columns.size, k),
    )
    sums = np.asarray(membership.T @ centred, dtype=np.float64)
    hit = counts > 0
    if lloyd:
        total = counts
        centers[leaves[hit]] = sums[hit] / counts[hit, None]
    else:
        total = sizes[leaves] + counts
        old = centers[leaves[hit]]
        centers[leaves[hit]] = old + (sums[hit] - counts[hit, None] * old) / total[hit, None]
    sizes[leaves] = total
    for nodes in internal_by_depth:
        left, right = children[nodes, 0], children[nodes, 1]
        size_left, size_right = sizes[left], sizes[right]
        size = size_left + size_right
        sizes[nodes] = size
        filled = size > 0  # a node that got no row keeps its prototype
        nodes, left, right = nodes[filled], left[filled], right[filled]
        centers[nodes] = (
            size_left[filled, None] * centers[left] + size_right[filled, None] * centers[right]
        ) / size[filled, None]


def buckets(children, leaves):
    """Mark the bucket nodes: the largest subtrees of at most
    ``_BUCKET_LEAVES`` leaves. Returns the mask and each bucket's leaf columns."""
    n_nodes = children.shape[0]
    n_below = np.zeros(n_nodes, dtype=np.intp)
    n_below[leaves] = 1
    for node in range(n_nodes - 1, -1, -1):  # children come after parents
        if children[node, 0] >= 0:
            n_below[node] = n_below[children[node]].sum()
    small = n_below <= _BUCKET_LEAVES
    is_bucket = small.copy()
    internal = np.flatnonzero(children[:, 0] >= 0)
    is_bucket[children[internal[small[internal]]].ravel()] = False  # parent small too
    column_of = np.full(n_nodes, -1, dtype=np.intp)
    column_of[leaves] = np.arange(leaves.size)
    members = {}
    for bucket in np.flatnonzero(is_bucket):
        found, stack = [], [bucket]
        while stack:
            node = stack.pop()
            if children[node, 0] < 0:
                found.append(column_of[node])
            else:
                stack.extend(children[node])
        members[bucket] = np.sort(np.array(found, dtype=np.intp))
    return is_bucket, members


def float32_at_or_below(thresholds):
    """The largest float32 at or below each (float64) split threshold.

    scikit-learn's trees compare float32 inputs with float64 thresholds; for
    a float32 x, ``x <= t`` exactly when ``x <= t32`` with t32 this rounding,
    so the stored thresholds take half the space and send every input the
    same way.
    """
    rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def forest_arrays(trees, leaf_column, leaf_offsets):
    """scikit-learn trees (``tree_`` objects) as one forest of plain arrays,
    node after node: ``feature``, ``threshold`` (float32, rounded down),
    ``children`` and ``leaf_row`` (each leaf's row of the lookup table,
    given per tree by ``leaf_column`` plus ``leaf_offsets``) renumbered
    across the forest, and each tree's ``roots``."""
    offsets = np.cumsum([0] + [tree.node_count for tree in trees])
    pairs = [np.column_stack([tree.children_left, tree.children_right]) for tree in trees]
    index = index_dtype(offsets[-1])
    return {
        "feature": np.concatenate([tree.feature for tree in trees]).astype(index),
        "threshold": float32_at_or_below(np.concatenate([tree.threshold for tree in trees])),
        "children": np.vstack([pair + np.where(pair >= 0, start, 0)
                               for pair, start in zip(pairs, offsets)]).astype(index),
        "leaf_row": np.concatenate([
            np.where(column >= 0, column + row, -1)
            for column, row in zip(leaf_column, leaf_offsets)
        ]).astype(index),
        "roots": offsets[:-1].astype(index),
    }
