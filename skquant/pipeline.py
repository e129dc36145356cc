"""The clean -> project -> classify Pipeline and its search grid."""

import importlib

from sklearn.pipeline import Pipeline

# family name -> (module, class, methods); a new family registers here
_FAMILIES = {
    "column": ("skquant.projection", "ColumnProjection", ("pca", "qr", "random")),
    "tree": ("skquant.projection", "TreeProjection", ("tsvq", "tsvq-local", "random-trees")),
    "graph": ("skquant.projection", "GraphProjection", ("spectral", "lpp")),
    "union": ("skquant.projection", "UnionProjection", ("pca+spectral",)),
}


def _family(kind):
    try:
        module, name, methods = _FAMILIES[kind]
    except KeyError:
        raise ValueError(
            f"Unknown projection family {kind!r}; choose one of {sorted(_FAMILIES)}."
        ) from None
    return getattr(importlib.import_module(module), name), methods


def _parse_kind(kind):
    """``"column"`` -> every method of the family; ``"column:qr"`` -> one."""
    family, _, method = kind.partition(":")
    cls, methods = _family(family)
    if method and method not in methods:
        raise ValueError(
            f"Unknown method {method!r} for the {family!r} family; choose one of "
            f"{list(methods)}."
        )
    return family, cls, ([method] if method else list(methods))


def make_quant_pipeline(
    projection="column",
    n_components=32,
    *,
    method=None,
    outlier_filter=False,
    random_state=None,
    **params,
):
    """Build the skquant Pipeline: Cleaner -> projection -> KerasMLPClassifier.

    Building it does not import TensorFlow; fitting the classifier does.

    Parameters
    ----------
    projection : {"column", "tree", "graph"}, default="column"
        The projection family: :class:`ColumnProjection` (linear, for small
        and medium data), :class:`TreeProjection` (tree-structured, for large
        data) or :class:`GraphProjection` (a kNN graph, for data with spatial
        structure).
    n_components : int, default=32
        Dimensions of the projection.
    method : str or None, default=None
        The family's method (``"column"``: ``"pca"``, ``"qr"`` or
        ``"random"``; ``"tree"``: ``"tsvq"``, ``"tsvq-local"`` or
        ``"random-trees"``; ``"graph"``: ``"spectral"`` or ``"lpp"``);
        ``None`` keeps the family's default.
    outlier_filter : bool, default=False
        Wrap the classifier in :class:`OutlierFilter`, so that outlier rows
        are left out of training.
    random_state : int or None, default=None
        Seeds every random step (projection, classifier, outlier detector).
    **params : dict
        Further parameters in Pipeline syntax, set with ``set_params``; for
        example ``classify__epochs=20`` or ``clean__clip_quantile=None``.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``"clean"``, ``"project"`` and ``"classify"``.

    See Also
    --------
    projection_grid : a GridSearchCV grid over families and dimensions.

    Examples
    --------
    >>> from skquant import make_quant_pipeline
    >>> pipe = make_quant_pipeline("column", 16, method="qr", classify__epochs=5)
    >>> [name for name, _ in pipe.steps]
    ['clean', 'project', 'classify']
    >>> pipe.get_params()["project__method"]
    'qr'
    """
    from .cleaning import Cleaner, OutlierFilter
    from .neural import KerasMLPClassifier

    cls, methods = _family(projection)
    project_params = {"n_components": n_components, "random_state": random_state}
    if method is not None:
        _parse_kind(f"{projection}:{method}")
        project_params["method"] = method
    classifier = KerasMLPClassifier(random_state=random_state)
    if outlier_filter:
        classifier = OutlierFilter(classifier, random_state=random_state)
    pipeline = Pipeline(
        [
            ("clean", Cleaner(random_state=random_state)),
            ("project", cls(**project_params)),
            ("classify", classifier),
        ]
    )
    if params:
        pipeline.set_params(**params)
    return pipeline


# the default dimensions: a ladder of powers of two, at most this many rungs
_DEFAULT_DIMS = (8, 16, 32, 64)


