"""A corpus of crafted artifacts: every malformed file is refused with an
ArtifactError (and nothing else) before it allocates, and none loads with
silently changed predictions, except where only a key can tell (a forged
checksum over a different but valid model: the checksum detects
corruption, not tampering).

The valid artifacts come from real fitted steps (Cleaner and every
projection method on 300 digits) quantized with :func:`skquant.quantize`,
ending in a KerasMLPClassifier whose fitted attributes are set by hand, so
that no TensorFlow is needed. The module reads about 5,000 artifacts: 200
fuzzed manifests and 150 fuzzed byte strings per method (plus 50 signed forgeries), the
hand-made cases of the issue's items 2 to 5, and those of a second attack
(values whose float32 expansion overflows, bytes outside the zip's members,
every single-bit change of a signed artifact's zip headers, control
characters in labels, wide steps and large forests for memory and time).
"""

import copy
import importlib
import io
import json
import os
import pickle
import random
import struct
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.pipeline import Pipeline

from skquant import (Cleaner, KerasMLPClassifier, QuantizedPipeline, TreeProjection,
                     load_quantized, quantize)
from skquant.pipeline import _FAMILIES
from skquant.runtime import ArtifactError, read_artifact
from skquant.runtime._artifact import _Digests, artifact_bytes
from skquant.runtime._schema import MAX_MANIFEST_BYTES, canonical

# every registered method, as (class, method); the corpus names each by its
# method, and quantizes each to the dtype below, so that every dtype is read
METHODS = [(getattr(importlib.import_module(module), name), method)
           for module, name, methods in _FAMILIES.values() for method in methods]
DTYPES = {
    "pca": "int8", "qr": "float32", "random": "float16", "tsvq": "int8", "tsvq-local": "int8",
    "random-trees": "float32", "spectral": "int8", "lpp": "float16",
    "pca+spectral": "float32",
}
KEY = b"the corpus's secret key, 32 byte"
MiB = 1 << 20


# ------------------------------------------------------------------ helpers
def members(data):
    """(manifest dict, blob bytes) of an artifact's bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("manifest.json")), archive.read("arrays.bin")


def pack(manifest_bytes, blob, extra=(), *, as_skquant=True):
    """A zip of the two members (and ``extra`` (name, bytes) members), with
    the zip headers skquant writes (as a careful forger would copy them), or
    the zip module's defaults (today's date, other attributes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, payload in (("manifest.json", manifest_bytes), ("arrays.bin", blob),
                              *extra):
            if as_skquant:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type, info.create_system = zipfile.ZIP_DEFLATED, 3
                info.external_attr = 0o644 << 16
                archive.writestr(info, payload)
            else:
                archive.writestr(name, payload)
    return buffer.getvalue()


def forge(manifest, blob, *, key=None, keep_signature=False):
    """The artifact of ``manifest`` and ``blob`` with its checksum recomputed,
    as anyone can (and signed with ``key``, which only its holder can)."""
    body = {k: v for k, v in manifest.items() if k not in ("checksum", "signature")}
    digests = _Digests(canonical(body), key)
    digests.update(blob)
    body["checksum"] = digests.checksum()
    if key is not None:
        body["signature"] = digests.signature()
    elif keep_signature and "signature" in manifest:
        body["signature"] = manifest["signature"]
    return pack(canonical(body), blob)


def raw_zip(entries, *, comment=b"", trailing=b"", records=b""):
    """A zip written by hand, with the declared sizes, CRC, method and flags
    each entry says (``name``, ``data``; optional ``size``, ``crc``,
    ``method``, ``flags``; ``gap``, bytes before its local header;
    ``local_name`` and ``local_crc``, what its local header says instead;
    ``descriptor``, its CRC and sizes in a data descriptor after the data;
    ``extra`` and ``entry_comment``, bytes in its local and directory
    entries), and ``records`` after the directory, counted in its size, to
    lie where the zip module would not."""
    out, central = bytearray(), bytearray()
    for entry in entries:
        name, data = entry["name"].encode(), entry["data"]
        method = entry.get("method", 8)
        if method == 8:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = compressor.compress(data) + compressor.flush()
        else:
            payload = data
        crc = entry.get("crc", zlib.crc32(data))
        size, flags = entry.get("size", len(data)), entry.get("flags", 0)
        local_name = entry.get("local_name", entry["name"]).encode()
        local = (entry.get("local_crc", crc), len(payload), size)
        if entry.get("descriptor"):
            flags |= 0x8
            local = (0, 0, 0)
        out += entry.get("gap", b"")
        offset = len(out)
        extra, entry_comment = entry.get("extra", b""), entry.get("entry_comment", b"")
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 33, *local,
                           len(local_name), len(extra)) + local_name + extra + payload
        if entry.get("descriptor"):
            out += struct.pack("<4s3L", b"PK\x07\x08", crc, len(payload), size)
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 33,
                               crc, len(payload), size, len(name), 0, len(entry_comment),
                               0, 0, 0, offset) + name + entry_comment
    start = len(out)
    central += records
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries),
                                 len(entries), len(central), start, len(comment)) + comment
    return bytes(out) + trailing


def load(data, **kwargs):
    return load_quantized(io.BytesIO(data), **kwargs)


def refused(data, match, **kwargs):
    with pytest.raises(ArtifactError, match=match):
        load(data, **kwargs)


def with_arrays(served, **changes):
    """The served model's artifact with arrays replaced (None: removed),
    written by the low-level writer, which checks nothing: the checksum is
    valid, the content is not."""
    arrays = dict(served.arrays)
    for name, value in changes.items():
        name = name.replace("__", ".")
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    return artifact_bytes(served.manifest, arrays)


def with_manifest(served, edit):
    manifest = copy.deepcopy(served.manifest)
    edit(manifest)
    return artifact_bytes(manifest, served.arrays)


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300], X[300:360]


@pytest.fixture(scope="module")
def models(digits):
    """``{method: (served, artifact bytes, signed artifact bytes)}``."""
    X, _ = digits
    clean = Cleaner().fit(X)
    cleaned = clean.transform(X)
    rng = np.random.default_rng(0)
    served = {}
    for cls, method in METHODS:
        dtype = DTYPES[method]
        extra = {"n_estimators": 5} if method == "random-trees" else {}
        with warnings.catch_warnings():  # the spectral graph's joined components
            warnings.simplefilter("ignore", UserWarning)
            projection = cls(8, method=method, random_state=0, **extra).fit(cleaned)
        Z = projection.transform(cleaned)
        classifier = KerasMLPClassifier()  # fitted by hand: no TensorFlow
        classifier.coefs_ = [rng.normal(size=(8, 12)), rng.normal(size=(12, 10))]
        classifier.intercepts_ = [rng.normal(size=12) * 0.1, rng.normal(size=10) * 0.1]
        classifier.input_mean_, classifier.input_scale_ = Z.mean(axis=0), Z.std(axis=0) + 1e-3
        classifier.classes_, classifier.n_features_in_ = np.arange(10), 8
        pipe = Pipeline([("clean", clean), ("project", projection), ("classify", classifier)])
        model = quantize(pipe, dtype=dtype)
        buffer, signed = io.BytesIO(), io.BytesIO()
        model.save(buffer)
        model.save(signed, key=KEY)
        served[method] = (model, buffer.getvalue(), signed.getvalue())
    return served


