"""The demo's search and report: the progress bar's scorers (also across
worker processes), each candidate refitted and served, and the tables, the
summary lines and the plot it prints and saves. ``skquant.cli`` runs it."""

import contextlib
import io
import os
import sys
import time
import warnings


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


def _print_warnings(caught):
    """Each distinct warning of the search once, after the progress bar."""
    seen = {}
    for warning in caught:
        key = (warning.category.__name__, str(warning.message))
        seen[key] = seen.get(key, 0) + 1
    for (category, message), count in seen.items():
        times = f" ({count} times)" if count > 1 else ""
        print(f"warning{times}: {category}: {message}", file=sys.stderr)


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


def _mark_pareto_front(rows):
    """Flag the served models (each candidate as float32 and as int8) that no
    other is both smaller and at least as accurate as: the accuracy-versus-
    bytes Pareto front."""
    points = [(r[f"{d}_bytes"], r[f"{d}_accuracy"], i, d)
              for i, r in enumerate(rows) for d in ("float32", "int8")
              if r[f"{d}_bytes"] is not None]
    for r in rows:
        for d in ("float32", "int8"):
            r[f"{d}_pareto"] = False
    for size, accuracy, i, dtype in points:
        dominated = any(
            other_size <= size and other_accuracy >= accuracy
            and (other_size, other_accuracy) != (size, accuracy)
            for other_size, other_accuracy, _, _ in points
        )
        rows[i][f"{dtype}_pareto"] = not dominated


def _family_summary(rows, best):
    """Per family, its candidate of best CV accuracy (the search's own
    choice within the family), and which family won."""
    leaders = {}
    for i, row in enumerate(rows):
        leader = leaders.get(row["family"])
        if leader is None or row["cv_accuracy"] > rows[leader]["cv_accuracy"]:
            leaders[row["family"]] = i
    width = max(len(family) for family in leaders)
    lines = ["per family (its candidate of best CV accuracy):"]
    for family, i in leaders.items():
        row = rows[i]
        lines.append(f"  {family:<{width}}  {row['dims']:>4} dims  CV acc "
                     f"{row['cv_accuracy']:.4f}  test acc {row['test_accuracy']:.4f}"
                     + ("  <- winner" if i == best else ""))
    winner = rows[best]
    others = [rows[i] for family, i in leaders.items() if family != winner["family"]]
    if others:
        runner_up = max(others, key=lambda row: row["cv_accuracy"])
        if runner_up["cv_accuracy"] == winner["cv_accuracy"]:
            how = (f"tied on CV accuracy {winner['cv_accuracy']:.4f} with "
                   f"{runner_up['family']}, the search keeping the first")
        else:
            how = (f"by CV accuracy {winner['cv_accuracy']:.4f} against "
                   f"{runner_up['cv_accuracy']:.4f} for {runner_up['family']}")
        lines.append(
            f"winner: {winner['family']}, {how} (test accuracy "
            f"{winner['test_accuracy']:.4f} against {runner_up['test_accuracy']:.4f})")
    else:
        lines.append(f"winner: {winner['family']}, the only family searched")
    return "\n".join(lines)


