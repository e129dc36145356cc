"""The ``skquant`` command: ``skquant demo``, ``predict`` and ``quantize``.

Heavy imports (scikit-learn, TensorFlow, matplotlib) happen inside the
commands, so that ``skquant --help`` answers at once.

Two rules keep the command safe to point at files:

* **No unpickling without consent.** A joblib/pickle model can run any code
  when it is loaded, so ``predict`` and ``quantize`` load one only with
  ``--trust-pickle``. A quantized artifact (``*.skq``, a zip of arrays and a
  JSON manifest) holds no code and needs no flag; a file named ``*.skq``, or
  one that starts as a zip, is only ever read as an artifact.
* **No destroyed files.** Every output is checked before the work starts:
  it may not be one of the command's inputs (not even with ``--force``), and
  an existing file is replaced only with ``--force``. Files are written
  atomically (``skquant._atomic``), so an interrupted command leaves the
  previous file intact.
"""

import argparse
import csv
import os
import shlex
import sys

from ._atomic import atomic_write, check_output_path
from ._demo import CHOICES, _DEMO_KINDS, _DEMO_MODEL, _DEMO_PLOT, _DEMO_TABLE, run_demo
from ._io import iter_csv_blocks, read_table


# a zip file's first bytes: a local file header, or the end record of an
# empty archive. An artifact cut short by a killed save still starts so,
# whereas a pickle starts with its protocol byte (and may hold zip files,
# such as a Keras model, inside it: `zipfile.is_zipfile` can say True for a
# joblib pipeline, so only the first bytes decide)
_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")

_EXAMPLES = """\
examples:
  skquant demo --output-dir skquant-demo
  skquant quantize --trust-pickle skquant-demo/best_pipeline.joblib -o model.skq
  skquant predict model.skq new_rows.csv -o predictions.csv
  skquant predict --trust-pickle skquant-demo/best_pipeline.joblib new_rows.csv

  signed artifacts (HMAC-SHA256; the key file's bytes are the key):
  skquant quantize --trust-pickle best_pipeline.joblib -o model.skq --key-file secret.key
  skquant predict model.skq new_rows.csv --key-file secret.key

A joblib file can run code when loaded: pass --trust-pickle only for one you
made or whose source you trust. A .skq artifact holds no code.
"""


class CommandError(Exception):
    """A user-facing error: printed as ``skquant: error: ...``, exit code 2."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _header_arguments(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--header", dest="header", action="store_true", default=None,
                       help="the CSV's first row is a header (default: detected)")
    group.add_argument("--no-header", dest="header", action="store_false",
                       help="the CSV's first row is data (default: detected)")


def _read(path, args, require_label, allow_text=False):
    """``read_table`` with the command's options; what it detected goes to stderr."""
    notes = []
    table = read_table(path, args.label_column, require_label=require_label,
                       header=args.header, notes=notes, allow_text=allow_text)
    for note in notes:
        print(note, file=sys.stderr)
    return table


_TRUST_HELP = ("load a joblib/pickle model file. Loading one can run any code it "
               "holds: pass this only for a file you made or whose source you "
               "trust. Not needed (and never used) for a .skq artifact")
