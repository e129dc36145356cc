"""KerasMLPClassifier: tags, labels, probabilities, determinism, persistence."""

import hashlib
import io
import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skquant import KerasMLPClassifier

FAST = dict(epochs=8, batch_size=16, learning_rate=0.01, random_state=0)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_reports_classifier_tags():
    clf = KerasMLPClassifier()
    assert is_classifier(clf)
    # so GridSearchCV stratifies its folds
    from sklearn.model_selection import check_cv

    assert isinstance(check_cv(3, np.array([0, 1] * 5), classifier=is_classifier(clf)), StratifiedKFold)


def test_default_network_is_the_design(iris):
    X, y = iris
    clf = KerasMLPClassifier(epochs=1, random_state=0).fit(X, y)
    layers = clf.model_.model_.layers
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds == ["Dense", "Dropout", "Dense"]
    assert layers[0].units == 64 and layers[1].rate == 0.2 and layers[2].units == 3
    assert [w.shape for w in clf.coefs_] == [(4, 64), (64, 3)]
    assert clf.model_.model_.loss == "sparse_categorical_crossentropy"


def test_numpy_prediction_matches_the_keras_network(iris):
    X, y = iris
    clf = KerasMLPClassifier(**FAST).fit(X, y)
    keras_proba = clf.model_.model_.predict(clf._standardized(X), verbose=0)
    np.testing.assert_allclose(clf.predict_proba(X), keras_proba, atol=1e-5)


