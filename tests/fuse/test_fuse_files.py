"""The mount with real commands: reading, copying, moving, removing; each result checked via the API.

Every test works in a fresh folder of the sample user's My Data (the ``mount`` fixture's root).
"""

from __future__ import annotations

import errno
import os
import stat

import pytest

from tests.support.mount import api_bytes, api_entry, api_exists, api_names, my_data, sh

pytestmark = pytest.mark.fuse


@pytest.fixture
def work(mount, session):
    """A fresh folder made through the mount, and its Orion path."""
    path = mount.unique("files")
    path.mkdir()  # through the mount: the cached root listing learns of it at once
    return path, mount.orion(path.name)


def test_ls_find_stat_cat_show_what_the_api_lists(mount, session):
    listing = sh("ls", "-la", mount.path).stdout
    for name in api_names(session, mount.root):
        assert name in listing
    found = sh("find", mount.path).stdout.splitlines()
    assert str(mount.path / "molecules" / "aspirin.smi") in found
    assert str(mount.path / "results" / "run1" / "scores.csv") in found
    st = os.stat(mount.path / "README.txt")
    entry = api_entry(session, mount.orion("README.txt"))
    assert st.st_size == entry["size"]
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o644
    assert st.st_blksize >= 256 * 1024
    assert st.st_blocks * 512 >= st.st_size
    assert sh("cat", mount.path / "README.txt").stdout.encode() == api_bytes(
        session, mount.orion("README.txt")
    )
    assert stat.S_ISDIR(os.stat(mount.path / "molecules").st_mode)


