"""KerasMLPClassifier: tags, labels, probabilities, determinism, persistence."""

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


def test_same_random_state_same_predictions(iris):
    X, y = iris
    a = KerasMLPClassifier(**FAST).fit(X, y).predict_proba(X)
    b = KerasMLPClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_early_stopping_stops_and_keeps_best(iris, monkeypatch):
    X, y = iris
    held_out = {}
    split = KerasMLPClassifier._early_stopping_split

    def spy(self, *args):  # the rows early stopping validates on
        result = split(self, *args)
        held_out["X"], held_out["y"] = result[2]["validation_data"][:2]
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


def test_clone_and_joblib_round_trip(iris):
    X, y = iris
    clf = KerasMLPClassifier(**FAST).fit(X, y)
    assert clone(clf).get_params() == clf.get_params()
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


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


def test_tensorflow_logs_stay_off_the_terminal(tmp_path):
    script = (
        "import numpy as np\n"
        "from skquant import KerasMLPClassifier\n"
        "X = np.random.RandomState(0).normal(size=(40, 3)); y = np.arange(40) % 2\n"
        "KerasMLPClassifier(epochs=2, random_state=0).fit(X, y).predict(X)\n"
        "print('done')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert result.stderr.strip() == ""
