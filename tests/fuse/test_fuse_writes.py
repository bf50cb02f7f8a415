"""Writes through the mount: staged, uploaded on close, every open mode; tools that save via rename.

Each result is checked through the session API as well as through the mount.
"""

from __future__ import annotations

import errno
import os
import tarfile
import time

import pytest

from tests.support.mount import api_bytes, api_entry, api_exists, api_names, my_data, sh

pytestmark = pytest.mark.fuse

UPLOAD = "POST /api/v3/storage/files/"


@pytest.fixture
def work(mount, session):
    path = mount.unique("writes")
    path.mkdir()  # through the mount: the cached root listing learns of it at once
    return path, mount.orion(path.name)


def _tree(tmp_path):
    src = tmp_path / "tree"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "a.txt").write_bytes(b"a" * 10)
    (src / "zero").write_bytes(b"")
    (src / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (src / "sub" / "deeper" / "c.txt").write_bytes(b"deep\n")
    return src


def test_rsync_in_and_back_out_is_diff_clean(mount, session, work, tmp_path):
    folder, orion = work
    src = _tree(tmp_path)
    sh("rsync", "-a", f"{src}/", f"{folder}/tree/")
    assert api_bytes(session, f"{orion}/tree/sub/deeper/c.txt") == b"deep\n"
    assert api_bytes(session, f"{orion}/tree/sub/b.bin") == (src / "sub" / "b.bin").read_bytes()
    back = tmp_path / "back"
    sh("rsync", "-a", f"{folder}/tree/", f"{back}/")
    sh("diff", "-r", src, back)
    sh("diff", "-r", src, folder / "tree")
    # rsync writes temp files and renames them: none of them may be left behind
    assert all(not n.startswith(".") for n in api_names(session, f"{orion}/tree"))


def test_tar_x_into_the_mount(mount, session, work, tmp_path):
    folder, orion = work
    src = _tree(tmp_path)
    archive = tmp_path / "t.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(src, arcname="tree")
    sh("tar", "xf", archive, "-C", folder)
    sh("diff", "-r", src, folder / "tree")
    assert api_bytes(session, f"{orion}/tree/a.txt") == b"a" * 10
    assert api_entry(session, f"{orion}/tree/zero")["size"] == 0


def test_editor_style_save_replaces_the_target(mount, session, server, work):
    folder, orion = work
    target = folder / "doc.txt"
    target.write_bytes(b"version 1\n")
    old_id = api_entry(session, f"{orion}/doc.txt")["id"]
    # vim/gedit style: write a temp file, fsync, rename over the target
    tmp = folder / ".doc.txt.swp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"version 2\n")
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, target)
    assert target.read_bytes() == b"version 2\n"
    assert sorted(os.listdir(folder)) == ["doc.txt"]
    assert api_names(session, orion) == {"doc.txt"}
    assert api_bytes(session, f"{orion}/doc.txt") == b"version 2\n"
    assert api_entry(session, f"{orion}/doc.txt")["id"] != old_id


def test_temp_file_renamed_before_close_is_uploaded_once_under_its_final_name(
    mount, session, server, work
):
    folder, orion = work
    (folder / "target.txt").write_bytes(b"old")
    target_id = api_entry(session, f"{orion}/target.txt")["id"]
    server.reset_counters()
    fd = os.open(folder / "tmp-123", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"brand new")
    os.rename(folder / "tmp-123", folder / "target.txt")  # never uploaded yet: a local rename
    os.close(fd)
    assert server.count(UPLOAD) == 0  # no upload under the temp name
    assert server.count("POST /api/v1/storage/paths/assign/") == 0
    assert api_bytes(session, f"{orion}/target.txt") == b"brand new"
    assert api_entry(session, f"{orion}/target.txt")["id"] == target_id  # replaced in place
    assert api_names(session, orion) == {"target.txt"}


def test_append_with_shell_redirection(mount, session, work):
    folder, orion = work
    sh("sh", "-c", f"printf 'one\\n' > '{folder}/log.txt'")
    sh("sh", "-c", f"printf 'two\\n' >> '{folder}/log.txt'")
    sh("sh", "-c", f"printf 'three\\n' >> '{folder}/log.txt'")
    assert (folder / "log.txt").read_bytes() == b"one\ntwo\nthree\n"
    assert api_bytes(session, f"{orion}/log.txt") == b"one\ntwo\nthree\n"


def test_truncate_command_shrinks_and_grows(mount, session, work):
    folder, orion = work
    (folder / "t.bin").write_bytes(b"0123456789")
    sh("truncate", "-s", "4", folder / "t.bin")
    assert (folder / "t.bin").read_bytes() == b"0123"
    assert api_bytes(session, f"{orion}/t.bin") == b"0123"
    os.truncate(folder / "t.bin", 6)
    assert api_bytes(session, f"{orion}/t.bin") == b"0123\0\0"
    os.truncate(folder / "t.bin", 0)
    assert api_entry(session, f"{orion}/t.bin")["size"] == 0