def test_loaded_model_predicts_without_tensorflow(iris, tmp_path):
    X, y = iris
    path = tmp_path / "clf.joblib"
    joblib.dump(KerasMLPClassifier(**FAST).fit(X, y), path)
    script = (
        "import sys, joblib, numpy as np\n"
        f"clf = joblib.load({str(path)!r})\n"
        "clf.predict(np.ones((2, 4)))\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_hidden_layer_sizes_int_or_tuple(iris):
    X, y = iris
    assert [w.shape[1] for w in KerasMLPClassifier(8, epochs=1).fit(X, y).coefs_] == [8, 3]
    assert [w.shape[1] for w in KerasMLPClassifier((8, 5), epochs=1).fit(X, y).coefs_] == [8, 5, 3]


def test_learns_iris(iris):
    X, y = iris
    clf = KerasMLPClassifier(epochs=40, batch_size=16, learning_rate=0.01, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


def test_two_classes_give_two_probability_columns(iris):
    X, y = iris
    mask = y < 2
    clf = KerasMLPClassifier(**FAST).fit(X[mask], y[mask])
    proba = clf.predict_proba(X[mask])
    assert proba.shape == (mask.sum(), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_string_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = KerasMLPClassifier(**FAST).fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(clf.predict(X)) <= set(clf.classes_)


def _weights_digest(clf):
    return hashlib.sha256(b"".join(
        np.ascontiguousarray(w).tobytes() for w in clf.coefs_ + clf.intercepts_
    )).hexdigest()


DIGEST_SCRIPT = (
    "import hashlib, numpy as np\n"
    "from sklearn.datasets import load_iris\n"
    "from skquant import KerasMLPClassifier\n"
    "X, y = load_iris(return_X_y=True)\n"
    "clf = KerasMLPClassifier(**{params!r}).fit(X, y)\n"
    "print(hashlib.sha256(b''.join(np.ascontiguousarray(w).tobytes()\n"
    "      for w in clf.coefs_ + clf.intercepts_)).hexdigest())\n"
)


def test_same_random_state_same_network_in_one_process(iris):
    X, y = iris
    a = KerasMLPClassifier(**FAST).fit(X, y)
    b = KerasMLPClassifier(**FAST).fit(X, y)  # reuses a's compiled loop
    assert _weights_digest(a) == _weights_digest(b)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # the seed matters: another one gives another network
    other = KerasMLPClassifier(**{**FAST, "random_state": 1}).fit(X, y)
    assert _weights_digest(other) != _weights_digest(a)


def test_same_random_state_same_network_in_fresh_processes(iris, tmp_path):
    X, y = iris
    script = DIGEST_SCRIPT.format(params=FAST)
    # TensorFlow's own log level unset: skquant keeps its start-up lines quiet
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    # two fresh interpreters at once: each traces its own training loop
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
            for _ in range(2)]
    results = []
    try:
        for run in runs:
            results.append(run.communicate(timeout=300))
    finally:
        for run in runs:
            run.kill()
    for run, (out, err) in zip(runs, results):
        assert run.returncode == 0, err
        assert err.strip() == ""  # no TensorFlow log lines on the terminal
    here = _weights_digest(KerasMLPClassifier(**FAST).fit(X, y))
    assert [out.strip() for out, _ in results] == [here, here]


def test_early_stopping_stops_and_keeps_best(iris, monkeypatch):
    X, y = iris
    held_out = {}
    split = KerasMLPClassifier._early_stopping_split

    def spy(self, *args):  # the rows early stopping validates on
        result = split(self, *args)
        held_out["X"], held_out["y"] = result[1][:2]
        return result

    monkeypatch.setattr(KerasMLPClassifier, "_early_stopping_split", spy)
    patience = 3
    clf = KerasMLPClassifier(
        epochs=200, early_stopping=True, n_iter_no_change=patience, learning_rate=0.05,
        random_state=0,
    ).fit(X, y)
    curve = clf.validation_loss_curve_
    # it stopped: the best epoch is `patience` epochs before the last
    assert clf.n_iter_ < 200 and len(curve) == clf.n_iter_
    assert int(np.argmin(curve)) == clf.n_iter_ - 1 - patience
    assert min(curve) < curve[-1]
    # ... and the weights kept are that epoch's: their held-out loss is the minimum
    logits = held_out["X"] @ clf.coefs_[0] + clf.intercepts_[0]
    logits = np.maximum(logits, 0) @ clf.coefs_[1] + clf.intercepts_[1]
    logits -= logits.max(axis=1, keepdims=True)
    log_proba = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = -np.mean(log_proba[np.arange(len(held_out["y"])), held_out["y"]])
    assert loss == pytest.approx(min(curve), rel=1e-4)


def test_sample_weight_changes_the_fit(iris):
    X, y = iris
    weights = np.where(y == 0, 10.0, 1.0)
    a = KerasMLPClassifier(**FAST).fit(X, y).predict_proba(X)
    b = KerasMLPClassifier(**FAST).fit(X, y, sample_weight=weights).predict_proba(X)
    assert not np.allclose(a, b)


def test_zero_weights_act_like_dropped_rows(iris):
    X, y = iris
    rng = np.random.RandomState(0)
    dropped = rng.rand(len(y)) < 0.3
    weights = np.where(dropped, 0.0, rng.uniform(0.5, 2.0, len(y)))
    weighted = KerasMLPClassifier(**FAST).fit(X, y, sample_weight=weights)
    # rows of weight zero have no influence: any features and labels there
    # give the same network, bit for bit ...
    X_changed, y_changed = X.copy(), y.copy()
    X_changed[dropped] = rng.normal(scale=100.0, size=(dropped.sum(), X.shape[1]))
    y_changed[dropped] = (y[dropped] + 1) % 3
    changed = KerasMLPClassifier(**FAST).fit(X_changed, y_changed, sample_weight=weights)
    assert _weights_digest(changed) == _weights_digest(weighted)
    # ... that of a fit without those rows
    without = KerasMLPClassifier(**FAST).fit(X[~dropped], y[~dropped],
                                             sample_weight=weights[~dropped])
    assert _weights_digest(without) == _weights_digest(weighted)
    np.testing.assert_array_equal(without.input_mean_, weighted.input_mean_)


def test_sample_weight_weighs_the_loss_as_keras_does(iris):
    X, y = iris
    weights = np.random.RandomState(0).uniform(0.1, 3.0, len(y))
    # one batch of every row, no dropout, a step too small to move the
    # weights: the first epoch's loss is the initial network's loss
    clf = KerasMLPClassifier(epochs=1, batch_size=len(y), dropout=0.0, learning_rate=1e-12,
                             random_state=0).fit(X, y, sample_weight=weights)
    log_proba = clf.predict_log_proba(X)
    losses = -log_proba[np.arange(len(y)), y]
    # Keras's "sum_over_batch_size": weighted losses summed over the rows'
    # number, not over the weights' sum
    assert clf.loss_curve_[0] == pytest.approx(np.sum(weights * losses) / len(y), rel=1e-5)
    assert clf.loss_curve_[0] != pytest.approx(np.average(losses, weights=weights), rel=1e-3)


def test_clone_and_joblib_round_trip(iris):
    X, y = iris
    clf = KerasMLPClassifier(**FAST).fit(X, y)
    assert clone(clf).get_params() == clf.get_params()
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_partial_fit_after_loading_continues_the_same_training(iris):
    X, y = iris
    buffer = io.BytesIO()
    joblib.dump(KerasMLPClassifier(**{**FAST, "epochs": 2}).fit(X, y), buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer).partial_fit(X, y)
    # weights, Adam's state and dropout's seeds all travelled
    assert _weights_digest(loaded) == _weights_digest(
        KerasMLPClassifier(**{**FAST, "epochs": 3}).fit(X, y))


def test_pickling_leaves_the_fitted_model_in_place(iris):
    X, y = iris
    clf = KerasMLPClassifier(**FAST).fit(X, y)
    network = clf.model_
    joblib.dump(clf, io.BytesIO())
    assert clf.model_ is network


def test_dataframe_input_gives_no_feature_name_warning(iris):
    import warnings

    pd = pytest.importorskip("pandas")
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = KerasMLPClassifier(**FAST).fit(frame, y)
        clf.predict(frame)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"]


def test_log_proba_is_finite_and_consistent(iris):
    X, y = iris
    clf = KerasMLPClassifier(**FAST).fit(X, y)
    log_proba = clf.predict_log_proba(X * 1000)  # saturated softmax
    assert np.isfinite(log_proba).all()
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X), rtol=1e-10)


