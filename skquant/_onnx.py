"""Export a fitted pipeline as one ONNX model, and run one.

The whole pipeline becomes one graph, from raw float32 rows (NaN and
infinity imputed where the pipeline cleans) to the class ``label`` and the
class ``probabilities``, as skl2onnx's classifiers name them. Like the
TFLite export (``skquant._tflite``), it is built from the runtime steps of
``quantize(pipeline, dtype="float32")``: one emitter per step kind, in
:data:`_EMITTERS`, writes the ONNX nodes that compute what that step's
numpy ``__call__`` computes (``skquant.runtime._steps``), and nothing else.

The emitters write through a small builder interface (:class:`_Builder`:
``constant``, ``node``, ``unique``), which has two implementations: one
that collects an ``onnx.helper`` graph (:func:`export_onnx`) and one over
skl2onnx's scope and container (``skquant/_skl2onnx.py``: the converters
that :func:`register_skl2onnx` registers), so that a skquant step inside any
scikit-learn pipeline converts with the same nodes. Adding a step kind to
the runtime means adding one emitter here; a step without one is refused
with its name.

onnx, onnxruntime and skl2onnx are imported inside the functions that need
them (``pip install "skquant[onnx]"``): ``import skquant`` imports none.
"""

import os

import numpy as np
from sklearn.utils._param_validation import HasMethods, StrOptions, validate_params

from . import _registry
from ._atomic import check_output_path, write_bytes
from ._registry import emitter_for, register_emitter
from .runtime import _steps
from .runtime._pipeline import is_count

# a standard opset that onnxruntime has long supported: ReduceSum takes its
# axes as an input (13 and later), ReduceMin still as an attribute (< 18)
OPSET = 17
# the classic ML opset: TreeEnsembleRegressor, as skl2onnx's tree converters use
ML_OPSET = 3
# the oldest target opset the emitters support (TopK's `largest`, ReduceSum's
# axes input, Softmax over one axis)
_MIN_OPSET = 13
_DTYPES = ("float32", "int8")
_INSTALL = 'pip install "skquant[onnx]"'
# what marks a model as skquant's: the version of this graph layout, stored
# in metadata_props with the model's input width and class labels
_FORMAT = "2"  # 2: a missing category is NaN at its position in X, not "" in X_text
_INPUT, _LABEL, _PROBABILITIES = "X", "label", "probabilities"
# the categorical columns' values, as text (a pipeline whose Cleaner encodes
# categories): one column per categorical column, in the table's order
_TEXT_INPUT = "X_text"


def _require(*modules):
    """Import the optional ONNX packages, or say how to install them."""
    import importlib

    loaded = []
    for module in modules:
        try:
            loaded.append(importlib.import_module(module))
        except ImportError as exc:
            raise ImportError(
                f"ONNX export needs the {module!r} package ({exc}); install skquant's "
                f'ONNX extra: {_INSTALL}.') from None
    return loaded[0] if len(loaded) == 1 else loaded


# ----------------------------------------------------------------- builders
class _Builder:
    """What an emitter writes with.

    ``constant(array, hint)`` adds an initializer and returns its name;
    ``node(op_type, inputs, hint, n_outputs=1, domain="", output=None,
    **attributes)`` adds a node and returns its output's name (a list of
    names for ``n_outputs > 1``; ``output`` names a single output);
    ``unique(hint)`` is a fresh name; ``opset`` is the target's version of
    the default domain. ``weight(matrix, hint, per, dtype)`` adds a weight
    matrix that no MatMul quantizer reaches (a table read by Gather, a
    float64 MatMul's) and returns the name of its value in ``dtype``.
    """

    opset = OPSET

    def weight(self, matrix, hint, per, dtype=np.float32):
        """Stored in float32; ``per`` ("row" or "column") says along which
        axis an int8 builder gives each slice its own scale."""
        name = self.constant(np.asarray(matrix, dtype=np.float32), hint)
        if dtype == np.float32:
            return name
        return self.node("Cast", [name], f"{hint}_{np.dtype(dtype).name}",
                         to=_onnx_dtype(dtype))

    def _tensor(self, array, name):
        from onnx import numpy_helper

        array = np.asarray(array)
        if array.dtype.kind in "US":
            array = array.astype(object)
        return numpy_helper.from_array(array, name)


