"""``skquant demo``: the search (the progress bar's scorers, also across
worker processes), each candidate refitted and served, the choice of the
model kept, and the files it writes. ``skquant.cli`` parses its arguments;
the tables, summary lines and plot are in :mod:`skquant._demo_report`."""

import contextlib
import io
import os
import shlex
import sys
import time
import warnings

from ._atomic import OutputError, atomic_write, check_output_path
from ._demo_report import (
    _family_summary,
    _format_table,
    _mark_pareto_front,
    _plot,
    _print_warnings,
)

# the demo's default search: each family's default method, and the union
# of principal components and the spectral embedding (the best on digits)
_DEMO_KINDS = "column:pca,tree:tsvq,graph:spectral,union:pca+spectral"
# what `skquant demo` writes into its --output-dir (the first: the chosen
# pipeline, under the name it has always had)
_DEMO_MODEL = "best_pipeline.joblib"
_DEMO_TABLE = "results.csv"
_DEMO_PLOT = "accuracy_vs_dims.png"


def _same_threads_in_workers():
    """joblib's worker processes with as many BLAS threads as this one: a
    worker's default of one thread rounds the graph family's neighbour
    search and eigensolver differently, and ``--jobs`` would change the
    scores in their last digits."""
    import joblib
    from threadpoolctl import threadpool_info

    threads = max([info.get("num_threads", 1) for info in threadpool_info()
                   if info.get("user_api") == "blas"] or [1])
    return joblib.parallel_config(backend="loky", inner_max_num_threads=threads)


class _FileProgressScorer:
    """Accuracy that also appends one byte to ``path`` per fit: the
    search's worker processes tick the parent's bar through the file."""

    def __init__(self, path):
        self.path = path

    def __call__(self, estimator, X, y):
        from sklearn.metrics import accuracy_score

        score = accuracy_score(y, estimator.predict(X))
        with open(self.path, "ab") as handle:  # one write: appends do not interleave
            handle.write(b".")
        return score


@contextlib.contextmanager
def _progress(bar, jobs):
    """The scorer that ticks ``bar``: directly in one process; with worker
    processes, through a file in a temporary directory that a thread of
    this process polls (the bar lives here). The workers' warnings are
    silenced, so that their stderr does not break the bar's line: the same
    warnings come again from the refits, here, where they are collected."""
    if jobs == 1:
        yield _ProgressScorer(bar)
        return
    import tempfile
    import threading

    with tempfile.TemporaryDirectory(prefix="skquant-demo-") as folder:
        path = os.path.join(folder, "fits")
        open(path, "wb").close()
        done = threading.Event()

        def poll():
            seen = 0
            while True:
                finished = done.wait(0.2)
                count = os.path.getsize(path)
                if count > seen:
                    bar.update(count - seen)
                    seen = count
                if finished:
                    return

        watcher = threading.Thread(target=poll, daemon=True)
        before = os.environ.get("PYTHONWARNINGS")
        os.environ["PYTHONWARNINGS"] = "ignore"  # read by each worker as it starts
        watcher.start()
        try:
            yield _FileProgressScorer(path)
        finally:
            done.set()
            watcher.join()
            if before is None:
                os.environ.pop("PYTHONWARNINGS", None)
            else:
                os.environ["PYTHONWARNINGS"] = before


class _ProgressScorer:
    """Accuracy that also ticks a progress bar once per cross-validation fit."""

    def __init__(self, bar):
        self.bar = bar

    def __call__(self, estimator, X, y):
        from sklearn.metrics import accuracy_score

        score = accuracy_score(y, estimator.predict(X))
        self.bar.update(1)
        return score


def _projection_label(projection):
    """``"column:pca"`` for ``ColumnProjection(method="pca")``."""
    family = type(projection).__name__.replace("Projection", "").lower()
    return f"{family}:{projection.method}"


def _model_bytes(model):
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.tell()


