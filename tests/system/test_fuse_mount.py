"""``orionfs mount`` / ``orionfs unmount`` as commands: daemon, --local, --read-only, errors,
persistence, bounded deadlines."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orionfs.client import config as cfg
from orionfs.daemon.process import force_unmount, process_alive, wait_for_exit
from tests.support.mount import api_bytes, api_entry, api_exists, api_names, my_data, sh

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
        assert process_alive(pid)
        done = orionfs("unmount", str(mnt), env=env)
        assert done.returncode == 0, done.stderr
        assert not os.path.ismount(mnt)
        assert not process_alive(pid)
    finally:
        force_unmount(mnt)


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
        assert process_alive(server_pid)
        done = orionfs("unmount", str(mnt), env=env)
        assert done.returncode == 0, done.stderr
        assert wait_for_exit(server_pid, 15)  # unmounting stopped the server
    finally:
        force_unmount(mnt)


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
    try:
        _one_line_error(
            orionfs("mount", str(mnt), "--profile", "badtoken", env=env), "bad credentials"
        )
        _one_line_error(orionfs("mount", str(mnt), "--profile", "nowhere", env=env), "cannot reach")
        _one_line_error(orionfs("mount", str(mnt), "--profile", "absent", env=env), "absent")
        assert time.monotonic() - started < 60
        assert not os.path.ismount(mnt)
    finally:
        force_unmount(mnt)


def test_operations_fail_within_the_deadline_when_the_server_is_down(mount_factory, server):
    # No cache, so that each call below needs the server (a name absent from a cached listing
    # is ENOENT without a request).
    mounted = mount_factory(server, "--timeout", "2", "--retry-deadline", "3", "--cache-ttl", "0")
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


def _mount_namespace(argv: list[str]) -> dict[str, object]:
    """The values ``orionfs`` parses from ``argv`` (a ``mount`` command line), ``func`` left out."""
    from orionfs.cli import build_parser

    values = vars(build_parser().parse_args(argv))
    values.pop("func")
    return values


def test_every_mount_option_reaches_the_mount_process_with_absolute_paths(tmp_path, monkeypatch):
    from orionfs.cli.mount import add_mount_arguments, child_argv

    monkeypatch.chdir(tmp_path)
    user_argv = [
        "-vv",
        "mount",
        "mnt",
        "--profile=other",
        "--root",
        "/project/1/-odd name",
        "--read-only",
        "--cache-ttl",
        "0.1",
        "--page-size",
        "7",
        "--debug",
        "-o",
        "allow_other,uid=1000",
        "-o=-weird",
        "--local",
        "data",
        "--timeout",
        "2.5e-3",
        "--retry-deadline",
        "0",
        "--log-file",
        "logs/m.log",
        "--recovery-dir",
        "rec",
        "--staging-dir",
        "stage",
        "--write-back",
        "2.5",
        "--ready-timeout",
        "45",
        "--allow-other",
        "--allow-non-empty",
        "--uid=7",
        "--gid=8",
        "--umask=027",
        "--file-mode=0640",
        "--dir-mode=0750",
        "--log-level=warning",
        "--metrics=127.0.0.1:0",
        "--stop-timeout=2m",
        "--config-dir=cfg",
        "--cache-mode=off",
        "--cache-max-size=2G",
        "--cache-dir=datacache",
        "--read-ahead-memory=64M",
    ]
    parent = _mount_namespace(user_argv)
    # the test sets every option of `orionfs mount` (but --foreground) away from its default
    for action in add_mount_arguments(argparse.ArgumentParser(add_help=False)):
        if action.dest != "foreground" and action.option_strings:
            assert parent[action.dest] != action.default, f"{action.dest} not set by the test"

    argv = child_argv(argparse.Namespace(**parent))
    assert argv[:3] == [sys.executable, "-m", "orionfs.cli"]
    child = _mount_namespace(argv[3:])
    assert child == {**parent, "foreground": True}
    for dest, name in [("mountpoint", "mnt"), ("local", "data"), ("log_file", "logs/m.log"),
                       ("recovery_dir", "rec"), ("staging_dir", "stage"),
                       ("config_dir", "cfg"), ("cache_dir", "datacache")]:  # fmt: skip
        assert child[dest] == str(tmp_path / name)
    assert child["verbose"] == 2


def test_mount_process_logs_at_least_info_and_gets_only_options_that_were_given(tmp_path):
    from orionfs.cli.mount import child_argv

    parent = _mount_namespace(["mount", str(tmp_path)])
    argv = child_argv(argparse.Namespace(**parent))
    assert argv[3:] == ["-v", "mount", str(tmp_path), "--foreground"]
    assert _mount_namespace(argv[3:]) == {**parent, "foreground": True, "verbose": 1}


def test_mount_validation_leaves_the_urllib3_logger_alone(tmp_path, monkeypatch, caplog):
    from orionfs.cli import main

    monkeypatch.setenv(cfg.CONFIG_DIR_ENV, str(tmp_path / "config"))
    cfg.save_profile("nowhere", "http://127.0.0.1:9", "someone", "0" * 40)
    (tmp_path / "mnt").mkdir()
    urllib3_logger = logging.getLogger("urllib3")
    retries_logger = logging.getLogger("urllib3.connectionpool")
    before = (urllib3_logger.level, retries_logger.level, list(retries_logger.filters))
    caplog.set_level(logging.WARNING)
    code = main(["mount", str(tmp_path / "mnt"), "--profile", "nowhere", "--timeout", "1"])
    assert code == 1  # cannot reach: connections refused, retried for a second
    after = (urllib3_logger.level, retries_logger.level, list(retries_logger.filters))
    assert after == before
    assert not [r for r in caplog.records if r.name.startswith("urllib3")]  # retries not shown
    retries_logger.warning("a retry after the validation")  # still logged as before
    assert [r.getMessage() for r in caplog.records] == ["a retry after the validation"]
