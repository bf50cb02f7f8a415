"""Helpers of the tests/test_system_*.py modules: orionfs as a system filesystem (mount(8), fstab,
systemd's readiness socket, another local user, the state files)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orionfs.daemon.process import force_unmount, process_alive
from orionfs.daemon.state import mount_at

#: The uid and gid of the "other local user" (nobody).
OTHER_UID = 65534
#: Runs a command as that user, without any group of root's.
AS_OTHER = ("setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups")
#: The orionfs command of this checkout.
ORIONFS = str(Path(sys.executable).parent / "orionfs")
MOUNT_HELPER = str(Path(sys.executable).parent / "mount.orionfs")


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "it") -> Any:
    """Poll ``predicate`` until it answers something true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def notify_socket(folder: Path) -> Iterator[socket.socket]:
    """A datagram socket like systemd's NOTIFY_SOCKET (its path is ``sock.getsockname()``)."""
    path = folder / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    try:
        yield sock
    finally:
        sock.close()
        path.unlink(missing_ok=True)


def notifications(message: bytes) -> dict[str, str]:
    """``KEY=value`` lines of one sd_notify datagram."""
    return dict(line.split("=", 1) for line in message.decode().splitlines() if "=" in line)


def as_other(*cmd: str | os.PathLike[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command as the other local user."""
    return subprocess.run(
        [*AS_OTHER, *map(str, cmd)], capture_output=True, text=True, timeout=60, **kwargs
    )


def run(*cmd: str | os.PathLike[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, its output captured."""
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=60, **kwargs
    )


def mount_pid(mountpoint: str | os.PathLike[str]) -> int | None:
    """The pid of the mount process of ``mountpoint`` from its state file, if any."""
    from orionfs.daemon.process import read_state

    state = read_state(os.fspath(mountpoint))
    return int(state["pid"]) if state and state.get("pid") else None


def cleanup_mount(mountpoint: str | os.PathLike[str], pid: int | None) -> None:
    """Unmount if still mounted (lazily if busy) and end the mount process if still there."""
    if mount_at(os.path.abspath(mountpoint)) is not None:
        force_unmount(mountpoint, busy_wait=2.0)
    if pid and process_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
        deadline = time.monotonic() + 10
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