def _search_and_refit(search, pipeline, X_train, y_train, X_test, y_test, bar):
    """The search, then every candidate refitted on the training split and
    scored on the test split, pipeline and artifacts: ``(rows, models)``, a
    row per candidate in the search's order, and ``{index: fitted
    pipeline}`` for the candidates :func:`_choose` may keep (the best CV
    accuracy, and those within noise of it with an int8 artifact)."""
    import numpy as np
    from sklearn.base import clone

    from ._export import quantize

    with _same_threads_in_workers():
        search.fit(X_train, y_train)
    results = search.cv_results_
    # the best CV accuracy (the first of a tie, as _best_by_cv) and the
    # floor of its noise are known before the refits: the other candidates'
    # pipelines are let go as the refits go on
    best = int(np.argmax(results["mean_test_score"]))
    floor = results["mean_test_score"][best] - results["std_test_score"][best]
    rows, models = [], {}
    for i, candidate in enumerate(results["params"]):
        # cloned after the parameters are set: the grid's projection is
        # one estimator object, which every candidate of its family would
        # otherwise share (and refit, changing the model kept before)
        model = clone(clone(pipeline).set_params(**candidate))
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        bar.update(1)
        row = {
            "family": _projection_label(candidate["project"]),
            "dims": candidate["project__n_components"],
            "cv_accuracy": float(results["mean_test_score"][i]),
            "cv_std": float(results["std_test_score"][i]),
            "test_accuracy": float(np.mean(model.predict(X_test) == y_test)),
            "fit_seconds": seconds, "model_bytes": _model_bytes(model),
        }
        # what each candidate costs to serve: its float32 and int8 artifacts
        # (None where quantize refuses it: a projection whose float32
        # rounding would serve noise, say, as PCA at the full width of
        # exactly dependent columns)
        for dtype in ("float32", "int8"):
            try:
                served = quantize(model, dtype=dtype)
            except ValueError as exc:
                warnings.warn(f"{row['family']} at {row['dims']} dims has no {dtype} "
                              f"artifact: {exc}", UserWarning, stacklevel=1)
                row[f"{dtype}_bytes"] = row[f"{dtype}_accuracy"] = None
                continue
            row[f"{dtype}_bytes"] = served.artifact_size()
            row[f"{dtype}_accuracy"] = served.score(X_test, y_test)
        rows.append(row)
        if i == best or (row["int8_bytes"] is not None and row["cv_accuracy"] >= floor):
            models[i] = model
    return rows, models


# how the demo chooses the model it keeps (--choose)
CHOICES = ("within-noise", "best")


def _best_by_cv(rows):
    """The candidate of best CV accuracy (the first of a tie, as GridSearchCV)."""
    return max(range(len(rows)), key=lambda i: (rows[i]["cv_accuracy"], -i))


def _smallest_within_noise(rows, best):
    """Among the candidates whose int8 artifact is smaller than the best's
    (any int8 artifact, where the best has none: it cannot serve as int8)
    and whose CV accuracy is within one standard deviation over the folds of
    the best's (scikit-learn's example of a ``refit`` callable uses the same
    rule), the smallest (the more accurate of two of one size); None where
    there is none."""
    top = rows[best]
    floor = top["cv_accuracy"] - top["cv_std"]
    close = [i for i, row in enumerate(rows) if i != best and row["cv_accuracy"] >= floor
             and row["int8_bytes"] is not None
             and (top["int8_bytes"] is None or row["int8_bytes"] < top["int8_bytes"])]
    if not close:
        return None
    return min(close, key=lambda i: (rows[i]["int8_bytes"], -rows[i]["cv_accuracy"], i))


def _choose(rows, best, rule):
    """The candidate the demo keeps. ``"best"``: the best CV accuracy.
    ``"within-noise"``: the smallest int8 artifact among the candidates
    within noise of the best (:func:`_smallest_within_noise`), else the
    best: a CV difference smaller than the folds' spread says little about
    the test accuracy, and a smaller model is cheaper to store and serve."""
    small = _smallest_within_noise(rows, best) if rule == "within-noise" else None
    return best if small is None else small


def _within_noise_line(rows, best, chosen, rule):
    """The line that says which smaller candidate is within noise of the
    best, and whether it is the one kept; None where there is none."""
    if chosen == best:
        chosen = _smallest_within_noise(rows, best)
        if chosen is None:
            return None
    small, top = rows[chosen], rows[best]
    kept = ("it is the one kept (--choose best keeps the best)" if rule == "within-noise"
            else "--choose within-noise keeps it")
    return (f"within noise: {small['family']} at {small['dims']} dims reaches CV accuracy "
            f"{small['cv_accuracy']:.4f}, within one standard deviation over the folds of "
            f"the best's ({top['family']} at {top['dims']} dims) {top['cv_accuracy']:.4f} ± "
            f"{top['cv_std']:.4f}, at {small['int8_bytes']:,} int8 bytes against "
            + ("none (the best has no int8 artifact)" if top["int8_bytes"] is None
               else f"{top['int8_bytes']:,}") + f": {kept}")


