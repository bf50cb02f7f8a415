"""orionfs through mount(8) and fstab: the ``mount.orionfs`` helper, linked as
``/sbin/mount.orionfs`` and ``/sbin/mount.fuse.orionfs`` by ``mount.orionfs --install``.

- ``mount -t fuse.orionfs PROFILE:PATH MOUNTPOINT -o OPTIONS`` mounts (options as ``-o``:
  ``config_dir``, ``cache_ttl`` with a unit, ``uid``, libfuse's own), and ``umount`` unmounts and
  ends the mount process; mount and df show ``orion:PROFILE:PATH``, type ``fuse.orionfs``;
- ``mount -T FSTAB -a`` mounts the fstab lines of type fuse.orionfs, passes over ``noauto`` ones, and
  accepts ``_netdev``, ``nofail``, ``user`` and ``x-systemd.automount``;
- libfuse's generic helper form ``orionfs SOURCE MOUNTPOINT -o ...`` (``mount.fuse3 'orionfs#...'``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orionfs.daemon.process import process_alive, wait_for_exit
from orionfs.daemon.state import mount_at
from tests.support.mount import my_data
from tests.support.system import MOUNT_HELPER, cleanup_mount, mount_pid, run, wait_for

pytestmark = pytest.mark.fuse

HELPERS = (Path("/sbin/mount.orionfs"), Path("/sbin/mount.fuse.orionfs"))


@pytest.fixture(scope="module")
def helper_links() -> Iterator[None]:
    """The one-time install (``mount.orionfs --install``), undone afterwards where it was not
    there before."""
    before = {link: os.readlink(link) if link.is_symlink() else None for link in HELPERS}
    result = run(MOUNT_HELPER, "--install")
    assert result.returncode == 0, result.stderr
    for link in HELPERS:
        assert link.resolve() == Path(MOUNT_HELPER).resolve()
    try:
        yield
    finally:
        for link, target in before.items():
            link.unlink(missing_ok=True)
            if target is not None:
                link.symlink_to(target)


def _mounted_by_helper(mountpoint: Path) -> int:
    entry = wait_for(lambda: mount_at(str(mountpoint)), what="the mount")
    assert entry.fstype == "fuse.orionfs"
    pid = mount_pid(str(mountpoint))
    assert pid and process_alive(pid)
    return pid


def test_mount_t_fuse_orionfs_and_umount(server, helper_links, tmp_path):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    source = f"local:{my_data(server)}"
    options = f"config_dir={server.config_dir},cache_ttl=2s,uid=4321,gid=4321,nosuid"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}  # as at boot: no orionfs on PATH
    pid = None
    try:
        result = run("mount", "-t", "fuse.orionfs", source, mountpoint, "-o", options, env=env)
        assert result.returncode == 0, result.stderr
        pid = _mounted_by_helper(mountpoint)
        entry = mount_at(str(mountpoint))
        assert entry.source == f"orion:{source}"
        assert "nosuid" in run("findmnt", "-n", "-o", "OPTIONS", mountpoint).stdout
        df = run("df", "--output=source,target", mountpoint).stdout.splitlines()[-1].split()
        assert df == [f"orion:{source}", str(mountpoint)]
        info = os.stat(mountpoint / "README.txt")
        assert (info.st_uid, info.st_gid) == (4321, 4321)

        result = run("umount", mountpoint)
        assert result.returncode == 0, result.stderr
        assert mount_at(str(mountpoint)) is None
        assert wait_for_exit(pid, 15)
    finally:
        cleanup_mount(mountpoint, pid)


def test_fstab_lines_mount_with_mount_a_and_noauto_ones_are_left(server, helper_links, tmp_path):
    auto, manual = tmp_path / "auto", tmp_path / "manual"
    auto.mkdir()
    manual.mkdir()
    fstab = tmp_path / "fstab"
    common = f"config_dir={server.config_dir},cache_ttl=1m"
    fstab.write_text(
        f"local:{my_data(server)} {auto} fuse.orionfs "
        f"{common},_netdev,nofail,user,x-systemd.automount,x-systemd.mount-timeout=30 0 0\n"
        f"local:/ {manual} fuse.orionfs {common},noauto 0 0\n"
    )
    pids: list[int | None] = []
    try:
        result = run("mount", "-T", fstab, "-a", "-t", "fuse.orionfs")
        assert result.returncode == 0, result.stderr
        pids.append(_mounted_by_helper(auto))
        assert mount_at(str(manual)) is None
        assert "README.txt" in os.listdir(auto)

        result = run("mount", "-T", fstab, str(manual))  # a noauto line, mounted by name
        assert result.returncode == 0, result.stderr
        pids.append(_mounted_by_helper(manual))
        assert mount_at(str(manual)).source == "orion:local:/"
        assert "project" in os.listdir(manual)

        for mountpoint, pid in zip((auto, manual), pids, strict=True):
            assert run("umount", mountpoint).returncode == 0
            assert wait_for_exit(pid, 15)
    finally:
        cleanup_mount(auto, pids[0] if pids else None)
        cleanup_mount(manual, pids[1] if len(pids) > 1 else None)


def test_libfuse_generic_helper_form(server, tmp_path):
    """What ``mount.fuse3 'orionfs#local:/path' MOUNTPOINT -o OPTIONS`` runs (orionfs on PATH)."""
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    pid = None
    try:
        result = run(
            "mount.fuse3",
            f"orionfs#local:{my_data(server)}",
            mountpoint,
            "-o",
            f"config_dir={server.config_dir}",
            env={**os.environ, "PATH": f"{Path(MOUNT_HELPER).parent}:/usr/bin:/bin:/sbin"},
        )
        assert result.returncode == 0, result.stderr
        pid = _mounted_by_helper(mountpoint)
        assert "README.txt" in os.listdir(mountpoint)
    finally:
        cleanup_mount(mountpoint, pid)
