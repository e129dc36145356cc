"""Scaling of the three projection families and the whole Pipeline in rows.

For each family -- ColumnProjection(pca), TreeProjection(tsvq),
GraphProjection(spectral) -- and the Pipeline (Cleaner -> column -> Keras
MLP, fitted with ``fit_stream``), at 10^4 ... 10^7 rows of synthetic data
(100 float32 columns: 20 Gaussian clusters in a 10-D latent space embedded
linearly, plus noise; 10 classes):

- fit time (one run, ``time.perf_counter``): ``fit(X)`` when the data is in
  memory; ``partial_fit`` over ``--chunk``-row chunks of a ``.npy`` memmap
  from ``--stream-from`` rows on (then one row is transformed, so that the
  lazy finalization counts in the fit);
- transform time: every row, in ``--chunk``-row chunks (``predict`` for the
  Pipeline);
- peak memory of each: the highest ``RssAnon`` (anonymous resident memory,
  so the memmap's file pages do not count) sampled every 20 ms, minus
  ``RssAnon`` just before (data and imports already in memory);
  a fit and transform of 2,000 rows first keeps one-time start-up costs
  (imports, TensorFlow) out of both;
- the slope of log10(time) against log10(rows), and the verdict on the
  design's claims: the column family suits small data, the tree family
  suits large data but trains longer, the graph family suits spatial data.

The Pipeline trains its classifier for ONE epoch of batch 1024 (the default
30 epochs of batch 32 would take hours at 10^7 rows). Every (family, rows)
runs in a fresh subprocess, so that no run inherits another's peak memory.

Run: python benchmarks/bench_scaling.py [--sizes 10000,100000,1000000,10000000]
     [--components 32] [--chunk 100000] [--stream-from 10000000]
     [--workdir DIR] [--plot docs/_static/scaling.png]
     [--csv benchmarks/results/scaling.csv]

``--fit-stream ROWS`` measures ``fit_stream`` alone instead (issue 12's
target): the Pipeline (Cleaner -> column(32) -> Keras MLP, batch 1024) over
ROWS rows of the same data read from a ``.npy`` memmap in ``--chunk``-row
chunks, for ``--epochs`` epochs (10), once per ``--store-dtypes`` (float32
and int8, each in a fresh process, after the same 2,000-row warm-up). It
reports the reads of the raw source (rows read / ROWS, counted by a wrapper
around the memmap, beside ``fit_stream``'s own count), the time of each
pass and of the epochs, the total against one epoch of the old path (166 s
at 10^7 rows, this script's "pipeline" row of 2026-11-30: clean, project
and one epoch that re-read and re-projected the source), the peak
``RssAnon`` above the start next to the store budget, the store's bytes
against the raw rows', and the test accuracy (100,000 rows that were not
trained on). Targets at 10^7 rows: at most 3 reads, at most 2x 166 s.

Run: python benchmarks/bench_scaling.py --fit-stream 10000000 [--epochs 10]
     [--store-dtypes float32,int8] [--store-budget 1073741824] [--chunk 100000]
     [--blas-threads 0] [--workdir DIR] [--stream-csv benchmarks/results/fit_stream.csv]

(``--blas-threads 1`` limits numpy's BLAS to one thread during the fit: on
a 2-core machine that another process keeps busy, two-thread OpenBLAS calls
wait for the descheduled thread, and the projection pass's small products
(8,192 x 100 blocks) then ran up to 60x slower, 1.9 s instead of 0.05 s a
chunk, measured 2026-12-01.)
"""

import argparse
import contextlib
import csv
import ctypes
import io
import re
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _common import machine

FAMILIES = ("column", "tree", "graph", "pipeline")
N_FEATURES, N_LATENT, N_CLUSTERS, N_CLASSES = 100, 10, 20, 10
BLOCK, SEED = 100_000, 0
ROOT = Path(__file__).resolve().parent.parent
# fit_stream before issue 12, at 10^7 rows: Cleaner pass, projection pass and
# ONE epoch that re-read the memmap and re-ran both steps (this script's
# "pipeline" row, 2026-11-30, docs/benchmarks.rst)
ONE_EPOCH_BEFORE_S = 166.0