class _GraphBuilder(_Builder):
    """Collects the nodes and initializers of a standalone ``onnx.helper`` graph.

    With ``int8=True``, :meth:`weight` stores int8 codes and one float32
    scale per row (or column), as the numpy runtime's int8 artifact does
    (``skquant._export._store``), restored in the graph by the runtime's
    arithmetic (``codes.astype(dtype) * scale``): onnxruntime folds the
    restoration into a constant when it loads the model.
    """

    def __init__(self, *, int8=False):
        self.nodes, self.initializers, self._used = [], [], set()
        self.int8 = int8

    def weight(self, matrix, hint, per, dtype=np.float32):
        if not self.int8:
            return super().weight(matrix, hint, per, dtype)
        from ._export import _store

        matrix = np.asarray(matrix, dtype=np.float64)
        stored = {}
        _store(stored, hint, matrix if per == "row" else matrix.T, "int8", quantize=True)
        codes, scale = stored[f"{hint}.q"], stored[f"{hint}.scale"]
        if per == "row":
            scale = scale[:, None]
        else:
            codes, scale = codes.T, scale[None, :]
        to = _onnx_dtype(dtype)
        codes = self.node("Cast", [self.constant(codes, f"{hint}_int8")], f"{hint}_codes",
                          to=to)
        scale = self.node("Cast", [self.constant(scale, f"{hint}_scale")],
                          f"{hint}_scales", to=to)
        return self.node("Mul", [codes, scale], f"{hint}_restored")

    def unique(self, hint):
        name, n = hint, 0
        while name in self._used:
            n += 1
            name = f"{hint}_{n}"
        self._used.add(name)
        return name

    def constant(self, array, hint):
        name = self.unique(hint)
        self.initializers.append(self._tensor(array, name))
        return name

    def node(self, op_type, inputs, hint, *, n_outputs=1, domain="", output=None,
             **attributes):
        from onnx import helper

        outputs = ([output] if output is not None else
                   [self.unique(f"{hint}_out{i}" if n_outputs > 1 else hint)
                    for i in range(n_outputs)])
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs,
                                           name=self.unique(f"{hint}_node"),
                                           domain=domain, **attributes))
        return outputs[0] if n_outputs == 1 else outputs


def _reduce(b, op_type, x, axis, hint, keepdims=1):
    """A reduction over one axis, in the signature of the builder's opset:
    axes became an input for ReduceSum at opset 13, for the others at 18."""
    if op_type == "ReduceSum" or b.opset >= 18:
        axes = b.constant(np.array([axis], dtype=np.int64), f"{hint}_axes")
        return b.node(op_type, [x, axes], hint, keepdims=keepdims)
    return b.node(op_type, [x], hint, axes=[axis], keepdims=keepdims)


# ----------------------------------------------------------------- emitters
# Each emitter takes the builder, the runtime step and the name of the
# step's float32 input, and returns the name of its float32 output.
def _emit_clean(b, step, x):
    kept = b.node("Gather", [x, b.constant(step.keep.astype(np.int64), "clean_keep")],
                  "clean_kept", axis=1)
    missing = b.node("Or", [b.node("IsNaN", [kept], "clean_nan"),
                            b.node("IsInf", [kept], "clean_inf")], "clean_missing")
    filled = b.node("Where", [missing, b.constant(step.fill, "clean_fill"), kept],
                    "clean_filled")
    lowered = b.node("Max", [filled, b.constant(step.lower, "clean_lower")], "clean_low")
    clipped = b.node("Min", [lowered, b.constant(step.upper, "clean_upper")], "clean_clipped")
    if step.categories:
        numeric = _scaled(b, step, clipped)
        # each categorical column: its text -> its row in the lookup table
        # (an unknown category the last row); a missing value, NaN at the
        # column's position in X, the imputed category's row
        blocks = [numeric]
        for number, (column, categories, table, missing_row) in enumerate(step.categories):
            text = b.node("Gather", [_TEXT_INPUT, b.constant(np.array(number, dtype=np.int64),
                                                             "category_column")],
                          "category_text", axis=1)
            codes = b.node("LabelEncoder", [text], "category_codes", domain="ai.onnx.ml",
                           keys_strings=categories.tolist(),
                           values_int64s=list(range(categories.size)),
                           default_int64=len(categories))
            flag = b.node("Gather", [x, b.constant(np.array(column, dtype=np.int64),
                                                   "category_position")],
                          "category_flag", axis=1)
            codes = b.node("Where", [b.node("IsNaN", [flag], "category_missing"),
                                     b.constant(np.array(missing_row, dtype=np.int64),
                                                "category_missing_row"), codes],
                           "category_codes_or_missing")
            blocks.append(b.node("Gather", [b.constant(table, "category_table"), codes],
                                 "category_rows", axis=0))
        return b.node("Concat", blocks, "clean_encoded", axis=1)
    return _scaled(b, step, clipped)


def _scaled(b, step, clipped):
    if step.center is None:
        return clipped
    # as kernels.clean: (x - center) / scale; where the difference overflows,
    # x / scale - center / scale; then held within float32's range
    center, scale = b.constant(step.center, "clean_center"), b.constant(step.scale, "clean_scale")
    scaled = b.node("Div", [b.node("Sub", [clipped, center], "clean_centred"), scale],
                    "clean_scaled")
    redone = b.node("Sub", [b.node("Div", [clipped, scale], "clean_over"),
                            b.constant(step.center / step.scale, "clean_shift")], "clean_redone")
    chosen = b.node("Where", [b.node("IsInf", [scaled], "clean_overflow"), redone, scaled],
                    "clean_chosen")
    largest = np.finfo(np.float32).max
    held = b.node("Max", [chosen, b.constant(np.float32(-largest).reshape(1), "clean_min")],
                  "clean_held_low")
    return b.node("Min", [held, b.constant(np.float32(largest).reshape(1), "clean_max")],
                  "clean_held")


