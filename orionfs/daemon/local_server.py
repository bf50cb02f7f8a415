"""``orionfs mount --local DATA_DIR``: the local Orion server, run by the mount process.

The server (``orionfs serve --data DATA_DIR --port 0``) picks a free loopback port and writes
``DATA_DIR/server.json`` (url, pid, token, ...) once it listens; the mount reads it and connects.

One server per data folder: the mount process holds a lock on ``DATA_DIR/mount.lock`` while its
server runs, and refuses a folder that another mount, or a running ``orionfs serve``, serves. The
server writes the client profile of its own data folder, ``local-<folder name>-<hash>``
(``local_profile_name``), so that no profile in use by one mount is ever pointed at another's
server, which stops with its mount.
``serve_argv`` and ``wait_for_server_info`` also serve the benchmark, which starts servers of its own.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orionfs.client.config import SessionConfig
from orionfs.daemon import MountError
from orionfs.daemon.process import POLL_INTERVAL, stop_process
from orionfs.daemon.state import process_argv

logger = logging.getLogger(__name__)

#: Seconds the local server gets to stop before it is killed.
SERVER_STOP_WAIT: float = 10.0
#: The command that runs the server's CLI (``serve`` and its options follow).
SERVER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "orionfs.server")
#: The file the server writes into its data folder once it listens.
SERVER_INFO = "server.json"
#: The lock a mount process holds on its data folder while its server runs.
LOCK_FILE = "mount.lock"


def local_profile_name(data: Path) -> str:
    """The client profile of a data folder's server: ``local-<name>-<hash of the path>``."""
    resolved = data.resolve()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", resolved.name).strip("-.")[:32] or "data"
    digest = hashlib.sha1(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:6]
    return f"local-{name}-{digest}"


def _lock_data_dir(data: Path) -> int:
    """Lock ``data`` for this process's server (the descriptor holds the lock; closing it, or
    the process ending, releases it). MountError if a mount or ``orionfs serve`` serves it."""
    fd = os.open(data / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise MountError(
            f"{data} is already served by another orionfs mount (pid {holder}): "
            "one server per data folder"
        ) from None
    serving = _serve_pid(data)
    if serving is not None:
        os.close(fd)
        raise MountError(
            f"{data} is already served by 'orionfs serve' (pid {serving}): stop it, or mount "
            "its profile instead of --local"
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _serve_pid(data: Path) -> int | None:
    """The pid of a running ``orionfs serve`` over ``data`` (from its server.json), if any."""
    try:
        pid = int(json.loads((data / SERVER_INFO).read_text()).get("pid") or 0)
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    argv = process_argv(pid) if pid > 0 else None
    if not argv or "serve" not in argv or "--data" not in argv:
        return None
    served = argv[argv.index("--data") + 1] if argv.index("--data") + 1 < len(argv) else ""
    try:
        same = Path(served).resolve() == data.resolve()
    except OSError:
        same = False
    return pid if same else None


def serve_argv(data: Path, *extra: str, command: Sequence[str] = SERVER_COMMAND) -> list[str]:
    """The command line of a server over ``data`` on a free loopback port."""
    return [*command, "serve", "--data", str(data), "--port", "0", *extra]


def wait_for_server_info(
    process: subprocess.Popen[Any],
    data: Path,
    started: float,
    timeout: float,
    log_path: Path,
    pid: int | None = None,
) -> dict[str, Any]:
    """The ``server.json`` that ``process`` writes into ``data`` once it listens: written after
    ``started`` (``time.time()``) and, if ``pid`` is given, by that process. MountError if the
    process exits first or nothing comes within ``timeout`` seconds."""
    info_path = data / SERVER_INFO
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MountError(f"the local server exited ({process.returncode}); see {log_path}")
        info = _read_server_info(info_path, started, pid)
        if info is not None:
            return info
        time.sleep(POLL_INTERVAL)
    raise MountError(f"the local server did not start within {timeout:g} s; see {log_path}")


def _read_server_info(path: Path, started: float, pid: int | None) -> dict[str, Any] | None:
    try:
        if path.stat().st_mtime < started - 1:
            return None  # a previous run's file
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not info.get("url") or not info.get("token"):
        return None
    if pid is not None and info.get("pid") not in (None, pid):
        return None  # another (or a previous) server process wrote it
    return info


@dataclass
class LocalServer:
    """``orionfs serve`` on a free loopback port, run by the mount process."""

    process: subprocess.Popen[bytes]
    config: SessionConfig
    lock_fd: int = -1

    @classmethod
    def start(cls, data_dir: str, timeout: float) -> LocalServer:
        """Start the server and wait for its ``server.json``; MountError if it does not come up."""
        data = Path(data_dir).absolute()
        data.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock_data_dir(data)
        profile = local_profile_name(data)
        started = time.time()
        log_path = data / "server.log"
        try:
            with open(log_path, "ab") as log:
                # Its own session: a Ctrl-C meant for the mount does not stop the server under it.
                process = subprocess.Popen(
                    serve_argv(data, "--profile-name", profile),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            try:
                info = wait_for_server_info(process, data, started, timeout, log_path, process.pid)
            except MountError:
                process.terminate()
                raise
        except BaseException:
            os.close(lock_fd)
            raise
        config = SessionConfig(
            url=info["url"],
            username=info.get("username", ""),
            token=info["token"],
            profile=profile,
            project=info.get("project"),
        )
        logger.info(
            "local server on %s (pid %s, data %s, profile %s)", info["url"], process.pid, data,
            profile,
        )  # fmt: skip
        return cls(process, config, lock_fd)

    def stop(self, timeout: float = SERVER_STOP_WAIT) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        stop_process(self.process, timeout)
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1
        logger.info("local server stopped")
