"""The `skquant` command: demo, predict and quantize, and their errors.

Besides the happy paths, every way the command could run code it was not
asked to (a pickle), misreport a damaged artifact, or destroy a file (an
output over an input, over an earlier output, into a file given as a
directory) has a test here, and so does the order of the checks: outputs
are refused before any model is loaded or any search runs.
"""

import os
import pickle
import shlex
import shutil
import stat
import subprocess
import sys
from types import SimpleNamespace

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skquant import Cleaner, load_quantized, make_quant_pipeline, quantize
from skquant.cli import main

TRUST = "--trust-pickle"


@pytest.fixture(autouse=True)
def _in_a_fresh_directory(tmp_path, monkeypatch):
    # the demo's default --output-dir is ./skquant-demo: never the caller's
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def small_digits():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def trained(small_digits, tmp_path_factory):
    """One tiny fitted pipeline, saved once as joblib and as an artifact.

    Tests copy these files before changing anything next to them."""
    X, y = small_digits
    folder = tmp_path_factory.mktemp("trained")
    pipe = make_quant_pipeline("column", 8, random_state=0, classify__epochs=1).fit(X, y)
    joblib.dump(pipe, folder / "model.joblib")
    quantize(pipe, dtype="int8").save(folder / "model.skq")
    _write_csv(folder / "rows.csv", X[:10])
    np.savez(folder / "check.npz", X=X[:60], y=y[:60])
    return SimpleNamespace(
        pipe=pipe, X=X, y=y, joblib=folder / "model.joblib", skq=folder / "model.skq",
        rows=folder / "rows.csv", check=folder / "check.npz",
        expected=[str(p) for p in load_quantized(folder / "model.skq").predict(X[:10])],
    )


def _write_csv(path, X, y=None, header=True):
    columns = [f"f{j}" for j in range(X.shape[1])] + (["label"] if y is not None else [])
    rows = X if y is None else np.column_stack([X, y])
    with open(path, "w") as handle:
        if header:
            handle.write(",".join(columns) + "\n")
        for row in rows:
            handle.write(",".join(repr(float(v)) for v in row) + "\n")


def _copy(source, folder, name=None):
    target = folder / (name or source.name)
    shutil.copyfile(source, target)
    return target


