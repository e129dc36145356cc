"""The portable artifact: one zip file holding a JSON manifest and one blob.

The blob is every array's raw bytes, one after another; the manifest gives
each array's dtype, shape and offset. Nothing in it is unpickled (arrays are
rebuilt with ``np.frombuffer`` from numeric or string dtypes only) and the
manifest is plain JSON, so an artifact from an untrusted source cannot run
code. A SHA-256 checksum over the manifest and the blob catches corrupt,
truncated and tampered files. One blob rather than a file per array keeps
the fixed overhead of a small model to a few hundred bytes.
"""

import hashlib
import json
import zipfile

import numpy as np

FORMAT = "skquant-quantized"
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_BLOB = "arrays.bin"
_ALLOWED_KINDS = "biufU"  # no objects, no raw void records


class ArtifactError(ValueError):
    """A file that is not a valid skquant artifact (corrupt, tampered,
    truncated, of another format or of an unknown version)."""


def _checksum(manifest, blob):
    digest = hashlib.sha256()
    body = {key: value for key, value in manifest.items() if key != "checksum"}
    digest.update(json.dumps(body, sort_keys=True).encode())
    digest.update(blob)
    return "sha256:" + digest.hexdigest()


def write_artifact(path, manifest, arrays):
    """Write ``manifest`` (JSON-able dict) and ``arrays`` (name -> ndarray)."""
    index, chunks, offset = {}, [], 0
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        if array.dtype.kind not in _ALLOWED_KINDS:
            raise TypeError(f"array {name!r} has dtype {array.dtype}; artifacts hold "
                            "numbers and strings only.")
        raw = array.tobytes()
        index[name] = [array.dtype.str, list(array.shape), offset]
        chunks.append(raw)
        offset += len(raw)
    blob = b"".join(chunks)
    manifest = dict(manifest, format=FORMAT, format_version=FORMAT_VERSION, arrays=index)
    manifest["checksum"] = _checksum(manifest, blob)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_MANIFEST, json.dumps(manifest, sort_keys=True, separators=(",", ":")))
        archive.writestr(_BLOB, blob)


def read_artifact(path):
    """Read and verify an artifact; ``(manifest, arrays)``."""
    name = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArtifactError(
            f"{name} is not a skquant artifact (not a readable zip file: {exc}). "
            "Write one with skquant.quantize(pipeline).save(path) or "
            "`skquant quantize`."
        ) from None
    with archive:
        try:
            manifest = json.loads(archive.read(_MANIFEST))
        except KeyError:
            raise ArtifactError(f"{name} has no {_MANIFEST}: it is not a skquant "
                                "artifact.") from None
        except (ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ArtifactError(f"{name} is corrupt or truncated (manifest: {exc}).") from None
        found = manifest.get("format") if isinstance(manifest, dict) else None
        if found != FORMAT:
            raise ArtifactError(f"{name} is not a skquant artifact (format {found!r}).")
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{name} has artifact format version {version!r}; this skquant reads "
                f"version {FORMAT_VERSION}. Re-export the model with this skquant "
                "version, or upgrade skquant."
            )
        try:
            blob = archive.read(_BLOB)
        except KeyError:
            raise ArtifactError(f"{name} has no {_BLOB}: it is truncated.") from None
        except (ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ArtifactError(f"{name} is corrupt or truncated ({exc}).") from None
    if manifest.get("checksum") != _checksum(manifest, blob):
        raise ArtifactError(
            f"{name} fails its checksum: its contents were changed after it was "
            "written (or it is corrupt). Do not use it; export the model again."
        )
    arrays = {}
    try:
        for key, (dtype, shape, offset) in manifest["arrays"].items():
            dtype = np.dtype(dtype)
            if dtype.kind not in _ALLOWED_KINDS:
                raise ValueError(f"array {key!r} has the forbidden dtype {dtype}")
            count = int(np.prod(shape, dtype=np.int64))
            arrays[key] = np.frombuffer(blob, dtype=dtype, count=count,
                                        offset=int(offset)).reshape(shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{name} has an invalid array index ({exc}).") from None
    return manifest, arrays
