"""Helpers shared by the reliability, security and model tests (this module holds no tests).

``mounted(...)`` mounts through ``tests.support.mount.start_mount`` (``orionfs mount --foreground`` as
a real subprocess, its log in a file, its recovery folder under a temp ``XDG_DATA_HOME``) with the
whole namespace as root, optionally as another user, and always unmounts in ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.mount import MountedFS, start_mount

UNMOUNT_TIMEOUT = 30.0


def report(name: str, figures: dict[str, Any]) -> None:
    """Print measured figures, and keep them in ``$ORIONFS_REPORT_DIR/<name>.json`` if set."""
    folder = os.environ.get("ORIONFS_REPORT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        Path(folder, f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"\n[{name}] {json.dumps(figures)}")


def write_profile(
    config_dir: Path, name: str, url: str, username: str, token: str, project: int | None = None
) -> Path:
    """Save a profile into ``config_dir`` with orionfs.client.config (the code under test makes it 0600)."""
    from orionfs.client import config

    old = os.environ.get(config.CONFIG_DIR_ENV)
    os.environ[config.CONFIG_DIR_ENV] = str(config_dir)
    try:
        return config.save_profile(name, url, username, token, project=project)
    finally:
        if old is None:
            del os.environ[config.CONFIG_DIR_ENV]
        else:
            os.environ[config.CONFIG_DIR_ENV] = old


def orionfs_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "orionfs.cli", *args]


@dataclass
class Mount:
    """A live mount (``tests.support.mount.MountedFS``) plus the paths these tests use."""

    fs: MountedFS
    home: Path  # the user's My Data inside the mount
    team: Path  # the project's Team Data inside the mount

    @property
    def path(self) -> Path:
        return self.fs.path

    @property
    def proc(self) -> subprocess.Popen:
        return self.fs.proc

    @property
    def recovery_dir(self) -> Path:
        return self.fs.recovery_dir

    @property
    def env(self) -> dict[str, str]:
        return self.fs.env

    def log(self) -> str:
        return self.fs.log()

    def unmount(self, timeout: float = UNMOUNT_TIMEOUT) -> subprocess.CompletedProcess:
        """``orionfs unmount MOUNTPOINT`` (the user's command), not the fixture's fallback."""
        return subprocess.run(
            orionfs_cmd("unmount", str(self.path)),
            env=self.env,
            capture_output=True,
            timeout=timeout,
        )


@contextlib.contextmanager
def mounted(
    server: Any,
    mountpoint: Path,
    *args: str,
    token: str | None = None,
    username: str | None = None,
    project: int | None = None,
) -> Iterator[Mount]:
    """Mount the whole namespace of ``server`` (root ``/``) at ``mountpoint`` with
    ``orionfs mount --foreground`` and extra ``args``, as its sample user unless ``token`` /
    ``username`` / ``project`` name another (whose profile is then written to a folder of its own).
    Always unmounted afterwards."""
    mountpoint = Path(mountpoint)
    work = mountpoint.parent / f"{mountpoint.name}-state"
    username = username or server.username
    project = project if project is not None else server.project_id
    env_extra = {"TMPDIR": str(work)}
    if token is not None:
        config_dir = work / "config"
        write_profile(config_dir, "local", server.url, username, token, project)
        env_extra["ORIONFS_CONFIG_DIR"] = str(config_dir)
    fs = start_mount(server, mountpoint, work, *args, root="/", env_extra=env_extra)
    try:
        yield Mount(
            fs=fs,
            home=mountpoint / "project" / str(project) / "user" / username,
            team=mountpoint / "project" / str(project) / "team",
        )
    finally:
        if fs.proc.poll() is None or os.path.ismount(mountpoint):
            fs.unmount()


def mounts_of(path: Path) -> list[str]:
    """Lines of /proc/mounts for ``path`` (to check mount options)."""
    target = str(path)
    return [
        line for line in Path("/proc/mounts").read_text().splitlines() if line.split()[1] == target
    ]