@pytest.fixture(scope="module")
def probe(digits):
    rows = digits[1].copy()
    rows[::7, 10] = np.nan  # the Cleaner imputes these
    return rows


def test_every_registered_method_has_a_dtype_and_a_name_of_its_own():
    names = [method for _, method in METHODS]
    assert len(set(names)) == len(names), "two families share a method name"
    assert set(DTYPES) == set(names), "give each new method a dtype in DTYPES"
    assert set(DTYPES.values()) == {"int8", "float16", "float32"}


def test_the_valid_artifacts_load_and_predict(models, probe):
    for method, (served, data, signed) in models.items():
        expected = served.predict_proba(probe)
        assert np.isfinite(expected).all()
        assert len(set(served.predict(probe))) >= 3, method  # a model worth forging
        np.testing.assert_array_equal(load(data).predict_proba(probe), expected)
        np.testing.assert_array_equal(load(signed, key=KEY).predict_proba(probe), expected)


# ---------------------------------------------------------------- item 2
def test_a_pickle_named_skq_is_not_unpickled(tmp_path):
    joblib = pytest.importorskip("joblib")
    marker = tmp_path / "code-ran"

    class Evil:
        def __reduce__(self):
            return (marker.touch, ())

    for name, write in (("evil.skq", lambda p: p.write_bytes(pickle.dumps(Evil()))),
                        ("joblib.skq", lambda p: joblib.dump(Evil(), p))):
        path = tmp_path / name
        write(path)
        for reader in (read_artifact, load_quantized):
            with pytest.raises(ArtifactError, match=rf"{name}: not a skquant artifact: it "
                                                    "is not a zip file. It looks like a "
                                                    "pickle.*never loads one"):
                reader(path)
    assert not marker.exists()


def test_truncated_artifacts_are_reported_as_truncated(models):
    _, data, _ = models["pca"]
    cuts = sorted({0, 1, 3, 4, 29, 30, 31, 60, 100, len(data) // 2, len(data) - 23,
                   len(data) - 22, len(data) - 2, len(data) - 1, *range(5, len(data), 97)})
    for cut in cuts:
        refused(data[:cut], r"truncated or corrupt artifact|not a skquant artifact: it is "
                            r"not a zip")
        if cut >= 4:  # it starts as a zip: always "truncated", never "not an artifact"
            refused(data[:cut], "truncated or corrupt artifact")
    assert len(cuts) > 20


# ---------------------------------------------------------------- item 3
def test_repeated_json_keys_are_refused(models):
    _, data, _ = models["pca"]
    manifest, blob = members(data)
    raw = canonical(manifest)
    assert raw.startswith(b'{"arrays":')
    # a second dtype, before or after the first: the checksum covers the raw bytes
    twice = raw.replace(b'"dtype":"int8"', b'"dtype":"float32","dtype":"int8"')
    refused(pack(twice, blob), "repeats the key 'dtype'")
    assert b'"params":{"n_layers":2}' in raw
    deep = raw.replace(b'"params":{"n_layers":2}', b'"params":{"n_layers":2,"n_layers":1}')
    refused(pack(deep, blob), "repeats the key 'n_layers'")


def test_extra_and_repeated_zip_members_are_refused(models, probe):
    served, data, _ = models["pca"]
    manifest, blob = members(data)
    raw = canonical(manifest)
    refused(pack(raw, blob, extra=[("evil.py", b"print(1)")]),
            r"holds member\(s\) \['evil.py'\] besides")
    zeroed = bytes(len(blob))
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = pack(raw, blob, extra=[("arrays.bin", zeroed)])
    refused(twice, r"repeats the member\(s\) \['arrays.bin'\]")
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = pack(raw, blob, extra=[("manifest.json", raw)])
    refused(twice, r"repeats the member\(s\) \['manifest.json'\]")
    refused(raw_zip([{"name": "manifest.json", "data": raw}]), "it has no arrays.bin")
    refused(raw_zip([{"name": "arrays.bin", "data": blob}]), "it has no manifest.json")
    many = [{"name": f"m{i}", "data": b""} for i in range(17)]
    refused(raw_zip(many), "the zip holds 17 members")
    # the exact bytes again, by hand: they load
    again = raw_zip([{"name": "manifest.json", "data": raw}, {"name": "arrays.bin", "data": blob}])
    np.testing.assert_array_equal(load(again).predict(probe), served.predict(probe))


def test_a_raised_bias_needs_the_key_to_be_caught(models, probe):
    """The checksum is not a signature: a forged one passes, a key does not."""
    served, data, signed = models["pca"]
    bias = served.arrays["s2.bias1"].copy()
    bias[7] += 1e3
    forged = with_arrays(served, s2__bias1=bias)
    # without a key: a valid model that always predicts 7 (documented)
    assert set(load(forged).predict(probe)) == {7}
    # with the key: refused, whether the signature is kept or dropped
    manifest, _ = members(signed)
    _, blob = members(forged)
    refused(forge(manifest, blob, keep_signature=True), "signature that does not match",
            key=KEY)
    refused(forge(manifest, blob), "is not signed, and a key was given", key=KEY)
    # a NaN bias is refused with or without a key
    bias[7] = np.nan
    refused(with_arrays(served, s2__bias1=bias), r"s2.bias1 holds NaN or infinite values")


def test_misaligned_overlapping_and_gapped_offsets_are_refused(models):
    served, data, _ = models["pca"]
    manifest, blob = members(data)
    index = manifest["arrays"]
    name = "s0.fill"
    for shift, match in ((1, "not aligned"), (4, "no gap and no overlap"),
                         (-4, "no gap and no overlap")):
        edited = copy.deepcopy(manifest)
        edited["arrays"][name][2] += shift
        refused(forge(edited, blob), match)
    edited = copy.deepcopy(manifest)
    edited["arrays"]["s0.lower"][2] = index["s0.fill"][2]  # two arrays on the same bytes
    refused(forge(edited, blob), "no gap and no overlap")
    refused(forge(manifest, blob + b"\0" * 4), "arrays.bin holds .* but the manifest's "
                                               "arrays take")
    refused(forge(manifest, blob[:-4]), "arrays.bin holds .* but the manifest's arrays take")


