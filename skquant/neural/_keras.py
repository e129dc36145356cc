"""KerasMLPClassifier: the one module that imports Keras and TensorFlow.

Importing this module is cheap; Keras, TensorFlow and scikeras are imported
on the first fit (or on first access to ``model_`` of an unpickled model)
through :func:`load_keras`, with TensorFlow's start-up log lines kept off
the terminal.
"""

import contextlib
import multiprocessing
import os
import pickle
import sys
import warnings
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
# seeds stay below 2**31, with room for one per layer
_SEED_LIMIT = 2**31 - 1024
# what shapes the network, fixed once it is built
_NETWORK_PARAMS = ("hidden_layer_sizes", "dropout", "learning_rate", "standardize")


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


def tensorflow_thread_cap():
    """How many threads TensorFlow may use in this process (None: its default).

    ``SKQUANT_TF_THREADS`` sets it; otherwise, in a Dask worker process, the
    worker's thread count, so that several worker processes on one machine
    do not each start a thread per core.

    Returns
    -------
    threads : int or None
        The cap, or None to leave TensorFlow's default (one per core).
    """
    text = os.environ.get("SKQUANT_TF_THREADS", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(
                f"SKQUANT_TF_THREADS={text!r} is not a positive integer; set it "
                "to the number of threads TensorFlow may use, or unset it."
            )
        return int(text)
    # A Dask worker process has imported distributed; nothing else needs to.
    # (A worker running as a thread of the main process shares it with the
    # user's own work, so it sets no cap.)
    distributed = sys.modules.get("distributed")
    if distributed is not None and multiprocessing.parent_process() is not None:
        try:
            worker = distributed.get_worker()
        except ValueError:
            # outside a task (for example in client.run): the process's
            # worker, if it has exactly one
            workers = list(getattr(distributed.Worker, "_instances", ()))
            if len(workers) != 1:
                return None
            worker = workers[0]
        return int(worker.state.nthreads)
    return None


def load_keras():
    """Import Keras (TensorFlow backend) and scikeras once, quietly.

    TensorFlow's thread pools are sized by :func:`tensorflow_thread_cap`.

    Returns
    -------
    backend : dict
        ``{"keras": module, "KerasClassifier": class, "BaseWrapper": class,
        "tensorflow_random_state": context manager}``.
    """
    if not _BACKEND:
        threads = tensorflow_thread_cap()
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        with _quiet_stderr():
            import keras
            import tensorflow
            from scikeras.utils.random_state import tensorflow_random_state
            from scikeras.wrappers import BaseWrapper, KerasClassifier

            tensorflow.get_logger().setLevel("ERROR")
            if threads is not None:
                # must precede TensorFlow's first operation, which fixes the pools
                try:
                    tensorflow.config.threading.set_intra_op_parallelism_threads(threads)
                    tensorflow.config.threading.set_inter_op_parallelism_threads(threads)
                except RuntimeError:
                    capped = False
                else:
                    capped = True
            # the first device query prints CUDA probing errors on CPU hosts
            tensorflow.config.list_physical_devices()
        if threads is not None and not capped:
            warnings.warn(
                f"TensorFlow was already running when skquant loaded it, so its "
                f"threads could not be capped at {threads}; load skquant's "
                "classifier before using TensorFlow directly.",
                RuntimeWarning, stacklevel=2,
            )
        _BACKEND.update(
            keras=keras,
            KerasClassifier=KerasClassifier,
            BaseWrapper=BaseWrapper,
            tensorflow_random_state=tensorflow_random_state,
        )
    return _BACKEND


def _standardize(X, mean, scale, dtype):
    return ((X - mean) / scale).astype(dtype)


def _build_mlp(meta, hidden_layer_sizes, dropout, learning_rate, seed):
    """Dense(relu) [-> Dropout] ... -> Dense(softmax), compiled with Adam.

    Every random layer gets its own seed from ``seed``: left unseeded, Keras
    draws one from Python's process-wide ``random`` module, which other
    threads (a Dask worker's, for one) also draw from, so that the same
    fit could give different networks.
    """
    keras = load_keras()["keras"]
    seeds = iter(range(seed, seed + 2 * len(hidden_layer_sizes) + 1))
    layers = [keras.Input(shape=(meta["n_features_in_"],))]
    for units in hidden_layer_sizes:
        layers.append(keras.layers.Dense(
            units, activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
        ))
        seed_dropout = next(seeds)
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout, seed=seed_dropout))
    layers.append(keras.layers.Dense(
        meta["n_classes_"], activation="softmax",
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
    ))
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
    ``partial_fit`` trains chunk by chunk, for data that does not fit in
    memory (see :func:`skquant.fit_stream`).

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
        Number of epochs run by ``fit``, plus one per ``partial_fit`` call.
    loss_curve_ : list of float
        Training loss after each epoch (each ``partial_fit`` call).
    validation_loss_curve_ : list of float
        With ``early_stopping``, the loss on the held-out rows after each
        epoch of ``fit``; the weights kept are those of its minimum. Empty
        without early stopping.
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

        mean, scale = self._input_statistics(X)
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
            model__seed=seed % _SEED_LIMIT,
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
        self.validation_loss_curve_ = [float(v) for v in wrapper.history_.get("val_loss", [])]
        self.n_iter_ = len(self.loss_curve_)
        self._model = wrapper
        self.__dict__.pop("_model_blob", None)
        self.__dict__.pop("_stream_rng", None)
        self._network_params = {name: getattr(self, name) for name in _NETWORK_PARAMS}
        return self

    def _input_statistics(self, X):
        """Mean and scale of each input column (0 and 1 when not standardizing)."""
        if not self.standardize:
            return np.zeros(X.shape[1]), np.ones(X.shape[1])
        scale = X.std(axis=0, dtype=np.float64)
        return X.mean(axis=0, dtype=np.float64), np.where(scale > 0, scale, 1.0)

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

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train the network for one epoch over one chunk of rows.

        The first call builds the network and learns the input
        standardization from its chunk; later calls (also after ``fit``)
        continue training the same weights, with the optimizer's state.
        Rows are shuffled within the chunk; each call draws a fresh seed
        from ``random_state``, so that the same chunks in the same order
        give the same network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training rows, finite.
        y : array-like of shape (n_samples,)
            Its class labels.
        classes : array-like of shape (n_classes,), default=None
            Every class label of the whole stream. Required on the first
            call (a chunk need not hold every class); optional afterwards,
            when it must equal ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-row weights of the loss.

        Returns
        -------
        self : object
            The updated classifier.
        """
        first_call = not hasattr(self, "classes_")
        if not first_call:
            changed = [
                name for name in _NETWORK_PARAMS
                if name in self.__dict__.get("_network_params", {})
                and self._network_params[name] != getattr(self, name)
            ]
            if changed:
                raise ValueError(
                    f"Parameter(s) {changed} changed since the network was built; "
                    "partial_fit keeps training the same network. Call fit, or "
                    "partial_fit on an unfitted clone, to build a new one."
                )
        if first_call:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: "
                    "every label of the whole stream (for example "
                    "np.unique(y_all)), since one chunk may miss some."
                )
            if self.early_stopping:
                raise ValueError(
                    "early_stopping holds out part of the whole training set, "
                    "which partial_fit never sees at once; set "
                    "early_stopping=False to train chunk by chunk."
                )
            hidden = self._hidden_sizes()
        try:
            X, y = validate_numeric(self, X, y, reset=first_call, ensure_min_samples=1)
        except Exception:
            if first_call:
                forget_fit(self)
            raise
        check_classification_targets(y)
        known = self.classes_ if not first_call else np.unique(np.asarray(classes))
        if first_call and len(known) < 2:
            forget_fit(self)
            raise ValueError(
                f"KerasMLPClassifier needs at least two classes; classes holds "
                f"only {known.tolist()}."
            )
        if not first_call and classes is not None and not np.array_equal(
            np.unique(np.asarray(classes)), known
        ):
            raise ValueError(
                f"classes={np.unique(np.asarray(classes)).tolist()} differs from "
                f"classes_={known.tolist()} of the first call; the classes "
                "cannot change while training."
            )
        unseen = np.setdiff1d(y, known)
        if unseen.size:
            if first_call:
                forget_fit(self)
            raise ValueError(
                f"y holds label(s) {unseen.tolist()[:10]} that are not among the "
                f"classes {known.tolist()}; pass every label of the stream as "
                "classes on the first call."
            )
        try:
            self._train_chunk(X, np.searchsorted(known, y), sample_weight, known,
                              hidden if first_call else None)
        except Exception:
            if first_call:
                forget_fit(self)  # the next call starts afresh
            raise
        return self

    def _train_chunk(self, X, y_encoded, sample_weight, known, hidden):
        """One epoch over one chunk; ``hidden`` is given on the first call."""
        first_call = hidden is not None
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if first_call:
            self.input_mean_, self.input_scale_ = self._input_statistics(X)
        inputs = self._standardized(X)
        backend = load_keras()  # only now: every check above is cheap
        if first_call:
            rng = check_random_state(self.random_state)
            seed = int(rng.randint(_SEED_LIMIT))
            wrapper = backend["KerasClassifier"](
                model=_build_mlp,
                model__hidden_layer_sizes=hidden,
                model__dropout=float(self.dropout),
                model__learning_rate=float(self.learning_rate),
                model__seed=seed,
                batch_size=self.batch_size,
                random_state=seed,
                verbose=self.verbose,
            )
            # build for every class, not only those of the first chunk
            wrapper.classes_ = np.arange(len(known))
            # (BaseWrapper's initialize: KerasClassifier's resets classes_)
            backend["BaseWrapper"].initialize(wrapper, inputs, y_encoded)
            self.classes_ = known
            self.loss_curve_ = []
            self.validation_loss_curve_ = []
            self.n_iter_ = 0
            self._model = wrapper
            self._network_params = {name: getattr(self, name) for name in _NETWORK_PARAMS}
        else:
            wrapper = self.model_
            rng = self.__dict__.get("_stream_rng") or check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        with backend["tensorflow_random_state"](seed):
            history = wrapper.model_.fit(
                inputs, y_encoded, sample_weight=sample_weight,
                batch_size=self.batch_size, epochs=1, shuffle=True, verbose=self.verbose,
            )
        dense = [layer for layer in wrapper.model_.layers if layer.get_weights()]
        self.coefs_ = [layer.get_weights()[0] for layer in dense]
        self.intercepts_ = [layer.get_weights()[1] for layer in dense]
        self.loss_curve_.append(float(history.history["loss"][-1]))
        self.n_iter_ += 1
        self._stream_rng = rng

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