def _emit_linear(b, step, x):
    centred = b.node("Sub", [x, b.constant(step.mean, "linear_mean")], "linear_centred")
    components = np.ascontiguousarray(step.components.T)
    return b.node("MatMul", [centred, b.constant(components, "linear_components")],
                  "linear_projected")


def _emit_select(b, step, x):
    columns = b.constant(step.columns.astype(np.int64), "select_columns")
    return b.node("Gather", [x, columns], "select_selected", axis=1)


def _emit_closeness(b, step, x):
    centred = b.node("Sub", [x, b.constant(step.origin, "closeness_origin")],
                     "closeness_centred")
    # the kernel's own arithmetic: -2 c.p + |p|^2 + |c|^2, floored at 0
    prototypes = np.ascontiguousarray(-2.0 * step.prototypes.T)
    squared = b.node("MatMul", [centred, b.constant(prototypes, "closeness_prototypes")],
                     "closeness_products")
    squared = b.node("Add", [squared, b.constant(step.norms, "closeness_norms")],
                     "closeness_plus_norms")
    own = _reduce(b, "ReduceSum",
                  b.node("Mul", [centred, centred], "closeness_squares"), 1,
                  "closeness_own_norms")
    squared = b.node("Add", [squared, own], "closeness_squared")
    if step.axes is not None:
        # minus the squared coordinates along each prototype's local axes,
        # summed per prototype by a 0/1 matrix (no reshape of the batch)
        along = b.node("MatMul", [centred, b.constant(step.axes_t, "closeness_axes")],
                       "closeness_along")
        along = b.node("Sub", [along, b.constant(step.axis_offsets, "closeness_axis_offsets")],
                       "closeness_along_centred")
        along = b.node("Mul", [along, along], "closeness_along_squares")
        local = b.node("MatMul", [along, b.constant(step.axis_sums(), "closeness_axis_sums")],
                       "closeness_local")
        squared = b.node("Sub", [squared, local], "closeness_residual")
    squared = b.node("Max", [squared, b.constant(np.float32(0), "closeness_zero")],
                     "closeness_floored")
    distance = b.node("Sqrt", [squared], "closeness_distance")
    return b.node("Mul", [distance, b.constant(step.factor, "closeness_factor")],
                  "closeness_features")


def _emit_random_trees(b, step, x):
    # the forest as one standard ML-domain TreeEnsembleRegressor: each leaf
    # carries its row of the lookup table, summed over the trees, from a
    # base of -shift. A node goes left (its true branch) when x <= threshold,
    # as the kernel's `x > threshold` goes right; the thresholds are float32
    # already, so every float32 row reaches the kernel's leaves.
    node = np.arange(step.feature.size)
    tree = np.searchsorted(step.roots, node, side="right") - 1
    root = step.roots[tree]
    internal = step.feature >= 0
    children = np.where(internal[:, None], step.children.astype(np.int64) - root[:, None], 0)
    leaves = np.flatnonzero(~internal)
    n_out = step.lookup.shape[1]
    return b.node(
        "TreeEnsembleRegressor", [x], "random_trees_features", domain="ai.onnx.ml",
        n_targets=n_out, aggregate_function="SUM", post_transform="NONE",
        base_values=(-step.shift).astype(np.float32).tolist(),
        nodes_treeids=tree.tolist(), nodes_nodeids=(node - root).tolist(),
        nodes_featureids=np.where(internal, step.feature, 0).tolist(),
        nodes_values=step.threshold.astype(np.float32).tolist(),
        nodes_modes=np.where(internal, "BRANCH_LEQ", "LEAF").tolist(),
        nodes_truenodeids=children[:, 0].tolist(), nodes_falsenodeids=children[:, 1].tolist(),
        target_treeids=np.repeat(tree[leaves], n_out).tolist(),
        target_nodeids=np.repeat((node - root)[leaves], n_out).tolist(),
        target_ids=np.tile(np.arange(n_out), leaves.size).tolist(),
        target_weights=step.lookup[step.leaf_row[leaves].astype(np.intp)].ravel().tolist())


