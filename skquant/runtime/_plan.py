"""The serving plan: a quantized pipeline's steps fused into few numpy calls.

The steps of :mod:`skquant.runtime._steps` are the reference: one object per
exported step, each computing exactly what its estimator's ``transform``
does, and what the exporters (TFLite, ONNX) emit one by one. Serving them
one by one costs, per call, a Python call and several numpy passes per
step, and a copy of the kept columns. At load, :func:`build_plan` rewrites
them into a shorter list of operations that compute the same function:

- the Cleaner becomes one clip over every input column: the dropped ones
  are clipped to ``[0, 0]`` and get zero weights downstream, which removes
  its column gather (imputation runs only when a block holds NaN or
  infinity); its scaling, where it scales, folds into the affine map after
  it (before a step with its own kernel, the Cleaner runs as it is);
- adjacent affine maps are multiplied out into one matrix and bias, in
  float64 and then rounded to float32: the Cleaner's column selection,
  PCA's centring and components (or the random projection's, LPP's, the
  QR selection), the classifier's standardization and its first Dense
  layer; the closeness step's factor, and any later affine map, fold into
  the layer after them. A product is formed only where it costs no more
  multiplications per row than the two maps it replaces. A map's centre
  (PCA's mean, the classifier's) stays a subtraction on the raw input
  unless the Cleaner's bounds show the offset is small against the spread:
  ``x @ M`` on data far from the origin would round away in float32 what
  ``(x - mean) @ M`` keeps. A product that float32 cannot hold is not
  formed (then the steps run as they are);
- steps with no affine form (closeness, random trees, Nystrom) keep their
  own kernels, applied to the clipped rows; the affine map after the graph
  step (the classifier's first layer) is applied to every landmark's
  coordinates once, here: the step's output is a weighted mean with
  weights summing to 1, which commutes with an affine map; after the union
  step, the layer's rows for the principal components multiply their
  matrix and the others fold into the landmarks' coordinates.

The result equals the step-by-step one up to float32 rounding (the fused
matrices are rounded once instead of each map's product being rounded).
Overflow is still refused: every operation whose output can leave
float32's range is checked, as the steps are.
"""

import numpy as np

from .. import kernels
from ._steps import (Clean, Closeness, Linear, MLP, Nystrom, RandomTrees, Select, Union,
                     check_finite)

# float32 values an operation may reach without any chance of overflow: a
# bound below this, proved when the plan is built, spares the run-time check
# (float32's largest is 3.4e38; the margin covers rounding in the sums)
_SAFE = 1e37
# weights (elements) up to which a model is fused: 16 MiB of float32, far
# above the models whose per-call overhead fusing is for
_FOLD_LIMIT = 1 << 22


class _Affine:
    """``(x - centre) @ matrix + bias`` (float64 while the plan is built;
    ``centre`` None for 0), and the names of the steps it computes, for
    error messages. The centre is kept apart from the bias: on inputs far
    from the origin (data with an offset), ``x @ matrix`` in float32 would
    round away what ``(x - centre)`` keeps exactly."""

    def __init__(self, matrix, bias, names, centre=None):
        self.matrix, self.bias, self.names = matrix, bias, list(names)
        self.centre = centre if centre is not None and np.any(centre) else None

    @property
    def shape(self):
        return self.matrix.shape

    def then(self, other):
        """This map followed by ``other``, as one map."""
        matrix = self.matrix @ other.matrix
        if other.centre is None:
            return _Affine(matrix, self.bias @ other.matrix + other.bias,
                           self.names + other.names, self.centre)
        if self.centre is None and self.is_selection() and _unique(self.selected()):
            # x[:, s] - c == (x - c placed at s)[:, s]: the centre moves back
            centre = np.zeros(self.shape[0])
            centre[self.selected()] = other.centre
            return _Affine(matrix, other.bias, self.names + other.names, centre)
        return _Affine(matrix, (self.bias - other.centre) @ other.matrix + other.bias,
                       self.names + other.names, self.centre)

    def without_centre(self):
        """The same map with its centre folded into the bias."""
        if self.centre is None:
            return self
        return _Affine(self.matrix, self.bias - self.centre @ self.matrix, self.names)

    def is_selection(self):
        """Whether it only picks columns (one 1 per output, no bias or centre)."""
        matrix = self.matrix
        return (self.centre is None and not self.bias.any()
                and bool(np.all((matrix == 0) | (matrix == 1)))
                and bool(np.all(matrix.sum(axis=0) == 1)))

    def selected(self):
        return np.argmax(self.matrix, axis=0).astype(np.intp)


