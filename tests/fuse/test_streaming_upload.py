"""Streamed uploads: the wire (chunked bodies the local server takes, never retried, a cut stream
commits nothing) and the open-file table (a file written in order from offset 0 uploads while it
is written; anything else, or a failed stream, falls back to the staged copy at close)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orionfs.exceptions import NotFoundResponse, OrionServiceError
from orionfs.fs.cache import CachedSession
from orionfs.fs.openfiles import OpenFileTable
from orionfs.fs.streaming import STREAM_MIN_SIZE
from tests.support.mount import api_bytes, my_data, sh

MiB = 1 << 20
FILES_POST = "POST /api/v3/storage/files/"
CONTENT_PUT = "PUT /api/v3/storage/files/{file_id}/content/"


def _chunks(*parts: bytes) -> Iterator[bytes]:
    yield from parts


class Cut(Exception):
    pass


def _cut_after(data: bytes) -> Iterator[bytes]:
    yield data
    raise Cut("the writer seeked back")


# -- the wire ---------------------------------------------------------------------------------------


def test_a_chunked_upload_creates_then_replaces_a_file(server, session):
    folder = my_data(server)
    name = f"stream-{uuid.uuid4().hex[:8]}.bin"
    created = session.upload_file_stream(folder, name, _chunks(b"a" * MiB, b"b" * 10))
    assert created.size == MiB + 10
    assert api_bytes(session, f"{folder}/{name}") == b"a" * MiB + b"b" * 10
    replaced = session.replace_file_content_stream(created, _chunks(b"new ", b"content"))
    assert replaced.id == created.id
    assert api_bytes(session, f"{folder}/{name}") == b"new content"


def test_a_stream_cut_short_creates_and_changes_nothing(server, session):
    folder = my_data(server)
    name = f"cut-{uuid.uuid4().hex[:8]}.bin"
    with pytest.raises(Cut):
        session.upload_file_stream(folder, name, _cut_after(b"x" * MiB))
    with pytest.raises(NotFoundResponse):
        session.stat_path(f"{folder}/{name}")
    kept = session.upload_file(folder, name, b"kept")
    with pytest.raises(Cut):
        session.replace_file_content_stream(kept, _cut_after(b"y" * MiB))
    assert api_bytes(session, f"{folder}/{name}") == b"kept"


def test_a_streamed_request_is_never_sent_twice(server, session):
    server.set_faults(status=503, count=1, method="POST", path_prefix="/api/v3/storage/files/")
    with pytest.raises(OrionServiceError):
        session.upload_file_stream(my_data(server), "never-twice.bin", _chunks(b"z" * 100))
    assert server.count(FILES_POST) == 1  # a sized upload would have been retried


# -- the open-file table -----------------------------------------------------------------------------


@pytest.fixture
def table(server, session, tmp_path: Path) -> Iterator[OpenFileTable]:
    cache = CachedSession(session, root=my_data(server))
    files = OpenFileTable(cache, tmp_path / "staging", tmp_path / "recovery", root=cache.root)
    try:
        yield files
    finally:
        files.close()


def _write_in_order(files: OpenFileTable, fh: int, data: bytes, block: int = MiB) -> None:
    for offset in range(0, len(data), block):
        assert files.write(fh, data[offset : offset + block], offset) == len(
            data[offset : offset + block]
        )


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_file_written_in_order_uploads_while_it_is_written(server, session, table):
    name = f"/seq-{uuid.uuid4().hex[:8]}.bin"
    data = os.urandom(STREAM_MIN_SIZE + 3 * MiB + 123)
    fh = table.create(name, os.O_WRONLY)
    _write_in_order(table, fh, data)
    assert table.upload_stats().streaming == 1
    _wait(lambda: server.count(FILES_POST) == 1)  # the request is on its way before close()
    with pytest.raises(NotFoundResponse):  # ... and commits nothing before the body ends
        session.stat_path(my_data(server) + name)
    table.flush(fh)
    table.release(fh)
    assert api_bytes(session, my_data(server) + name) == data
    assert server.count(FILES_POST) == 1  # one request: the stream, nothing sent again
    assert table.upload_stats().streaming == 0


def test_an_o_trunc_rewrite_in_order_streams_a_replacement(server, session, table):
    name = f"/rewrite-{uuid.uuid4().hex[:8]}.bin"
    session.upload_file(my_data(server), name[1:], b"old content")
    entry = table._store.lookup(name)
    data = os.urandom(STREAM_MIN_SIZE + MiB)
    fh = table.open(name, entry, os.O_WRONLY | os.O_TRUNC, writable=True, truncate=True)
    _write_in_order(table, fh, data)
    _wait(lambda: server.count(CONTENT_PUT) == 1)
    table.release(fh)
    assert api_bytes(session, my_data(server) + name) == data
    assert server.count(CONTENT_PUT) == 1


def test_a_write_behind_the_end_cuts_the_stream_and_the_staged_copy_is_uploaded(
    server, session, table
):
    name = f"/seek-{uuid.uuid4().hex[:8]}.bin"
    data = bytearray(os.urandom(STREAM_MIN_SIZE + 2 * MiB))
    fh = table.create(name, os.O_WRONLY)
    _write_in_order(table, fh, bytes(data))
    _wait(lambda: server.count(FILES_POST) == 1)
    table.write(fh, b"HEADER", 0)  # tar, zip: a header rewritten at the end
    data[0:6] = b"HEADER"
    table.release(fh)
    assert api_bytes(session, my_data(server) + name) == bytes(data)
    assert server.count(FILES_POST) == 2  # the cut stream, then the staged copy


def test_random_writes_keep_the_file_staged_until_close(server, session, table):
    name = f"/random-{uuid.uuid4().hex[:8]}.bin"
    fh = table.create(name, os.O_WRONLY)
    table.write(fh, b"tail", STREAM_MIN_SIZE + MiB)  # a hole first: not in order
    table.write(fh, b"x" * STREAM_MIN_SIZE, 0)
    assert table.upload_stats().streaming == 0
    assert server.count(FILES_POST) == 0
    table.release(fh)
    stored = api_bytes(session, my_data(server) + name)
    assert len(stored) == STREAM_MIN_SIZE + MiB + 4 and stored.endswith(b"tail")


def test_a_failed_stream_falls_back_to_the_staged_copy(server, session, table):
    server.set_faults(drop=True, count=1, method="POST", path_prefix="/api/v3/storage/files/")
    name = f"/dropped-{uuid.uuid4().hex[:8]}.bin"
    data = os.urandom(STREAM_MIN_SIZE + MiB)
    fh = table.create(name, os.O_WRONLY)
    _write_in_order(table, fh, data)
    table.flush(fh)  # the stream failed; close() sends the staged copy instead
    table.release(fh)
    assert api_bytes(session, my_data(server) + name) == data
    listed = session.ls_path(my_data(server))["results"]
    assert [e["name"] for e in listed].count(name[1:]) == 1  # no duplicate from the stream


def test_when_the_fallback_fails_too_close_fails_and_the_data_is_kept(
    server, session, table, tmp_path
):
    server.set_faults(status=403, method="POST", path_prefix="/api/v3/storage/files/")
    name = f"/refused-{uuid.uuid4().hex[:8]}.bin"
    data = os.urandom(STREAM_MIN_SIZE + MiB)
    fh = table.create(name, os.O_WRONLY)
    _write_in_order(table, fh, data)
    with pytest.raises(PermissionError):
        table.flush(fh)
    with pytest.raises(PermissionError):
        table.release(fh)
    kept = list((tmp_path / "recovery").iterdir())
    assert [p.read_bytes() for p in kept] == [data]


# -- a real mount --------------------------------------------------------------------------------


def test_a_sequential_copy_through_the_mount_is_stored_whole(server, session, mount_factory):
    mounted = mount_factory(server)
    source = mounted.path.parent / "source.bin"
    data = os.urandom(3 * STREAM_MIN_SIZE + 12345)
    source.write_bytes(data)
    target = mounted.unique("copy").with_suffix(".bin")
    server.reset_counters()
    sh("dd", f"if={source}", f"of={target}", "bs=1M", "status=none")
    assert api_bytes(session, mounted.orion(target.name)) == data
    assert server.count(FILES_POST) == 1
    assert target.read_bytes() == data
