"""KerasMLPClassifier: the one module that imports Keras and TensorFlow.

Importing this module is cheap; Keras, TensorFlow and scikeras are imported
on the first fit (or on first access to ``model_`` of an unpickled model)
through :func:`load_keras`, with TensorFlow's start-up log lines kept off
the terminal.
"""

import contextlib
import os
import pickle
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    check_random_state,
)

from .._validation import forget_fit, validate_numeric

_BACKEND = {}


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null (TensorFlow's C++ logs bypass Python)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_keras():
    """Import Keras (TensorFlow backend) and scikeras once, quietly.

    Returns
    -------
    backend : dict
        ``{"keras": module, "KerasClassifier": class}``.
    """
    if not _BACKEND:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        with _quiet_stderr():
            import keras
            import tensorflow
            from scikeras.wrappers import KerasClassifier

            tensorflow.get_logger().setLevel("ERROR")
            # the first device query prints CUDA probing errors on CPU hosts
            tensorflow.config.list_physical_devices()
        _BACKEND.update(keras=keras, KerasClassifier=KerasClassifier)
    return _BACKEND


def _standardize(X, mean, scale, dtype):
    return ((X - mean) / scale).astype(dtype)


def _build_mlp(meta, hidden_layer_sizes, dropout, learning_rate):
    """Dense(relu) [-> Dropout] ... -> Dense(softmax), compiled with Adam."""
    keras = load_keras()["keras"]
    layers = [keras.Input(shape=(meta["n_features_in_"],))]
    for units in hidden_layer_sizes:
        layers.append(keras.layers.Dense(units, activation="relu"))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(meta["n_classes_"], activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class KerasMLPClassifier(ClassifierMixin, BaseEstimator):
    """A small Keras multi-layer perceptron, wrapped through scikeras.

    The default network is the skquant design's: Dense(64, relu) ->
    Dropout(0.2) -> Dense(n_classes, softmax), trained with Adam on the sparse
    categorical cross-entropy. Inputs are standardized with statistics
    learned at fit. Unlike scikeras's own wrapper it reports scikit-learn's
    classifier tags (so ``is_classifier`` is True and GridSearchCV stratifies
    its folds), accepts any label type, and keeps TensorFlow out of
    ``import skquant``: TensorFlow is loaded to fit. Predictions evaluate the
    trained weights with numpy (float64), so that a loaded model predicts
    without TensorFlow, each row's result does not depend on the batch it
    comes in, and a call costs microseconds rather than Keras's milliseconds.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(64,)
        Units of each hidden Dense(relu) layer.
    dropout : float in [0, 1), default=0.2
        Dropout rate after each hidden layer (0 disables it).
    epochs : int, default=30
        Passes over the training data (the most, with early stopping).
    batch_size : int, default=32
        Rows per gradient step.
    learning_rate : float, default=0.002
        Adam's learning rate.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified) and stop
        when their loss has not improved for ``n_iter_no_change`` epochs,
        keeping the best weights.
    validation_fraction : float in (0, 1), default=0.1
        Share of rows held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    standardize : bool, default=True
        Centre and scale every input column with statistics learned at fit.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout, shuffling and the early-stopping
        split. The same integer gives the same predictions.
    verbose : int, default=0
        Keras's training verbosity.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of columns seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Names of the columns seen during fit, when they are all strings.
    input_mean_ : ndarray of shape (n_features_in,)
        Mean subtracted from each input column (zeros if not standardizing).
    input_scale_ : ndarray of shape (n_features_in,)
        Divisor of each centred input column (ones if not standardizing).
    coefs_ : list of ndarray
        Weight matrices of the Dense layers, input layer first.
    intercepts_ : list of ndarray
        Bias vectors of the Dense layers.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Training loss after each epoch.
    model_ : scikeras.wrappers.KerasClassifier
        The fitted scikeras wrapper (its ``model_`` is the Keras model);
        loaded, with TensorFlow, on first access after unpickling.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : the same network in scikit-learn.
    scikeras.wrappers.KerasClassifier : the generic wrapper used underneath.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skquant import KerasMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = KerasMLPClassifier(epochs=5, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "standardize": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(64,),
        *,
        dropout=0.2,
        epochs=30,
        batch_size=32,
        learning_rate=0.002,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        standardize=True,
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.standardize = standardize
        self.random_state = random_state
        self.verbose = verbose

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be a positive int or a tuple of "
                f"positive ints, got {self.hidden_layer_sizes!r}."
            )
        return sizes

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows, finite.
        y : array-like of shape (n_samples,)
            Class labels of any type (strings, ints, ...); at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-row weights of the loss.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        try:
            return self._fit(X, y, sample_weight)
        except Exception:
            forget_fit(self)  # a failed fit leaves nothing half-fitted
            raise

    def _fit(self, X, y, sample_weight):
        hidden = self._hidden_sizes()
        if y is None:
            raise ValueError(
                "KerasMLPClassifier requires y to be passed, but the target y is None."
            )
        X, y = validate_numeric(self, X, y, reset=True, ensure_min_samples=2)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"KerasMLPClassifier needs at least two classes in y; it holds "
                f"only {encoder.classes_.tolist()}."
            )
        y_encoded = encoder.transform(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)

        if self.standardize:
            mean = X.mean(axis=0, dtype=np.float64)
            scale = X.std(axis=0, dtype=np.float64)
            scale = np.where(scale > 0, scale, 1.0)
        else:
            mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        inputs = _standardize(X, mean, scale, np.float32)

        rng = check_random_state(self.random_state)
        # Always pass a seed: once scikeras has switched on TensorFlow's op
        # determinism (it does for any seeded fit), unseeded random ops fail.
        # With random_state=None the seed comes from numpy's global state.
        seed = int(rng.randint(np.iinfo(np.int32).max))
        fit_kwargs = {}
        if self.early_stopping:
            inputs, y_encoded, fit_kwargs, sample_weight = self._early_stopping_split(
                inputs, y_encoded, sample_weight, rng
            )
        backend = load_keras()  # only now: every check above is cheap
        callbacks = None
        if self.early_stopping:
            callbacks = [
                backend["keras"].callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=self.n_iter_no_change,
                    restore_best_weights=True,
                )
            ]
        wrapper = backend["KerasClassifier"](
            model=_build_mlp,
            model__hidden_layer_sizes=hidden,
            model__dropout=float(self.dropout),
            model__learning_rate=float(self.learning_rate),
            epochs=self.epochs,
            batch_size=self.batch_size,
            callbacks=callbacks,
            random_state=seed,
            verbose=self.verbose,
        )
        wrapper.fit(inputs, y_encoded, sample_weight=sample_weight, **fit_kwargs)

        # fitted state is set only once training has succeeded
        dense = [layer for layer in wrapper.model_.layers if layer.get_weights()]
        self.classes_ = encoder.classes_
        self.input_mean_, self.input_scale_ = mean, scale
        self.coefs_ = [layer.get_weights()[0] for layer in dense]
        self.intercepts_ = [layer.get_weights()[1] for layer in dense]
        self.loss_curve_ = [float(v) for v in wrapper.history_["loss"]]
        self.n_iter_ = len(self.loss_curve_)
        self._model = wrapper
        self.__dict__.pop("_model_blob", None)
        return self

    def _early_stopping_split(self, X, y, sample_weight, rng):
        n_classes = int(y.max()) + 1
        n_validation = int(np.ceil(self.validation_fraction * X.shape[0]))
        if n_validation >= X.shape[0]:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no rows to "
                f"train on with {X.shape[0]} rows; lower it or turn early_stopping off."
            )
        # stratify when every class can appear on both sides of the split
        can_stratify = (
            np.bincount(y).min() >= 2
            and n_validation >= n_classes
            and X.shape[0] - n_validation >= n_classes
        )
        train, val = train_test_split(
            np.arange(X.shape[0]), test_size=n_validation,
            stratify=y if can_stratify else None, random_state=rng,
        )
        validation = (X[val], y[val])
        if sample_weight is not None:
            validation = validation + (sample_weight[val].astype(np.float32),)
            sample_weight = sample_weight[train]
        return X[train], y[train], {"validation_data": validation}, sample_weight

    def _standardized(self, X, dtype=np.float32):
        return _standardize(X, self.input_mean_, self.input_scale_, dtype)

    @property
    def model_(self):
        """The fitted scikeras wrapper, loaded on first use after unpickling."""
        model = self.__dict__.get("_model")
        if model is None:
            blob = self.__dict__.get("_model_blob")
            if blob is None:
                raise AttributeError("model_ is set by fit.")
            load_keras()
            model = pickle.loads(blob)
            self._model = model
            del self._model_blob  # held once, as the live model
        return model

    def __getstate__(self):
        # a copy: BaseEstimator.__getstate__ may return the live __dict__
        state = dict(super().__getstate__())
        model = state.pop("_model", None)
        if model is not None:
            # Keep the Keras model as bytes so that unpickling this estimator
            # does not import TensorFlow until it is used.
            state["_model_blob"] = pickle.dumps(model)
        return state

    def _logits(self, X):
        """The network's output before the softmax, evaluated with numpy.

        The trained network is evaluated in float64: the same function Keras
        computes (dropout is off at inference), exact to float64 rounding for
        each row whatever the batch, and with no TensorFlow start-up or
        per-call overhead.
        """
        check_is_fitted(self, "classes_")
        X = validate_numeric(self, X, reset=False)
        activations = self._standardized(X, dtype=np.float64)
        last = len(self.coefs_) - 1
        for i, (weights, bias) in enumerate(zip(self.coefs_, self.intercepts_)):
            activations = activations @ weights.astype(np.float64) + bias
            if i < last:
                np.maximum(activations, 0.0, out=activations)
        return activations

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict, finite.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_`` (two columns
            for two classes).
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Log of the class probabilities (a log-softmax: finite, never -inf).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict, finite.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log probabilities.
        """
        logits = self._logits(X)
        logits -= logits.max(axis=1, keepdims=True)
        logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return logits

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to predict, finite.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, of the type of the training labels.
        """
        logits = self._logits(X)  # checks fitted before classes_ is read
        return self.classes_[np.argmax(logits, axis=1)]