# ------------------------------------------------------------------- data
def _block(index):
    """Rows [index * BLOCK, (index + 1) * BLOCK): seeded per block, so that
    any size is the prefix of one stream and never generated in one go."""
    model = np.random.default_rng(SEED)  # the clusters and the embedding
    centres = 4 * model.standard_normal((N_CLUSTERS, N_LATENT), dtype=np.float32)
    embed = model.standard_normal((N_LATENT, N_FEATURES), dtype=np.float32) / np.sqrt(N_LATENT)
    rng = np.random.default_rng([SEED, index])
    cluster = rng.integers(0, N_CLUSTERS, BLOCK)
    latent = centres[cluster] + rng.standard_normal((BLOCK, N_LATENT), dtype=np.float32)
    X = latent @ embed + 0.5 * rng.standard_normal((BLOCK, N_FEATURES), dtype=np.float32)
    return X.astype(np.float32), (cluster % N_CLASSES).astype(np.int32)


def _fill(X, y):
    for start in range(0, X.shape[0], BLOCK):
        stop = min(start + BLOCK, X.shape[0])
        X_block, y_block = _block(start // BLOCK)
        X[start:stop], y[start:stop] = X_block[: stop - start], y_block[: stop - start]


def _paths(workdir, n_rows):
    return Path(workdir) / f"scaling_{n_rows}_X.npy", Path(workdir) / f"scaling_{n_rows}_y.npy"


def write_memmap(workdir, n_rows):
    """Write (or reuse) the data on disk; written under a temporary name and
    renamed when complete, so an interrupted run never leaves a file that
    looks reusable."""
    x_path, y_path = _paths(workdir, n_rows)
    try:
        X, y = np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
        if X.shape == (n_rows, N_FEATURES) and X.dtype == np.float32 and y.shape == (n_rows,):
            return
    except (OSError, ValueError):
        pass
    x_path.parent.mkdir(parents=True, exist_ok=True)
    part = x_path.with_suffix(".part")
    X = np.lib.format.open_memmap(part, mode="w+", dtype=np.float32, shape=(n_rows, N_FEATURES))
    y = np.empty(n_rows, dtype=np.int32)
    _fill(X, y)
    X.flush()
    del X
    np.save(y_path, y)
    os.replace(part, x_path)


def load(n_rows, streamed, workdir):
    if streamed:
        x_path, y_path = _paths(workdir, n_rows)
        return np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
    X, y = np.empty((n_rows, N_FEATURES), np.float32), np.empty(n_rows, np.int32)
    _fill(X, y)
    return X, y


# ------------------------------------------------------------ measurement
def _rss_anon():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class Peak:
    """Time and peak RssAnon (MiB above the start) of the ``with`` body."""

    def __enter__(self):
        gc.collect()
        try:  # hand freed heap back to the OS, so the baseline is what is live
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self.base = self.peak = _rss_anon()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.start = time.perf_counter()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_anon())

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self._stop.set()
        self._thread.join()
        self.mib = (max(self.peak, _rss_anon()) - self.base) / 2**20


def measure(family, n_rows, args):
    """One (family, rows) measurement, in this (fresh) process."""
    from skquant import (ColumnProjection, GraphProjection, TreeProjection,
                         fit_stream, make_quant_pipeline)

    k, step = args.components, args.chunk
    build = {
        "column": lambda: ColumnProjection(k, method="pca", random_state=0),
        "tree": lambda: TreeProjection(k, method="tsvq", random_state=0),
        "graph": lambda: GraphProjection(k, method="spectral", random_state=0),
        "pipeline": lambda: make_quant_pipeline("column", k, random_state=0,
                                                classify__epochs=1, classify__batch_size=1024),
    }[family]

    def fit(model, X, y, streamed):
        if family == "pipeline":
            return fit_stream(model, X, y, chunk_size=step, random_state=0)
        if not streamed:
            return model.fit(X)
        for start in range(0, X.shape[0], step):
            model.partial_fit(X[start : start + step])
        model.transform(X[:1])  # derives the fitted state (lazy), in the fit time

    def apply(model, X):
        for start in range(0, X.shape[0], step):
            (model.predict if family == "pipeline" else model.transform)(X[start : start + step])

    streamed = n_rows >= args.stream_from
    X, y = load(n_rows, streamed, args.workdir)
    # Warm up on 2,000 rows, so that one-time costs (lazy imports, BLAS
    # threads, TensorFlow's start-up) are neither timed nor in the baseline.
    warm = build()
    fit(warm, X[:2000], y[:2000], streamed)
    apply(warm, X[:2000])
    del warm
    model = build()
    with Peak() as fitting:
        fit(model, X, y, streamed)
    with Peak() as applying:
        apply(model, X)
    return {"fit_s": fitting.seconds, "transform_s": applying.seconds,
            "fit_mib": fitting.mib, "transform_mib": applying.mib,
            "mode": "stream" if streamed else "memory"}


