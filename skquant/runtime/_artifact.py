"""The portable artifact: one zip file holding a JSON manifest and one blob.

The blob is every array's raw bytes, one after another; the manifest gives
each array's dtype, shape and offset, and the steps that use them. Nothing
in it is unpickled (arrays are views of the blob, in numeric or string
dtypes from a fixed list) and the manifest is plain JSON, so reading an
artifact cannot run code.

Reading validates before it allocates. In order: the zip's end record
(exactly two members, ``manifest.json`` and ``arrays.bin``, no comment, no
trailing data); the members' declared sizes against the limits (and the
manifest's against the 1 MiB bound) before either is read; the zip's frame
(the two members' local headers, agreeing with the directory, and their
data, then the directory, end to end: every byte of the file belongs to a
member or to the directory, and there are no zip64 records); the manifest
(ASCII JSON, no repeated keys, bounded depth, in its one canonical
serialization, every key and type as the schema says); the array index
(allowed dtypes, bounded shapes, aligned offsets that tile the blob exactly)
and what each step needs of its arrays, widths chained from
``n_features_in`` to the number of classes; the blob's declared size
against the index's total. Only then is the blob read, in chunks and never
beyond its declared size, and its values checked (finite weights, positive
scales, indices in range, trees that are forests of the declared depth).
Limits are in ``skquant.runtime._schema``. Every malformed file raises
:class:`ArtifactError` and nothing else (a file object that cannot seek or
is in text mode raises ``TypeError``, a path that cannot be opened
``OSError``). Reading one costs at most the declared array bytes (at most
``max_bytes``) plus a few MiB; building the pipeline from it
(:func:`~skquant.runtime.load_quantized`) adds the float32 copies of the
weights stored as int8 or float16 (and of two matrices stored transposed:
the random-trees lookup table and the graph step's coordinates), so that
the peak is at most twice the arrays' bytes counted at float32's four bytes
per weight, plus 64 MiB. Predicting then costs the inputs and outputs and a
block of rows' working memory (``_pipeline._BLOCK_BYTES``, 64 MiB), however
wide a step the file declares.

What the checksum guarantees
----------------------------
``checksum`` is SHA-256 over a domain tag, the canonical manifest without
its ``checksum`` and ``signature`` fields (length-prefixed) and the blob.
The raw manifest bytes must equal the canonical serialization, so every
byte of the file's content is covered. It detects accidental corruption and
truncation. It does **not** detect tampering: anyone can edit a file and
recompute it.

For authenticity, sign with a secret key: ``save(path, key=...)`` stores an
HMAC-SHA256 of the same bytes as ``signature``, and ``load_quantized(path,
key=...)`` refuses a file whose signature is missing or does not match
(compared in constant time). Without a key, a signature is not checked.

Both cover the content (the manifest and every array byte), not the zip
container around it, which is checked instead to hold nothing else: its two
members end to end, with no gap, extra field, comment or zip64 record.
Without a key, its fixed-size bookkeeping (dates, versions, file
attributes, stored or deflated data) may differ from what skquant writes,
as after a copy through another zip tool; none of it reaches the model.
With a key, it must be exactly what the writer puts there, so that a file
that passes differs from the one signed at most in how its deflate streams
encode the signed bytes (which are inflated, CRC-checked and verified).
"""

import contextlib
import hashlib
import hmac
import io
import os
import re
import stat
import struct
import zipfile
import zlib

import numpy as np

from .. import _atomic
from ._schema import (
    ARTIFACT_KEYS,
    MAX_ARRAY_BYTES,
    MAX_BYTES_CAP,
    MAX_MANIFEST_BYTES,
    ArtifactError,
    Str,
    canonical,
    check_index,
    check_keys,
    check_model,
    parse_manifest,
)
from ._steps import STEPS

__all__ = ["ArtifactError", "read_artifact", "write_artifact", "artifact_bytes"]

