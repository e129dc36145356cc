"""A pipeline step that holds a fit until a file exists.

The Dask tests put it first in the searched pipeline, so that the search's
tasks are still running, on every worker, when a worker is killed. It lives
in its own small module because the worker processes import it by name
(they start with this directory on ``sys.path``).
"""

import os
import time

from sklearn.base import BaseEstimator, TransformerMixin


class Gate(TransformerMixin, BaseEstimator):
    """Passes rows through; ``fit`` waits until ``path`` exists (None: no wait)."""

    def __init__(self, path=None, timeout=300.0):
        self.path = path
        self.timeout = timeout

    def fit(self, X, y=None):
        deadline = time.monotonic() + self.timeout
        while self.path is not None and not os.path.exists(self.path):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gate {self.path} never opened")
            time.sleep(0.02)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return X
