"""The export registry: per-step parity of every registered step on every
target, clear refusals, and a user's own transformer."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skquant
from skquant import KerasMLPClassifier, load_quantized, make_quant_pipeline, quantize
from skquant import _registry
from skquant.pipeline import _FAMILIES
from skquant.runtime import _steps

# every method of every registered projection family
KINDS = [(family, method) for family, (_, _, methods) in _FAMILIES.items()
         for method in methods]
IDS = [f"{family}:{method}" for family, method in KINDS]
FAST = {"classify__epochs": 3}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    # a little noise: on raw digits an LPP component lies in the data's null
    # space, and quantize refuses to serve it (see test_quantize)
    X = X[:900] + np.random.RandomState(0).uniform(-0.01, 0.01, (900, X.shape[1]))
    return train_test_split(X, y[:900], test_size=0.25, stratify=y[:900], random_state=0)


@pytest.fixture(scope="module")
def fitted(digits):
    X_train, _, y_train, _ = digits
    return {kind: make_quant_pipeline(kind[0], 8, method=kind[1], random_state=0,
                                      **FAST).fit(X_train, y_train) for kind in KINDS}


@pytest.fixture
def clean_registry():
    """Registrations made by a test are undone after it (the tables are
    shared by reference, so they are restored in place)."""
    import importlib

    for module in _registry._TARGET_MODULES.values():
        importlib.import_module(module)  # the built-in emitters, registered
    tables = [_registry._EXPORTS, _steps.STEPS, *_registry._EMITTERS.values()]
    snapshots = [dict(table) for table in tables]
    yield
    for table, snapshot in zip(tables, snapshots):
        table.clear()
        table.update(snapshot)


def _estimator_outputs(pipe, X):
    """What each fitted step of the pipeline computes, in turn (float64)."""
    outputs, values = [], X
    for _, step in pipe.steps[:-1]:
        values = step.transform(values)
        outputs.append(values)
    outputs.append(pipe.steps[-1][1]._logits(values))
    return outputs


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_each_runtime_step_computes_what_its_estimator_does(fitted, digits, kind):
    # the numpy target, step by step: the runtime's step (float32, from the
    # exported arrays) against the fitted estimator's own transform
    _, X_test, _, _ = digits
    served = quantize(fitted[kind], dtype="float32")
    served_outputs = served._run_steps(X_test)
    fitted_outputs = _estimator_outputs(fitted[kind], X_test)
    assert len(served_outputs) == len(fitted_outputs) == 3
    for name, got, expected in zip(served.steps, served_outputs, fitted_outputs):
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_each_tflite_emitter_computes_its_numpy_step(fitted, digits, kind):
    # the TFLite target, step by step: each emitted TensorFlow function fed
    # the numpy output of the step before (the ONNX target's twin is in
    # test_onnx: test_each_emitter_computes_its_numpy_step)
    from skquant._tflite import _tensorflow

    tf = _tensorflow()
    _, X_test, _, _ = digits
    served = quantize(fitted[kind], dtype="float32")
    x = X_test.astype(np.float32)
    for name, step in zip(served.steps, served._run):
        got = _registry.emitter_for("tflite", step)(tf, step)(tf.constant(x)).numpy()
        expected = step(x)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=name)
        x = expected.astype(np.float32)


def test_every_step_kind_has_an_emitter_on_every_target(fitted):
    for target in _registry._EMITTERS:
        _registry.emitter_for(target, next(iter(quantize(fitted[KINDS[0]], "float32")._run)))
        assert set(_registry._EMITTERS[target]) == set(_steps.STEPS.values()), target
    # every family's estimator is registered, and every kind is reached above
    used = {type(step) for pipe in fitted.values() for step in quantize(pipe, "float32")._run}
    assert used == set(_steps.STEPS.values())


def test_a_missing_emitter_names_the_step_and_the_target(fitted, tmp_path, clean_registry):
    _registry.emitter_for("tflite", quantize(fitted["column", "pca"], "float32")._run[0])
    del _registry._EMITTERS["tflite"][_steps.Linear]
    with pytest.raises(TypeError, match=r"cannot export the runtime step Linear to TFLite: "
                                        r"no TFLite emitter is registered for it.*"
                                        r"register_step"):
        skquant.export_tflite(fitted["column", "pca"], tmp_path / "m.tflite")
    assert not (tmp_path / "m.tflite").exists()


def test_an_unregistered_estimator_is_refused_before_any_work(digits):
    X_train, _, y_train, _ = digits
    pipe = make_pipeline(StandardScaler(), KerasMLPClassifier(epochs=1, random_state=0))
    pipe.fit(X_train, y_train)
    with pytest.raises(TypeError, match=r"cannot export StandardScaler: no export is "
                                        r"registered for it.*skquant.register_step"):
        quantize(pipe)


class Halve(TransformerMixin, BaseEstimator):
    """A user's transformer that is a linear map: x / 2."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) / 2


def _export_halve(halve):
    n = halve.n_features_in_
    return "linear", {}, {"mean": np.zeros(n), "components": np.eye(n) / 2}, {"components"}


