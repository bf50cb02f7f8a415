"""``orionfs mount --local DATA_DIR``: the local Orion server, run by the mount process.

The server (``orionfs serve --data DATA_DIR --port 0``) picks a free loopback port and writes
``DATA_DIR/server.json`` (url, pid, token, ...) once it listens; the mount reads it and connects.
``serve_argv`` and ``wait_for_server_info`` also serve the benchmark, which starts servers of its own.
"""

from __future__ import annotations

import json
import logging
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

logger = logging.getLogger(__name__)

#: Seconds the local server gets to stop before it is killed.
SERVER_STOP_WAIT: float = 10.0
#: The command that runs the server's CLI (``serve`` and its options follow).
SERVER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "orionfs.server")
#: The file the server writes into its data folder once it listens.
SERVER_INFO = "server.json"


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

    @classmethod
    def start(cls, data_dir: str, timeout: float) -> LocalServer:
        """Start the server and wait for its ``server.json``; MountError if it does not come up."""
        data = Path(data_dir).absolute()
        data.mkdir(parents=True, exist_ok=True)
        started = time.time()
        log_path = data / "server.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                serve_argv(data), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        try:
            info = wait_for_server_info(process, data, started, timeout, log_path, process.pid)
        except MountError:
            process.terminate()
            raise
        config = SessionConfig(
            url=info["url"],
            username=info.get("username", ""),
            token=info["token"],
            profile="local",
            project=info.get("project"),
        )
        logger.info("local server on %s (pid %s, data %s)", info["url"], process.pid, data)
        return cls(process, config)

    def stop(self, timeout: float = SERVER_STOP_WAIT) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        stop_process(self.process, timeout)
        logger.info("local server stopped")