def _unique(columns):
    return np.unique(columns).size == len(columns)


def _selection(columns, n_features, names=()):
    matrix = np.zeros((n_features, len(columns)))
    matrix[columns, np.arange(len(columns))] = 1.0
    return _Affine(matrix, np.zeros(len(columns)), names)


def _describe(names):
    names = [name for name in names if name]
    return " and ".join(dict.fromkeys(names)) or "projection step"


class AffineOp:
    """One fused affine map in float32, ``(x - centre) @ matrix + bias``,
    then a ReLU where asked. ``check`` says whether its output can overflow
    (see _SAFE), from the float32 numbers it computes with; ``finite`` is
    False where rounding the fused map to float32 overflowed (then the plan
    is not used)."""

    def __init__(self, affine, relu, bound):
        with np.errstate(over="ignore"):
            self.matrix = np.ascontiguousarray(affine.matrix, dtype=np.float32)
            self.bias = affine.bias.astype(np.float32)
            self.centre = None if affine.centre is None else affine.centre.astype(np.float32)
        self.finite = bool(np.isfinite(self.matrix).all() and np.isfinite(self.bias).all()
                           and (self.centre is None or np.isfinite(self.centre).all()))
        self.relu, self.where = relu, _describe(affine.names)
        self.width = self.matrix.shape[1]
        self.bound = None
        if bound is not None and self.finite:
            spread = bound if self.centre is None else bound + np.abs(self.centre.astype(float))
            with np.errstate(over="ignore", invalid="ignore"):
                self.bound = (np.abs(self.bias.astype(float))
                              + spread @ np.abs(self.matrix.astype(float)))
        self.check = self.bound is None or not self.bound.max(initial=0.0) < _SAFE

    def __call__(self, X):
        if self.centre is not None:
            X = X - self.centre
        out = X @ self.matrix
        out += self.bias
        if self.check:  # a hidden layer's -inf would be hidden by the ReLU
            check_finite(out, self.where)
        if self.relu:
            np.maximum(out, 0, out=out)
        return out


