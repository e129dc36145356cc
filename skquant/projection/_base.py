"""The base class that every projection family builds on.

It owns what is generic: parameter and input validation, the ``n_components``
limits, ``n_components_``, output feature names, ``set_output`` and the
``partial_fit`` contract. A family fills in the hooks:

- ``_max_components(n_samples, n_features)``: the largest ``n_components``
  the family can give for data of that shape, and why;
- ``_partial_fit(X, first_call)``: fold one chunk into the running state;
- ``_finalize()``: derive the fitted attributes named in
  ``_derived_attributes`` from that state;
- ``_transform(X)`` and, where defined, ``_inverse_transform(Z)`` (with
  ``_has_inverse_transform()`` saying where: ``inverse_transform`` exists
  only there, so that ``hasattr`` tells the truth);
- ``_transform_wide_range(X)``: the same projection computed without
  overflow on the way (slowly), for the rare rows whose fast result was
  not finite.

No projection returns NaN or infinity, nor keeps them in a fitted
attribute: a fit whose attributes would not be finite, and a transform
whose result would exceed the dtype's range, raise a ValueError that says
so (see ``_scaling`` for how data near the float range are computed with).

Streaming families derive their fitted attributes lazily: ``partial_fit``
only folds a chunk in (so that feeding many chunks costs no more than one
``fit``), and the attributes are derived on first use afterwards.
"""

import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral

import numpy as np
import scipy.sparse
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._doc_link import DocLinkMixin
from .._validation import check_finite, forget_fit, validate_numeric

_NAN_ADVICE = (
    "Put a skquant.Cleaner() before the projection (make_quant_pipeline does) "
    "to impute missing and infinite values."
)