_FORCE_HELP = "replace an existing output file (an input file is never replaced)"


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skquant",
        description="Clean, project and classify with scikit-learn and Keras.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="search projection family x dimension on a data set, end to end",
        description=(
            "Split the data (stratified), grid-search the projection family and "
            "its dimension with cross-validation, report every candidate's CV "
            "and test accuracy, fit time and size, save the chosen pipeline "
            f"({_DEMO_MODEL}), the table ({_DEMO_TABLE}) and a plot "
            f"({_DEMO_PLOT}) into --output-dir. Without --data it runs on "
            "scikit-learn's bundled digits. The output directory must be new "
            "or empty (or pass --force); this is checked before the search."
        ),
    )
    demo.add_argument("--data", help="a .csv or .npz file (default: sklearn's digits)")
    demo.add_argument("--label-column", help="the label column (CSV name/index, NPZ key)")
    _header_arguments(demo)
    demo.add_argument("--kinds", default=_DEMO_KINDS,
                      help="comma-separated families (every method) or "
                           "family:method (default: each family's default method, "
                           f"{_DEMO_KINDS})")
    demo.add_argument("--dims", type=_int_list, default=None,
                      help="comma-separated dimensions (default: 8,16,32,64, or for "
                           "fewer than 32 cleaned columns a ladder around their count: "
                           "the two powers of two below it, the count, and the powers "
                           "of two above it up to four times it)")
    demo.add_argument("--cv", type=_positive_int, default=3,
                      help="cross-validation folds (default: 3)")
    demo.add_argument("--epochs", type=_positive_int, default=None,
                      help="training epochs (default: the classifier's)")
    demo.add_argument("--test-size", type=float, default=0.25,
                      help="held-out share of rows (default: 0.25)")
    demo.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    demo.add_argument("--output-dir", default="skquant-demo",
                      help="a new or empty directory for the model, table and plot "
                           "(default: ./skquant-demo)")
    demo.add_argument("--force", action="store_true",
                      help=f"write into a non-empty --output-dir, replacing its "
                           f"{_DEMO_MODEL}, {_DEMO_TABLE} and {_DEMO_PLOT} (nothing "
                           "else in it is touched)")
    demo.add_argument("--choose", choices=CHOICES, default="within-noise",
                      help="the model kept: within-noise (default), the smallest int8 "
                           "artifact whose CV accuracy is within one standard deviation "
                           "over the folds of the best's; best, the best CV accuracy "
                           "(GridSearchCV's choice)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.add_argument("--jobs", type=_positive_int, default=1,
                      help="processes for the search's cross-validation fits (default: "
                           "1); each loads TensorFlow once, so more than one pays off on "
                           "searches longer than some tens of seconds")

    predict = commands.add_parser(
        "predict",
        help="predict with a quantized artifact or a saved pipeline",
        description=(
            "Predict every row of a .csv or .npz file with a quantized artifact "
            "(.skq, as `skquant quantize` writes), or with a pipeline saved with "
            "joblib (as `skquant demo` writes) when --trust-pickle is given: a "
            "joblib file can run code when loaded, an artifact cannot."
        ),
        epilog="example: skquant predict model.skq new_rows.csv -o predictions.csv",
    )
    predict.add_argument("model", help="a quantized artifact (.skq) from `skquant "
                                       "quantize`, or, with --trust-pickle, a .joblib "
                                       "file holding a fitted pipeline")
    predict.add_argument("data", help="a .csv or .npz file with the model's feature columns")
    predict.add_argument("-o", "--output", help="write predictions to this CSV instead of stdout")
    predict.add_argument("--label-column",
                         help="a label column to ignore in the data file, if it has one")
    _header_arguments(predict)
    predict.add_argument("--trust-pickle", action="store_true", help=_TRUST_HELP)
    predict.add_argument("--key-file", metavar="PATH",
                         help="verify the artifact's HMAC-SHA256 signature with the "
                              "key in this file (its bytes, as they are); an unsigned "
                              "or wrongly signed artifact is refused")
    predict.add_argument("--force", action="store_true", help=_FORCE_HELP)

    quantize = commands.add_parser(
        "quantize",
        help="export a fitted pipeline to a small numpy-only artifact",
        description=(
            "Load a fitted pipeline saved with joblib (which needs --trust-pickle: "
            "a joblib file can run code when loaded) and write it as a quantized "
            "artifact: one file of arrays and a JSON manifest that `skquant "
            "predict` and skquant.load_quantized serve with numpy alone, and "
            "that holds no code."
        ),
        epilog=("examples: skquant quantize --trust-pickle best_pipeline.joblib -o "
                "model.skq; skquant quantize --trust-pickle best_pipeline.joblib "
                "--format onnx --dtype int8 --check labelled.csv -o model.onnx (for an "
                "int8 ONNX file the --check rows also choose which weights stay "
                "float32: see skquant.export_onnx)"),
    )
    quantize.add_argument("model", help="a .joblib file holding a fitted pipeline")
    quantize.add_argument("--dtype", choices=["int8", "float16", "float32"], default="int8",
                          help="storage of the weight matrices (default: int8)")
    quantize.add_argument("-o", "--output", required=True, help="the artifact to write (.skq)")
    quantize.add_argument("--check", metavar="DATA",
                          help="a labelled .csv or .npz file: report both models' accuracy")
    quantize.add_argument("--label-column", help="the label column of --check")
    _header_arguments(quantize)
    quantize.add_argument("--trust-pickle", action="store_true", help=_TRUST_HELP)
    quantize.add_argument("--key-file", metavar="PATH",
                          help="sign the artifact (HMAC-SHA256) with the key in this "
                               "file (its bytes, as they are); `skquant predict "
                               "--key-file` then verifies it")
    quantize.add_argument("--format", choices=["skq", "onnx"], default="skq",
                          help="skq: the numpy-only artifact (default); onnx: one "
                               "ONNX model, raw rows to label and probabilities, for "
                               "any ONNX runtime (needs pip install \"skquant[onnx]\"; "
                               "--dtype float32 or int8)")
    quantize.add_argument("--force", action="store_true", help=_FORCE_HELP)
    return parser