@pytest.mark.parametrize("name, dtype, match", [
    ("s0.fill", "<i4", "needs <f4"),
    ("s0.fill", "<u4", "needs <f4"),
    ("s0.keep", "<u2", r"needs <i2 or <i4 or <i8 or \|i1"),
    ("s1.components.q", "|u1", r"needs \|i1"),
    ("s1.components.scale", "<i4", "needs <f4"),
    ("s0.fill", ">f4", "which artifacts never hold"),
    ("s0.fill", "|O", "which artifacts never hold"),
    ("s0.fill", "|V4", "which artifacts never hold"),
    ("s0.fill", "<c8", "which artifacts never hold"),
    ("s0.fill", "<M8[s]", "which artifacts never hold"),
    ("s0.fill", "<U0", "which artifacts never hold"),
    ("s0.fill", "<U99999", "which artifacts never hold"),
    ("s0.fill", "float32", "which artifacts never hold"),
    ("s0.fill", 4, "which artifacts never hold"),
])
def test_relabelled_and_forbidden_dtypes_are_refused(models, name, dtype, match):
    _, data, _ = models["pca"]
    manifest, blob = members(data)
    manifest["arrays"][name][0] = dtype
    refused(forge(manifest, blob), match)


def test_bad_indices_shapes_and_broadcast_bounds_are_refused(models):
    served, data, _ = models["pca"]
    keep = served.arrays["s0.keep"].copy()
    keep[0] = -1
    refused(with_arrays(served, s0__keep=keep), r"s0.keep holds the index -1, outside \[0, 64\)")
    keep[0] = 64
    refused(with_arrays(served, s0__keep=keep), r"holds the index 64, outside \[0, 64\)")
    keep = served.arrays["s0.keep"][::-1].copy()
    refused(with_arrays(served, s0__keep=keep), "increasing order")
    manifest, blob = members(data)
    for shape in ([-1], [2, -1], [], [1, 2, 3], "5", [1.0], [True], None):
        edited = copy.deepcopy(manifest)
        edited["arrays"]["s0.fill"][1] = shape
        refused(forge(edited, blob), "a shape is a list of one or two non-negative integers")
    # length-1 bounds where one per kept column is needed: no broadcasting
    for name in ("lower", "upper", "fill"):
        refused(with_arrays(served, **{f"s0__{name}": served.arrays[f"s0.{name}"][:1]}),
                rf"s0.{name} has the shape \[1\], but steps\[0\] \(clean\) needs \[\d+\]")
    lower, upper = served.arrays["s0.lower"].copy(), served.arrays["s0.upper"].copy()
    lower[2], upper[2] = 1.0, 0.0
    refused(with_arrays(served, s0__lower=lower, s0__upper=upper),
            "s0.lower lies above s0.upper")
    lower[2] = np.nan
    refused(with_arrays(served, s0__lower=lower), "s0.lower holds NaN")
    scale = served.arrays["s1.components.scale"].copy()
    scale[0] = 0
    refused(with_arrays(served, s1__components__scale=scale),
            r"s1.components.scale holds values that are not in \(0, ")


def test_shapes_that_do_not_chain_are_refused(models):
    served, _, _ = models["pca"]
    width = served.arrays["s0.keep"].size
    refused(with_arrays(served, s1__mean=np.zeros(width + 1, np.float32)),
            rf"s1.mean has the shape \[{width + 1}\], but steps\[1\] \(linear\) needs \[{width}\]")
    q = served.arrays["s1.components.q"]
    refused(with_arrays(served, s1__components__q=q[:, :-1]),
            r"s1.components.q has the shape .*\(one column per input\)")
    refused(with_arrays(served, s1__components__q=q[:-1]),
            r"s1.components.scale has the shape .*\(one scale per row")
    refused(with_arrays(served, classes=np.arange(11)),
            r"classes has the shape \[11\], but the classifier gives 10 outputs")
    refused(with_arrays(served, classes=np.zeros(10, int)), "classes repeats a class label")
    refused(with_arrays(served, feature_names=np.array(["a"] * 3)),
            r"feature_names .* must be strings of shape \[64\]")
    refused(with_arrays(served, feature_names=np.arange(64)),
            r"feature_names .* must be strings of shape \[64\]")
    refused(with_arrays(served, s2__bias0=None), "needs the array 's2.bias0', which is missing")
    refused(with_arrays(served, s2__extra=np.zeros(3, np.float32)),
            r"array\(s\) that no step uses: \['s2.extra'\]")
    text = np.array(list("abcdefghij"))
    text.view(np.uint32)[0] = 0xD800  # a lone surrogate: numpy could not make a str of it
    refused(with_arrays(served, classes=text), "classes holds characters that are not Unicode")
    # the manifest's own chain: n_features_in, steps and their order
    refused(with_manifest(served, lambda m: m.update(n_features_in=63)),
            r"holds the index 63, outside \[0, 63\)|needs \[63\]")
    refused(with_manifest(served, lambda m: m["steps"].reverse()),
            "ends with its classifier")
    refused(with_manifest(served, lambda m: m["steps"][1].update(prefix="s0.")),
            "reuses the prefix 's0.'")