class CountingRows:
    """A 2-D array source that counts the rows read from it (``X[rows]``)."""

    def __init__(self, X):
        self.X, self.shape, self.ndim, self.rows_read = X, X.shape, X.ndim, 0

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        part = self.X[key]
        self.rows_read += part.shape[0] if part.ndim == 2 else 1
        return part


def measure_stream(store_dtype, n_rows, args):
    """fit_stream at ``n_rows`` rows, in this (fresh) process."""
    from skquant import fit_stream, make_quant_pipeline

    def pipeline():
        return make_quant_pipeline("column", args.components, random_state=0,
                                   classify__epochs=args.epochs, classify__batch_size=1024)

    X, y = load(n_rows, True, args.workdir)
    X_test, y_test = _block(n_rows // BLOCK + 1)  # rows the fit never sees
    options = dict(chunk_size=args.chunk, random_state=0, store_dtype=store_dtype,
                   store_budget=args.store_budget, return_info=True, verbose=True)
    with contextlib.redirect_stderr(io.StringIO()):  # warm-up: TensorFlow's start-up
        fit_stream(pipeline(), X[:2000], y[:2000], **{**options, "chunk_size": 1000})
    source, log = CountingRows(X), io.StringIO()
    pipe = pipeline()
    blas = contextlib.nullcontext()
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        blas = threadpool_limits(args.blas_threads, user_api="blas")
    with blas, Peak() as fitting, contextlib.redirect_stderr(log):
        _, info = fit_stream(pipe, source, y, **options)
    lines = log.getvalue().splitlines()
    seconds = [float(m.group(1)) for m in (re.search(r" in ([\d.]+) s$", line) for line in lines)
               if m]
    passes = [line for line in lines if " over the source " in line]
    return {
        **info, "rows": n_rows, "fit_s": fitting.seconds, "fit_mib": fitting.mib,
        "source_reads": source.rows_read / n_rows,
        "pass_s": seconds[:len(passes)], "epochs_s": sum(seconds[len(passes):]),
        "accuracy": float(pipe.score(X_test, y_test)), "log": lines,
    }


def run_stream(args):
    """The fit_stream measurement for each store dtype, each in a fresh process."""
    n_rows = args.fit_stream
    print(f"machine: {machine()}")
    print(f"fit_stream: {n_rows} rows x {N_FEATURES} float32 columns from a memmap "
          f"({args.workdir}), chunks of {args.chunk} rows, column({args.components}) -> "
          f"MLP of batch 1024, {args.epochs} epochs, store budget {args.store_budget} bytes, "
          f"BLAS threads {args.blas_threads or 'default'}\n")
    write_memmap(args.workdir, n_rows)  # once, outside every timed run
    records = []
    for store_dtype in args.store_dtypes.split(","):
        command = [sys.executable, __file__, "--one-stream", store_dtype, str(n_rows),
                   "--components", str(args.components), "--chunk", str(args.chunk),
                   "--epochs", str(args.epochs), "--store-budget", str(args.store_budget),
                   "--blas-threads", str(args.blas_threads), "--workdir", str(args.workdir)]
        done = subprocess.run(command, capture_output=True, text=True,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if lines:
            record = json.loads(lines[-1])
        else:
            tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            record = {"error": f"subprocess failed: {tail}"}
        records.append({"store_dtype": store_dtype, **record})
        print(f"  done {store_dtype}", file=sys.stderr, flush=True)

    raw = n_rows * N_FEATURES * 4 + n_rows * 4  # float32 rows, int32 labels
    print(f"{'store':<8} {'where':<7} {'reads':>5} {'passes s':>20} {'epochs s':>9} "
          f"{'total s':>8} {'/166 s':>6} {'peak MiB':>9} {'store MiB':>10} {'raw MiB':>8} "
          f"{'store/raw':>9} {'accuracy':>8}")
    for r in records:
        if "error" in r:
            print(f"{r['store_dtype']:<8} error: {r['error']}")
            continue
        passes = "+".join(f"{t:.0f}" for t in r["pass_s"])
        print(f"{r['store_dtype']:<8} {r['store']:<7} {r['source_reads']:>5.2f} {passes:>20} "
              f"{r['epochs_s']:>9.1f} {r['fit_s']:>8.1f} {r['fit_s'] / ONE_EPOCH_BEFORE_S:>6.2f} "
              f"{r['fit_mib']:>9.0f} {r['store_bytes'] / 2**20:>10.0f} {raw / 2**20:>8.0f} "
              f"{r['store_bytes'] / raw:>9.1%} {r['accuracy']:>8.3f}")
        assert r["source_passes"] == round(r["source_reads"]), r  # both counts agree
    print(f"\npasses s: Cleaner, projection, encode into the store; reads: rows read from "
          f"the memmap / {n_rows}; /166 s: total over one epoch before issue 12 at 10^7 rows "
          f"(target at most 2); peak: RssAnon above the start (store budget "
          f"{args.store_budget / 2**20:.0f} MiB; a store on disk is file cache, not RssAnon)")
    print("\nverbose output of fit_stream:")
    for r in records:
        for line in r.get("log", []):
            print(f"  [{r['store_dtype']}] {line}")

    Path(args.stream_csv).parent.mkdir(parents=True, exist_ok=True)
    fields = ["store_dtype", "rows", "epochs", "store", "source_passes", "source_reads",
              "fit_s", "epochs_s", "pass_s", "fit_mib", "store_bytes", "raw_bytes",
              "accuracy", "error"]
    with open(args.stream_csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows({key: r.get(key, "") for key in fields} for r in records)
    print(f"\nwrote {args.stream_csv}")


def run_one(family, n_rows, args):
    """Measure in a fresh subprocess; an error becomes the record's text."""
    command = [sys.executable, __file__, "--one", family, str(n_rows),
               "--components", str(args.components), "--chunk", str(args.chunk),
               "--stream-from", str(args.stream_from), "--workdir", str(args.workdir)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return {"error": f"subprocess failed: {tail}"}


# ---------------------------------------------------------------- report
def slope(records, family, key):
    points = [(r["rows"], r[key]) for r in records
              if r["family"] == family and r.get(key, 0) > 0]
    if len(points) < 2:
        return float("nan")
    rows, values = np.log10(np.array(points, dtype=float)).T
    return float(np.polyfit(rows, values, 1)[0])


def kind(s):
    return ("n/a" if np.isnan(s) else "flat: independent of rows" if s < 0.3
            else "sublinear" if s < 0.8 else "linear" if s < 1.2 else "superlinear")


def verdicts(records, sizes):
    """One line per claim of the design: HOLDS, DOES NOT HOLD or n/a."""
    fit = {(r["family"], r["rows"]): r["fit_s"] for r in records if "fit_s" in r}
    mem = {(r["family"], r["rows"]): r["fit_mib"] for r in records if "fit_s" in r}
    small, large = sizes[0], sizes[-1]
    say = lambda ok: "n/a" if ok is None else "HOLDS" if ok else "DOES NOT HOLD"  # noqa: E731
    timed = sorted((fit[f, small], f) for f in ("column", "tree", "graph") if (f, small) in fit)
    ok = None if ("column", small) not in fit else timed[0][1] == "column"
    lines = [f"column suits small data: {say(ok)} -- fastest projection fit at {small} rows: "
             + ", ".join(f"{f} {t:.2f} s" for t, f in timed)]
    # suits large data: no worse than linear in rows, and the fit does not
    # need memory on the order of the data (which it could not hold)
    data_mib, tree_slope = large * N_FEATURES * 4 / 2**20, slope(records, "tree", "fit_s")
    ok = None if ("tree", large) not in fit else bool(
        tree_slope < 1.2 and mem["tree", large] < 0.5 * data_mib)
    lines.append(f"tree suits large data: {say(ok)} -- fit slope {tree_slope:.2f}, fit peak at "
                 f"{large} rows {mem.get(('tree', large), np.nan):.0f} MiB for {data_mib:.0f} "
                 f"MiB of data (column: {fit.get(('column', large), np.nan):.2f} s, "
                 f"{mem.get(('column', large), np.nan):.0f} MiB)")
    both = [n for n in sizes if ("tree", n) in fit and ("column", n) in fit]
    longer = sum(fit["tree", n] > fit["column", n] for n in both)
    ok = None if not both else True if longer == len(both) else False
    lines.append(f"tree trains longer than column: {say(ok)} -- tree fit slower at "
                 f"{longer} of {len(both)} sizes")
    graph = slope(records, "graph", "fit_s")
    lines.append("graph suits spatially structured data: NOT TESTED (a question of quality, "
                 f"not of scaling; see bench_graph.py) -- fit slope {graph:.2f} ({kind(graph)})")
    return lines


def plot(records, path, stream_from):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for family in FAMILIES:
        done = sorted((r["rows"], r) for r in records if r["family"] == family and "fit_s" in r)
        if not done:
            continue
        rows = [n for n, _ in done]
        for ax, key in ((axes[0], "fit_s"), (axes[1], "transform_s")):
            ax.loglog(rows, [r[key] for _, r in done], "o-",
                      label=f"{family} (slope {slope(records, family, key):.2f})")
        axes[2].semilogx(rows, [r["fit_mib"] for _, r in done], "o-", label=family)
    for ax, title in zip(axes, ("fit time (s)", "transform time (s)", "fit peak RssAnon (MiB)")):
        if stream_from <= max(r["rows"] for r in records):  # where the fit changes path
            ax.axvline(stream_from, color="grey", linestyle=":", label="memmap from here")
        ax.set(xlabel="rows", title=title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000,10000000")
    parser.add_argument("--components", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--stream-from", type=int, default=10_000_000)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "skquant_scaling"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "_static" / "scaling.png"))
    parser.add_argument("--csv", default=str(ROOT / "benchmarks" / "results" / "scaling.csv"))
    parser.add_argument("--fit-stream", type=int, metavar="ROWS",
                        help="measure fit_stream alone at ROWS rows (e.g. 10000000)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--store-dtypes", default="float32,int8")
    parser.add_argument("--store-budget", type=int, default=2**30)
    parser.add_argument("--blas-threads", type=int, default=0,
                        help="limit numpy's BLAS threads while fit_stream runs (0: leave)")
    parser.add_argument("--stream-csv",
                        default=str(ROOT / "benchmarks" / "results" / "fit_stream.csv"))
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--one-stream", nargs=2, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.one_stream:
        try:
            record = measure_stream(args.one_stream[0], int(args.one_stream[1]), args)
        except Exception as error:
            record = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(record))
        return
    if args.fit_stream:
        run_stream(args)
        return
    if args.one:
        family, n_rows = args.one[0], int(args.one[1])
        try:
            record = measure(family, n_rows, args)
        except Exception as error:  # e.g. an infeasible n_components
            record = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(record))
        return

    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"machine: {machine()}")
    print(f"data: {N_FEATURES} float32 columns, {args.components} components, chunks of "
          f"{args.chunk} rows, memmap from {args.stream_from} rows ({args.workdir})\n")
    for n_rows in sizes:
        if n_rows >= args.stream_from:
            write_memmap(args.workdir, n_rows)  # once, outside every timed run
    records = []
    for n_rows in sizes:
        for family in FAMILIES:
            record = {"family": family, "rows": n_rows, **run_one(family, n_rows, args)}
            records.append(record)
            print(f"  done {family} {n_rows}", file=sys.stderr, flush=True)

    print(f"{'family':<9} {'rows':>9} {'mode':<6} {'fit s':>9} {'transform s':>11} "
          f"{'fit MiB':>8} {'trans MiB':>9} {'fit rows/s':>11} {'trans rows/s':>12}")
    for r in records:
        if "error" in r:
            print(f"{r['family']:<9} {r['rows']:>9} error: {r['error']}")
            continue
        print(f"{r['family']:<9} {r['rows']:>9} {r['mode']:<6} {r['fit_s']:>9.3f} "
              f"{r['transform_s']:>11.3f} {r['fit_mib']:>8.1f} {r['transform_mib']:>9.1f} "
              f"{r['rows'] / r['fit_s']:>11,.0f} {r['rows'] / r['transform_s']:>12,.0f}")
    print("\nslope of log10(time) against log10(rows):")
    for family in FAMILIES:
        fs, ts = slope(records, family, "fit_s"), slope(records, family, "transform_s")
        print(f"  {family:<9} fit {fs:5.2f} ({kind(fs)}), transform {ts:5.2f} ({kind(ts)})")
    print("\nfit time ratio to column:")
    times = {(r["family"], r["rows"]): r.get("fit_s", np.nan) for r in records}
    for n_rows in sizes:
        print(f"  {n_rows:>9} rows: tree/column {times[('tree', n_rows)] / times[('column', n_rows)]:6.2f}"
              f"   graph/column {times[('graph', n_rows)] / times[('column', n_rows)]:6.2f}")
    print("\nthe design's claims:")
    for line in verdicts(records, sizes):
        print(f"  {line}")

    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    fields = ["family", "rows", "mode", "fit_s", "transform_s", "fit_mib", "transform_mib", "error"]
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows({key: r.get(key, "") for key in fields} for r in records)
    plot(records, args.plot, args.stream_from)
    print(f"\nwrote {args.csv} and {args.plot}")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.0f} s")