FORMAT = "skquant-quantized"
FORMAT_VERSION = 2
_MANIFEST = "manifest.json"
_BLOB = "arrays.bin"
_MEMBERS = (_MANIFEST, _BLOB)
_ALLOWED_KINDS = "biufU"  # no objects, no raw void records, no complex
_DOMAIN = b"skquant-quantized/2\n"
_CHUNK = 1 << 20
_DATE = (1980, 1, 1, 0, 0, 0)  # a fixed date: the same model, the same bytes
_END = struct.Struct("<4s4H2LH")  # the zip's end of central directory record
_LOCAL = struct.Struct("<4s5H3L2H")  # a member's local header
_CENTRAL = struct.Struct("<4s4B4H3L5H2L")  # a directory entry's fixed part
_CHECKSUM = re.compile(r"sha256:[0-9a-f]{64}\Z")
_SIGNATURE = re.compile(r"hmac-sha256:[0-9a-f]{64}\Z")
_MAX_DIRECTORY = 4096  # two central directory entries with short names
_DEFLATE_RATIO = 1100  # deflate cannot expand data more than about 1032-fold
_BROKEN = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
           RuntimeError, struct.error, ValueError)


def _check_key(key):
    if key is None:
        return None
    if isinstance(key, str):
        raise TypeError("key must be bytes, not str: read the key file in binary mode "
                        "(open(path, 'rb').read()).")
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError(f"key must be bytes, got {type(key).__name__}.")
    key = bytes(key)
    if not key:
        raise ValueError("key is empty; use a secret of 32 random bytes, e.g. "
                         "secrets.token_bytes(32).")
    return key


def _check_max_bytes(max_bytes):
    if type(max_bytes) is not int or not 0 < max_bytes <= MAX_BYTES_CAP:
        raise ValueError(f"max_bytes must be an integer in [1, {MAX_BYTES_CAP}], got "
                         f"{max_bytes!r}.")
    return max_bytes


class _Digests:
    """SHA-256 (and, with a key, HMAC-SHA256) over the domain tag, the
    length-prefixed canonical manifest body and the blob."""

    def __init__(self, body, key):
        self._hashes = [hashlib.sha256()]
        if key is not None:
            self._hashes.append(hmac.new(key, digestmod=hashlib.sha256))
        self.update(_DOMAIN + len(body).to_bytes(8, "big") + body)

    def update(self, data):
        for digest in self._hashes:
            digest.update(data)

    def checksum(self):
        return "sha256:" + self._hashes[0].hexdigest()

    def signature(self):
        return "hmac-sha256:" + self._hashes[1].hexdigest()


def _body(manifest):
    return canonical({k: v for k, v in manifest.items() if k not in ("checksum", "signature")})


