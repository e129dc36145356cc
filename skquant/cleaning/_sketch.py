"""What ``Cleaner.partial_fit`` keeps of the rows it has seen.

Some of the Cleaner's statistics can be kept exactly in one pass at a cost
that does not grow with the rows: per column, the count of finite values,
their mean (a running mean, which cannot overflow as a sum can), extremes
and a digest of the column's content. The others
(median, most frequent value, clipping quantiles, variance after clipping)
need the values themselves; for those the sketch keeps a uniform random
sample of the rows (reservoir sampling, Vitter's algorithm R), which is an
unbiased quantile sketch whose rank error shrinks as one over the square
root of its size. While the stream is no longer than the sample, the
sample *is* the data, and every statistic is exact.
"""

import hashlib

import numpy as np

from .._validation import safe_mean


class ColumnSketch:
    """Exact per-column summaries and a uniform row sample of a stream.

    Parameters
    ----------
    n_features : int
        Columns of every chunk.
    sample_size : int
        Most rows kept in the sample.
    random_state : numpy.random.RandomState
        Draws which rows the sample keeps.
    """

    def __init__(self, n_features, sample_size, random_state):
        self.n_rows = 0
        self.n_finite = np.zeros(n_features, dtype=np.int64)
        self.means = np.zeros(n_features)
        self.minima = np.full(n_features, np.inf)
        self.maxima = np.full(n_features, -np.inf)
        self._digests = [hashlib.blake2b(digest_size=16) for _ in range(n_features)]
        self.sample_size = sample_size
        self._rng = random_state
        self._sample = np.empty((0, n_features))
        self._n_sampled = 0

    @property
    def sample(self):
        """The sampled rows, float64, NaN for every missing entry."""
        return self._sample[: self._n_sampled]

    @property
    def is_exact(self):
        """Whether the sample holds every row seen."""
        return self._n_sampled == self.n_rows

    def digests(self):
        """One digest per column of its values in every row seen."""
        return [digest.digest() for digest in self._digests]

    def update(self, X):
        """Add the rows of ``X`` (float, non-finite entries count as missing)."""
        X = np.where(np.isfinite(X), X, np.nan).astype(np.float64, copy=False)
        finite = ~np.isnan(X)
        chunk_finite = finite.sum(axis=0)
        seen = chunk_finite > 0
        if seen.any():
            # the running mean moves toward the chunk's by the chunk's share of
            # the values: a convex combination, finite for any finite values
            share = chunk_finite[seen] / (self.n_finite[seen] + chunk_finite[seen])
            chunk_mean = safe_mean(X[:, seen])
            self.means[seen] = (1 - share) * self.means[seen] + share * chunk_mean
        self.n_finite += chunk_finite
        if finite.any():
            self.minima = np.fmin(self.minima, np.nanmin(np.where(finite, X, np.inf), axis=0))
            self.maxima = np.fmax(self.maxima, np.nanmax(np.where(finite, X, -np.inf), axis=0))
        for digest, column in zip(self._digests, np.ascontiguousarray(X.T)):
            digest.update(column.tobytes())
        self._add_to_sample(X)
        self.n_rows += X.shape[0]

    def _add_to_sample(self, X):
        # the first sample_size rows fill the sample in order ...
        n_free = self.sample_size - self._n_sampled
        head = X[:n_free]
        if head.shape[0]:
            self._reserve(self._n_sampled + head.shape[0])
            self._sample[self._n_sampled : self._n_sampled + head.shape[0]] = head
            self._n_sampled += head.shape[0]
        rest = X[head.shape[0]:]
        if not rest.shape[0]:
            return
        # ... then row number i (0-based, over the whole stream) replaces a
        # random slot with probability sample_size / (i + 1)
        first = self.n_rows + head.shape[0]
        numbers = np.arange(first, first + rest.shape[0])
        slots = (self._rng.random_sample(rest.shape[0]) * (numbers + 1)).astype(np.int64)
        kept = np.flatnonzero(slots < self.sample_size)
        # of several rows drawn into one slot, the last one stays
        slots_reversed = slots[kept][::-1]
        unique_slots, last = np.unique(slots_reversed, return_index=True)
        self._sample[unique_slots] = rest[kept[::-1][last]]

    def _reserve(self, n_rows):
        # grow by doubling, so that filling the sample chunk by chunk copies
        # each row a bounded number of times
        capacity = self._sample.shape[0]
        if n_rows <= capacity:
            return
        new_capacity = min(self.sample_size, max(n_rows, 2 * capacity))
        grown = np.empty((new_capacity, self._sample.shape[1]))
        grown[: self._n_sampled] = self._sample[: self._n_sampled]
        self._sample = grown