def test_early_stopping_with_fewer_validation_rows_than_classes(iris):
    X, y = iris
    clf = KerasMLPClassifier(epochs=3, early_stopping=True, validation_fraction=0.01, random_state=0)
    clf.fit(X, y)
    # two validation rows for three classes: the split cannot stratify, and
    # the three epochs all run (patience 10 cannot stop them)
    assert clf.n_iter_ == 3 and len(clf.validation_loss_curve_) == 3
    assert np.isfinite(clf.validation_loss_curve_).all()
    assert clf.predict(X).shape == (150,)


def test_classifier_only_meta_estimators_accept_it(iris):
    X, y = iris
    calibrated = CalibratedClassifierCV(KerasMLPClassifier(**FAST), cv=2).fit(X, y)
    assert calibrated.predict_proba(X).shape == (150, 3)


def test_grid_search_over_its_parameters(iris):
    X, y = iris
    search = GridSearchCV(
        KerasMLPClassifier(**FAST), {"hidden_layer_sizes": [4, (8,)]}, cv=2
    ).fit(X, y)
    # each candidate trained the network it names, and the refit is the best one's
    assert [p["hidden_layer_sizes"] for p in search.cv_results_["params"]] == [4, (8,)]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_params_["hidden_layer_sizes"]
    width = best if isinstance(best, int) else best[0]
    assert search.best_estimator_.coefs_[0].shape == (4, width)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_index_ == int(np.argmax(scores))


