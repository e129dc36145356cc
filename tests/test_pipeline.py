"""The Pipeline + GridSearchCV + joblib path."""

import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from skquant import Cleaner, ColumnProjection, KerasMLPClassifier, OutlierFilter
from skquant import GraphProjection, TreeProjection, make_quant_pipeline, projection_grid

FAST = {"classify__epochs": 4, "classify__batch_size": 64, "classify__learning_rate": 0.01}


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X[:600], y[:600], test_size=0.25, stratify=y[:600], random_state=0)


def test_make_quant_pipeline_steps():
    pipe = make_quant_pipeline("column", 16, method="random", random_state=3)
    assert [name for name, _ in pipe.steps] == ["clean", "project", "classify"]
    assert isinstance(pipe.named_steps["clean"], Cleaner)
    project = pipe.named_steps["project"]
    assert isinstance(project, ColumnProjection)
    assert (project.n_components, project.method, project.random_state) == (16, "random", 3)
    assert isinstance(pipe.named_steps["classify"], KerasMLPClassifier)
    assert pipe.named_steps["classify"].random_state == 3


def test_the_tree_family_is_registered():
    pipe = make_quant_pipeline("tree", 24, method="random-trees", random_state=5)
    project = pipe.named_steps["project"]
    assert isinstance(project, TreeProjection)
    assert (project.n_components, project.method, project.random_state) == (
        24, "random-trees", 5)
    assert make_quant_pipeline("tree").named_steps["project"].method == "tsvq"
    grid = projection_grid(["tree", "column:pca"], dims=(8, 128), n_features=64)
    assert [(g["project"][0].method, g["project__n_components"]) for g in grid] == [
        ("tsvq", [8, 128]), ("tsvq-local", [8, 128]), ("random-trees", [8, 128]),
        ("pca", [8])]


def test_the_graph_family_is_registered():
    pipe = make_quant_pipeline("graph", 12, method="lpp", random_state=2)
    project = pipe.named_steps["project"]
    assert isinstance(project, GraphProjection)
    assert (project.n_components, project.method, project.random_state) == (12, "lpp", 2)
    grid = projection_grid(["graph"], dims=(8, 128), n_features=64)
    # spectral is limited by the landmarks (rows), lpp by the columns
    assert [(g["project"][0].method, g["project__n_components"]) for g in grid] == [
        ("spectral", [8, 128]), ("lpp", [8])]


def test_make_quant_pipeline_params_and_outlier_filter():
    pipe = make_quant_pipeline(outlier_filter=True, classify__estimator__epochs=7)
    assert isinstance(pipe.named_steps["classify"], OutlierFilter)
    assert pipe.named_steps["classify"].estimator.epochs == 7


def test_make_quant_pipeline_rejects_unknown_family_and_method():
    with pytest.raises(ValueError, match="Unknown projection family 'spiral'"):
        make_quant_pipeline("spiral")
    with pytest.raises(ValueError, match="Unknown method 'svd' for the 'column' family"):
        make_quant_pipeline("column", method="svd")


def test_projection_grid_families_and_dims():
    grid = projection_grid(dims=(32, 8, 16))
    assert [g["project"][0].method for g in grid] == ["pca", "qr", "random"]
    assert all(g["project__n_components"] == [8, 16, 32] for g in grid)
    limited = projection_grid(["column:qr"], dims=(8, 100), n_features=50)
    assert [g["project__n_components"] for g in limited] == [[8]]
    with pytest.raises(ValueError, match="No dimension"):
        projection_grid(["column"], dims=(100,), n_features=50)
    with pytest.raises(ValueError, match="Unknown projection family"):
        projection_grid(["tree-of-life"])


def test_grid_search_and_joblib_round_trip_in_a_fresh_process(digits_split, tmp_path):
    X_train, X_test, y_train, y_test = digits_split
    pipe = make_quant_pipeline(random_state=0, **FAST)
    grid = projection_grid(["column:pca", "tree", "graph:spectral"], dims=(8, 16),
                           n_features=64)
    search = GridSearchCV(pipe, grid, cv=2).fit(X_train, y_train)
    assert len(search.cv_results_["params"]) == 10
    assert search.best_estimator_.score(X_test, y_test) > 0.5

    paths = {"best": tmp_path / "best.joblib", "pipe": tmp_path / "pipe.joblib"}
    fitted = make_quant_pipeline("tree", 8, random_state=0, **FAST).fit(X_train, y_train)
    joblib.dump(search.best_estimator_, paths["best"])
    joblib.dump(fitted, paths["pipe"])
    np.save(tmp_path / "X.npy", X_test)
    script = (
        "import joblib, numpy as np, sys\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        f"for name in ('best', 'pipe'):\n"
        f"    model = joblib.load({str(tmp_path)!r} + '/' + name + '.joblib')\n"
        f"    np.save({str(tmp_path)!r} + '/' + name + '_proba.npy', model.predict_proba(X))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(
        np.load(tmp_path / "best_proba.npy"), search.best_estimator_.predict_proba(X_test)
    )
    np.testing.assert_array_equal(np.load(tmp_path / "pipe_proba.npy"), fitted.predict_proba(X_test))


@pytest.mark.parametrize("family, method", [("column", "random"), ("tree", "tsvq"),
                                            ("tree", "random-trees"), ("graph", "spectral")])
def test_pipeline_is_deterministic(digits_split, family, method):
    X_train, X_test, y_train, _ = digits_split
    a = make_quant_pipeline(family, 8, method=method, random_state=1, **FAST)
    b = make_quant_pipeline(family, 8, method=method, random_state=1, **FAST)
    np.testing.assert_array_equal(
        a.fit(X_train, y_train).predict_proba(X_test),
        b.fit(X_train, y_train).predict_proba(X_test),
    )


def test_pipeline_with_missing_values_and_outlier_filter(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    X_train = X_train.copy()
    X_train[::5, 10] = np.nan
    X_train[::7, 20] = np.inf
    pipe = make_quant_pipeline("column", 12, outlier_filter=True, random_state=0,
                               **{k.replace("classify__", "classify__estimator__"): v
                                  for k, v in FAST.items()})
    pipe.fit(X_train, y_train)
    assert pipe.named_steps["classify"].n_outliers_ > 0
    assert pipe.predict(X_test).shape == y_test.shape
