"""A command line that cannot hurt you: the rules of ``orionfs mount``/``unmount``/``status`` that
need no Orion server.

- durations take units in every time option; ``-o`` lists sort into orionfs options, mount(8)'s and
  systemd's words, and libfuse's; a umask never makes files executable;
- a mount point that is not empty is refused (``--allow-non-empty`` allows it);
- ``orionfs unmount`` refuses what is not an orionfs mount (a tmpfs) in one line;
- the state folder: one planted by another user (a symlink, someone else's, open to others) is
  refused in one line; state files are read and written without following symlinks; a pid from a
  state file is signalled only if it is that mount point's orionfs mount process;
- ``profile add`` against an unreachable server is one line;
- ``mount.orionfs``'s SOURCE and options.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from orionfs.cli import main
from orionfs.cli.helper import mount_argv, parse_source
from orionfs.daemon import MountError
from orionfs.daemon.checks import check_mountpoint
from orionfs.daemon.metrics import parse_address, route_of
from orionfs.daemon.options import parse_duration, permission_modes, split_option_list
from orionfs.daemon.process import stop_mount_process
from orionfs.daemon.state import is_mount_process, mount_at, read_json, write_json
from tests.support.system import AS_OTHER, ORIONFS, OTHER_UID, run


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5", 5.0), ("2.5", 2.5), ("500ms", 0.5), ("5s", 5.0), ("2m", 120.0), ("1h", 3600.0),
     ("1d", 86400.0), (" 3 M ", 180.0), ("1e-05", 1e-05)],
)  # fmt: skip
def test_durations_take_units(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "m", "1h30m", "fast"])
def test_bad_durations_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_every_time_option_takes_units():
    from orionfs.cli import build_parser

    args = build_parser().parse_args(
        ["mount", "/m", "--cache-ttl", "5m", "--timeout", "30s", "--retry-deadline", "2m",
         "--stop-timeout", "1h", "--ready-timeout", "500ms"]
    )  # fmt: skip
    assert (args.cache_ttl, args.timeout, args.retry_deadline, args.stop_timeout) == (
        300.0, 30.0, 120.0, 3600.0,
    )  # fmt: skip
    assert args.ready_timeout == 0.5


def test_option_lists_sort_into_orionfs_mount_and_libfuse_options():
    sorted_out = split_option_list(
        ["rw,noexec,nosuid,cache-ttl=5m,ro,uid=1000,config_dir=/etc/orionfs,noauto,_netdev",
         "user,nofail,x-systemd.automount,allow_other,fsname=x\\,y,debug,defaults"],
        {"cache_ttl", "read_only", "uid", "allow_other", "debug", "foreground"},
    )  # fmt: skip
    assert sorted_out.settings == {
        "cache_ttl": "5m", "read_only": True, "uid": "1000", "config_dir": "/etc/orionfs",
        "allow_other": True,
    }  # fmt: skip
    assert sorted_out.fuse == ["noexec", "nosuid", "fsname=x,y", "debug"]
    assert set(sorted_out.ignored) == {
        "rw", "noauto", "_netdev", "user", "nofail", "x-systemd.automount", "defaults",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode", "expected"),
    [(None, None, None, (0o644, 0o755)), (0o027, None, None, (0o640, 0o750)),
     (0o000, None, None, (0o666, 0o777)), (0o077, 0o640, None, (0o640, 0o700))],
)  # fmt: skip
def test_a_umask_never_makes_files_executable(umask, file_mode, dir_mode, expected):
    files, folders = permission_modes(umask, file_mode, dir_mode)
    assert (files, folders) == expected
    assert files & 0o111 == 0 or file_mode is not None


def test_a_mount_point_that_is_not_empty_is_refused(tmp_path, capsys):
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mnt" / "keep.txt").write_text("hidden if mounted over")
    assert main(["mount", str(tmp_path / "mnt"), "--profile", "nowhere"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not empty" in err[0] and "--allow-non-empty" in err[0]
    assert check_mountpoint(str(tmp_path / "mnt"), allow_non_empty=True) == str(tmp_path / "mnt")
    with pytest.raises(MountError):
        check_mountpoint(str(tmp_path / "mnt"))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_unmount_refuses_what_is_not_an_orionfs_mount(tmp_path):
    target = tmp_path / "tmpfs"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], check=True)
    try:
        (target / "data").write_text("not orionfs's")
        result = run(ORIONFS, "unmount", target)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"orionfs: error: {target} is not an orionfs mount (tmpfs from tmpfs): not "
            "unmounting it"
        ]
        assert mount_at(str(target)).fstype == "tmpfs"
        assert (target / "data").read_text() == "not orionfs's"
        unmounted = run(ORIONFS, "unmount", tmp_path)
        assert unmounted.stderr.strip() == f"orionfs: error: {tmp_path} is not mounted"
    finally:
        subprocess.run(["umount", str(target)], check=False)


@pytest.fixture
def other_tmp():
    """A TMPDIR for the other user, in which root plants things first."""
    folder = Path(tempfile.mkdtemp(prefix="orionfs-state-"))
    os.chmod(folder, 0o1777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _status_as_other(tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(tmp)
    return subprocess.run(
        [*AS_OTHER, ORIONFS, "status"], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a folder for another uid needs root")
@pytest.mark.parametrize("planted", ["symlink", "someone else's", "open to others"])
def test_a_state_folder_planted_by_another_user_is_refused(other_tmp, planted):
    own = other_tmp / f"orionfs-{OTHER_UID}"
    elsewhere = other_tmp / "elsewhere"
    elsewhere.mkdir(mode=0o777)
    os.chmod(elsewhere, 0o777)
    if planted == "symlink":
        own.symlink_to(elsewhere)
    elif planted == "someone else's":
        own.mkdir(mode=0o700)  # root's
    else:
        own.mkdir()
        os.chown(own, OTHER_UID, OTHER_UID)
        os.chmod(own, 0o777)
    result = _status_as_other(other_tmp)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"orionfs: error: refusing the state folder {own}"
    )
    assert os.listdir(elsewhere) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another uid needs root")
def test_an_own_state_folder_others_may_only_read_is_made_private(other_tmp):
    own = other_tmp / f"orionfs-{OTHER_UID}"
    own.mkdir()
    os.chown(own, OTHER_UID, OTHER_UID)
    os.chmod(own, 0o755)  # as older versions made it
    result = _status_as_other(other_tmp)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no orionfs mounts"
    info = os.lstat(own)
    assert (info.st_uid, info.st_mode & 0o777) == (OTHER_UID, 0o700)


def test_state_files_are_never_followed_through_symlinks(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"pid": 1, "mountpoint": "/"}')
    link = tmp_path / "mount-x.json"
    link.symlink_to(secret)
    assert read_json(link) is None
    write_json(link, {"pid": 2})
    assert not link.is_symlink() and read_json(link) == {"pid": 2}
    assert secret.read_text() == '{"pid": 1, "mountpoint": "/"}'


def test_a_pid_is_signalled_only_if_it_is_that_mount_points_mount_process(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert not is_mount_process(sleeper.pid, str(tmp_path))
        assert stop_mount_process(sleeper.pid, str(tmp_path)) is False
        assert sleeper.poll() is None  # not signalled (SIGUSR1 would have ended it)
    finally:
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait()
    lookalike = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "orionfs", "mount",
         str(tmp_path / "other"), "--foreground"],
    )  # fmt: skip
    try:
        assert not is_mount_process(lookalike.pid, str(tmp_path / "mnt"))
    finally:
        lookalike.kill()
        lookalike.wait()


def test_profile_add_reports_an_unreachable_server_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ORIONFS_CONFIG_DIR", str(tmp_path))
    assert main(["profile", "add", "p", "--url", "http://127.0.0.1:9", "--token", "t0k"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "orionfs: error: cannot reach http://127.0.0.1:9: Connection refused"
    ]
    assert main(["profile", "add", "p", "--url", "notaurl", "--token", "t0k"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["orionfs: error: --url must be http(s)://HOST[:PORT], not 'notaurl'"]


def test_mount_helper_source_and_options():
    assert parse_source("work:/project/1/user/me") == ("work", "/project/1/user/me")
    assert parse_source("work") == ("work", "/")
    with pytest.raises(ValueError):
        parse_source(":/x")
    assert mount_argv("work:/p", "/mnt", ["rw,cache_ttl=5m"]) == [
        "mount", "/mnt", "--profile", "work", "--root", "/p", "-o", "rw,cache_ttl=5m",
    ]  # fmt: skip
    assert (
        run(Path(sys.executable).parent / "mount.orionfs", "work:/", "/nowhere", "-f").returncode
        == 0
    )


def test_metrics_addresses_default_to_loopback_and_routes_hide_ids():
    assert parse_address("9101") == ("127.0.0.1", 9101)
    assert parse_address(":0") == ("127.0.0.1", 0)
    assert parse_address("0.0.0.0:9101") == ("0.0.0.0", 9101)
    assert parse_address("[::1]:9101") == ("::1", 9101)
    for bad in ("", "x", "1.2.3.4:", "[::1]9101", "70000"):
        with pytest.raises(MountError):
            parse_address(bad)
    assert route_of("http://h:1/api/v3/storage/files/42/content/?x=1") == (
        "/api/v3/storage/files/{id}/content/"
    )
