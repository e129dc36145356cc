"""skops persistence: every family's pipeline round-trips through
``skops.io`` with identical predictions, trusting skquant's own types only,
in a fresh process; and the command line loads ``.skops`` files safely."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skquant import make_quant_pipeline, trusted_types
from skquant.cli import main
from skquant.pipeline import _FAMILIES

sio = pytest.importorskip("skops.io")

KINDS = [(family, methods[0]) for family, (_, _, methods) in _FAMILIES.items()]
IDS = [f"{family}:{method}" for family, method in KINDS]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return {kind: make_quant_pipeline(kind[0], 8, method=kind[1], random_state=0,
                                      classify__epochs=3).fit(X, y) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_skops_round_trip_in_a_fresh_process(fitted, digits, kind, tmp_path):
    X, _ = digits
    path = tmp_path / "model.skops"
    sio.dump(fitted[kind], path)
    untrusted = sio.get_untrusted_types(file=path)
    # nothing but skquant's own estimators to trust
    assert untrusted and set(untrusted) <= set(trusted_types())
    assert all(name.startswith("skquant.") for name in untrusted)
    expected = tmp_path / "expected.npy"
    np.save(expected, fitted[kind].predict_proba(X))
    script = (
        "import sys, numpy as np, skops.io as sio\n"
        "from skquant import trusted_types\n"
        "from sklearn.datasets import load_digits\n"
        f"model = sio.load({str(path)!r}, trusted=trusted_types())\n"
        "X = load_digits().data[:600]\n"
        f"assert np.array_equal(model.predict_proba(X), np.load({str(expected)!r}))\n"
        "assert 'tensorflow' not in sys.modules  # predicting needs no TensorFlow\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_network_rebuilt_from_arrays_continues_training_exactly(digits):
    X, y = digits
    live = make_quant_pipeline("column", 8, random_state=0, classify__epochs=3).fit(X, y)
    loaded = sio.loads(sio.dumps(live), trusted=trusted_types())
    rows = live[:-1].transform(X[:200])
    # the live network and the one rebuilt from arrays take the same step:
    # weights, dropout's seed states and Adam's moments all came back
    for model in (live, loaded):
        model.named_steps["classify"].partial_fit(rows, y[:200])
    np.testing.assert_array_equal(loaded.predict_proba(X), live.predict_proba(X))


def test_a_tables_pipeline_round_trips_through_skops(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"city": [f"c{i % 30}" for i in range(300)],
                          "colour": rng.choice(["red", "blue"], 300),
                          "size": rng.normal(size=300)})
    y = np.arange(300) % 3
    pipe = make_quant_pipeline("column", 2, random_state=0, classify__epochs=2).fit(frame, y)
    assert pipe.named_steps["clean"].encodings_ == ["target", "onehot"]
    data = sio.dumps(pipe)
    assert set(sio.get_untrusted_types(data=data)) <= set(trusted_types())
    loaded = sio.loads(data, trusted=trusted_types())
    np.testing.assert_array_equal(loaded.predict_proba(frame), pipe.predict_proba(frame))


def test_predict_takes_a_skops_file_without_trust_pickle(fitted, digits, tmp_path, capsys):
    X, _ = digits
    path = tmp_path / "model.skops"
    sio.dump(fitted[("tree", "tsvq")], path)
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in X[:20]) + "\n")
    assert main(["predict", str(path), str(rows), "--no-header"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(p) for p in fitted[("tree", "tsvq")].predict(X[:20])]


def test_a_skops_file_with_foreign_types_is_refused(tmp_path, capsys, digits):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = digits
    import operator

    foreign = make_pipeline(FunctionTransformer(operator.pos),
                            make_quant_pipeline("column", 4, random_state=0,
                                                classify__epochs=1)).fit(X, y)
    path = tmp_path / "foreign.skops"
    sio.dump(foreign, path)
    rows = tmp_path / "rows.csv"
    rows.write_text("1.0," * 63 + "1.0\n")
    assert main(["predict", str(path), str(rows), "--no-header"]) == 2
    assert "neither scikit-learn's nor skquant's (_operator.pos" in capsys.readouterr().err
    garbage = tmp_path / "garbage.skops"
    garbage.write_bytes(b"not a zip")
    assert main(["predict", str(garbage), str(rows), "--no-header"]) == 2
    assert "could not read" in capsys.readouterr().err