def _emit_nystrom(b, step, x):
    # float64, as the kernel's neighbour search and weights are (nearest
    # first, ties to the lower index: TopK's order); the weighted mean of
    # the coordinates in float32, as the kernel's einsum
    x64 = b.node("Cast", [x], "nystrom_x64", to=_onnx_dtype(np.float64))
    if step.reduce_components is not None:
        # on the principal axes the graph is built on, as the kernel
        centred = b.node("Sub", [x64, b.constant(step.reduce_mean, "nystrom_reduce_mean")],
                         "nystrom_centred")
        x64 = b.node("MatMul", [centred, b.constant(
            np.ascontiguousarray(step.reduce_components.T), "nystrom_reduce_axes")],
            "nystrom_reduced")
    landmarks = b.weight(step.landmarks.T, "nystrom_landmarks", per="column",
                         dtype=np.float64)
    # the landmarks' squared norms from the stored landmarks, as the kernel
    # computes them (a constant that onnxruntime folds at load)
    norms = _reduce(b, "ReduceSum", b.node("Mul", [landmarks, landmarks],
                                           "nystrom_landmark_squares"), 0,
                    "nystrom_norms", keepdims=0)
    ranks = b.node("MatMul", [x64, landmarks], "nystrom_products")
    ranks = b.node("Mul", [ranks, b.constant(np.float64(-2.0), "nystrom_minus_two")],
                   "nystrom_doubled")
    # ranked by |l|^2 - 2 x.l, as the kernel ranks them; the row's own
    # squared norm added to the k chosen
    ranks = b.node("Add", [ranks, norms], "nystrom_ranks")
    k = b.constant(np.array([step.n_neighbors], dtype=np.int64), "nystrom_k")
    nearest_ranks, nearest = b.node("TopK", [ranks, k], "nystrom_nearest", n_outputs=2,
                                    axis=1, largest=0, sorted=1)
    own = _reduce(b, "ReduceSum", b.node("Mul", [x64, x64], "nystrom_squares"), 1,
                  "nystrom_own_norms")
    nearest_squared = b.node("Max", [b.node("Add", [nearest_ranks, own], "nystrom_squared"),
                                     b.constant(np.float64(0), "nystrom_zero")],
                             "nystrom_floored")
    distance = b.node("Sqrt", [nearest_squared], "nystrom_distance")
    last = b.constant(np.array([step.n_neighbors - 1], dtype=np.int64), "nystrom_last")
    farthest = b.node("Gather", [distance, last], "nystrom_farthest", axis=1)
    scale = b.node("Max", [farthest, b.constant(np.float64(step.floor), "nystrom_floor")],
                   "nystrom_row_scale")
    neighbour_scale = b.node(
        "Gather", [b.constant(step.landmark_scale.astype(np.float64), "nystrom_scales"),
                   nearest], "nystrom_neighbour_scale")
    # kernel_weights: (d / s_row) * (d / s_neighbour), capped, minus the
    # row's smallest, then exp(-.) normalized
    exponents = b.node("Mul", [b.node("Div", [distance, scale], "nystrom_by_row"),
                               b.node("Div", [distance, neighbour_scale],
                                      "nystrom_by_neighbour")], "nystrom_exponents")
    exponents = b.node("Min", [exponents, b.constant(np.finfo(np.float64).max,
                                                     "nystrom_largest")], "nystrom_capped")
    smallest = _reduce(b, "ReduceMin", exponents, 1, "nystrom_smallest")
    weights = b.node("Exp", [b.node("Neg", [b.node("Sub", [exponents, smallest],
                                                    "nystrom_shifted")], "nystrom_negated")],
                     "nystrom_kernel")
    total = _reduce(b, "ReduceSum", weights, 1, "nystrom_total")
    weights = b.node("Div", [weights, total], "nystrom_weights64")
    weights = b.node("Cast", [weights], "nystrom_weights", to=_onnx_dtype(np.float32))
    coordinates = b.weight(step.coordinates, "nystrom_coordinates", per="column")
    neighbours = b.node("Gather", [coordinates, nearest], "nystrom_neighbour_coordinates")
    return b.node("Einsum", [weights, neighbours], "nystrom_features",
                  equation="ij,ijk->ik")


def _emit_mlp(b, step, x):
    centred = b.node("Sub", [x, b.constant(step.mean, "mlp_input_mean")], "mlp_centred")
    activations = b.node("Div", [centred, b.constant(step.scale, "mlp_input_scale")],
                         "mlp_standardized")
    last = len(step.weights) - 1
    for i, (weights, bias) in enumerate(zip(step.weights, step.biases)):
        product = b.node("MatMul", [activations, b.constant(
            np.ascontiguousarray(weights.T), f"mlp_weights{i}")], f"mlp_product{i}")
        activations = b.node("Add", [product, b.constant(bias, f"mlp_bias{i}")],
                             f"mlp_layer{i}")
        if i < last:
            activations = b.node("Relu", [activations], f"mlp_relu{i}")
    return activations


def _emit_union(b, step, x):
    linear, graph = _emit_linear(b, step.linear, x), _emit_nystrom(b, step.graph, x)
    return b.node("Concat", [linear, graph], "union_features", axis=1)


