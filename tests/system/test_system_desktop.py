"""The desktop's trash on a mount (GIO, so Nautilus and ``gio trash``).

Deleting through the mount is already Orion's soft delete, and Orion's API has no trash to restore
from; so there is no desktop trash on a mount (orionfs.fs.trash): at the mount root, ``.Trash-<uid>``
is an empty read-only marker file and ``.Trash`` cannot be made. GIO then reports
``access::can-trash`` FALSE (Nautilus offers a plain delete), ``gio trash`` fails at once without
creating anything in Orion, and ``gio remove`` deletes (softly, in Orion).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

import pytest

from tests.support.mount import api_exists, api_names
from tests.support.system import run

pytestmark = pytest.mark.fuse


@pytest.fixture(autouse=True)
def _gio() -> None:
    if shutil.which("gio") is None:
        pytest.fail("no gio: scripts/bootstrap.sh installs it (libglib2.0-bin)")


def gio_attribute(path, name: str) -> str:
    """One attribute of ``gio info -a NAME PATH``."""
    result = run("gio", "info", "-a", name, path)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith(name))
    return line.split(":", 3)[-1].strip()


@pytest.mark.parametrize("where", ["whole namespace", "My Data"])
def test_gio_offers_no_trash_and_trash_creates_nothing_in_orion(
    where, mount_factory, server, session
):
    root = "/" if where == "whole namespace" else None
    mount = mount_factory(server, root=root)
    home = mount.path if root is None else mount.path / mount_path_of_my_data(server)
    api_home = f"/project/{server.project_id}/user/{server.username}"
    target = home / f"trash-me-{os.getpid()}.txt"
    target.write_bytes(b"x")

    assert gio_attribute(target, "access::can-trash") == "FALSE"
    assert gio_attribute(target, "access::can-delete") == "TRUE"
    result = run("gio", "trash", target)
    assert result.returncode != 0
    assert "trash" in result.stderr.lower()
    assert target.exists()
    for folder in ("/", api_home):
        assert not {n for n in api_names(session, folder) if n.startswith(".Trash")}, folder

    assert run("gio", "remove", target).returncode == 0
    assert not target.exists()
    assert not api_exists(session, f"{api_home}/{target.name}")


def mount_path_of_my_data(server) -> str:
    return f"project/{server.project_id}/user/{server.username}"


def test_trash_names_at_the_mount_root(mount_factory, server, session):
    mount = mount_factory(server)  # My Data at the mount root
    marker = mount.path / f".Trash-{os.getuid()}"
    info = os.lstat(marker)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o444 and info.st_size == 0
    assert marker.name not in os.listdir(mount.path)
    for make, path, code in (
        (os.mkdir, marker, errno.EEXIST),
        (os.mkdir, mount.path / ".Trash", errno.EPERM),
        (os.unlink, marker, errno.EPERM),
    ):
        with pytest.raises(OSError) as refused:
            make(path)
        assert refused.value.errno == code, (make, path)
    with pytest.raises(PermissionError):
        open(marker, "w").close()  # noqa: SIM115
    source = mount.unique("f")
    source.write_bytes(b"y")
    with pytest.raises(PermissionError):
        os.rename(source, mount.path / ".Trash-1000")
    assert not {n for n in api_names(session, mount.orion()) if n.startswith(".Trash")}
    # Below the root, such names are ordinary.
    folder = mount.unique("d")
    folder.mkdir()
    (folder / ".Trash-1000").mkdir()