class BaseProjection(
    DocLinkMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator,
    metaclass=ABCMeta,
):
    """Base class for skquant projections. Not for direct use.

    Parameters
    ----------
    n_components : int
        Number of output dimensions.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
    }

    # fitted attributes that ``_finalize`` derives from the streaming state
    _derived_attributes: tuple = ()

    # True when ``_fit`` checks that X is finite itself, folded into its own
    # pass over the rows (it must raise the same clear error), so that
    # ``fit`` does not read the data twice
    _fit_checks_finite: bool = False

    def __init__(self, n_components):
        self.n_components = n_components

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _max_components(self, n_samples, n_features):
        """Return ``(limit, reason)``: the largest feasible ``n_components``."""

    @abstractmethod
    def _partial_fit(self, X, first_call):
        """Fold the chunk ``X`` into the running state."""

    def _fit(self, X):
        """Fit on all rows at once; by default, as one chunk."""
        self._partial_fit(X, first_call=True)

    @abstractmethod
    def _finalize(self):
        """Derive the attributes in ``_derived_attributes``."""

    @abstractmethod
    def _transform(self, X):
        """Project validated rows."""

    def _transform_wide_range(self, X):
        """``_transform(X)`` computed so that nothing overflows on the way,
        or None where the family has no such path (the default)."""
        return None

    def _has_inverse_transform(self):
        """Whether this projection (with its parameters) can be inverted."""
        return False

    def _inverse_transform(self, Z):
        """Map projected rows back; called only where ``_has_inverse_transform()``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def _validate_input(self, X, reset, **kwargs):
        return validate_numeric(self, X, reset=reset, advice=_NAN_ADVICE, **kwargs)

    def _check_finite(self, X):
        check_finite(X, type(self).__name__, _NAN_ADVICE)

    def _checked_output(self, Z, X, what="transform"):
        """``Z``, the result of projecting ``X``, once it is known finite.

        One vectorized test on the fast path: a finite sum proves every
        value finite. Otherwise the rows that are not are computed again
        without overflow on the way; what is still not finite, or does not
        fit Z's dtype, exceeds it.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(Z.sum()) or np.isfinite(Z).all():
                return Z
        rows = np.flatnonzero(~np.isfinite(Z).all(axis=1))
        if what == "transform":
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                wide = self._transform_wide_range(X[rows])
            if wide is not None:
                largest = np.finfo(Z.dtype).max
                fits = (np.isfinite(wide) & (np.abs(wide) <= largest)).all(axis=1)
                Z[rows[fits]] = wide[fits].astype(Z.dtype)
                rows = rows[~fits]
            if not rows.size:
                return Z
        largest = float(np.max(np.abs(X[rows]))) if X.size else 0.0
        dtype = np.dtype(Z.dtype).name
        raise ValueError(
            f"{type(self).__name__}.{what} overflowed {dtype}: the result for "
            f"{rows.size} row(s) (the first: {rows[:5].tolist()}), with values up to "
            f"{largest:.3g}, exceeds what {dtype} can hold (the rows lie too far out "
            "for the scale of this projection). Scale the data first, the training "
            "data and these alike (for example with sklearn's StandardScaler in "
            "front)" + (", or pass float64" if Z.dtype != np.float64 else "") + "."
        )

    def _check_fitted_finite(self):
        """Raise if a fitted attribute is not finite: the data's magnitude
        overflowed a statistic that the projection cannot do without."""
        for name in self._derived_attributes:
            value = self.__dict__.get(name)
            if scipy.sparse.issparse(value):
                value = value.data
            if isinstance(value, float):
                value = np.float64(value)
            if (
                isinstance(value, (np.ndarray, np.floating)) and value.dtype.kind == "f"
                and not np.isfinite(value).all()
            ):
                self._drop_derived()
                raise ValueError(
                    f"{type(self).__name__} cannot represent its fitted {name} for "
                    "data of this magnitude: the computation overflows float64. "
                    "Scale the data first (for example with sklearn's "
                    "StandardScaler, or by a power of ten)."
                )

    def _check_n_components(self, n_samples, n_features):
        limit, reason = self._max_components(n_samples, n_features)
        if self.n_components > limit:
            raise ValueError(
                f"n_components={self.n_components} is larger than {limit}, the "
                f"most {type(self).__name__} can give here ({reason}). Choose "
                f"n_components <= {limit}."
            )

    def __getattr__(self, name):
        # Called only when normal lookup fails: derive the fitted attributes
        # on first use after partial_fit. ``__dict__`` is read directly so
        # that copy and pickle, which probe before ``__dict__`` is filled,
        # get a plain AttributeError.
        state = self.__dict__
        if name in type(self)._derived_attributes and state.get("_needs_finalize"):
            self._ensure_finalized()
            if name in state:
                return state[name]
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    # caches a family derives from its fitted state and rebuilds in
    # __setstate__, so that pickles do not store them
    _transient_attributes: tuple = ()

    def __getstate__(self):
        # Derive the fitted attributes first, so that a pickle holds the
        # fitted projection rather than half-streamed state (buffers).
        try:
            self._ensure_finalized()
        except ValueError:
            pass  # not finalizable yet (too few rows): pickle the raw state
        state = dict(super().__getstate__())  # a copy: it may be our own __dict__
        for name in self._transient_attributes:
            state.pop(name, None)
        return state

    def _ensure_finalized(self):
        if self.__dict__.get("_needs_finalize"):
            self._finalize()
            self._check_fitted_finite()
            self._needs_finalize = False

    # ------------------------------------------------------------- public API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the projection on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, finite.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted projection.
        """
        try:
            X = self._validate_input(
                X, reset=True, ensure_min_samples=2, allow_nan=self._fit_checks_finite
            )
            self._check_n_components(*X.shape)
            self._reset()
            self._fit(X)
            self.n_samples_seen_ = X.shape[0]
            self._finalize()
            self._check_fitted_finite()
        except Exception:
            forget_fit(self)  # a failed fit leaves nothing half-fitted
            raise
        self._needs_finalize = False
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the projection with one chunk of rows.

        Feeding the rows of ``X`` in chunks gives the same projection as one
        ``fit`` on all of them (up to floating point rounding). Fitted
        attributes are derived on first use afterwards.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data, finite.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The updated projection.
        """
        if self.__dict__.get("_stream_dropped"):
            warnings.warn(
                f"This {type(self).__name__} was loaded from a pickle (or copied), which "
                "keeps its fitted attributes but not the running statistics partial_fit "
                "adds to: partial_fit starts a new fit from this chunk. To learn from all "
                "the rows, call fit on them, or partial_fit on each chunk of them before "
                "saving.", UserWarning, stacklevel=3)  # past _fit_context's wrapper
            forget_fit(self)
        first_call = not hasattr(self, "n_samples_seen_")
        if not first_call:
            self._check_params_unchanged()
        X = self._validate_input(X, reset=first_call, ensure_min_samples=1)
        n_seen = X.shape[0] + (0 if first_call else self.n_samples_seen_)
        self._check_n_components(n_seen, X.shape[1])
        if first_call:
            self._reset()
            try:
                self._partial_fit(X, first_call=True)
            except Exception:
                forget_fit(self)  # nothing was fitted; the next call starts afresh
                raise
        else:
            self._partial_fit(X, first_call=False)
        self.n_samples_seen_ = n_seen
        self._drop_derived()
        self._needs_finalize = True
        return self

    def _check_params_unchanged(self):
        fitted_with = self.__dict__.get("_fitted_params", {})
        changed = sorted(
            name
            for name, value in self.get_params(deep=False).items()
            if name in fitted_with and fitted_with[name] is not value
            and fitted_with[name] != value
        )
        if changed:
            raise ValueError(
                f"Parameter(s) {changed} changed since the projection was fitted; "
                "partial_fit can only add rows. Call fit to start again with "
                "the new parameters."
            )

    def _drop_derived(self):
        # stale after new data; __getattr__ derives them again on first use
        for name in self._derived_attributes:
            self.__dict__.pop(name, None)

    def _reset(self):
        self._drop_derived()
        self.n_components_ = self.n_components
        self.n_samples_seen_ = 0
        self._fitted_params = self.get_params(deep=False)

    def transform(self, X):
        """Project ``X`` to ``n_components_`` dimensions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to project, finite, with the columns seen in ``fit``.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The projected rows, in the input's float dtype.
        """
        check_is_fitted(self, "n_samples_seen_")
        self._ensure_finalized()
        X = self._validate_input(X, reset=False)
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            Z = self._transform(X)
        return self._checked_output(Z, X)

    @available_if(lambda self: self._has_inverse_transform())
    def inverse_transform(self, X):
        """Map projected rows back to the input space.

        Defined for ``ColumnProjection`` and ``TreeProjection`` with
        ``method="tsvq"`` or ``"tsvq-local"`` (a row decodes to the prototype
        of the leaf it is closest to: its largest feature, which for
        ``"tsvq-local"`` is the nearest subspace, not always the nearest
        prototype); the other projections have no ``inverse_transform``
        attribute.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Projected rows.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in)
            The reconstruction.
        """
        check_is_fitted(self, "n_samples_seen_")
        self._ensure_finalized()
        Z = np.asarray(X)
        if Z.ndim != 2 or Z.shape[1] != self.n_components_:
            raise ValueError(
                f"inverse_transform expects an array of shape (n_samples, "
                f"{self.n_components_}), got shape {Z.shape}."
            )
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            X_original = self._inverse_transform(Z)
        return self._checked_output(X_original, Z, "inverse_transform")

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