def test_every_step_kind_checks_its_values(models):
    trees, _, _ = models["random-trees"]
    children = trees.arrays["s1.children"].copy()
    refused(with_arrays(trees, s1__children=np.zeros_like(children)),
            "a leaf .* must have no children|children must be distinct later nodes")
    internal = np.flatnonzero(children[:, 0] >= 0)
    looped = children.copy()
    looped[internal[1], 0] = internal[0]  # a child before its parent: a cycle
    refused(with_arrays(trees, s1__children=looped), "distinct later nodes of its own tree")
    deep = internal[-1]
    parent = np.flatnonzero((children == deep).any(axis=1))[0]
    shared = children.copy()
    shared[parent] = children[deep]  # two parents for deep's children, none for deep
    refused(with_arrays(trees, s1__children=shared), "child of exactly one node")
    leaf_row = trees.arrays["s1.leaf_row"].copy()
    leaf_row[internal[0]] = 0
    refused(with_arrays(trees, s1__leaf_row=leaf_row), "leaf_row must be -1 at internal nodes")
    feature = trees.arrays["s1.feature"].copy()
    feature[internal[0]] = 64
    refused(with_arrays(trees, s1__feature=feature), r"s1.feature holds the index 64")
    roots = trees.arrays["s1.roots"][::-1].copy()
    refused(with_arrays(trees, s1__roots=roots), "roots must start at 0 and increase")
    threshold = trees.arrays["s1.threshold"].copy()
    threshold[0] = np.inf
    refused(with_arrays(trees, s1__threshold=threshold), "s1.threshold holds NaN or infinite")
    depth = trees.manifest["steps"][1]["params"]["depth"]
    for wrong in (depth - 1, depth + 1):
        refused(with_manifest(trees, lambda m: m["steps"][1]["params"].update(depth=wrong)),
                f"declares depth {wrong}, but its deepest leaf is")
    tsvq, _, _ = models["tsvq"]
    for scale in (0.0, -1.0, 1e300, 3):
        refused(with_manifest(tsvq, lambda m: m["steps"][1]["params"].update(scale=scale)),
                r"steps\[1\] \(closeness\).params.scale must be a finite float")
    spectral, _, _ = models["spectral"]
    n_landmarks = spectral.arrays["s1.landmark_scale"].size
    refused(with_manifest(spectral, lambda m: m["steps"][1]["params"].update(
        n_neighbors=n_landmarks + 1)), f"exceeds the {n_landmarks} landmarks")
    refused(with_arrays(spectral, s1__landmark_scale=-spectral.arrays["s1.landmark_scale"]),
            "s1.landmark_scale holds values that are not finite and positive")
    lpp, _, _ = models["lpp"]
    components = lpp.arrays["s1.components"].copy()
    components[0, 0] = np.inf
    refused(with_arrays(lpp, s1__components=components), "s1.components holds NaN or infinite")
    mlp_scale = lpp.arrays["s2.input_scale"].copy()
    mlp_scale[0] = 0.0
    refused(with_arrays(lpp, s2__input_scale=mlp_scale), "s2.input_scale holds values that")
    refused(with_manifest(lpp, lambda m: m["steps"][2]["params"].update(n_layers=3)),
            "needs the array 's2.weights2', which is missing")
    refused(with_manifest(lpp, lambda m: m.update(dtype="int8")),
            r"needs the array 's1.components.q'")


# ---------------------------------------------------------------- item 4
def _peak(function, *args, **kwargs):
    """Peak traced bytes (numpy's buffers included) while ``function`` runs."""
    tracemalloc.start()
    try:
        try:
            function(*args, **kwargs)
        except ArtifactError as exc:
            outcome = exc
        else:
            outcome = None
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


def _big_mlp(units, dtype):
    """A valid MLP artifact of zero weights with ``units`` hidden units: a
    small file (zeros compress) of many declared bytes."""
    manifest = {"dtype": dtype, "n_features_in": 8, "steps": [
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 2}}]}
    arrays = {"classes": np.arange(10), "c.input_mean": np.zeros(8, np.float32),
              "c.input_scale": np.ones(8, np.float32),
              "c.bias0": np.zeros(units, np.float32), "c.bias1": np.zeros(10, np.float32)}
    for name, shape in (("c.weights0", (units, 8)), ("c.weights1", (10, units))):
        if dtype == "int8":
            arrays[name + ".q"] = np.zeros(shape, np.int8)
            arrays[name + ".scale"] = np.ones(shape[0], np.float32)
        else:
            arrays[name] = np.zeros(shape, np.float32)
    model = QuantizedPipeline(manifest, arrays)
    return model, model.nbytes


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_memory_while_loading_is_bounded_by_the_declared_bytes(dtype):
    model, declared = _big_mlp(400_000, dtype)
    data = io.BytesIO()
    model.save(data)
    data = data.getvalue()
    assert len(data) < declared / 50  # a "zip bomb": mostly zeros
    peak, outcome = _peak(load, data)
    assert outcome is None
    assert peak <= 2 * declared + 64 * MiB, (peak, declared)
    peak, _ = _peak(read_artifact, io.BytesIO(data))
    assert peak <= 1.1 * declared + 4 * MiB, (peak, declared)
    # the same file with a lower max_bytes: refused before anything is read
    peak, outcome = _peak(load, data, max_bytes=1 * MiB)
    assert "more than the 1048576 bytes this loader accepts" in str(outcome)
    assert peak < 2 * MiB


def test_huge_declared_sizes_are_refused_before_reading(models):
    served, data, _ = models["pca"]
    manifest, blob = members(data)
    # 4 GB declared by the index (the zero blob of the issue would be this)
    edited = copy.deepcopy(manifest)
    edited["arrays"]["s1.components.q"][1] = [8, 500_000_000]
    peak, outcome = _peak(load, forge(edited, blob))
    assert "declares 4000000000 bytes" in str(outcome) and peak < 2 * MiB
    # an int8 weight with a huge shape that fits the limit: the blob is too short
    edited["arrays"]["s1.components.q"][1] = [8, 50_000_000]
    peak, outcome = _peak(load, forge(edited, blob))
    assert "no gap and no overlap" in str(outcome) and peak < 2 * MiB
    # a member whose zip header claims more than the index: refused unread
    raw = canonical(manifest)
    lying = raw_zip([{"name": "manifest.json", "data": raw},
                     {"name": "arrays.bin", "data": blob, "size": 3 << 30}])
    peak, outcome = _peak(load, lying)
    assert "declares 3221225472 bytes, more than" in str(outcome) and peak < 2 * MiB
    # headers that lie about a member's size, either way: caught, never trusted
    for size in (len(blob) - 8, len(blob) + 8):
        edited = raw_zip([{"name": "manifest.json", "data": raw},
                          {"name": "arrays.bin", "data": blob, "size": size}])
        refused(edited, "truncated or corrupt artifact")
    refused(raw_zip([{"name": "manifest.json", "data": raw},
                     {"name": "arrays.bin", "data": blob, "crc": 1}]),
            "truncated or corrupt artifact.*CRC")
    refused(raw_zip([{"name": "manifest.json", "data": raw},
                     {"name": "arrays.bin", "data": blob, "size": len(blob) * 2000}]),
            "which the file cannot hold")


def test_padded_and_oversized_manifests_are_refused(models):
    _, data, _ = models["pca"]
    manifest, blob = members(data)
    raw = canonical(manifest)
    padded = raw[:-1] + b" " * (MAX_MANIFEST_BYTES + 1) + b"}"
    peak, outcome = _peak(load, pack(padded, blob))
    assert f"manifest.json declares {len(padded)} bytes, more than the 1048576" in str(outcome)
    assert peak < 2 * MiB
    # padded within the limit: valid JSON, but not the one form skquant writes
    refused(pack(raw[:-1] + b" " * 1000 + b"}", blob), "not in the one form skquant writes")
    refused(pack(json.dumps(manifest, indent=1).encode(), blob), "not in the one form")
    refused(pack(raw.replace(b'"int8"', b'"\\u0069nt8"'), blob), "not in the one form")
    for nested in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 500 + b"1" + b"}" * 500,
                   b'{"a":[[[[[[[[[[1]]]]]]]]]]}'):
        refused(pack(nested, blob), "nests deeper than 8 levels")
    for body, match in ((b"[]", "must hold a JSON object"), (b'"x"', "must hold a JSON object"),
                        (b"1", "must hold a JSON object"), (b"null", "must hold a JSON object"),
                        (b"{", "not valid JSON"), (b"\xff\xfe{}", "not ASCII JSON"),
                        (b'{"a":NaN}', "holds NaN, which is not JSON"),
                        (b'{"a":1e999}', "beyond the float range"),
                        (b'{"a":' + b"9" * 5000 + b"}", "an integer of 5000 digits"),
                        (b"{}", "not a skquant artifact .*format is 'None'")):
        refused(pack(body, blob), match)


