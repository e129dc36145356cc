"""What a valid quantized pipeline is: the manifest's schema, the array
index, and what each step needs of its arrays.

Validation runs in two passes, so that nothing large is allocated for a file
that is wrong:

1. :func:`check_model` reads the manifest and the *layout* (each array's
   dtype and shape, known from the manifest's index before the blob is read,
   or from the arrays themselves in memory). It checks types, keys, ranges,
   which arrays each step needs with which dtypes and shapes, and that the
   widths chain from ``n_features_in`` to the number of classes. It returns
   a :class:`Plan`.
2. :meth:`Plan.check_values` then checks what only the values can tell:
   finite weights, positive scales, indices in range, tree structures that
   are forests of bounded depth. Each check is one vectorized numpy pass.

Every failure raises :class:`ArtifactError` (a ``ValueError``) saying what
is wrong. This module imports numpy and the standard library only.

Limits
------
MAX_MANIFEST_BYTES (1 MiB)
    Size of ``manifest.json``; a real manifest is a few kilobytes (names and
    numbers; the arrays live in the blob).
MAX_ARRAY_BYTES (512 MiB)
    Default bound of the declared array bytes (the blob), which
    ``read_artifact(..., max_bytes=...)`` can raise (at most ``MAX_BYTES_CAP``,
    2 GiB less 2 MiB, the largest zip without zip64 records).
MAX_JSON_DEPTH (8), MAX_STEPS (16), MAX_ARRAYS (1024), MAX_LAYERS (64),
MAX_STRING_WIDTH (1024 characters), array rank 1 or 2
    Shape of the manifest.
MAX_TREE_DEPTH (64), MAX_TREE_STEPS (65,536 = trees x depth)
    A random-trees step's work per call is trees x depth vectorized steps
    (and, as each leaf has its own row of the lookup table, its work per
    row at most the table's size).
INT8_SCALE_MAX (about 2.68e36)
    The largest int8 scale: 127 times it is finite in float32, so every
    int8 weight expands to a finite float32.
"""

import json
import re

import numpy as np

MAX_MANIFEST_BYTES = 1 << 20
MAX_ARRAY_BYTES = 512 << 20
MAX_BYTES_CAP = (1 << 31) - (2 << 20)
MAX_JSON_DEPTH = 8
MAX_STEPS = 16
MAX_ARRAYS = 1024
MAX_LAYERS = 64
MAX_STRING_WIDTH = 1024
MAX_TREE_DEPTH = 64
MAX_TREE_STEPS = 1 << 16
MAX_FEATURES = (1 << 31) - 1

DTYPES = ("float32", "float16", "int8")
# every dtype an artifact may hold, spelled as numpy's ``dtype.str`` spells
# them (little-endian); strings are '<U<width>'. No objects, records, void,
# complex, datetimes or big-endian data.
NUMERIC_DTYPES = frozenset({
    "<f2", "<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "|b1",
})
_STRING_DTYPE = re.compile(r"<U([1-9][0-9]{0,3})\Z")
_FLOAT32 = frozenset({"<f4"})
# the largest int8 scale whose codes (up to 127) stay finite in float32
with np.errstate(over="ignore"):
    INT8_SCALE_MAX = np.float32(np.finfo(np.float32).max) / np.float32(127)
    while not np.isfinite(np.float32(127) * INT8_SCALE_MAX):
        INT8_SCALE_MAX = np.nextafter(INT8_SCALE_MAX, np.float32(0))
_INDEX = frozenset({"|i1", "<i2", "<i4", "<i8"})
_WEIGHT = {"float32": frozenset({"<f4"}), "float16": frozenset({"<f2"})}
_ARRAY_NAME = re.compile(r"[A-Za-z0-9_.]{1,128}\Z")
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}\.\Z")
_VERSION = re.compile(r"[A-Za-z0-9.+_-]{1,64}\Z")
TOP_ARRAYS = ("classes", "feature_names")


class ArtifactError(ValueError):
    """A file that is not a valid skquant artifact, or a quantized pipeline
    whose manifest and arrays do not fit together: corrupt, truncated,
    malformed, of another format or of an unknown version."""


ArtifactError.__module__ = "skquant.runtime"  # where users import it from


