"""The compact store :func:`skquant.fit_stream` trains every epoch from.

The rows the steps before the final estimator produce are written here once
(float32, or int8 codes with a scale and an offset per column and chunk),
in memory or memory-mapped in a temporary directory, and read back a chunk
at a time, every epoch.
"""

import os
import shutil
import tempfile
import warnings

import numpy as np
import scipy.sparse

# int8 codes run over [-127, 127] around each column's midpoint (symmetric,
# so that decoding is one multiply-add; -128 is unused)
_INT8_LEVELS = 127
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class _RowStore:
    """The final estimator's input and labels: written once, read every epoch.

    The chunks are kept as the encode pass read them. The codes are float32,
    or int8 with, for each chunk, a scale and an offset per column
    (``value ~ code * scale + offset``, the offset the column's midpoint over
    the chunk and ``scale`` its half-range over 127). Labels are indices into
    ``classes`` in the smallest unsigned type that holds them; without
    ``classes`` (a regressor's targets) float64. The store stays in memory
    while it fits ``budget`` bytes (or is sure to, when the number of rows
    is known); otherwise every chunk is appended to two raw files (codes,
    labels) in a new directory under ``temp_dir``, memory-mapped once
    written. :meth:`close` removes that directory.
    """

    def __init__(self, budget, dtype, temp_dir, *, classes=None, expected_rows=None):
        self.budget, self.dtype, self.temp_dir = budget, np.dtype(dtype), temp_dir
        self.classes, self.expected_rows = classes, expected_rows
        self.bounds = [0]  # the chunks' first rows, then the row count
        self.scales = []  # int8: per chunk, (scale, offset) of each column
        self.codes, self.labels = [], []  # per chunk in memory; memmaps on disk
        self.directory, self._files = None, None
        self.width, self.columns, self.label_dtype = None, None, None
        self.nbytes = 0

    @property
    def n_rows(self):
        return self.bounds[-1]

    @property
    def on_disk(self):
        return self.directory is not None

    def append(self, X, y, index):
        """Encode and keep one chunk: ``X`` the fitted steps' output, ``y`` its labels."""
        columns = getattr(X, "columns", None)  # a DataFrame's, restored on reading
        X = self._numeric(X, index)
        if self.width is None:
            self.width, self.columns = X.shape[1], columns
            self.label_dtype = (
                np.dtype(np.float64) if self.classes is None
                else np.min_scalar_type(len(self.classes) - 1)
            )
        elif X.shape[1] != self.width:
            raise ValueError(
                f"Chunk {index}: the steps before the final estimator gave "
                f"{X.shape[1]} columns, but {self.width} for the first chunk."
            )
        codes, scale = self._encode(X, index)
        labels = self._label_codes(y, index)
        size = codes.nbytes + labels.nbytes + (0 if scale is None else scale.nbytes)
        if not self.on_disk and (
            self.nbytes + size > self.budget
            or (self.expected_rows and size * self.expected_rows > self.budget * len(labels))
        ):
            self._spill()
        if self.on_disk:
            codes.tofile(self._files[0])
            labels.tofile(self._files[1])
        else:
            self.codes.append(codes)
            self.labels.append(labels)
        self.scales.append(scale)
        self.bounds.append(self.n_rows + len(labels))
        self.nbytes += size

    @staticmethod
    def _numeric(X, index):
        if scipy.sparse.issparse(X):
            X = X.toarray()  # the store keeps dense rows
        X = np.asarray(X)
        if X.ndim != 2 or X.dtype.kind not in "biuf":
            raise ValueError(
                f"Chunk {index}: the steps before the final estimator gave "
                f"{'a ' + str(X.dtype) + ' array' if X.ndim == 2 else f'shape {X.shape}'}; "
                "fit_stream stores that input as numbers, so it must be a 2-D "
                "numeric array."
            )
        return X

    def _encode(self, X, index):
        where = f"Chunk {index}: the input of the final estimator"
        if self.dtype == np.float32:
            with np.errstate(over="ignore"):  # checked just below
                codes = np.ascontiguousarray(X, dtype=np.float32)
            # values finite in X that are not in float32 (NaN stays NaN, and
            # the final estimator's own checks refuse it)
            if (np.isinf(codes) & np.isfinite(X)).any():
                raise ValueError(
                    f"{where} holds values beyond float32's range (|x| > "
                    f"{_FLOAT32_MAX:.3g}), which store_dtype='float32' cannot keep; "
                    "rescale the data, or fit in memory with pipeline.fit."
                )
            return codes, None
        X = np.asarray(X, dtype=np.float64)
        low, high = X.min(axis=0), X.max(axis=0)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(
                f"{where} holds NaN or infinite values, which store_dtype='int8' "
                "cannot code; remove them in an earlier step (the Cleaner does), or "
                "use store_dtype='float32'."
            )
        if max(np.abs(low).max(), np.abs(high).max()) > _FLOAT32_MAX:
            raise ValueError(
                f"{where} holds values beyond float32's range (|x| > "
                f"{_FLOAT32_MAX:.3g}), which the int8 codes' float32 scales cannot "
                "keep; rescale the data."
            )
        # halves first: low + high and high - low may overflow
        offset = (low / 2 + high / 2).astype(np.float32)
        scale = (high / (2 * _INT8_LEVELS) - low / (2 * _INT8_LEVELS)).astype(np.float32)
        scale[~(scale > 0)] = 1.0  # a constant column: every code 0 is its value
        codes = np.rint((X - offset) / scale)
        np.clip(codes, -_INT8_LEVELS, _INT8_LEVELS, out=codes)
        return codes.astype(np.int8), np.stack([scale, offset])

    def _label_codes(self, y, index):
        if self.classes is not None:
            # the reader has checked that every label is among the classes
            return np.searchsorted(self.classes, y).astype(self.label_dtype)
        if y.dtype.kind not in "biuf":
            raise ValueError(
                f"Chunk {index}: the targets of a final estimator that is not a "
                f"classifier must be numeric, got {y.dtype}."
            )
        return y.astype(np.float64)

    def _spill(self):
        """Move the store to disk: a new directory, two files, then append there."""
        self.directory = tempfile.mkdtemp(prefix="skquant-fit-stream-", dir=self.temp_dir)
        self._files = []
        for name in ("rows.bin", "labels.bin"):
            self._files.append(open(os.path.join(self.directory, name), "wb"))
        for codes, labels in zip(self.codes, self.labels):
            codes.tofile(self._files[0])
            labels.tofile(self._files[1])
        self.codes, self.labels = [], []

    def finish(self):
        """Done writing: map the files of a store on disk, read-only."""
        if not self.on_disk:
            return
        for handle in self._files:
            handle.close()
        self._files = None
        self.codes = np.memmap(os.path.join(self.directory, "rows.bin"), dtype=self.dtype,
                               mode="r", shape=(self.n_rows, self.width))
        self.labels = np.memmap(os.path.join(self.directory, "labels.bin"),
                                dtype=self.label_dtype, mode="r", shape=(self.n_rows,))

    def read(self, rng=None):
        """One epoch: every chunk decoded, as ``(X, y)``; with ``rng``, the chunks
        in a random order and the rows of each shuffled."""
        n_chunks = len(self.bounds) - 1
        for chunk in (rng.permutation(n_chunks) if rng is not None else range(n_chunks)):
            if self.on_disk:
                rows = slice(self.bounds[chunk], self.bounds[chunk + 1])
                codes, labels = self.codes[rows], self.labels[rows]
            else:
                codes, labels = self.codes[chunk], self.labels[chunk]
            if rng is not None:
                order = rng.permutation(len(labels))
                codes, labels = codes[order], labels[order]
            else:  # a copy: the estimator gets its own array, never the store's
                codes, labels = np.array(codes), np.array(labels)
            if self.scales[chunk] is None:
                X = codes
            else:
                scale, offset = self.scales[chunk]
                X = codes.astype(np.float32)
                X *= scale
                X += offset
            if self.columns is not None:
                import pandas as pd  # the steps gave DataFrames, so pandas is there

                X = pd.DataFrame(X, columns=self.columns)
            yield X, (labels if self.classes is None else self.classes[labels])

    def close(self):
        """Release the store, and remove its files when it is on disk."""
        for handle in self._files or ():
            handle.close()
        self._files = None
        self.codes = self.labels = None  # the maps go before their files
        if self.directory is not None:
            try:
                shutil.rmtree(self.directory)
            except OSError as error:
                warnings.warn(
                    f"fit_stream could not remove its temporary store "
                    f"{self.directory}: {error}. Remove it by hand.",
                    RuntimeWarning, stacklevel=3,
                )
