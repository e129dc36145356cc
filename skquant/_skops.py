"""skops persistence: the types a skops file of a skquant pipeline holds.

``skops.io.dump`` saves any fitted skquant pipeline, and ``skops.io.load``
loads it without running a pickle. skops asks its caller to trust each type
it does not know; for a skquant pipeline those are skquant's own estimators
alone (:func:`trusted_types`): every fitted attribute is a numpy array, a
number, a string, or a list or dict of them. The classifier keeps its
network as arrays (weights, dropout's seed states, Adam's moments) and a
plain config, and rebuilds the Keras model from them on first use; the
graph family keeps its landmark affinities as the three arrays of a CSR
matrix.
"""


def trusted_types():
    """The names of skquant's estimator types that a skops file may hold.

    Returns
    -------
    names : list of str
        Fully qualified names, as ``skops.io.get_untrusted_types`` reports
        them, for example ``"skquant.cleaning._cleaner.Cleaner"``.

    Examples
    --------
    >>> from skquant import trusted_types
    >>> "skquant.neural._keras.KerasMLPClassifier" in trusted_types()
    True
    """
    from .cleaning import Cleaner, OutlierFilter
    from .neural import KerasMLPClassifier
    from .projection import ColumnProjection, GraphProjection, TreeProjection, UnionProjection

    classes = (Cleaner, OutlierFilter, ColumnProjection, TreeProjection, GraphProjection,
               UnionProjection, KerasMLPClassifier)
    return sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in classes)
