"""The one place that imports Keras, TensorFlow and scikeras, lazily.

Importing this module is cheap; :func:`load_keras` imports them on first
use (the first fit, or first access to ``model_`` of an unpickled model),
with TensorFlow's start-up log lines kept off the terminal and its thread
pools sized for the process (see :func:`tensorflow_thread_cap`). The
classifier (``_keras.py``) and its compiled training loop
(``_training.py``) get TensorFlow from here.
"""

import contextlib
import multiprocessing
import os
import sys
import warnings

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
        ``{"keras": module, "tensorflow": module, "KerasClassifier": class,
        "BaseWrapper": class}``.
    """
    if not _BACKEND:
        threads = tensorflow_thread_cap()
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        with _quiet_stderr():
            import keras
            import tensorflow
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
            tensorflow=tensorflow,
            KerasClassifier=KerasClassifier,
            BaseWrapper=BaseWrapper,
        )
    return _BACKEND


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
