"""Open files whose path changes under them (found by the model test, kept as focused tests).

POSIX programs rely on an open descriptor outliving its name (the temp-file idiom: open, unlink,
keep using) and on a freshly created file being a file like any other before its first close:
- ``fstat``/``ftruncate``/``write``/``read`` through a descriptor keep working after ``unlink``;
- the attributes (``user.orion.type``, ``user.orion.tags``) of a new file still being written are
  readable, as its tags are already writable.
Each check is made on the mount and on a local directory; the mount must behave like the local one.
"""

from __future__ import annotations

import errno
import os

import pytest

from tests.support.reliability import mounted

pytestmark = pytest.mark.fuse


@pytest.fixture(scope="module")
def home(server, tmp_path_factory):
    base = tmp_path_factory.mktemp("openfiles")
    with mounted(server, base / "mnt") as mount:
        folder = mount.home / f"open-files-{os.getpid()}"
        folder.mkdir()
        yield folder


def outcome(fn):
    try:
        return ("ok", fn())
    except OSError as error:
        return ("error", error.errno)


def unlinked_steps(flags):
    def steps(folder):
        path = folder / f"u-{flags}.bin"
        path.write_bytes(b"hello world")
        fd = os.open(path, flags)
        try:
            os.unlink(path)
            return [
                ("fstat", outcome(lambda: os.fstat(fd).st_size)),
                ("write", outcome(lambda: os.write(fd, b"XYZ"))),
                ("fstat after write", outcome(lambda: os.fstat(fd).st_size)),
                ("ftruncate", outcome(lambda: os.ftruncate(fd, 4))),
                ("pread", outcome(lambda: os.pread(fd, 100, 0))),
                ("fsync", outcome(lambda: os.fsync(fd))),
            ]
        finally:
            os.close(fd)

    return steps


@pytest.mark.parametrize("mode", ["O_RDWR", "O_RDWR|O_APPEND"])
def test_an_open_file_stays_usable_after_unlink_like_on_a_local_disk(home, tmp_path, mode):
    flags = os.O_RDWR | (os.O_APPEND if "APPEND" in mode else 0)
    local = unlinked_steps(flags)(tmp_path)
    through_mount = unlinked_steps(flags)(home)
    assert all(result[0] == "ok" for _, result in local)
    assert through_mount == local, f"\nmount: {through_mount}\nlocal: {local}"
    assert not (home / f"u-{flags}.bin").exists()


def test_a_new_file_still_being_written_has_readable_attributes(home):
    path = home / "being-written.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, b"partial")
        assert os.stat(path).st_size == 7
        assert os.getxattr(path, "user.orion.type") == b"file"
        assert os.getxattr(path, "user.orion.tags") == b""
        assert "user.orion.tags" in os.listxattr(path)
    finally:
        os.close(fd)
    assert os.getxattr(path, "user.orion.type") == b"file"


def removed_folder_steps(folder):
    """Open a file, unlink it and remove its folder; the descriptor still works (found by the
    model test: moved into a folder, unlinked, folder removed, then fstat)."""
    sub = folder / "sub-removed"
    sub.mkdir()
    (sub / "f.bin").write_bytes(b"abc")
    fd = os.open(sub / "f.bin", os.O_RDWR | os.O_APPEND)
    try:
        os.unlink(sub / "f.bin")
        os.rmdir(sub)
        return [
            ("fstat", outcome(lambda: os.fstat(fd).st_size)),
            ("write", outcome(lambda: os.write(fd, b"de"))),
            ("fstat after write", outcome(lambda: os.fstat(fd).st_size)),
            ("ftruncate", outcome(lambda: os.ftruncate(fd, 1))),
            ("pread", outcome(lambda: os.pread(fd, 10, 0))),
        ]
    finally:
        os.close(fd)


def test_an_open_file_stays_usable_after_its_folder_is_removed(home, tmp_path):
    """Reads, writes and ftruncate work as on a local disk; fstat is the one documented
    divergence (ESTALE: libfuse's high-level API has no path left for the file)."""
    local = removed_folder_steps(tmp_path)
    through_mount = removed_folder_steps(home)
    assert all(result[0] == "ok" for _, result in local)
    data_ops = {"write", "ftruncate", "pread"}
    assert [r for r in through_mount if r[0] in data_ops] == [
        r for r in local if r[0] in data_ops
    ], f"\nmount: {through_mount}\nlocal: {local}"
    stats = [result for name, result in through_mount if name.startswith("fstat")]
    assert stats == [("error", errno.ESTALE)] * 2, stats
