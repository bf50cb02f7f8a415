"""Fixtures for real FUSE mounts: ``mount_factory`` and ``mount``.

A mount is ``orionfs mount --foreground`` run as a subprocess (so the test process never serves FUSE
requests itself, and a crash of one cannot hang the other), with the server's ``local`` profile
(``ORIONFS_CONFIG_DIR`` = ``server.config_dir``), its log in a file, and its recovery and staging
folders in the test's temp dir. The fixture waits for ``os.path.ismount`` with a bounded wait and
always unmounts in teardown (orionfs.daemon.process.unmount_and_wait: ``fusermount3 -u``, falling
back to ``-uz``), then waits for the process.
By default the mount root is the sample user's My Data, so ``mount.path / "x"`` is
``/project/<pid>/user/<username>/x`` in Orion (``mount.orion("x")``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orionfs.daemon.process import unmount_and_wait, wait_until_mounted

#: Seconds a mount may take to become ready (imports + credentials check + FUSE init).
MOUNT_READY_TIMEOUT = 30.0
#: Seconds the mount process may take to exit after the unmount.
MOUNT_EXIT_TIMEOUT = 15.0


def fuse_available() -> str | None:
    """None if real mounts can run here, else why not."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return "no fusermount3"
    return None


def my_data(server: Any) -> str:
    """The Orion path of the server's sample user's My Data."""
    return f"/project/{server.project_id}/user/{server.username}"


@dataclass
class MountedFS:
    """A live mount made by the fixtures."""

    path: Path
    root: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    recovery_dir: Path
    env: dict[str, str]
    args: list[str] = field(default_factory=list)

    def orion(self, rel: str | os.PathLike[str] = "") -> str:
        """The Orion path of ``rel`` (a path relative to the mount point)."""
        rel = str(rel).strip("/")
        if not rel:
            return self.root
        return self.root.rstrip("/") + "/" + rel

    def unique(self, prefix: str = "t") -> Path:
        """A fresh, not yet existing path directly under the mount point."""
        return self.path / f"{prefix}-{uuid.uuid4().hex[:8]}"

    def log(self) -> str:
        """The mount process's log so far."""
        return self.log_path.read_text(errors="replace")

    def unmount(self) -> int | None:
        """Unmount and wait for the process; returns its exit status (None if it had to be
        stopped)."""
        return unmount_and_wait(self.path, self.proc, MOUNT_EXIT_TIMEOUT)


def start_mount(
    server: Any,
    mountpoint: Path,
    work: Path,
    *args: str,
    root: str | None = None,
    profile: str = "local",
    env_extra: dict[str, str] | None = None,
) -> MountedFS:
    """Run ``orionfs mount --foreground`` and wait until it is mounted (AssertionError otherwise)."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    root = root if root is not None else my_data(server)
    env = {
        **os.environ,
        "ORIONFS_CONFIG_DIR": str(server.config_dir),
        "XDG_DATA_HOME": str(work / "xdg-data"),
        "XDG_CACHE_HOME": str(work / "xdg-cache"),  # the data cache: per test, not in ~/.cache
        **(env_extra or {}),
    }
    env.pop("ORION_PROFILE", None)
    log_path = work / "mount.log"
    argv = [
        sys.executable,
        "-m",
        "orionfs.cli",
        "-v",
        "mount",
        str(mountpoint),
        "--foreground",
        "--profile",
        profile,
        "--root",
        root,
        "--staging-dir",
        str(work / "staging"),
        *args,
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    mounted = MountedFS(
        path=mountpoint,
        root=root,
        proc=proc,
        log_path=log_path,
        recovery_dir=work / "xdg-data" / "orionfs" / "recovery",
        env=env,
        args=list(args),
    )
    if wait_until_mounted(mountpoint, proc, MOUNT_READY_TIMEOUT):
        return mounted
    if proc.poll() is not None:
        raise AssertionError(f"orionfs mount exited with {proc.returncode}:\n{mounted.log()}")
    mounted.unmount()
    raise AssertionError(f"mount not ready after {MOUNT_READY_TIMEOUT}s:\n{mounted.log()}")


@pytest.fixture
def mount_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MountedFS]]:
    """``mount_factory(server, *extra_args, root=None, profile="local")`` -> MountedFS; every mount
    made is unmounted at teardown."""
    reason = fuse_available()
    if reason:
        pytest.fail(f"real mounts cannot run here: {reason}")
    made: list[MountedFS] = []

    def factory(server: Any, *args: str, **kwargs: Any) -> MountedFS:
        base = tmp_path_factory.mktemp("mount")
        mounted = start_mount(server, base / "mnt", base / "state", *args, **kwargs)
        made.append(mounted)
        return mounted

    try:
        yield factory
    finally:
        for mounted in reversed(made):
            with contextlib.suppress(Exception):
                mounted.unmount()


@pytest.fixture(scope="module")
def mount(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MountedFS]:
    """The module's ``server`` mounted with default options (root: the sample user's My Data)."""
    reason = fuse_available()
    if reason:
        pytest.fail(f"real mounts cannot run here: {reason}")
    base = tmp_path_factory.mktemp("mount")
    mounted = start_mount(server, base / "mnt", base / "state")
    try:
        yield mounted
    finally:
        mounted.unmount()


# -- helpers for the FUSE tests (plain functions, importable from tests.support.mount) ---------------


def sh(
    *cmd: str | os.PathLike[str], check: bool = True, timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a real command; raise with its output if it fails (``check``)."""
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} -> {result.returncode}\nstdout: {result.stdout[-2000:]}\n"
            f"stderr: {result.stderr[-2000:]}"
        )
    return result


def api_entry(session: Any, orion_path: str) -> dict[str, Any]:
    """The Entry the API gives for an Orion path (``stat_path``)."""
    return session.stat_path(orion_path)


def api_bytes(session: Any, orion_path: str) -> bytes:
    """The content of the File/Dataset at an Orion path, downloaded through the API."""
    import io

    from orionfs.client.types import resource_from_entry

    entry = session.stat_path(orion_path)
    buffer = io.BytesIO()
    session.download_file(resource_from_entry(entry, session), buffer)
    return buffer.getvalue()


def api_names(session: Any, orion_path: str) -> set[str]:
    """The names the API lists in a folder."""
    return {e["name"] for e in session.ls_path(orion_path)["results"]}


def api_exists(session: Any, orion_path: str) -> bool:
    """Whether ``stat_path`` finds the Orion path."""
    from orionfs.exceptions import NotFoundResponse

    try:
        session.stat_path(orion_path)
    except NotFoundResponse:
        return False
    return True