def test_cpu_exhausting_trees_are_refused(models):
    trees, data, _ = models["random-trees"]
    # 10^6 roots in a small file: 10^6 x depth steps per call
    roots = np.zeros(1_000_000, np.int16)
    peak, outcome = _peak(load, with_arrays(trees, s1__roots=roots))
    assert "take" in str(outcome) and "steps per call, more than the 65536" in str(outcome)
    # all-zero children and a depth of 10^7: the loop would never end
    zero = with_arrays(trees, s1__children=np.zeros_like(trees.arrays["s1.children"]))
    manifest, blob = members(zero)
    manifest["steps"][1]["params"]["depth"] = 10**7
    refused(forge(manifest, blob), r"params.depth must be an integer in \[0, 64\]")
    manifest["steps"][1]["params"]["depth"] = 5
    refused(forge(manifest, blob), "children")


def test_zip_frames_that_are_not_artifacts(models):
    _, data, _ = models["pca"]
    manifest, blob = members(data)
    raw = canonical(manifest)
    good = [{"name": "manifest.json", "data": raw}, {"name": "arrays.bin", "data": blob}]
    refused(raw_zip(good, comment=b"hi"), "has data after it|end record is missing")
    refused(raw_zip(good, trailing=b"\0" * 10), "end record is missing")
    refused(raw_zip([good[0], dict(good[1], flags=1)]), "arrays.bin is encrypted")
    refused(raw_zip([good[0], dict(good[1], method=14)]), "compression method 14")
    for stored in (raw_zip([dict(good[0], method=0), dict(good[1], method=0)]),
                   raw_zip([dict(good[0], method=0), good[1]])):
        np.testing.assert_array_equal(load(stored).classes_, np.arange(10))
    refused(b"", "the file is empty")
    refused(b"hello world", "not a skquant artifact: it is not a zip file. Artifacts")
    with pytest.raises(FileNotFoundError):
        load_quantized("/nonexistent/model.skq")


def test_older_and_newer_versions(models):
    served, data, _ = models["pca"]
    manifest, blob = members(data)
    for version, match in ((1, "version 1, written by an older skquant.*Re-export"),
                           (3, "version 3; this skquant reads version 2. Upgrade"),
                           ("2", "version '2'"), (2.0, "version '2.0'"), (True, "'True'")):
        edited = dict(manifest, format_version=version)
        refused(forge(edited, blob), match)
    refused(forge(dict(manifest, format="other"), blob), "format is 'other'")


# ------------------------------------------------------ a second attack
def test_stored_values_that_no_input_could_be_served_with_are_refused(models, probe):
    """Finite stored values whose float32 expansion is not: an int8 scale
    whose codes overflow, bounds that make a column infinite, prototypes
    whose squared norms overflow. Each loaded, then failed on every row."""
    served, _, _ = models["pca"]  # int8
    scale = served.arrays["s1.components.scale"].copy()
    scale[0] = 3e38  # 127 codes x 3e38 = inf
    refused(with_arrays(served, s1__components__scale=scale),
            r"s1.components.scale holds values that are not in \(0, 2.679e\+36\]")
    for bound in (np.inf, -np.inf):  # lower = upper = +inf, or both -inf
        column = np.full_like(served.arrays["s0.lower"], bound)
        refused(with_arrays(served, s0__lower=column, s0__upper=column),
                "s0.lower holds \\+inf or s0.upper holds -inf: the column would be infinite")
    tsvq, _, _ = models["tsvq"]  # int8 prototypes, within the scale's bound
    big = np.full_like(tsvq.arrays["s1.prototypes.scale"], 1e36)
    refused(with_arrays(tsvq, s1__prototypes__scale=big), "squared norms overflow")
    # repeated column names: a DataFrame's column would be read twice
    names = np.array([f"pixel{i}" for i in range(64)])
    np.testing.assert_array_equal(
        load(with_arrays(served, feature_names=names)).predict(probe), served.predict(probe))
    names[1] = "pixel0"
    refused(with_arrays(served, feature_names=names), "feature_names repeats a column name")


def test_labels_and_names_with_control_characters_are_refused(models, probe):
    """A label holding a newline made `skquant predict` print more lines
    than rows (and an escape sequence drives the terminal it prints to)."""
    served, _, _ = models["pca"]
    labels = np.array(list("abcdefghij"), dtype="<U12")
    for label in ("7\n8\n9", "\x1b[2J", "\r", "a\x00b", "\x85"):
        forged = labels.copy()
        forged[1] = label
        refused(with_arrays(served, classes=forged), "classes holds control characters")
        names = np.array([f"pixel{i}" for i in range(64)], dtype="<U12")
        names[5] = label
        refused(with_arrays(served, feature_names=names), "feature_names holds control")
    labels[1] = "b, \"quoted\" \u00e9\u65e5"  # printable: fine
    assert load(with_arrays(served, classes=labels)).classes_[1] == labels[1]


def test_a_tree_model_of_data_near_the_float32_limit_is_refused_with_the_cause(digits):
    """Data at 1e30 fit in float32, but the tsvq step's squared distances do
    not: the export said only that a scale parameter lay out of range."""
    X = digits[0][:200] * 1e30
    clean = Cleaner().fit(X)
    projection = TreeProjection(8, method="tsvq", random_state=0).fit(clean.transform(X))
    classifier = KerasMLPClassifier()  # fitted by hand: no TensorFlow
    classifier.coefs_, classifier.intercepts_ = [np.ones((8, 2))], [np.zeros(2)]
    classifier.input_mean_, classifier.input_scale_ = np.zeros(8), np.ones(8)
    classifier.classes_, classifier.n_features_in_ = np.arange(2), 8
    pipe = Pipeline([("clean", clean), ("project", projection), ("classify", classifier)])
    with pytest.raises(ValueError, match="prototypes are too large for float32: their "
                                         "squared norms overflow.*rescale the data"):
        quantize(pipe, dtype="float32")


