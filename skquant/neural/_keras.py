"""KerasMLPClassifier: a small Keras network as a scikit-learn classifier.

Importing this module is cheap; Keras, TensorFlow and scikeras are imported
on the first fit (or on first access to ``model_`` of an unpickled model)
through :func:`load_keras` (``_backend.py``), and the network is trained by
the compiled loop of ``_training.py``.
"""

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

from .. import kernels
from .._doc_link import DocLinkMixin
from .._registry import register_export
from .._validation import forget_fit, validate_numeric
from ._backend import _build_mlp, load_keras
from ._training import _network_state, _train_network

# seeds stay below 2**31, with room for one per layer
_SEED_LIMIT = 2**31 - 1024
# what shapes the network, fixed once it is built
_NETWORK_PARAMS = ("hidden_layer_sizes", "dropout", "learning_rate", "standardize")


def _standardize(X, mean, scale, dtype):
    return ((X - mean) / scale).astype(dtype)


def _weighted_rows(X, y, sample_weight):
    """The rows of positive weight, and their weights as float32 (ones for None).

    Rows of weight zero are dropped, so that they count exactly as rows that
    were never passed: they shape neither the batches nor the input
    standardization.
    """
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    kept = weights > 0
    if not kept.all():
        X, y, weights = X[kept], y[kept], weights[kept]
    return X, y, weights.astype(np.float32)


def _dense_weights(network):
    """Kernels and biases of a network's Dense layers, input layer first."""
    dense = [layer for layer in network.layers if layer.get_weights()]
    return ([layer.get_weights()[0] for layer in dense],
            [layer.get_weights()[1] for layer in dense])


class KerasMLPClassifier(DocLinkMixin, ClassifierMixin, BaseEstimator):
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
        When positive, print the training loss after each epoch (and the
        validation loss, with early stopping), as scikit-learn's
        MLPClassifier does.

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

    Notes
    -----
    skquant trains the network itself instead of calling scikeras's ``fit``
    (which calls Keras's ``Model.fit``). For a network this small, Keras's
    fit loop costs more than its arithmetic: it runs Python for every batch
    (callbacks, progress, its data adapter), and traces a new training
    function for every new model, so that a grid search paid the tracing
    once per candidate and fold. On digits (1,347 rows, 30 epochs of batch
    32, a 2-core machine) that loop took 5.3 s per fit; skquant's takes
    0.6-0.7 s, below scikit-learn's ``MLPClassifier((64,))`` in the same
    run (``benchmarks/bench_classifier.py``). What skquant does instead:

    - The scikeras wrapper is initialized without fitting
      (``BaseWrapper.initialize``), which builds the Keras model; the
      network, its Adam optimizer and its loss are Keras's, and ``model_``
      is an ordinary scikeras ``KerasClassifier``.
    - All epochs and batches run inside one compiled TensorFlow function
      (``tf.function``): each epoch shuffles the rows in the graph, seeded by
      ``random_state`` and the epoch's number; each batch calls the Keras
      model under ``tf.GradientTape``, computes Keras's compiled loss
      (``Model.compute_loss``: the weighted losses summed over the batch
      size, as in Keras) and steps Keras's Adam.
    - That function is traced once per process for each shape (input
      width, hidden layers, classes, dropout, batch size), on a template
      network of that shape. Each fit copies its network's initial weights,
      dropout seed states and optimizer state into the template, and the
      trained state back; later fits of a shape, such as a grid search's,
      skip TensorFlow's tracing and graph optimization.
    - Early stopping and ``verbose`` run the same function an epoch at a
      time, checking the validation loss between epochs with Keras's
      ``EarlyStopping(restore_best_weights=True)`` rule.

    The trained state ends in the Keras model (``model_.model_``): its
    weights and its optimizer's moments, so it can be used or trained
    further with Keras (Keras's saving keeps no dropout seed state, so
    skquant's pickling does). Rows of ``sample_weight`` zero are dropped
    before training, as if they had not been passed. On a CPU the same
    integer ``random_state`` gives the same weights bit for bit, in any
    process. On a GPU some TensorFlow kernels are deterministic only under
    ``tf.config.experimental.enable_op_determinism()``, a process-wide
    setting that skquant leaves to the user.

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
            Non-negative per-row weights of the loss (Keras's weighting:
            each batch's weighted losses summed over its size). Rows of
            weight zero are dropped, as if they had not been passed.

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
        n_rows = X.shape[0]
        X, y, weights = _weighted_rows(X, y, sample_weight)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            where = ("y; it holds" if X.shape[0] == n_rows
                     else "the rows of positive sample_weight; they hold")
            raise ValueError(
                f"KerasMLPClassifier needs at least two classes in {where} only "
                f"{encoder.classes_.tolist()}."
            )
        y_encoded = encoder.transform(y).astype(np.int32)

        mean, scale = self._input_statistics(X)
        inputs = _standardize(X, mean, scale, np.float32)

        rng = check_random_state(self.random_state)
        # With random_state=None the seed comes from numpy's global state.
        seed = int(rng.randint(np.iinfo(np.int32).max))
        rows, validation = (inputs, y_encoded, weights), None
        if self.early_stopping:
            rows, validation = self._early_stopping_split(inputs, y_encoded, weights, rng)
        backend = load_keras()  # only now: every check above is cheap
        n_classes = len(encoder.classes_)
        wrapper = self._new_wrapper(backend, rows, n_classes, hidden, seed % _SEED_LIMIT)
        losses, validation_losses = _train_network(
            wrapper.model_, self._training_key(n_classes), rows, seed, 0, self.epochs,
            validation=validation, patience=self.n_iter_no_change, verbose=self.verbose,
        )

        # fitted state is set only once training has succeeded
        self.classes_ = encoder.classes_
        self.input_mean_, self.input_scale_ = mean, scale
        self.coefs_, self.intercepts_ = _dense_weights(wrapper.model_)
        self.loss_curve_ = losses
        self.validation_loss_curve_ = validation_losses
        self.n_iter_ = len(losses)
        self._model = wrapper
        self.__dict__.pop("_network_arrays", None)
        self.__dict__.pop("_network_config", None)
        self._shuffle_seed = seed  # partial_fit's epochs continue fit's
        self._network_params = {name: getattr(self, name) for name in _NETWORK_PARAMS}
        return self

    def _new_wrapper(self, backend, rows, n_classes, hidden, seed, *, dropout=None,
                     learning_rate=None):
        """The scikeras wrapper, initialized (its network built) without fitting."""
        wrapper = backend["KerasClassifier"](
            model=_build_mlp,
            model__hidden_layer_sizes=hidden,
            model__dropout=float(self.dropout if dropout is None else dropout),
            model__learning_rate=float(
                self.learning_rate if learning_rate is None else learning_rate),
            model__seed=seed,
            epochs=self.epochs,
            batch_size=self.batch_size,
            # no random_state: every random layer is seeded by _build_mlp,
            # and scikeras would call tf.random.set_seed, which clears
            # TensorFlow's kernel cache and so costs every later fit the
            # compiled loop's instantiation (about 0.3 s)
            random_state=None,
            verbose=self.verbose,
        )
        self._wrapper_seed = seed  # kept with the network's saved state
        # build for every class, not only those of these rows
        wrapper.classes_ = np.arange(n_classes)
        # (BaseWrapper's initialize: KerasClassifier's resets classes_)
        backend["BaseWrapper"].initialize(wrapper, rows[0], rows[1])
        return wrapper

    def _training_key(self, n_classes):
        """What the compiled training loop depends on (see _TrainingWorkspace)."""
        return (
            self.n_features_in_, self._hidden_sizes(), n_classes, float(self.dropout),
            int(self.batch_size), load_keras()["keras"].config.floatx(),
        )

    def _input_statistics(self, X):
        """Mean and scale of each input column (0 and 1 when not standardizing)."""
        if not self.standardize:
            return np.zeros(X.shape[1]), np.ones(X.shape[1])
        scale = X.std(axis=0, dtype=np.float64)
        return X.mean(axis=0, dtype=np.float64), np.where(scale > 0, scale, 1.0)

    def _early_stopping_split(self, X, y, sample_weight, rng):
        """Training and held-out rows, each as (inputs, labels, weights)."""
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
        return (
            (X[train], y[train], sample_weight[train]),
            (X[val], y[val], sample_weight[val]),
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train the network for one epoch over one chunk of rows.

        The first call builds the network and learns the input
        standardization from its chunk; later calls (also after ``fit``)
        continue training the same weights, with the optimizer's state.
        The epoch runs in the compiled training loop that ``fit`` uses (see
        Notes of the class), with the same seeds: rows are shuffled within
        the chunk, seeded by ``random_state`` and the epoch's number
        (``n_iter_``), so that the same chunks in the same order give the
        same network. With an integer ``random_state``, fitting ``k`` epochs
        and calling ``partial_fit`` on the same rows gives the network of
        ``k + 1`` epochs, and ``k`` calls on an unfitted classifier that of
        ``fit`` with ``epochs=k``.

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
            Non-negative per-row weights of the loss, as in ``fit``; rows
            of weight zero are dropped.

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
        X, y_encoded, weights = _weighted_rows(X, y_encoded.astype(np.int32), sample_weight)
        if first_call:
            mean, scale = self._input_statistics(X)
        else:
            mean, scale = self.input_mean_, self.input_scale_
        inputs = _standardize(X, mean, scale, np.float32)
        backend = load_keras()  # only now: every check above is cheap
        if first_call:
            # the seeds fit would draw, so that partial_fit's epochs are fit's
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            wrapper = self._new_wrapper(
                backend, (inputs, y_encoded), len(known), hidden, seed % _SEED_LIMIT
            )
            n_iter, losses = 0, []
        else:
            wrapper = self.model_
            seed = self.__dict__.get("_shuffle_seed")
            if seed is None:  # fitted by an older skquant
                seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            n_iter, losses = self.n_iter_, self.loss_curve_
        (loss,), _ = _train_network(
            wrapper.model_, self._training_key(len(known)), (inputs, y_encoded, weights),
            seed, n_iter, 1, verbose=self.verbose,
        )
        if first_call:
            self.classes_ = known
            self.input_mean_, self.input_scale_ = mean, scale
            self.validation_loss_curve_ = []
            self._model = wrapper
            self._network_params = {name: getattr(self, name) for name in _NETWORK_PARAMS}
        self.coefs_, self.intercepts_ = _dense_weights(wrapper.model_)
        self.loss_curve_ = [*losses, loss]
        self.n_iter_ = n_iter + 1
        self._shuffle_seed = seed

    def _standardized(self, X, dtype=np.float32):
        return _standardize(X, self.input_mean_, self.input_scale_, dtype)

    @property
    def model_(self):
        """The fitted scikeras wrapper, rebuilt on first use after unpickling."""
        model = self.__dict__.get("_model")
        if model is None:
            config = self.__dict__.get("_network_config")
            if config is None:
                raise AttributeError("model_ is set by fit.")
            model = self._rebuild(config, self.__dict__.get("_network_arrays", ()))
            self._model = model
            # held once, as the live model
            self.__dict__.pop("_network_arrays", None)
            self.__dict__.pop("_network_config", None)
        return model

    def _rebuild(self, config, arrays):
        """The scikeras wrapper from a pickle's plain state: the network is
        built as fit builds it, then every variable (weights, dropout's seed
        states, Adam's moments and step count) takes its saved value, so
        that ``partial_fit`` continues exactly where it stopped."""
        backend = load_keras()
        hidden = tuple(int(width) for width in config["hidden"])
        rows = (np.zeros((1, int(config["n_features"])), dtype=np.float32),
                np.zeros(1, dtype=np.int32))
        wrapper = self._new_wrapper(backend, rows, int(config["n_classes"]), hidden,
                                    int(config["seed"]), dropout=float(config["dropout"]),
                                    learning_rate=float(config["learning_rate"]))
        variables = _network_state(wrapper.model_)
        if len(variables) != len(arrays) or any(
                tuple(v.shape) != np.shape(a) for v, a in zip(variables, arrays)):
            raise ValueError(
                "This KerasMLPClassifier's saved network does not match the network its "
                f"configuration builds ({len(arrays)} saved arrays for {len(variables)} "
                "variables): the file was changed, or saved by another version. Fit it "
                "again.")
        for variable, value in zip(variables, arrays):
            variable.assign(value)
        return wrapper

    def __getstate__(self):
        # a copy: BaseEstimator.__getstate__ may return the live __dict__
        state = dict(super().__getstate__())
        model = state.pop("_model", None)
        if model is not None:
            # The network as plain arrays and a config, not a pickled Keras
            # object: unpickling needs no TensorFlow until the network is
            # used, and skops loads it trusting nothing but skquant's types.
            network = model.model_
            state["_network_arrays"] = [np.asarray(v.numpy()) for v in _network_state(network)]
            state["_network_config"] = {
                "n_features": int(self.n_features_in_), "n_classes": len(self.classes_),
                "hidden": [int(weights.shape[1]) for weights in self.coefs_[:-1]],
                "dropout": float(self._network_params["dropout"]),
                "learning_rate": float(self._network_params["learning_rate"]),
                "seed": int(self.__dict__.get("_wrapper_seed", 0)),
            }
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
        return kernels.dense_layers(
            self._standardized(X, dtype=np.float64),
            [weights.astype(np.float64) for weights in self.coefs_], self.intercepts_)

    def _export(self):
        """The runtime's ``mlp`` step: standardization, then each layer."""
        arrays = {"input_mean": self.input_mean_, "input_scale": self.input_scale_}
        for i, (weights, bias) in enumerate(zip(self.coefs_, self.intercepts_)):
            arrays[f"weights{i}"] = np.asarray(weights).T  # rows: output units
            arrays[f"bias{i}"] = bias
        return "mlp", {"n_layers": len(self.coefs_)}, arrays, {
            f"weights{i}" for i in range(len(self.coefs_))}

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


register_export(KerasMLPClassifier)