for _step, _emitter in {
    _steps.Clean: _emit_clean,
    _steps.Linear: _emit_linear,
    _steps.Select: _emit_select,
    _steps.Closeness: _emit_closeness,
    _steps.RandomTrees: _emit_random_trees,
    _steps.Nystrom: _emit_nystrom,
    _steps.Union: _emit_union,
    _steps.MLP: _emit_mlp,
}.items():
    register_emitter("onnx", _step, _emitter, replace=False)
del _step, _emitter
_EMITTERS = _registry._EMITTERS["onnx"]
"""Runtime step class -> the emitter that writes its ONNX nodes (the registry's)."""


def _onnx_dtype(dtype):
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _emit(b, step, x):
    """The ONNX nodes of one runtime step; a step without an emitter is refused."""
    return emitter_for("onnx", step)(b, step, x)


def _label_values(classes):
    """The class labels as an ONNX label tensor holds them: int64 for integer
    (and boolean) classes, strings for text, float64 for float classes."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "biu":
        return classes.astype(np.int64)
    if classes.dtype.kind in "US":
        return classes.astype(str)
    if classes.dtype.kind == "f":
        return classes.astype(np.float64)
    raise TypeError(f"ONNX cannot hold class labels of dtype {classes.dtype}; use "
                    "integer or string labels.")


def _emit_head(b, logits, classes, *, label=None, probabilities=None):
    """Softmax probabilities and the arg-max label (the first of ties, as
    numpy's argmax): ``(label, probabilities)`` names."""
    proba = b.node("Softmax", [logits], "probabilities", axis=1, output=probabilities)
    index = b.node("ArgMax", [logits], "class_index", axis=1, keepdims=0)
    labels = b.constant(_label_values(classes), "classes")
    return b.node("Gather", [labels, index], "label", axis=0, output=label), proba


# ------------------------------------------------------------------ export
def _metadata(served, dtype):
    import json

    from . import __version__

    return {
        "skquant.format": _FORMAT,
        "skquant.version": __version__,
        "skquant.dtype": dtype,
        "skquant.n_features_in": str(served.n_features_in_),
        "skquant.steps": ",".join(served.steps),
        "skquant.cleans": "1" if served.steps[0] == "clean" else "0",
        "skquant.categorical": ",".join(map(str, sorted(served._categorical))),
        # the input columns the Cleaner dropped (run_onnx does not read them)
        "skquant.unread": ",".join(map(str, sorted(served._unread))),
        "skquant.classes": json.dumps(_label_values(served.classes_).tolist()),
    }


def _set_metadata(model, metadata):
    from . import __version__

    model.producer_name, model.producer_version = "skquant", __version__
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def _graph_model(served, dtype):
    """The ModelProto of a float32 QuantizedPipeline, raw rows to label and
    probabilities; for int8, with the weights that no MatMul quantizer
    reaches already stored as int8 (see :class:`_GraphBuilder`)."""
    onnx = _require("onnx")
    from onnx import TensorProto, helper

    b = _GraphBuilder(int8=dtype == "int8")
    b.unique(_INPUT)
    b.unique(_TEXT_INPUT)
    x = _INPUT
    for step in served._run:
        x = _emit(b, step, x)
    b.unique(_LABEL), b.unique(_PROBABILITIES)
    _emit_head(b, x, served.classes_, label=_LABEL, probabilities=_PROBABILITIES)
    labels = _label_values(served.classes_)
    inputs = [helper.make_tensor_value_info(_INPUT, TensorProto.FLOAT,
                                            ["n_rows", served.n_features_in_])]
    if served._categorical:
        inputs.append(helper.make_tensor_value_info(
            _TEXT_INPUT, TensorProto.STRING, ["n_rows", len(served._categorical)]))
    graph = helper.make_graph(
        b.nodes, "skquant_pipeline", inputs,
        [helper.make_tensor_value_info(_LABEL, _onnx_dtype(labels.dtype), ["n_rows"]),
         helper.make_tensor_value_info(_PROBABILITIES, TensorProto.FLOAT,
                                       ["n_rows", len(labels)])],
        initializer=b.initializers)
    opsets = [helper.make_opsetid("", OPSET)]
    if any(node.domain == "ai.onnx.ml" for node in b.nodes):
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8  # what onnxruntime releases since 1.10 read (opset 17)
    model.doc_string = ("A skquant pipeline (cleaning, projection, classifier) exported "
                        "by skquant.export_onnx.")
    _set_metadata(model, _metadata(served, dtype))
    onnx.checker.check_model(model, full_check=True)
    return model


def _weight_matmuls(model):
    """The MatMul nodes whose weights are float32 initializers: what
    onnxruntime's dynamic quantization makes int8."""
    floats = {tensor.name for tensor in model.graph.initializer
              if tensor.data_type == _onnx_dtype(np.float32)}
    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and node.input[1] in floats]


