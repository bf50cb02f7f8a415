"""POSIX details users hit: kept modification times, moving timestamps, stable inodes, chown as root.

Real mounts, real commands (touch, cp -p, tar, rsync, git), results checked through the API and the
server's request counters.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.mount import api_entry, start_mount

pytestmark = pytest.mark.fuse

T2020 = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
UPLOADS = ("POST /api/v3/storage/files/", "PUT /api/v3/storage/files/{file_id}/content/")
PATCH = "PATCH /api/v3/storage/files/{file_id}/"
DOWNLOAD = "GET /api/v3/storage/files/{file_id}/download/"
LS = "GET /api/v1/storage/ls/"


def _api_mtime(session, orion: str) -> float:
    value = api_entry(session, orion)["mtime"]
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _changes(server) -> int:
    """Requests that change something (uploads, PATCHes), since the last reset."""
    return sum(server.count(key) for key in (*UPLOADS, PATCH))


def _dated_tree(base: Path, files: int = 5) -> Path:
    tree = base / "dated"
    (tree / "sub").mkdir(parents=True)
    for i in range(files):
        path = tree / ("sub" if i % 2 else "") / f"f{i}.txt"
        path.write_bytes(f"content {i}\n".encode() * (i + 1))
        os.utime(path, (T2020 + i, T2020 + i))
    return tree


def test_touch_sets_the_modification_time_with_one_request(mount, session, server):
    path = mount.unique("touched")
    path.write_bytes(b"x")
    server.reset_counters()
    subprocess.run(["touch", "-d", "2020-01-01T00:00:00Z", str(path)], check=True)
    assert server.count(PATCH) == 1 and _changes(server) == 1
    assert path.stat().st_mtime == T2020
    assert _api_mtime(session, mount.orion(path.name)) == T2020


def test_touch_of_a_new_file_keeps_its_time_after_the_upload(mount, session):
    path = mount.unique("new")
    subprocess.run(["touch", "-d", "2020-01-01T00:00:00Z", str(path)], check=True)
    assert path.stat().st_mtime == T2020
    assert _api_mtime(session, mount.orion(path.name)) == T2020


def test_cp_p_and_tar_x_keep_mtimes_and_tar_d_finds_no_difference(mount, tmp_path):
    tree = _dated_tree(tmp_path)
    copied = mount.unique("cp")
    subprocess.run(["cp", "-rp", str(tree), str(copied)], check=True)
    for source in tree.rglob("*.txt"):
        assert (copied / source.relative_to(tree)).stat().st_mtime == source.stat().st_mtime
    archive = tmp_path / "tree.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tree, arcname="dated")
    target = mount.unique("tar")
    target.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(target)], check=True)
    compared = subprocess.run(
        ["tar", "-df", str(archive), "-C", str(target)], capture_output=True, text=True
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert (target / "dated" / "f0.txt").stat().st_mtime == T2020


def test_a_second_rsync_a_transfers_nothing_and_costs_only_listings(mount, server, tmp_path):
    tree = _dated_tree(tmp_path, files=20)
    target = mount.unique("rsync")
    subprocess.run(["rsync", "-a", f"{tree}/", f"{target}/"], check=True)
    server.reset_counters()
    second = subprocess.run(
        ["rsync", "-a", "--stats", f"{tree}/", f"{target}/"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "Number of regular files transferred: 0" in second.stdout
    assert _changes(server) == 0 and server.count(DOWNLOAD) == 0
    counters = server.counters()["by_endpoint"]
    assert set(counters) <= {LS, "GET /api/v1/storage/stat/"}, counters


def test_writes_and_truncate_move_mtime_and_ctime_at_once(mount):
    path = mount.unique("moving")
    path.write_bytes(b"0123456789")
    os.utime(path, (T2020, T2020))
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.write(b"A")
        handle.flush()
        during = os.fstat(handle.fileno())
        assert during.st_mtime > before.st_mtime and during.st_ctime >= before.st_ctime
    os.truncate(path, 4)
    after = path.stat()
    assert after.st_size == 4 and after.st_mtime > T2020 and after.st_ctime >= during.st_ctime


def test_namespace_changes_move_the_parent_folders_times(mount):
    folder = mount.unique("parent")
    folder.mkdir()
    steps = [
        lambda: (folder / "sub").mkdir(),
        lambda: (folder / "f.txt").write_bytes(b"x"),
        lambda: (folder / "f.txt").rename(folder / "g.txt"),
        lambda: (folder / "g.txt").unlink(),
        lambda: (folder / "sub").rmdir(),
    ]
    last = folder.stat()
    for step in steps:
        time.sleep(0.01)
        step()
        now = folder.stat()
        assert now.st_mtime_ns > last.st_mtime_ns and now.st_ctime_ns > last.st_ctime_ns
        last = now


def test_inodes_come_from_orion_and_survive_a_remount(server, session, tmp_path):
    first = start_mount(server, tmp_path / "mnt", tmp_path / "work")
    try:
        folder = first.unique("inodes")
        folder.mkdir()
        (folder / "f.txt").write_bytes(b"x")
        inodes = {p.name: p.stat().st_ino for p in (folder, folder / "f.txt")}
        names = os.listdir(folder)
    finally:
        first.unmount()
    second = start_mount(server, tmp_path / "mnt", tmp_path / "work")
    try:
        again = second.path / folder.name
        assert os.listdir(again) == names
        assert {p.name: p.stat().st_ino for p in (again, again / "f.txt")} == inodes
        assert len(set(inodes.values())) == 2 and 1 not in inodes.values()
    finally:
        second.unmount()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_status_after_a_remount_downloads_nothing_the_data_cache_holds(server, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    for i in range(50):
        (repo / f"file{i:02d}.txt").write_text(f"line {i}\n")
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "-m", "start"], check=True)
    first = start_mount(server, tmp_path / "mnt", tmp_path / "work")
    try:
        clone = first.unique("clone")
        subprocess.run(["cp", "-a", str(repo), str(clone)], check=True)
        status = subprocess.run(
            [*git, "-C", str(clone), "status", "--porcelain"], capture_output=True, text=True
        )
        assert status.returncode == 0 and status.stdout == "", status.stdout + status.stderr
    finally:
        first.unmount()
    second = start_mount(server, tmp_path / "mnt", tmp_path / "work")
    try:
        server.reset_counters()
        status = subprocess.run(
            [*git, "-C", str(second.path / clone.name), "status", "--porcelain"],
            capture_output=True,
            text=True,
        )
        assert status.returncode == 0 and status.stdout == "", status.stdout + status.stderr
        assert server.count(DOWNLOAD) == 0
    finally:
        second.unmount()


def test_chown_as_root_is_accepted_so_sudo_tar_and_rsync_succeed(mount, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: the rule is about chown by root")
    tree = tmp_path / "owned"
    tree.mkdir()
    (tree / "f.txt").write_bytes(b"owned by someone else")
    os.chown(tree / "f.txt", 12345, 23456)
    archive = tmp_path / "owned.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tree, arcname="owned")
    target = mount.unique("sudo")
    target.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(target)], check=True)
    subprocess.run(["rsync", "-a", f"{tree}/", f"{target}/rsynced/"], check=True)
    assert (target / "owned" / "f.txt").read_bytes() == b"owned by someone else"
    assert (target / "rsynced" / "f.txt").stat().st_uid == os.getuid()  # owners are not kept


def test_a_time_or_a_name_this_mount_sets_keeps_the_cached_content(mount, server):
    path = mount.unique("cached")
    path.write_bytes(b"cached content " * 1000)
    assert path.read_bytes().startswith(b"cached content")
    server.reset_counters()
    os.utime(path, (T2020, T2020))
    moved = path.with_name(path.name + ".moved")
    path.rename(moved)
    assert moved.read_bytes() == b"cached content " * 1000
    assert server.count(DOWNLOAD) == 0


def test_a_server_that_refuses_the_time_leaves_it_kept_by_the_mount_across_a_remount(
    server, session, tmp_path
):
    first = start_mount(server, tmp_path / "mnt", tmp_path / "work")
    try:
        path = first.unique("refused")
        path.write_bytes(b"x")
        server.set_faults(status=400, method="PATCH", path_prefix="/api/v3/storage/files/")
        try:
            subprocess.run(["touch", "-d", "2020-01-01T00:00:00Z", str(path)], check=True)
        finally:
            server.clear_faults()
        assert path.stat().st_mtime == T2020
        assert _api_mtime(session, first.orion(path.name)) != T2020  # the server has its own
    finally:
        first.unmount()
    second = start_mount(server, tmp_path / "mnt", tmp_path / "work")
    try:
        assert (second.path / path.name).stat().st_mtime == T2020
        (second.path / path.name).write_bytes(b"new content")  # a new version: the server's time
        assert (second.path / path.name).stat().st_mtime > T2020
    finally:
        second.unmount()
