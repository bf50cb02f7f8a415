"""The read path with the data cache against the real server, without FUSE: CachedSession +
OpenFileTable + ReadPath over a DataCache, requests counted by the server.

Rules: a re-read costs no download request, nor does a read after a "remount" (a new table and
cache object over the same folder); a changed file is fetched again, never served stale; a random
small read of a large file fetches one chunk; files of a folder read whole in order are fetched
ahead, each once; what the mount uploads is read back with no request.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orionfs.client.types import ResourceKey
from orionfs.fs.budget import MemoryBudget
from orionfs.fs.cache import CachedSession
from orionfs.fs.datacache import CHUNK_SIZE, DataCache
from orionfs.fs.openfiles import OpenFileTable
from orionfs.fs.reads import ReadPath

DOWNLOAD = "GET /api/v3/storage/files/{file_id}/download/"
MiB = 1 << 20


class Mounted:
    """What a mount holds for reading: the cache session, the table, the data cache."""

    def __init__(self, session: Any, root: str, cache_dir: Path, staging: Path) -> None:
        self.data = DataCache(cache_dir, max_size=512 * MiB, flush_interval=0.05)
        self.cache = CachedSession(session, root=root, ttl=60, on_upload=self.data.adopt)
        self.reads = ReadPath(
            self.cache, self.data, MemoryBudget(64 * MiB), listing=self.cache.cached_listing
        )
        self.files = OpenFileTable(self.cache, staging, staging / "rec", reads=self.reads)

    def read_all(self, path: str, block: int = 128 << 10) -> bytes:
        entry = self.cache.lookup(path)
        fh = self.files.open(path, entry, os.O_RDONLY, False, False)
        out = bytearray()
        try:
            while True:
                data = self.files.read(fh, block, len(out))
                if not data:
                    break
                out += data
        finally:
            self.files.release(fh)
        return bytes(out)

    def close(self) -> None:
        self.files.close()


@pytest.fixture
def mounts(session: Any, session_workdir: str, tmp_path: Path) -> Iterator[Callable[[], Mounted]]:
    """Call it for a "mount" over one cache folder (the second call: a remount)."""
    made: list[Mounted] = []

    def make() -> Mounted:
        mounted = Mounted(
            session, session_workdir, tmp_path / "cache", tmp_path / f"staging{len(made)}"
        )
        made.append(mounted)
        return mounted

    yield make
    for mounted in made:
        mounted.close()


def _put(session: Any, workdir: str, name: str, data: bytes) -> None:
    session.upload_file(workdir, name, io.BytesIO(data), size=len(data))


def test_a_reread_and_a_read_after_a_remount_cost_no_download(
    server: Any, session: Any, session_workdir: str, mounts: Callable[[], Mounted]
) -> None:
    data = os.urandom(3 * MiB + 123)
    _put(session, session_workdir, "three.bin", data)
    first = mounts()
    server.reset_counters()
    assert first.read_all("/three.bin") == data
    assert server.count(DOWNLOAD) >= 1
    server.reset_counters()
    assert first.read_all("/three.bin") == data
    assert server.count(DOWNLOAD) == 0
    first.close()
    again = mounts()
    server.reset_counters()
    assert again.read_all("/three.bin") == data
    assert server.count(DOWNLOAD) == 0


def test_a_changed_file_is_fetched_again_never_served_stale(
    server: Any, session: Any, session_workdir: str, mounts: Callable[[], Mounted]
) -> None:
    _put(session, session_workdir, "changing.txt", b"version one")
    mounted = mounts()
    assert mounted.read_all("/changing.txt") == b"version one"
    stat = session.stat_path(f"{session_workdir}/changing.txt")
    session.replace_file_content(ResourceKey("file", stat["id"]), io.BytesIO(b"version 2!!"), 11)
    mounted.cache.invalidate()  # what the TTL does
    server.reset_counters()
    assert mounted.read_all("/changing.txt") == b"version 2!!"  # same size, newer
    assert server.count(DOWNLOAD) == 1


def test_a_random_small_read_of_a_large_file_fetches_one_chunk(
    server: Any, session: Any, session_workdir: str, mounts: Callable[[], Mounted]
) -> None:
    data = os.urandom(8 * MiB)
    _put(session, session_workdir, "large.bin", data)
    mounted = mounts()
    entry = mounted.cache.lookup("/large.bin")
    server.reset_counters()
    fh = mounted.files.open("/large.bin", entry, os.O_RDONLY, False, False)
    try:
        offset = 5 * MiB + 4000
        assert bytes(mounted.files.read(fh, 4096, offset)) == data[offset : offset + 4096]
    finally:
        mounted.files.release(fh)
    assert server.count(DOWNLOAD) == 1
    assert mounted.reads.fetcher is not None
    mounted.reads.fetcher.flush()
    assert mounted.data.usage().bytes == CHUNK_SIZE


def test_files_read_whole_in_order_are_fetched_ahead_once_each(
    server: Any, session: Any, session_workdir: str, mounts: Callable[[], Mounted]
) -> None:
    session.create_paths(f"{session_workdir}/many")
    contents = {f"f{i:03d}": os.urandom(4096) for i in range(40)}
    for name, data in contents.items():
        _put(session, f"{session_workdir}/many", name, data)
    mounted = mounts()
    names = list(mounted.cache.listdir("/many"))
    server.reset_counters()
    for name in names:
        assert mounted.read_all(f"/many/{name}") == contents[name]
    assert server.count(DOWNLOAD) == len(names)  # each file once: ahead or by its reader
    assert mounted.reads.cross is not None and mounted.reads.cross.fetched >= len(names) - 10


def test_a_folder_browsed_or_one_file_read_fetches_nothing_ahead(
    server: Any, session: Any, session_workdir: str, mounts: Callable[[], Mounted]
) -> None:
    session.create_paths(f"{session_workdir}/browse")
    for i in range(10):
        _put(session, f"{session_workdir}/browse", f"g{i}", b"x" * 100)
    mounted = mounts()
    names = list(mounted.cache.listdir("/browse"))
    server.reset_counters()
    mounted.read_all(f"/browse/{names[3]}")
    assert server.count(DOWNLOAD) == 1


def test_what_the_mount_uploads_is_read_back_with_no_request(
    server: Any, mounts: Callable[[], Mounted]
) -> None:
    mounted = mounts()
    data = os.urandom(2 * MiB + 7)
    fh = mounted.files.create("/written.bin", os.O_WRONLY | os.O_CREAT)
    mounted.files.write(fh, data, 0)
    mounted.files.flush(fh)
    mounted.files.release(fh)
    server.reset_counters()
    assert mounted.read_all("/written.bin") == data
    assert server.count(DOWNLOAD) == 0


def test_the_staged_file_of_an_upload_becomes_the_cached_copy_without_a_copy(
    server: Any, mounts: Callable[[], Mounted]
) -> None:
    mounted = mounts()
    data = os.urandom(3 * MiB)
    fh = mounted.files.create("/linked.bin", os.O_WRONLY | os.O_CREAT)
    mounted.files.write(fh, data, 0)
    mounted.files.flush(fh)  # uploaded; the staging file is handed over when the node goes
    node = mounted.files.node_of(fh)
    assert node is not None and node.data_path is not None
    inode = node.data_path.stat().st_ino
    mounted.files.release(fh)
    wholes = list(mounted.data.directory.rglob("chunks/*/*.all"))
    assert [w.stat().st_ino for w in wholes] == [inode]
    server.reset_counters()
    assert mounted.read_all("/linked.bin") == data
    assert server.count(DOWNLOAD) == 0


def test_a_file_written_again_after_an_upload_is_cached_as_last_stored(
    server: Any, mounts: Callable[[], Mounted]
) -> None:
    mounted = mounts()
    first, more = os.urandom(MiB), os.urandom(MiB + 3)
    fh = mounted.files.create("/again.bin", os.O_WRONLY | os.O_CREAT)
    mounted.files.write(fh, first, 0)
    mounted.files.flush(fh)  # stored: first
    mounted.files.write(fh, more, len(first))  # changed after that upload
    mounted.files.release(fh)  # stored again: first + more
    server.reset_counters()
    assert mounted.read_all("/again.bin") == first + more
    assert server.count(DOWNLOAD) == 0
