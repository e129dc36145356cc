"""The quantized artifact against the Keras pipeline it came from.

sklearn's digits (stratified 25% test split); the default pipeline
(Cleaner -> projection -> default KerasMLPClassifier) for each family's
default method at k = 16 and 32, all in one run:

- size: the joblib pipeline, the float32 artifact and the int8 artifact,
  and the int8 / float32 ratio (target <= 0.3 for k >= 16);
- accuracy of the pipeline and of the float32 / int8 artifacts;
- latency: single-row ``predict`` (median of 200 calls) and a 10,000-row
  batch (best of 5) for the pipeline and the int8 artifact (targets: 500x
  and 10x faster);
- cold start: a fresh Python process that loads the model and predicts one
  row, for the joblib pipeline and the int8 artifact (target: under 0.5 s
  and 10x faster);
- as a further anchor, the same pipeline exported with ``export_tflite``
  (int8, dynamic range) and run by the LiteRT interpreter: file size,
  single-row and 10,000-row latency (interpreter created once).

Run: python benchmarks/bench_quantize.py
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import skquant

from _common import best_time, machine

KINDS = [("column", "pca"), ("tree", "tsvq"), ("graph", "spectral")]


def single_row_seconds(model, row, calls=200):
    model.predict(row)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_start(path, row_path, repeat=3):
    load = ("skquant.load_quantized(path)" if path.endswith(".skq")
            else "__import__('joblib').load(path)")
    code = (f"import numpy as np, skquant; path = {path!r}; "
            f"model = {load}; model.predict(np.load({row_path!r}))")
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    batch = np.tile(X_test, (23, 1))[:10_000]
    print(f"machine: {machine()}")
    print(f"digits: {len(X_train)} train / {len(X_test)} test rows\n")
    header = (f"{'pipeline':<20}{'joblib B':>10}{'f32 B':>9}{'int8 B':>9}{'ratio':>7}"
              f"{'acc':>8}{'f32 acc':>9}{'int8 acc':>9}{'1-row x':>9}{'10k x':>8}")
    print(header)
    folder = tempfile.mkdtemp()
    row_path = os.path.join(folder, "row.npy")
    np.save(row_path, X_test[:1])
    for k in (16, 32):
        for family, method in KINDS:
            pipe = skquant.make_quant_pipeline(family, k, method=method, random_state=0)
            pipe.fit(X_train, y_train)
            paths = {"joblib": os.path.join(folder, f"{family}{k}.joblib")}
            joblib.dump(pipe, paths["joblib"])
            served = {}
            for dtype in ("float32", "int8"):
                served[dtype] = skquant.quantize(pipe, dtype=dtype)
                paths[dtype] = served[dtype].save(os.path.join(folder, f"{family}{k}{dtype}.skq"))
            sizes = {name: os.path.getsize(path) for name, path in paths.items()}
            one_pipe = single_row_seconds(pipe, X_test[:1])
            one_int8 = single_row_seconds(served["int8"], X_test[:1])
            many_pipe, _ = best_time(lambda: pipe.predict(batch), 5)
            many_int8, _ = best_time(lambda: served["int8"].predict(batch), 5)
            print(f"{family + ':' + method + ' ' + str(k):<20}{sizes['joblib']:>10,}"
                  f"{sizes['float32']:>9,}{sizes['int8']:>9,}"
                  f"{sizes['int8'] / sizes['float32']:>7.2f}"
                  f"{pipe.score(X_test, y_test):>8.4f}"
                  f"{served['float32'].score(X_test, y_test):>9.4f}"
                  f"{served['int8'].score(X_test, y_test):>9.4f}"
                  f"{one_pipe / one_int8:>9.0f}{many_pipe / many_int8:>8.1f}")
            if (family, k) == ("column", 32):
                timing = (one_pipe, one_int8, many_pipe, many_int8, paths)
    one_pipe, one_int8, many_pipe, many_int8, paths = timing
    print(f"\ncolumn:pca 32: single row {one_pipe * 1e6:,.0f} us (pipeline) against "
          f"{one_int8 * 1e6:,.0f} us (int8 artifact); 10,000 rows {many_pipe * 1e3:,.1f} ms "
          f"against {many_int8 * 1e3:,.1f} ms")
    cold_pipe = cold_start(paths["joblib"], row_path)
    cold_int8 = cold_start(paths["int8"], row_path)
    print(f"cold start (fresh process, load, predict one row): joblib pipeline "
          f"{cold_pipe:.2f} s, int8 artifact {cold_int8:.2f} s "
          f"({cold_pipe / cold_int8:.1f}x)  [< 0.5 s, >= 10x]")
    litert(paths, X_test, batch, one_pipe, many_pipe, one_int8, many_int8)


def litert(paths, X_test, batch, one_pipe, many_pipe, one_int8, many_int8):
    """The LiteRT anchor for the column:pca 32 pipeline."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        print("LiteRT anchor skipped: pip install ai-edge-litert")
        return
    pipe = joblib.load(paths["joblib"])
    path = skquant.export_tflite(pipe, paths["joblib"] + ".tflite", dtype="int8")
    interpreters = {}
    for rows in (1, len(batch)):
        interpreter = Interpreter(model_path=path)
        entry = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(entry["index"], [rows, X_test.shape[1]])
        interpreter.allocate_tensors()
        interpreters[rows] = (interpreter, entry["index"],
                              interpreter.get_output_details()[0]["index"])

    def run(rows, X):
        interpreter, inp, out = interpreters[rows]
        interpreter.set_tensor(inp, X.astype(np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(out).argmax(axis=1)

    one = statistics.median(
        best_time(lambda: run(1, X_test[:1]), 1)[0] for _ in range(200))
    many, _ = best_time(lambda: run(len(batch), batch), 5)
    print(f"LiteRT (int8 .tflite, {os.path.getsize(path):,} bytes): single row "
          f"{one * 1e6:,.0f} us ({one_pipe / one:.0f}x the pipeline, "
          f"{one_int8 / one:.2f}x the int8 artifact), 10,000 rows {many * 1e3:,.1f} ms "
          f"({many_pipe / many:.1f}x the pipeline, {many_int8 / many:.2f}x the artifact)")


if __name__ == "__main__":
    main()