def _load_demo_data(args):
    from .cli import _read

    if args.data is None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data, digits.target, "digits (scikit-learn, bundled)"
    X, y, _ = _read(args.data, args, require_label=True, allow_text=True)
    return X, y, args.data


def _take_rows(X, rows):
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def run_demo(args):
    """Run ``skquant demo`` with parsed ``args``; 0 on success."""
    import joblib
    import numpy as np
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
    from tqdm import tqdm

    from .cleaning import Cleaner
    from .cli import CommandError
    from .pipeline import (_default_dims, _dimension_limit, make_quant_pipeline,
                           projection_grid)

    if not 0 < args.test_size < 1:
        raise CommandError(f"--test-size must be between 0 and 1, got {args.test_size}.")
    if args.cv < 2:
        raise CommandError(f"--cv must be at least 2, got {args.cv}.")
    # before the data are read and the search runs: where the results go
    outputs = _demo_outputs(args.output_dir, force=args.force, inputs=(args.data,))
    X, y, source = _load_demo_data(args)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise CommandError(f"the labels hold a single class ({classes.tolist()}); need two or more.")
    if counts.min() < 2:
        raise CommandError(
            f"class {classes.tolist()[np.argmin(counts)]!r} has {counts.min()} row; each "
            "class needs rows on both sides of the train/test split."
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, stratify=y, random_state=args.random_state
    )
    train_classes, train_counts = np.unique(y_train, return_counts=True)
    if train_counts.min() < args.cv:
        raise CommandError(
            f"class {train_classes.tolist()[np.argmin(train_counts)]!r} has "
            f"{train_counts.min()} training row(s) after the split; a {args.cv}-fold "
            "search needs at least one per fold. Lower --cv or --test-size, or "
            "add rows."
        )
    folds = StratifiedKFold(args.cv, shuffle=True, random_state=args.random_state)
    # The Cleaner may keep fewer columns on a CV fold than on the whole
    # training split: size the grid by the smallest, so no candidate fails.
    n_clean = min(
        len(Cleaner(random_state=args.random_state).fit(
            _take_rows(X_train, rows), y_train[rows]).get_feature_names_out())
        for rows in [np.arange(len(X_train))] + [train for train, _ in folds.split(X_train, y_train)]
    )
    # ... and by the rows of the smallest training fold (the tree and graph
    # families are limited by rows)
    n_fit_rows = min(len(train) for train, _ in folds.split(X_train, y_train))
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    dims = args.dims if args.dims is not None else _default_dims(n_clean)
    grid = projection_grid(kinds, dims, n_features=n_clean, n_samples=n_fit_rows,
                           random_state=args.random_state)
    searched = {_projection_label(g["project"][0]): g["project__n_components"] for g in grid}
    params = {} if args.epochs is None else {"classify__epochs": args.epochs}
    pipeline = make_quant_pipeline(random_state=args.random_state, **params)
    n_candidates = sum(len(g["project__n_components"]) for g in grid)
    print(
        f"skquant demo: {source}: {X.shape[0]} rows x {X.shape[1]} columns "
        f"({n_clean} after cleaning), {len(classes)} classes; "
        f"{len(X_train)} train / {len(X_test)} test rows; "
        f"{n_candidates} candidates x {args.cv} folds, then each refitted: "
        f"{n_candidates * (args.cv + 1)} fits",
        flush=True,
    )
    if args.dims is None:
        why = ("the default" if n_clean >= 32 else
               f"a ladder around the {n_clean} cleaned columns")
        print(f"dims: {','.join(map(str, dims))} ({why}; --dims to choose others)",
              flush=True)
    for entry in projection_grid(kinds, dims):
        projection = entry["project"][0]
        label = _projection_label(projection)
        skipped = sorted(set(entry["project__n_components"]) - set(searched.get(label, [])))
        if skipped:
            limit, reason = _dimension_limit(projection, n_fit_rows, n_clean)
            print(f"note: {label} skips dims {skipped}: it gives at most {limit} "
                  f"dimensions on the {n_fit_rows}-row CV folds with {n_clean} cleaned "
                  f"columns ({reason})", flush=True)

    bar = tqdm(total=n_candidates * (args.cv + 1), desc="searching", unit="fit",
               disable=args.no_progress, file=sys.stderr)
    # warnings (a projection's, the classifier's) are kept until the bar is
    # done, then each is printed once: printed as they came, they would
    # break the bar's line
    with warnings.catch_warnings(record=True) as caught, _progress(bar, args.jobs) as scorer:
        warnings.simplefilter("always")
        # as Python's default filters do: deprecations are for the
        # developers of the libraries that raise them, not for the user
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                         ResourceWarning):
            warnings.simplefilter("ignore", category)
        search = GridSearchCV(
            pipeline, grid, cv=folds, scoring=scorer, refit=False, error_score="raise",
            n_jobs=args.jobs,
        )
        rows, models = _search_and_refit(
            search, pipeline, X_train, y_train, X_test, y_test, bar)
    bar.close()
    _print_warnings(caught)
    _mark_pareto_front(rows)
    best = _best_by_cv(rows)
    kept = _choose(rows, best, args.choose)
    for i, row in enumerate(rows):
        row["chosen"] = i == kept

    print(_format_table(rows, kept, args.choose))
    print(_family_summary(rows, best))
    within = _within_noise_line(rows, best, kept, args.choose)
    if within is not None:
        print(within)
    os.makedirs(args.output_dir, exist_ok=True)
    model_path = outputs[_DEMO_MODEL]
    # every output is made in memory first, then the three are written:
    # a failure in any of them (the plot's, say) leaves the directory as it was
    table_path, plot_path = outputs[_DEMO_TABLE], outputs[_DEMO_PLOT]
    model_bytes = io.BytesIO()
    joblib.dump(models[kept], model_bytes)
    table_text = "".join(",".join("" if v is None else str(v) for v in values) + "\n"
                         for values in [list(rows[0])] + [list(r.values()) for r in rows])
    plot_bytes = _plot(rows)
    for path, mode, content in ((model_path, "wb", model_bytes.getvalue()),
                                (table_path, "w", table_text), (plot_path, "wb", plot_bytes)):
        with atomic_write(path, mode, force=args.force) as handle:
            handle.write(content)
    chosen = rows[kept]
    model = shlex.quote(model_path)
    print(
        f"chosen: {chosen['family']} with {chosen['dims']} dims, CV accuracy "
        f"{chosen['cv_accuracy']:.4f}, test accuracy {chosen['test_accuracy']:.4f}\n"
        f"saved {model_path}, {table_path} and {plot_path}\n"
        "next steps (the joblib file is a pickle: --trust-pickle loads it, for a "
        "file you made):\n"
        f"  skquant predict --trust-pickle {model} new_rows.csv -o predictions.csv\n"
        f"  skquant quantize --trust-pickle {model} -o model.skq\n"
        "  skquant predict model.skq new_rows.csv -o predictions.csv"
        "   (an artifact holds no code)"
    )
    return 0


