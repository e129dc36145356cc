"""The Cleaner's column statistics, safe near the edges of the float range.

numpy's median averages the two middle values, its quantiles interpolate
through their difference, and a variance squares the values, any of which
overflows there. The helpers below take numpy's result where it is finite,
and otherwise compute the same statistic without overflow; every learned
value lies within its column's range, so it is finite.
"""

import numpy as np

from .._validation import peak_exponents, safe_mean

def _medians(columns):
    """Column medians of finite-or-NaN columns, each with a value."""
    with np.errstate(over="ignore", invalid="ignore"):
        medians = np.nanmedian(columns, axis=0)
    bad = np.flatnonzero(~np.isfinite(medians))
    for j in bad:
        values = columns[:, j][~np.isnan(columns[:, j])]
        below, above = np.quantile(values, 0.5, method="lower"), np.quantile(
            values, 0.5, method="higher")
        medians[j] = 0.5 * below + 0.5 * above  # no overflow, unlike (a + b) / 2
    return medians


def _quantiles(columns, probabilities):
    """``np.quantile(columns, probabilities, axis=0)`` for finite columns."""
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.quantile(columns, probabilities, axis=0)
    bad = np.flatnonzero(~np.isfinite(result).all(axis=0))
    if bad.size:
        # linear interpolation, as numpy's default, as a convex combination
        # of the two order statistics, which cannot overflow
        position = np.asarray(probabilities) * (columns.shape[0] - 1)
        weight = (position - np.floor(position))[:, None]
        below = np.quantile(columns[:, bad], probabilities, axis=0, method="lower")
        above = np.quantile(columns[:, bad], probabilities, axis=0, method="higher")
        result[:, bad] = (1 - weight) * below + weight * above
    return result


def _variance_at_most(X, threshold):
    """Mask of the columns of finite ``X`` whose variance is at most ``threshold``.

    Columns whose plain variance underflows to 0 or overflows are tested
    again scaled by a power of two: a column of values near 1e-200 that are
    not all equal is not near-constant for ``threshold=0``.
    """
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        variance = X.var(axis=0)
    at_most = variance <= threshold
    recheck = np.flatnonzero(~np.isfinite(variance) | (variance == 0))
    if recheck.size:
        columns = X[:, recheck].astype(np.float64)
        exponents = peak_exponents(columns)
        with np.errstate(over="ignore", under="ignore"):
            # var(c) <= t  <=>  var(c / 2**e) <= t / 4**e
            at_most[recheck] = np.ldexp(columns, -exponents).var(axis=0) <= np.ldexp(
                float(threshold), -2 * exponents)
    return at_most


def _spreads(columns):
    """Standard deviations of finite columns, without overflow: each column
    is brought below 1 by a power of two (exact) before its variance."""
    columns = np.asarray(columns, dtype=np.float64)
    exponents = peak_exponents(columns)
    with np.errstate(under="ignore"):
        return np.ldexp(np.ldexp(columns, -exponents).std(axis=0), exponents)


def _scaling_statistics(columns, scaling):
    """Each column's centre and scale for ``scaling`` ("standard" or
    "robust"), from its imputed, clipped values. A scale that comes out 0
    (a robust scale of a mostly constant column, a sample that missed a
    column's rare values) falls back to the standard deviation, then 1."""
    spreads = _spreads(columns)
    if scaling == "standard":
        center, scale = safe_mean(columns), spreads
    else:
        center = _medians(columns)
        quartiles = _quantiles(columns, [0.25, 0.75])
        with np.errstate(over="ignore"):
            # halves first: the difference of two values near the float
            # range would overflow
            scale = np.minimum(2 * (0.5 * quartiles[1] - 0.5 * quartiles[0]),
                               np.finfo(np.float64).max)
        scale = np.where(scale > 0, scale, spreads)
    return center, np.where(scale > 0, scale, 1.0)


def _in_range(values, dtype):
    """``values`` cast to ``dtype``, clipped to its finite range first."""
    if dtype == np.float64:
        return values
    largest = np.finfo(dtype).max
    return np.clip(values, -largest, largest).astype(dtype)