def main(argv=None):
    """Entry point of the ``skquant`` command.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        0 on success; 2 after an error, which is printed to stderr as
        ``skquant: error: ...`` with what was wrong and what to do.

    Examples
    --------
    >>> from skquant.cli import main
    >>> main(["predict", "no-such-model.skq", "rows.csv"])  # prints the error
    2
    """
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(args)
        if args.command == "quantize":
            return run_quantize(args)
        return run_predict(args)
    except BrokenPipeError:
        # the reader of our output stopped (``skquant predict ... | head``):
        # end quietly, as other command-line tools do; the rest of stdout
        # goes nowhere, so that Python's exit does not fail on it again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (CommandError, ValueError, OSError) as exc:
        # DataError, OutputError, ArtifactError, sklearn's parameter and
        # NotFittedError errors are ValueErrors that already say what is
        # wrong; OSError: a path that cannot be read or written
        print(f"skquant: error: {exc}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------- loading
def _is_artifact(path):
    """Whether ``path`` is to be read as a quantized artifact: by its name
    (``*.skq``, whatever it holds) or by its content (a zip file, also a
    truncated one). Everything else is a pickle."""
    return os.fspath(path).lower().endswith(".skq") or _starts_as_zip(path)


def _starts_as_zip(path):
    with open(path, "rb") as handle:
        return handle.read(4) in _ZIP_STARTS


def _cut_zip(path):
    """A file that starts as a zip but lacks the zip's closing directory:
    what a save interrupted part-way leaves."""
    import zipfile

    return _starts_as_zip(path) and not zipfile.is_zipfile(path)


def _load_artifact(path, key):
    from .runtime import ArtifactError, load_quantized

    if not _starts_as_zip(path):  # named .skq, holding something else
        raise CommandError(
            f"{path} is not a skquant artifact: it does not start as a zip file. A "
            ".skq file is only ever read as an artifact, never unpickled (whatever "
            "--trust-pickle says). Write artifacts with `skquant quantize`.")
    try:
        # the key only when given, so an unsigned artifact loads as before
        return load_quantized(path) if key is None else load_quantized(path, key=key)
    except ArtifactError:
        # whatever the loader saw, the cause of a zip without its closing
        # directory is known: say so (never "not an artifact")
        if _cut_zip(path):
            raise CommandError(
                f"{path} is a truncated or corrupt skquant artifact: it starts as a "
                "zip file but its end is missing, as when a save is interrupted. "
                "Export the model again."
            ) from None
        raise


_UNTRUSTED_PICKLE = (
    "{path} is a pickle (joblib) file, and loading a pickle can run any code it "
    "holds, so skquant loads one only when you pass --trust-pickle. Pass it if you "
    "made this file or trust its source. To serve a model without that trust, use "
    "a quantized .skq artifact, which holds no code: `skquant quantize "
    "--trust-pickle MODEL.joblib -o model.skq` writes one from a model you trust."
)


def load_model(path, *, allow_artifact=True, trust_pickle=False, key=None):
    """Load a model for the command line, with clear errors.

    Parameters
    ----------
    path : str
        A quantized artifact (read by name, ``*.skq``, or by content, a zip
        file) or a joblib/pickle file of a fitted estimator.
    allow_artifact : bool, default=True
        Whether an artifact is accepted (``quantize`` takes a pipeline).
    trust_pickle : bool, default=False
        Whether a pickle may be loaded (loading one can run code).
    key : bytes or None, default=None
        Verify the artifact's signature with this key; a pickle is then
        refused, as it cannot be verified.

    Returns
    -------
    model : estimator or QuantizedPipeline

    Raises
    ------
    CommandError
        For a missing file, an untrusted or unreadable pickle, an artifact
        where none is accepted, a pickle that holds no fitted model.
    skquant.runtime.ArtifactError
        For an artifact that cannot be served (corrupt, truncated, unsigned
        or wrongly signed with ``key``).
    """
    if not os.path.isfile(path):
        raise CommandError(f"model file not found: {path}")
    if os.fspath(path).lower().endswith(".skops"):
        if key is not None:
            raise CommandError(
                f"--key-file verifies quantized artifacts, but {path} is a skops file, "
                "which carries no signature. Verify a .skq artifact written by "
                "`skquant quantize --key-file`, or drop --key-file.")
        return _load_skops(path)
    if _is_artifact(path):
        if not allow_artifact:
            raise CommandError(
                f"{path} is already a quantized artifact (by its .skq name or its zip "
                "content, whatever it holds: it is never unpickled); quantize takes the "
                "joblib pipeline it came from: give that file (with --trust-pickle).")
        return _load_artifact(path, key)
    if key is not None:
        raise CommandError(
            f"--key-file verifies quantized artifacts, but {path} is a pickle "
            "(joblib) file, which carries no signature. Verify a .skq artifact "
            "written by `skquant quantize --key-file`, or drop --key-file.")
    if not trust_pickle:
        raise CommandError(_UNTRUSTED_PICKLE.format(path=path))
    import joblib

    try:
        model = joblib.load(path)
    except Exception as exc:  # a corrupt file can fail in many ways
        raise CommandError(
            f"could not load {path}: it is not a readable joblib model file "
            f"({type(exc).__name__}: {exc}). Save models with joblib.dump or "
            "`skquant demo`."
        ) from exc
    if not hasattr(model, "predict"):
        raise CommandError(
            f"{path} holds a {type(model).__name__}, not a fitted model with predict()."
        )
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CommandError(f"{path} holds an unfitted {type(model).__name__}; fit it first.")
    return model


def _load_skops(path):
    """A pipeline saved with ``skops.io.dump``, loaded trusting scikit-learn's
    defaults and skquant's own estimator types only: no pickle runs, so no
    ``--trust-pickle`` is needed."""
    try:
        import skops.io as sio
    except ImportError:
        raise CommandError(f"reading {path} needs skops: pip install skops "
                           "(or pip install \"skquant[skops]\").") from None
    from ._skops import trusted_types

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # not a skops file: whatever its reader raises
        raise CommandError(f"could not read {path} as a skops file "
                           f"({type(exc).__name__}: {exc}).") from None
    foreign = sorted(set(untrusted) - set(trusted_types()))
    if foreign:
        raise CommandError(
            f"{path} holds types that are neither scikit-learn's nor skquant's "
            f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}): skquant "
            "loads only those. Load it yourself with skops.io.load(path, trusted=...) "
            "if you trust them.")
    try:
        model = sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise CommandError(f"could not load {path} ({type(exc).__name__}: {exc}).") from None
    if not hasattr(model, "predict"):
        raise CommandError(
            f"{path} holds a {type(model).__name__}, not a fitted model with predict().")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CommandError(f"{path} holds an unfitted {type(model).__name__}; fit it first.")
    return model


