"""Open descriptors whose name changes under them, new files' attributes, unmount with calls in flight.

Regression tests for what the model test and the fault tests found (real mount, real syscalls):
- a descriptor follows its file through a rename (over an existing file) and an unlink: writes,
  reads, fstat and ftruncate keep working on it, like on a local disk, and its last close neither
  fails nor brings the file back;
- a new file still being written (not uploaded yet) shows the xattrs of a file with no tags;
- ``orionfs unmount`` while a close() waits on a stalled server ends within 5 s, the close fails
  (EIO) and its data is in the recovery folder.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.support.mount import api_bytes, api_entry, api_exists, api_names

pytestmark = pytest.mark.fuse


@pytest.fixture
def work(mount):
    path = mount.unique("open")
    path.mkdir()
    return path, mount.orion(path.name)


def test_descriptor_follows_its_file_through_rename_over_and_unlink(mount, session, work):
    folder, orion = work
    (folder / "a").write_bytes(b"")
    (folder / "b").write_bytes(b"\x00")
    fd = os.open(folder / "b", os.O_WRONLY | os.O_APPEND)
    try:
        os.rename(folder / "b", folder / "a")  # over an existing file
        assert os.write(fd, b"1") == 1
        assert os.fstat(fd).st_size == 2
        os.fsync(fd)  # uploaded under its new name
        assert api_bytes(session, f"{orion}/a") == b"\x001"
        os.unlink(folder / "a")
        # POSIX: the descriptor outlives the name
        assert os.write(fd, b"2") == 1
        assert os.fstat(fd).st_size == 3
        os.fsync(fd)
    finally:
        os.close(fd)  # no error, and the file does not come back
    assert os.listdir(folder) == []
    assert api_names(session, orion) == set()


def test_reads_and_writes_through_a_descriptor_after_unlink_use_the_last_content(
    mount, session, work
):
    folder, orion = work
    path = folder / "kept.bin"
    path.write_bytes(b"hello world")
    fd = os.open(path, os.O_RDWR)
    try:
        os.unlink(path)
        assert not api_exists(session, f"{orion}/kept.bin")
        assert os.fstat(fd).st_size == 11
        assert os.pread(fd, 100, 0) == b"hello world"
        assert os.pwrite(fd, b"J", 0) == 1
        assert os.pread(fd, 100, 0) == b"Jello world"
    finally:
        os.close(fd)
    assert not path.exists()
    assert api_names(session, orion) == set()


def test_ftruncate_after_unlink_works_on_the_descriptor(mount, session, work):
    folder, orion = work
    path = folder / "cut.bin"
    path.write_bytes(b"hello world")
    fd = os.open(path, os.O_RDWR)
    try:
        os.unlink(path)
        os.ftruncate(fd, 4)
        assert os.fstat(fd).st_size == 4
        assert os.pread(fd, 100, 0) == b"hell"
        os.ftruncate(fd, 6)
        assert os.pread(fd, 100, 0) == b"hell\x00\x00"
    finally:
        os.close(fd)
    assert api_names(session, orion) == set()


def test_ftruncate_of_a_renamed_open_file_cuts_the_file_under_its_new_name(mount, session, work):
    folder, orion = work
    (folder / "old").write_bytes(b"0123456789")
    fd = os.open(folder / "old", os.O_RDWR)
    try:
        os.rename(folder / "old", folder / "new")
        os.ftruncate(fd, 3)
    finally:
        os.close(fd)
    assert (folder / "new").read_bytes() == b"012"
    assert api_bytes(session, f"{orion}/new") == b"012"


def test_a_new_file_not_uploaded_yet_shows_the_xattrs_of_a_file_without_tags(mount, work):
    folder, _ = work
    path = folder / "new.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, b"partial")
        assert os.getxattr(path, "user.orion.tags") == b""
        assert os.getxattr(path, "user.orion.systemtags") == b""
        assert os.getxattr(path, "user.orion.type") == b"file"
        names = os.listxattr(path)
        assert {"user.orion.type", "user.orion.tags"} <= set(names)
        for absent in ("user.orion.id", "user.orion.link", "user.orion.tag.x"):
            with pytest.raises(OSError) as info:
                os.getxattr(path, absent)  # no resource yet (documented)
            assert info.value.errno == errno.ENODATA, absent
        os.removexattr(path, "user.orion.tags")  # no tags to remove: fine
    finally:
        os.close(fd)
    assert os.getxattr(path, "user.orion.tags") == b""
    assert os.getxattr(path, "user.orion.id") != b""


def test_unmount_while_a_close_waits_on_a_stalled_server_is_quick_and_keeps_the_data(
    mount_factory, server, session
):
    mounted = mount_factory(server)  # default timeouts: 30 s per request, retries for 60 s
    folder = mounted.path / f"stall-{os.getpid()}"
    folder.mkdir()
    data = b"staged, never uploaded\n" * 100
    outcome: dict[str, object] = {}

    def write_and_close() -> None:
        fd = os.open(folder / "stuck.txt", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, data)
        try:
            os.close(fd)  # the upload waits on the stalled server
            outcome["closed"] = True
        except OSError as error:
            outcome["errno"] = error.errno

    server.set_faults(stall=60.0)
    try:
        writer = threading.Thread(target=write_and_close, daemon=True)
        writer.start()
        time.sleep(1.0)
        assert writer.is_alive(), outcome
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "orionfs.cli", "unmount", "--lazy", str(mounted.path)],
            env=mounted.env,
            capture_output=True,
            timeout=60,
        )
        seconds = time.monotonic() - started
        writer.join(10)
        mounted.proc.wait(10)
    finally:
        server.clear_faults()
    assert result.returncode == 0, result.stderr
    assert seconds < 5.0, f"orionfs unmount took {seconds:.1f} s"
    assert not os.path.ismount(mounted.path)
    assert outcome.get("errno") == errno.EIO, outcome  # never a silent loss
    kept = [p.read_bytes() for p in mounted.recovery_dir.iterdir()]
    assert data in kept, mounted.log()
    assert "stuck.txt" in mounted.log()


def test_api_sees_what_the_descriptor_wrote_after_a_rename_before_the_first_close(
    mount, session, work
):
    folder, orion = work
    fd = os.open(folder / "draft", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"first ")
        os.rename(folder / "draft", folder / "final")
        os.write(fd, b"second")
    finally:
        os.close(fd)
    assert api_bytes(session, f"{orion}/final") == b"first second"
    assert api_entry(session, f"{orion}/final")["size"] == 12
    assert not api_exists(session, f"{orion}/draft")


def test_a_reader_of_a_file_renamed_over_keeps_reading_the_old_content(mount, session, work):
    folder, orion = work
    (folder / "target").write_bytes(b"old content")
    (folder / "src").write_bytes(b"new content!")
    fd = os.open(folder / "target", os.O_RDONLY)
    try:
        os.rename(folder / "src", folder / "target")
        assert os.fstat(fd).st_size == 11
        assert os.pread(fd, 100, 0) == b"old content"
    finally:
        os.close(fd)
    assert (folder / "target").read_bytes() == b"new content!"
    assert api_bytes(session, f"{orion}/target") == b"new content!"
    assert api_names(session, orion) == {"target"}


def test_an_unlinked_open_file_in_a_removed_folder_still_reads_writes_and_closes(
    mount, session, work
):
    folder, orion = work
    (folder / "sub").mkdir()
    (folder / "sub" / "f").write_bytes(b"abc")
    fd = os.open(folder / "sub" / "f", os.O_RDWR | os.O_APPEND)
    try:
        os.unlink(folder / "sub" / "f")
        os.rmdir(folder / "sub")  # as on a local disk: the open file does not keep it
        assert not api_exists(session, f"{orion}/sub")
        assert os.write(fd, b"d") == 1
        assert os.pread(fd, 100, 0) == b"abcd"
        os.ftruncate(fd, 2)
        assert os.pread(fd, 100, 0) == b"ab"
        os.fsync(fd)
    finally:
        os.close(fd)
    assert os.listdir(folder) == []
    assert api_names(session, orion) == set()


def test_a_new_file_renamed_over_an_open_file_replaces_it_and_the_reader_keeps_the_old_one(
    mount, session, work
):
    folder, orion = work
    (folder / "doc").write_bytes(b"version 1")
    reader = os.open(folder / "doc", os.O_RDONLY)
    try:
        fd = os.open(folder / ".doc.swp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"version 2")
        os.rename(folder / ".doc.swp", folder / "doc")  # before the new file's first close
        os.close(fd)
        assert os.pread(reader, 100, 0) == b"version 1"
    finally:
        os.close(reader)
    assert (folder / "doc").read_bytes() == b"version 2"
    assert api_bytes(session, f"{orion}/doc") == b"version 2"
    assert api_names(session, orion) == {"doc"}