def _default_dims(n_features=None):
    """``(8, 16, 32, 64)``, or for fewer than 32 columns a geometric ladder
    around the data's width: the two largest powers of two below
    ``n_features``, ``n_features`` itself, and the powers of two above it up
    to four times it, a power within a quarter of ``n_features`` left out.
    The column family gets the rungs up to the width; the tree and graph
    families, which are not bounded by the columns, also the ones above it
    (on the penguins' 4 numeric columns, tsvq and spectral gain 4-6 points
    of test accuracy at 8 prototypes over 4)."""
    if n_features is None or n_features >= 32:
        return list(_DEFAULT_DIMS)
    n = int(n_features)
    apart = [2**i for i in range(1, 8) if not n / 1.25 <= 2**i <= 1.25 * n]
    below = [d for d in apart if d < n][-2:]
    above = [d for d in apart if n < d <= 4 * n][:2]
    return below + [n] + above


def projection_grid(
    kinds=("column",), dims=None, *, n_features=None, n_samples=None,
    random_state=None,
):
    """A ``param_grid`` that searches projection family and dimension together.

    Parameters
    ----------
    kinds : sequence of str, default=("column",)
        Families to search. A family name (``"column"``, ``"tree"``,
        ``"graph"``) searches every method of the family; ``"family:method"``
        (``"column:qr"``, ``"graph:lpp"``) searches one.
    dims : sequence of int or None, default=None
        Values of ``n_components`` to search. ``None``: ``(8, 16, 32, 64)``,
        or, for fewer than 32 columns (``n_features``), a geometric ladder
        around the data's width: the two largest powers of two below
        ``n_features``, ``n_features`` itself, and the powers of two above it
        up to four times it (a power within a quarter of ``n_features`` left
        out), so that a narrow table gets dimensions every family can give,
        and the tree and graph families, which the columns do not bound,
        larger ones too.
    n_features : int or None, default=None
        The number of columns reaching the projection (after cleaning). When
        given, dimensions that a family cannot give for so many columns are
        left out of that family's grid.
    n_samples : int or None, default=None
        The number of rows each fit sees (for a search, the smallest training
        fold). When given, dimensions that a family cannot give from so many
        rows (the tree family's leaves, the graph family's landmarks) are left
        out too.
    random_state : int or None, default=None
        Seeds the projections in the grid.

    Returns
    -------
    param_grid : list of dict
        For :class:`~sklearn.model_selection.GridSearchCV` over a Pipeline
        from :func:`make_quant_pipeline`: one dict per family method, setting
        the ``project`` step and ``project__n_components``.

    See Also
    --------
    make_quant_pipeline : the Pipeline this grid searches.

    Examples
    --------
    >>> from skquant import projection_grid
    >>> grid = projection_grid(["column:pca", "column:qr"], dims=(8, 16, 128),
    ...                        n_features=64)
    >>> [(g["project"][0].method, g["project__n_components"]) for g in grid]
    [('pca', [8, 16]), ('qr', [8, 16])]
    >>> projection_grid(["column:pca"], n_features=4)[0]["project__n_components"]
    [2, 4]
    >>> projection_grid(["tree:tsvq"], n_features=4)[0]["project__n_components"]
    [2, 4, 8, 16]
    """
    if isinstance(kinds, str):
        kinds = [kinds]
    if dims is None:
        dims = _default_dims(n_features)
    dims = sorted({int(d) for d in dims})
    if not dims or dims[0] < 1:
        raise ValueError(f"dims must hold positive integers, got {dims}.")
    grid = []
    for kind in kinds:
        family, cls, methods = _parse_kind(kind)
        for method in methods:
            projection = cls(method=method, random_state=random_state)
            limit, _ = _dimension_limit(projection, n_samples, n_features)
            feasible = [d for d in dims if d <= limit]
            if feasible:
                grid.append({"project": [projection], "project__n_components": feasible})
    if not grid:
        shape = " and ".join(
            f"{count} {what}" for count, what in ((n_samples, "rows"), (n_features, "columns"))
            if count is not None
        )
        raise ValueError(
            f"No dimension in {dims} is feasible for {list(kinds)} with {shape}; "
            "choose smaller dims."
        )
    return grid


def _dimension_limit(projection, n_samples=None, n_features=None):
    """``(limit, reason)``: the most dimensions ``projection`` can give for
    data of that shape (an unknown size counts as unlimited)."""
    inf = float("inf")
    return projection._max_components(
        inf if n_samples is None else n_samples, inf if n_features is None else n_features
    )
