"""Capacity at scale: tree + classifier against PCA + classifier, streamed.

Data that no linear map separates: ``--clusters`` (1,000) Gaussian clusters (sd 0.5)
around random centres (sd 2) in a 16-dimensional latent space, each cluster
given one of 10 classes at random, embedded linearly in 50 columns plus
noise (sd 0.1), float32. ``--rows`` training rows (10^6 by default) are
written to a numpy memmap in a temporary folder and streamed with
:func:`skquant.fit_stream` (chunks of 100,000 rows); 20,000 further rows
are the test set.

Each pipeline (Cleaner -> projection -> default KerasMLPClassifier with
``--epochs`` epochs of batch 1024: the same training budget for all) is
fitted in a fresh process, which reports the fit seconds, the peak
anonymous resident memory above its start (``RssAnon``, leaving out the
memmap's file pages) and the test accuracy. The issue's target: tree
(k >= 256) at least 2 points more accurate than PCA (k = 32).

Run: python benchmarks/bench_capacity.py [--rows 1000000] [--epochs 2]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import machine

N_FEATURES, LATENT, N_CLASSES, CHUNK = 50, 16, 10, 100_000
CANDIDATES = [("column", "pca", 32), ("tree", "tsvq", 256), ("union", "pca+spectral", 32)]


def generate(n_rows, n_clusters, seed, X=None):
    """``(X, y)``: ``n_rows`` rows (into ``X`` where given, chunk by chunk)."""
    rng = np.random.RandomState(0)  # the clusters: the same for every part
    centres = rng.normal(size=(n_clusters, LATENT)) * 2.0
    labels = rng.randint(N_CLASSES, size=n_clusters)
    embed = rng.normal(size=(LATENT, N_FEATURES)) / np.sqrt(LATENT)
    rng = np.random.RandomState(seed)
    X = np.empty((n_rows, N_FEATURES), dtype=np.float32) if X is None else X
    y = np.empty(n_rows, dtype=np.int64)
    for start in range(0, n_rows, CHUNK):
        n = min(CHUNK, n_rows - start)
        which = rng.randint(n_clusters, size=n)
        latent = centres[which] + rng.normal(size=(n, LATENT)) * 0.5
        X[start : start + n] = latent @ embed + rng.normal(size=(n, N_FEATURES)) * 0.1
        y[start : start + n] = labels[which]
    return X, y


def measure(args):
    """One candidate, in this (fresh) process: a JSON line on stdout."""
    import contextlib
    import io

    from bench_scaling import Peak

    from skquant import fit_stream, make_quant_pipeline

    X = np.load(os.path.join(args.workdir, "X.npy"), mmap_mode="r")
    y = np.load(os.path.join(args.workdir, "y.npy"))
    X_test, y_test = generate(20_000, args.clusters, seed=1)
    family, method, k = args.measure.split(":")
    pipe = make_quant_pipeline(family, int(k), method=method, random_state=0,
                               classify__epochs=args.epochs, classify__batch_size=1024)
    with contextlib.redirect_stderr(io.StringIO()):  # warm-up: TensorFlow's start-up
        warm = make_quant_pipeline("column", 4, random_state=0, classify__epochs=1)
        fit_stream(warm, X[:2000], y[:2000], chunk_size=1000, random_state=0)
    with Peak() as fitting:
        fit_stream(pipe, X, y, chunk_size=CHUNK, random_state=0)
    print(json.dumps({"candidate": f"{family}:{method}", "k": int(k),
                      "fit_s": round(fitting.seconds, 1), "fit_mib": round(fitting.mib, 1),
                      "accuracy": float(pipe.score(X_test, y_test))}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args)
    print(f"machine: {machine()}")
    print(f"{args.rows:,} streamed rows x {N_FEATURES} float32 columns, {args.clusters} "
          f"clusters in {N_CLASSES} classes; {args.epochs} epochs of batch 1024 each\n")
    with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
        X = np.lib.format.open_memmap(os.path.join(workdir, "X.npy"), mode="w+",
                                      dtype=np.float32, shape=(args.rows, N_FEATURES))
        _, y = generate(args.rows, args.clusters, seed=0, X=X)
        X.flush()
        del X
        np.save(os.path.join(workdir, "y.npy"), y)
        results = []
        for family, method, k in CANDIDATES:
            command = [sys.executable, __file__, "--measure", f"{family}:{method}:{k}",
                       "--workdir", workdir, "--clusters", str(args.clusters),
                       "--epochs", str(args.epochs)]
            done = subprocess.run(command, capture_output=True, text=True,
                                  cwd=Path(__file__).parent, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(result)
            print(f"{result['candidate']:<20} k={result['k']:<4} accuracy "
                  f"{result['accuracy']:.4f}  fit {result['fit_s']:>6.1f} s  peak "
                  f"{result['fit_mib']:>6.0f} MiB", flush=True)
    pca = next(r for r in results if r["candidate"] == "column:pca")
    tree = next(r for r in results if r["candidate"] == "tree:tsvq")
    print(f"\ntree (k={tree['k']}) - PCA (k={pca['k']}): "
          f"{tree['accuracy'] - pca['accuracy']:+.4f}  [target >= +0.02]")


if __name__ == "__main__":
    main()
