"""Fixtures for the real local server, run as a subprocess on a free loopback port.

- ``ServerProcess``: one ``python -m orionfs.server serve --port 0 --test-hooks`` process with its own
  data and config folders; helpers for the test hooks (counters, faults, latency, storage stalls,
  users).
- ``server_factory`` (function scope): call it for a fresh server in its own temp dir.
- ``server`` (module scope): one server per test module; counters, faults and latency are cleared
  before each test that uses it.
- ``config_dir``: the server's client config folder, also set as ``ORIONFS_CONFIG_DIR``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
HOOK_TIMEOUT = 10.0


class ServerStartError(RuntimeError):
    """The server process did not come up (the message holds the end of its log)."""


class ServerProcess:
    """A local Orion server subprocess over ``base_dir/data`` with config in ``base_dir/config``."""

    def __init__(self, base_dir: Path, test_hooks: bool = True) -> None:
        self.base_dir = Path(base_dir)
        self.data_dir = self.base_dir / "data"
        self.config_dir = self.base_dir / "config"
        self.log_path = self.base_dir / "server.log"
        self.test_hooks = test_hooks
        self.url: str = ""
        self.token: str = ""
        self.username: str = ""
        self.project_id: int = 0
        self.pid: int = 0
        self.port: int = 0
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    # -- process control ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> ServerProcess:
        """Start the server (again on the same data dir; the same port if it is still free)."""
        if self.running:
            return self
        if self.port:
            try:
                return self._launch(self.port)
            except ServerStartError:
                pass  # the port was taken meanwhile: take any free one
        return self._launch(0)

    def _launch(self, port: int) -> ServerProcess:
        env = dict(os.environ, ORIONFS_CONFIG_DIR=str(self.config_dir))
        cmd = [
            sys.executable,
            "-m",
            "orionfs.server",
            "serve",
            "--data",
            str(self.data_dir),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        if self.test_hooks:
            cmd.append("--test-hooks")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.base_dir
            )
        deadline = time.monotonic() + START_TIMEOUT
        info_path = self.data_dir / "server.json"
        while True:
            if proc.poll() is not None:
                raise ServerStartError(f"server exited with {proc.returncode}:\n{self.log_tail()}")
            info = self._read_info(info_path)
            if info.get("pid") == proc.pid and self._answers(info):
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise ServerStartError(f"server not ready in {START_TIMEOUT} s:\n{self.log_tail()}")
            time.sleep(0.05)
        self._proc = proc
        self.info = info
        self.url = info["url"]
        self.token = info["token"]
        self.username = info["username"]
        self.project_id = int(info["project"])
        self.pid = proc.pid
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    @property
    def hooks_headers(self) -> dict[str, str]:
        """The header the test hooks need (their secret, from server.json)."""
        return {"X-Orion-Test-Hooks": self.info.get("test_hooks_secret", "")}

    @staticmethod
    def _read_info(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _answers(info: dict[str, Any]) -> bool:
        try:
            response = requests.get(
                f"{info['url']}/api/versions/",
                headers={"Authorization": f"Token {info['token']}"},
                timeout=2,
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        """Stop the server with SIGTERM and wait (SIGKILL if it does not stop in time).

        Returns the exit code (None if it was not started).
        """
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        code = self._proc.returncode
        self._proc = None
        return code

    def kill(self) -> None:
        """Kill the server with SIGKILL (no clean shutdown) and wait for it."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self) -> ServerProcess:
        """Stop, then start again on the same data dir."""
        self.stop()
        return self.start()

    # -- test hooks --------------------------------------------------------------------------

    def _hook(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(
            method,
            f"{self.url}/api/v1/_test/{name}",
            json=body,
            headers={"Authorization": f"Token {self.token}", **self.hooks_headers},
            timeout=HOOK_TIMEOUT,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def counters(self) -> dict[str, Any]:
        """``{"total": int, "by_endpoint": {"METHOD /route/template/": int}}``."""
        return self._hook("GET", "counters/")

    def count(self, endpoint_key: str) -> int:
        """Requests to one endpoint ("GET /api/v1/storage/ls/") since the last reset."""
        return int(self.counters()["by_endpoint"].get(endpoint_key, 0))

    def reset_counters(self) -> None:
        """Zero the counters."""
        self._hook("POST", "counters/reset/")

    def set_faults(self, **kw: Any) -> None:
        """Add a fault: ``status``, ``drop``, ``stall``, ``count``, ``fraction``, ``seed``,
        ``path_prefix``, ``retry_after`` (see docs/wire.md)."""
        self._hook("POST", "faults/", kw)

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._hook("POST", "faults/", {"clear": True})

    def set_latency(self, ms: float) -> None:
        """Delay every later request by ``ms`` milliseconds."""
        self._hook("POST", "latency/", {"ms": ms})

    def stall_storage(self, method: str, seconds: float, count: int = 1) -> None:
        """Make the next ``count`` calls of storage method ``method`` block for ``seconds``."""
        self._hook("POST", "storage-stall/", {"method": method, "seconds": seconds, "count": count})

    def add_user(
        self,
        username: str,
        password: str | None = None,
        project: int | None = None,
        cost_accounting: bool = True,
    ) -> dict[str, Any]:
        """Create a user (``project`` None: in a new project): ``{"user", "token", "project"}``."""
        return self._hook(
            "POST",
            "users/",
            {
                "username": username,
                "password": password if password is not None else f"pw-{username}",
                "project": project,
                "cost_accounting": cost_accounting,
            },
        )


@pytest.fixture
def server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ServerProcess]]:
    """Call it (``test_hooks=True``) for a fresh, started server; all are stopped at teardown."""
    servers: list[ServerProcess] = []

    def factory(test_hooks: bool = True) -> ServerProcess:
        process = ServerProcess(tmp_path_factory.mktemp("orion-server"), test_hooks=test_hooks)
        servers.append(process)
        return process.start()

    yield factory
    for process in servers:
        process.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module."""
    process = ServerProcess(tmp_path_factory.mktemp("orion-server")).start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _fresh_server_hooks(request: pytest.FixtureRequest) -> None:
    """Before each test using ``server``: restart it if a test stopped it; clear hook state."""
    if "server" not in request.fixturenames:
        return
    process: ServerProcess = request.getfixturevalue("server")
    process.start()
    process.clear_faults()
    process.set_latency(0)
    process.reset_counters()


@pytest.fixture
def config_dir(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's client config folder (holds profiles.ini), set as ``ORIONFS_CONFIG_DIR``."""
    monkeypatch.setenv("ORIONFS_CONFIG_DIR", str(server.config_dir))
    return server.config_dir
