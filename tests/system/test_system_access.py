"""Other local users, ownership and modes (the security item of the fidelity issue).

``--allow-other`` (or ``-o allow_other``) always comes with ``default_permissions``: the kernel
checks the modes the mount shows, so another uid gets only what the modes give it, never the
mounter's token. ``--umask`` never makes files executable; ``--uid``/``--gid`` set the owner.
The other user is ``nobody`` (``setpriv --reuid=65534 --regid=65534 --clear-groups``).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from orionfs.daemon.state import mount_at
from tests.support.mount import api_exists, start_mount
from tests.support.system import OTHER_UID, as_other

pytestmark = pytest.mark.fuse


@pytest.fixture
def mount_factory(server, tmp_path):
    """``mount_factory(server, *args)``: a mount at a mount point the other user can reach
    (pytest's tmp_path is 0700), unmounted at teardown."""
    public = Path(tempfile.mkdtemp(prefix="orionfs-system-"))
    os.chmod(public, 0o755)
    made = []

    def factory(server, *args):
        mount = start_mount(server, public / f"mnt{len(made)}", tmp_path / f"w{len(made)}", *args)
        made.append(mount)
        return mount

    try:
        yield factory
    finally:
        for mount in made:
            mount.unmount()
        shutil.rmtree(public, ignore_errors=True)


def test_allow_other_with_default_modes_lets_others_read_but_not_change(
    mount_factory, server, session
):
    mount = mount_factory(server, "-o", "allow_other")
    assert "default_permissions" in mount_at(str(mount.path)).options
    target = mount.unique("mine")
    target.write_bytes(b"the mounter's data")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644

    assert as_other("cat", target).stdout == "the mounter's data"
    for cmd in (
        ["sh", "-c", f"echo x >> '{target}'"],
        ["rm", "-f", str(target)],
        ["mv", str(target), str(mount.path / "moved")],
        ["touch", str(mount.path / "planted")],
        ["mkdir", str(mount.path / "planted-dir")],
    ):
        result = as_other(*cmd)
        assert result.returncode != 0, cmd
        assert "Permission denied" in result.stderr, (cmd, result.stderr)
    assert target.read_bytes() == b"the mounter's data"
    assert api_exists(session, mount.orion(target.name))
    assert not api_exists(session, mount.orion("planted"))


def test_umask_027_shuts_others_out_and_never_makes_files_executable(mount_factory, server):
    mount = mount_factory(server, "--allow-other", "--umask", "027")
    target = mount.unique("private")
    target.write_bytes(b"secret")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert stat.S_IMODE(mount.path.stat().st_mode) == 0o750
    folder = mount.unique("dir")
    folder.mkdir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert not os.access(target, os.X_OK)
    result = as_other("cat", target)
    assert result.returncode != 0 and "Permission denied" in result.stderr
    assert as_other("ls", mount.path).returncode != 0


def test_uid_gid_and_modes_make_the_other_user_the_owner(mount_factory, server):
    mount = mount_factory(
        server, "--allow-other", "--uid", str(OTHER_UID), "--gid", str(OTHER_UID),
        "--file-mode", "0600", "--dir-mode", "0700",
    )  # fmt: skip
    target = mount.unique("theirs")
    target.write_bytes(b"for nobody")
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (OTHER_UID, OTHER_UID, 0o600)
    assert as_other("cat", target).stdout == "for nobody"
    assert as_other("sh", "-c", f"echo more >> '{target}'").returncode == 0
    assert target.read_bytes() == b"for nobody" + b"more\n"
    readme = mount.path / "README.txt"
    assert stat.S_IMODE(readme.stat().st_mode) == 0o600


def test_chown_to_others_is_refused_for_a_user_and_accepted_and_ignored_for_root(
    mount_factory, server
):
    mount = mount_factory(server, "--allow-other", "--uid", str(OTHER_UID), "--gid", str(OTHER_UID))
    target = mount.unique("owned")
    target.write_bytes(b"x")
    result = as_other("chown", "0", target)  # the owner, not root: the kernel refuses
    assert result.returncode != 0 and "not permitted" in result.stderr, result.stderr
    os.chown(target, 12345, 12345)  # root: accepted (sudo tar x, sudo rsync -a), not kept
    assert (target.stat().st_uid, target.stat().st_gid) == (OTHER_UID, OTHER_UID)
