"""The `skquant` command: demo and predict, and their errors."""

import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skquant import Cleaner
from skquant.cli import main


@pytest.fixture(scope="module")
def small_digits():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


def _write_csv(path, X, y=None, header=True):
    columns = [f"f{j}" for j in range(X.shape[1])] + (["label"] if y is not None else [])
    rows = X if y is None else np.column_stack([X, y])
    with open(path, "w") as handle:
        if header:
            handle.write(",".join(columns) + "\n")
        for row in rows:
            handle.write(",".join(repr(float(v)) for v in row) + "\n")


def test_help_lists_the_commands():
    result = subprocess.run(
        [sys.executable, "-m", "skquant.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "demo" in result.stdout and "predict" in result.stdout


def test_demo_end_to_end_on_user_data(small_digits, tmp_path, capsys):
    X, y = small_digits
    data = tmp_path / "digits.npz"
    np.savez(data, X=X, y=y)
    out = tmp_path / "out"
    code = main([
        "demo", "--data", str(data), "--kinds", "column:pca,tree:tsvq", "--dims", "4,8,200",
        "--cv", "2", "--epochs", "2", "--output-dir", str(out), "--no-progress",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "column:pca" in printed and "tree:tsvq" in printed and "<- best" in printed
    # 200 dims: more than the columns (column family) and the fold's rows (tree)
    notes = [line for line in printed.splitlines() if line.startswith("note:")]
    assert any("column:pca skips dims [200]" in line and "columns" in line for line in notes)
    assert any("tree:tsvq skips dims [200]" in line and "112-row CV folds" in line
               and "a tree grown on 112 rows" in line for line in notes)
    for name in ("best_pipeline.joblib", "accuracy_vs_dims.png", "results.csv"):
        assert (out / name).stat().st_size > 0
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0] == (
        "family,dims,cv_accuracy,test_accuracy,fit_seconds,model_bytes,float32_bytes,"
        "float32_accuracy,int8_bytes,int8_accuracy,float32_pareto,int8_pareto")
    assert "Pareto front" in printed and "int8 B" in printed
    assert len(rows) == 5

    # predict with the saved model, from CSV, to stdout and to a file
    csv_path = tmp_path / "new.csv"
    _write_csv(csv_path, X[:10])
    assert main(["predict", str(out / "best_pipeline.joblib"), str(csv_path)]) == 0
    predictions = capsys.readouterr().out.split()
    model = joblib.load(out / "best_pipeline.joblib")
    assert predictions == [str(p) for p in model.predict(X[:10])]
    target = tmp_path / "pred.csv"
    assert main(["predict", str(out / "best_pipeline.joblib"), str(csv_path), "-o", str(target)]) == 0
    assert target.read_text().splitlines()[1:] == predictions


def test_predict_ignores_a_named_label_column(small_digits, tmp_path, capsys):
    X, y = small_digits
    model_path = tmp_path / "model.joblib"
    joblib.dump(make_pipeline(Cleaner(), LogisticRegression(max_iter=500)).fit(X, y), model_path)
    csv_path = tmp_path / "labelled.csv"
    _write_csv(csv_path, X[:5], y[:5])
    assert main(["predict", str(model_path), str(csv_path), "--label-column", "label"]) == 0
    assert len(capsys.readouterr().out.split()) == 5


@pytest.mark.parametrize(
    "make_file, message",
    [
        (lambda p: None, "model file not found"),
        (lambda p: p.write_bytes(b"this is not a model"), "not a readable joblib model file"),
        (lambda p: joblib.dump({"weights": [1, 2]}, p), "not a fitted model with predict"),
    ],
    ids=["missing", "corrupt", "not-a-model"],
)
def test_predict_with_a_bad_model_file(tmp_path, capsys, make_file, message):
    model_path = tmp_path / "model.joblib"
    make_file(model_path)
    data = tmp_path / "x.npz"
    np.savez(data, X=np.ones((2, 3)))
    assert main(["predict", str(model_path), str(data)]) == 2
    assert message in capsys.readouterr().err


def test_predict_with_a_truncated_model_file(small_digits, tmp_path, capsys):
    X, y = small_digits
    model_path = tmp_path / "model.joblib"
    joblib.dump(make_pipeline(Cleaner(), LogisticRegression(max_iter=200)).fit(X, y), model_path)
    model_path.write_bytes(model_path.read_bytes()[:200])
    np.savez(tmp_path / "x.npz", X=X[:2])
    assert main(["predict", str(model_path), str(tmp_path / "x.npz")]) == 2
    assert "not a readable joblib model file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b,label\n1,2,x\n3,red,y\n", "column(s) ['b'] are not numeric"),
        ("a,b\n1,2\n3\n", "line 3: 1 fields, expected 2"),
        ("", "is empty"),
    ],
)
def test_bad_csv_data(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["demo", "--data", str(path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_demo_with_a_single_class(tmp_path, capsys):
    path = tmp_path / "one.npz"
    np.savez(path, X=np.random.RandomState(0).normal(size=(20, 3)), y=np.zeros(20))
    assert main(["demo", "--data", str(path), "--no-progress"]) == 2
    assert "single class" in capsys.readouterr().err


def test_demo_with_a_missing_data_file(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path / "nope.csv")]) == 2
    assert "data file not found" in capsys.readouterr().err


def test_predict_with_the_wrong_number_of_columns(small_digits, tmp_path, capsys):
    X, y = small_digits
    model_path = tmp_path / "model.joblib"
    joblib.dump(make_pipeline(Cleaner(), LogisticRegression(max_iter=200)).fit(X, y), model_path)
    np.savez(tmp_path / "x.npz", X=X[:3, :10])
    assert main(["predict", str(model_path), str(tmp_path / "x.npz")]) == 2
    assert "has 10 feature columns but the model expects 64" in capsys.readouterr().err


def test_headerless_csv_with_text_labels_keeps_its_first_row(tmp_path):
    from skquant._io import read_table

    path = tmp_path / "plain.csv"
    path.write_text("1,2,cat\n3,4,dog\n5,6,cat\n")
    X, y, names = read_table(str(path))
    assert X.shape == (3, 2) and names is None
    assert y.tolist() == ["cat", "dog", "cat"]


def test_csv_with_a_byte_order_mark_and_missing_values(tmp_path):
    from skquant._io import read_table

    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffa,b,label\n1,,0\n3,NA,1\n".encode("utf-8"))
    X, y, names = read_table(str(path))
    assert names == ["a", "b"] and y.tolist() == [0, 1]
    assert np.isnan(X[:, 1]).all()


def test_label_column_index_out_of_range(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("1,2,0\n3,4,1\n")
    assert main(["demo", "--data", str(path), "--label-column", "7", "--no-progress"]) == 2
    assert "has no column '7'" in capsys.readouterr().err


def test_demo_rejects_non_positive_epochs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_predict_with_an_unfitted_model(tmp_path, capsys):
    model_path = tmp_path / "model.joblib"
    joblib.dump(make_pipeline(Cleaner(), LogisticRegression()), model_path)
    np.savez(tmp_path / "x.npz", X=np.ones((2, 3)))
    assert main(["predict", str(model_path), str(tmp_path / "x.npz")]) == 2
    assert "unfitted Pipeline" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--test-size", "1.5"], "--test-size must be between 0 and 1"),
        (["--cv", "1"], "--cv must be at least 2"),
        (["--kinds", "spiral"], "Unknown projection family 'spiral'"),
        (["--dims", "5000"], "No dimension in [5000] is feasible"),
        (["--kinds", "column", "--dims", "500"], "with 898 rows and 58 columns"),
    ],
)
def test_demo_argument_errors(tmp_path, capsys, extra, message):
    assert main(["demo", "--no-progress", "--output-dir", str(tmp_path)] + extra) == 2
    assert message in capsys.readouterr().err