def _demo_outputs(directory, *, force, inputs):
    """Check ``--output-dir`` before the search: a new or empty directory
    (any directory with ``force``), whose three files are none of the
    inputs. Returns ``{file name: path}``."""
    if not directory:
        raise OutputError("--output-dir is empty; give the path of a new or empty directory.")
    names = (_DEMO_MODEL, _DEMO_TABLE, _DEMO_PLOT)
    paths = {name: os.path.join(directory, name) for name in names}
    if os.path.isdir(directory):
        entries = sorted(os.listdir(directory))
        if entries and not force:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise OutputError(
                f"--output-dir {directory} is not empty (it holds {shown}); the demo "
                "writes into a new or empty directory, so that it never replaces an "
                "earlier run's results. Choose another --output-dir, or pass --force "
                f"to replace its {', '.join(names)} (nothing else in it is touched)."
            )
        for path in paths.values():
            check_output_path(path, inputs=inputs, force=True, what="the demo's output")
        return paths
    if os.path.lexists(directory):
        raise OutputError(
            f"--output-dir {directory} exists and is not a directory; give the path "
            "of a new or empty directory.")
    # a directory to be created: its nearest existing parent must be a
    # writable directory
    parent = os.path.dirname(os.path.abspath(directory))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise OutputError(f"--output-dir {directory}: {parent} is a file, not a directory.")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"--output-dir {directory}: cannot create it, {parent} is not "
                          "writable.")
    return paths
