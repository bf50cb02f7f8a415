"""Security of the profiles file (issue 5, "Security"): it holds tokens, so it is kept like an ssh key.

- created 0600 in a 0700 folder, whatever the umask;
- a profiles file that group or others can read (or write) is refused, as ssh refuses a loose key,
  and the refusal never prints the token.
"""

from __future__ import annotations

import os
import stat

import pytest

from orionfs.client import config
from orionfs.exceptions import ProfileError

TOKEN = "s3cr3t-token-0123456789abcdef"


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    """A fresh, not yet existing config folder selected through ORIONFS_CONFIG_DIR."""
    folder = tmp_path / "cfg" / "orionfs"
    monkeypatch.setenv(config.CONFIG_DIR_ENV, str(folder))
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    return folder


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_profile_file_is_created_0600_in_a_0700_folder_even_with_umask_0(config_home):
    old = os.umask(0)  # the code must not rely on the caller's umask
    try:
        path = config.save_profile("local", "http://127.0.0.1:1", "alice", TOKEN)
    finally:
        os.umask(old)
    assert path.parent == config_home
    assert _mode(config_home) == 0o700
    assert _mode(path) == 0o600
    # No temp file with the token is left behind next to it.
    assert sorted(p.name for p in config_home.iterdir()) == [path.name]
    assert config.get_profile_config("local").token == TOKEN


def test_existing_loose_config_folder_is_tightened_to_0700(config_home):
    config_home.mkdir(parents=True, mode=0o755)
    os.chmod(config_home, 0o755)
    path = config.save_profile("local", "http://127.0.0.1:1", "alice", TOKEN)
    assert _mode(config_home) == 0o700
    assert _mode(path) == 0o600


@pytest.mark.parametrize("loose_mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o666])
def test_profile_file_readable_or_writable_by_others_is_refused_without_leaking_token(
    config_home, loose_mode
):
    path = config.save_profile("local", "http://127.0.0.1:1", "alice", TOKEN)
    os.chmod(path, loose_mode)
    with pytest.raises(ProfileError) as info:
        config.get_profile_config("local")
    message = str(info.value)
    assert "permissions" in message or "too open" in message
    assert TOKEN not in message
    assert TOKEN not in repr(info.value)
    with pytest.raises(ProfileError):
        config.list_profiles()


def test_saving_a_profile_repairs_a_loose_profile_file(config_home):
    path = config.save_profile("local", "http://127.0.0.1:1", "alice", TOKEN)
    os.chmod(path, 0o644)
    config.save_profile("other", "http://127.0.0.1:2", "bob", TOKEN + "b")
    assert _mode(path) == 0o600
    assert sorted(config.list_profiles()) == ["local", "other"]


def test_session_config_repr_never_shows_the_token(config_home):
    config.save_profile("local", "http://127.0.0.1:1", "alice", TOKEN)
    cfg = config.get_profile_config("local")
    assert TOKEN not in repr(cfg)
    assert TOKEN not in str(cfg)


# --- the profile `orionfs serve` writes for its sample user ---------------------------------------


def _serve_until_ready(tmp_path, config_folder):
    """Run ``orionfs serve`` on a free port until it has written server.json; then stop it."""
    import json
    import subprocess
    import sys
    import time

    data = tmp_path / "data"
    env = {**os.environ, config.CONFIG_DIR_ENV: str(config_folder)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orionfs.cli", "serve", "--data", str(data), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "orionfs serve exited"
            try:
                json.loads((data / "server.json").read_text())
                if (config_folder / "profiles.ini").exists():
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("orionfs serve did not write its profile")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return config_folder / "profiles.ini"


def test_orionfs_serve_writes_its_local_profile_0600_in_a_0700_folder(tmp_path):
    path = _serve_until_ready(tmp_path, tmp_path / "fresh-config")
    assert _mode(path.parent) == 0o700
    assert _mode(path) == 0o600
    assert _mode(tmp_path / "data" / "server.json") == 0o600  # it holds the token too


def test_orionfs_serve_tightens_a_loose_existing_config_folder(tmp_path):
    folder = tmp_path / "loose-config"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    path = _serve_until_ready(tmp_path, folder)
    assert _mode(path) == 0o600
    assert _mode(folder) == 0o700, (
        f"the folder holding the token file stays {_mode(folder):04o} "
        "(orionfs.client.config.save_profile makes it 0700)"
    )