class _MakesADirectory:
    """Pickles into a call of ``os.mkdir(marker)``: code that runs on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _not_called(what):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran before the output path was checked")
    return fail


# ------------------------------------------------------------------- help
def test_help_lists_the_commands_and_the_safe_usage():
    result = subprocess.run(
        [sys.executable, "-m", "skquant.cli", "--help"], capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout and "predict" in result.stdout
    assert ("skquant predict --trust-pickle skquant-demo/best_pipeline.joblib"
            in result.stdout)
    assert "skquant quantize --trust-pickle" in result.stdout
    assert "--key-file" in result.stdout


@pytest.mark.parametrize("command", ["predict", "quantize", "demo"])
def test_each_command_documents_its_safety_flags(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--force" in text
    if command != "demo":
        assert "--trust-pickle" in text and "can run any code" in text
        assert "--key-file" in text and "HMAC-SHA256" in text
    else:
        assert "new or empty" in text


# ------------------------------------------------- no unpickling by default
@pytest.mark.parametrize("command", ["predict", "quantize"])
def test_a_pickle_is_refused_without_trust_pickle(trained, tmp_path, capsys, command):
    argv = ([command, str(trained.joblib), str(trained.rows)] if command == "predict"
            else [command, str(trained.joblib), "-o", str(tmp_path / "m.skq")])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is a pickle (joblib) file" in err and "can run any code" in err
    assert "--trust-pickle" in err and ".skq artifact" in err
    assert not (tmp_path / "m.skq").exists()


@pytest.mark.parametrize("command", ["predict", "quantize"])
def test_code_in_a_pickle_runs_only_with_trust_pickle(tmp_path, capsys, command, trained):
    marker = tmp_path / "the-pickle-ran"
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(pickle.dumps(_MakesADirectory(marker)))

    def run(*flags):
        if command == "predict":
            return main([command, *flags, str(evil), str(trained.rows)])
        return main([command, *flags, str(evil), "-o", str(tmp_path / "out.skq")])

    assert run() == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert not marker.exists()
    # the same bytes named .skq are read as an artifact only, never unpickled
    evil_skq = _copy(evil, tmp_path, "evil.skq")
    if command == "predict":
        assert main([command, TRUST, str(evil_skq), str(trained.rows)]) == 2
        assert (f"{evil_skq} is not a skquant artifact: it does not start as a zip "
                "file. A .skq file is only ever read as an artifact, never unpickled"
                in capsys.readouterr().err)
    else:
        assert main([command, TRUST, str(evil_skq), "-o", str(tmp_path / "o.skq")]) == 2
        assert "already a quantized artifact" in capsys.readouterr().err
    assert not marker.exists()
    # with consent the pickle is loaded (so the file above does run code)
    assert run(TRUST) == 2
    assert "holds a NoneType, not a fitted model with predict()" in capsys.readouterr().err
    assert marker.is_dir()


def test_predict_with_trust_pickle_and_with_an_artifact(trained, tmp_path, capsys):
    assert main(["predict", TRUST, str(trained.joblib), str(trained.rows)]) == 0
    assert capsys.readouterr().out.split() == [
        str(p) for p in trained.pipe.predict(trained.X[:10])]
    # an artifact needs no flag, and ignores it
    for flags in ([], [TRUST]):
        assert main(["predict", *flags, str(trained.skq), str(trained.rows)]) == 0
        assert capsys.readouterr().out.split() == trained.expected


def test_an_artifact_is_recognised_by_content_whatever_its_name(trained, tmp_path, capsys):
    renamed = _copy(trained.skq, tmp_path, "model.bin")
    assert main(["predict", str(renamed), str(trained.rows)]) == 0
    assert capsys.readouterr().out.split() == trained.expected
    assert main(["quantize", TRUST, str(renamed), "-o", str(tmp_path / "again.skq")]) == 2
    assert "already a quantized artifact" in capsys.readouterr().err


@pytest.mark.parametrize("cut", ["303 bytes", "half", "all but the last byte"])
@pytest.mark.parametrize("name", ["model.skq", "model.joblib"])
def test_a_truncated_artifact_is_reported_as_one(trained, tmp_path, capsys, cut, name):
    data = trained.skq.read_bytes()
    keep = {"303 bytes": 303, "half": len(data) // 2, "all but the last byte": len(data) - 1}
    damaged = tmp_path / name
    damaged.write_bytes(data[:keep[cut]])
    # --trust-pickle does not send a damaged artifact to joblib
    assert main(["predict", TRUST, str(damaged), str(trained.rows)]) == 2
    # (without the path, which holds this test's name)
    err = capsys.readouterr().err.replace(str(damaged), "FILE").lower()
    assert err.startswith("skquant: error: file is a ")
    assert "artifact" in err and ("truncated" in err or "corrupt" in err)
    assert "joblib model file" not in err


def test_quantize_then_predict_with_a_check(trained, tmp_path, capsys):
    artifact = tmp_path / "pipe.skq"
    assert main(["quantize", TRUST, str(trained.joblib), "--dtype", "float32",
                 "-o", str(artifact), "--check", str(trained.check)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {artifact}: float32" in printed and "accuracy on" in printed
    assert main(["predict", str(artifact), str(trained.rows)]) == 0
    assert capsys.readouterr().out.split() == [
        str(p) for p in load_quantized(artifact).predict(trained.X[:10])]


# ------------------------------------------------------- signed artifacts
def test_quantize_signs_and_predict_verifies_with_a_key_file(trained, tmp_path, capsys):
    key, other = tmp_path / "secret.key", tmp_path / "other.key"
    key.write_bytes(b"a secret of thirty-two bytes....")
    other.write_bytes(b"another secret, also 32 bytes...")
    signed = tmp_path / "signed.skq"
    assert main(["quantize", TRUST, str(trained.joblib), "-o", str(signed),
                 "--key-file", str(key)]) == 0
    assert "signed (HMAC-SHA256)" in capsys.readouterr().out
    assert main(["predict", str(signed), str(trained.rows), "--key-file", str(key)]) == 0
    assert capsys.readouterr().out.split() == trained.expected
    # the wrong key, and an unsigned artifact, are refused when a key is given
    for model, key_file, message in (
            (signed, other, "has a signature that does not match the key"),
            (trained.skq, key, "is not signed, and a key was given")):
        assert main(["predict", str(model), str(trained.rows), "--key-file",
                     str(key_file)]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "quantize"])
def test_bad_key_files(trained, tmp_path, capsys, command):
    def run(key_file):
        tail = ([str(trained.rows)] if command == "predict"
                else ["-o", str(tmp_path / "m.skq")])
        model = trained.skq if command == "predict" else trained.joblib
        return main([command, TRUST, str(model), *tail, "--key-file", str(key_file)])

    empty = tmp_path / "empty.key"
    empty.write_bytes(b"")
    assert run(empty) == 2
    assert f"key file {empty} is empty" in capsys.readouterr().err
    assert run(tmp_path / "missing.key") == 2
    assert f"key file not found: {tmp_path / 'missing.key'}" in capsys.readouterr().err
    assert not (tmp_path / "m.skq").exists()


@pytest.mark.parametrize("command", ["predict", "quantize"])
def test_key_files_that_cannot_be_keys(trained, tmp_path, capsys, command):
    """A directory, the model or data file itself, or a file far too large
    to be a secret: refused with what it is, before anything is signed."""
    model = trained.skq if command == "predict" else trained.joblib
    tail = [str(trained.rows)] if command == "predict" else ["-o", str(tmp_path / "m.skq")]
    big = tmp_path / "big.key"
    big.write_bytes(b"x" * (1 << 17))
    data = trained.rows if command == "predict" else trained.check
    if command == "quantize":
        tail += ["--check", str(trained.check)]
    for key_file, message in ((tmp_path, "is a directory"),
                              (model, "is also the command's"),
                              (data, "is also the command's"),
                              (big, "holds 131,072 bytes, more than the 65,536")):
        assert main([command, TRUST, str(model), *tail, "--key-file", str(key_file)]) == 2
        assert message in capsys.readouterr().err, key_file
    assert not (tmp_path / "m.skq").exists()


def test_a_key_file_cannot_verify_a_pickle(trained, tmp_path, capsys):
    key = tmp_path / "k"
    key.write_bytes(b"secret")
    assert main(["predict", TRUST, str(trained.joblib), str(trained.rows),
                 "--key-file", str(key)]) == 2
    assert "carries no signature" in capsys.readouterr().err


# ------------------------------------------------------ no destroyed files
def test_quantize_never_writes_over_its_input(trained, tmp_path, capsys):
    model = _copy(trained.joblib, tmp_path)
    before = model.read_bytes()
    for flags in ([], ["--force"]):
        assert main(["quantize", TRUST, str(model), "-o", str(model), *flags]) == 2
        assert f"--output {model} is also an input of this command" in capsys.readouterr().err
    # also not through another spelling of the same path, nor over --check
    assert main(["quantize", TRUST, str(model), "-o", str(tmp_path / "." / model.name),
                 "--force"]) == 2
    assert "is also an input" in capsys.readouterr().err
    check = _copy(trained.check, tmp_path)
    assert main(["quantize", TRUST, str(model), "-o", str(check), "--check", str(check),
                 "--force"]) == 2
    assert f"--output {check} is also an input" in capsys.readouterr().err
    assert model.read_bytes() == before


@pytest.mark.parametrize("onto", ["data", "model", "key"])
def test_predict_never_writes_over_its_inputs(trained, tmp_path, capsys, onto):
    model, rows = _copy(trained.skq, tmp_path), _copy(trained.rows, tmp_path)
    key = tmp_path / "secret.key"
    key.write_bytes(b"secret")
    target = {"data": rows, "model": model, "key": key}[onto]
    before = target.read_bytes()
    extra = ["--key-file", str(key)] if onto == "key" else []
    assert main(["predict", str(model), str(rows), "-o", str(target), "--force", *extra]) == 2
    assert f"--output {target} is also an input of this command" in capsys.readouterr().err
    assert target.read_bytes() == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_predict_never_replaces_a_device_or_fifo_even_with_force(trained, tmp_path, capsys):
    """``-o /dev/null --force`` (or a FIFO, or a link to one such as
    /dev/stdout) would put a plain file where the device was: refused."""
    fifo, link = tmp_path / "fifo", tmp_path / "stdout"
    os.mkfifo(fifo)
    os.symlink(fifo, link)
    for target in (fifo, link):
        for flags in ([], ["--force"]):
            assert main(["predict", str(trained.skq), str(trained.rows), "-o", str(target),
                         *flags]) == 2
            assert "is not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.path.islink(link)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "stdout"]


def test_predict_refuses_an_empty_or_directory_like_output(trained, tmp_path, capsys):
    # an empty -o (an unset shell variable, say) printed to stdout instead;
    # a trailing separator failed only after the predictions were made
    for output, message in (("", "--output is an empty path"),
                            (str(tmp_path / "new") + os.sep, "ends with a path separator")):
        assert main(["predict", str(trained.skq), str(trained.rows), "-o", output]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == ""
    assert list(tmp_path.iterdir()) == []


def test_predictions_are_one_csv_row_per_input_row(tmp_path, capsys):
    """Labels holding a comma or a quote are quoted, so that the output has
    one row per input (the rows were joined with newlines, unquoted)."""
    import csv

    from skquant import QuantizedPipeline

    manifest = {"dtype": "float32", "n_features_in": 2, "steps": [
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 1}}]}
    labels = np.array(['yes, sir', 'say "no"'])
    arrays = {"classes": labels, "c.input_mean": np.zeros(2, np.float32),
              "c.input_scale": np.ones(2, np.float32),
              "c.weights0": np.eye(2, dtype=np.float32), "c.bias0": np.zeros(2, np.float32)}
    QuantizedPipeline(manifest, arrays).save(tmp_path / "m.skq")
    np.savez(tmp_path / "rows.npz", X=np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]))
    expected = ['yes, sir', 'say "no"', 'yes, sir']
    assert main(["predict", str(tmp_path / "m.skq"), str(tmp_path / "rows.npz")]) == 0
    assert [row for row in csv.reader(capsys.readouterr().out.splitlines())] == [
        [label] for label in expected]
    assert main(["predict", str(tmp_path / "m.skq"), str(tmp_path / "rows.npz"),
                 "-o", str(tmp_path / "out.csv")]) == 0
    with open(tmp_path / "out.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [["prediction"]] + [[label] for label in expected]


def test_predict_replaces_an_existing_output_only_with_force(trained, tmp_path, capsys):
    target = tmp_path / "predictions.csv"
    target.write_text("an earlier result\n")
    argv = ["predict", str(trained.skq), str(trained.rows), "-o", str(target)]
    assert main(argv) == 2
    assert f"--output {target} already exists; pass --force" in capsys.readouterr().err
    assert target.read_text() == "an earlier result\n"
    assert main(argv + ["--force"]) == 0
    assert target.read_text().splitlines() == ["prediction"] + trained.expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]  # no temp left


def test_quantize_replaces_an_existing_artifact_only_with_force(trained, tmp_path, capsys):
    target = _copy(trained.skq, tmp_path, "old.skq")
    before = target.read_bytes()
    argv = ["quantize", TRUST, str(trained.joblib), "--dtype", "float32", "-o", str(target)]
    assert main(argv) == 2
    assert f"--output {target} already exists; pass --force" in capsys.readouterr().err
    assert target.read_bytes() == before
    assert main(argv + ["--force"]) == 0
    capsys.readouterr()
    assert target.read_bytes() != before
    assert load_quantized(target).dtype == "float32"


@pytest.mark.parametrize("command", ["predict", "quantize"])
def test_outputs_are_checked_before_the_model_is_loaded(
        trained, tmp_path, capsys, monkeypatch, command):
    import skquant.cli

    monkeypatch.setattr(skquant.cli, "load_model", _not_called("loading the model"))
    existing = tmp_path / "exists.out"
    existing.write_text("keep me")
    missing_dir = tmp_path / "no" / "such" / "dir" / "out.csv"
    for output, message in ((existing, "already exists; pass --force"),
                            (missing_dir, "does not exist; create it first"),
                            (tmp_path, "is a directory; give a file path")):
        if command == "predict":
            argv = ["predict", TRUST, str(trained.joblib), str(trained.rows), "-o", str(output)]
        else:
            argv = ["quantize", TRUST, str(trained.joblib), "-o", str(output)]
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert existing.read_text() == "keep me"


# ------------------------------------------------------------------- demo
def test_demo_end_to_end_then_a_forced_rerun(small_digits, tmp_path, capsys):
    X, y = small_digits
    data = tmp_path / "digits.npz"
    np.savez(data, X=X, y=y)
    out = tmp_path / "out"
    code = main([
        "demo", "--data", str(data), "--kinds", "column:pca,tree:tsvq", "--dims", "4,200",
        "--cv", "2", "--epochs", "1", "--output-dir", str(out), "--no-progress",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "column:pca" in printed and "tree:tsvq" in printed
    # the header counts what the bar counts: 2 candidates x (2 folds + 1 refit)
    assert "2 candidates x 2 folds, then each refitted: 6 fits" in printed
    # two tables, each within 80 columns, the chosen candidate marked
    table = printed[printed.index("  family"):printed.index("per family")]
    assert max(len(line) for line in table.splitlines()) <= 80
    chosen = [line for line in table.splitlines() if line.startswith("> ") and ":" in line[:22]]
    assert len(chosen) == 2 and chosen[0].split()[1] == chosen[1].split()[1]
    # 200 dims: more than the columns (column family) and the fold's rows (tree)
    notes = [line for line in printed.splitlines() if line.startswith("note:")]
    assert any("column:pca skips dims [200]" in line and "columns" in line for line in notes)
    assert any("tree:tsvq skips dims [200]" in line and "112-row CV folds" in line
               and "a tree grown on 112 rows" in line for line in notes)
    names = ["accuracy_vs_dims.png", "best_pipeline.joblib", "results.csv"]
    assert sorted(p.name for p in out.iterdir()) == names  # and no temporary file
    assert (out / "accuracy_vs_dims.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0] == (
        "family,dims,cv_accuracy,cv_std,test_accuracy,fit_seconds,model_bytes,float32_bytes,"
        "float32_accuracy,int8_bytes,int8_accuracy,float32_pareto,int8_pareto,chosen")
    assert [r.split(",")[:2] for r in rows[1:]] == [["column:pca", "4"], ["tree:tsvq", "4"]]
    assert "Pareto front" in printed and "int8 KB" in printed
    # the next steps it prints are commands that work, and load the pickle
    # only with consent
    model_path = out / "best_pipeline.joblib"
    assert f"skquant predict --trust-pickle {model_path} new_rows.csv" in printed
    assert f"skquant quantize --trust-pickle {model_path} -o model.skq" in printed

    # predict with the saved model, from CSV, to stdout and to a file
    csv_path = tmp_path / "new.csv"
    _write_csv(csv_path, X[:10])
    assert main(["predict", TRUST, str(model_path), str(csv_path)]) == 0
    predictions = capsys.readouterr().out.split()
    model = joblib.load(model_path)
    assert predictions == [str(p) for p in model.predict(X[:10])]
    # the saved pipeline is the candidate marked chosen in the table
    kept = next(r.split(",") for r in rows[1:] if r.endswith(",True"))
    assert (type(model.named_steps["project"]).__name__, model.named_steps["project"].method,
            model.named_steps["project"].n_components) == (
        {"column": "ColumnProjection", "tree": "TreeProjection"}[kept[0].split(":")[0]],
        kept[0].split(":")[1], int(kept[1]))
    target = tmp_path / "pred.csv"
    assert main(["predict", TRUST, str(model_path), str(csv_path), "-o", str(target)]) == 0
    assert target.read_text().splitlines()[1:] == predictions

    # a second run into the same, now non-empty, directory: only with
    # --force, and it replaces the demo's own files and nothing else
    (out / "notes.txt").write_text("mine")
    again = ["demo", "--data", str(data), "--kinds", "column:pca", "--dims", "2", "--cv", "2",
             "--epochs", "1", "--output-dir", str(out), "--no-progress"]
    assert main(again) == 2
    assert f"--output-dir {out} is not empty" in capsys.readouterr().err
    assert (out / "results.csv").read_text().splitlines() == rows
    assert main(again + ["--force"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["notes.txt"])
    assert (out / "notes.txt").read_text() == "mine"
    rows = (out / "results.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in rows[1:]] == [["column:pca", "2"]]
    assert joblib.load(model_path).named_steps["project"].n_components == 2


@pytest.fixture
def no_search(monkeypatch):
    """Make the demo's data loading and search fail the test if they run."""
    import skquant._demo
    from sklearn.model_selection import GridSearchCV

    monkeypatch.setattr(skquant._demo, "_load_demo_data", _not_called("reading the data"))
    monkeypatch.setattr(GridSearchCV, "fit", _not_called("the search"))