def _show(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_allowed_dtype(dtype):
    """Whether ``dtype`` (a ``dtype.str``) may be stored in an artifact."""
    if dtype in NUMERIC_DTYPES:
        return True
    match = _STRING_DTYPE.match(dtype) if isinstance(dtype, str) else None
    return match is not None and int(match.group(1)) <= MAX_STRING_WIDTH


# ------------------------------------------------------------------ values
class _Field:
    """One JSON value's type and range; ``check(value, where)`` raises."""

    def __init__(self, kind, low=None, high=None, *, options=None, pattern=None,
                 positive=False):
        self.kind, self.low, self.high = kind, low, high
        self.options, self.pattern, self.positive = options, pattern, positive

    def describe(self):
        if self.options is not None:
            return "one of " + ", ".join(repr(option) for option in self.options)
        if self.kind is int:
            return f"an integer in [{self.low}, {self.high}]"
        if self.kind is float:
            low = "(0" if self.positive else f"[{self.low}"
            return f"a finite float in {low}, {self.high}]"
        return "a string" + (f" matching {self.pattern.pattern}" if self.pattern else "")

    def check(self, value, where):
        # JSON's true/false are Python bools, which are ints: refused as numbers
        ok = type(value) is self.kind
        if ok and self.options is not None:
            ok = value in self.options
        elif ok and self.kind is int:
            ok = self.low <= value <= self.high
        elif ok and self.kind is float:
            ok = (np.isfinite(value) and self.low <= value <= self.high
                  and (value > 0 or not self.positive))
        elif ok and self.pattern is not None:
            ok = self.pattern.match(value) is not None
        if not ok:
            raise ArtifactError(f"{where} must be {self.describe()}, got {_show(value)}.")
        return value


def Int(low, high):  # noqa: N802 - reads as a type in the schemas below
    return _Field(int, low, high)


def Float(low, high, *, positive=False):  # noqa: N802
    return _Field(float, low, high, positive=positive)


def Str(*, options=None, pattern=None):  # noqa: N802
    return _Field(str, options=options, pattern=pattern)


def check_keys(mapping, where, required, optional=()):
    """``mapping`` is a dict with all of ``required``, some of ``optional``
    and nothing else."""
    if type(mapping) is not dict:
        raise ArtifactError(f"{where} must be a JSON object, got {_show(mapping)}.")
    missing = [key for key in required if key not in mapping]
    if missing:
        raise ArtifactError(f"{where} lacks the key(s) {missing}.")
    unknown = sorted(set(mapping) - set(required) - set(optional), key=str)
    if unknown:
        raise ArtifactError(
            f"{where} has unknown key(s) {[_show(k, 40) for k in unknown[:5]]}: it was "
            "written by another program or a newer skquant (expected only "
            f"{sorted(set(required) | set(optional))}).")
    return mapping


def check_fields(mapping, where, fields, optional=None):
    """Check a dict against ``{key: _Field}`` (all required) plus
    ``optional``'s fields, strictly."""
    optional = optional or {}
    check_keys(mapping, where, fields, optional)
    for key, field in {**fields, **optional}.items():
        if key in mapping:
            field.check(mapping[key], f"{where}.{key}" if where else key)
    return mapping


# --------------------------------------------------------------------- JSON
def _no_duplicates(pairs):
    mapping = {}
    for key, value in pairs:
        if key in mapping:
            raise ArtifactError(
                f"manifest.json repeats the key {_show(key, 40)}: a JSON object whose "
                "keys repeat can be read two ways, so it is refused.")
        mapping[key] = value
    return mapping


def _no_constant(name):
    raise ArtifactError(f"manifest.json holds {name}, which is not JSON.")


def _finite_float(text):
    value = float(text)
    if not np.isfinite(value):
        raise ArtifactError(f"manifest.json holds the number {_show(text, 40)}, beyond "
                            "the float range.")
    return value


def _short_int(text):
    if len(text) > 20:
        raise ArtifactError(f"manifest.json holds an integer of {len(text)} digits.")
    return int(text)


def parse_manifest(raw):
    """The manifest's JSON (bytes, ASCII), refusing repeated keys, NaN,
    overlong numbers and nesting deeper than ``MAX_JSON_DEPTH``."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ArtifactError("manifest.json is not ASCII JSON.") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates,
                           parse_constant=_no_constant, parse_float=_finite_float,
                           parse_int=_short_int)
    except ArtifactError:
        raise
    except RecursionError:
        raise ArtifactError(
            f"manifest.json nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError as exc:
        raise ArtifactError(f"manifest.json is not valid JSON ({exc}).") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ArtifactError(
                    f"manifest.json nests deeper than {MAX_JSON_DEPTH} levels.")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def canonical(manifest):
    """The one serialization of a manifest that an artifact may hold."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


# -------------------------------------------------------------- array index
def check_index(index, max_bytes):
    """Validate the manifest's array index: ``{name: [dtype, shape, offset]}``.

    Returns ``(layout, spans, total)``: ``layout`` maps each name to
    ``(dtype, shape)``, ``spans`` to ``(offset, nbytes)``, and ``total`` is
    the blob length the index declares. The arrays must tile the blob
    exactly: each at an offset aligned for its dtype, no overlap, no gap.
    """
    if type(index) is not dict:
        raise ArtifactError(f"arrays must be a JSON object, got {_show(index)}.")
    if len(index) > MAX_ARRAYS:
        raise ArtifactError(f"the artifact lists {len(index)} arrays; at most "
                            f"{MAX_ARRAYS} are allowed.")
    layout, spans = {}, {}
    for name, entry in index.items():
        where = f"arrays[{_show(name, 40)}]"
        if not _ARRAY_NAME.match(name):
            raise ArtifactError(f"{where}: an array name is 1 to 128 letters, digits, "
                                "'_' or '.'.")
        if type(entry) is not list or len(entry) != 3:
            raise ArtifactError(f"{where} must be [dtype, shape, offset], got "
                                f"{_show(entry)}.")
        dtype, shape, offset = entry
        if type(dtype) is not str or not is_allowed_dtype(dtype):
            raise ArtifactError(
                f"{where} has the dtype {_show(dtype, 30)}, which artifacts never hold "
                f"(allowed: {sorted(NUMERIC_DTYPES)} and '<U1'..'<U{MAX_STRING_WIDTH}').")
        if (type(shape) is not list or not 1 <= len(shape) <= 2
                or any(type(n) is not int or n < 0 for n in shape)):
            raise ArtifactError(f"{where} has the shape {_show(shape)}; a shape is a list "
                                "of one or two non-negative integers.")
        if type(offset) is not int or offset < 0:
            raise ArtifactError(f"{where} has the offset {_show(offset)}; an offset is a "
                                "non-negative integer.")
        itemsize = np.dtype(dtype).itemsize
        nbytes = itemsize
        for n in shape:
            nbytes *= n  # Python integers: no overflow
        if nbytes > max_bytes:
            raise ArtifactError(
                f"{where} declares {nbytes} bytes (shape {shape}), more than the "
                f"{max_bytes} bytes this loader accepts (max_bytes).")
        if offset % np.dtype(dtype).alignment:
            raise ArtifactError(f"{where} starts at offset {offset}, which is not "
                                f"aligned to its {itemsize}-byte items.")
        layout[name] = (dtype, tuple(shape))
        spans[name] = (offset, nbytes)
    position = 0
    for name, (offset, nbytes) in sorted(spans.items(), key=lambda item: item[1]):
        if offset != position:
            raise ArtifactError(
                f"arrays[{name!r}] starts at byte {offset}, but the previous array "
                f"ends at byte {position}: arrays must follow one another in the "
                "blob with no gap and no overlap.")
        position += nbytes
        if position > max_bytes:
            raise ArtifactError(
                f"the arrays declare more than {max_bytes} bytes, more than this "
                "loader accepts (max_bytes).")
    return layout, spans, position


def layout_of(arrays):
    """The layout of in-memory arrays (as :func:`check_index` gives it)."""
    if not isinstance(arrays, dict):
        raise ArtifactError(f"arrays must be a dict of str to ndarray, got "
                            f"{type(arrays).__name__}.")
    if len(arrays) > MAX_ARRAYS:
        raise ArtifactError(f"{len(arrays)} arrays; at most {MAX_ARRAYS} are allowed.")
    layout = {}
    for name, array in arrays.items():
        if not isinstance(name, str) or not _ARRAY_NAME.match(name):
            raise ArtifactError(f"{_show(name, 40)} is not an array name (1 to 128 "
                                "letters, digits, '_' or '.').")
        if not isinstance(array, np.ndarray):
            raise ArtifactError(f"arrays[{name!r}] is a {type(array).__name__}, not a "
                                "numpy array.")
        if not is_allowed_dtype(array.dtype.str):
            raise ArtifactError(
                f"arrays[{name!r}] has the dtype {array.dtype}; artifacts hold "
                "little-endian numbers and strings only.")
        if not 1 <= array.ndim <= 2:
            raise ArtifactError(f"arrays[{name!r}] has {array.ndim} dimensions; arrays "
                                "have one or two.")
        layout[name] = (array.dtype.str, array.shape)
    return layout


# ------------------------------------------------------------------- steps
class StepArrays:
    """What one step declares about its arrays.

    Each method claims an array (``prefix + name``), checks its dtype and
    shape against the layout now, queues the checks of its values for
    :meth:`Plan.check_values`, and returns its shape so that the step can
    chain the next array to it. A length given as ``None`` is free (at least
    1); a given one must match exactly, so a length-1 array never stands in
    for a longer one by broadcasting.
    """

    def __init__(self, where, prefix, layout, dtype, claimed, checks):
        self.where, self.prefix, self.dtype = where, prefix, dtype
        self._layout, self._claimed, self._checks = layout, claimed, checks

    def _take(self, name, dtypes, shape, what):
        full = self.prefix + name
        entry = self._layout.get(full)
        if entry is None:
            raise ArtifactError(f"{self.where} needs the array {full!r}, which is missing.")
        dtype, found = entry
        if dtype not in dtypes:
            raise ArtifactError(f"{full} has the dtype {dtype}; {self.where} needs "
                                f"{' or '.join(sorted(dtypes))}.")
        if len(found) != len(shape) or min(found) < 1:
            raise ArtifactError(
                f"{full} has the shape {list(found)}; {self.where} needs a non-empty "
                f"{len(shape)}-D array.")
        for got, wanted in zip(found, shape):
            if wanted is not None and got != wanted:
                expected = [n if n is not None else "any" for n in shape]
                raise ArtifactError(
                    f"{full} has the shape {list(found)}, but {self.where} needs "
                    f"{expected}{f' ({what})' if what else ''}.")
        self._claimed.add(full)
        return full, found

    def _values(self, full, rule, low=None, high=None):
        self._checks.append((full, rule, low, high))

    def vector(self, name, length=None, *, values="finite", what=None):
        """A float32 vector: ``values`` is "finite", "positive" (finite and
        > 0) or "bounds" (no NaN; ±inf stands for no bound)."""
        full, shape = self._take(name, _FLOAT32, (length,), what)
        self._values(full, values)
        return shape[0]

    def weight(self, name, rows=None, cols=None, *, what=None):
        """A weight matrix stored in the manifest's dtype: float32, float16,
        or int8 codes ``name.q`` with one positive float32 scale per row in
        ``name.scale``. Returns ``(rows, cols)``."""
        if self.dtype == "int8":
            full, shape = self._take(f"{name}.q", {"|i1"}, (rows, cols), what)
            scale, _ = self._take(f"{name}.scale", _FLOAT32, (shape[0],),
                                  f"one scale per row of {full}")
            self._values(scale, "scale")
            return shape
        full, shape = self._take(name, _WEIGHT[self.dtype], (rows, cols), what)
        self._values(full, "finite")
        return shape

    def index(self, name, shape=(None,), *, low=0, high, what=None):
        """An integer array whose values lie in ``[low, high)``."""
        full, found = self._take(name, _INDEX, shape, what)
        self._values(full, "index", low, high)
        return found

    def matrix(self, name, rows=None, cols=None, *, what=None):
        """A float32 matrix of finite values, never quantized. Returns
        ``(rows, cols)``."""
        full, shape = self._take(name, _FLOAT32, (rows, cols), what)
        self._values(full, "finite")
        return shape

    def text(self, name, length=None, *, what=None):
        """A vector of str, sorted and without repeats (a column's known
        categories, which the runtime finds by binary search)."""
        full = self.prefix + name
        entry = self._layout.get(full)
        if entry is not None and not _STRING_DTYPE.match(entry[0]):
            raise ArtifactError(f"{full} has the dtype {entry[0]}; {self.where} needs "
                                "text ('<U...').")
        _, shape = self._take(name, {entry[0]} if entry else set(), (length,), what)
        self._values(full, "categories")
        return shape[0]

    def has(self, name):
        """Whether the layout holds the array ``name`` (an optional one)."""
        return self.prefix + name in self._layout

    def require(self, check):
        """Queue ``check(get)``, which reads arrays by their short name and
        raises :class:`ArtifactError`."""
        prefix = self.prefix
        self._checks.append((None, lambda get: check(lambda name: get(prefix + name)),
                             None, None))


def _check_values(name, array, rule, low, high):
    if array.size == 0:
        return
    if rule == "index":
        smallest, largest = int(array.min()), int(array.max())
        if smallest < low or largest >= high:
            raise ArtifactError(
                f"{name} holds the index {smallest if smallest < low else largest}, "
                f"outside [{low}, {high}).")
        return
    if rule == "categories":
        codes = array.view(np.uint32).reshape(array.size, -1)
        if codes.size and (codes.max() > 0x10FFFF
                           or np.any((codes >= 0xD800) & (codes <= 0xDFFF))):
            raise ArtifactError(f"{name} holds characters that are not Unicode.")
        if array.size > 1 and not np.all(array[1:] > array[:-1]):
            raise ArtifactError(f"{name} must list its categories sorted, each once.")
        return
    smallest, largest = array.min(), array.max()  # NaN propagates to both
    if rule == "bounds":
        ok = not (np.isnan(smallest) or np.isnan(largest))
        problem = "NaN"
    elif rule == "positive":
        ok = bool(np.isfinite(largest) and smallest > 0)
        problem = "values that are not finite and positive"
    elif rule == "scale":  # of int8 codes: positive, and 127 times it finite
        ok = bool(smallest > 0 and largest <= INT8_SCALE_MAX)
        problem = (f"values that are not in (0, {float(INT8_SCALE_MAX):.4g}] (an int8 "
                   "scale, whose codes times it must stay finite in float32)")
    else:
        ok = bool(np.isfinite(smallest) and np.isfinite(largest))
        problem = "NaN or infinite values"
    if not ok:
        needs = {"positive": "positive finite ones", "scale": "scales in that range"}
        raise ArtifactError(f"{name} holds {problem}; the runtime's arithmetic needs "
                            f"{needs.get(rule, 'finite ones')}.")


def _check_text(name, array):
    # numpy cannot turn code points beyond Unicode (or surrogates) into str
    codes = array.view(np.uint32).reshape(array.size, -1)
    if codes.size and (codes.max() > 0x10FFFF
                       or np.any((codes >= 0xD800) & (codes <= 0xDFFF))):
        raise ArtifactError(f"{name} holds characters that are not Unicode.")
    # labels and names are printed (one a line, by `skquant predict`): no
    # control characters, which could add lines or drive a terminal; a NUL
    # only as padding after the text
    padding = np.maximum.accumulate(codes == 0, axis=1)
    control = (codes < 0x20) | ((codes >= 0x7F) & (codes <= 0x9F))
    if np.any(control & ~padding) or np.any(padding & (codes != 0)):
        raise ArtifactError(f"{name} holds control characters (a newline, an escape, a "
                            "NUL, ...); labels and column names are printable text.")


class Plan:
    """A manifest checked against its layout: the steps to build and the
    value checks still to run."""

    def __init__(self, steps, checks, classes_dtype):
        self.steps = steps  # [(step class, params, prefix)]
        self._checks = checks
        self._classes_dtype = classes_dtype

    def check_values(self, arrays):
        """Run the value checks on ``arrays`` (name -> ndarray)."""
        for name, rule, low, high in self._checks:
            if name is None:
                rule(arrays.__getitem__)
            else:
                _check_values(name, arrays[name], rule, low, high)
        classes = arrays["classes"]
        if self._classes_dtype.startswith("<U"):
            _check_text("classes", classes)
        elif self._classes_dtype == "|b1":
            if classes.view(np.uint8).max() > 1:
                raise ArtifactError("classes holds booleans that are neither 0 nor 1.")
        elif classes.dtype.kind == "f":
            _check_values("classes", classes, "finite", None, None)
        if np.unique(classes).size != classes.size:
            raise ArtifactError("classes repeats a class label.")
        if "feature_names" in arrays:
            names = arrays["feature_names"]
            _check_text("feature_names", names)
            if np.unique(names).size != names.size:
                raise ArtifactError("feature_names repeats a column name.")


_STEP_KEYS = ("kind", "prefix", "params")
_CALIBRATION = {"rows": Int(0, 1 << 62), "agreement": Float(0.0, 1.0)}
MODEL_FIELDS = {"dtype": Str(options=DTYPES), "n_features_in": Int(1, MAX_FEATURES)}
MODEL_OPTIONAL = ("skquant_version", "calibration")
ARTIFACT_KEYS = ("format", "format_version", "arrays", "checksum", "signature")


def check_model(manifest, layout, steps, *, allow=()):
    """Check a manifest's model part (dtype, widths, steps, their params and
    arrays) against ``layout``; ``steps`` maps step kinds to step classes.
    Keys in ``allow`` may appear and are left to the caller. Returns a
    :class:`Plan`."""
    check_keys(manifest, "the manifest", (*MODEL_FIELDS, "steps"),
               (*MODEL_OPTIONAL, *allow))
    check_fields({key: manifest[key] for key in MODEL_FIELDS}, "", MODEL_FIELDS)
    if "skquant_version" in manifest:
        Str(pattern=_VERSION).check(manifest["skquant_version"], "skquant_version")
    if "calibration" in manifest:
        check_fields(manifest["calibration"], "calibration", _CALIBRATION)
    dtype, width = manifest["dtype"], manifest["n_features_in"]
    entries = manifest["steps"]
    if type(entries) is not list or not 1 <= len(entries) <= MAX_STEPS:
        raise ArtifactError(f"steps must be a list of 1 to {MAX_STEPS} steps, got "
                            f"{_show(entries)}.")
    claimed, checks, plan, prefixes = set(), [], [], set()
    for position, entry in enumerate(entries):
        where = f"steps[{position}]"
        check_keys(entry, where, _STEP_KEYS, ("estimator",))
        kind = Str(options=tuple(steps)).check(entry["kind"], f"{where}.kind")
        where = f"{where} ({kind})"
        prefix = Str(pattern=_PREFIX).check(entry["prefix"], f"{where}.prefix")
        if prefix in prefixes:
            raise ArtifactError(f"{where} reuses the prefix {prefix!r} of an earlier step.")
        prefixes.add(prefix)
        if "estimator" in entry:
            Str(pattern=re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}\Z")).check(
                entry["estimator"], f"{where}.estimator")
        if (kind == "mlp") != (position == len(entries) - 1):
            raise ArtifactError(f"{where}: a pipeline ends with its classifier, an 'mlp' "
                                "step, and has no other.")
        step = steps[kind]
        params = check_fields(entry["params"], f"{where}.params", step.PARAMS)
        width = step.layout(params, StepArrays(where, prefix, layout, dtype, claimed,
                                               checks), width)
        plan.append((step, params, prefix))
    classes = layout.get("classes")
    if classes is None:
        raise ArtifactError("the artifact lacks the array 'classes'.")
    if len(classes[1]) != 1 or classes[1][0] != width:
        raise ArtifactError(
            f"classes has the shape {list(classes[1])}, but the classifier gives "
            f"{width} outputs: one class label per output is needed.")
    names = layout.get("feature_names")
    if names is not None and (not names[0].startswith("<U")
                              or names[1] != (manifest["n_features_in"],)):
        raise ArtifactError(
            f"feature_names has the dtype {names[0]} and shape {list(names[1])}; it "
            f"must be strings of shape [{manifest['n_features_in']}] (n_features_in).")
    unknown = sorted(set(layout) - claimed - set(TOP_ARRAYS))
    if unknown:
        raise ArtifactError(f"the artifact holds array(s) that no step uses: "
                            f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}.")
    return Plan(plan, checks, classes[0])
