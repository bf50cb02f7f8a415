"""orionfs under systemd: readiness on NOTIFY_SOCKET, clean stops on SIGTERM/SIGINT, logging.

- ``--foreground`` sends READY=1 on NOTIFY_SOCKET once the mount answers, STOPPING=1 on SIGTERM;
- SIGTERM with a file still open: the mount is detached, the file's data is uploaded when it is
  closed, and the process exits 0; SIGINT exits 0 too;
- a stop that outlives ``--stop-timeout`` keeps the unsaved data in the recovery folder, exits 1;
- a mount that libfuse refuses reports libfuse's own message, in one line;
- ``--log-file`` is honoured in the foreground; ordinary errnos are logged without tracebacks;
- the unit files in docs/systemd verify (systemd-analyze) and run ``orionfs mount --foreground``
  as Type=notify, with TimeoutStopSec above ``--stop-timeout``;
- with write-back, SIGTERM uploads the queue before the process exits 0.
"""

from __future__ import annotations

import configparser
import errno
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orionfs.cli import build_parser
from tests.support.mount import api_bytes, my_data, start_mount
from tests.support.system import ORIONFS, notifications, notify_socket, wait_for

pytestmark = pytest.mark.fuse


def test_sigterm_sends_ready_then_stopping_uploads_the_open_file_and_exits_0(
    server, session, tmp_path
):
    with notify_socket(tmp_path) as sock:
        mount = start_mount(
            server,
            tmp_path / "mnt",
            tmp_path / "work",
            "--stop-timeout",
            "20s",
            env_extra={"NOTIFY_SOCKET": sock.getsockname()},
        )
        try:
            ready = notifications(sock.recv(4096))
            assert ready["READY"] == "1"
            assert ready["MAINPID"] == str(mount.proc.pid)
            assert "orion:local:" in ready["STATUS"]
            assert os.path.ismount(mount.path) and os.listdir(mount.path) is not None

            name = mount.unique("open").name
            data = os.urandom(300_000)
            handle = open(mount.path / name, "wb")  # noqa: SIM115 - closed after the signal
            try:
                handle.write(data)
                handle.flush()
                mount.proc.send_signal(signal.SIGTERM)
                stopping = notifications(sock.recv(4096))
                assert stopping["STOPPING"] == "1"
                # Busy with the open file: the mount is detached, the file still served.
                wait_for(lambda: not os.path.ismount(mount.path), what="the detach")
                assert mount.proc.poll() is None
            finally:
                handle.close()  # its upload, then the process ends
            assert mount.proc.wait(30) == 0
            assert api_bytes(session, mount.orion(name)) == data
            assert "failed (libfuse status" not in mount.log()
        finally:
            mount.unmount()


def test_sigint_unmounts_and_exits_0(server, tmp_path):
    mount = start_mount(server, tmp_path / "mnt", tmp_path / "work")
    try:
        mount.proc.send_signal(signal.SIGINT)
        assert mount.proc.wait(30) == 0
        assert not os.path.ismount(mount.path)
    finally:
        mount.unmount()


def test_a_stop_uploads_open_files_and_keeps_later_writes_past_its_timeout_exiting_1(
    server, session, tmp_path
):
    mount = start_mount(server, tmp_path / "mnt", tmp_path / "work", "--stop-timeout", "3s")
    name = mount.unique("kept").name
    orion = mount.orion(name)
    handle = open(mount.path / name, "wb")  # noqa: SIM115 - the stop outlives it
    try:
        handle.write(b"first part")
        handle.flush()
        mount.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _stored(session, orion, b"first part"):
            time.sleep(0.05)
        assert _stored(session, orion, b"first part")  # uploaded when the stop came
        handle.write(b", second part")  # the detached mount still serves the open file
        handle.flush()
        assert mount.proc.wait(20) == 1  # that write was never uploaded: kept, exit 1
    finally:
        try:
            handle.close()
        except OSError as error:  # the mount process is gone
            assert error.errno in (errno.ENOTCONN, errno.EIO, errno.ECONNABORTED)
        mount.unmount()
    kept = [p.read_bytes() for p in mount.recovery_dir.rglob("*") if p.is_file()]
    assert b"first part, second part" in kept
    assert "stopping without waiting any more (the stop timeout)" in mount.log()


