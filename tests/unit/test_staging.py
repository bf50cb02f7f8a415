"""The open-file table and the read-ahead reader, without FUSE (a fake content store)."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import pytest

from orionfs.exceptions import OrionConnectionError
from orionfs.fs.entry import Entry
from orionfs.fs.openfiles import OpenFileTable
from orionfs.fs.readahead import MAX_SEGMENT, MIN_SEGMENT, ReadAhead

MiB = 1 << 20


class FakeStore:
    """An in-memory ContentStore that records every call."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ids: dict[str, int] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail_uploads = 0
        self._lock = threading.Lock()

    def entry(self, path: str) -> Entry:
        return Entry("file", self.ids[path], path.rpartition("/")[2], path, len(self.files[path]))

    def put(self, path: str, data: bytes) -> Entry:
        self.files[path] = data
        self.ids.setdefault(path, len(self.ids) + 1)
        return self.entry(path)

    def read(self, entry: Entry, offset: int, length: int) -> bytes:
        with self._lock:
            self.calls.append(("read", (offset, length)))
        return self.files[entry.path][offset : offset + length]

    def _upload(self, kind: str, path: str, fileobj: BinaryIO, size: int) -> Entry:
        self.calls.append((kind, path))
        if self.fail_uploads:
            self.fail_uploads -= 1
            raise OrionConnectionError("server gone")
        data = fileobj.read(size)
        assert len(data) == size
        return self.put(path, data)

    def create_file(self, path: str, fileobj: BinaryIO, size: int) -> Entry:
        return self._upload("create", path, fileobj, size)

    def replace_content(self, path: str, fileobj: BinaryIO, size: int) -> Entry:
        return self._upload("replace", path, fileobj, size)

    def unlink(self, path: str) -> None:
        self.files.pop(path)


@pytest.fixture
def pool():
    with ThreadPoolExecutor(4) as executor:
        yield executor


def _reads(store: FakeStore) -> list[tuple[int, int]]:
    return [args for kind, args in store.calls if kind == "read"]


