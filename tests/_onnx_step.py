"""One runtime step's ONNX nodes as a standalone model, run by onnxruntime:
the per-step parity tests (rule 11) compare its output with the step's
numpy call."""

import numpy as np


def run_step(step, x):
    """The output of ``step``'s ONNX emitter on the float32 rows ``x``."""
    import onnx
    import onnxruntime

    from skquant._onnx import ML_OPSET, OPSET, _emit, _GraphBuilder

    b = _GraphBuilder()
    b.unique("X")
    output = _emit(b, step, "X")
    graph = onnx.helper.make_graph(
        b.nodes, "one_step",
        [onnx.helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [None, x.shape[1]])],
        [onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None)],
        initializer=b.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[
        onnx.helper.make_opsetid("", OPSET), onnx.helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    model.ir_version = 8
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"X": np.asarray(x, dtype=np.float32)})
    return got
