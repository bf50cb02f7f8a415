"""The open-file table's locking and life cycle, without FUSE, against the real server.

Each test names a rule that a past version broke: a reader waited for another descriptor's upload;
two racing reads built two read-aheads; a tag write uploaded around the table's stop; a descriptor
kept writing into the recovery file after its data was kept there.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orionfs.exceptions import DataKeptForRecovery, OrionConnectionError
from orionfs.fs.cache import CachedSession
from orionfs.fs.namespace import Namespace
from orionfs.fs.openfiles import OpenFileTable
from orionfs.fs.readahead import ReadAhead

FILES = "/api/v3/storage/files/"


@pytest.fixture
def table(session: Any, session_workdir: str, tmp_path: Path) -> Iterator[OpenFileTable]:
    cache = CachedSession(session, root=session_workdir)
    files = OpenFileTable(cache, staging_dir=tmp_path / "staging", recovery_dir=tmp_path / "rec")
    try:
        yield files
    finally:
        files.close()


def _put(table: OpenFileTable, name: str, data: bytes) -> None:
    table._store.create_file(f"/{name}", io.BytesIO(data), len(data))  # type: ignore[attr-defined]


def test_a_read_on_another_descriptor_does_not_wait_for_a_stalled_upload(
    server: Any, table: OpenFileTable
) -> None:
    _put(table, "f.txt", b"0123456789")
    entry = table._store.lookup("/f.txt")  # type: ignore[attr-defined]
    writer = table.open("/f.txt", entry, os.O_RDWR, True, False)
    reader = table.open("/f.txt", entry, os.O_RDONLY, False, False)
    table.write(writer, b"ABC", 0)
    server.set_faults(stall=3.0, method="PUT", path_prefix=FILES, count=1)
    upload = threading.Thread(target=table.flush, args=(writer,))
    upload.start()
    try:
        time.sleep(0.3)  # the upload now waits on the server, holding the file's lock
        assert upload.is_alive()
        started = time.monotonic()
        data = table.read(reader, 10, 0)
        waited = time.monotonic() - started
    finally:
        upload.join(10)
    assert bytes(data) == b"ABC3456789"
    assert waited < 1.0, f"the read waited {waited:.2f} s for the upload"
    table.release(reader)
    table.release(writer)


def test_racing_first_reads_of_one_handle_share_one_read_ahead(
    table: OpenFileTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(table, "big.bin", os.urandom(1 << 20))
    entry = table._store.lookup("/big.bin")  # type: ignore[attr-defined]
    fh = table.open("/big.bin", entry, os.O_RDONLY, False, False)
    made: list[ReadAhead] = []

    class SlowToBuild(ReadAhead):
        """A ReadAhead whose construction takes long enough for the reads to race."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.05)
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr("orionfs.fs.reads.ReadAhead", SlowToBuild)
    barrier = threading.Barrier(8)
    results: list[bytes] = []

    def read() -> None:
        barrier.wait()
        results.append(bytes(table.read(fh, 4096, 0)))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8 and len(set(results)) == 1
    assert len(made) == 1
    table.release(fh)


def test_a_tag_write_after_stop_uploads_nothing(
    server: Any, table: OpenFileTable, tmp_path: Path
) -> None:
    namespace = Namespace(table._store, table)  # type: ignore[arg-type]
    fh = table.create("/new.txt", os.O_WRONLY | os.O_CREAT)
    table.write(fh, b"data", 0)
    table.stop()
    server.reset_counters()
    with pytest.raises(OrionConnectionError):
        namespace.tagged_entry("/new.txt")
    assert server.counters()["total"] == 0
    with pytest.raises(OrionConnectionError):
        table.release(fh)
    assert [p.read_bytes() for p in (tmp_path / "rec").iterdir()] == [b"data"]


def test_a_descriptor_cannot_write_into_data_kept_for_recovery(
    table: OpenFileTable, tmp_path: Path
) -> None:
    fh = table.create("/kept.txt", os.O_RDWR | os.O_CREAT)
    table.write(fh, b"first", 0)
    table.stop()
    kept = table.abandon()
    assert len(kept) == 1
    recovered = kept[0][1]
    assert recovered.read_bytes() == b"first"
    assert recovered.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "rec").stat().st_mode & 0o777 == 0o700
    with pytest.raises(DataKeptForRecovery):
        table.write(fh, b"second", 0)
    with pytest.raises(DataKeptForRecovery):
        table.read(fh, 5, 0)
    assert recovered.read_bytes() == b"first"


def test_a_named_staging_folder_is_private(table: OpenFileTable) -> None:
    assert table.staging_dir.stat().st_mode & 0o777 == 0o700
