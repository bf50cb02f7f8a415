"""The helpers the benchmark starts and stops: the local Orion server, the latency proxies,
``rclone serve webdav`` and the mount processes.

Each runs in its own session (a terminal's Ctrl-C reaches only the benchmark, which stops them) and
gets SIGTERM if the benchmark dies. Waiting for a mount, unmounting it and stopping a process are
orionfs.daemon's own functions, the ones ``orionfs mount`` / ``orionfs unmount`` and the tests use.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orionfs.daemon import process
from orionfs.daemon.local_server import serve_argv, wait_for_server_info

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
PY = sys.executable
ORIONFS = [PY, "-m", "orionfs.cli"]

#: The rclone binary (an environment override, e.g. to try a newer release or to test without it).
RCLONE = os.environ.get("ORIONFS_BENCH_RCLONE", "rclone")
START_TIMEOUT = 60.0  # server / mount start
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 30.0  # one request to a test hook


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if this process dies (even by SIGKILL).

    The kernel sends it when the *thread* that forked the child ends, so helpers are only ever
    spawned from the main thread."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.Popen:
    """Start a helper in its own session (so a terminal's Ctrl-C reaches only us: we stop it)."""
    out = log.open("ab")
    try:
        return subprocess.Popen(
            cmd,
            stdout=kw.pop("stdout", out),
            stderr=out,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            **kw,
        )
    finally:
        out.close()


def stop(proc: subprocess.Popen | None) -> None:
    """SIGTERM, wait (bounded), SIGKILL."""
    process.stop_process(proc, STOP_TIMEOUT)


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll until predicate() is truthy; returns its value or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- mounts --------------------------------------------------------------------------------------
def start_mount(
    name: str, cmd: list[str], mnt: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Run a foreground mount command and wait until ``mnt`` is mounted (RuntimeError if the
    process exits first, TimeoutError if it takes longer than START_TIMEOUT)."""
    proc = spawn(cmd, log, env=env)
    if process.wait_until_mounted(mnt, proc, START_TIMEOUT):
        return proc
    if proc.poll() is not None:
        raise RuntimeError(f"{name} mount exited ({proc.returncode}); see {log}")
    stop_mount(mnt, proc)
    raise TimeoutError(f"timed out after {START_TIMEOUT:g} s waiting for the {name} mount")


def stop_mount(mnt: Path, proc: subprocess.Popen | None) -> None:
    """Unmount ``mnt`` (retrying while busy, lazily as a last resort) and wait for its process."""
    process.unmount_and_wait(mnt, proc, STOP_TIMEOUT, busy_wait=STOP_TIMEOUT)


# --- the latency proxy ---------------------------------------------------------------------------
class ProxyProcess:
    """scripts/latency_proxy.py in its own process (so its copying never competes for our GIL)."""

    def __init__(self, target_port: int, log: Path) -> None:
        self.proc = spawn(
            [
                PY,
                str(SCRIPTS / "latency_proxy.py"),
                "--target",
                f"127.0.0.1:{target_port}",
                "--rtt-ms",
                "0",
                "--stdin-control",
            ],
            log,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        words = self._line().split()
        if words[:1] != ["listening"]:
            raise RuntimeError(f"latency proxy did not start: {words}")
        self.port = int(words[2])
        self.url = f"http://127.0.0.1:{self.port}"

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _line(self) -> str:
        try:
            return self._lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise TimeoutError("latency proxy did not answer") from None

    def set_rtt(self, ms: float) -> None:
        self.proc.stdin.write(f"rtt {ms}\n")
        self.proc.stdin.flush()
        answer = self._line()
        if not answer.startswith("ok"):
            raise RuntimeError(f"latency proxy refused 'rtt {ms}': {answer!r}")

    def connections(self) -> int:
        """TCP connections accepted so far (each one paid an emulated handshake)."""
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        words = self._line().split()
        if words[:2] != ["stats", "connections"]:
            raise RuntimeError(f"latency proxy answered {words} to 'stats'")
        return int(words[2])

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()  # the proxy exits when its stdin closes
        stop(self.proc)


# --- the local Orion server ----------------------------------------------------------------------
class OrionServer:
    """``orionfs serve --test-hooks`` on a free loopback port, with its request counter."""

    def __init__(self, work: Path, command: list[str]) -> None:
        self.data = work / "orion-data"
        self.config = work / "server-config"
        self.data.mkdir()
        self.config.mkdir(mode=0o700)
        env = dict(os.environ, ORIONFS_CONFIG_DIR=str(self.config))
        log = work / "server.log"
        started = time.time()
        self.proc = spawn(serve_argv(self.data, "--test-hooks", command=command), log, env=env)
        # Any pid: a --server-cmd wrapper may run the server as a child of its own.
        info = wait_for_server_info(self.proc, self.data, started, START_TIMEOUT, log)
        self.url: str = info["url"].rstrip("/")
        self.token: str = info["token"]
        self.username: str = info["username"]
        self.project: int = int(info["project"])
        import requests

        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Token {self.token}"
        self._http.headers["X-Orion-Test-Hooks"] = info.get("test_hooks_secret", "")
        wait_for(self._up, START_TIMEOUT, "the server to answer")

    def _up(self) -> bool:
        try:
            return self._http.get(f"{self.url}/api/versions/", timeout=5).ok
        except OSError:
            return False

    def reset_counters(self) -> None:
        r = self._http.post(f"{self.url}/api/v1/_test/counters/reset/", timeout=HTTP_TIMEOUT)
        r.raise_for_status()

    def counters(self) -> dict[str, int]:
        r = self._http.get(f"{self.url}/api/v1/_test/counters/", timeout=HTTP_TIMEOUT)
        r.raise_for_status()
        return {k: v for k, v in r.json()["by_endpoint"].items() if v}

    def stop(self) -> None:
        stop(self.proc)


# --- rclone --------------------------------------------------------------------------------------
def start_rclone_serve(served: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """``rclone serve webdav`` over ``served`` on a free loopback port: (process, port)."""
    port = free_port()
    proc = spawn(
        [
            RCLONE,
            "serve",
            "webdav",
            str(served),
            "--addr",
            f"127.0.0.1:{port}",
            "--config",
            "/dev/null",
        ],
        log,
    )
    try:
        wait_for(lambda: port_open(port), START_TIMEOUT, "rclone serve webdav")
    except BaseException:
        stop(proc)
        raise
    return proc, port


def rclone_version() -> str:
    try:
        out = subprocess.run([RCLONE, "version"], capture_output=True, text=True, timeout=30)
        return out.stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def status_bytes(pid: int, field: str) -> int:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM), in bytes; 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
