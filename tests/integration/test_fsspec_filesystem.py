"""OrionFileSystem against the real local server: URLs and profiles, listings and their request
counts, reads, writes, changes, tags, datasets and collections, errors.

Request counts come from the server's test hooks (``server.counters()``), per route template.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.callbacks import Callback

import orionfs.fsspec.filesystem as filesystem_module
from orionfs.client import wire
from orionfs.client.config import PROFILE_ENV, save_profile
from orionfs.exceptions import NotFoundResponse, ProfileError
from orionfs.fsspec import OrionFileSystem

LS = "GET /api/v1/storage/ls/"
STAT = "GET /api/v1/storage/stat/"
DOWNLOAD = "GET /api/v3/storage/files/{file_id}/download/"
UPLOAD = "POST /api/v3/storage/files/"
REPLACE = "PUT /api/v3/storage/files/{file_id}/content/"
REMOVE = "POST /api/v1/storage/paths/remove/"
ASSIGN = "POST /api/v1/storage/paths/assign/"


def make_fs(server: Any, **options: Any) -> OrionFileSystem:
    """A fresh filesystem (not from fsspec's instance cache) for the sample user."""
    return OrionFileSystem(
        url=server.url,
        token=server.token,
        username=server.username,
        project=server.project_id,
        request_timeout=10,
        skip_instance_cache=True,
        **options,
    )


def counts(server: Any) -> dict[str, int]:
    """Requests per route since the last reset, plus ``total``."""
    answer = server.counters()
    return {**answer["by_endpoint"], "total": answer["total"]}


@pytest.fixture
def fs(server: Any) -> Iterator[OrionFileSystem]:
    fs = make_fs(server)
    yield fs
    fs.session.close()


@pytest.fixture
def home(server: Any) -> str:
    """The sample user's My Data, as a filesystem path."""
    return f"project/{server.project_id}/user/{server.username}"


@pytest.fixture
def work(fs: OrionFileSystem, home: str) -> Iterator[str]:
    """A fresh, empty folder in My Data (removed afterwards)."""
    path = f"{home}/fsspec-{uuid.uuid4().hex[:8]}"
    fs.mkdir(path)
    yield path
    fs.rm(path, recursive=True)


def fresh(server: Any, fs: OrionFileSystem) -> None:
    """Forget every cached listing and zero the server's counters."""
    fs.invalidate_cache()
    server.reset_counters()


# -- URLs and profiles -------------------------------------------------------------------------
def test_orion_protocol_is_registered_and_opens_profile_urls(
    server: Any, config_dir: Path, home: str
) -> None:
    assert fsspec.get_filesystem_class("orion") is OrionFileSystem
    with fsspec.open(f"orion://local@{home}/results/run1/scores.csv", "rb") as f:
        assert f.read().startswith(b"molecule,score\n")
    fs, path = fsspec.core.url_to_fs(f"orion://local@{home}/README.txt")
    assert path == f"{home}/README.txt"
    assert fs.unstrip_protocol(path) == f"orion://local@{home}/README.txt"


def test_profile_comes_from_the_option_then_orion_profile_then_default(
    server: Any, config_dir: Path, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = server.add_user(f"fs-{uuid.uuid4().hex[:6]}", project=server.project_id)
    save_profile("other", server.url, other["user"]["username"], other["token"], other["project"])
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    with pytest.raises(ProfileError, match="'default'"):  # no such profile in the file
        fsspec.filesystem("orion", skip_instance_cache=True)
    monkeypatch.setenv(PROFILE_ENV, "other")
    by_env = fsspec.filesystem("orion", skip_instance_cache=True)
    assert by_env.profile == "other"
    assert by_env.session.config.token == other["token"]
    by_option = fsspec.filesystem("orion", profile="local", skip_instance_cache=True)
    assert by_option.session.config.token == server.token
    by_url, _ = fsspec.core.url_to_fs(f"orion://local@{home}", skip_instance_cache=True)
    assert by_url.session.config.token == server.token
    by_token = fsspec.filesystem(
        "orion", url=server.url, token=other["token"], skip_instance_cache=True
    )
    assert by_token.profile is None
    assert by_token.session.get_user_profile().username == other["user"]["username"]


def test_a_pickled_filesystem_keeps_its_session_config(server: Any, home: str) -> None:
    fs = make_fs(server)
    copy = pickle.loads(pickle.dumps(fs))
    assert copy.cat(f"{home}/README.txt") == fs.cat(f"{home}/README.txt")
    over_session = OrionFileSystem(session=fs.session)
    restored = pickle.loads(pickle.dumps(over_session))
    assert restored.session is not fs.session
    assert restored.session.config == fs.session.config


# -- listings --------------------------------------------------------------------------------
def test_ls_and_info_carry_name_size_type_id_resource_type_tags_modified(
    fs: OrionFileSystem, home: str
) -> None:
    entries = {i["name"].rsplit("/", 1)[-1]: i for i in fs.ls(home)}
    readme = entries["README.txt"]
    for key in (
        "name",
        "size",
        "type",
        wire.F_ID,
        wire.F_RESOURCE_TYPE,
        wire.F_TAGS,
        wire.F_MODIFIED,
    ):
        assert key in readme
    assert (readme["type"], readme[wire.F_RESOURCE_TYPE], readme["tags"]) == (
        "file",
        "file",
        ["sample"],
    )
    assert readme["size"] == len(fs.cat(f"{home}/README.txt"))
    assert entries["molecules"]["type"] == "directory"
    assert fs.info(f"{home}/README.txt", refresh=True) | {"name": readme["name"]} == readme
    assert fs.ls("") == [fs.info("project")]
    assert fs.modified(f"{home}/README.txt").year >= 2024


def test_one_listing_answers_info_exists_isdir_and_absent_names(
    server: Any, fs: OrionFileSystem, home: str
) -> None:
    fresh(server, fs)
    fs.ls(home)
    assert fs.info(f"{home}/README.txt")["type"] == "file"
    assert fs.isdir(f"{home}/molecules") and fs.isfile(f"{home}/README.txt")
    assert not fs.exists(f"{home}/no-such-file")
    assert counts(server) == {LS: 1, "total": 1}


def _tree(fs: OrionFileSystem, root: str, folders: int, files: int) -> None:
    """Folders of small CSV files, made through the session (behind the cache, so it is reset)."""
    fs.session.create_paths(*[f"/{root}/d{i}" for i in range(folders)])
    for i in range(folders):
        for j in range(files):
            fs.session.upload_file(f"/{root}/d{i}", f"f{j}.csv", io.BytesIO(b"a,b\n1,2\n"), size=8)
    fs.invalidate_cache()


def test_find_walk_glob_and_du_list_each_folder_once(
    server: Any, fs: OrionFileSystem, work: str
) -> None:
    _tree(fs, work, folders=3, files=4)
    fresh(server, fs)
    assert len(fs.find(work)) == 12
    assert counts(server) == {LS: 4, "total": 4}
    fresh(server, fs)
    assert sum(len(files) for _, _, files in fs.walk(work)) == 12
    assert counts(server) == {LS: 4, "total": 4}
    fresh(server, fs)
    assert fs.du(work) == 12 * 8
    assert counts(server) == {LS: 4, "total": 4}
    fresh(server, fs)
    assert len(fs.glob(f"{work}/*/f[0-1].csv")) == 6
    assert counts(server) == {LS: 4, STAT: 1, "total": 5}  # + one look-up of the root


def test_a_large_folder_is_listed_in_pages(server: Any, home: str, work: str) -> None:
    fs = make_fs(server, page_size=10)
    fs.session.create_paths(*[f"/{work}/e{i:02d}" for i in range(25)])
    fs.invalidate_cache()
    server.reset_counters()
    assert len(fs.ls(work)) == 25
    assert counts(server) == {LS: 3, "total": 3}


def test_changes_elsewhere_show_after_refresh_or_invalidate(fs: OrionFileSystem, work: str) -> None:
    assert fs.ls(work) == []
    fs.session.upload_file(f"/{work}", "late.txt", io.BytesIO(b"x"), size=1)
    assert fs.ls(work) == []  # the cached listing is trusted until it expires
    assert [i["name"] for i in fs.ls(work, refresh=True)] == [f"{work}/late.txt"]
    fs.session.remove_paths(f"/{work}/late.txt")
    fs.invalidate_cache(work)
    assert fs.ls(work) == []


# -- reading ---------------------------------------------------------------------------------
def test_cat_file_with_a_range_is_one_ranged_get(
    server: Any, fs: OrionFileSystem, work: str
) -> None:
    data = os.urandom(300_000)
    fs.pipe(f"{work}/r.bin", data)
    fresh(server, fs)
    assert fs.cat_file(f"{work}/r.bin", 1000, 2000) == data[1000:2000]
    assert counts(server) == {STAT: 1, DOWNLOAD: 1, "total": 2}
    assert fs.cat_file(f"{work}/r.bin", -10) == data[-10:]
    assert fs.cat_file(f"{work}/r.bin", 10, -10) == data[10:-10]
    assert fs.cat_file(f"{work}/r.bin", 400_000, 500_000) == b""
    assert fs.read_block(f"{work}/r.bin", 5, 7) == data[5:12]


def test_open_reads_randomly_through_the_block_cache(
    server: Any, fs: OrionFileSystem, work: str
) -> None:
    data = os.urandom(3 * 65536 + 100)
    fs.pipe(f"{work}/random.bin", data)
    server.reset_counters()
    with fs.open(f"{work}/random.bin", block_size=65536) as f:
        f.seek(70_000)
        assert f.read(10) == data[70_000:70_010]
        assert f.read(10) == data[70_010:70_020]  # same block: from the cache
        f.seek(-50, os.SEEK_END)
        assert f.read() == data[-50:]
        f.seek(0)
        assert f.read(65536 * 3) == data[: 65536 * 3]
    assert counts(server)[DOWNLOAD] <= 6  # blocks 1, 3 (+ read-ahead), then one large read


def test_a_file_read_in_order_is_one_streamed_download(
    server: Any, fs: OrionFileSystem, work: str
) -> None:
    data = os.urandom(2 << 20)
    fs.pipe(f"{work}/seq.bin", data)
    server.reset_counters()
    out = io.BytesIO()
    with fs.open(f"{work}/seq.bin", block_size=128 << 10) as f:
        while chunk := f.read(50_000):
            out.write(chunk)
    assert out.getvalue() == data
    assert counts(server)[DOWNLOAD] == 1
    with fs.open(f"{work}/seq.bin", block_size=128 << 10) as f:  # stopped by a seek elsewhere
        assert f.read(1000) == data[:1000]
        f.seek(1 << 20)
        assert f.read(1000) == data[1 << 20 : (1 << 20) + 1000]


# -- writing ---------------------------------------------------------------------------------
def test_open_wb_uploads_on_close_and_keeps_the_id_of_a_file_it_replaces(
    server: Any, fs: OrionFileSystem, work: str
) -> None:
    path = f"{work}/w.txt"
    with fs.open(path, "wb") as f:
        f.write(b"one")
        assert not make_fs(server).exists(path)  # nothing stored before close
    first = fs.info(path)
    server.reset_counters()
    with fs.open(path, "wb") as f:
        f.write(b"two!")
    assert counts(server) == {REPLACE: 1, "total": 1}
    assert fs.info(path)[wire.F_ID] == first[wire.F_ID]
    assert fs.cat(path) == b"two!"
    with fs.open(path, "ab") as f:
        f.write(b" three")
    assert fs.cat(path) == b"two! three"
    with pytest.raises(FileExistsError):
        fs.open(path, "xb")
    with fs.open(f"{work}/t.txt", "w", encoding="utf-8") as f:
        f.write("text mode")
    assert fs.cat(f"{work}/t.txt") == b"text mode"


def test_upload_errors_are_raised_from_close(server: Any, fs: OrionFileSystem, work: str) -> None:
    f = fs.open(f"{work}/fails.txt", "wb")
    f.write(b"data")
    server.set_faults(status=500, path_prefix="/api/v3/storage/files/", method="POST", count=1)
    with pytest.raises(OSError) as caught:
        f.close()
    assert caught.value.errno == errno.EIO and "500" in str(caught.value)
    assert f.closed
    assert not fs.exists(f"{work}/fails.txt")
    with pytest.raises(PermissionError, match="403"):  # a virtual folder holds nothing new
        with fs.open(f"project/{server.project_id}/new.txt", "wb") as f:
            f.write(b"x")


def test_an_error_inside_the_with_block_stores_nothing(fs: OrionFileSystem, work: str) -> None:
    with pytest.raises(RuntimeError):
        with fs.open(f"{work}/half.txt", "wb") as f:
            f.write(b"half")
            raise RuntimeError("stop")
    assert not fs.exists(f"{work}/half.txt")


def test_writes_create_missing_folders_and_pipe_takes_many(fs: OrionFileSystem, work: str) -> None:
    fs.pipe({f"{work}/a/b/one.txt": b"1", f"{work}/a/two.txt": b"2"})
    assert fs.cat(f"{work}/a/b/one.txt") == b"1"
    assert fs.find(work) == [f"{work}/a/b/one.txt", f"{work}/a/two.txt"]
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{work}/a/two.txt", b"x", mode="create")


class Recorder(Callback):
    """Records what a transfer reports."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int | None] = []
        self.progress = 0

    def set_size(self, size: int | None) -> None:
        self.sizes.append(size)
        super().set_size(size)

    def relative_update(self, inc: int = 1) -> None:
        self.progress += inc
        super().relative_update(inc)


def test_put_and_get_report_progress_to_callbacks(
    fs: OrionFileSystem, work: str, tmp_path: Path
) -> None:
    source = tmp_path / "up.bin"
    source.write_bytes(os.urandom(3 << 20))
    up = Recorder()  # per file: bytes
    fs.put_file(str(source), f"{work}/up.bin", callback=up)
    assert fs.cat(f"{work}/up.bin") == source.read_bytes()
    assert (up.sizes, up.progress) == ([3 << 20], 3 << 20)
    down = Recorder()
    fs.get_file(f"{work}/up.bin", str(tmp_path / "down.bin"), callback=down)
    assert (tmp_path / "down.bin").read_bytes() == source.read_bytes()
    assert (down.sizes, down.progress) == ([3 << 20], 3 << 20)
    (tmp_path / "many").mkdir()
    for i in range(3):
        (tmp_path / "many" / f"{i}.txt").write_bytes(b"x" * i)
    files = Recorder()  # per call: files (fsspec's convention for put/get)
    fs.put(str(tmp_path / "many"), f"{work}/many", recursive=True, callback=files)
    assert files.progress == 4 and fs.cat(f"{work}/many/2.txt") == b"xx"
    files = Recorder()
    fs.get(f"{work}/many", str(tmp_path / "back"), recursive=True, callback=files)
    assert files.progress == 4 and (tmp_path / "back" / "2.txt").read_bytes() == b"xx"


# -- changes ---------------------------------------------------------------------------------
def test_mkdir_and_makedirs_raise_like_a_disk(fs: OrionFileSystem, work: str) -> None:
    fs.mkdir(f"{work}/d")
    with pytest.raises(FileExistsError):
        fs.mkdir(f"{work}/d")
    fs.makedirs(f"{work}/d", exist_ok=True)
    with pytest.raises(FileExistsError):
        fs.makedirs(f"{work}/d")
    with pytest.raises(FileNotFoundError):
        fs.mkdir(f"{work}/x/y", create_parents=False)
    fs.pipe(f"{work}/file", b"x")
    with pytest.raises(NotADirectoryError):
        fs.mkdir(f"{work}/file/sub")
    fs.makedirs(f"{work}/p/q/r")
    assert fs.isdir(f"{work}/p/q/r")


def test_rm_recursive_is_one_request(server: Any, fs: OrionFileSystem, work: str) -> None:
    _tree(fs, f"{work}/tree", folders=2, files=3)
    with pytest.raises(IsADirectoryError):
        fs.rm(f"{work}/tree")
    server.reset_counters()
    fs.rm(f"{work}/tree", recursive=True)
    assert counts(server)[REMOVE] == 1
    assert not fs.exists(f"{work}/tree")
    fs.mkdir(f"{work}/empty")
    fs.rmdir(f"{work}/empty")
    fs.pipe(f"{work}/full/x", b"x")
    with pytest.raises(OSError) as caught:
        fs.rmdir(f"{work}/full")
    assert caught.value.errno == errno.ENOTEMPTY
    with pytest.raises(FileNotFoundError):
        fs.rm(f"{work}/never")


def test_mv_is_one_assign_whatever_a_folder_holds(
    server: Any, fs: OrionFileSystem, work: str
) -> None:
    _tree(fs, f"{work}/src", folders=2, files=10)
    server.reset_counters()
    fs.mv(f"{work}/src", f"{work}/dst")
    assert counts(server)[ASSIGN] == 1
    assert len(fs.find(f"{work}/dst")) == 20 and not fs.exists(f"{work}/src")
    fs.mkdir(f"{work}/into")
    fs.mv(f"{work}/dst/d0/f0.csv", f"{work}/into")  # into a folder: keeps its name
    assert fs.isfile(f"{work}/into/f0.csv")
    fs.pipe(f"{work}/into/old.csv", b"old")
    fs.mv(f"{work}/into/f0.csv", f"{work}/into/old.csv")  # over a file: replaces it
    assert fs.ls(f"{work}/into", detail=False) == [f"{work}/into/old.csv"]
    assert fs.cat(f"{work}/into/old.csv") == b"a,b\n1,2\n"
    fs.mv(f"{work}/dst/d1/*.csv", f"{work}/globbed")
    assert len(fs.ls(f"{work}/globbed")) == 10
    with pytest.raises(OSError) as caught:
        fs.mv(f"{work}/dst", f"{work}/dst/d0")  # a folder into itself
    assert caught.value.errno == errno.EINVAL


def test_cp_file_streams_a_large_file_download_into_upload(
    server: Any, fs: OrionFileSystem, work: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(600_000)
    fs.pipe(f"{work}/big.bin", data)
    monkeypatch.setattr(filesystem_module, "COPY_IN_MEMORY_MAX", 1024)
    server.reset_counters()
    fs.cp_file(f"{work}/big.bin", f"{work}/copy/big.bin")
    assert counts(server)[DOWNLOAD] == 1 and counts(server)[UPLOAD] == 1
    assert fs.cat(f"{work}/copy/big.bin") == data
    fs.cp_file(f"{work}/big.bin", f"{work}/copy/big.bin")  # over an existing copy: same id
    assert len(fs.ls(f"{work}/copy")) == 1


# -- tags, datasets, collections, names, errors ----------------------------------------------
def test_tags_show_in_info_and_the_helpers_set_them(fs: OrionFileSystem, work: str) -> None:
    path = f"{work}/tagged.txt"
    fs.pipe(path, b"x")
    assert fs.set_tags(path, ["b", "a"]) == ["a", "b"]
    assert fs.info(path)["tags"] == ["a", "b"]
    assert fs.add_tags(path, "c") == ["a", "b", "c"]
    assert fs.remove_tags(path, "a", "zz") == ["b", "c"]
    assert fs.set_tags(path, ["c"]) == ["c"]
    assert make_fs_info_tags(fs, path) == ["c"]
    with pytest.raises(OSError) as caught:
        fs.set_tags(work, ["x"])
    assert caught.value.errno == errno.ENOTSUP


def make_fs_info_tags(fs: OrionFileSystem, path: str) -> list[str]:
    fs.invalidate_cache()
    return fs.info(path)["tags"]


def test_datasets_and_shard_collections_read_as_the_mount_shows_them(
    fs: OrionFileSystem, home: str
) -> None:
    ligands = fs.info(f"{home}/ligands")
    assert (ligands["type"], ligands[wire.F_RESOURCE_TYPE], ligands["readonly"]) == (
        "file", wire.DATASET, True,
    )  # fmt: skip
    assert fs.cat(f"{home}/ligands").startswith(b"CCO ethanol\n")
    assert fs.cat_file(f"{home}/ligands", 0, 3) == b"CCO"
    with pytest.raises(PermissionError):
        fs.pipe(f"{home}/ligands", b"x")
    collection = f"{home}/trajectories"
    assert fs.isdir(collection) and fs.info(collection)["readonly"]
    shards = fs.ls(collection)
    assert [s["name"].rsplit("/", 1)[-1] for s in shards] == [f"frame-{i}.bin" for i in range(3)]
    assert all(s["type"] == "file" and s["readonly"] for s in shards)
    assert fs.cat(f"{collection}/frame-1.bin") == b"frame 1\n" * 2
    with fs.open(f"{collection}/frame-2.bin") as f:
        f.seek(8)
        assert f.read(8) == b"frame 2\n"
    with pytest.raises(PermissionError):
        fs.open(f"{collection}/frame-1.bin", "wb")
    with pytest.raises(PermissionError):
        fs.pipe(f"{collection}/new.bin", b"x")
    with pytest.raises(PermissionError):
        fs.rm(f"{collection}/frame-0.bin")
    with pytest.raises(IsADirectoryError):
        fs.open(collection)


def test_duplicate_names_show_with_id_suffixes_and_read_back(
    fs: OrionFileSystem, work: str
) -> None:
    first = fs.session.upload_file(f"/{work}", "dup.txt", io.BytesIO(b"first"), size=5)
    second = fs.session.upload_file(f"/{work}", "dup.txt", io.BytesIO(b"second"), size=6)
    fs.invalidate_cache()
    names = fs.ls(work, detail=False)
    assert names == [f"{work}/dup.txt", f"{work}/dup.txt (id {second.id})"]
    assert fs.cat(f"{work}/dup.txt") == b"first"
    fs.invalidate_cache()
    assert fs.cat(f"{work}/dup.txt (id {second.id})") == b"second"
    assert fs.info(f"{work}/dup.txt")[wire.F_ID] == first.id


def test_errors_are_builtin_oserrors_carrying_orion_messages(
    fs: OrionFileSystem, home: str, work: str
) -> None:
    fs.invalidate_cache()
    with pytest.raises(FileNotFoundError) as caught:
        fs.cat(f"{work}/missing.txt")
    assert "no such path" in str(caught.value)  # the server's own message
    assert isinstance(caught.value.__cause__, NotFoundResponse)
    with pytest.raises(IsADirectoryError):
        fs.open(work)
    with pytest.raises(IsADirectoryError):
        fs.cat_file(work, 0, 1)
    with pytest.raises(NotADirectoryError):
        fs.mkdir(f"{home}/README.txt/sub")
    with pytest.raises(FileExistsError):
        fs.mkdir(f"{home}/molecules")
    with pytest.raises(PermissionError) as denied:
        fs.mkdir("project/new-project")
    assert "403" in str(denied.value)
    assert fs.ls(f"{home}/README.txt") == [fs.info(f"{home}/README.txt")]
