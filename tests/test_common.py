"""scikit-learn's estimator checks over every public skquant estimator.

Estimators are discovered by walking the package, so a new estimator is
checked without anyone adding it here. Each needs a fast instance below (or
works with its defaults); the few checks expected to fail are listed with
the reason.
"""

import email.message
import importlib
import inspect
import os
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.datasets import make_classification
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.utils import estimator_html_repr
from sklearn.utils.estimator_checks import parametrize_with_checks

import skquant
from skquant import _doc_link
from skquant.pipeline import _FAMILIES


def discover_estimators():
    """Every public estimator class defined in the skquant package."""
    found = {}
    for module_info in pkgutil.walk_packages(skquant.__path__, "skquant."):
        if any(part.startswith("_") for part in module_info.name.split(".")[1:-1]):
            continue
        module = importlib.import_module(module_info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("skquant.")
                and not name.startswith(("_", "Base"))
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return [found[name] for name in sorted(found)]


# Small settings for each projection family's checks (the checks' data
# have few rows and columns); every registered method gets an instance.
FAST_PROJECTION_PARAMS = {
    "column": {"n_components": 1},
    "tree": {"n_components": 2},
    "graph": {"n_components": 2, "n_neighbors": 3},
    "union": {"n_components": 2, "n_neighbors": 3},
}


def _projection_instances(methods, params):
    return lambda cls: [cls(method=method, random_state=0, **params) for method in methods]


# Small, fast settings for estimators whose defaults are too slow or need
# arguments; several instances where a parameter selects an algorithm.
FAST_INSTANCES = {
    **{name: _projection_instances(methods, FAST_PROJECTION_PARAMS.get(family, {}))
       for family, (_, name, methods) in _FAMILIES.items()},
    # a small forest: the default 100 trees cost most of each check's time
    "OutlierFilter": lambda cls: [
        cls(LogisticRegression(), detector=IsolationForest(n_estimators=10, random_state=0),
            random_state=0)
    ],
    "KerasMLPClassifier": lambda cls: [
        cls(epochs=10, batch_size=64, learning_rate=0.03, dropout=0.0, random_state=0)
    ],
    "QuantizedClassifier": lambda cls: [
        cls(skquant.KerasMLPClassifier(epochs=10, batch_size=64, learning_rate=0.03,
                                       dropout=0.0, random_state=0), dtype="float32")
    ],
}

_MINI_BATCH = (
    "mini-batch SGD: a weight of 2 and a duplicated row give different "
    "batches, so the fitted weights differ (sklearn's MLPClassifier and "
    "SGDClassifier are exempted for the same reason)"
)
EXPECTED_FAILURES = {
    "KerasMLPClassifier": {"check_sample_weight_equivalence_on_dense_data": _MINI_BATCH},
    # it fits the KerasMLPClassifier above, so the same holds
    "QuantizedClassifier": {"check_sample_weight_equivalence_on_dense_data": _MINI_BATCH},
}


def all_instances():
    instances = []
    for cls in discover_estimators():
        make = FAST_INSTANCES.get(cls.__name__)
        instances.extend(make(cls) if make else [cls()])
    return instances


def test_every_public_estimator_is_exported():
    for cls in discover_estimators():
        assert cls.__name__ in skquant.__all__, cls.__name__
        assert getattr(skquant, cls.__name__) is cls


def test_array_api_checks_run_instead_of_skipping():
    # check_array_api_input skips itself ("SCIPY_ARRAY_API is not set")
    # unless SciPy's array API support is on; tests/conftest.py sets it
    # before SciPy is imported, so the checks above really run
    from scipy._lib import _array_api

    assert os.environ.get("SCIPY_ARRAY_API") == "1"
    assert _array_api.SCIPY_ARRAY_API
    pytest.importorskip("array_api_strict")


def test_discovery_finds_the_known_estimators():
    names = {cls.__name__ for cls in discover_estimators()}
    assert {
        "Cleaner", "OutlierFilter", "ColumnProjection", "TreeProjection", "GraphProjection",
        "KerasMLPClassifier",
    } <= names
    assert {name for _, name, _ in _FAMILIES.values()} <= names


def test_every_registered_family_has_fast_settings():
    assert set(FAST_PROJECTION_PARAMS) == set(_FAMILIES), (
        "give each projection family small settings in FAST_PROJECTION_PARAMS")


@parametrize_with_checks(
    all_instances(),
    expected_failed_checks=lambda est: EXPECTED_FAILURES.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", all_instances(), ids=lambda est: type(est).__name__)
def test_cloudpickle_round_trip(estimator):
    """Dask ships estimators to its workers with cloudpickle: unfitted and
    fitted, each must come back working."""
    cloudpickle = pytest.importorskip("cloudpickle")
    X, y = make_classification(n_samples=80, n_features=6, n_informative=4,
                               n_classes=3, random_state=0)
    copy = cloudpickle.loads(cloudpickle.dumps(estimator))
    assert copy.get_params().keys() == estimator.get_params().keys()
    fitted = estimator.fit(X, y)
    restored = cloudpickle.loads(cloudpickle.dumps(fitted))
    method = "predict" if hasattr(fitted, "predict") else "transform"
    np.testing.assert_array_equal(getattr(restored, method)(X), getattr(fitted, method)(X))


DOCS = "https://docs.example.org/skquant"


def test_html_repr_links_each_estimator_to_its_api_page(monkeypatch):
    monkeypatch.setenv(_doc_link.ENVIRONMENT_VARIABLE, DOCS + "/")
    api = (Path(__file__).resolve().parent.parent / "docs" / "api.rst").read_text()
    generated = set(re.findall(r"^   (\w+)$", api, flags=re.MULTILINE))
    for estimator in all_instances():
        name = type(estimator).__name__
        assert name in generated, f"docs/api.rst generates no page for {name}"
        assert estimator._get_doc_link() == f"{DOCS}/generated/skquant.{name}.html"
    html = estimator_html_repr(skquant.make_quant_pipeline("column", 2))
    assert f'href="{DOCS}/generated/skquant.Cleaner.html"' in html
    assert f'href="{DOCS}/generated/skquant.KerasMLPClassifier.html"' in html
    # scikit-learn's own estimators keep their links
    assert "https://scikit-learn.org/" in html


def test_html_repr_has_no_link_without_a_docs_url(monkeypatch):
    monkeypatch.delenv(_doc_link.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(_doc_link.metadata, "metadata", lambda name: email.message.Message())
    assert all(estimator._get_doc_link() == "" for estimator in all_instances())
    assert "generated/skquant." not in estimator_html_repr(skquant.Cleaner())


def test_docs_url_from_the_installed_metadata(monkeypatch):
    monkeypatch.delenv(_doc_link.ENVIRONMENT_VARIABLE, raising=False)
    message = email.message.Message()
    message["Project-URL"] = "Homepage, https://example.org"
    message["Project-URL"] = f"Documentation, {DOCS}/"
    monkeypatch.setattr(_doc_link.metadata, "metadata", lambda name: message)
    assert _doc_link.documentation_url() == DOCS
    assert skquant.Cleaner()._get_doc_link() == f"{DOCS}/generated/skquant.Cleaner.html"
    # the environment variable comes first
    monkeypatch.setenv(_doc_link.ENVIRONMENT_VARIABLE, "file:///srv/docs/html")
    assert _doc_link.documentation_url() == "file:///srv/docs/html"
    # braces in the URL are the URL's, not a template's
    monkeypatch.setenv(_doc_link.ENVIRONMENT_VARIABLE, "file:///home/{me}/docs}")
    assert skquant.Cleaner()._get_doc_link() == (
        "file:///home/{me}/docs}/generated/skquant.Cleaner.html")
    assert "file:///home/{me}/docs}" in estimator_html_repr(skquant.Cleaner())