def test_a_users_transformer_as_an_existing_kind(digits, tmp_path, clean_registry):
    X_train, X_test, y_train, _ = digits
    pipe = make_pipeline(skquant.Cleaner(), Halve(),
                         KerasMLPClassifier(epochs=2, random_state=0)).fit(X_train, y_train)
    with pytest.raises(TypeError, match="cannot export Halve"):
        quantize(pipe)
    assert skquant.register_step(Halve, _export_halve) is Halve
    served = quantize(pipe, dtype="float32")
    assert served.steps == ["clean", "linear", "mlp"]
    np.testing.assert_array_equal(served.predict(X_test), pipe.predict(X_test))
    # an existing kind: the artifact loads anywhere, and every target emits it
    loaded = load_quantized(served.save(tmp_path / "m.skq"))
    np.testing.assert_array_equal(loaded.predict(X_test), pipe.predict(X_test))
    pytest.importorskip("onnxruntime")
    proba = skquant.run_onnx(skquant.export_onnx(pipe, tmp_path / "m.onnx"), X_test)
    np.testing.assert_allclose(proba, pipe.predict_proba(X_test), atol=1e-5)


class Square(TransformerMixin, BaseEstimator):
    """A user's transformer of a kind of its own: x ** 2."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) ** 2


class SquareStep:
    """The runtime step of the "square" kind."""

    PARAMS = {}
    OVERFLOWS = True

    @staticmethod
    def layout(params, arrays, width):
        return width

    def __init__(self, params, get):
        pass

    def row_bytes(self):
        return 8

    def __call__(self, X):
        return X * X


def _emit_square_onnx(b, step, x):
    return b.node("Mul", [x, x], "square")


def test_a_users_transformer_of_a_new_kind(digits, tmp_path, clean_registry):
    pytest.importorskip("onnxruntime")
    X_train, X_test, y_train, _ = digits
    pipe = make_pipeline(skquant.Cleaner(), Square(),
                         KerasMLPClassifier(epochs=2, random_state=0)).fit(X_train, y_train)
    skquant.register_step(Square, lambda est: ("square", {}, {}, set()),
                          kind="square", step=SquareStep)
    served = quantize(pipe, dtype="float32")
    assert served.steps == ["clean", "square", "mlp"]
    np.testing.assert_allclose(served.predict_proba(X_test), pipe.predict_proba(X_test),
                               atol=1e-5)
    assert load_quantized(served.save(tmp_path / "m.skq")).steps == served.steps
    # no ONNX emitter for the new kind: refused, naming it, nothing written
    with pytest.raises(TypeError, match=r"runtime step SquareStep to ONNX: no ONNX emitter"):
        skquant.export_onnx(pipe, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    skquant.register_step(Square, lambda est: ("square", {}, {}, set()),
                          kind="square", step=SquareStep, onnx=_emit_square_onnx)
    proba = skquant.run_onnx(skquant.export_onnx(pipe, tmp_path / "m.onnx"), X_test)
    np.testing.assert_allclose(proba, pipe.predict_proba(X_test), atol=1e-5)


def test_register_step_refuses_inconsistent_arguments(clean_registry):
    with pytest.raises(ValueError, match="kind and step go together"):
        skquant.register_step(Square, _export_halve, kind="square")
    with pytest.raises(ValueError, match="kind and step go together"):
        skquant.register_step(Square, _export_halve, step=SquareStep)
    with pytest.raises(ValueError, match="'linear' is already a runtime step kind"):
        skquant.register_step(Square, _export_halve, kind="linear", step=SquareStep)
    with pytest.raises(ValueError, match="An onnx emitter is for a new step kind"):
        skquant.register_step(Square, _export_halve, onnx=_emit_square_onnx)
    with pytest.raises(ValueError, match="Unknown export target 'coreml'"):
        _registry.register_emitter("coreml", SquareStep, _emit_square_onnx)


class Doubled(_steps.Linear):
    """A user's step kind that reuses Linear's layout, with its own formula."""

    def __call__(self, X):
        return 2 * super().__call__(X)


def test_a_subclass_of_a_built_in_step_runs_its_own_formula(clean_registry):
    # neither fused as its parent (the serving plan) nor emitted as it (ONNX)
    from skquant import QuantizedPipeline

    skquant.register_step(Halve, _export_halve, kind="doubled", step=Doubled)
    manifest = {"dtype": "float32", "n_features_in": 3, "steps": [
        {"kind": "doubled", "prefix": "b.", "params": {}},
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 1}}]}
    arrays = {"classes": np.array([0, 1]), "b.mean": np.zeros(3, np.float32),
              "b.components": np.eye(2, 3, dtype=np.float32),
              "c.input_mean": np.zeros(2, np.float32), "c.input_scale": np.ones(2, np.float32),
              "c.weights0": np.eye(2, dtype=np.float32), "c.bias0": np.zeros(2, np.float32)}
    model = QuantizedPipeline(manifest, arrays)
    X = np.array([[1.0, 2.0, 3.0]], np.float32)
    np.testing.assert_array_equal(model._logits(X), [[2.0, 4.0]])
    with pytest.raises(TypeError, match="runtime step Doubled to ONNX"):
        _registry.emitter_for("onnx", model._run[0])