def test_predictions_of_a_row_do_not_depend_on_the_batch(iris):
    X, y = iris
    clf = KerasMLPClassifier(**FAST).fit(X, y)
    whole = clf.predict_proba(X)
    one_by_one = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(len(X))])
    reversed_order = clf.predict_proba(X[::-1])[::-1]
    np.testing.assert_allclose(one_by_one, whole, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(reversed_order, whole, rtol=1e-6, atol=1e-9)
    assert (clf.predict(X[:1]) == clf.predict(X)[:1]).all()


def test_partial_fit_continues_fit_with_the_optimizer_state(iris):
    X, y = iris
    fitted = KerasMLPClassifier(**{**FAST, "epochs": 2}).fit(X, y)
    fitted.partial_fit(X, y)
    # Adam's step count and moments, and the dropout seeds, carried on: the
    # same network as three epochs of fit
    three = KerasMLPClassifier(**{**FAST, "epochs": 3}).fit(X, y)
    assert _weights_digest(fitted) == _weights_digest(three)
    assert fitted.n_iter_ == 3 and fitted.loss_curve_ == three.loss_curve_
    steps = 3 * -(-len(y) // FAST["batch_size"])
    assert int(fitted.model_.model_.optimizer.iterations.numpy()) == steps
    # and partial_fit alone runs fit's epochs
    streamed = KerasMLPClassifier(**{**FAST, "epochs": 3})
    for _ in range(3):
        streamed.partial_fit(X, y, classes=np.unique(y))
    assert _weights_digest(streamed) == _weights_digest(three)


def test_fits_of_one_shape_share_one_compiled_loop(iris):
    from skquant.neural import _training

    X, y = iris
    params = {**FAST, "hidden_layer_sizes": (7,), "batch_size": 13}
    first = KerasMLPClassifier(**params).fit(X, y)
    key = first._training_key(n_classes=3)
    (workspace,) = _training._WORKSPACES[key]
    # other rows, counts, seeds, learning rates and streams: no new trace
    KerasMLPClassifier(**{**params, "random_state": 3, "learning_rate": 0.1}).fit(X[:90], y[:90])
    stream = KerasMLPClassifier(**params)
    stream.partial_fit(X[::2], y[::2], classes=[0, 1, 2])
    stream.partial_fit(X[1::2], y[1::2])
    assert _training._WORKSPACES[key] == [workspace]
    assert workspace.train.experimental_get_tracing_count() == 1
    # a fit while that loop is busy (another thread's, say) traces its own,
    # and trains the same network
    with _training._training_workspace(key) as busy:
        assert busy is workspace
        second = KerasMLPClassifier(**params).fit(X, y)
    assert len(_training._WORKSPACES[key]) == 2
    assert _weights_digest(second) == _weights_digest(first)


def test_fitting_leaves_tensorflow_kernel_cache_and_global_seeds_alone(iris, monkeypatch):
    # tf.random.set_seed clears TensorFlow's kernel cache, which made every
    # later fit re-instantiate its compiled loop (0.25 s a fit); a fit must
    # not call it, nor touch numpy's global random state
    import tensorflow as tf

    X, y = iris
    KerasMLPClassifier(**FAST).fit(X, y)  # TensorFlow loaded, loop traced
    calls = []
    monkeypatch.setattr(tf.random, "set_seed", lambda seed: calls.append(seed))
    np.random.seed(7)
    expected = np.random.get_state()[1].copy()
    np.random.seed(7)
    KerasMLPClassifier(**FAST).fit(X, y)
    clf = KerasMLPClassifier(**FAST)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X, y)
    assert calls == []
    np.testing.assert_array_equal(np.random.get_state()[1], expected)


def test_verbose_prints_each_epoch(iris, capsys):
    X, y = iris
    clf = KerasMLPClassifier(**{**FAST, "epochs": 3, "verbose": 1}).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Iteration {i + 1}, loss = {loss:.8f}"
                     for i, loss in enumerate(clf.loss_curve_)]
    # and the network is that of a quiet fit
    assert _weights_digest(clf) == _weights_digest(
        KerasMLPClassifier(**{**FAST, "epochs": 3}).fit(X, y))
    KerasMLPClassifier(**{**FAST, "epochs": 2, "verbose": 1, "early_stopping": True}).fit(X, y)
    assert "validation loss = " in capsys.readouterr().out


def test_bad_sample_weight_is_refused_before_training(iris):
    X, y = iris
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        KerasMLPClassifier(epochs=1).fit(X, y, sample_weight=np.where(y == 0, -1.0, 1.0))
    with pytest.raises(ValueError, match="at least one non-zero"):
        KerasMLPClassifier(epochs=1).fit(X, y, sample_weight=np.zeros(len(y)))


def test_diverging_training_is_an_error(iris):
    X, y = iris
    with pytest.raises(ValueError, match="diverged.*Lower learning_rate"):
        KerasMLPClassifier(epochs=2, learning_rate=1e38, random_state=0).fit(X, y)


def test_accuracy_on_digits_matches_the_keras_fit_path():
    """The compiled loop learns as well as Keras's own fit did (through scikeras)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from skquant.neural._backend import _build_mlp, load_keras

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    mean, scale = X_train.mean(axis=0), X_train.std(axis=0)
    scale[scale == 0] = 1.0
    X_train, X_test = (X_train - mean) / scale, (X_test - mean) / scale
    epochs, seeds = 5, range(3)
    ours = [KerasMLPClassifier(epochs=epochs, random_state=seed).fit(X_train, y_train)
            .score(X_test, y_test) for seed in seeds]
    # the previous path: scikeras's KerasClassifier.fit, i.e. Keras's Model.fit
    keras_fit = []
    for seed in seeds:
        wrapper = load_keras()["KerasClassifier"](
            model=_build_mlp, model__hidden_layer_sizes=(64,), model__dropout=0.2,
            model__learning_rate=0.002, model__seed=seed, epochs=epochs, batch_size=32,
            random_state=seed, verbose=0,
        ).fit(X_train.astype(np.float32), y_train)
        keras_fit.append(wrapper.score(X_test.astype(np.float32), y_test))
    assert abs(np.mean(ours) - np.mean(keras_fit)) <= 0.01, (ours, keras_fit)
