"""The demo's report: the warnings it collected, its two tables, the
per-family summary and the plot (``skquant demo``, :mod:`skquant._demo`)."""

import io
import sys


def _print_warnings(caught):
    """Each distinct warning of the search once, after the progress bar."""
    seen = {}
    for warning in caught:
        key = (warning.category.__name__, str(warning.message))
        seen[key] = seen.get(key, 0) + 1
    for (category, message), count in seen.items():
        times = f" ({count} times)" if count > 1 else ""
        print(f"warning{times}: {category}: {message}", file=sys.stderr)


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
