"""Atomic, non-destructive writes (skquant._atomic).

The kill tests start a writer in a child process, wait (on a pipe, never on
a clock) until it has written part of the new file, kill it with SIGKILL
and check that the file it was replacing is intact.
"""

import os
import select
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from skquant._atomic import OutputError, atomic_write, check_output_path, write_bytes

ORIGINAL = b"the previous, valid file\n" * 40

needs_sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")


def _visible(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _temporaries(folder, name):
    return sorted(folder.glob(f".{name}.*.tmp"))


def _read_line(stream, deadline_s=120):
    """One line from a child's stdout; fails (not hangs) if none comes."""
    ready, _, _ = select.select([stream], [], [], deadline_s)
    assert ready, "the writer never reported its progress"
    return stream.readline().decode().strip()


def _kill_mid_write(script, target):
    """Run ``script`` (which prints ``written`` mid-write, then blocks on
    stdin), SIGKILL it at that point; return what the target held then."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(target)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = _read_line(child.stdout)
        assert line == "written", child.stderr.read().decode() if not line else line
        during = target.read_bytes()
        temporaries = _temporaries(target.parent, target.name)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=120)
        child.stdin.close()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return during, temporaries


@needs_sigkill
def test_kill_9_mid_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "model.skq"
    target.write_bytes(ORIGINAL)
    script = """
        import sys
        from skquant._atomic import atomic_write
        with atomic_write(sys.argv[1], "wb") as handle:
            handle.write(b"x" * 303)  # the issue's 303-byte torso
            handle.flush()
            print("written", flush=True)
            sys.stdin.read()  # blocks until killed
            handle.write(b"never reached")
    """
    during, temporaries = _kill_mid_write(script, target)
    assert during == ORIGINAL
    # the partial bytes went to a hidden temporary file beside the target
    assert len(temporaries) == 1 and temporaries[0].read_bytes() == b"x" * 303
    assert target.read_bytes() == ORIGINAL
    assert _visible(tmp_path) == ["model.skq"]


@needs_sigkill
def test_kill_9_inside_joblib_dump_leaves_the_previous_model(tmp_path):
    # the demo's model save: joblib.dump into atomic_write's handle, killed
    # once part of the pickle is written
    target = tmp_path / "best_pipeline.joblib"
    target.write_bytes(ORIGINAL)
    script = """
        import sys
        import joblib
        import numpy as np
        from skquant._atomic import atomic_write

        class Blocks:
            def __reduce__(self):
                handle.flush()
                print("written", flush=True)
                sys.stdin.read()  # blocks until killed
                return (int, ())

        with atomic_write(sys.argv[1], "wb") as handle:
            joblib.dump([np.arange(200_000, dtype=np.float64), Blocks()], handle)
    """
    during, temporaries = _kill_mid_write(script, target)
    assert during == ORIGINAL
    assert len(temporaries) == 1 and temporaries[0].stat().st_size > 0
    assert target.read_bytes() == ORIGINAL
    assert _visible(tmp_path) == ["best_pipeline.joblib"]


def test_an_error_inside_the_block_leaves_the_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(ORIGINAL)
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("disk full")
    assert target.read_bytes() == ORIGINAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_new_file_and_a_replaced_one(tmp_path):
    target = tmp_path / "table.csv"
    with atomic_write(target, "w") as handle:
        handle.write("a,b\r\n1,2\n")  # text as given: no newline translation
    assert target.read_bytes() == b"a,b\r\n1,2\n"
    assert write_bytes(target, b"new") == str(target)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_permissions_are_a_new_files_or_the_replaced_files(tmp_path):
    umask = os.umask(0o022)
    try:
        fresh = write_bytes(tmp_path / "fresh", b"1")
    finally:
        os.umask(umask)
    # not mkstemp's 0600
    assert oct(os.stat(fresh).st_mode & 0o777) == oct(0o644)
    private = tmp_path / "private"
    private.write_bytes(b"secret")
    os.chmod(private, 0o600)
    write_bytes(private, b"still secret")
    assert oct(os.stat(private).st_mode & 0o777) == oct(0o600)


def test_force_false_refuses_an_existing_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(ORIGINAL)
    with pytest.raises(OutputError, match="already exists; pass --force"):
        write_bytes(target, b"new", force=False)
    assert target.read_bytes() == ORIGINAL
    assert write_bytes(tmp_path / "new.bin", b"new", force=False)
    assert (tmp_path / "new.bin").read_bytes() == b"new"


def test_force_false_does_not_replace_a_file_that_appears_while_writing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(OutputError, match="already exists"):
        with atomic_write(target, force=False) as handle:
            handle.write(b"mine")
            target.write_bytes(b"someone else's")  # e.g. another process
    assert target.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_bad_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
        with atomic_write(tmp_path / "x", "a"):
            pass
    assert not (tmp_path / "x").exists()


def test_check_output_path_refuses_an_input_whatever_force_says(tmp_path):
    model = tmp_path / "model.joblib"
    model.write_bytes(ORIGINAL)
    link = tmp_path / "link.joblib"
    os.symlink(model, link)
    for spelling in (model, tmp_path / "." / "model.joblib", link):
        with pytest.raises(OutputError, match="is also an input of this command"):
            check_output_path(spelling, inputs=[None, model], force=True, what="--output")
    if hasattr(os, "link"):
        hard = tmp_path / "hard.joblib"
        os.link(model, hard)
        with pytest.raises(OutputError, match="is also an input"):
            check_output_path(hard, inputs=[model], force=True)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d, "is a directory; give a file path"),
        (lambda d: d / "missing" / "out.csv", "does not exist; create it first"),
        (lambda d: (d / "old.csv").write_text("x") and d / "old.csv",
         "--output .* already exists; pass --force"),
    ],
    ids=["directory", "missing-directory", "exists"],
)
def test_check_output_path_refusals(tmp_path, make, message):
    with pytest.raises(OutputError, match=message):
        check_output_path(make(tmp_path), what="--output")


def test_check_output_path_accepts_a_new_file_or_a_forced_one(tmp_path):
    assert check_output_path(tmp_path / "new.csv") == str(tmp_path / "new.csv")
    (tmp_path / "old.csv").write_text("x")
    assert check_output_path(tmp_path / "old.csv", force=True) == str(tmp_path / "old.csv")


def _specials(folder):
    """Existing paths that are not regular files: a FIFO, a link to it, and
    (where this process may make one) a character device like /dev/null."""
    made = []
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo")
        os.symlink(folder / "fifo", folder / "link-to-fifo")
        made += [folder / "fifo", folder / "link-to-fifo"]
    try:
        os.mknod(folder / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (AttributeError, OSError):  # not root, or not POSIX
        pass
    else:
        made.append(folder / "null")
    return made


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_device_or_fifo_is_never_replaced_even_with_force(tmp_path):
    # a --force write onto /dev/null (as root) or a FIFO would put a plain
    # file in its place: /dev/null would then fill up for every process
    for special in _specials(tmp_path):
        kind = stat.S_IFMT(os.lstat(special).st_mode)
        for force in (False, True):
            with pytest.raises(OutputError, match="is not a regular file"):
                check_output_path(special, force=force, what="--output")
        with pytest.raises(OutputError, match="is not a regular file"):
            with atomic_write(special, "w", force=True) as handle:
                handle.write("predictions\n")
        with pytest.raises(OutputError, match="is not a regular file"):
            write_bytes(special, b"x")
        assert stat.S_IFMT(os.lstat(special).st_mode) == kind, special
        assert not _temporaries(tmp_path, special.name)


def test_empty_paths_and_paths_that_name_a_directory_are_refused_before_work(tmp_path):
    with pytest.raises(OutputError, match="--output is an empty path"):
        check_output_path("", what="--output")
    for path in (tmp_path / "new-folder", tmp_path / "file.csv"):
        if path.name == "file.csv":
            path.write_text("x")
        with pytest.raises(OutputError, match="ends with a path separator"):
            check_output_path(str(path) + os.sep, force=True, what="--output")
    assert _visible(tmp_path) == ["file.csv"]