_MAX_KEY_BYTES = 1 << 16  # a secret is some tens of bytes; this is not one


def _read_key(path, inputs=()):
    """The bytes of a ``--key-file`` (``None`` without one), which is none
    of the command's other ``inputs`` (the model, the data)."""
    if path is None:
        return None
    if os.path.isdir(path):
        raise CommandError(f"key file {path} is a directory; give the file that holds "
                           "the secret key.")
    if not os.path.isfile(path):
        raise CommandError(f"key file not found: {path}")
    for source in inputs:
        if source is not None and os.path.isfile(source) and os.path.samefile(path, source):
            raise CommandError(
                f"--key-file {path} is also the command's {source} (the model or data "
                "file), not a secret key: give the file that holds the key.")
    if os.path.getsize(path) > _MAX_KEY_BYTES:
        raise CommandError(
            f"key file {path} holds {os.path.getsize(path):,} bytes, more than the "
            f"{_MAX_KEY_BYTES:,} a key file may: a key is a short secret (32 random "
            "bytes, say), so this is probably not the key file.")
    with open(path, "rb") as handle:
        key = handle.read()
    if not key:
        raise CommandError(
            f"key file {path} is empty; put the secret key in it, e.g. "
            "`python -c \"import secrets; print(secrets.token_hex(32))\" > "
            f"{shlex.quote(path)}`.")
    return key


