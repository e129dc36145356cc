"""OutlierFilter: drop outlier rows at fit time, predict for every row."""

import warnings

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.ensemble import IsolationForest
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_method_params,
    _num_samples,
    check_is_fitted,
    validate_data,
)

from .._doc_link import DocLinkMixin


def _estimator_has(method):
    def check(self):
        return hasattr(getattr(self, "estimator_", self.estimator), method)

    return check


class OutlierFilter(DocLinkMixin, MetaEstimatorMixin, BaseEstimator):
    """Train an estimator on the rows an outlier detector accepts.

    A Pipeline step cannot drop rows, so outlier rows are removed here: at
    fit time the detector is fitted on ``X`` and the wrapped estimator is
    trained on the rows it labels as inliers. At predict time nothing is
    dropped, and every row gets a prediction from the wrapped estimator. Put
    it last in a Pipeline, around the classifier.

    Parameters
    ----------
    estimator : estimator object
        The estimator to train on the inlier rows.
    detector : outlier detector or None, default=None
        Any scikit-learn outlier detector (an estimator whose ``fit_predict``
        returns -1 for outliers and 1 for inliers), such as
        :class:`~sklearn.ensemble.IsolationForest`,
        :class:`~sklearn.neighbors.LocalOutlierFactor` or
        :class:`~sklearn.covariance.EllipticEnvelope`. ``None`` means
        ``IsolationForest(random_state=random_state)``.
    random_state : int, RandomState instance or None, default=None
        Seeds the default detector.

    Attributes
    ----------
    estimator_ : estimator object
        The wrapped estimator, fitted on the inlier rows.
    detector_ : estimator object
        The fitted outlier detector.
    n_outliers_ : int
        Number of training rows left out.
    classes_ : ndarray of shape (n_classes,)
        The class labels, when the wrapped estimator is a classifier.
    n_features_in_ : int
        Number of columns seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of the columns seen during fit, when they are all strings.

    See Also
    --------
    Cleaner : row-preserving cleaning (imputation, useless columns, clipping).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skquant import OutlierFilter
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(size=(95, 2)), rng.normal(50, 1, size=(5, 2))])
    >>> y = np.array([0, 1] * 50)
    >>> model = OutlierFilter(LogisticRegression(), random_state=0).fit(X, y)
    >>> model.n_outliers_ > 0
    True
    >>> model.predict(X).shape
    (100,)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"])],
        "detector": [HasMethods(["fit_predict"]), None],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, detector=None, random_state=None):
        self.estimator = estimator
        self.detector = detector
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit the detector, then the estimator on the inlier rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Targets.
        **fit_params : dict
            Passed to the estimator's ``fit``; per-row arrays (such as
            ``sample_weight``) are filtered with the rows. With metadata
            routing enabled (``sklearn.set_config(enable_metadata_routing=True)``),
            each goes where it is requested: to the estimator's ``fit``
            (inlier rows only) and to the detector's ``fit_predict`` (every
            row), as their ``set_fit_request`` say (the default detector
            takes none); metadata passed where a request is not set raises
            scikit-learn's error.

        Returns
        -------
        self : object
            The fitted filter.
        """
        if y is None:
            raise ValueError(
                "OutlierFilter requires y to be passed, but the target y is None: "
                "it wraps a supervised estimator."
            )
        inner_tags = get_tags(self.estimator).input_tags
        # validated here so that a bad X fails before the detector runs; a
        # DataFrame is passed on as it is, to keep its column names
        X_checked, y = validate_data(
            self, X, y, reset=True, dtype=None,
            accept_sparse=["csr", "csc"] if inner_tags.sparse else False,
            ensure_all_finite=not inner_tags.allow_nan, multi_output=True,
        )
        if not hasattr(X, "iloc"):
            X = X_checked
        is_classifier = get_tags(self.estimator).estimator_type == "classifier"
        if is_classifier:
            # before the detector runs: continuous targets fail here, clearly
            check_classification_targets(y)
        n_samples = _num_samples(X)
        if _routing_enabled():
            routed = process_routing(self, "fit", **fit_params)
            fit_params, detector_params = routed.estimator.fit, routed.detector.fit_predict
        else:
            detector_params = {}
        detector = self._detector()
        inliers = np.asarray(detector.fit_predict(X, **detector_params)) == 1
        if not inliers.any():
            raise ValueError(
                f"The detector {type(detector).__name__} flagged all {n_samples} "
                "training rows as outliers; loosen it (for IsolationForest, "
                "set a lower contamination)."
            )
        if is_classifier:
            inliers = self._keep_every_class(np.asarray(y), inliers)
        rows = np.flatnonzero(inliers)
        # per-row parameters (sample_weight, ...) keep the inlier rows only
        kept_params = _check_method_params(X, fit_params, indices=rows)
        estimator = clone(self.estimator).fit(
            _safe_indexing(X, rows), _safe_indexing(y, rows), **kept_params
        )
        self.estimator_ = estimator
        self.detector_ = detector
        self.n_outliers_ = int(n_samples - rows.size)
        return self

    def _detector(self):
        if self.detector is not None:
            return clone(self.detector)
        detector = IsolationForest(random_state=self.random_state)
        if _routing_enabled():
            # the default detector, which a user cannot configure: it
            # takes no sample_weight (a detector given takes what its own
            # request says)
            detector.set_fit_request(sample_weight=False)
        return detector

    def get_metadata_routing(self):
        """Where this filter sends metadata: see the user guide's
        metadata routing section of scikit-learn.

        Returns
        -------
        routing : MetadataRouter
            ``fit`` to the estimator's ``fit`` and the detector's
            ``fit_predict``; ``score`` to the estimator's ``score``.
        """
        return (
            MetadataRouter(owner=self.__class__.__name__)
            .add(estimator=self.estimator,
                 method_mapping=MethodMapping().add(caller="fit", callee="fit")
                 .add(caller="score", callee="score"))
            .add(detector=self._detector(),
                 method_mapping=MethodMapping().add(caller="fit", callee="fit_predict"))
        )

    @staticmethod
    def _keep_every_class(y, inliers):
        # A class whose every row was flagged would vanish from the classifier
        # (and from classes_); keep such a class's rows instead.
        lost = np.setdiff1d(np.unique(y), np.unique(y[inliers]))
        if lost.size:
            warnings.warn(
                f"The detector flagged every training row of class(es) "
                f"{lost.tolist()} as an outlier; those rows are kept so that the "
                "classifier still learns every class.",
                UserWarning,
            )
            inliers = inliers | np.isin(y, lost)
        return inliers

    @property
    def classes_(self):
        """The class labels of the wrapped classifier."""
        check_is_fitted(self)
        return self.estimator_.classes_

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predict with the wrapped estimator, for every row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions.
        """
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the wrapped classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities from the wrapped classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log class probabilities.
        """
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the wrapped estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray
            The wrapped estimator's decision function.
        """
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    @available_if(_estimator_has("score"))
    def score(self, X, y, sample_weight=None):
        """Score of the wrapped estimator on ``X`` and ``y`` (every row).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Test rows.
        y : array-like of shape (n_samples,)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights.

        Returns
        -------
        score : float
            The wrapped estimator's score.
        """
        check_is_fitted(self)
        if _routing_enabled():
            params = {} if sample_weight is None else {"sample_weight": sample_weight}
            routed = process_routing(self, "score", **params)
            return self.estimator_.score(X, y, **routed.estimator.score)
        return self.estimator_.score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags.required = True
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags
