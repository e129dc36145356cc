"""The compiled training loop of :class:`KerasMLPClassifier`.

Why skquant drives Keras itself here rather than through ``Model.fit``
(scikeras's fit): for a network this small, ``fit``'s per-batch Python and
executor overhead costs many times the arithmetic. One ``tf.function`` runs
every epoch and batch instead -- in-graph, seeded shuffling, then Keras's
own train step (the Keras model under ``GradientTape``, its compiled loss,
its Adam) -- and is traced once per network shape and process (see
:class:`_TrainingWorkspace`). TensorFlow comes from :func:`load_keras`.
"""

import collections
import contextlib
import threading

import numpy as np

from ._backend import _build_mlp, load_keras

# compiled training loops, reused across fits: shape key -> idle workspaces
_WORKSPACES = collections.OrderedDict()
_WORKSPACES_LOCK = threading.Lock()
# network shapes whose compiled loops a process keeps (least recent dropped)
_MAX_WORKSPACE_SHAPES = 32
# held-out rows evaluated per call of the compiled loss
_VALIDATION_ROWS = 2**16


def _seed_states(network):
    """The network's variables that are not weights: dropout's seed states."""
    weights = {id(weight) for weight in network.weights}
    return [v for v in network.variables if id(v) not in weights]


def _network_state(network):
    """A Keras network's variables (weights, dropout seeds) and its Adam's."""
    optimizer = network.optimizer
    if not optimizer.built:  # a new network: Adam's moments start at zero
        optimizer.build(network.trainable_variables)
    return list(network.variables) + list(optimizer.variables)


class _TrainingWorkspace:
    """A template network of one shape, its Adam, and their compiled training loop.

    Tracing a training loop into a TensorFlow graph and optimizing that graph
    takes about a second, many times the cost of training this small network
    on a few thousand rows. A ``tf.function`` that closes over one network's
    variables would be traced again for every fit. So the loop is traced once
    for a template network built by :func:`_build_mlp`, with its own Adam;
    each fit copies its network's state (weights, dropout seed states,
    Adam's step, learning rate and moments) in with :meth:`load`, runs the
    loop, and copies the result back with :meth:`store`. The copies are a few
    kilobytes. A workspace serves one fit at a time (see
    :func:`_training_workspace`).
    """

    def __init__(self, n_features, hidden_layer_sizes, n_classes, dropout, batch_size,
                 floatx):
        # (floatx only keys the cache: like the fit's, the template is built
        # in Keras's current float type)
        tf = load_keras()["tensorflow"]
        meta = {"n_features_in_": n_features, "n_classes_": n_classes}
        # placeholder weights and learning rate: every fit loads its own
        self.network = _build_mlp(meta, hidden_layer_sizes, dropout, 1e-3, seed=0)
        self.state = _network_state(self.network)
        rows = [
            tf.TensorSpec([None, n_features], tf.float32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.float32),
        ]
        self.train = tf.function(
            self._training_loop(tf, batch_size), autograph=False,
            input_signature=rows + [tf.TensorSpec([], tf.int64)] * 2
            + [tf.TensorSpec([], tf.int32)],
        )
        self.weighted_loss_sum = tf.function(
            self._loss_sum(tf), autograph=False, input_signature=rows
        )

    def _training_loop(self, tf, batch_size):
        network, optimizer = self.network, self.network.optimizer
        weights = network.trainable_variables

        def train_batch(X, y, sample_weight, order, start):
            # Keras's own train step: forward pass, compiled loss, Adam
            rows = order[start:start + batch_size]  # the last batch may be short
            X_batch = tf.gather(X, rows)
            with tf.GradientTape() as tape:
                y_pred = network(X_batch, training=True)
                loss = network.compute_loss(
                    x=X_batch, y=tf.gather(y, rows), y_pred=y_pred,
                    sample_weight=tf.gather(sample_weight, rows), training=True,
                )
                scaled = optimizer.scale_loss(loss)
            optimizer.apply(tape.gradient(scaled, weights), weights)
            # Keras reports an epoch's loss as the batch losses' mean,
            # weighted by the batches' sizes
            return tf.cast(loss, tf.float32) * tf.cast(tf.shape(rows)[0], tf.float32)

        def train(X, y, sample_weight, seed, first_epoch, n_epochs):
            """Train ``n_epochs`` epochs; the training loss of each."""
            n_rows = tf.shape(X)[0]

            def epoch(index, losses):
                # a fresh order every epoch, a function of (seed, epoch) only
                epoch_seed = tf.stack([seed, first_epoch + tf.cast(index, tf.int64)])
                order = tf.random.experimental.stateless_shuffle(
                    tf.range(n_rows), seed=epoch_seed
                )
                _, total = tf.while_loop(
                    lambda start, total: start < n_rows,
                    lambda start, total: (
                        start + batch_size,
                        total + train_batch(X, y, sample_weight, order, start),
                    ),
                    (tf.constant(0), tf.constant(0.0)),
                )
                return index + 1, losses.write(index, total / tf.cast(n_rows, tf.float32))

            _, losses = tf.while_loop(
                lambda index, losses: index < n_epochs,
                epoch,
                (tf.constant(0), tf.TensorArray(tf.float32, size=n_epochs)),
            )
            return losses.stack()

        return train

    def _loss_sum(self, tf):
        network = self.network

        def loss_sum(X, y, sample_weight):
            """Keras's evaluation loss of these rows, times their number."""
            y_pred = network(X, training=False)
            loss = network.compute_loss(
                x=X, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
            )
            return tf.cast(loss, tf.float32) * tf.cast(tf.shape(X)[0], tf.float32)

        return loss_sum

    def load(self, network):
        """Copy a network's state (weights, seeds, Adam's) into the template."""
        source = _network_state(network)
        if [tuple(v.shape) for v in source] != [tuple(v.shape) for v in self.state]:
            raise RuntimeError(
                "The network does not match its training template; this is a bug "
                "in skquant, please report it."
            )
        for target, value in zip(self.state, source):
            target.assign(value.value)

    def store(self, network):
        """Copy the template's state back into a network."""
        for target, value in zip(_network_state(network), self.state):
            target.assign(value.value)

    def validation_loss(self, X, y, sample_weight):
        """Keras's loss on held-out rows: weighted losses summed, over their number."""
        n_rows = int(X.shape[0])
        total = sum(
            float(self.weighted_loss_sum(
                X[start:start + _VALIDATION_ROWS], y[start:start + _VALIDATION_ROWS],
                sample_weight[start:start + _VALIDATION_ROWS],
            ))
            for start in range(0, n_rows, _VALIDATION_ROWS)
        )
        return total / n_rows


@contextlib.contextmanager
def _training_workspace(key):
    """An idle workspace for networks of shape ``key``, traced on first need.

    Concurrent fits of one shape (threads of a Dask worker, say) each get
    their own workspace; idle ones are kept for the next fit of that shape.
    """
    with _WORKSPACES_LOCK:
        idle = _WORKSPACES.get(key)
        workspace = idle.pop() if idle else None
    if workspace is None:
        workspace = _TrainingWorkspace(*key)
    try:
        yield workspace
    finally:
        # every fit loads the whole state, so a workspace left mid-loop by
        # an error is as good as any
        with _WORKSPACES_LOCK:
            _WORKSPACES.setdefault(key, []).append(workspace)
            _WORKSPACES.move_to_end(key)
            while len(_WORKSPACES) > _MAX_WORKSPACE_SHAPES:
                _WORKSPACES.popitem(last=False)


def _train_network(network, key, rows, seed, first_epoch, epochs, *,
                   validation=None, patience=None, verbose=0):
    """Train a Keras network built by :func:`_build_mlp` in the compiled loop.

    Parameters
    ----------
    network : keras.Model
        The network; its weights and Adam's state are updated in place once
        training has succeeded.
    key : tuple
        ``(n_features, hidden_layer_sizes, n_classes, dropout, batch_size,
        floatx)``: the network's shape, and Keras's float type it was built in.
    rows : tuple of ndarray
        Training inputs (float32), encoded labels (int32), weights (float32).
    seed : int
        Seeds the shuffle of every epoch, with the epoch's number.
    first_epoch : int
        Number of the first epoch (epochs run by earlier calls).
    epochs : int
        Most epochs to run.
    validation : tuple of ndarray, default=None
        Held-out rows ``rows``-style, for early stopping with ``patience``.
    patience : int, default=None
        Epochs without a lower validation loss before stopping.
    verbose : int, default=0
        Print each epoch's loss.

    Returns
    -------
    losses, validation_losses : list of float
        The training (and validation) loss of each epoch run.
    """
    tf = load_keras()["tensorflow"]
    inputs, labels, weights = (tf.constant(array) for array in rows)
    seed = tf.constant(seed, tf.int64)
    losses, validation_losses, best = [], [], None
    with _training_workspace(key) as workspace:
        workspace.load(network)
        if validation is None and not verbose:
            # every epoch in one call
            losses = workspace.train(
                inputs, labels, weights, seed, tf.constant(first_epoch, tf.int64),
                tf.constant(epochs, tf.int32),
            ).numpy().tolist()
        else:
            # an epoch per call, to report it and to stop early as Keras's
            # EarlyStopping(restore_best_weights=True) does
            if validation is not None:
                validation = tuple(tf.constant(array) for array in validation)
            best_loss, wait = np.inf, 0
            for epoch in range(epochs):
                loss = float(workspace.train(
                    inputs, labels, weights, seed, tf.constant(first_epoch + epoch, tf.int64),
                    tf.constant(1, tf.int32),
                )[0])
                losses.append(loss)
                message = f"Iteration {first_epoch + epoch + 1}, loss = {loss:.8f}"
                stop = False
                if validation is not None:
                    validation_loss = workspace.validation_loss(*validation)
                    validation_losses.append(validation_loss)
                    message += f", validation loss = {validation_loss:.8f}"
                    if best is None:
                        best = workspace.network.get_weights()
                    wait += 1
                    if validation_loss < best_loss:
                        best_loss, best, wait = validation_loss, workspace.network.get_weights(), 0
                    stop = wait >= patience and epoch > 0
                if verbose:
                    print(message)
                if stop:
                    if verbose:
                        print(f"Validation loss did not improve for {patience} epochs; "
                              f"stopping and keeping epoch {first_epoch + epoch + 1 - wait}'s "
                              "weights.")
                    break
        if not all(np.isfinite(w.numpy()).all() for w in workspace.network.trainable_variables):
            raise ValueError(
                f"Training diverged: the network's weights became infinite or NaN "
                f"(losses of the last epochs: {losses[-3:]}). Lower learning_rate."
            )
        workspace.store(network)
    if best is not None:
        network.set_weights(best)
    return losses, validation_losses