def _with_zip64_records(data):
    """``data`` with zip64 end records before its end record, the classic
    directory size stretched over them: the zip module then believes the
    zip64 record."""
    end = len(data) - 22
    _, _, _, here, total, size, start, _ = struct.unpack("<4s4H2LH", data[end:])
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, total, total, size,
                         start)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    return (data[:end] + record + locator
            + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, here, total, size + 76, start, 0))


def test_bytes_that_belong_to_no_member_are_refused(models, probe):
    """Junk between the members, local headers that disagree with the
    directory, zip64 records: each loaded (the zip module skips or trusts
    them), so bytes nobody checked travelled inside a valid artifact."""
    served, data, _ = models["pca"]
    manifest, blob = members(data)
    raw = canonical(manifest)
    good = [{"name": "manifest.json", "data": raw}, {"name": "arrays.bin", "data": blob}]
    refused(raw_zip([good[0], dict(good[1], gap=b"#!/bin/sh\nrm -rf ~\n")]),
            "starts at byte .*: the zip holds bytes that belong to no member")
    refused(raw_zip(good, records=b"\0" * 40), "truncated or corrupt artifact")
    refused(_with_zip64_records(raw_zip(good)), "records that are not entries \\(zip64")
    refused(raw_zip([good[0], dict(good[1], local_crc=0)]),
            "arrays.bin's local header does not agree with its directory entry")
    refused(raw_zip([dict(good[0], local_name="manifest.jsoN"), good[1]]),
            "truncated or corrupt artifact")
    # free-form bytes in a local extra field or an entry's comment: a
    # signed artifact could carry them unsigned
    for where in ({"extra": b"\x99\x99\x04\x00evil"}, {"entry_comment": b"payload"}):
        refused(raw_zip([good[0], dict(good[1], **where)]),
                r"arrays.bin.s (local header|directory entry) .*extra fields")
    # a data descriptor (as streaming zip writers use) is part of the frame
    streamed = raw_zip([dict(good[0], descriptor=True), dict(good[1], descriptor=True)])
    np.testing.assert_array_equal(load(streamed).predict(probe), served.predict(probe))
    refused(streamed[:-22 - 1] + streamed[-22:], "truncated or corrupt artifact")


def _data_spans(data):
    """(start, end) of each member's compressed data in a zip."""
    spans, position = [], 0
    while data[position : position + 4] == b"PK\x03\x04":
        fields = struct.unpack("<4s5H3L2H", data[position : position + 30])
        start = position + 30 + fields[9] + fields[10]
        spans.append((start, start + fields[7]))
        position = start + fields[7]
    return spans


def test_with_a_key_every_changed_bit_of_the_zip_is_refused(models, probe):
    """Each of the 8 bits of every byte outside the deflate streams of a
    signed artifact flipped in turn (its zip headers, directory and end
    record; dates, versions and attributes included): every one refused
    with the key (49 of 2,100 seeded flips anywhere loaded before). Flips in a
    deflate stream are refused or inflate to the very bytes signed. Without
    the key, a copy rewritten by the zip module loads, as its content is
    intact."""
    served, _, signed = models["pca"]
    expected = served.predict_proba(probe)
    spans = _data_spans(signed)
    assert len(spans) == 2
    outside = [i for i in range(len(signed)) if not any(a <= i < b for a, b in spans)]
    assert len(outside) > 200
    for position in outside:
        for bit in range(8):
            flipped = bytearray(signed)
            flipped[position] ^= 1 << bit
            with pytest.raises(ArtifactError):
                load(bytes(flipped), key=KEY)
    rng = random.Random(13)
    for _ in range(200):
        start, end = rng.choice(spans)
        flipped = bytearray(signed)
        flipped[rng.randrange(start, end)] ^= 1 << rng.randrange(8)
        try:
            proba = load(bytes(flipped), key=KEY).predict_proba(probe)
        except ArtifactError:
            continue
        np.testing.assert_array_equal(proba, expected)
    manifest, blob = members(signed)
    rewritten = pack(canonical(manifest), blob, as_skquant=False)
    refused(rewritten, "its zip headers are not as skquant writes them", key=KEY)
    np.testing.assert_array_equal(load(rewritten).predict_proba(probe), expected)


def test_files_that_are_not_regular_or_not_binary(models, tmp_path):
    _, data, _ = models["pca"]
    if hasattr(os, "mkfifo"):  # opening a FIFO would wait for a writer forever
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(ArtifactError, match="fifo: not a skquant artifact: it is not a "
                                                "regular file"):
            load_quantized(tmp_path / "fifo")
    path = tmp_path / "model.skq"
    path.write_bytes(data)
    with open(path) as text, pytest.raises(TypeError, match="open in text mode"):
        load_quantized(text)

    class Stream(io.RawIOBase):  # a pipe: it reads, but cannot seek
        def readable(self):
            return True

    with pytest.raises(TypeError, match="cannot seek.*io.BytesIO"):
        load_quantized(Stream())
    with open(path, "rb") as binary:
        assert load_quantized(binary).steps == ["clean", "linear", "mlp"]


def _wide_graph(n_landmarks, n_out, n_neighbors):
    """A graph step with zero int8 weights (a file of a few KB) whose every
    row needs the coordinates of ``n_neighbors`` landmarks."""
    manifest = {"dtype": "int8", "n_features_in": 8, "steps": [
        {"kind": "nystrom", "prefix": "n.",
         "params": {"n_neighbors": n_neighbors, "scale_floor": 1.0}},
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 1}}]}
    arrays = {"classes": np.arange(2), "n.landmark_scale": np.ones(n_landmarks, np.float32),
              "c.input_mean": np.zeros(n_out, np.float32),
              "c.input_scale": np.ones(n_out, np.float32), "c.bias0": np.zeros(2, np.float32)}
    for name, shape in (("n.landmarks", (n_landmarks, 8)), ("n.coordinates", (n_out, n_landmarks)),
                        ("c.weights0", (2, n_out))):
        arrays[name + ".q"] = np.zeros(shape, np.int8)
        arrays[name + ".scale"] = np.ones(shape[0], np.float32)
    buffer = io.BytesIO()
    QuantizedPipeline(manifest, arrays).save(buffer)
    return buffer.getvalue()


def test_predicting_with_a_wide_step_is_bounded_in_memory():
    """A 10 KB file whose graph step gathers 1024 x 1024 coordinates per
    row: 4 MiB a row, so 64 rows took 256 MiB (the issue's 1,797 digits,
    7 GiB). Rows now go through the steps in blocks of bounded memory."""
    data = _wide_graph(1024, 1024, 1024)
    assert len(data) < 16_000
    served = load(data)
    peak, outcome = _peak(served.predict_proba, np.zeros((64, 8)))
    assert outcome is None and peak < 96 * MiB, peak
    proba = served.predict_proba(np.zeros((64, 8)))  # the blocks join up
    np.testing.assert_array_equal(proba, np.full((64, 2), 0.5))