def _dynamic_int8(model, keep_float=()):
    """``model`` with its MatMuls' weights in int8 (onnxruntime's dynamic
    quantization: one scale per output column, the activations quantized
    per call), those named in ``keep_float`` excepted."""
    import logging
    import tempfile

    onnx = _require("onnx")
    _require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    metadata = {entry.key: entry.value for entry in model.metadata_props}
    metadata["skquant.float32_matmuls"] = ",".join(keep_float)
    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "f32.onnx"), os.path.join(folder, "int8.onnx")
        onnx.save(model, source)
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process
        try:
            quantize_dynamic(source, target, op_types_to_quantize=["MatMul"],
                             weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=list(keep_float),
                             extra_options={"MatMulConstBOnly": True})
        finally:
            logging.getLogger().setLevel(quiet)
        quantized = onnx.load(target)
    _set_metadata(quantized, metadata)  # the quantizer names itself the producer
    onnx.checker.check_model(quantized, full_check=True)
    return quantized


def _agreement(model, X, predicted):
    """Share of the rows of ``X`` on which ``model`` predicts ``predicted``."""
    label, _ = _session_outputs(model, X)
    return float(np.mean(np.asarray(label, dtype=object) == np.asarray(predicted,
                                                                      dtype=object)))


def _calibrated_int8(model, X, predicted, target=0.99):
    """The int8 model, and its agreement with the pipeline's ``predicted``
    labels on ``X``: while that is below ``target``, the MatMul whose int8
    weights cost the most agreement keeps float32 weights (a projection
    whose outputs cancel large weights, as locality preserving projections
    can, loses most to rounding)."""
    keep_float, candidates = [], _weight_matmuls(model)
    quantized = _dynamic_int8(model)
    agreement = _agreement(quantized, X, predicted)
    while agreement < target and len(keep_float) < len(candidates):
        trials = []
        for name in candidates:
            if name not in keep_float:
                trial = _dynamic_int8(model, keep_float + [name])
                trials.append((_agreement(trial, X, predicted), name, trial))
        agreement, name, quantized = max(trials, key=lambda trial: trial[0])
        keep_float.append(name)
    return quantized, agreement


@validate_params(
    {"pipeline": [HasMethods(["predict"])], "path": [str, os.PathLike],
     "dtype": [StrOptions(set(_DTYPES))], "X_calibration": ["array-like", None],
     "force": ["boolean"]},
    prefer_skip_nested_validation=True)
def export_onnx(pipeline, path, dtype="float32", X_calibration=None, *, force=True):
    """Write a fitted pipeline as one ONNX model.

    Cleaning, projection (any family and method) and classifier become one
    graph from raw float32 rows (NaN and infinity allowed where the
    pipeline cleans) to two outputs, as skl2onnx's classifiers give them:
    ``label``, the predicted class (int64 for integer classes, strings for
    string classes), and ``probabilities``, one column per class in the
    order of the pipeline's ``classes_``. Any ONNX runtime serves it; use
    :func:`run_onnx` to run it with onnxruntime.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted pipeline that :func:`quantize` can export (a Cleaner, a
        projection, a KerasMLPClassifier, possibly in an OutlierFilter).
    path : str or path-like
        The ``.onnx`` file to write.
    dtype : {"float32", "int8"}, default="float32"
        ``"float32"``: the float32 numpy runtime's arithmetic (the graph
        family's neighbour search in float64, as there). ``"int8"``: int8
        weights. The MatMuls' weights go through onnxruntime's dynamic
        quantization (``quantize_dynamic``: one scale per output column,
        the activations quantized per call); the tables that no MatMul
        reads (the graph family's landmarks and coordinates) are stored as
        int8 codes with one scale per landmark or output, as in the numpy
        runtime's int8 artifact. The tree ensemble of ``"random-trees"``
        stays float32.
    X_calibration : array-like of shape (n_samples, n_features) or None, default=None
        Raw rows to check the written model on, with onnxruntime: for
        ``"int8"``, while it predicts a class other than the pipeline's on
        more than 1% of them, the MatMul whose int8 weights cost the most
        agreement keeps float32 weights (pass rows whenever you export
        int8: some projections, locality preserving ones in particular,
        lose much to int8 weights). A warning says so if the written model
        still disagrees with the pipeline on more than 1% of the rows; the
        agreement is recorded in the model's metadata
        (``skquant.calibration_agreement``).
    force : bool, default=True
        Whether an existing file at ``path`` may be replaced (as
        ``joblib.dump`` does). ``False`` refuses one, before any conversion
        work. Either way the file is written atomically: a temporary file
        beside it replaces it only once complete.

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    ValueError
        For a ``dtype`` other than ``"float32"`` or ``"int8"``.
    skquant._atomic.OutputError
        If ``path`` is a directory or lies in a directory that does not
        exist, or, with ``force=False``, if it exists. Checked before the
        conversion starts.
    TypeError
        For a pipeline step that skquant cannot export (use
        :func:`register_skl2onnx` and ``skl2onnx.to_onnx`` for pipelines
        mixing other scikit-learn steps).
    ImportError
        Without onnx (and, for int8 or ``X_calibration``, onnxruntime):
        ``pip install "skquant[onnx]"``.

    See Also
    --------
    run_onnx : class probabilities of the written model.
    register_skl2onnx : convert skquant steps inside any pipeline with skl2onnx.
    export_tflite : the same graph for TensorFlow Lite.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skquant
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = skquant.make_quant_pipeline("column", 8, random_state=0,
    ...                                    classify__epochs=1).fit(X[:300], y[:300])
    >>> path = skquant.export_onnx(pipe, os.path.join(tempfile.mkdtemp(), "m.onnx"))
    >>> proba = skquant.run_onnx(path, X[:5])
    >>> bool((proba.argmax(axis=1) == pipe.predict_proba(X[:5]).argmax(axis=1)).all())
    True
    """
    path = check_output_path(path, force=force, what="the ONNX file")
    _require("onnx")
    if dtype == "int8" or X_calibration is not None:
        _require("onnxruntime")
    from ._export import quantize

    try:
        served = quantize(pipeline, dtype="float32")  # validates the pipeline first
    except TypeError as exc:
        raise TypeError(
            f"export_onnx: {exc} To convert a pipeline that mixes other scikit-learn "
            "steps with skquant's, call skquant.register_skl2onnx() and then "
            "skl2onnx.to_onnx(pipeline, X[:1].astype(numpy.float32)).") from None
    model = _graph_model(served, dtype)
    agreement = None
    if X_calibration is not None:
        predicted = pipeline.predict(X_calibration)  # by the columns' names, if any
        X_calibration = np.asarray(X_calibration)
    if dtype == "int8" and X_calibration is not None:
        model, agreement = _calibrated_int8(model, X_calibration, predicted)
    elif dtype == "int8":
        model = _dynamic_int8(model)
    if X_calibration is not None:
        if agreement is None:
            agreement = _agreement(model, X_calibration, predicted)
        entry = model.metadata_props.add()
        entry.key, entry.value = "skquant.calibration_agreement", repr(agreement)
    write_bytes(path, model.SerializeToString(), force=force)
    if agreement is not None and agreement < 0.99:
        import warnings

        warnings.warn(
            f"The {dtype} ONNX model predicts the pipeline's class on only "
            f"{agreement:.1%} of the calibration rows. Use dtype='float32' where "
            "that matters.", UserWarning, stacklevel=2)
    return path