def test_demo_with_a_class_too_small_to_split(tmp_path, capsys):
    rng = np.random.RandomState(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, X=rng.normal(size=(30, 3)), y=np.array([0] * 27 + [1] * 3))
    assert main(["demo", "--data", str(path), "--no-progress"]) == 2
    assert "class 1 has 2 training row(s) after the split" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"features": np.ones((3, 2))}, "it needs one named 'X'"),
        ({"X": np.ones(3), "y": np.ones(3)}, "must be 2-D"),
        ({"X": np.array([["a", "b"]]), "y": np.ones(1)}, "must be numeric"),
        ({"X": np.ones((3, 2))}, "has no label array 'y'"),
        ({"X": np.ones((3, 2)), "y": np.ones(4)}, "'X' has 3 rows but 'y' has 4"),
    ],
)
def test_bad_npz_data(tmp_path, capsys, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert main(["demo", "--data", str(path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("data.json", "{}", "unsupported data file"),
        ("header.csv", "a,b,label\n", "has a header but no data rows"),
        ("nolabel.csv", "a,label\n1,0\n2,\n3,1\n", "data row 2 has no label"),
    ],
)
def test_bad_data_files(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    assert main(["demo", "--data", str(path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_labels_written_differently_stay_different_classes(tmp_path):
    from skquant._io import read_table

    path = tmp_path / "labels.csv"
    path.write_text("a,label\n1,1\n2,1.0\n3,01\n")
    assert read_table(str(path))[1].tolist() == ["1", "1.0", "01"]
    path.write_text("a,label\n1,1\n2,2\n")
    assert read_table(str(path))[1].tolist() == [1, 2]


def test_predict_with_a_csv_lacking_the_models_named_columns(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"height": [1.0, 2.0, 3.0, 4.0], "width": [2.0, 1.0, 4.0, 3.0]})
    model_path = tmp_path / "model.joblib"
    joblib.dump(make_pipeline(Cleaner(), LogisticRegression()).fit(frame, [0, 1, 0, 1]), model_path)
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("height,depth\n1,2\n")
    assert main(["predict", str(model_path), str(csv_path)]) == 2
    assert "lacks the model's column(s) ['width']" in capsys.readouterr().err


def test_pareto_front_marks_the_undominated_models():
    from skquant.cli import _mark_pareto_front

    rows = [
        {"float32_bytes": 400, "float32_accuracy": 0.97, "int8_bytes": 100, "int8_accuracy": 0.96},
        {"float32_bytes": 500, "float32_accuracy": 0.95, "int8_bytes": 150, "int8_accuracy": 0.96},
        {"float32_bytes": 900, "float32_accuracy": 0.99, "int8_bytes": 300, "int8_accuracy": 0.98},
    ]
    _mark_pareto_front(rows)
    assert [(r["float32_pareto"], r["int8_pareto"]) for r in rows] == [
        (False, True),   # 400/0.97 loses to 300/0.98; 100/0.96 is the smallest
        (False, False),  # 150/0.96 loses to 100/0.96; 500/0.95 to 100/0.96
        (True, True),    # the most accurate ones
    ]