def _stored(session, orion: str, data: bytes) -> bool:
    try:
        return api_bytes(session, orion) == data
    except OSError:
        return False


def test_a_mount_libfuse_refuses_reports_libfuses_message_in_one_line(server, tmp_path):
    (tmp_path / "mnt").mkdir()
    env = {**os.environ, "ORIONFS_CONFIG_DIR": str(server.config_dir)}
    result = subprocess.run(
        [ORIONFS, "mount", str(tmp_path / "mnt"), "--profile", "local", "--root",
         my_data(server), "-o", "no_such_fuse_option", "--log-file", str(tmp_path / "log")],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("orionfs: error: mounting ")
    assert "no_such_fuse_option" in lines[0] and "fuse" in lines[0]
    assert "libfuse status" not in lines[0]


def test_foreground_logs_to_its_log_file_without_tracebacks_for_ordinary_errors(server, tmp_path):
    log_file = tmp_path / "orionfs.log"
    mount = start_mount(
        server, tmp_path / "mnt", tmp_path / "work", "--log-file", str(log_file), "--debug"
    )
    try:
        folder = mount.unique("full")
        folder.mkdir()
        (folder / "f").write_bytes(b"x")
        with pytest.raises(OSError) as not_empty:
            os.rmdir(folder)
        assert not_empty.value.errno == errno.ENOTEMPTY
        with pytest.raises(OSError) as not_allowed:
            os.setxattr(folder / "f", "user.orion.id", b"1")  # read-only attribute
        assert not_allowed.value.errno == errno.EPERM
        with pytest.raises(FileNotFoundError):
            os.stat(mount.path / "absent")
    finally:
        assert mount.unmount() == 0
    text = log_file.read_text()
    assert "rmdir(" in text and "ENOTEMPTY" in text  # one debug line, no traceback
    assert "Traceback" not in text
    assert "DEBUG" not in mount.log()  # the foreground's stderr: nothing, it all went to the file


UNITS = Path(__file__).resolve().parents[2] / "docs" / "systemd"


@pytest.mark.parametrize("unit", ["orionfs.service", "orionfs-user.service"])
def test_the_unit_files_verify_and_run_a_notifying_foreground_mount(unit, tmp_path):
    text = (UNITS / unit).read_text()
    bin_dir = str(Path(ORIONFS).parent)
    text = text.replace("/opt/orionfs/.venv/bin", bin_dir).replace("%h/.local/bin", bin_dir)
    (tmp_path / unit).write_text(text.replace("%h", str(tmp_path)))
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read_string(text)
    assert service["Service"]["Type"] == "notify"
    assert int(service["Service"]["TimeoutStopSec"]) > 60
    command = shlex.split(service["Service"]["ExecStart"].replace("\\\n", " "))
    assert command[:3] == [str(Path(bin_dir) / "orionfs"), "mount", "--foreground"]
    args = build_parser().parse_args(command[1:])
    assert args.foreground and args.stop_timeout < int(service["Service"]["TimeoutStopSec"])
    if shutil.which("systemd-analyze"):
        result = subprocess.run(
            ["systemd-analyze", "verify", str(tmp_path / unit)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr


def test_sigterm_uploads_the_write_back_queue_before_it_exits_0(server, session, tmp_path):
    mount = start_mount(server, tmp_path / "mnt", tmp_path / "work", "--write-back", "1h")
    try:
        name = mount.unique("queued").name
        (mount.path / name).write_bytes(b"queued until the stop")  # closed: queued for an hour
        mount.proc.send_signal(signal.SIGTERM)
        assert mount.proc.wait(30) == 0
        assert api_bytes(session, mount.orion(name)) == b"queued until the stop"
    finally:
        mount.unmount()