# -------------------------------------------------------------------- run
def _session(model):
    ort = _require("onnxruntime")
    return ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])


def _session_outputs(model, X):
    """``[label, probabilities]`` of a skquant ModelProto on the rows ``X``."""
    return _session(model).run([_LABEL, _PROBABILITIES], _feed(model, X))


def load_onnx_model(path):
    """Read and check an ONNX file written by :func:`export_onnx`.

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file.

    Returns
    -------
    model : onnx.ModelProto
        The model, checked by ``onnx.checker`` and known to be skquant's.

    Raises
    ------
    ValueError
        If the file is not a readable ONNX model (corrupt, truncated), fails
        ``onnx.checker``, or was not written by :func:`export_onnx` (a
        foreign model: its inputs and outputs are not known).
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> import os, tempfile
    >>> from skquant._onnx import load_onnx_model
    >>> path = os.path.join(tempfile.mkdtemp(), "broken.onnx")
    >>> _ = open(path, "wb").write(b"not a model")
    >>> load_onnx_model(path)
    Traceback (most recent call last):
    ...
    ValueError: ... is not a readable ONNX model: it could not be decoded ...
    """
    onnx = _require("onnx")
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and kin
        raise ValueError(
            f"{os.fspath(path)} is not a readable ONNX model: it could not be decoded "
            f"({type(exc).__name__}), so it is corrupt, truncated or another kind of "
            "file. Export the model again with skquant.export_onnx.") from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{os.fspath(path)} is not a valid ONNX model: onnx.checker refuses it "
            f"({first}). Export the model again with skquant.export_onnx.") from None
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    if model.producer_name != "skquant" or "skquant.format" not in metadata:
        producer = model.producer_name or "an unnamed producer"
        raise ValueError(
            f"{os.fspath(path)} is an ONNX model made by {producer}, not by "
            "skquant.export_onnx, so its inputs and outputs are not known: run it "
            "with onnxruntime.InferenceSession directly.")
    if metadata["skquant.format"] != _FORMAT:
        raise ValueError(
            f"{os.fspath(path)} is a skquant ONNX model of format "
            f"{metadata['skquant.format']!r}; this skquant reads format {_FORMAT!r}. "
            "Export the model again with this version.")
    inputs = [value.name for value in model.graph.input]
    outputs = [value.name for value in model.graph.output]
    categorical = metadata.get("skquant.categorical", "")
    if (inputs != ([_INPUT, _TEXT_INPUT] if categorical else [_INPUT])
            or outputs != [_LABEL, _PROBABILITIES]
            or not all(is_count(part) for part in categorical.split(",") if categorical)
            or not all(is_count(part) for part in metadata.get("skquant.unread", "").split(",")
                       if metadata.get("skquant.unread"))
            or not is_count(metadata.get("skquant.n_features_in", ""))
            or metadata.get("skquant.cleans") not in ("0", "1")):
        raise ValueError(
            f"{os.fspath(path)} claims to come from skquant.export_onnx, but its "
            f"inputs {inputs}, outputs {outputs} or metadata are not those that "
            "export_onnx writes: it was changed since. Export the model again.")
    return model


