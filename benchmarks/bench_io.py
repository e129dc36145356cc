"""Reading a numeric CSV: skquant's pandas/pyarrow reader against the
hand-written one it replaced.

A ``--rows`` x 100 CSV of float64 values (six significant digits) plus an
integer label column, with a header, written to a temporary folder. Both
readers read it in the same run, each once (the second read of a file is
served from the page cache for both: the first read warms it); the values
are compared, and the wall time and the peak resident memory increase
(sampled) are printed with the ratio. The anchor is the reader skquant
shipped before issue 15 (``csv.reader`` into Python lists, then one float()
per field), kept here verbatim in its logic.

Then ``skquant predict`` streams: a quantized default pipeline (k = 16,
fitted on 5,000 rows of the file) predicts the first quarter of the rows and
then all of them, each in a fresh process under ``/usr/bin/time``; its peak
resident memory should not grow with the file (it reads blocks of about 1
MiB of text and writes the predictions as it goes).

Run: python benchmarks/bench_io.py [--rows 1000000]
"""

import argparse
import csv
import os
import tempfile
import time

import numpy as np

from bench_scaling import Peak
from _common import machine

from skquant._io import read_table

N_COLUMNS = 100


def previous_reader(path):
    """The hand-written reader (header row assumed, label last)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if row]
    header, rows = rows[0], rows[1:]
    columns = list(zip(*rows))
    X = np.empty((len(rows), len(header) - 1))
    for j in range(len(header) - 1):
        X[:, j] = [np.nan if v.strip().lower() in {"", "na", "nan", "null", "none", "?"}
                   else float(v) for v in columns[j]]
    y = np.array([int(v) for v in columns[-1]])
    return X, y


def write_csv(path, n_rows):
    import pandas as pd

    rng = np.random.RandomState(0)
    with open(path, "w") as handle:
        for start in range(0, n_rows, 100_000):
            n = min(100_000, n_rows - start)
            frame = pd.DataFrame(rng.normal(size=(n, N_COLUMNS)),
                                 columns=[f"f{j}" for j in range(N_COLUMNS)])
            frame["label"] = rng.randint(0, 10, size=n)
            frame.to_csv(handle, index=False, header=start == 0, float_format="%.6g")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        path = os.path.join(folder, "table.csv")
        start = time.perf_counter()
        write_csv(path, args.rows)
        print(f"{args.rows:,} rows x {N_COLUMNS} float columns + a label: "
              f"{os.path.getsize(path) / 2**20:,.0f} MiB, written in "
              f"{time.perf_counter() - start:.0f} s")
        with open(path, "rb") as handle:  # warm the page cache for both
            while handle.read(1 << 24):
                pass
        with Peak() as new:
            X, y, _ = read_table(path)
        with Peak() as old:
            X_old, y_old = previous_reader(path)
        same = np.array_equal(X, X_old) and np.array_equal(y, y_old)
        print(f"skquant read_table (pandas, pyarrow engine): {new.seconds:8.2f} s  "
              f"peak +{new.mib:,.0f} MiB")
        print(f"previous hand-written reader:                {old.seconds:8.2f} s  "
              f"peak +{old.mib:,.0f} MiB")
        print(f"speed-up {old.seconds / new.seconds:.1f}x  [target >= 10]; same values: "
              f"{same}", flush=True)
        del X_old, y_old
        streamed_predict(folder, path, X[:5000], y[:5000], args.rows)


def streamed_predict(folder, path, X, y, n_rows):
    import subprocess
    import sys

    import skquant

    pipe = skquant.make_quant_pipeline("column", 16, random_state=0, classify__epochs=5)
    model = os.path.join(folder, "model.skq")
    skquant.quantize(pipe.fit(X, y), dtype="int8").save(model)
    quarter = os.path.join(folder, "quarter.csv")
    with open(path) as source, open(quarter, "w") as target:
        for number, line in enumerate(source):
            if number > n_rows // 4:
                break
            target.write(line)
    for label, data in (("1/4 of the rows", quarter), ("all the rows", path)):
        out = os.path.join(folder, "predictions.csv")
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "skquant.cli", "predict",
             model, data, "-o", out, "--force"], capture_output=True, text=True, check=True)
        seconds, kib = done.stderr.strip().splitlines()[-1].split()
        print(f"skquant predict, {label:<16} {os.path.getsize(data) / 2**20:7,.0f} MiB of CSV: "
              f"{float(seconds):6.1f} s, peak resident {int(kib) / 1024:6,.0f} MiB")


if __name__ == "__main__":
    main()
