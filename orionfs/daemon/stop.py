"""The mount process's side of STOP_SIGNAL: stop waiting on the server when told to.

``orionfs unmount`` sends STOP_SIGNAL (orionfs.daemon.process) to a mount process that outlives its
kernel mount because FUSE calls still wait on the server (a stalled server answers them only after
the request timeout). The process then cuts its own connections to the server, found through
``/proc/self/fd``, so that those calls fail at once (EIO), and ends as after any unmount.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from orionfs.daemon.local_server import LocalServer
from orionfs.daemon.process import POLL_INTERVAL, STOP_SIGNAL, forget_state

logger = logging.getLogger(__name__)

#: Seconds the mount process cuts its connections to the server after STOP_SIGNAL, so that calls
#: in flight (retries included) fail; it exits at most half as long again after that.
STOP_ABORT_WINDOW: float = 1.2
#: A call in flight this long (seconds) when STOP_SIGNAL comes waits on the server; shorter ones
#: (a write into the staging file after a lazy unmount) are left alone.
STUCK_AFTER: float = 0.5
#: Seconds the local server gets to stop when the process exits without waiting for calls.
SERVER_KILL_WAIT: float = 1.0

CallsInFlight = Callable[[], list[tuple[str, float]]]


def watch_stop_signal(
    operations: Any, mountpoint: str, url: str, server: LocalServer | None
) -> None:
    """On STOP_SIGNAL (sent by ``orionfs unmount`` once the kernel mount is gone) while FUSE calls
    still wait on the server: stop waiting for it. The connections to the server are cut (again
    and again, for ``STOP_ABORT_WINDOW`` seconds, retries included), so each call in flight fails
    at once with its errno (EIO) and the mount process ends as after any unmount, keeping unsaved
    staged data in the recovery folder instead of uploading it. Should calls still be in flight
    after that window, the process keeps the staged data and exits anyway.

    Without calls in flight for STUCK_AFTER seconds the signal is ignored: after a lazy unmount
    the kernel keeps the connection for files still open, and they are served until closed.

    The main thread sits in libfuse (C) until every call in flight is answered, so a Python
    handler cannot run there; the signal's wakeup byte reaches a watcher thread instead. Must be
    called from the main thread; elsewhere (embedded use) there is no stop signal, and unmounting
    still works.
    """
    calls_in_flight: CallsInFlight = operations.calls_in_flight
    target = urllib.parse.urlsplit(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        signal.signal(STOP_SIGNAL, lambda signum, frame: None)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        os.close(read_end)
        os.close(write_end)
        return

    def watch() -> None:
        while True:
            data = os.read(read_end, 64)
            if not data:
                return
            if int(STOP_SIGNAL) not in data:
                continue
            waiting = _stuck_calls(calls_in_flight)
            if waiting:
                break
            logger.info("stop signal ignored: no call waits on the server (open files are served)")
        logger.warning(
            "told to stop: the calls waiting on the server fail now: %s",
            ", ".join(f"{name} ({seconds:.1f} s)" for name, seconds in waiting),
        )
        operations.stopping = True  # destroy(): staged data to the recovery folder, no upload
        operations.files.stop()  # no new upload, download or read waits on the server
        deadline = time.monotonic() + STOP_ABORT_WINDOW
        while calls_in_flight() and time.monotonic() < deadline:
            cut_connections(port)
            time.sleep(POLL_INTERVAL)
        # Whatever the calls answered, the process ends (the last one dropping the kernel's
        # connection); only if some are still stuck does it end here, without them.
        time.sleep(STOP_ABORT_WINDOW / 2)
        waiting = calls_in_flight()
        if not waiting:
            return
        logger.error("calls still waiting after the stop: %s; exiting", waiting)
        _exit_now(operations, mountpoint, server)

    threading.Thread(target=watch, name="orionfs-stop", daemon=True).start()


def _exit_now(operations: Any, mountpoint: str, server: LocalServer | None) -> None:
    """End the process without the calls still in flight: staged data kept, server stopped."""
    try:
        operations.files.abandon()
    except Exception:  # noqa: BLE001 - ending anyway; what was kept is logged
        logger.exception("keeping staged data failed")
    if server is not None:
        with contextlib.suppress(Exception):
            server.stop(SERVER_KILL_WAIT)
    forget_state(mountpoint)
    logging.shutdown()
    os._exit(0)


def _stuck_calls(calls_in_flight: CallsInFlight) -> list[tuple[str, float]]:
    """The FUSE calls in flight for STUCK_AFTER seconds or more (waiting on the server: local
    work, e.g. a write into the staging file, takes far less), watched for up to STUCK_AFTER."""
    deadline = time.monotonic() + STUCK_AFTER
    while True:
        stuck = [(name, seconds) for name, seconds in calls_in_flight() if seconds >= STUCK_AFTER]
        if stuck or time.monotonic() >= deadline:
            return stuck
        time.sleep(POLL_INTERVAL)


def cut_connections(port: int) -> int:
    """Shut down this process's TCP connections to ``port`` (the Orion server's): a request
    waiting on them fails at once. Returns how many were cut."""
    cut = 0
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    for name in fds:
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            dup = os.dup(fd)
        except OSError:
            continue
        try:
            sock = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue
        with sock:
            try:
                if sock.type != socket.SOCK_STREAM or sock.family not in (
                    socket.AF_INET,
                    socket.AF_INET6,
                ):
                    continue
                if sock.getpeername()[1] != port:
                    continue
                sock.shutdown(socket.SHUT_RDWR)
                cut += 1
            except OSError:
                continue
    return cut