# ----------------------------------------------------------------- writing
def artifact_bytes(manifest, arrays, *, key=None):
    """The bytes of the artifact of ``manifest`` (the model's part; the
    artifact's own keys are written afresh) and ``arrays``, signed with
    ``key`` if given."""
    key = _check_key(key)
    prepared = {}
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind not in _ALLOWED_KINDS:
            raise TypeError(f"array {name!r} has dtype {array.dtype}; artifacts hold "
                            "numbers and strings only.")
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        prepared[name] = np.ascontiguousarray(array)
    # the widest alignment first: every array then starts aligned, with no padding
    order = sorted(prepared, key=lambda name: (-prepared[name].dtype.alignment, name))
    index, offset = {}, 0
    for name in order:
        array = prepared[name]
        index[name] = [array.dtype.str, list(array.shape), offset]
        offset += array.nbytes
    blob = np.empty(offset, dtype=np.uint8)
    for name in order:
        start = index[name][2]
        blob[start : start + prepared[name].nbytes] = prepared[name].reshape(-1).view(np.uint8)
    body = {k: v for k, v in manifest.items() if k not in ARTIFACT_KEYS}
    body.update(format=FORMAT, format_version=FORMAT_VERSION, arrays=index)
    digests = _Digests(canonical(body), key)
    digests.update(blob.data)
    body["checksum"] = digests.checksum()
    if key is not None:
        body["signature"] = digests.signature()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, payload in ((_MANIFEST, canonical(body)), (_BLOB, blob.data)):
            info = zipfile.ZipInfo(member, date_time=_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # as on POSIX, also on Windows: the same bytes
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
    return buffer.getvalue()


def write_artifact(path, manifest, arrays, *, key=None):
    """Write ``manifest`` (JSON-able dict) and ``arrays`` (name -> ndarray).

    A path is written atomically (a temporary file beside it, then
    ``os.replace``), replacing any file there; a writable binary file
    object is written to as it is. Returns the path (``None`` for a file
    object).
    """
    data = artifact_bytes(manifest, arrays, key=key)
    if hasattr(path, "write"):
        path.write(data)
        return None
    return _atomic.write_bytes(path, data)


# ----------------------------------------------------------------- reading
@contextlib.contextmanager
def _zip_errors():
    """What the zip module raises for a damaged file, as an ArtifactError."""
    try:
        yield
    except ArtifactError:
        raise
    except _BROKEN as exc:
        raise ArtifactError(f"truncated or corrupt artifact ({type(exc).__name__}: "
                            f"{exc}). Export or copy it again.") from None


def _not_an_artifact(head):
    hint = ""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        hint = (" It looks like a pickle (joblib) file: the runtime never loads one, "
                "since loading a pickle can run any code it holds.")
    return ArtifactError(
        f"not a skquant artifact: it is not a zip file.{hint} Artifacts are written by "
        "skquant.quantize(pipeline).save(path) or `skquant quantize`.")


def _open_zip(handle, max_bytes):
    """Check the zip's frame from its end record, then open it."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        raise ArtifactError("truncated or corrupt artifact: the file is empty (as a save "
                            "interrupted before it wrote anything leaves it).")
    handle.seek(0)
    head = handle.read(4)
    if head != b"PK\x03\x04":
        raise _not_an_artifact(head + handle.read(2))
    if size > max_bytes + max_bytes // 256 + MAX_MANIFEST_BYTES + (2 << 20):
        raise ArtifactError(f"the file has {size} bytes, more than an artifact within "
                            f"max_bytes={max_bytes} can have.")
    end = b""
    if size >= _END.size:
        handle.seek(size - _END.size)
        end = handle.read(_END.size)
    if len(end) != _END.size or end[:4] != b"PK\x05\x06":
        raise ArtifactError("truncated or corrupt artifact: the zip's end record is "
                            "missing, as when a save is interrupted. Export it again.")
    _, disk, first, entries_here, entries, directory, start, comment = _END.unpack(end)
    if (comment or disk or first or entries_here != entries
            or directory > _MAX_DIRECTORY or start + directory != size - _END.size):
        raise ArtifactError("truncated or corrupt artifact: its zip directory is not "
                            "where its end record says, or has data after it.")
    if entries > 16:
        raise ArtifactError(f"not a skquant artifact: the zip holds {entries} members; "
                            f"an artifact holds exactly {list(_MEMBERS)}.")
    with _zip_errors():
        archive = zipfile.ZipFile(handle)
    return archive, size, (start, directory)


def _members(archive, size, max_bytes):
    infos = archive.infolist()
    names = [info.filename for info in infos]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ArtifactError(f"the zip repeats the member(s) {repeated}: an artifact whose "
                            "members repeat can be read two ways, so it is refused.")
    for name in _MEMBERS:
        if name not in names:
            raise ArtifactError(
                f"not a skquant artifact: it has no {name} (its members: "
                f"{[n[:40] for n in names[:5]]}).")
    extra = sorted(set(names) - set(_MEMBERS))
    if extra:
        raise ArtifactError(f"the zip holds member(s) {[n[:40] for n in extra[:5]]} "
                            f"besides {list(_MEMBERS)}; an artifact holds nothing else.")
    limits = {_MANIFEST: MAX_MANIFEST_BYTES, _BLOB: max_bytes}
    found = {}
    for info in infos:
        name = info.filename
        if info.flag_bits & 0x1:
            raise ArtifactError(f"{name} is encrypted; artifacts never are.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArtifactError(f"{name} uses zip compression method "
                                f"{info.compress_type}; artifacts use deflate.")
        if info.file_size > limits[name]:
            raise ArtifactError(
                f"{name} declares {info.file_size} bytes, more than the {limits[name]} "
                "bytes this loader accepts"
                + (" (max_bytes)." if name == _BLOB else " for a manifest."))
        stored = info.compress_type == zipfile.ZIP_STORED
        if (info.header_offset + info.compress_size > size
                or (stored and info.compress_size != info.file_size)
                or info.file_size > _DEFLATE_RATIO * info.compress_size + 1024):
            raise ArtifactError(
                f"truncated or corrupt artifact: {name} declares {info.file_size} bytes "
                f"from {info.compress_size} stored bytes, which the file cannot hold.")
        found[name] = info
    return found


# what the writer puts in each zip header, but the CRC, sizes and offsets
# (version needed, flags, method, time, date): a signed artifact holds these
_LOCAL_FIELDS = (20, 0, zipfile.ZIP_DEFLATED, 0, 33)
# (version made by, system, version needed, its high byte, flags, method, time,
# date) and (disk, internal attributes, external attributes)
_CENTRAL_FIELDS = ((20, 3, 20, 0, 0, zipfile.ZIP_DEFLATED, 0, 33), (0, 0, 0o644 << 16))


def _directory_entries(handle, directory):
    """The raw entries of the central directory, parsed here rather than
    trusted to the zip module (which skips what it cannot place): every byte
    of the directory must belong to an entry."""
    start, size = directory
    handle.seek(start)
    raw = handle.read(size)
    entries, position = {}, 0
    while position < len(raw):
        if len(raw) - position < _CENTRAL.size:
            raise ArtifactError("truncated or corrupt artifact: its zip directory ends "
                                "inside an entry.")
        fields = _CENTRAL.unpack_from(raw, position)
        if fields[0] != b"PK\x01\x02":
            raise ArtifactError("truncated or corrupt artifact: its zip directory holds "
                                "records that are not entries (zip64, say).")
        name_length, extra_length, comment_length = fields[12:15]
        name = raw[position + _CENTRAL.size : position + _CENTRAL.size + name_length]
        entries[name] = fields + (extra_length or comment_length,)
        position += _CENTRAL.size + name_length + extra_length + comment_length
    if position != len(raw) or len(entries) != len(_MEMBERS):
        raise ArtifactError("truncated or corrupt artifact: its zip directory's entries "
                            "do not fill it exactly.")
    return entries


def _check_frame(handle, infos, directory, *, as_written=False):
    """The file is its members and their directory, end to end: each
    member's local header and its directory entry agree with what the zip
    module read (no extra fields, no comments), its data follow, and the
    members run from byte 0 to the directory, whose entries fill it
    exactly. No bytes lie between, and no zip64 records (an artifact is
    never that large): no byte of the file can carry anything that is not
    read and checked, but for the zip's own fixed-size bookkeeping (dates,
    versions, attributes), which ``as_written`` (with a key) pins to what
    the writer puts there."""
    central = _directory_entries(handle, directory)
    position, changed = 0, []
    for info in sorted(infos, key=lambda info: info.header_offset):
        name = info.filename.encode("ascii")
        entry = central.get(name)
        if (entry is None or entry[5:7] != (info.flag_bits, info.compress_type)
                or entry[9:12] != (info.CRC, info.compress_size, info.file_size)
                or entry[18] != info.header_offset or entry[19]):
            raise ArtifactError(
                f"truncated or corrupt artifact: {info.filename}'s directory entry is not "
                "what it seems (or carries extra fields or a comment, which artifacts "
                "never have).")
        if info.header_offset != position:
            raise ArtifactError(
                f"truncated or corrupt artifact: {info.filename} starts at byte "
                f"{info.header_offset}, not right after the member before it (byte "
                f"{position}): the zip holds bytes that belong to no member.")
        handle.seek(position)
        header = handle.read(_LOCAL.size)
        if len(header) != _LOCAL.size:
            raise ArtifactError(f"truncated or corrupt artifact: {info.filename}'s local "
                                "header is cut short.")
        (signature, version, flags, method, time, date, crc, compressed, plain,
         name_length, extra_length) = _LOCAL.unpack(header)
        descriptor = bool(flags & 0x8)
        if (signature != b"PK\x03\x04" or handle.read(name_length) != name or extra_length
                or method != info.compress_type
                or (not descriptor and (crc, compressed, plain) != (
                    info.CRC, info.compress_size, info.file_size))):
            raise ArtifactError(
                f"truncated or corrupt artifact: {info.filename}'s local header does not "
                "agree with its directory entry (or carries extra fields, which "
                "artifacts never have).")
        position += _LOCAL.size + name_length + info.compress_size
        if descriptor:  # CRC and sizes after the data, with or without a signature
            handle.seek(position)
            has_signature = handle.read(4) == b"PK\x07\x08"
            position += 16 if has_signature else 12
        if (version, flags, method, time, date) != _LOCAL_FIELDS:
            changed.append(f"{info.filename}'s local header")
        if (entry[1:9], entry[15:18]) != _CENTRAL_FIELDS:
            changed.append(f"{info.filename}'s directory entry")
    if position != directory[0]:
        raise ArtifactError(
            f"truncated or corrupt artifact: its members end at byte {position}, but its "
            f"directory starts at byte {directory[0]}: the zip holds bytes that belong "
            "to no member.")
    order = [info.filename for info in sorted(infos, key=lambda info: info.header_offset)]
    if order != list(_MEMBERS):
        changed.append("the members' order")
    if as_written and changed:
        raise ArtifactError(
            f"its zip headers are not as skquant writes them ({', '.join(changed[:4])}): "
            "a signed artifact must be the file that was signed, not a rewritten copy. "
            "Do not use it; export the model again.")


def _read_member(archive, info, sink):
    """Feed ``info``'s bytes to ``sink`` in chunks, never more than it
    declares; the zip module checks the CRC at the end."""
    remaining = info.file_size
    with _zip_errors(), archive.open(info) as member:
        while remaining:
            chunk = member.read(min(_CHUNK, remaining))
            if not chunk:
                raise ArtifactError(f"truncated or corrupt artifact: {info.filename} "
                                    "ends before its declared size.")
            sink(chunk)
            remaining -= len(chunk)


def _check_version(manifest):
    if manifest.get("format") != FORMAT:
        raise ArtifactError(
            f"not a skquant artifact (its manifest's format is "
            f"{str(manifest.get('format'))[:40]!r}, not {FORMAT!r}).")
    version = manifest.get("format_version")
    if version == FORMAT_VERSION and type(version) is int:
        return
    if version == 1 and type(version) is int:
        raise ArtifactError(
            "artifact format version 1, written by an older skquant; this skquant "
            f"reads version {FORMAT_VERSION}, whose files are validated in full. "
            "Re-export the model: skquant.quantize(pipeline).save(path), or "
            "`skquant quantize --trust-pickle model.joblib -o model.skq`.")
    if type(version) is int and version > FORMAT_VERSION:
        raise ArtifactError(
            f"artifact format version {version}; this skquant reads version "
            f"{FORMAT_VERSION}. Upgrade skquant, or re-export the model with this "
            "version.")
    raise ArtifactError(f"artifact format version {str(version)[:20]!r}; this "
                        f"skquant reads version {FORMAT_VERSION}.")


def _read_open(handle, key, max_bytes):
    archive, size, directory = _open_zip(handle, max_bytes)
    with archive:
        members = _members(archive, size, max_bytes)
        with _zip_errors():
            _check_frame(handle, members.values(), directory, as_written=key is not None)
        raw = bytearray()
        _read_member(archive, members[_MANIFEST], raw.extend)
        raw = bytes(raw)
        manifest = parse_manifest(raw)
        if type(manifest) is not dict:
            raise ArtifactError("manifest.json must hold a JSON object.")
        _check_version(manifest)
        if canonical(manifest) != raw:
            raise ArtifactError(
                "manifest.json is not in the one form skquant writes (sorted keys, no "
                "spaces, ASCII): it was edited or written by another program.")
        check_keys({k: v for k, v in manifest.items() if k in ARTIFACT_KEYS},
                   "the manifest", ARTIFACT_KEYS[:4], ("signature",))
        Str(pattern=_CHECKSUM).check(manifest["checksum"], "checksum")
        if "signature" in manifest:
            Str(pattern=_SIGNATURE).check(manifest["signature"], "signature")
        layout, spans, total = check_index(manifest["arrays"], max_bytes)
        plan = check_model(manifest, layout, STEPS, allow=ARTIFACT_KEYS)
        blob_info = members[_BLOB]
        if blob_info.file_size != total:
            raise ArtifactError(
                f"truncated or corrupt artifact: arrays.bin holds {blob_info.file_size} "
                f"bytes, but the manifest's arrays take {total}.")
        if key is not None and "signature" not in manifest:
            raise ArtifactError(
                "is not signed, and a key was given: only an artifact signed with that "
                "key (save(path, key=...), `skquant quantize --key-file`) is accepted.")
        digests = _Digests(_body(manifest), key)
        blob = np.empty(total, dtype=np.uint8)
        position = 0

        def sink(chunk):
            nonlocal position
            blob[position : position + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            position += len(chunk)
            digests.update(chunk)

        _read_member(archive, blob_info, sink)
    if not hmac.compare_digest(digests.checksum(), manifest["checksum"]):
        raise ArtifactError(
            "fails its checksum: its contents changed after it was written (corruption, "
            "truncation or an edit). Do not use it; export the model again.")
    if key is not None and not hmac.compare_digest(digests.signature(),
                                                   manifest["signature"]):
        raise ArtifactError(
            "has a signature that does not match the key: it was signed with another "
            "key, or changed after it was signed. Do not use it.")
    blob.flags.writeable = False
    arrays = {}
    for name, (dtype, shape) in layout.items():
        offset, nbytes = spans[name]
        arrays[name] = blob[offset : offset + nbytes].view(dtype).reshape(shape)
    plan.check_values(arrays)
    return manifest, arrays, plan


def load(path, *, key=None, max_bytes=MAX_ARRAY_BYTES):
    """``(manifest, arrays, plan)`` of a validated artifact (see
    :func:`read_artifact`)."""
    key = _check_key(key)
    max_bytes = _check_max_bytes(max_bytes)
    if hasattr(path, "read"):
        if not (hasattr(path, "seekable") and path.seekable()):
            raise TypeError("the artifact's file object cannot seek, which reading a zip "
                            "needs: read the stream into io.BytesIO(stream.read()) first.")
        if isinstance(path, io.TextIOBase):
            raise TypeError("the artifact's file object is open in text mode: open it "
                            "with open(path, 'rb').")
        name, opened = getattr(path, "name", "the artifact"), contextlib.nullcontext(path)
    else:
        name = os.fspath(path)
        # a FIFO would block the open, a device never ends: only regular files
        if not stat.S_ISREG(os.stat(name).st_mode) and not os.path.isdir(name):
            raise ArtifactError(f"{name}: not a skquant artifact: it is not a regular file "
                                "(a device, FIFO or socket).")
        opened = open(name, "rb")
    with opened as handle:
        try:
            return _read_open(handle, key, max_bytes)
        except ArtifactError as exc:
            raise ArtifactError(f"{name}: {exc}") from None


def read_artifact(path, *, key=None, max_bytes=MAX_ARRAY_BYTES):
    """Read and validate an artifact; ``(manifest, arrays)``.

    Parameters
    ----------
    path : str, path-like or binary file object
        The artifact.
    key : bytes or None, default=None
        The secret the artifact was signed with. Given, an artifact without
        a matching HMAC-SHA256 signature is refused; None checks the
        checksum only (integrity, not authenticity).
    max_bytes : int, default=512 MiB
        The most array bytes accepted; larger files are refused before
        anything is read.

    Returns
    -------
    manifest : dict
    arrays : dict of str to ndarray
        Read-only views of one buffer.

    Raises
    ------
    ArtifactError
        For any file that is not a valid artifact.
    OSError
        If the file cannot be opened (FileNotFoundError for a missing one).
    TypeError
        For a file object that cannot seek or is open in text mode.
    """
    manifest, arrays, _ = load(path, key=key, max_bytes=max_bytes)
    return manifest, arrays