def _forest(n_trees, depth):
    """Complete random trees of ``depth`` with int32 indices, zero weights."""
    per_tree = 2 ** (depth + 1) - 1
    internal = np.arange(2**depth - 1)
    one = {"feature": np.full(per_tree, -2), "children": np.full((per_tree, 2), -1),
           "leaf_row": np.full(per_tree, -1)}
    one["feature"][internal] = 0
    one["children"][internal] = np.column_stack([2 * internal + 1, 2 * internal + 2])
    offsets = np.arange(n_trees) * per_tree
    leaf = np.tile(one["feature"], n_trees) < 0
    leaf_row = np.full(leaf.size, -1)
    leaf_row[leaf] = np.arange(np.count_nonzero(leaf))  # each leaf its own row
    arrays = {
        "t.feature": np.tile(one["feature"], n_trees),
        "t.children": (np.tile(one["children"], (n_trees, 1))
                       + np.where(np.tile(one["children"], (n_trees, 1)) >= 0,
                                  np.repeat(offsets, per_tree)[:, None], 0)),
        "t.leaf_row": leaf_row, "t.roots": offsets}
    arrays = {name: array.astype(np.int32) for name, array in arrays.items()}
    arrays.update({"classes": np.arange(2), "t.threshold": np.zeros(n_trees * per_tree, np.float32),
                   "t.lookup": np.zeros((1, np.count_nonzero(leaf)), np.float32),
                   "t.shift": np.zeros(1, np.float32),
                   "c.input_mean": np.zeros(1, np.float32), "c.input_scale": np.ones(1, np.float32),
                   "c.weights0": np.zeros((2, 1), np.float32), "c.bias0": np.zeros(2, np.float32)})
    manifest = {"dtype": "float32", "n_features_in": 4, "steps": [
        {"kind": "random_trees", "prefix": "t.", "params": {"depth": depth}},
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 1}}]}
    model = QuantizedPipeline(manifest, arrays)
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue(), model.nbytes


def test_trees_sharing_lookup_rows_are_refused(models):
    """4,096 one-leaf trees all reading row 0 of a 1 x 1,000 table: 16 KB
    of arrays, 4 million additions per row (at 65,536 trees and 4 million
    outputs, a 100 KB file took minutes a row). Each leaf has its own row,
    so the work per row is at most the table's size."""
    trees, _, _ = models["random-trees"]
    n_trees, width = 4096, 1000
    manifest = {"dtype": "int8", "n_features_in": 4, "steps": [
        {"kind": "random_trees", "prefix": "t.", "params": {"depth": 0}},
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 1}}]}
    arrays = {"classes": np.arange(2), "t.feature": np.full(n_trees, -2, np.int16),
              "t.threshold": np.zeros(n_trees, np.float32),
              "t.children": np.full((n_trees, 2), -1, np.int16),
              "t.leaf_row": np.zeros(n_trees, np.int16),
              "t.roots": np.arange(n_trees, dtype=np.int16),
              "t.lookup.q": np.zeros((width, 1), np.int8),
              "t.lookup.scale": np.ones(width, np.float32), "t.shift": np.zeros(width, np.float32),
              "c.input_mean": np.zeros(width, np.float32),
              "c.input_scale": np.ones(width, np.float32),
              "c.weights0.q": np.zeros((2, width), np.int8),
              "c.weights0.scale": np.ones(2, np.float32), "c.bias0": np.zeros(2, np.float32)}
    refused(artifact_bytes(manifest, arrays), "leaf_row gives two leaves the same row")
    leaf_row = trees.arrays["s1.leaf_row"].copy()
    leaves = np.flatnonzero(leaf_row >= 0)
    leaf_row[leaves[1]] = leaf_row[leaves[0]]  # within a real forest too
    refused(with_arrays(trees, s1__leaf_row=leaf_row), "leaf_row gives two leaves the same")


def _graph(n_landmarks, width):
    """A float32 graph step of zero landmarks: most bytes in the landmarks."""
    manifest = {"dtype": "float32", "n_features_in": width, "steps": [
        {"kind": "nystrom", "prefix": "n.", "params": {"n_neighbors": 5, "scale_floor": 1.0}},
        {"kind": "mlp", "prefix": "c.", "params": {"n_layers": 1}}]}
    arrays = {"classes": np.arange(2), "n.landmarks": np.zeros((n_landmarks, width), np.float32),
              "n.landmark_scale": np.ones(n_landmarks, np.float32),
              "n.coordinates": np.zeros((2, n_landmarks), np.float32),
              "c.input_mean": np.zeros(2, np.float32), "c.input_scale": np.ones(2, np.float32),
              "c.weights0": np.zeros((2, 2), np.float32), "c.bias0": np.zeros(2, np.float32)}
    model = QuantizedPipeline(manifest, arrays)
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue(), model.nbytes


@pytest.mark.parametrize("make, args", [(_forest, (4, 18)), (_graph, (500_000, 16))],
                         ids=["random-trees", "graph landmarks"])
def test_building_the_steps_costs_less_than_their_arrays(make, args):
    """The forest's checks and index copies took 4.8 times its arrays' bytes
    (96 bytes a node), the landmarks a float64 copy (3 times): past the
    issue's bound of twice the bytes plus 64 MiB for a large file. Now the
    checks run in blocks, in the stored dtypes, and the landmarks are read
    in float64 a block at a time."""
    data, declared = make(*args)
    assert declared > 30 * MiB and len(data) < declared / 10
    peak, outcome = _peak(load, data)
    assert outcome is None
    assert peak <= 1.8 * declared + 16 * MiB, (peak / declared, declared)
    served = load(data)
    assert np.isfinite(served.predict_proba(np.ones((3, served.n_features_in_)))).all()


def test_restoring_a_transposed_matrix_allocates_it_once():
    from skquant.runtime._steps import restore

    codes = np.ones((500, 4000), np.int8)
    arrays = {"m.q": codes, "m.scale": np.full(500, 0.5, np.float32),
              "f": codes.astype(np.float16)}
    for name in ("m", "f"):
        peak, _ = _peak(restore, arrays, name, transpose=True)
        assert peak < 1.2 * codes.size * 4, (name, peak)  # one float32 copy, not two
        restored = restore(arrays, name, transpose=True)
        assert restored.flags.c_contiguous and restored.shape == (4000, 500)
        np.testing.assert_array_equal(restored, restore(arrays, name).T)


