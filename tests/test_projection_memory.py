"""The README's claim for the tree and graph families: ``partial_fit`` and
memmaps with flat memory.

Rows stream from a memmap in chunks through ``partial_fit``, then
``transform``. After a warm-up pass (first-use allocations: imports,
caches), the peak traced memory over N rows and over 4N rows may differ by
no more than 2 bytes per extra row (a leak of one float32 per row would cost
4): what is held is a chunk, the fixed-size state (sample, buffer,
prototypes or landmarks), and their copies.
"""

import tracemalloc

import numpy as np
import pytest

from skquant import GraphProjection, TreeProjection

# method -> (a fresh projection, N). tsvq routes streamed rows 32,768 at a
# time: its N is larger, so that the N-row pass fills that buffer as the
# 4N-row one does.
STREAMED = {
    "tsvq": (lambda: TreeProjection(16, max_samples=2000, random_state=0), 40_000),
    "random-trees": (lambda: TreeProjection(8, method="random-trees", n_estimators=5,
                                            max_depth=4, max_samples=2000, random_state=0),
                     40_000),
    "spectral": (lambda: GraphProjection(8, n_landmarks=300, random_state=0), 12_000),
    "lpp": (lambda: GraphProjection(8, method="lpp", n_landmarks=300, random_state=0), 12_000),
}


def _streamed_peak(projection, rows, chunk=4000):
    """Peak traced memory of partial_fit, then transform, chunk by chunk."""
    tracemalloc.start()
    try:
        for start in range(0, len(rows), chunk):
            projection.partial_fit(rows[start : start + chunk])
        total = 0.0
        for start in range(0, len(rows), chunk):
            total += float(projection.transform(rows[start : start + chunk]).sum())
        assert np.isfinite(total)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("method", list(STREAMED))
def test_memory_is_flat_in_the_rows(method, tmp_path):
    make, n_rows = STREAMED[method]
    n_features = 16
    rng = np.random.RandomState(0)
    centres = rng.normal(scale=1.5, size=(20, n_features))
    path = tmp_path / "rows.npy"
    stored = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                       shape=(4 * n_rows, n_features))
    for start in range(0, 4 * n_rows, n_rows):
        stored[start : start + n_rows] = (
            centres[rng.randint(20, size=n_rows)] + rng.normal(size=(n_rows, n_features)))
    stored.flush()
    del stored
    rows = np.load(path, mmap_mode="r")
    _streamed_peak(make(), rows[:8000])  # warm-up
    peak_n = _streamed_peak(make(), rows[:n_rows])
    peak_4n = _streamed_peak(make(), rows)
    print(f"{method}: peak {peak_n / 2**20:.2f} MiB on {n_rows} rows, "
          f"{peak_4n / 2**20:.2f} MiB on {4 * n_rows}")
    assert peak_4n - peak_n < 2 * (3 * n_rows) + 2**16, (peak_n, peak_4n)