class ClipOp:
    """The Cleaner over every input column: impute non-finite values, clip.

    Columns it drops are clipped to zero, and carry zero weights in the
    operation after it. With ``gather`` (before a step with its own kernel)
    it is the Cleaner step itself, which keeps only its columns.
    """

    def __init__(self, clean, n_features, gather):
        self.clean, self.gather = clean, gather
        self.fill = np.zeros(n_features, dtype=np.float32)
        self.lower, self.upper = self.fill.copy(), self.fill.copy()
        self.fill[clean.keep], self.lower[clean.keep], self.upper[clean.keep] = (
            clean.fill, clean.lower, clean.upper)
        full = np.maximum(np.abs(self.lower), np.abs(self.upper)).astype(np.float64)
        self.bound = full[clean.keep] if gather else full
        if gather and clean.center is not None:
            # the scaled columns: each bound's distance to the centre over
            # the scale, at most float32's largest (where the kernel holds them)
            center, scale = clean.center.astype(np.float64), clean.scale.astype(np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                spread = np.maximum(np.abs(clean.lower - center), np.abs(clean.upper - center))
                self.bound = np.minimum(spread / scale, float(np.finfo(np.float32).max))
        if clean.categories:
            # the encoded columns after the numeric ones: their tables' largest
            tables = [np.abs(table.astype(np.float64)).max(axis=0)
                      for _, _, table, _ in clean.categories]
            self.bound = np.concatenate([self.bound] + tables)

    def __call__(self, X, finite):
        if self.gather:
            return self.clean(X)
        if finite:
            out = np.maximum(X, self.lower)
        else:
            out = np.where(np.isfinite(X), X, self.fill)
            np.maximum(out, self.lower, out=out)
        return np.minimum(out, self.upper, out=out)


class DistanceOp:
    """The closeness step's distances (to each prototype, or to its local
    subspace), before its factor (which folds into
    the affine map after it). It may read every input column: the
    Cleaner's dropped ones are zero there, in ``origin`` and in the
    prototypes."""

    def __init__(self, closeness, columns, width, bound, where, clip=None):
        self.origin = np.zeros(width, dtype=np.float32)
        self.origin[columns] = closeness.origin
        prototypes = np.zeros((closeness.prototypes.shape[0], width), dtype=np.float32)
        prototypes[:, columns] = closeness.prototypes
        self.norms = closeness.norms
        axes = None
        if closeness.axes is not None:  # local axes, zero on the other columns
            axes = np.zeros((closeness.axes.shape[0], width), dtype=np.float32)
            axes[:, columns] = closeness.axes
        if clip is not None and not clip.gather and _offset_is_small(
                self.origin.astype(np.float64), clip):
            # on the clipped raw input, where the Cleaner's bounds show the
            # origin is small against the spread: distances to the raw
            # prototypes, a subtraction fewer (the origin cancels)
            raw = (prototypes.astype(np.float64) + self.origin).astype(np.float32)
            if np.isfinite(raw).all() and np.isfinite(np.einsum("ij,ij->i", raw, raw)).all():
                prototypes, self.origin = raw, None
                self.norms = np.einsum("ij,ij->i", raw, raw)
        self.minus_twice = np.ascontiguousarray(-2.0 * prototypes.T)
        self.axes_t = self.axis_offsets = None
        if axes is not None:
            # each axis's product with its prototype, in the frame used here
            # (|U (x - c)| <= |x - c|: the bounds below hold for it too)
            self.axes_t, self.axis_offsets = kernels.local_frame(axes, prototypes)
        self.where, self.width = where, prototypes.shape[0]
        self.bound, self.check = None, True
        if bound is not None:
            # every term of the squared distance, and the distance, bounded
            spread = bound if self.origin is None else (
                bound + np.abs(self.origin.astype(np.float64)))
            magnitude = np.abs(prototypes.astype(np.float64))
            squared = spread @ spread
            terms = squared + 2 * magnitude @ spread + self.norms.astype(np.float64)
            if axes is not None:
                # the squared coordinates along m axes of norm at most
                # axis_norm: each below axis_norm^2 |x - c|^2 (the distance,
                # minus them and floored at 0, stays below the bound)
                m = axes.shape[0] // prototypes.shape[0]
                terms = terms * (1 + m * closeness.axis_norm ** 2)
            self.bound = np.sqrt(((spread + magnitude) ** 2).sum(axis=1))
            self.check = not terms.max(initial=0.0) < _SAFE

    def __call__(self, X):
        centred = X if self.origin is None else X - self.origin
        # the kernel's arithmetic, with the factor left to the next map
        squared = kernels.closeness(centred, self.minus_twice, self.norms, None,
                                    self.axes_t, self.axis_offsets)
        if self.check:
            check_finite(squared, self.where)
        return squared


class StepOp:
    """A step with no affine form, run by its own kernel on the columns it
    reads (``columns``: a selection of the Cleaner's output, or None)."""

    def __init__(self, step, columns, where, *, reference=False):
        self.step, self.where = step, where
        self.columns = columns
        self.bound = _output_bound(step)
        self.width = None if reference else _output_width(step)
        self.check = step.OVERFLOWS and (self.bound is None or not self.bound.max() < _SAFE)

    def __call__(self, X):
        if self.columns is not None:
            X = X[:, self.columns]
        out = self.step(X)
        if self.check:
            check_finite(out, self.where)
        return out


class NystromOp:
    """The graph step: each row's kernel-weighted mean of its nearest
    landmarks' ``values``: their coordinates, or those mapped by the affine
    map after the step (see :meth:`fold`), then a ReLU where asked.
    ``columns``: the step's input columns, or None."""

    def __init__(self, step, columns, where):
        self.step, self.columns, self.where = step, columns, where
        self.values, self.relu, self.folded = step.coordinates, False, False
        self.bound = _output_bound(step)
        self.width = self.values.shape[1]
        self.finite = True
        self.check = self.bound is None or not self.bound.max() < _SAFE

    def fold(self, affine, relu):
        """Apply ``affine`` (no centre) to every landmark's values: the
        weighted mean of the mapped values is the mapped weighted mean."""
        with np.errstate(over="ignore", invalid="ignore"):
            values = self.values.astype(np.float64) @ affine.matrix + affine.bias
        self.values, self.folded = values.astype(np.float32), True
        self.finite = bool(np.isfinite(self.values).all())
        self.relu, self.width = relu, self.values.shape[1]
        self.where = _describe([self.where] + affine.names)
        self.bound = np.abs(self.values.astype(np.float64)).max(axis=0)
        self.check = not self.bound.max(initial=0.0) < _SAFE

    def __call__(self, X):
        if self.columns is not None:
            X = X[:, self.columns]
        weights, nearest = self.step.neighbours(X)
        out = kernels.nystrom(weights, self.values[nearest])
        if self.check:
            check_finite(out, self.where)
        if self.relu:
            np.maximum(out, 0, out=out)
        return out


class UnionOp:
    """The union step: its principal components (an affine map of the
    input) next to its graph embedding, or, once the classifier's first
    layer is folded in (:meth:`fold`), their sum through that layer: the
    layer's rows for the principal components multiply the components'
    matrix, and its rows for the embedding fold into the landmarks' values."""

    def __init__(self, step, columns, where, bound, clip):
        self.step, self.columns, self.where = step, columns, where
        linear = step.linear
        self._input_bound, self._clip = bound, clip
        self._linear = _Affine(linear.components.astype(np.float64).T,
                               np.zeros(linear.components.shape[0]), [where],
                               centre=linear.mean.astype(np.float64))
        self.affine = self._affine_op(self._linear)
        self.graph = NystromOp(step.graph, None, where)
        self.relu, self.folded = False, False
        self.n_linear = linear.components.shape[0]
        self.width = self.n_linear + self.graph.width
        self._set_bounds()

    def _affine_op(self, affine):
        # the centre stays a subtraction on raw input unless the Cleaner's
        # bounds show the offset is small (as for any map on raw input)
        if self.columns is None and _offset_is_small(affine.centre, self._clip):
            affine = affine.without_centre()
        return AffineOp(affine, False, self._input_bound)

    def _set_bounds(self):
        self.finite = self.affine.finite and self.graph.finite
        parts = (self.affine.bound, self.graph.bound)
        if any(part is None for part in parts):
            self.bound = None
        elif self.folded:
            self.bound = parts[0] + parts[1]
        else:
            self.bound = np.concatenate(parts)
        self.check = self.bound is None or not self.bound.max(initial=0.0) < _SAFE

    def fold(self, affine, relu):
        """Apply ``affine`` (no centre) to the concatenated output."""
        matrix = affine.matrix
        self.affine = self._affine_op(self._linear.then(
            _Affine(matrix[: self.n_linear], np.zeros(matrix.shape[1]), affine.names)))
        self.graph.fold(_Affine(matrix[self.n_linear :], affine.bias, affine.names), False)
        self.relu, self.folded, self.width = relu, True, matrix.shape[1]
        self.where = _describe([self.where] + affine.names)
        self._set_bounds()

    def __call__(self, X):
        if self.columns is not None:
            X = X[:, self.columns]
        linear, graph = self.affine(X), self.graph(X)
        if not self.folded:
            return np.concatenate([linear, graph], axis=1)
        linear += graph
        if self.check:
            check_finite(linear, self.where)
        if self.relu:
            np.maximum(linear, 0, out=linear)
        return linear


def _output_bound(step):
    """A bound of a step's output whatever its finite input, or None."""
    if type(step) is Nystrom:  # a convex combination of the coordinates
        return np.abs(step.coordinates.astype(np.float64)).max(axis=0)
    if type(step) is RandomTrees:  # one lookup row per tree, shifted
        largest = np.abs(step.lookup.astype(np.float64)).max(axis=0)
        return np.abs(step.shift.astype(np.float64)) + step.roots.size * largest
    return None


def _weight_elements(step):
    """How many weights a step holds (what fusing it would copy)."""
    arrays = [getattr(step, name, None) for name in ("components", "prototypes")]
    arrays += list(getattr(step, "weights", []))
    return sum(array.size for array in arrays if array is not None)


def _output_width(step):
    if type(step) is Nystrom:
        return step.coordinates.shape[1]
    if type(step) is RandomTrees:
        return step.lookup.shape[1]
    if type(step) is Clean:  # the kept columns, then the encoded ones
        return step.keep.size + sum(table.shape[1] for _, _, table, _ in step.categories)
    return None  # a user's step kind: unknown, so nothing after it folds by width


def _step_affine(step, width, name):
    """The affine form of a step (float64), or None."""
    if type(step) is Linear:
        components = step.components.astype(np.float64)
        return _Affine(components.T, np.zeros(components.shape[0]), [name],
                       centre=step.mean.astype(np.float64))
    if type(step) is Select and width is not None:
        return _selection(step.columns, width, [name])
    return None


def _classifier_layers(mlp):
    """The classifier's layers as affine maps, its standardization in the first."""
    layers = [
        _Affine(weights.astype(np.float64).T, bias.astype(np.float64),
                [f"layer {number} of the classifier"])
        for number, (weights, bias) in enumerate(zip(mlp.weights, mlp.biases))
    ]
    first = layers[0]
    matrix = first.matrix / mlp.scale.astype(np.float64)[:, None]
    layers[0] = _Affine(matrix, first.bias, first.names, centre=mlp.mean.astype(np.float64))
    return layers


def _worth_folding(pending, layer):
    """Whether their product costs no more multiplications per row than the two."""
    n_in, n_mid = pending.shape
    return pending.is_selection() or n_in * layer.shape[1] <= n_mid * (n_in + layer.shape[1])


def build_plan(steps, kinds, n_features):
    """The fused operations of a pipeline's steps (see the module's notes).

    Parameters
    ----------
    steps : list
        The pipeline's steps (``skquant.runtime._steps`` objects).
    kinds : list of str
        Their kinds, as in the manifest.
    n_features : int
        Input columns.

    Returns
    -------
    clip : ClipOp or None
        The Cleaner, when the pipeline starts with one.
    operations : list
        What runs after it, in order: each takes and returns a float32 block.
    """
    steps, kinds = list(steps), list(kinds)
    _all_steps = (list(steps), list(kinds))
    if sum(_weight_elements(step) for step in steps) > _FOLD_LIMIT:
        # a model this large is bound by its arithmetic, not by calls, and
        # fused copies of its matrices would double its memory: its steps
        # run one by one, as they are
        return None, [StepOp(step, None, f"{kind} step", reference=True)
                      for step, kind in zip(steps, kinds)]
    clip, bound, pending, width = None, None, None, n_features
    # (exact classes: a user's subclass of a step runs its own __call__)
    clean_selection = None
    if steps and type(steps[0]) is Clean:
        clean = steps.pop(0)
        kinds.pop(0)
        # the next step reads every column only where it is fused here; the
        # scaling folds into an affine map after it, and otherwise the
        # Cleaner's own kernel scales the kept columns
        scaled = clean.center is not None
        fused = (Linear, Select, MLP) if scaled else (
            Linear, Select, Closeness, MLP, Nystrom, Union)
        # (a Cleaner that encodes categories runs as it is: its lookup
        # tables have no affine form)
        gather = bool(clean.categories) or not (steps and type(steps[0]) in fused)
        clip = ClipOp(clean, n_features, gather)
        bound = clip.bound
        if gather:
            width = _output_width(clean)
        else:
            pending = clean_selection = _selection(clean.keep, n_features)
            if scaled:
                scale = clean.scale.astype(np.float64)
                pending = pending.then(_Affine(
                    np.diag(1.0 / scale), np.zeros(scale.size), ["clean step"],
                    centre=clean.center.astype(np.float64)))
    operations = []

    def emit(operation):
        nonlocal bound, width
        operations.append(operation)
        bound, width = operation.bound, operation.width

    def affine_op(affine, relu):
        # on the raw (clipped) input, the centre folds into the bias only
        # where the Cleaner's bounds show the offset is no larger than the
        # spread around it (then float32 loses at most a few bits more);
        # later, the input is a float32 result rounded at its own
        # magnitude, and folding loses nothing
        if operations or _offset_is_small(affine.centre, clip):
            affine = affine.without_centre()
        return AffineOp(affine, relu, bound)

    def flush():
        nonlocal pending
        if pending is not None:
            if pending.is_selection() and pending.shape[0] == pending.shape[1] and (
                    np.array_equal(pending.selected(), np.arange(pending.shape[0]))):
                pass  # the identity
            elif pending.is_selection():
                emit(_GatherOp(pending.selected(), bound))
            else:
                emit(affine_op(pending, False))
        pending = None

    for step, kind in zip(steps, kinds):
        name = f"{kind} step"
        affine = _step_affine(step, pending.shape[1] if pending is not None else width, name)
        if affine is not None:
            if pending is None:
                pending = affine
            elif _worth_folding(pending, affine):
                pending = pending.then(affine)
            else:
                flush()
                pending = affine
        elif type(step) is Closeness:
            if pending is not None and pending is clean_selection:
                # every input column, the Cleaner's dropped ones zero
                columns, width = pending.selected(), pending.shape[0]
                pending = None
            else:
                flush()
                width = step.origin.size
                columns = np.arange(width)
            emit(DistanceOp(step, columns, width, bound, name,
                            clip if not operations else None))
            n_out = step.prototypes.shape[0]
            pending = _Affine(np.eye(n_out) * float(step.factor), np.zeros(n_out), [name])
        elif type(step) is MLP:
            layers = _classifier_layers(step)
            for number, layer in enumerate(layers):
                relu = number < len(layers) - 1
                if pending is None and operations and type(operations[-1]) in (
                        NystromOp, UnionOp) and not operations[-1].folded:
                    # a weighted mean commutes with an affine map (the
                    # weights sum to 1): the layer applied to every
                    # landmark's coordinates once, at load
                    operations[-1].fold(layer.without_centre(), relu)
                    bound, width = operations[-1].bound, operations[-1].width
                elif pending is not None and _worth_folding(pending, layer):
                    emit(affine_op(pending.then(layer), relu))
                else:
                    flush()
                    emit(affine_op(layer, relu))
                pending = None
        elif type(step) in (Nystrom, Union):
            # after the Cleaner: its clip over every column, then the kept
            # ones gathered here (cheaper than the Cleaner's own gather,
            # which imputes on every call)
            columns = None
            if pending is not None and pending.is_selection():
                columns, pending = pending.selected(), None
            flush()
            if type(step) is Nystrom:
                emit(NystromOp(step, columns, name))
            else:
                emit(UnionOp(step, columns, name, bound if columns is None else (
                    None if bound is None else bound[columns]), clip))
        else:
            columns = None
            if pending is not None and pending.is_selection():
                columns, pending = pending.selected(), None
            flush()
            emit(StepOp(step, columns, name))
    flush()
    if not all(getattr(operation, "finite", True) for operation in operations):
        # a fused map beyond float32's range: the steps as they are
        return None, [StepOp(step, None, f"{kind} step", reference=True)
                      for step, kind in zip(*_all_steps)]
    return clip, operations


def _offset_is_small(centre, clip):
    """Whether folding ``centre`` into the bias keeps float32's precision on
    the clipped input: every offset at most 4 times the column's spread."""
    if centre is None:
        return True
    if clip is None or clip.gather:
        return False
    lower, upper = clip.lower.astype(np.float64), clip.upper.astype(np.float64)
    spread = np.maximum(np.abs(lower - centre), np.abs(upper - centre))
    return bool(np.all(np.isfinite(spread)) and np.all(np.abs(centre) <= 4 * spread))


class _GatherOp:
    """Keep some columns."""

    check = False  # a subset of finite values

    def __init__(self, columns, bound):
        self.columns, self.width = columns, columns.size
        self.bound = None if bound is None else bound[columns]

    def __call__(self, X):
        return X[:, self.columns]
