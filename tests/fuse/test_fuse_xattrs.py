"""Tags and links as extended attributes, with getfattr/setfattr, checked through the API."""

from __future__ import annotations

import errno
import json
import os

import pytest

from orionfs.client.types import resource_from_entry
from tests.support.mount import api_entry, sh

pytestmark = pytest.mark.fuse


@pytest.fixture
def tagged(mount, session):
    folder = mount.unique("xattr")
    folder.mkdir()
    (folder / "f.txt").write_bytes(b"tag me")
    orion = mount.orion(f"{folder.name}/f.txt")
    return folder / "f.txt", orion


def _api_tags(session, orion):
    resource = resource_from_entry(api_entry(session, orion), session)
    return {tag["name"] for tag in session.list_tags(resource)}


def test_getfattr_dump_lists_the_orion_attributes(mount, tagged, session):
    path, orion = tagged
    out = sh("getfattr", "-d", path).stdout
    entry = api_entry(session, orion)
    assert f'user.orion.id="{entry["id"]}"' in out
    assert 'user.orion.type="file"' in out
    assert "user.orion.link=" in out and "user.orion.tags" in out and "user.orion.systemtags" in out


def test_setfattr_one_tag_round_trips_through_the_api(mount, tagged, session):
    path, orion = tagged
    sh("setfattr", "-n", "user.orion.tag.Job 7", path)
    assert "Job 7" in _api_tags(session, orion)
    assert "user.orion.tag.Job 7" in sh("getfattr", "-d", path).stdout
    sh("setfattr", "-x", "user.orion.tag.Job 7", path)
    assert "Job 7" not in _api_tags(session, orion)
    with pytest.raises(OSError) as info:
        os.getxattr(path, "user.orion.tag.Job 7")
    assert info.value.errno == errno.ENODATA


def test_tags_xattr_replaces_the_set_and_reads_back(mount, tagged, session):
    path, orion = tagged
    sh("setfattr", "-n", "user.orion.tags", "-v", "alpha\nbeta", path)
    assert _api_tags(session, orion) == {"alpha", "beta"}
    assert set(os.getxattr(path, "user.orion.tags").decode().splitlines()) == {"alpha", "beta"}
    os.setxattr(path, "user.orion.tags", b"beta\ngamma\n")
    assert _api_tags(session, orion) == {"beta", "gamma"}
    os.removexattr(path, "user.orion.tags")
    assert _api_tags(session, orion) == set()


def test_tags_set_through_the_api_show_as_xattrs(mount, session):
    # the sample README carries the tag "sample"
    assert (
        "sample" in os.getxattr(mount.path / "README.txt", "user.orion.tags").decode().splitlines()
    )
    assert os.getxattr(mount.path / "ligands", "user.orion.systemtags").decode().splitlines() == [
        "3D"
    ]


def test_link_xattr_resolves_through_get_link(mount, tagged, session):
    path, orion = tagged
    link = json.loads(os.getxattr(path, "user.orion.link"))
    resource = session.get_link(link).get()
    assert resource.id == api_entry(session, orion)["id"]
    assert resource.resource_type == "file"


def test_read_only_unknown_and_local_namespaces(mount, tagged, server):
    path, _ = tagged
    os.stat(path)
    server.reset_counters()
    for name in ("security.capability", "security.selinux", "system.posix_acl_access"):
        with pytest.raises(OSError) as info:
            os.getxattr(path, name)
        assert info.value.errno == errno.EOPNOTSUPP  # ls and libacl stop asking the device
    assert server.counters()["total"] == 0  # answered without a request
    with pytest.raises(OSError) as info:
        os.getxattr(path, "user.unknown")
    assert info.value.errno == errno.ENODATA
    for name in ("user.orion.id", "user.orion.link", "user.orion.type", "user.orion.systemtags"):
        with pytest.raises(OSError) as info:
            os.setxattr(path, name, b"1")
        assert info.value.errno == errno.EPERM


def test_tag_writes_on_folders_are_enotsup(mount, tagged):
    path, _ = tagged
    with pytest.raises(OSError) as info:
        os.setxattr(path.parent, "user.orion.tag.x", b"")
    assert info.value.errno == errno.ENOTSUP
    with pytest.raises(OSError) as info:
        os.getxattr(path.parent, "user.orion.tags")
    assert info.value.errno == errno.ENODATA


def test_huge_values_are_refused(mount, tagged):
    path, _ = tagged
    with pytest.raises(OSError) as info:
        os.setxattr(path, "user.orion.tags", b"x" * (70 * 1024))
    assert info.value.errno in (errno.E2BIG, errno.ERANGE)
    with pytest.raises(OSError) as info:
        os.setxattr(path, "user.orion.tag." + "t" * 200, b"")
    assert info.value.errno in (errno.EINVAL, errno.ERANGE, errno.E2BIG)


def test_a_tag_set_while_the_file_is_open_shows_at_once(mount, tagged, session):
    path, orion = tagged
    with open(path, "r+b") as handle:
        handle.write(b"T")
        handle.flush()
        os.setxattr(path, "user.orion.tag.open", b"")
        assert os.getxattr(path, "user.orion.tag.open") == b""
        assert "open" in os.getxattr(path, "user.orion.tags").decode().splitlines()
        assert os.fstat(handle.fileno()).st_size == len(b"tag me")
    assert "open" in _api_tags(session, orion)