# ---------------------------------------------------------------- item 5: fuzz
_VALUES = [None, True, False, 0, 1, -1, 2, 7, 2**31, 2**63, -(2**63), 10**19, 0.0, -0.0, 0.5,
           1.5, -2.5, 1e-30, 1e30, 1e308, "", "x", "float32", "float16", "int8", "mlp", "clean",
           "linear", "random_trees", "nystrom", "<f4", "<f2", "|i1", "<i2", "<i8", "|O", "s0.",
           "s9.", [], [0], [-1], [1, 2], [1, 2, 3], [[1]], {}, {"a": 1}, {"n_layers": 1}]
_FREE = ("scale", "scale_floor", "n_neighbors")  # parameters a valid forgery may change


def _nodes(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _nodes(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _nodes(child, (*path, i))


def _set(root, path, value):
    node = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _mutate(manifest, rng):
    """One random structural edit of ``manifest`` (a copy): replace, delete,
    insert, nudge a number, swap two values or rename a key."""
    manifest = copy.deepcopy(manifest)
    nodes = [(p, v) for p, v in _nodes(manifest) if p and p[0] not in ("checksum", "signature")]
    path, value = rng.choice(nodes)
    operation = rng.choice(["replace", "replace", "delete", "insert", "nudge", "swap", "rename"])
    touched = [path]
    if operation == "replace":
        _set(manifest, path, copy.deepcopy(rng.choice(_VALUES + [v for _, v in nodes[:40]])))
    elif operation == "delete":
        parent = manifest
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
    elif operation == "insert":
        containers = [(p, v) for p, v in _nodes(manifest) if isinstance(v, (dict, list))]
        where, container = rng.choice(containers)
        touched = [where]
        new = copy.deepcopy(rng.choice(_VALUES))
        if isinstance(container, dict):
            container[rng.choice(["extra", "kind", "params", "prefix", "q", "signature",
                                  "steps", "dtype", "estimator"])] = new
        else:
            container.insert(rng.randrange(len(container) + 1), new)
    elif operation == "nudge":
        numbers = [(p, v) for p, v in nodes if type(v) in (int, float)]
        path, value = rng.choice(numbers)
        touched = [path]
        _set(manifest, path, type(value)(value + rng.choice([1, -1, 2, 8, -8, 2**16, -value])))
    elif operation == "swap":
        other, other_value = rng.choice(nodes)
        touched.append(other)
        if other[: len(path)] != path and path[: len(other)] != other:
            _set(manifest, path, copy.deepcopy(other_value))
            _set(manifest, other, copy.deepcopy(value))
    else:
        dicts = [(p, v) for p, v in _nodes(manifest) if isinstance(v, dict) and v]
        where, container = rng.choice(dicts)
        key = rng.choice(sorted(container))
        touched = [(*where, key)]
        container[key + rng.choice(["_", "s", "0", "."])] = container.pop(key)
    return manifest, touched


def test_fuzzed_manifests_are_refused_or_predict_identically(models, probe):
    """200 seeded structural edits of the manifests per registered method, each
    with its checksum recomputed as a forger would: every one is refused with
    an ArtifactError, or loads and predicts exactly as the original, or
    changed only the array index or a free numeric parameter (a different
    valid model, which only a key can tell: signed, each of those is
    refused)."""
    rng = random.Random(11)
    outcomes = {"refused": 0, "identical": 0, "forged model": 0, "other width": 0}
    for method, (served, data, signed) in models.items():
        expected = served.predict_proba(probe)
        manifest, blob = members(data)
        signed_manifest, _ = members(signed)
        for _ in range(200):
            edited, touched = _mutate(manifest, rng)
            try:
                forged = forge(edited, blob)
            except (TypeError, ValueError):  # not JSON-serializable: not a file at all
                continue
            try:
                model = load(forged)
            except ArtifactError:
                outcomes["refused"] += 1
                continue
            try:
                proba = model.predict_proba(probe)
            except ValueError as exc:  # a model of another width: a clear error
                assert "features, but the model is expecting" in str(exc)
                assert all(path == ("n_features_in",) for path in touched), touched
                outcomes["other width"] += 1
                continue
            assert np.isfinite(proba).all()
            if np.array_equal(proba, expected):
                outcomes["identical"] += 1
                continue
            outcomes["forged model"] += 1
            assert all(path[0] == "arrays" or path[-1] in _FREE for path in touched), (
                method, touched)
            edited.pop("signature", None)
            signed_edit = dict(edited, signature=signed_manifest["signature"])
            refused(forge(signed_edit, blob, keep_signature=True), "signature", key=KEY)
    assert sum(outcomes.values()) >= 190 * len(models), outcomes
    assert outcomes["refused"] > 0.8 * sum(outcomes.values()), outcomes


def test_fuzzed_bytes_are_refused_or_change_nothing(models, probe):
    """150 seeded byte edits per registered method: 50 flips anywhere in the
    file and 50 in the blob with the checksum left alone (corruption: always
    refused, or, for the zip fields nobody reads, identical predictions),
    and 50 blob flips with the checksum recomputed (a forged blob: refused,
    or a model whose outputs are finite probabilities or a clear error;
    signed, every one is refused)."""
    rng = random.Random(12)
    counts = {"refused": 0, "identical": 0, "forged model": 0}
    for method, (served, data, signed) in models.items():
        expected = served.predict_proba(probe)
        manifest, blob = members(data)
        signed_manifest, _ = members(signed)
        for _ in range(50):  # anywhere in the zip file
            damaged = bytearray(data)
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            try:
                proba = load(bytes(damaged)).predict_proba(probe)
            except ArtifactError:
                counts["refused"] += 1
            else:
                np.testing.assert_array_equal(proba, expected)
                counts["identical"] += 1
        for _ in range(50):  # the blob, the checksum kept: corruption
            damaged = bytearray(blob)
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            refused(pack(canonical(manifest), bytes(damaged)), "fails its checksum")
            counts["refused"] += 1
        for _ in range(50):  # the blob, the checksum recomputed: a forgery
            damaged = bytearray(blob)
            for _ in range(rng.choice([1, 1, 4])):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            damaged = bytes(damaged)
            if damaged == blob:  # the same byte written back: no edit
                damaged = blob[:-1] + bytes([blob[-1] ^ 0x80])
            refused(forge(signed_manifest, damaged, keep_signature=True),
                    "signature that does not match", key=KEY)
            try:
                model = load(forge(manifest, damaged))
            except ArtifactError:
                counts["refused"] += 1
                continue
            counts["forged model"] += 1
            try:
                proba = model.predict_proba(probe)
            except ValueError as exc:  # a weight forged to overflow: said clearly
                assert "overflowed float32" in str(exc)
            else:
                assert np.isfinite(proba).all()
                np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert sum(counts.values()) == 150 * len(models), counts
