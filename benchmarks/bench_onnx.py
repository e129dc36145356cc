"""skquant's numpy runtime against onnxruntime, on the same pipelines.

sklearn's digits (stratified 25% test split); the default pipeline
(Cleaner -> projection -> default KerasMLPClassifier) for column:pca,
tree:tsvq and graph:spectral at k = 32. Each fitted pipeline is served four
ways: skquant's float32 and int8 artifacts (``quantize(...).save``, read back
with ``load_quantized``) and skquant's float32 and int8 ONNX models
(``export_onnx``; the int8 one calibrated on the training rows) run by
onnxruntime. Everything runs on one thread: onnxruntime with
``intra_op_num_threads = inter_op_num_threads = 1``, numpy's BLAS limited to
one thread with threadpoolctl.

Printed per pipeline and format: file size, test accuracy, the best of N
latencies of ``predict_proba`` on 1 row (N = 1000, back to back) and on
10,000 rows (the test set tiled; N = 10), float32 rows for both, the four taking turns over 5 rounds, and the ratio skquant runtime / onnxruntime at the same
dtype (above 1: onnxruntime is faster). Also written to
``benchmarks/results/onnx.csv``.

Run: python benchmarks/bench_onnx.py
"""

import argparse
import csv
import gc
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

import skquant
from skquant._onnx import load_onnx_model

from _common import best_time, machine

ROOT = Path(__file__).resolve().parent.parent
KINDS = [("column", "pca"), ("tree", "tsvq"), ("graph", "spectral")]
K = 32


def best_single_row(predict, row, calls):
    """Best of ``calls`` back-to-back calls on one row. Unlike
    ``_common.best_time`` it collects garbage once, not before each call: with
    TensorFlow loaded a collection flushes the CPU caches, which would time
    cold calls of some microseconds as hundreds."""
    gc.collect()
    gc.disable()
    try:
        best = float("inf")
        for _ in range(calls):
            start = time.perf_counter()
            predict(row)
            best = min(best, time.perf_counter() - start)
    finally:
        gc.enable()
    return best


def onnx_runner(path):
    """``predict_proba`` of an ONNX file on onnxruntime, one thread."""
    load_onnx_model(path)  # checked as run_onnx checks it
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, sess_options=options,
                                           providers=["CPUExecutionProvider"])
    # the rows are float32 already (both sides get the same): no copy here
    return lambda X: session.run(["probabilities"], {"X": np.asarray(X, np.float32)})[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=str(ROOT / "benchmarks" / "results" / "onnx.csv"))
    parser.add_argument("--single-calls", type=int, default=1000)
    parser.add_argument("--batch-calls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    batch = np.tile(X_test, (-(-10_000 // len(X_test)), 1))[:10_000]
    print(f"machine: {machine()}")
    print(f"onnxruntime {onnxruntime.__version__}; one thread everywhere")
    print(f"digits: {len(X_train)} train / {len(X_test)} test rows; k = {K}\n")
    header = (f"{'pipeline':<16}{'format':<18}{'bytes':>9}{'acc':>8}"
              f"{'1 row us':>10}{'10k rows ms':>13}{'1-row x':>9}{'10k x':>8}"
              f"{'vs f32 1':>9}{'vs f32 10k':>8}")
    print(header)
    print("-" * len(header))
    folder = tempfile.mkdtemp()
    rows = []
    for family, method in KINDS:
        name = f"{family}:{method}"
        pipe = skquant.make_quant_pipeline(family, K, method=method, random_state=0)
        pipe.fit(X_train, y_train)
        predictors, sizes = {}, {}
        for dtype in ("float32", "int8"):
            path = os.path.join(folder, f"{family}-{dtype}.skq")
            skquant.quantize(pipe, dtype=dtype).save(path)
            predictors[f"skquant {dtype}"] = skquant.load_quantized(path).predict_proba
            sizes[f"skquant {dtype}"] = os.path.getsize(path)
            path = skquant.export_onnx(
                pipe, os.path.join(folder, f"{family}-{dtype}.onnx"), dtype=dtype,
                X_calibration=X_train if dtype == "int8" else None)
            predictors[f"onnxruntime {dtype}"] = onnx_runner(path)
            sizes[f"onnxruntime {dtype}"] = os.path.getsize(path)
        reference = pipe.score(X_test, y_test)
        timings = {label: [np.inf, np.inf, None] for label in predictors}
        row, rows32 = X_test[:1].astype(np.float32), batch.astype(np.float32)
        with threadpool_limits(limits=1):
            for predict in predictors.values():
                for _ in range(20):  # warm up: first-call allocations
                    predict(row)
            # the four take turns, round after round, so that a change of
            # the (shared) machine's load falls on all of them alike
            for _ in range(args.rounds):
                for label, predict in predictors.items():
                    timing = timings[label]
                    timing[0] = min(timing[0], best_single_row(
                        predict, row, args.single_calls // args.rounds))
                    timing[1] = min(timing[1], best_time(
                        lambda: predict(rows32), max(1, args.batch_calls // args.rounds))[0])
            for label, predict in predictors.items():
                timings[label][2] = float(np.mean(
                    pipe.classes_[predict(X_test.astype(np.float32)).argmax(axis=1)] == y_test))
        for label in predictors:
            one, many, accuracy = timings[label]
            dtype = label.split()[1]
            ort_one, ort_many, _ = timings[f"onnxruntime {dtype}"]
            ratio_one, ratio_many = one / ort_one, many / ort_many
            # the anchor: onnxruntime on the float32 export
            f32_one, f32_many, _ = timings["onnxruntime float32"]
            rows.append({
                "pipeline": name, "k": K, "format": label, "bytes": sizes[label],
                "accuracy": round(accuracy, 4), "pipeline_accuracy": round(reference, 4),
                "one_row_us": round(one * 1e6, 1), "batch_10k_ms": round(many * 1e3, 2),
                "skquant_over_onnxruntime_1row": round(ratio_one, 3),
                "skquant_over_onnxruntime_10k": round(ratio_many, 3),
                "over_onnxruntime_float32_1row": round(one / f32_one, 3),
                "over_onnxruntime_float32_10k": round(many / f32_many, 3),
            })
            ratios = ("" if label.startswith("onnxruntime")
                      else f"{ratio_one:>9.2f}{ratio_many:>8.2f}"
                           f"{one / f32_one:>9.2f}{many / f32_many:>8.2f}")
            print(f"{name:<16}{label:<18}{sizes[label]:>9,}{accuracy:>8.4f}"
                  f"{one * 1e6:>10,.0f}{many * 1e3:>13,.1f}{ratios}")
        print(f"{'':<16}(the Keras pipeline itself: accuracy {reference:.4f})")
    print("\n1-row x, 10k x: skquant runtime time / onnxruntime time at the same dtype; "
          "vs f32: against onnxruntime on the float32 export, the target's anchor "
          "(above 1: onnxruntime is faster)")
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