def _format_table(rows, chosen, rule="best"):
    """Two tables of at most 80 columns: what the search measured, then what
    each candidate costs to serve (its quantized artifacts)."""
    def kb(size):
        return f"{size / 1000:.1f}"

    width = max(19, 2 + max(len(r["family"]) for r in rows))
    search = (f"  {'family':<{width - 2}}{'dims':>5}{'CV acc':>9}{'test acc':>10}"
              f"{'fit s':>8}{'joblib KB':>11}")
    lines = [search, "-" * len(search)]
    for i, r in enumerate(rows):
        lines.append(
            f"{'>' if i == chosen else ' '} {r['family']:<{width - 2}}{r['dims']:>5}"
            f"{r['cv_accuracy']:>9.4f}{r['test_accuracy']:>10.4f}{r['fit_seconds']:>8.1f}"
            f"{kb(r['model_bytes']):>11}")
    serving = (f"  {'family':<{width - 2}}{'dims':>5}{'f32 KB':>9}{'f32 acc':>9}"
               f"{'int8 KB':>10}{'int8 acc':>10}")
    lines += ["", serving, "-" * len(serving)]
    for i, r in enumerate(rows):
        cells = ""
        for d in ("float32", "int8"):
            size_width = 9 if d == "float32" else 10
            acc_width = 9 if d == "float32" else 10
            if r[f"{d}_bytes"] is None:
                cells += f"{'-':>{size_width}}{'-':>{acc_width - 1}} "
            else:
                mark = "*" if r.get(f"{d}_pareto") else " "
                cells += (f"{kb(r[f'{d}_bytes']):>{size_width}}"
                          f"{r[f'{d}_accuracy']:>{acc_width - 1}.4f}{mark}")
        lines.append(f"{'>' if i == chosen else ' '} {r['family']:<{width - 2}}{r['dims']:>5}"
                     + cells.rstrip())
    if rule == "within-noise":
        lines.append("> the chosen candidate: the smallest int8 artifact within one standard")
        lines.append("  deviation (over the folds) of the best CV accuracy; * on the accuracy-")
        lines.append("  versus-size Pareto front: no other artifact is smaller and as accurate")
    else:
        lines.append("> the chosen candidate (best CV accuracy); * on the accuracy-versus-size")
        lines.append("  Pareto front of the artifacts: no other is smaller and as accurate")
    return "\n".join(lines)


def _plot(rows):
    """The demo's two plots, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, cost) = plt.subplots(1, 2, figsize=(11, 4))
    _plot_pareto(cost, rows)
    for family in dict.fromkeys(r["family"] for r in rows):
        mine = sorted((r for r in rows if r["family"] == family), key=lambda r: r["dims"])
        (line,) = ax.plot([r["dims"] for r in mine], [r["test_accuracy"] for r in mine],
                          marker="o", label=f"{family} (test)")
        ax.plot([r["dims"] for r in mine], [r["cv_accuracy"] for r in mine],
                linestyle="--", alpha=0.6, color=line.get_color(), label=f"{family} (CV)")
    chosen = [r for r in rows if r.get("chosen")]
    if chosen:
        ax.scatter([chosen[0]["dims"]], [chosen[0]["test_accuracy"]], marker="*", s=220,
                   color="black", zorder=5, label=f"chosen: {chosen[0]['family']}")
    dims = sorted({r["dims"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.minorticks_off()
    ax.set_xlabel("n_components")
    ax.set_ylabel("accuracy")
    ax.set_title("skquant demo: accuracy against dimensions")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _plot_pareto(ax, rows):
    """Test accuracy against artifact bytes, the Pareto front joined: one
    colour per family, one marker per dtype, the chosen model starred."""
    front = []
    families = list(dict.fromkeys(r["family"] for r in rows))
    colours = {family: f"C{i % 10}" for i, family in enumerate(families)}
    for dtype, marker in (("float32", "o"), ("int8", "s")):
        for family in families:
            mine = [r for r in rows if r["family"] == family and r[f"{dtype}_bytes"]]
            ax.scatter([r[f"{dtype}_bytes"] for r in mine],
                       [r[f"{dtype}_accuracy"] for r in mine], marker=marker, alpha=0.6,
                       color=colours[family], label=f"{family} {dtype}")
        front += [(r[f"{dtype}_bytes"], r[f"{dtype}_accuracy"]) for r in rows
                  if r[f"{dtype}_pareto"]]
    for r in rows:
        if r.get("chosen") and r["int8_bytes"] is not None:
            ax.scatter([r["int8_bytes"]], [r["int8_accuracy"]], marker="*", s=220,
                       color="black", zorder=5, label="chosen (int8)")
    front.sort()
    ax.plot([p[0] for p in front], [p[1] for p in front], color="black", linewidth=1,
            label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("artifact bytes")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy against size")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