def test_demo_refuses_a_non_empty_output_dir_before_the_search(tmp_path, capsys, no_search):
    out = tmp_path / "earlier-run"
    out.mkdir()
    (out / "best_pipeline.joblib").write_bytes(b"an earlier model")
    assert main(["demo", "--output-dir", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--output-dir {out} is not empty (it holds best_pipeline.joblib)" in err
    assert "pass --force" in err
    assert (out / "best_pipeline.joblib").read_bytes() == b"an earlier model"
    # the default directory too
    (tmp_path / "skquant-demo").mkdir()
    (tmp_path / "skquant-demo" / "results.csv").write_text("old")
    assert main(["demo", "--no-progress"]) == 2
    assert "--output-dir skquant-demo is not empty" in capsys.readouterr().err


def test_demo_refuses_a_file_as_output_dir_before_the_search(tmp_path, capsys, no_search):
    some_file = tmp_path / "some_file"
    some_file.write_text("not a directory")
    for flags in ([], ["--force"]):
        assert main(["demo", "--output-dir", str(some_file), "--no-progress", *flags]) == 2
        assert (f"--output-dir {some_file} exists and is not a directory"
                in capsys.readouterr().err)
    assert main(["demo", "--output-dir", str(some_file / "sub"), "--no-progress"]) == 2
    assert f"{some_file} is a file, not a directory" in capsys.readouterr().err
    assert some_file.read_text() == "not a directory"


def test_demo_with_force_never_writes_over_its_data(tmp_path, capsys, no_search):
    out = tmp_path / "out"
    out.mkdir()
    data = out / "results.csv"
    data.write_text("a,label\n1,0\n2,1\n")
    assert main(["demo", "--data", str(data), "--output-dir", str(out), "--force",
                 "--no-progress"]) == 2
    assert f"{data} is also an input of this command" in capsys.readouterr().err
    assert data.read_text() == "a,label\n1,0\n2,1\n"


def test_demo_into_an_existing_empty_directory_passes_the_check(tmp_path, capsys, no_search):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssertionError, match="reading the data ran"):
        main(["demo", "--output-dir", str(tmp_path / "empty"), "--no-progress"])


# ------------------------------------------------------ bad models and data
def test_predict_ignores_a_named_label_column(small_digits, tmp_path, capsys):
    X, y = small_digits
    model_path = tmp_path / "model.joblib"
    joblib.dump(make_pipeline(Cleaner(), LogisticRegression(max_iter=500)).fit(X, y), model_path)
    csv_path = tmp_path / "labelled.csv"
    _write_csv(csv_path, X[:5], y[:5])
    assert main(["predict", TRUST, str(model_path), str(csv_path), "--label-column",
                 "label"]) == 0
    assert len(capsys.readouterr().out.split()) == 5


@pytest.mark.parametrize(
    "make_file, message",
    [
        (lambda p: None, "model file not found"),
        (lambda p: p.write_bytes(b"this is not a model"), "not a readable joblib model file"),
        (lambda p: p.write_bytes(b""), "not a readable joblib model file"),
        (lambda p: joblib.dump({"weights": [1, 2]}, p), "not a fitted model with predict"),
    ],
    ids=["missing", "corrupt", "empty", "not-a-model"],
)
def test_predict_with_a_bad_model_file(tmp_path, capsys, make_file, message):
    model_path = tmp_path / "model.joblib"
    make_file(model_path)
    data = tmp_path / "x.npz"
    np.savez(data, X=np.ones((2, 3)))
    assert main(["predict", TRUST, str(model_path), str(data)]) == 2
    assert message in capsys.readouterr().err


def test_predict_with_a_truncated_model_file(small_digits, tmp_path, capsys):
    X, y = small_digits
    model_path = tmp_path / "model.joblib"
    joblib.dump(make_pipeline(Cleaner(), LogisticRegression(max_iter=200)).fit(X, y), model_path)
    model_path.write_bytes(model_path.read_bytes()[:200])
    np.savez(tmp_path / "x.npz", X=X[:2])
    assert main(["predict", TRUST, str(model_path), str(tmp_path / "x.npz")]) == 2
    assert "not a readable joblib model file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        # numbers and a stray text value: the Cleaner, which encodes text
        # columns, refuses a column of nearly all numbers
        ("a,b,label\n" + "".join(f"{i},{i * 2},{'xy'[i % 2]}\n" for i in range(30))
         + "3,red,y\n", "column 'b' holds numbers and some text ('red')"),
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
    assert main(["predict", TRUST, str(model_path), str(tmp_path / "x.npz")]) == 2
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
    assert main(["predict", TRUST, str(model_path), str(tmp_path / "x.npz")]) == 2
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
    assert main(["predict", TRUST, str(model_path), str(csv_path)]) == 2
    assert "lacks the model's column(s) ['width']" in capsys.readouterr().err


def test_pareto_front_marks_the_undominated_models():
    from skquant._demo_report import _mark_pareto_front

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


# ------------------------------------------------------ quantize --format onnx
def test_quantize_writes_an_onnx_model(trained, tmp_path, capsys):
    from skquant._onnx import run_onnx

    target = tmp_path / "model.onnx"
    assert main(["quantize", TRUST, str(trained.joblib), "--format", "onnx", "--dtype",
                 "float32", "-o", str(target)]) == 0
    assert f"wrote {target}: float32 ONNX" in capsys.readouterr().out
    np.testing.assert_allclose(run_onnx(target, trained.X[:50]),
                               trained.pipe.predict_proba(trained.X[:50]), rtol=0, atol=1e-5)


def test_quantize_onnx_int8_with_a_check(trained, tmp_path, capsys):
    from skquant._onnx import load_onnx_model

    target = tmp_path / "model.onnx"
    assert main(["quantize", TRUST, str(trained.joblib), "--format", "onnx", "-o",
                 str(target), "--check", str(trained.check)]) == 0  # int8 by default
    printed = capsys.readouterr().out
    assert f"wrote {target}: int8 ONNX" in printed
    assert f"accuracy on {trained.check}: pipeline" in printed and "int8 ONNX" in printed
    metadata = {e.key: e.value for e in load_onnx_model(target).metadata_props}
    assert metadata["skquant.dtype"] == "int8"
    assert f"same prediction on {float(metadata['skquant.calibration_agreement']):.2%}" in printed


def test_the_default_format_stays_the_artifact(trained, tmp_path, capsys):
    target = tmp_path / "model.onnx"  # the name does not choose the format
    assert main(["quantize", TRUST, str(trained.joblib), "-o", str(target)]) == 0
    capsys.readouterr()
    assert load_quantized(target).dtype == "int8"


@pytest.mark.parametrize("flags, message", [
    (["--dtype", "float16"], "--format onnx writes float32 or int8 weights, not float16"),
    (["--key-file", "KEY"], "an ONNX file carries no skquant signature"),
], ids=["float16", "key-file"])
def test_quantize_onnx_refuses_before_loading(trained, tmp_path, capsys, monkeypatch,
                                              flags, message):
    import skquant.cli

    monkeypatch.setattr(skquant.cli, "load_model", _not_called("loading the model"))
    key = tmp_path / "secret.key"
    key.write_bytes(b"secret")
    flags = [str(key) if flag == "KEY" else flag for flag in flags]
    target = tmp_path / "model.onnx"
    assert main(["quantize", TRUST, str(trained.joblib), "--format", "onnx", *flags,
                 "-o", str(target)]) == 2
    assert message in capsys.readouterr().err
    assert not target.exists()


def test_quantize_onnx_without_the_packages_says_how_to_install(
        trained, tmp_path, capsys, monkeypatch):
    import skquant.cli

    monkeypatch.setattr(skquant.cli, "load_model", _not_called("loading the model"))
    monkeypatch.setitem(sys.modules, "onnx", None)  # importing onnx now fails
    assert main(["quantize", TRUST, str(trained.joblib), "--format", "onnx",
                 "-o", str(tmp_path / "model.onnx")]) == 2
    assert 'pip install "skquant[onnx]"' in capsys.readouterr().err


def test_quantize_onnx_keeps_the_safety_rules(trained, tmp_path, capsys):
    # no pickle without --trust-pickle
    target = tmp_path / "model.onnx"
    assert main(["quantize", str(trained.joblib), "--format", "onnx", "-o", str(target)]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert not target.exists()
    # never over an input, even with --force
    model = _copy(trained.joblib, tmp_path)
    before = model.read_bytes()
    assert main(["quantize", TRUST, str(model), "--format", "onnx", "-o", str(model),
                 "--force"]) == 2
    assert "is also an input of this command" in capsys.readouterr().err
    assert model.read_bytes() == before
    # an existing file only with --force, replaced whole
    target.write_bytes(b"previous")
    argv = ["quantize", TRUST, str(trained.joblib), "--format", "onnx", "--dtype",
            "float32", "-o", str(target)]
    assert main(argv) == 2
    assert f"--output {target} already exists; pass --force" in capsys.readouterr().err
    assert target.read_bytes() == b"previous"
    assert main(argv + ["--force"]) == 0
    capsys.readouterr()
    assert target.read_bytes() != b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.joblib", "model.onnx"]


def test_the_demo_names_each_family_s_best_and_the_winner():
    from skquant._demo_report import _family_summary

    rows = [
        {"family": "column:pca", "dims": 16, "cv_accuracy": 0.95, "test_accuracy": 0.96},
        {"family": "column:pca", "dims": 32, "cv_accuracy": 0.97, "test_accuracy": 0.97},
        {"family": "graph:spectral", "dims": 32, "cv_accuracy": 0.98, "test_accuracy": 0.985},
        {"family": "graph:spectral", "dims": 64, "cv_accuracy": 0.975, "test_accuracy": 0.99},
    ]
    lines = _family_summary(rows, best=2).splitlines()
    assert lines[1].split()[:2] == ["column:pca", "32"]
    assert lines[2].split()[:2] == ["graph:spectral", "32"] and lines[2].endswith("<- winner")
    assert lines[-1] == ("winner: graph:spectral, by CV accuracy 0.9800 against 0.9700 for "
                         "column:pca (test accuracy 0.9850 against 0.9700)")
    rows[1]["cv_accuracy"] = 0.98  # a tie: said so
    assert _family_summary(rows, best=2).splitlines()[-1] == (
        "winner: graph:spectral, tied on CV accuracy 0.9800 with column:pca, the search "
        "keeping the first (test accuracy 0.9850 against 0.9700)")
    alone = _family_summary(rows[:2], best=1).splitlines()
    assert alone[-1] == "winner: column:pca, the only family searched"


# ------------------------------------------------------------ the CSV reader
def test_a_numeric_header_is_detected(tmp_path):
    # pandas.DataFrame(X).to_csv(index=False) names the columns 0, 1, ...:
    # that row is a header, not data (read as data, every row shifted by one)
    pd = pytest.importorskip("pandas")
    from skquant._io import read_table

    rng = np.random.RandomState(0)
    frame = pd.DataFrame(rng.normal(size=(6, 3)))
    frame[3] = [0, 1, 0, 1, 0, 1]
    path = tmp_path / "numbered.csv"
    frame.to_csv(path, index=False)
    notes = []
    X, y, names = read_table(str(path), notes=notes)
    np.testing.assert_allclose(X, frame.iloc[:, :3].to_numpy())
    assert y.tolist() == [0, 1, 0, 1, 0, 1] and names == ["0", "1", "2"]
    assert notes == [f"read {path}: separator ',' (comma), a header row, labels from "
                     "column '3' (the last column)"]
    # the user's word wins: --no-header reads that row as data
    X, y, names = read_table(str(path), header=False, require_label=False)
    assert X.shape == (7, 4) and names is None and np.isnan(X).sum() == 0
    # columns numbered from 1, and a data row that happens to count up too
    path.write_text("1,2,3\n1.5,2.5,0\n4,5,1\n")
    assert read_table(str(path))[0].shape == (2, 2)
    path.write_text("0,1,2\n0,1,2\n0,1,1\n")
    assert read_table(str(path))[0].shape == (3, 2)


@pytest.mark.parametrize("separator, shown", [(";", "';' (semicolon)"), ("\t", "tab"),
                                              ("|", "'|'")])
def test_the_separator_is_detected_and_named(tmp_path, separator, shown):
    from skquant._io import read_table

    path = tmp_path / "data.csv"
    path.write_text("\n".join(separator.join(row) for row in
                              [["a", "b", "label"], ["1.5", "2", "x"], ["3", "", "y"],
                               ["4", "5", "x"]]) + "\n")
    notes = []
    X, y, names = read_table(str(path), notes=notes)
    assert names == ["a", "b"] and y.tolist() == ["x", "y", "x"]
    np.testing.assert_array_equal(X[:, 0], [1.5, 3, 4])
    assert np.isnan(X[1, 1])
    assert f"separator {shown}" in notes[0] and "labels from column 'label' (by its name)" in notes[0]


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".parquet"])
def test_compressed_csv_and_parquet_read_the_same_values(tmp_path, suffix):
    pd = pytest.importorskip("pandas")
    from skquant._io import read_table

    rng = np.random.RandomState(1)
    frame = pd.DataFrame(rng.normal(size=(50, 4)), columns=["a", "b", "c", "d"])
    frame.loc[3, "b"] = np.nan
    frame["label"] = rng.randint(0, 3, size=50)
    path = tmp_path / f"table{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)  # compression from the name
    X, y, names = read_table(str(path))
    assert names == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(y, frame["label"].to_numpy())
    np.testing.assert_allclose(X, frame[names].to_numpy(), equal_nan=True)


