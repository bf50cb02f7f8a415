"""``orionfs mount`` / ``orionfs unmount`` as commands: daemon, --local, --read-only, errors,
persistence, bounded deadlines."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orionfs.client import config as cfg
from tests.plugin_mount import api_bytes, api_entry, api_exists, api_names, my_data, sh

pytestmark = pytest.mark.fuse


def orionfs(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orionfs.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _env(config_dir: Path, tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "ORIONFS_CONFIG_DIR": str(config_dir),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    env.pop("ORION_PROFILE", None)
    return env


def _alive(pid: int) -> bool:
    from orionfs.daemon.mount import process_alive

    return process_alive(pid)


def test_read_only_mount_refuses_every_write_with_erofs(mount_factory, server, session, mount):
    # a file and a folder to attack, made through the writable module mount
    base = mount.unique("ro")
    base.mkdir()
    (base / "f.txt").write_bytes(b"keep")
    (base / "d").mkdir()
    ro = mount_factory(server, "--read-only")
    folder = ro.path / base.name
    f = folder / "f.txt"
    assert f.read_bytes() == b"keep"
    assert os.stat(f).st_mode & 0o777 == 0o444
    attempts = {
        "create": lambda: open(folder / "new.txt", "wb"),
        "open for write": lambda: open(f, "r+b"),
        "append": lambda: open(f, "ab"),
        "truncate": lambda: os.truncate(f, 0),
        "mkdir": lambda: os.mkdir(folder / "nd"),
        "rmdir": lambda: os.rmdir(folder / "d"),
        "unlink": lambda: os.unlink(f),
        "rename": lambda: os.rename(f, folder / "g.txt"),
        "setxattr": lambda: os.setxattr(f, "user.orion.tag.x", b""),
        "removexattr": lambda: os.removexattr(f, "user.orion.tags"),
        "chmod": lambda: os.chmod(f, 0o600),
        "utime": lambda: os.utime(f, (1, 1)),
    }
    for what, attempt in attempts.items():
        with pytest.raises(OSError) as info:
            attempt()
        assert info.value.errno == errno.EROFS, what
    assert api_bytes(session, mount.orion(f"{base.name}/f.txt")) == b"keep"
    assert api_names(session, mount.orion(base.name)) == {"f.txt", "d"}
    assert sh("touch", folder / "t", check=False).returncode != 0


def test_data_survives_unmount_server_restart_and_fresh_mount(mount_factory, server, session):
    first = mount_factory(server)
    data = os.urandom(3 * 1024 * 1024 + 7)
    (first.path / "persist").mkdir()
    (first.path / "persist" / "blob.bin").write_bytes(data)
    (first.path / "persist" / "note.txt").write_text("still here\n")
    assert first.unmount() == 0
    server.restart()
    second = mount_factory(server)
    assert (second.path / "persist" / "blob.bin").read_bytes() == data
    assert (second.path / "persist" / "note.txt").read_text() == "still here\n"
    assert api_bytes(session, f"{my_data(server)}/persist/blob.bin") == data


def test_daemon_mount_returns_when_ready_and_unmount_ends_it(server, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = _env(server.config_dir, tmp_path)
    result = orionfs("mount", str(mnt), "--profile", "local", "--root", my_data(server), env=env)
    try:
        assert result.returncode == 0, result.stderr
        assert os.path.ismount(mnt)  # ready when the command returned
        assert "README.txt" in os.listdir(mnt)
        pid = int(result.stdout.split("pid ")[1].split(",")[0])
        assert _alive(pid)
        done = orionfs("unmount", str(mnt), env=env)
        assert done.returncode == 0, done.stderr
        assert not os.path.ismount(mnt)
        assert not _alive(pid)
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-uz", str(mnt)], check=False)


def test_local_mount_starts_and_stops_its_own_server(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    data = tmp_path / "data"
    env = _env(tmp_path / "config", tmp_path)
    result = orionfs("mount", "--local", str(data), str(mnt), env=env)
    try:
        assert result.returncode == 0, result.stderr
        info = json.loads((data / "server.json").read_text())
        home = mnt / "project" / str(info["project"]) / "user" / info["username"]
        assert "README.txt" in os.listdir(home)
        (home / "mine.txt").write_bytes(b"local")
        assert (home / "mine.txt").read_bytes() == b"local"
        server_pid = int(info["pid"])
        assert _alive(server_pid)
        done = orionfs("unmount", str(mnt), env=env)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 15
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server_pid)  # unmounting stopped the server
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-uz", str(mnt)], check=False)


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("orionfs: error: ")
    for word in words:
        assert word in lines[0], lines[0]


def test_clear_errors_for_mount_point_problems(server, mount, tmp_path):
    env = _env(server.config_dir, tmp_path)
    _one_line_error(
        orionfs("mount", str(tmp_path / "missing"), "--profile", "local", env=env), "does not exist"
    )
    (tmp_path / "file").write_text("x")
    _one_line_error(
        orionfs("mount", str(tmp_path / "file"), "--profile", "local", env=env), "not a directory"
    )
    _one_line_error(orionfs("mount", str(mount.path), "--profile", "local", env=env), "busy")
    _one_line_error(orionfs("unmount", str(tmp_path), env=env), "not mounted")


def test_clear_errors_for_bad_credentials_and_unreachable_server(server, tmp_path):
    config_dir = tmp_path / "config"
    old = os.environ.get(cfg.CONFIG_DIR_ENV)
    os.environ[cfg.CONFIG_DIR_ENV] = str(config_dir)
    try:
        cfg.save_profile("badtoken", server.url, server.username, "0" * 40)
        cfg.save_profile("nowhere", "http://127.0.0.1:9", "someone", "0" * 40)
    finally:
        if old is None:
            del os.environ[cfg.CONFIG_DIR_ENV]
        else:
            os.environ[cfg.CONFIG_DIR_ENV] = old
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = _env(config_dir, tmp_path)
    started = time.monotonic()
    _one_line_error(orionfs("mount", str(mnt), "--profile", "badtoken", env=env), "bad credentials")
    _one_line_error(orionfs("mount", str(mnt), "--profile", "nowhere", env=env), "cannot reach")
    _one_line_error(orionfs("mount", str(mnt), "--profile", "absent", env=env), "absent")
    assert time.monotonic() - started < 60
    assert not os.path.ismount(mnt)


def test_operations_fail_within_the_deadline_when_the_server_is_down(mount_factory, server):
    mounted = mount_factory(server, "--timeout", "2", "--retry-deadline", "3")
    (mounted.path / "deadline").mkdir()
    (mounted.path / "deadline" / "f.txt").write_bytes(b"cached")
    server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(OSError) as info:
            os.stat(mounted.path / "never-seen-before")
        assert info.value.errno in (errno.EIO, errno.ETIMEDOUT, errno.EAGAIN)
        with pytest.raises(OSError) as info:
            (mounted.path / "deadline" / "new.txt").write_bytes(b"x")
        assert info.value.errno in (errno.EIO, errno.ETIMEDOUT, errno.EAGAIN)
        assert time.monotonic() - started < 30
    finally:
        server.start()
    (mounted.path / "deadline" / "again.txt").write_bytes(b"back")  # works again, no remount
    assert (mounted.path / "deadline" / "again.txt").read_bytes() == b"back"


def test_api_sees_mkdir_and_files_made_through_the_mount(mount, session):
    folder = mount.unique("api")
    folder.mkdir()
    (folder / "x.txt").write_bytes(b"x")
    assert api_entry(session, mount.orion(folder.name))["resource_type"] == "folder"
    assert api_exists(session, mount.orion(f"{folder.name}/x.txt"))
