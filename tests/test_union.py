"""UnionProjection: what is particular to the union family (the shared
contract is in test_contract, the export parity in test_registry)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

import skquant
from skquant import ColumnProjection, GraphProjection, UnionProjection


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:600]


def test_the_output_is_the_principal_components_then_the_graph_embedding(digits):
    union = UnionProjection(12, random_state=0).fit(digits)
    assert union.n_components_ == 12 and union.n_linear_ == 6
    assert union.graph_.n_components_ == 6
    Z = union.transform(digits)
    pca = ColumnProjection(6, method="pca").fit(digits)
    graph = GraphProjection(6, random_state=0).fit(digits)
    np.testing.assert_allclose(Z[:, :6], pca.transform(digits), atol=1e-9)
    np.testing.assert_array_equal(Z[:, 6:], graph.transform(digits))
    assert list(union.get_feature_names_out()[:2]) == ["unionprojection0", "unionprojection1"]


def test_n_linear_sets_the_split(digits):
    union = UnionProjection(10, n_linear=3, random_state=0).fit(digits)
    assert union.n_linear_ == 3 and union.graph_.n_components_ == 7
    assert union.transform(digits[:4]).shape == (4, 10)
    # one dimension: the graph embedding alone, exported as the graph step
    alone = UnionProjection(1, random_state=0).fit(digits)
    assert alone.n_linear_ == 0 and alone.linear_ is None
    assert alone._export()[0] == "nystrom"
    assert UnionProjection(4, random_state=0).fit(digits)._export()[0] == "union"


@pytest.mark.parametrize("params, message", [
    ({"n_components": 4, "n_linear": 4},
     "n_linear=4 leaves no dimension of n_components=4 to the graph part"),
    ({"n_components": 80, "n_linear": 70},
     "n_linear=70 principal components is more than 64, the most the data give"),
])
def test_a_split_the_data_cannot_give_is_refused_before_any_work(digits, params, message):
    for fit in ("fit", "partial_fit"):
        projection = UnionProjection(random_state=0, **params)
        with pytest.raises(ValueError, match=message):
            getattr(projection, fit)(digits)
        assert not hasattr(projection, "n_features_in_")


def test_too_many_dimensions_name_both_parts(digits):
    with pytest.raises(ValueError, match="principal components: X has 64 columns; graph"):
        UnionProjection(200, random_state=0).fit(digits)


def test_the_union_pipeline_serves_through_every_target(digits, tmp_path):
    y = load_digits().target[:600]
    pipe = skquant.make_quant_pipeline("union", 8, random_state=0,
                                       classify__epochs=5).fit(digits, y)
    served = skquant.quantize(pipe, dtype="float32")
    assert served.steps == ["clean", "union", "mlp"]
    np.testing.assert_array_equal(served.predict(digits), pipe.predict(digits))
    path = skquant.export_onnx(pipe, str(tmp_path / "union.onnx"))
    np.testing.assert_allclose(skquant.run_onnx(path, digits), pipe.predict_proba(digits),
                               atol=1e-5)


def test_the_fused_union_without_a_cleaner_computes_what_the_steps_do(digits):
    from sklearn.pipeline import Pipeline

    y = load_digits().target[:600]
    pipe = Pipeline([("project", UnionProjection(8, random_state=0)),
                     ("classify", skquant.KerasMLPClassifier(epochs=3, random_state=0))])
    pipe.fit(digits + 1000.0, y)  # far from the origin: the centre stays a subtraction
    served = skquant.quantize(pipe, dtype="float32")
    assert [type(op).__name__ for op in served._plan] == ["UnionOp", "AffineOp"]
    assert served._plan[0].affine.centre is not None
    rows = digits[:50] + 1000.0
    np.testing.assert_allclose(served._logits(rows), served._run_steps(rows)[-1],
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(served.predict(rows), pipe.predict(rows))


def test_a_loaded_union_restarts_whole_on_partial_fit():
    import pickle

    from sklearn.datasets import load_digits

    X, _ = load_digits(return_X_y=True)
    union = UnionProjection(8, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(union))
    np.testing.assert_array_equal(restored.transform(X), union.transform(X))
    with pytest.warns(UserWarning, match="UnionProjection was loaded.*starts a new fit"):
        restored.partial_fit(X[:300])
    assert restored.n_samples_seen_ == restored.graph_.n_samples_seen_ == 300
    assert restored.linear_.n_samples_seen_ == 300
