"""The server as a process: server.json, the client profile, restarts, SIGKILL and SIGTERM."""

from __future__ import annotations

import configparser
import json
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from tests.support.server import ServerProcess
from tests.support.server_api import Api

Factory = Callable[..., ServerProcess]


def _api(server: ServerProcess) -> Api:
    return Api(server.url, server.token, server.username, server.project_id)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_server_json_is_private_and_describes_the_server(server_factory: Factory) -> None:
    server = server_factory()
    path = server.data_dir / "server.json"
    info = json.loads(path.read_text())
    assert _mode(path) == 0o600
    assert {"url", "pid", "username", "token", "project"} <= set(info)
    assert info["pid"] == server.pid and info["username"] == "scientist" and info["project"] == 1
    assert info["url"].startswith("http://127.0.0.1:")


def test_profile_is_written_private_and_keeps_other_sections(server_factory: Factory) -> None:
    server = server_factory()
    path = server.config_dir / "profiles.ini"
    assert _mode(path) == 0o600 and _mode(server.config_dir) == 0o700
    profiles = configparser.ConfigParser(interpolation=None)
    profiles.read(path)
    assert dict(profiles["local"]) == {
        "url": server.url,
        "username": "scientist",
        "token": server.token,
        "project": "1",
    }
    profiles["other"] = {"url": "https://orion.example", "username": "x", "token": "t"}
    with open(path, "w") as handle:
        profiles.write(handle)
    server.restart()
    again = configparser.ConfigParser(interpolation=None)
    again.read(path)
    assert again["other"]["url"] == "https://orion.example"
    assert again["local"]["url"] == server.url


def test_data_and_token_survive_a_restart(server_factory: Factory) -> None:
    server = server_factory()
    api = _api(server)
    token = server.token
    file = api.upload_ok(api.my_data, "kept.txt", b"still here")
    api.mkdir(f"{api.my_data}/kept/deep")
    server.restart()
    assert server.token == token
    api = _api(server)
    assert api.download(file["id"]).content == b"still here"
    assert api.names(f"{api.my_data}/kept") == ["deep"]


def test_sigterm_stops_the_server_cleanly(server_factory: Factory) -> None:
    server = server_factory()
    assert server.stop() == 0


def _slow_body(stop: threading.Event) -> Iterator[bytes]:
    boundary = "slowboundary"
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\npartial.bin\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p"\r\n\r\n'
    ).encode()
    while not stop.is_set():
        yield b"x" * 65536
        time.sleep(0.01)


def test_sigkill_mid_upload_leaves_a_sound_db_and_no_partial_file(
    server_factory: Factory,
) -> None:
    server = server_factory()
    api = _api(server)
    stop = threading.Event()
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            api.post(
                "/api/v3/storage/files/",
                data=_slow_body(stop),
                headers={"Content-Type": "multipart/form-data; boundary=slowboundary"},
            )
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    tmp_dir = server.data_dir / "tmp"
    deadline = time.monotonic() + 10
    while not any(tmp_dir.glob("upload-*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(tmp_dir.glob("upload-*.part")), "the upload never started"
    server.kill()
    stop.set()
    thread.join(10)
    assert errors, "the upload should have failed"
    with sqlite3.connect(server.data_dir / "orion.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    server.start()
    api = _api(server)
    assert "partial.bin" not in api.names(api.my_data)
    assert not any(tmp_dir.glob("upload-*.part"))
    assert api.names(api.my_data) == [
        "README.txt",
        "ligands",
        "molecules",
        "results",
        "trajectories",
    ]


def _private_modes(data_dir: Path) -> dict[str, int]:
    """Mode of the data folder, its sub folders and every file whose mode is not private."""
    modes = {".": _mode(data_dir)}
    for path in data_dir.rglob("*"):
        modes[str(path.relative_to(data_dir))] = _mode(path)
    return modes


def test_database_files_are_private_even_in_a_pre_existing_open_data_folder(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path)
    server.data_dir.mkdir(parents=True)
    server.data_dir.chmod(0o755)
    try:
        server.start()
        _api(server).upload_ok(f"/project/{server.project_id}/user/{server.username}", "p", b"p")
        modes = _private_modes(server.data_dir)
        for name in ("orion.sqlite3", "orion.sqlite3-wal", "orion.sqlite3-shm"):
            assert modes.pop(name) == 0o600, name
        assert {name for name, mode in modes.items() if mode & 0o077} == set(), modes
        assert modes["."] == 0o700
        server.stop()
        # Folders and the database left open by an older version or by hand: tightened at start.
        opened = [server.data_dir, server.data_dir / "blobs", server.data_dir / "tmp"]
        opened += server.data_dir.glob("orion.sqlite3*")
        for path in opened:
            path.chmod(0o755 if path.is_dir() else 0o644)
        server.start()
        modes = _private_modes(server.data_dir)
        assert {name for name, mode in modes.items() if mode & 0o077} == set(), modes
        assert modes["orion.sqlite3"] == 0o600 and modes["."] == 0o700
        assert "making it 0700" in server.log_tail(200)
    finally:
        server.stop()


def test_non_loopback_hosts_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orionfs.server", "serve", "--data", str(tmp_path / "d"),
         "--host", "0.0.0.0", "--port", "0", "--no-profile"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr
    assert not (tmp_path / "d" / "server.json").exists()