def _feed(model, X):
    """The model's inputs for the rows ``X``: ``{"X": float32 rows}``, and
    for a model that encodes categorical columns, ``"X_text"``: their values
    as text, the numeric columns in ``"X"`` (and at each categorical
    position NaN where the value is missing, 0 where it is not)."""
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    categorical = [int(part) for part in metadata.get("skquant.categorical", "").split(",")
                   if part]
    unread = {int(part) for part in metadata.get("skquant.unread", "").split(",") if part}
    from .runtime._pipeline import _has_text, float32_rows, split_table, text_input

    if not categorical and not (unread and _has_text(X, only_in=unread)):
        return {_INPUT: _checked_rows(model, X)}
    numbers, texts = split_table(X, categorical, int(metadata["skquant.n_features_in"]),
                                 what="ONNX model", unread=unread)
    if not categorical:
        return {_INPUT: _checked_rows(model, numbers)}
    text = text_input(numbers, texts, categorical)  # (marks the missing ones in numbers)
    return {_INPUT: float32_rows(numbers, "ONNX model"), _TEXT_INPUT: text}


def _checked_rows(model, X):
    """``X`` as the float32 rows the model takes, or a clear ValueError."""
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    n_features = int(metadata["skquant.n_features_in"])
    try:
        values = np.asarray(X)
        if values.dtype.kind == "O":
            values = values.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be a 2-D array of numbers ({exc}).") from None
    if values.dtype.kind not in "biuf":
        raise ValueError(f"X must be numeric, but it holds {values.dtype} values; encode "
                         "text columns as numbers first.")
    if values.ndim != 2:
        raise ValueError(
            f"Expected a 2-D array of shape (n_samples, {n_features}), got a "
            f"{values.ndim}-D one; reshape a single row with X.reshape(1, -1).")
    if values.shape[1] != n_features:
        raise ValueError(f"X has {values.shape[1]} features, but the ONNX model is "
                         f"expecting {n_features} features as input.")
    from .runtime._pipeline import float32_rows

    rows = float32_rows(values, "ONNX model", metadata["skquant.cleans"] == "1")
    if metadata["skquant.cleans"] != "1" and rows.size and not np.isfinite(rows).all():
        row, column = np.argwhere(~np.isfinite(rows))[0]
        raise ValueError(
            f"X contains NaN or infinity (row {row}, column {column}), and this model "
            "has no Cleaner to impute them: impute them first, or put skquant.Cleaner "
            "first in the pipeline and export it again.")
    return rows


def run_onnx(path, X):
    """Class probabilities of an ONNX model from :func:`export_onnx`.

    The file is read and checked first (``onnx.checker``, and the metadata
    :func:`export_onnx` writes), and so is ``X``, so that a wrong file or
    input gives a clear ``ValueError`` instead of an error from inside
    onnxruntime. The model then runs on onnxruntime's CPU provider.

    Parameters
    ----------
    path : str or path-like
        The model file.
    X : array-like of shape (n_samples, n_features)
        Raw rows, their columns in the order the pipeline was fitted on
        (NaN and infinity allowed where the pipeline cleans).

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        float32, columns in the order of the pipeline's ``classes_``.

    Raises
    ------
    ValueError
        For a file that is not a valid ONNX model or was not written by
        :func:`export_onnx`, and for rows of the wrong shape or type (or
        NaN where the pipeline does not clean).

    See Also
    --------
    export_onnx : write the model.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> import skquant
    >>> X, y = load_digits(return_X_y=True)
    >>> pipe = skquant.make_quant_pipeline("tree", 8, random_state=0,
    ...                                    classify__epochs=1).fit(X[:300], y[:300])
    >>> path = skquant.export_onnx(pipe, os.path.join(tempfile.mkdtemp(), "m.onnx"))
    >>> skquant.run_onnx(path, X[:4]).shape
    (4, 10)
    >>> skquant.run_onnx(path, X[:4, :10])
    Traceback (most recent call last):
    ...
    ValueError: X has 10 features, but the ONNX model is expecting 64 features as input.
    """
    model = load_onnx_model(path)
    return _session(model).run([_PROBABILITIES], _feed(model, X))[0]
