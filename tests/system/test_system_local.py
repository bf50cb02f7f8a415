"""``orionfs mount --local DATA_DIR``: one server per data folder, a profile per data folder.

- a second ``--local`` mount of a data folder that a mount serves is refused in one line;
- each data folder's server writes its own profile (``local-<name>-<hash>``), so stopping one
  folder's mount never leaves another mount's profile pointing at a dead server;
- the mount's source names that profile.
"""

from __future__ import annotations

import configparser
import os

import pytest
import requests

from orionfs.daemon.local_server import local_profile_name
from orionfs.daemon.process import read_state, wait_for_exit
from orionfs.daemon.state import mount_at
from tests.support.system import ORIONFS, cleanup_mount, run

pytestmark = pytest.mark.fuse


def _profiles(config_dir) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config_dir / "profiles.ini")
    return parser


def _answers(url: str, token: str) -> bool:
    try:
        return requests.get(
            f"{url}/api/versions/", headers={"Authorization": f"Token {token}"}, timeout=5
        ).ok
    except requests.RequestException:
        return False


def test_one_server_per_data_folder_and_a_profile_each(tmp_path):
    config = tmp_path / "config"
    env = {**os.environ, "ORIONFS_CONFIG_DIR": str(config)}
    data_a, data_b = tmp_path / "a" / "data", tmp_path / "b" / "data"
    mounts = {name: tmp_path / f"mnt-{name}" for name in ("a", "b", "a2")}
    for path in mounts.values():
        path.mkdir()
    pids = {}
    try:
        for name, data in (("a", data_a), ("b", data_b)):
            result = run(ORIONFS, "mount", "--local", data, mounts[name], env=env)
            assert result.returncode == 0, result.stderr
            pids[name] = read_state(str(mounts[name]))["pid"]
        profile_a, profile_b = local_profile_name(data_a), local_profile_name(data_b)
        assert profile_a != profile_b
        assert mount_at(str(mounts["a"])).source == f"orion:{profile_a}:/"

        second = run(ORIONFS, "mount", "--local", data_a, mounts["a2"], env=env)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "already served by another orionfs mount" in lines[0]
        assert mount_at(str(mounts["a2"])) is None

        assert run(ORIONFS, "unmount", mounts["b"], env=env).returncode == 0
        assert wait_for_exit(pids["b"], 15)
        profiles = _profiles(config)
        assert _answers(profiles[profile_a]["url"], profiles[profile_a]["token"])
        assert not _answers(profiles[profile_b]["url"], profiles[profile_b]["token"])
        assert "local" not in profiles  # no shared profile that one of them could repoint
        assert "README.txt" in os.listdir(mounts["a"] / "project" / "1" / "user" / "scientist")
    finally:
        for name, path in mounts.items():
            cleanup_mount(path, pids.get(name))