def test_a_continuous_last_column_taken_as_the_label_is_named(tmp_path):
    from skquant._io import read_table

    path = tmp_path / "reg.csv"
    rng = np.random.RandomState(0)
    path.write_text("a,b,value\n" + "".join(f"{rng.rand():.3f},{rng.rand():.3f},"
                                            f"{rng.rand():.5f}\n" for _ in range(40)))
    notes = []
    read_table(str(path), notes=notes)
    assert "labels from column 'value' (the last column; it holds 40 distinct values, " \
           "which looks continuous: name the label with --label-column)" in notes[0]


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n" + "3,4\n" * 100 + "5\n", "Expected 2 columns, got 1"),
    ("a,label\n1,0\n2,1\n", None),
])
def test_a_short_line_beyond_the_sample_is_refused(tmp_path, content, message):
    from skquant._io import DataError, read_table

    path = tmp_path / "long.csv"
    path.write_text(content)
    if message is None:
        assert read_table(str(path))[0].shape == (2, 1)
        return
    with pytest.raises(DataError, match=message):
        read_table(str(path))


def test_a_closed_pipe_ends_predict_quietly(tmp_path):
    # `skquant predict ... | head -1`: exit 0, no traceback
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    model = tmp_path / "m.joblib"
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), model)
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(f"{a:.4f},{b:.4f},{c:.4f}\n"
                            for a, b, c in rng.normal(size=(200_000, 3))))
    command = (f"set -o pipefail; {shlex.quote(sys.executable)} -m skquant.cli predict "
               f"--trust-pickle {model} {rows} --no-header | head -n 2")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_the_demo_s_dims_fit_a_narrow_table(tmp_path, capsys):
    # five columns: the default dims are 2, 5, 8 and 16 (4 is within a
    # quarter of 5), so that PCA is searched, and the tree and graph
    # families get dims beyond the width
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    path = tmp_path / "narrow.csv"
    path.write_text("a,b,c,d,e,label\n" + "".join(
        ",".join(f"{v:.4f}" for v in row) + f",{label}\n" for row, label in zip(X, y)))
    out = tmp_path / "out"
    assert main(["demo", "--data", str(path), "--kinds", "column:pca", "--cv", "2",
                 "--epochs", "2", "--no-progress", "--output-dir", str(out)]) == 0
    captured = capsys.readouterr()
    assert "dims: 2,5,8,16 (a ladder around the 5 cleaned columns" in captured.out
    assert "note: column:pca skips dims [8, 16]" in captured.out
    assert f"read {path}: separator ',' (comma), a header row, labels from column " \
           "'label' (by its name)" in captured.err
    table = (out / "results.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in table[1:]] == ["2", "5"]


def test_predict_streams_a_csv_in_blocks(tmp_path, monkeypatch, capsys):
    # blocks of 4 KiB of text: many blocks, the same predictions as the
    # whole file read at once, written in order
    import skquant._io

    rng = np.random.RandomState(0)
    X = rng.normal(size=(3000, 4))
    y = np.where(X[:, 0] > 0, "yes", "no")
    model = tmp_path / "m.joblib"
    joblib.dump(make_pipeline(Cleaner(), LogisticRegression()).fit(X, y), model)
    rows = tmp_path / "rows.csv.gz"
    import gzip

    lines = [";".join(f"{v:.5f}" for v in row) + ";x" for row in X]
    lines[7] = "0.1;NA;0.2;0.3;x"  # a hole, which the Cleaner imputes
    with gzip.open(rows, "wt") as handle:
        handle.write("a;b;c;d;label\n" + "\n".join(lines) + "\n")
    monkeypatch.setattr(skquant._io, "_STREAM_BLOCK_BYTES", 4096)
    out = tmp_path / "predictions.csv"
    assert main(["predict", TRUST, str(model), str(rows), "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "prediction" and len(lines) == 3001
    reference = joblib.load(model)
    from skquant._io import read_table

    X_read, _, _ = read_table(str(rows), require_label=False)
    assert X_read.shape == (3000, 4) and np.isnan(X_read[7, 1])
    np.testing.assert_array_equal(lines[1:], reference.predict(X_read))
    names, blocks = skquant._io.iter_csv_blocks(str(rows))
    blocks = list(blocks)
    assert names == ["a", "b", "c", "d"] and len(blocks) > 10
    np.testing.assert_array_equal(np.vstack(blocks), X_read)
    assert "in blocks: separator ';' (semicolon), a header row, column 'label' left out" \
        in capsys.readouterr().err


def test_a_bad_value_in_a_later_block_leaves_no_output(tmp_path, monkeypatch, capsys):
    import skquant._io

    rng = np.random.RandomState(0)
    X = rng.normal(size=(2000, 2))
    model = tmp_path / "m.joblib"
    joblib.dump(LogisticRegression().fit(X, X[:, 0] > 0), model)
    rows = tmp_path / "rows.csv"
    text = "a,b\n" + "".join(f"{a:.5f},{b:.5f}\n" for a, b in X)
    rows.write_text(text + "1.0,red\n")
    monkeypatch.setattr(skquant._io, "_STREAM_BLOCK_BYTES", 4096)
    out = tmp_path / "predictions.csv"
    assert main(["predict", TRUST, str(model), str(rows), "-o", str(out)]) == 2
    assert "a feature column holds a value that is not a number" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))


def test_the_demo_prints_each_warning_once_after_the_search(tmp_path, capsys, monkeypatch):
    # a projection that warns on every fit: one line after the bar, with the
    # count, instead of one per fit breaking the bar's line
    import warnings

    from skquant.projection import ColumnProjection

    fit = ColumnProjection.fit

    def noisy_fit(self, X, y=None):
        warnings.warn("a projection warning", UserWarning)
        warnings.warn("a library's deprecation", DeprecationWarning)
        return fit(self, X, y)

    monkeypatch.setattr(ColumnProjection, "fit", noisy_fit)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 4))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0).astype(int))
    out = tmp_path / "out"
    assert main(["demo", "--data", str(tmp_path / "d.npz"), "--kinds", "column:pca",
                 "--dims", "2,3", "--cv", "2", "--epochs", "2", "--no-progress",
                 "--output-dir", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("a projection warning") == 1
    assert "warning (6 times): UserWarning: a projection warning" in err
    assert "deprecation" not in err  # hidden, as Python's default filters hide them
    table = (out / "results.csv").read_text().splitlines()
    assert table[0].split(",")[-1] == "chosen"
    assert sum(line.endswith(",True") for line in table[1:]) == 1


def _candidates(spread):
    return [
        {"family": "column:pca", "dims": 8, "cv_accuracy": 0.970, "cv_std": 0.0,
         "int8_bytes": 3000},
        {"family": "column:pca", "dims": 32, "cv_accuracy": 0.975, "cv_std": 0.0,
         "int8_bytes": 6000},
        {"family": "graph:spectral", "dims": 32, "cv_accuracy": 0.980, "cv_std": spread,
         "int8_bytes": 80000},
    ]


def test_the_demo_keeps_the_smallest_candidate_within_noise():
    from skquant._demo import _best_by_cv, _choose, _within_noise_line

    # within the best's spread over the folds, the smallest artifact is kept
    rows = _candidates(0.006)
    best = _best_by_cv(rows)
    assert best == 2 and _choose(rows, best, "within-noise") == 1
    assert _choose(rows, best, "best") == 2
    assert _within_noise_line(rows, best, 1, "within-noise") == (
        "within noise: column:pca at 32 dims reaches CV accuracy 0.9750, within one "
        "standard deviation over the folds of the best's (graph:spectral at 32 dims) "
        "0.9800 ± 0.0060, at 6,000 int8 bytes against 80,000: it is the one kept "
        "(--choose best keeps the best)")
    # --choose best names it and keeps the best
    assert _within_noise_line(rows, best, 2, "best").endswith(
        "6,000 int8 bytes against 80,000: --choose within-noise keeps it")
    # a wider spread reaches the smaller one
    assert _choose(_candidates(0.01), best, "within-noise") == 0
    # nothing within the spread, or no artifact to compare: the best
    rows = _candidates(0.001)
    assert _choose(rows, best, "within-noise") == best
    assert _within_noise_line(rows, best, best, "within-noise") is None
    # a best without an int8 artifact: any candidate within noise that has one
    rows = _candidates(0.01)
    rows[2]["int8_bytes"] = None
    assert _choose(rows, best, "within-noise") == 0
    assert _within_noise_line(rows, best, 0, "within-noise").endswith(
        "at 3,000 int8 bytes against none (the best has no int8 artifact): it is the one "
        "kept (--choose best keeps the best)")
    rows[0]["int8_bytes"] = rows[1]["int8_bytes"] = None
    assert _choose(rows, best, "within-noise") == best
    # a spread that is not a number admits nothing
    assert _choose(_candidates(float("nan")), best, "within-noise") == best
    # a candidate without an int8 artifact is never kept for its size
    rows = _candidates(0.01)
    rows[0]["int8_bytes"] = None
    assert _choose(rows, best, "within-noise") == 1
    # of two of one size, the more accurate; a tie of CV accuracy: the first
    rows = _candidates(0.01)
    rows[1]["int8_bytes"] = 3000
    assert _choose(rows, best, "within-noise") == 1
    rows[2]["cv_accuracy"] = rows[1]["cv_accuracy"] = 0.975
    assert _best_by_cv(rows) == 1


def test_the_demo_refuses_an_unknown_choice(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["demo", "--choose", "largest"])
    assert raised.value.code == 2
    assert "invalid choice: 'largest'" in capsys.readouterr().err


# ------------------------------------------------------------- raw tables
def test_the_demo_keeps_each_candidate_s_own_projection(small_digits):
    # the grid holds one projection object per family: every candidate must
    # get its own copy, or a later candidate's refit changes the model kept
    from sklearn.model_selection import GridSearchCV

    from skquant._demo import _best_by_cv, _search_and_refit
    from skquant.pipeline import projection_grid

    X, y = small_digits
    pipeline = make_quant_pipeline(random_state=0, classify__epochs=1)
    grid = projection_grid(["column:pca"], [2, 3])
    # the smallest projection scores best, so that the kept model is not the last fitted
    search = GridSearchCV(pipeline, grid, cv=2, refit=False,
                          scoring=lambda model, X, y: -model.named_steps["project"].n_components)
    bar = SimpleNamespace(update=lambda n: None)
    rows, models = _search_and_refit(search, pipeline, X[:200], y[:200], X[200:], y[200:], bar)
    best = _best_by_cv(rows)
    assert rows[best]["dims"] == 2
    assert models[best].named_steps["project"].n_components_ == 2
    assert len(models[best].predict(X[200:])) == 100
    # only the candidates the choice may keep: here the best (the other is
    # not within the folds' spread, 0, of its score)
    assert set(models) == {best}


def test_demo_and_predict_on_a_raw_table_with_text_and_missing_values(tmp_path, capsys):
    palmerpenguins = pytest.importorskip("palmerpenguins")
    frame = palmerpenguins.load_penguins()
    data = tmp_path / "penguins.csv"
    frame.to_csv(data, index=False)  # text columns, NaNs, the label first
    out = tmp_path / "out"
    code = main(["demo", "--data", str(data), "--label-column", "species", "--kinds",
                 "column:pca", "--dims", "2,4", "--cv", "2", "--epochs", "20",
                 "--output-dir", str(out), "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    assert "text column(s) ['island', 'sex'] read as categories" in captured.err
    assert "(9 after cleaning)" in captured.out
    model_path = out / "best_pipeline.joblib"
    artifact = tmp_path / "model.skq"
    assert main(["quantize", TRUST, str(model_path), "-o", str(artifact),
                 "--dtype", "float32"]) == 0
    capsys.readouterr()
    # new rows with an unknown island and missing values, streamed as CSV
    rows = frame.drop(columns="species").head(40).copy()
    rows.loc[0, "island"] = "Atlantis"
    rows.loc[1, "sex"] = None
    rows.loc[2, "bill_length_mm"] = None
    new = tmp_path / "new.csv"
    rows.to_csv(new, index=False)
    assert main(["predict", TRUST, str(model_path), str(new)]) == 0
    from_pipeline = capsys.readouterr().out.split()
    assert main(["predict", str(artifact), str(new)]) == 0
    from_artifact = capsys.readouterr().out.split()
    expected = [str(p) for p in joblib.load(model_path).predict(rows)]
    assert from_pipeline == expected and from_artifact == expected


def test_demo_jobs_gives_the_serial_search_s_results(small_digits, tmp_path, capsys):
    # the cross-validation fits in two worker processes: the same scores, and
    # the bar, ticked through a file by the workers, reaches its total
    X, y = small_digits
    data = tmp_path / "digits.npz"
    np.savez(data, X=X[:240], y=y[:240])
    tables = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        # (the graph family's neighbour search and eigensolver round with the
        # BLAS threads they get: the workers get this process's count)
        assert main(["demo", "--data", str(data), "--kinds", "column:pca,graph:spectral",
                     "--dims", "4", "--cv", "2", "--epochs", "2", "--output-dir", str(out),
                     "--jobs", jobs]) == 0
        err = capsys.readouterr().err
        assert "6/6" in err.replace("\r", "\n")  # 2 candidates x (2 folds + 1 refit)
        tables.append([line.split(",")[:4] for line in
                       (out / "results.csv").read_text().splitlines()])
    assert tables[0] == tables[1]
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--jobs", "0"])
    assert exit_info.value.code == 2
    assert "--jobs: expected a positive integer" in capsys.readouterr().err