def test_o_rdwr_edits_in_place_keep_the_rest_and_the_id(mount, session, work):
    folder, orion = work
    original = bytes(range(256)) * 4096  # 1 MiB
    (folder / "rw.bin").write_bytes(original)
    file_id = api_entry(session, f"{orion}/rw.bin")["id"]
    with open(folder / "rw.bin", "r+b") as fh:
        assert fh.read(4) == original[:4]
        fh.seek(1000)
        fh.write(b"EDIT")
        fh.seek(0, os.SEEK_END)
        fh.write(b"TAIL")
    expected = original[:1000] + b"EDIT" + original[1004:] + b"TAIL"
    assert (folder / "rw.bin").read_bytes() == expected
    assert api_bytes(session, f"{orion}/rw.bin") == expected
    assert api_entry(session, f"{orion}/rw.bin")["id"] == file_id


def test_o_trunc_and_o_excl(mount, session, work):
    folder, orion = work
    (folder / "x.txt").write_bytes(b"long old content")
    fd = os.open(folder / "x.txt", os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"new")
    os.close(fd)
    assert api_bytes(session, f"{orion}/x.txt") == b"new"
    with pytest.raises(FileExistsError):
        os.open(folder / "x.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    fd = os.open(folder / "fresh.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    os.close(fd)
    assert api_entry(session, f"{orion}/fresh.txt")["size"] == 0


def test_close_without_writes_uploads_nothing(mount, session, server, work):
    folder, orion = work
    (folder / "ro.txt").write_bytes(b"keep")
    server.reset_counters()
    for flags in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR):
        os.close(os.open(folder / "ro.txt", flags))
    assert server.count(UPLOAD) == 0
    assert server.count("PUT /api/v3/storage/files/{file_id}/content/") == 0
    assert api_bytes(session, f"{orion}/ro.txt") == b"keep"


def test_upload_error_reaches_close_and_data_is_kept(mount, session, server, work):
    folder, orion = work
    server.set_faults(status=400, count=10, path_prefix="/api/v3/storage/files")
    try:
        fd = os.open(folder / "doomed.txt", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"precious data")
        with pytest.raises(OSError) as info:
            os.close(fd)
        assert info.value.errno == errno.EINVAL
    finally:
        server.clear_faults()
    assert not api_exists(session, f"{orion}/doomed.txt")
    deadline = time.monotonic() + 10  # release (which keeps the data) follows close() closely
    kept: list = []
    while not kept and time.monotonic() < deadline:
        kept = list(mount.recovery_dir.glob("*doomed.txt*")) if mount.recovery_dir.exists() else []
        time.sleep(0.05)
    assert kept and kept[0].read_bytes() == b"precious data"
    assert str(kept[0]) in mount.log()


def test_fsync_reports_upload_errors(mount, server, work):
    folder, _ = work
    fd = os.open(folder / "sync.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"data")
        server.set_faults(status=400, count=10, path_prefix="/api/v3/storage/files")
        with pytest.raises(OSError):
            os.fsync(fd)
        server.clear_faults()
        os.fsync(fd)  # the data is still staged: a later fsync succeeds
    finally:
        server.clear_faults()
        os.close(fd)
    assert (folder / "sync.txt").read_bytes() == b"data"


def test_unlink_of_an_open_new_file_never_uploads_it(mount, session, server, work):
    folder, orion = work
    server.reset_counters()
    fd = os.open(folder / "ephemeral", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"scratch")
    os.unlink(folder / "ephemeral")
    os.close(fd)
    assert server.count(UPLOAD) == 0
    assert not api_exists(session, f"{orion}/ephemeral")
    assert not (folder / "ephemeral").exists()


def test_tags_set_before_the_first_close_apply_to_the_new_file(mount, session, work):
    folder, orion = work
    with open(folder / "early.txt", "wb") as fh:
        fh.write(b"tagged while open")
        os.setxattr(folder / "early.txt", "user.orion.tag.early", b"")
        fh.write(b"!")
    entry = api_entry(session, f"{orion}/early.txt")
    assert entry["tags"] == ["early"]
    assert api_bytes(session, f"{orion}/early.txt") == b"tagged while open!"


def test_files_still_open_when_the_mount_process_stops_are_saved(mount_factory, server, session):
    import signal

    mounted = mount_factory(server, "--stop-timeout", "2s")
    folder = mounted.path / "stopped"
    folder.mkdir()
    fd = os.open(folder / "open.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"written, never closed")
    # The stop uploads what open files hold, detaches the mount, and waits for them to close
    # until the stop timeout: with nothing left unsaved, the process then exits 0.
    mounted.proc.send_signal(signal.SIGTERM)
    assert mounted.proc.wait(30) == 0
    with pytest.raises(OSError):
        os.close(fd)
    assert api_bytes(session, f"{my_data(server)}/stopped/open.txt") == b"written, never closed"
