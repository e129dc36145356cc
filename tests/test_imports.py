"""`import skquant` stays cheap: no TensorFlow or Keras until the classifier is used."""

import os
import subprocess
import sys

HEAVY = ("tensorflow", "keras", "scikeras", "dask", "distributed")


def _modules_after(code, tmp_path):
    script = code + "\nimport sys\nprint('LOADED:' + ','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].removeprefix("LOADED:")


def test_import_skquant_loads_no_tensorflow(tmp_path):
    assert _modules_after("import skquant", tmp_path) == ""


def test_building_and_fitting_projections_loads_no_tensorflow(tmp_path):
    code = (
        "import numpy as np, skquant\n"
        "X = np.random.RandomState(0).normal(size=(50, 6))\n"
        "skquant.Cleaner().fit_transform(X)\n"
        "skquant.ColumnProjection(3).fit_transform(X)\n"
        "for method in ('tsvq', 'random-trees'):\n"
        "    skquant.TreeProjection(3, method=method).fit_transform(X)\n"
        "for method in ('spectral', 'lpp'):\n"
        "    skquant.GraphProjection(3, method=method).fit_transform(X)\n"
        "skquant.make_quant_pipeline('column', 4)\n"
        "import skquant.distributed\n"
        "skquant.projection_grid(['column', 'tree', 'graph'])\n"
    )
    assert _modules_after(code, tmp_path) == ""


def test_cli_help_loads_no_tensorflow(tmp_path):
    code = (
        "import skquant.cli\n"
        "try:\n    skquant.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
    )
    assert _modules_after(code, tmp_path) == ""


def test_fitting_the_classifier_loads_tensorflow_with_its_threads_capped(tmp_path):
    # one TensorFlow start-up serves both checks (each costs seconds)
    code = (
        "import numpy as np, skquant\n"
        "X = np.random.RandomState(0).normal(size=(20, 3)); y = np.arange(20) % 2\n"
        "skquant.KerasMLPClassifier(epochs=1).fit(X, y)\n"
        "import tensorflow as tf\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads())\n"
    )
    env = dict(os.environ, SKQUANT_TF_THREADS="1")
    script = code + "\nimport sys\nprint('LOADED:' + ','.join(m for m in %r if m in sys.modules))" % (
        HEAVY,)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    *_, threads, loaded = result.stdout.strip().splitlines()
    assert "tensorflow" in loaded.removeprefix("LOADED:").split(",")
    assert threads == "1"


def test_tensorflow_started_before_skquant_gets_a_warning(tmp_path):
    # TensorFlow already running: the cap cannot apply, and a warning says so
    code = (
        "import tensorflow as tf\ntf.constant(1.0) + 1.0\n"
        "from skquant.neural._backend import load_keras\n"
        "load_keras()\n"
    )
    env = dict(os.environ, SKQUANT_TF_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "its threads could not be capped at 1" in result.stderr


def test_a_bad_thread_count_is_refused(monkeypatch):
    import pytest

    from skquant.neural._backend import tensorflow_thread_cap

    monkeypatch.setenv("SKQUANT_TF_THREADS", "many")
    with pytest.raises(ValueError, match="SKQUANT_TF_THREADS='many' is not a positive integer"):
        tensorflow_thread_cap()
    monkeypatch.setenv("SKQUANT_TF_THREADS", "3")
    assert tensorflow_thread_cap() == 3
