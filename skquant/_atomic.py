"""Atomic, non-destructive file writes (standard library only).

Every file skquant writes goes through :func:`atomic_write`: the bytes go to
a temporary file in the destination's own directory, are flushed to disk,
and only then replace the destination with ``os.replace``, which is atomic
on POSIX and Windows. A crash, a ``kill -9`` or a full disk part-way through
leaves the previous file (or no file) in place, never a truncated one. What
such a crash can leave behind is the hidden temporary file itself
(``.NAME.XXXXXXXX.tmp`` beside the destination), which nothing reads and
which is safe to delete.

:func:`check_output_path` is the cheap check a command runs *before* its
expensive work: the output is not one of the inputs, its directory exists
and is writable, and an existing file is replaced only when the caller was
told to (``force=True``).

The serving runtime imports this module, so it imports nothing beyond the
standard library.
"""

import contextlib
import os
import stat
import tempfile


class OutputError(ValueError):
    """An output path that skquant refuses to write, with the reason and the fix."""


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_path(path, *, inputs=(), force=False, what="output"):
    """Refuse an output path before any work is done.

    Parameters
    ----------
    path : str or path-like
        The file to be written.
    inputs : iterable of str or path-like, default=()
        Files the same command reads (``None`` entries are ignored); writing
        over one of them is refused whatever ``force`` says.
    force : bool, default=False
        Whether an existing file at ``path`` may be replaced.
    what : str, default="output"
        What the file is, for the messages ("--output", "the artifact").

    Returns
    -------
    path : str
        ``path`` as a string.

    Raises
    ------
    OutputError
        If ``path`` is empty, an input, a directory (or ends with a
        separator), not a regular file (a device such as ``/dev/null``, a
        FIFO), in a directory that does not exist or cannot be written, or an
        existing file without ``force``.

    Examples
    --------
    >>> import os, tempfile
    >>> from skquant._atomic import check_output_path
    >>> folder = tempfile.mkdtemp()
    >>> model = os.path.join(folder, "model.joblib")
    >>> _ = open(model, "wb").write(b"weights")
    >>> check_output_path(os.path.join(folder, "model.skq"), inputs=[model]) == (
    ...     os.path.join(folder, "model.skq"))
    True
    >>> check_output_path(model, inputs=[model], force=True)
    Traceback (most recent call last):
    ...
    skquant._atomic.OutputError: output ... is also an input of this command; ...
    >>> check_output_path(model)
    Traceback (most recent call last):
    ...
    skquant._atomic.OutputError: output ... already exists; pass --force ...
    """
    path = os.fspath(path)
    if not path:
        raise OutputError(f"{what} is an empty path; give the path of a file.")
    for source in inputs:
        if source is not None and _same_file(path, os.fspath(source)):
            raise OutputError(
                f"{what} {path} is also an input of this command; writing it would "
                "destroy the input. Choose another output path."
            )
    if os.path.isdir(path):
        raise OutputError(f"{what} {path} is a directory; give a file path.")
    if path.endswith((os.sep, os.altsep or os.sep)):
        raise OutputError(f"{what} {path} ends with a path separator, as a directory "
                          "does; give a file path.")
    _refuse_special(path, what)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(
            f"{what} {path}: the directory {directory} does not exist; create it first."
        )
    if not os.access(directory, os.W_OK):
        raise OutputError(f"{what} {path}: the directory {directory} is not writable.")
    if os.path.lexists(path) and not force:
        raise OutputError(
            f"{what} {path} already exists; pass --force (force=True) to replace it, "
            "or choose another path."
        )
    return path


def _refuse_special(path, what="the output"):
    """An existing path that is not a regular file (a device such as
    /dev/null, a FIFO, a socket, or a link to one) is never replaced: an
    atomic write would put a plain file in its place."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # absent, or a dangling link (replaced as a link is)
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OutputError(
            f"{what} {path} is not a regular file (a device, FIFO or socket, such as "
            "/dev/null or /dev/stdout): skquant writes a file by replacing it whole, "
            "which would put a plain file in its place. Give the path of a regular "
            "file (or, on the command line, leave out -o to print to the terminal).")


def _exists_error(path):
    return OutputError(
        f"{path} already exists; pass --force (force=True) to replace it, or choose "
        "another path."
    )


def _umask():
    """The process's umask, read without changing it where the OS allows
    (changing it, even for a moment, races with other threads)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _new_file_mode(path):
    """The permissions the written file gets: those of the file it replaces,
    else those of a file the user creates (mkstemp's are 0600)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(path).st_mode)
    return 0o666 & ~_umask()


def _sync_directory(directory):
    """Make the rename itself durable (POSIX; Windows cannot open a folder)."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _publish(temporary, path, force):
    """Move the finished temporary file to ``path``."""
    if force:
        os.replace(temporary, path)
        return
    # without force the destination must not exist, also if another process
    # created it while we were writing: a hard link fails rather than replace
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # a file system without hard links: check, then replace
        if os.path.lexists(path):
            raise _exists_error(path) from None
        os.replace(temporary, path)
    else:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_write(path, mode="wb", *, force=True):
    """Open a temporary file beside ``path``; on success it replaces ``path``.

    If the ``with`` block raises, or the process dies inside it, ``path`` is
    left as it was.

    Parameters
    ----------
    path : str or path-like
        The destination.
    mode : {"wb", "w"}, default="wb"
        Binary or text (UTF-8, newlines written as given).
    force : bool, default=True
        Whether an existing ``path`` may be replaced; False raises
        :class:`OutputError` before anything is written (and, should the file
        appear while writing, instead of replacing it).

    Yields
    ------
    handle : file object
        The temporary file, to write to.

    Raises
    ------
    OutputError
        If ``path`` exists and ``force`` is False, or exists and is not a
        regular file (a device such as ``/dev/null``, a FIFO), which a
        replacement would turn into a plain file.

    Examples
    --------
    >>> import os, tempfile
    >>> from skquant._atomic import atomic_write
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_write(path, "w") as handle:
    ...     _ = handle.write("done\\n")
    >>> open(path).read()
    'done\\n'
    >>> with atomic_write(path, "w") as handle:  # a failed write changes nothing
    ...     _ = handle.write("half")
    ...     raise RuntimeError("interrupted")
    Traceback (most recent call last):
    ...
    RuntimeError: interrupted
    >>> open(path).read()
    'done\\n'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}.")
    path = os.fspath(path)
    if not force and os.path.lexists(path):
        raise _exists_error(path)
    _refuse_special(path)
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        kwargs = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(descriptor, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _new_file_mode(path))
        _publish(temporary, path, force)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(directory)


def write_bytes(path, data, *, force=True):
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    path : str or path-like
        The destination.
    data : bytes
        What to write.
    force : bool, default=True
        Whether an existing ``path`` may be replaced.

    Returns
    -------
    path : str

    Examples
    --------
    >>> import os, tempfile
    >>> from skquant._atomic import write_bytes
    >>> path = write_bytes(os.path.join(tempfile.mkdtemp(), "blob.bin"), b"\\x00\\x01")
    >>> open(path, "rb").read()
    b'\\x00\\x01'
    >>> write_bytes(path, b"other", force=False)
    Traceback (most recent call last):
    ...
    skquant._atomic.OutputError: ... already exists; pass --force (force=True) ...
    """
    with atomic_write(path, "wb", force=force) as handle:
        handle.write(data)
    return os.fspath(path)