def _streams(path):
    """Whether ``predict`` reads ``path`` in blocks (a CSV, plain or compressed)."""
    name = os.fspath(path).lower()
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    return name.endswith((".csv", ".txt")) and os.path.isfile(path)


def _text_columns(model):
    """The input positions a model reads as categories (its Cleaner's)."""
    import numpy as np

    categorical = getattr(model, "_categorical", None)  # a QuantizedPipeline
    if categorical is not None:
        # (and the columns its Cleaner dropped, text or not: never read)
        return sorted(set(categorical) | set(getattr(model, "_unread", ())))
    steps = getattr(model, "steps", None)
    first = steps[0][1] if steps else model
    mask = getattr(first, "categorical_", None)
    return [] if mask is None else np.flatnonzero(mask).tolist()


def _feature_frame(model, X, names, path):
    """Pick the model's columns by name when both sides have names."""
    expected = getattr(model, "feature_names_in_", None)
    if expected is not None and names is not None:
        missing = [n for n in expected if n not in names]
        if missing:
            raise CommandError(f"{path} lacks the model's column(s) {missing}.")
        order = [names.index(n) for n in expected]
        if hasattr(X, "iloc"):
            frame = X.iloc[:, order]
            frame.columns = list(expected)
            return frame
        return X[:, order]
    n_expected = getattr(model, "n_features_in_", X.shape[1])
    if X.shape[1] != n_expected:
        raise CommandError(
            f"{path} has {X.shape[1]} feature columns but the model expects "
            f"{n_expected}. Name the label column with --label-column if the "
            "file has one."
        )
    return X


def _text_positions(model, args):
    """The positions, among a CSV's feature columns, of those the model
    reads as categories: by name where the file and the model have names."""
    from ._io import _detect

    columns = _text_columns(model)
    expected = getattr(model, "feature_names_in_", None)
    if not columns or expected is None:
        return columns
    _, _, _, has_header, names, label_index = _detect(args.data, args.label_column, False,
                                                      args.header)
    if not has_header:
        return columns
    features = [name for j, name in enumerate(names) if j != label_index]
    wanted = {str(expected[j]) for j in columns}
    return [j for j, name in enumerate(features) if name in wanted]


# ---------------------------------------------------------------- predict
def run_predict(args):
    import numpy as np

    if args.output is not None:  # before any loading: never write over an input
        check_output_path(args.output, inputs=(args.model, args.data, args.key_file),
                          force=args.force, what="--output")
    key = _read_key(args.key_file, inputs=(args.model, args.data))
    model = load_model(args.model, trust_pickle=args.trust_pickle, key=key)
    if _streams(args.data):
        # a CSV is read and predicted a block at a time, and the predictions
        # written as they come: memory stays flat however large the file
        notes = []
        names, blocks = iter_csv_blocks(args.data, args.label_column, header=args.header,
                                        notes=notes, text_columns=_text_positions(model, args))
        for note in notes:
            print(note, file=sys.stderr)
    else:
        X, _, names = _read(args.data, args, require_label=bool(args.label_column),
                            allow_text=bool(_text_columns(model)))
        blocks = iter([X])

    def predictions():
        for X in blocks:
            if len(X):
                yield np.asarray(model.predict(_feature_frame(model, X, names, args.data)))

    def write(handle):
        # one CSV row per prediction: a label holding a comma, a quote or a
        # newline is quoted, so that the rows stay one per input row
        writer, count = csv.writer(handle, lineterminator="\n"), 0
        for labels in predictions():
            writer.writerows([label] for label in labels.tolist())
            count += len(labels)
        return count

    if args.output is not None:
        with atomic_write(args.output, "w", force=args.force) as handle:
            handle.write("prediction\n")
            count = write(handle)
        print(f"wrote {count} predictions to {args.output}", file=sys.stderr)
    else:
        write(sys.stdout)
    return 0