@pytest.mark.parametrize(
    "size", [0, 1, (1 << 20) + 1, 64 << 20], ids=["0B", "1B", "1MiB+1", "64MiB"]
)
def test_cp_in_and_out_is_byte_identical(mount, session, work, tmp_path, size):
    folder, orion = work
    data = os.urandom(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    sh("cp", src, folder / "copy.bin")
    assert api_entry(session, f"{orion}/copy.bin")["size"] == size
    assert api_bytes(session, f"{orion}/copy.bin") == data
    out = tmp_path / "out.bin"
    sh("cp", folder / "copy.bin", out)
    assert out.read_bytes() == data
    assert sh("cmp", src, folder / "copy.bin", check=False).returncode == 0


def test_mv_file_renames_it_in_orion(mount, session, work):
    folder, orion = work
    (folder / "a.txt").write_bytes(b"alpha")
    file_id = api_entry(session, f"{orion}/a.txt")["id"]
    sh("mv", folder / "a.txt", folder / "b.txt")
    assert not (folder / "a.txt").exists()
    assert (folder / "b.txt").read_bytes() == b"alpha"
    assert not api_exists(session, f"{orion}/a.txt")
    moved = api_entry(session, f"{orion}/b.txt")
    assert moved["id"] == file_id  # a move, not a copy


def test_mv_folder_moves_its_content(mount, session, work):
    folder, orion = work
    sh("mkdir", "-p", folder / "src" / "inner")
    (folder / "src" / "inner" / "f.txt").write_bytes(b"inside")
    sh("mkdir", folder / "dest")
    sh("mv", folder / "src", folder / "dest" / "moved")
    assert (folder / "dest" / "moved" / "inner" / "f.txt").read_bytes() == b"inside"
    assert not (folder / "src").exists()
    assert api_bytes(session, f"{orion}/dest/moved/inner/f.txt") == b"inside"
    assert not api_exists(session, f"{orion}/src")


def test_mv_over_an_existing_file_replaces_it(mount, session, work):
    folder, orion = work
    (folder / "old.txt").write_bytes(b"old content")
    (folder / "new.txt").write_bytes(b"new content")
    sh("mv", "-f", folder / "new.txt", folder / "old.txt")
    assert (folder / "old.txt").read_bytes() == b"new content"
    assert sorted(os.listdir(folder)) == ["old.txt"]
    assert api_names(session, orion) == {"old.txt"}
    assert api_bytes(session, f"{orion}/old.txt") == b"new content"


def test_rm_deletes_in_orion(mount, session, work):
    folder, orion = work
    (folder / "gone.txt").write_bytes(b"x")
    assert api_exists(session, f"{orion}/gone.txt")
    sh("rm", folder / "gone.txt")
    assert not (folder / "gone.txt").exists()
    assert not api_exists(session, f"{orion}/gone.txt")


def test_mkdir_p_creates_every_level(mount, session, work):
    folder, orion = work
    sh("mkdir", "-p", folder / "x" / "y" / "z")
    assert (folder / "x" / "y" / "z").is_dir()
    assert api_entry(session, f"{orion}/x/y/z")["resource_type"] == "folder"
    sh("mkdir", "-p", folder / "x" / "y" / "z")  # existing: still fine


def test_rmdir_removes_empty_and_refuses_non_empty(mount, session, work):
    folder, orion = work
    (folder / "full").mkdir()
    (folder / "full" / "f").write_bytes(b"1")
    (folder / "empty").mkdir()
    with pytest.raises(OSError) as info:
        os.rmdir(folder / "full")
    assert info.value.errno == errno.ENOTEMPTY
    assert api_exists(session, f"{orion}/full/f")
    assert sh("rmdir", folder / "full", check=False).returncode != 0
    sh("rmdir", folder / "empty")
    assert not api_exists(session, f"{orion}/empty")


def test_dataset_and_shard_collection_are_readable_and_read_only(mount, session):
    dataset = mount.path / "ligands"
    assert stat.S_ISREG(os.stat(dataset).st_mode)
    assert os.stat(dataset).st_mode & 0o777 == 0o444
    assert dataset.read_bytes() == api_bytes(session, mount.orion("ligands"))
    with pytest.raises(OSError) as info:
        open(dataset, "ab").close()
    assert info.value.errno == errno.EACCES
    collection = mount.path / "trajectories"
    assert stat.S_ISDIR(os.stat(collection).st_mode)
    shards = sorted(os.listdir(collection))
    assert shards == ["frame-0.bin", "frame-1.bin", "frame-2.bin"]
    assert (collection / "frame-2.bin").read_bytes() == b"frame 2\n" * 3
    with pytest.raises(OSError):
        (collection / "new.bin").write_bytes(b"x")


def test_statfs_gives_df_sane_numbers(mount):
    out = sh("df", "-P", mount.path).stdout.splitlines()[-1].split()
    assert int(out[1]) > 0 and int(out[3]) > 0
    vfs = os.statvfs(mount.path)
    assert vfs.f_namemax == 255 and vfs.f_blocks > 0


def test_chmod_accepted_and_ignored_utimens_kept_chown_to_oneself_accepted(mount, session, work):
    folder, orion = work
    target = folder / "p.txt"
    target.write_bytes(b"perm")
    os.chmod(target, 0o600)  # accepted, ignored: modes follow the kind
    assert os.stat(target).st_mode & 0o777 == 0o644
    os.utime(target, (1, 1))  # kept: the modification time the writer sets
    assert os.stat(target).st_mtime == 1
    os.chown(target, os.getuid(), os.getgid())
    assert api_bytes(session, f"{orion}/p.txt") == b"perm"


def test_names_too_long_are_enametoolong(mount, work):
    folder, _ = work
    with pytest.raises(OSError) as info:
        (folder / ("n" * 256)).write_bytes(b"x")
    assert info.value.errno == errno.ENAMETOOLONG
    with pytest.raises(OSError) as info:
        os.mkdir(folder / ("d" * 300))
    assert info.value.errno == errno.ENAMETOOLONG


def test_duplicate_names_follow_the_name_rule(mount_factory, server, session):
    import io

    orion = f"{my_data(server)}/names-rule"
    session.create_paths(orion)
    session.upload_file(orion, "dup.txt", io.BytesIO(b"first"))
    second = session.upload_file(orion, "dup.txt", io.BytesIO(b"second"))
    folder = mount_factory(server).path / "names-rule"  # a fresh mount: nothing cached yet
    assert set(os.listdir(folder)) == {"dup.txt", f"dup.txt (id {second.id})"}
    assert (folder / "dup.txt").read_bytes() == b"first"
    assert (folder / f"dup.txt (id {second.id})").read_bytes() == b"second"
    os.unlink(folder / f"dup.txt (id {second.id})")  # by id: exactly that one goes
    assert [e["id"] for e in session.ls_path(orion)["results"]] != [second.id]
    assert api_bytes(session, f"{orion}/dup.txt") == b"first"
    assert os.listdir(folder) == ["dup.txt"]


def test_rename_noreplace_refuses_an_existing_target(mount, session, work):
    import ctypes

    folder, orion = work
    (folder / "a").write_bytes(b"a")
    (folder / "b").write_bytes(b"b")
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_noreplace = -100, 1
    result = libc.renameat2(
        at_fdcwd, bytes(folder / "a"), at_fdcwd, bytes(folder / "b"), rename_noreplace
    )
    assert result == -1 and ctypes.get_errno() == errno.EEXIST
    assert api_bytes(session, f"{orion}/b") == b"b"
    assert api_bytes(session, f"{orion}/a") == b"a"


def test_symlinks_are_not_supported(mount, work):
    folder, _ = work
    with pytest.raises(OSError) as info:
        os.symlink("target", folder / "link")
    assert info.value.errno == errno.ENOSYS
