"""Arithmetic for data anywhere in the float range, for every projection.

Data of magnitude 1e300 (or 1e-300, or 1e38 in float32) are legitimate,
but the squares and sums of squares that distances and covariances are made
of overflow (or underflow) long before the values do. The projections
therefore work, where needed, on rows *centred and divided by a power of
two*: a scaling by a power of two rounds nothing, so the results are those
of the exact arithmetic, scaled back at the end.

For data of ordinary magnitude the exponent is 0 and nothing changes: the
fast paths (and their bit-for-bit agreement with the serving runtime) stay
as they are. The ``wide_range_*`` functions are the slow, overflow-free
fallbacks that ``transform`` runs for the rare rows whose fast result
overflowed.
"""

import numpy as np

from .. import kernels

# Data whose largest magnitude lies within 2**(+-_BAND) of 1 are used as
# they are: their squares, summed over up to 2**40 terms, stay finite and
# normal in the dtype (float32: 2**(2*40 + 40) < 2**128).
_BAND = {np.dtype(np.float32): 40, np.dtype(np.float64): 480}


def peak_magnitude(X, shift=None):
    """Largest ``|X - shift|`` (a float, in float64), without overflow.

    ``inf`` only when the difference itself exceeds the float64 range.
    """
    if X.size == 0:
        return 0.0
    high = np.max(X, axis=0).astype(np.float64)
    low = np.min(X, axis=0).astype(np.float64)
    if shift is None:
        return float(max(np.abs(high).max(), np.abs(low).max()))
    # halves first: high - shift can overflow where high/2 - shift/2 cannot
    half = max(np.abs(high * 0.5 - shift * 0.5).max(), np.abs(low * 0.5 - shift * 0.5).max())
    return float(half) * 2.0 if half <= np.finfo(np.float64).max / 2 else float("inf")


def choose_exponent(peak, dtype):
    """0 when ``peak`` lies inside the dtype's band, else the exponent ``e``
    with ``peak < 2**e``: rows divided by ``2**e`` have magnitudes below 1."""
    if peak == 0:
        return 0
    if not np.isfinite(peak):
        return 1024  # a range beyond float64's: 2**1024 is just above it
    exponent = int(np.frexp(peak)[1])
    return 0 if abs(exponent) <= _BAND.get(np.dtype(dtype), 40) else exponent


def to_unit(X, shift, exponent):
    """``(X - shift) / 2**exponent`` in X's dtype, without overflow.

    ``shift`` is a float64 vector. With ``exponent`` 0 this is the plain
    difference (the fast path, as the serving runtime computes it).
    """
    shift = np.asarray(shift)
    if exponent == 0:
        return X - shift.astype(X.dtype)
    if exponent > 0:
        # divide first, then subtract: X - shift could overflow
        return np.ldexp(X, -exponent) - np.ldexp(shift, -exponent).astype(X.dtype)
    return np.ldexp(X - shift.astype(X.dtype), -exponent)


def _row_exponents(X, shift):
    """Per row ``f`` with ``max(|x|, |shift|) < 2**f`` (float64 rows)."""
    largest = np.abs(X).max(axis=1, initial=0.0)
    if shift is not None and shift.size:
        largest = np.maximum(largest, np.abs(shift).max())
    return np.frexp(largest)[1]


def wide_range_affine(X, shift, matrix):
    """``(X - shift) @ matrix.T`` in float64, overflow-free on the way.

    Each row (with the shift) is divided by its own power of two, and the
    matrix by one, so that every intermediate value is below 1 in
    magnitude; the result is scaled back, and is infinite only where its
    true value exceeds the float64 range.
    """
    X = np.asarray(X, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    shift = np.zeros(X.shape[1]) if shift is None else np.asarray(shift, dtype=np.float64)
    rows = _row_exponents(X, shift)[:, None]
    centred = np.ldexp(X, -rows) - np.ldexp(shift, -rows)
    columns = int(np.frexp(np.abs(matrix).max(initial=0.0))[1])
    product = centred @ np.ldexp(matrix, -columns).T
    with np.errstate(over="ignore"):
        return np.ldexp(product, rows + columns)


def wide_range_distances(X, shift, exponent, points, k=None, axes=None):
    """Euclidean distances from the rows ``(X - shift) / 2**exponent`` to
    ``points`` (already in those units), in float64, overflow-free.

    Each row is scaled by its own power of two (with the points), so that
    no square overflows or underflows to zero; a distance is infinite only
    where its true value exceeds the float64 range.

    With ``k``, only each row's ``k`` nearest points: ``(distances,
    indices)``, nearest first, ties to the lower index, ranked as
    :func:`skquant.kernels.nearest_landmarks` ranks them (by ``|p|^2 - 2
    x.p``, without the row's own squared norm, which would round away the
    differences of a row far from every point).

    With ``axes`` (``(n_points, m, d)``, orthonormal rows per point; not
    with ``k``), the distances to each point's affine subspace along its
    axes instead, what :func:`skquant.kernels.closeness` computes, here
    from each residual vector (O(d k m) a row).
    """
    X = np.asarray(X, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    shift = np.asarray(shift, dtype=np.float64)
    point_exponent = int(np.frexp(np.abs(points).max(initial=0.0))[1])
    points = np.ldexp(points, -point_exponent)  # below 1 in magnitude
    rows = np.maximum(_row_exponents(X, shift) - exponent, point_exponent)[:, None]
    # rows and points in units of 2**rows (2**(rows + exponent) in X's
    # units): both below 2 in magnitude
    scaled = np.ldexp(X, -(rows + exponent)) - np.ldexp(shift, -(rows + exponent))
    relative = point_exponent - rows  # <= 0
    squared = np.ldexp(scaled @ points.T, relative)
    squared *= -2.0
    squared += np.ldexp(np.einsum("ij,ij->i", points, points)[None, :], 2 * relative)
    own = np.einsum("ij,ij->i", scaled, scaled)[:, None]
    nearest = None
    if k is not None:
        nearest, squared = kernels.smallest(squared, k, with_values=True)
    squared += own
    if axes is not None:
        # the part of each row's offset that a point's axes do not span, as
        # a vector (this slow path can afford it: the fast formula, |x - c|^2
        # minus the squared coordinates, cancels for a row near a subspace)
        for j, basis in enumerate(axes):
            offset = scaled - np.ldexp(points[j][None, :], relative)
            offset -= (offset @ basis.T) @ basis
            squared[:, j] = np.einsum("ij,ij->i", offset, offset)
    np.maximum(squared, 0, out=squared)
    with np.errstate(over="ignore"):
        distances = np.ldexp(np.sqrt(squared), rows)
    return distances if k is None else (distances, nearest)