# --------------------------------------------------------------- quantize
def run_quantize(args):
    import numpy as np

    from ._export import quantize

    check_output_path(args.output, inputs=(args.model, args.check, args.key_file),
                      force=args.force, what="--output")
    if args.format == "onnx":
        return _quantize_onnx(args)
    key = _read_key(args.key_file, inputs=(args.model, args.check))
    model, check = _model_and_check_rows(args)
    try:
        quantized = quantize(model, dtype=args.dtype,
                             X_calibration=None if check is None else check[0])
    except TypeError as exc:  # a step skquant cannot export
        raise CommandError(str(exc)) from None
    # the artifact writes itself atomically; the key only when given
    if key is None:
        quantized.save(args.output)
    else:
        quantized.save(args.output, key=key)
    signed = "" if key is None else ", signed (HMAC-SHA256)"
    print(f"wrote {args.output}: {args.dtype}{signed}, "
          f"{os.path.getsize(args.output):,} bytes "
          f"(the joblib pipeline: {os.path.getsize(args.model):,} bytes)")
    if check is not None:
        X, y = check
        original = float(np.mean(model.predict(X) == y))
        served = quantized.score(X, y)
        print(f"accuracy on {args.check}: pipeline {original:.4f}, {args.dtype} artifact "
              f"{served:.4f}; same prediction on "
              f"{quantized.manifest['calibration']['agreement']:.2%} of rows")
    return 0


def _model_and_check_rows(args):
    """The pipeline to export, and the --check rows ``(X, y)`` or None."""
    model = load_model(args.model, allow_artifact=False, trust_pickle=args.trust_pickle)
    if not args.check:
        return model, None
    X, y, names = _read(args.check, args, require_label=True)
    return model, (_feature_frame(model, X, names, args.check), y)


def _quantize_onnx(args):
    """``quantize --format onnx``: the pipeline as one ONNX file. Everything
    that can be refused without the model (the dtype, a key file, missing
    packages) is refused before the pickle is loaded."""
    import numpy as np

    from . import _onnx

    if args.dtype not in _onnx._DTYPES:
        raise CommandError(
            f"--format onnx writes float32 or int8 weights, not {args.dtype}: pass "
            "--dtype float32 or --dtype int8 (float16 is for the .skq artifact).")
    if args.key_file is not None:
        raise CommandError(
            "--key-file signs .skq artifacts; an ONNX file carries no skquant "
            "signature. Drop --key-file, or write a .skq artifact (--format skq).")
    try:
        _onnx._require("onnx", "onnxruntime")
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    model, check = _model_and_check_rows(args)
    try:
        _onnx.export_onnx(model, args.output, dtype=args.dtype,
                          X_calibration=None if check is None else check[0],
                          force=args.force)
    except TypeError as exc:  # a step skquant cannot export
        raise CommandError(str(exc)) from None
    print(f"wrote {args.output}: {args.dtype} ONNX, {os.path.getsize(args.output):,} bytes "
          f"(the joblib pipeline: {os.path.getsize(args.model):,} bytes)")
    if check is not None:
        X, y = check
        original = float(np.mean(model.predict(X) == y))
        served = model.classes_[_onnx.run_onnx(args.output, X).argmax(axis=1)]
        metadata = {entry.key: entry.value
                    for entry in _onnx.load_onnx_model(args.output).metadata_props}
        agreement = float(metadata["skquant.calibration_agreement"])
        print(f"accuracy on {args.check}: pipeline {original:.4f}, {args.dtype} ONNX "
              f"{float(np.mean(served == y)):.4f}; same prediction on {agreement:.2%} "
              "of rows")
    return 0


# ------------------------------------------------------------------- demo
if __name__ == "__main__":
    sys.exit(main())