def test_first_byte_waits_for_one_small_request_only(pool):
    store = FakeStore()
    data = bytes(range(256)) * (64 * MiB // 256)
    entry = store.put("/f", data)
    reader = ReadAhead(lambda o, n: store.read(entry, o, n), len(data), pool)
    assert reader.read(0, 1) == data[:1]
    assert _reads(store) == [(0, MIN_SEGMENT)]


def test_sequential_reads_grow_the_requests_and_read_ahead(pool):
    store = FakeStore()
    data = bytes(range(256)) * (64 * MiB // 256)
    entry = store.put("/f", data)
    reader = ReadAhead(lambda o, n: store.read(entry, o, n), len(data), pool)
    out = bytearray()
    for offset in range(0, len(data), MiB):
        out += reader.read(offset, MiB)
    assert bytes(out) == data
    sizes = [n for _, n in _reads(store)]
    assert sum(sizes) == len(data)  # nothing fetched twice
    assert max(sizes) == MAX_SEGMENT and len(sizes) <= 16  # 64 MiB in few, growing requests


def test_a_seek_starts_over_with_a_small_request(pool):
    store = FakeStore()
    data = bytes(range(256)) * (64 * MiB // 256)
    entry = store.put("/f", data)
    reader = ReadAhead(lambda o, n: store.read(entry, o, n), len(data), pool)
    reader.read(0, 4096)
    store.calls.clear()
    assert reader.read(50 * MiB + 3, 10) == data[50 * MiB + 3 : 50 * MiB + 13]
    assert _reads(store) == [(50 * MiB + 3, MIN_SEGMENT)]


def test_a_failed_fetch_is_raised_then_refetched(pool, monkeypatch):
    monkeypatch.setattr("orionfs.fs.readahead.FAILURE_MEMORY", 0.0)
    data = b"x" * (3 * MiB)
    failures = [1]

    def fetch(offset: int, length: int) -> bytes:
        if failures[0]:
            failures[0] -= 1
            raise OrionConnectionError("dropped")
        return data[offset : offset + length]

    reader = ReadAhead(fetch, len(data), pool)
    with pytest.raises(OrionConnectionError):
        reader.read(0, 10)
    assert reader.read(0, 10) == b"x" * 10


def test_writes_are_staged_and_uploaded_on_flush(tmp_path):
    store = FakeStore()
    store.put("/a", b"hello world")
    table = OpenFileTable(store, tmp_path / "staging", tmp_path / "recovery")
    fh = table.open("/a", store.entry("/a"), 2, writable=True, truncate=False)
    table.write(fh, b"HELLO", 0)
    assert store.files["/a"] == b"hello world"  # nothing sent before close
    table.flush(fh)
    assert store.files["/a"] == b"HELLO world"
    assert [c for c in store.calls if c[0] != "read"] == [("replace", "/a")]
    table.release(fh)


def test_o_trunc_never_downloads(tmp_path):
    store = FakeStore()
    store.put("/a", b"x" * MiB)
    table = OpenFileTable(store, tmp_path / "staging", tmp_path / "recovery")
    fh = table.open("/a", store.entry("/a"), 2, writable=True, truncate=True)
    table.write(fh, b"new", 0)
    table.release(fh)
    assert store.files["/a"] == b"new"
    assert _reads(store) == []


def test_a_failed_upload_is_raised_and_the_data_kept(tmp_path, caplog):
    store = FakeStore()
    table = OpenFileTable(store, tmp_path / "staging", tmp_path / "recovery")
    fh = table.create("/new.txt", 1)
    table.write(fh, b"precious", 0)
    store.fail_uploads = 5
    with pytest.raises(OrionConnectionError):
        table.flush(fh)
    with pytest.raises(OrionConnectionError):
        table.release(fh)
    kept = list((tmp_path / "recovery").iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == b"precious"
    assert str(kept[0]) in caplog.text
    assert "/new.txt" not in store.files


def test_a_new_file_renamed_before_close_is_uploaded_under_its_final_name(tmp_path):
    store = FakeStore()
    target = store.put("/target", b"old")
    table = OpenFileTable(store, tmp_path / "staging", tmp_path / "recovery")
    fh = table.create("/.tmp123", 1)
    table.write(fh, b"new content", 0)
    table.rename_pending("/.tmp123", "/target", target)
    table.release(fh)
    assert store.files["/target"] == b"new content"
    assert store.ids["/target"] == target.id
    assert "/.tmp123" not in store.files
    assert [c for c in store.calls if c[0] != "read"] == [("replace", "/target")]


def test_unsaved_files_are_saved_when_the_table_closes(tmp_path):
    store = FakeStore()
    table = OpenFileTable(store, tmp_path / "staging", tmp_path / "recovery")
    fh = table.create("/open.txt", 1)
    table.write(fh, b"unsaved", 0)
    table.close()
    assert store.files["/open.txt"] == b"unsaved"


def test_the_kernels_immediate_retry_of_a_failed_read_fails_fast(pool):
    calls = []

    def fetch(offset: int, length: int) -> bytes:
        calls.append(offset)
        raise OrionConnectionError("server gone")

    reader = ReadAhead(fetch, 10 * MiB, pool)
    with pytest.raises(OrionConnectionError):
        reader.read(0, MiB)
    with pytest.raises(OrionConnectionError):
        reader.read(0, 4096)  # answered from the recent failure: no second wait
    assert calls == [0]


def test_a_hidden_node_keeps_its_content_and_is_never_uploaded(tmp_path):
    store = FakeStore()
    store.put("/a", b"hello world")
    table = OpenFileTable(store, tmp_path / "staging", tmp_path / "recovery")
    fh = table.open("/a", store.entry("/a"), 2, writable=True, truncate=False)
    table.keep_local("/a")  # downloaded before the remote file goes
    store.unlink("/a")
    table.hide("/a", "/.fuse_hidden0000000100000001")
    assert table.node_at("/a") is None
    assert table.pending_children("/") == {}
    assert table.write(fh, b"J", 0) == 1
    table.truncate_handle(fh, 5)
    assert table.read(fh, 100, 0) == b"Jello"
    table.flush(fh)
    table.release(fh)
    assert "/a" not in store.files
    assert [c for c in store.calls if c[0] != "read"] == []
    assert not list((tmp_path / "recovery").glob("*"))


def test_a_stopped_table_uploads_nothing_and_keeps_unsaved_data(tmp_path):
    store = FakeStore()
    table = OpenFileTable(store, tmp_path / "staging", tmp_path / "recovery")
    fh = table.create("/open.txt", 1)
    table.write(fh, b"unsaved", 0)
    table.stop()
    with pytest.raises(OrionConnectionError):
        table.flush(fh)
    kept = table.abandon()
    assert [(path, dest.read_bytes()) for path, dest in kept] == [("/open.txt", b"unsaved")]
    table.close()
    assert store.calls == []


def test_the_first_read_answers_its_size_and_fetches_one_small_segment(tmp_path):
    store = FakeStore()
    data = bytes(range(256)) * (4 * MiB // 256)
    store.put("/big", data)
    table = OpenFileTable(store, tmp_path / "staging", tmp_path / "recovery")
    try:
        fh = table.open("/big", store.entry("/big"), os.O_RDONLY, writable=False, truncate=False)
        first = table.read(fh, 4096, 0)
        assert len(first) == 4096 and first == data[:4096]
        assert _reads(store) == [(0, MIN_SEGMENT)]
        assert table.read(fh, MiB, 4096) == data[4096 : 4096 + MiB]
        table.release(fh)
    finally:
        table.close()


def test_a_read_whose_queued_segment_another_read_dropped_still_gets_its_bytes():
    store = FakeStore()
    data = bytes(range(256)) * (16 * MiB // 256)
    entry = store.put("/f", data)
    gate = threading.Event()
    with ThreadPoolExecutor(1) as busy:
        busy.submit(gate.wait, 10)  # the one worker is busy: segments stay queued
        reader = ReadAhead(lambda o, n: store.read(entry, o, n), len(data), busy)
        results: list[bytes] = []
        first = threading.Thread(target=lambda: results.append(bytes(reader.read(0, 4096))))
        first.start()
        time.sleep(0.2)  # the first read now waits for its queued segment
        far = threading.Thread(target=lambda: reader.read(12 * MiB, 4096))
        far.start()  # a seek elsewhere drops the queued segments
        time.sleep(0.2)
        gate.set()
        first.join(10)
        far.join(10)
    assert results == [data[:4096]]
