"""The data cache's parts without a server: the chunk store (orionfs.fs.datacache) and its index,
the single-flight chunk fetcher, the memory budget, the read-ahead across files and keep_cache.

Each test names the rule it checks; a fake clock drives use times and streaks, never sleep.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orionfs.exceptions import OrionConnectionError
from orionfs.fs.budget import MemoryBudget
from orionfs.fs.chunks import ChunkFetcher
from orionfs.fs.crossfile import CrossFileReadAhead
from orionfs.fs.datacache import DataCache, cache_dir, version_key
from orionfs.fs.entry import Entry
from orionfs.fs.readahead import ReadAhead
from orionfs.fs.reads import ReadPath

MiB = 1 << 20


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def file_entry(ident: int, size: int, mtime_ns: int = 1_700_000_000_000_000_000) -> Entry:
    return Entry("file", ident, f"f{ident}", f"/f{ident}", size, mtime_ns, mtime_ns)


def pattern(size: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(256)) * (size // 256) + b"z" * (size % 256)


class CountingStore:
    """A ranged-read store over in-memory contents, counting requests."""

    def __init__(self) -> None:
        self.contents: dict[int, bytes] = {}
        self.calls: list[tuple[int, int, int]] = []
        self.lock = threading.Lock()
        self.delay = 0.0
        self.fail = 0

    def put(self, ident: int, data: bytes) -> Entry:
        self.contents[ident] = data
        return file_entry(ident, len(data))

    def read(self, entry: Entry, offset: int, length: int) -> bytes:
        with self.lock:
            self.calls.append((entry.id or 0, offset, length))
            if self.fail:
                self.fail -= 1
                raise OrionConnectionError("dropped")
        if self.delay:
            time.sleep(self.delay)
        return bytearray(self.contents[entry.id or 0][offset : offset + length])


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[DataCache]:
    data = DataCache(tmp_path / "cache", max_size=64 * MiB, flush_interval=0.05)
    try:
        yield data
    finally:
        data.close()


# -- the chunk store -------------------------------------------------------------------------------


def test_chunks_are_0600_files_in_0700_folders(cache: DataCache) -> None:
    key = version_key(file_entry(1, 10))
    assert key is not None
    assert cache.write(key, 0, b"0123456789")
    chunk = cache.directory / "chunks" / cache.name(key, 0)
    assert stat.S_IMODE(chunk.stat().st_mode) == 0o600
    for folder in (cache.directory, chunk.parent, chunk.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache.directory / "index.db").stat().st_mode) == 0o600


def test_a_chunk_reads_back_whole_or_in_part(cache: DataCache) -> None:
    key = version_key(file_entry(1, 10))
    assert key is not None
    cache.write(key, 0, b"0123456789")
    assert cache.read(key, 0, 10) == b"0123456789"
    assert cache.read(key, 0, 10, 3, 4) == b"3456"
    assert cache.read(key, 1, 10) is None


def test_the_key_is_the_items_version_so_a_changed_file_misses() -> None:
    old = file_entry(1, 10, mtime_ns=1)
    assert version_key(old) != version_key(file_entry(1, 10, mtime_ns=2))
    assert version_key(old) != version_key(file_entry(1, 11, mtime_ns=1))
    assert version_key(old) != version_key(file_entry(2, 10, mtime_ns=1))
    assert version_key(Entry("file", None, "new", "/new", 10, 1, 1)) is None  # not uploaded
    assert version_key(file_entry(1, 10, mtime_ns=0)) is None  # no version to key by
    assert version_key(Entry("folder", 3, "d", "/d", 0, 1, 1)) is None


def test_a_chunk_of_the_wrong_size_is_dropped_not_served(cache: DataCache) -> None:
    key = version_key(file_entry(1, 10))
    assert key is not None
    cache.write(key, 0, b"0123456789")
    chunk = cache.directory / "chunks" / cache.name(key, 0)
    os.truncate(chunk, 4)  # a crash of the machine before the data reached the disk
    assert cache.read(key, 0, 10) is None
    assert not chunk.exists()


def test_a_half_written_chunk_of_a_killed_mount_is_never_served(tmp_path: Path) -> None:
    first = DataCache(tmp_path / "c", max_size=64 * MiB, flush_interval=0.05)
    key = version_key(file_entry(1, MiB))
    assert key is not None
    chunk = first.directory / "chunks" / first.name(key, 0)
    chunk.parent.mkdir(mode=0o700)
    dead = 2**22 + 12345  # above pid_max: no such process
    partial = chunk.with_name(f".{chunk.name}.{dead}.1.tmp")
    partial.write_bytes(b"x" * 1000)  # what the killed process had written so far
    (first.directory / "sessions" / str(dead)).touch()  # ... and its marker
    first.index.close()  # no clean close of its own: the marker of this process stays too
    second = DataCache(tmp_path / "c", max_size=64 * MiB, flush_interval=0.05)
    try:
        assert second.read(key, 0, MiB) is None
        second.flush()  # the reconcile (queued at start) has run
        assert not partial.exists()
        assert not (second.directory / "sessions" / str(dead)).exists()
        assert second.usage().chunks == 0
    finally:
        second.close()


def test_an_unclean_end_is_reconciled_so_orphan_chunks_are_counted(tmp_path: Path) -> None:
    first = DataCache(tmp_path / "c", max_size=64 * MiB, flush_interval=60)
    key = version_key(file_entry(1, 100))
    assert key is not None
    first.write(key, 0, b"y" * 100)  # renamed into place; its index row still only queued
    dead = 2**22 + 54321
    (first.directory / "sessions" / str(dead)).touch()
    second = DataCache(tmp_path / "c", max_size=64 * MiB, flush_interval=0.05)
    try:
        second.flush()
        assert second.usage().bytes == 100
        assert second.read(key, 0, 100) == b"y" * 100
    finally:
        second.close()
        first.index.close()


def test_a_damaged_index_is_rebuilt_from_the_files(tmp_path: Path) -> None:
    first = DataCache(tmp_path / "c", max_size=64 * MiB, flush_interval=0.05)
    key = version_key(file_entry(1, 100))
    assert key is not None
    first.write(key, 0, b"y" * 100)
    first.close()
    (tmp_path / "c" / "index.db").write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp_path / 'c' / 'index.db'}{suffix}").unlink(missing_ok=True)
    second = DataCache(tmp_path / "c", max_size=64 * MiB, flush_interval=0.05)
    try:
        second.flush()
        assert second.index.rebuilt
        assert second.usage().bytes == 100
        assert second.read(key, 0, 100) == b"y" * 100
    finally:
        second.close()


def test_least_recently_used_chunks_are_evicted_under_the_maximum(tmp_path: Path) -> None:
    clock = FakeClock()
    data = DataCache(tmp_path / "c", max_size=4 * MiB, clock=clock, flush_interval=60)
    try:
        keys = [version_key(file_entry(i, MiB)) for i in range(6)]
        for key in keys[:4]:
            assert key is not None
            data.write(key, 0, b"a" * MiB)
            clock.now += 1
        assert data.read(keys[0], 0, MiB) is not None  # used again: now the most recent
        clock.now += 1
        data.flush()
        for key in keys[4:]:
            assert key is not None
            data.write(key, 0, b"b" * MiB)
            clock.now += 1
        data.flush()
        assert data.usage().bytes <= 4 * MiB * 0.9 + MiB
        present = [k for k in keys if data.has(k, 0, MiB)]  # type: ignore[arg-type]
        assert keys[0] in present and keys[5] in present
        assert keys[1] not in present and keys[2] not in present
    finally:
        data.close()


def test_two_mounts_share_one_cache(tmp_path: Path) -> None:
    one = DataCache(tmp_path / "c", max_size=64 * MiB, flush_interval=0.05)
    two = DataCache(tmp_path / "c", max_size=64 * MiB, flush_interval=0.05)
    try:
        key = version_key(file_entry(1, MiB))
        assert key is not None

        def write(cache: DataCache) -> None:
            for _ in range(20):
                cache.write(key, 0, b"s" * MiB)

        threads = [threading.Thread(target=write, args=(c,)) for c in (one, two, one, two)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert one.read(key, 0, MiB) == b"s" * MiB
        assert two.read(key, 0, MiB) == b"s" * MiB
        one.flush()
        two.flush()
        assert one.usage() == two.usage()
        assert one.usage().chunks == 1
        leftovers = [p for p in (tmp_path / "c" / "chunks").rglob(".*")]
        assert leftovers == []
    finally:
        one.close()
        two.close()


def test_adopt_makes_an_uploaded_copy_the_cached_one_and_drops_older_versions(
    cache: DataCache, tmp_path: Path
) -> None:
    old, new = file_entry(5, 3 * MiB, mtime_ns=1), file_entry(5, 3 * MiB + 10, mtime_ns=2)
    old_key, new_key = version_key(old), version_key(new)
    assert old_key is not None and new_key is not None
    cache.write(old_key, 0, b"o" * MiB)
    staged = tmp_path / "staged"
    content = pattern(3 * MiB + 10)
    staged.write_bytes(content)
    assert cache.adopt(new, staged, len(content))
    got = b"".join(cache.read(new_key, i, cache.chunk_length(new.size, i)) or b"" for i in range(4))
    assert got == content
    cache.flush()
    assert cache.read(old_key, 0, MiB) is None  # the older version is gone
    assert not cache.adopt(new, staged, 5)  # a size that is not the entry's: not adopted


def test_a_staged_file_given_up_is_linked_whole_not_copied_and_serves_every_chunk(
    cache: DataCache, tmp_path: Path
) -> None:
    entry = file_entry(6, 3 * MiB + 10)
    key = version_key(entry)
    assert key is not None
    staged = tmp_path / "staged"
    content = pattern(entry.size)
    staged.write_bytes(content)
    assert cache.adopt(entry, staged, entry.size, take=True)
    whole = cache.directory / "chunks" / cache.name(key, "all")
    assert whole.stat().st_ino == staged.stat().st_ino  # the same file: no byte copied
    assert stat.S_IMODE(whole.stat().st_mode) == 0o600
    staged.unlink()  # what the owner does next
    got = b"".join(cache.read(key, i, cache.chunk_length(entry.size, i)) or b"" for i in range(4))
    assert got == content
    assert cache.read(key, 2, MiB, 100, 50) == content[2 * MiB + 100 : 2 * MiB + 150]
    assert cache.has(key, 3, 10)
    cache.flush()
    assert cache.usage().bytes == entry.size
    moved = file_entry(6, entry.size, mtime_ns=entry.mtime_ns + 1)
    assert cache.rekey(entry, moved)  # a rename by this mount: the whole copy moves too
    new_key = version_key(moved)
    assert new_key is not None and cache.read(new_key, 3, 10) == content[3 * MiB :]
    assert cache.read(key, 3, 10) is None


def test_a_whole_copy_of_the_wrong_size_is_dropped_and_other_sources_are_copied(
    cache: DataCache, tmp_path: Path
) -> None:
    entry = file_entry(7, 2 * MiB)
    key = version_key(entry)
    assert key is not None
    staged = tmp_path / "staged"
    staged.write_bytes(pattern(entry.size + 5))  # longer than the entry: copied, not linked
    assert cache.adopt(entry, staged, entry.size, take=True)
    assert not (cache.directory / "chunks" / cache.name(key, "all")).exists()
    assert cache.read(key, 1, MiB) == pattern(entry.size + 5)[MiB : 2 * MiB]
    other = file_entry(8, 2 * MiB)
    other_key = version_key(other)
    assert other_key is not None
    exact = tmp_path / "exact"
    exact.write_bytes(pattern(other.size))
    assert cache.adopt(other, exact, other.size, take=True)
    whole = cache.directory / "chunks" / cache.name(other_key, "all")
    os.truncate(whole, MiB)  # damaged (a crash of the machine): dropped, never served
    assert cache.read(other_key, 0, MiB) is None
    assert not whole.exists()


def test_clear_empties_the_cache(cache: DataCache) -> None:
    key = version_key(file_entry(1, 100))
    assert key is not None
    cache.write(key, 0, b"c" * 100)
    cache.clear()
    assert cache.read(key, 0, 100) is None
    assert cache.usage().bytes == 0


def test_each_server_and_user_has_its_own_folder(tmp_path: Path) -> None:
    a = cache_dir(tmp_path, "http://127.0.0.1:8000", "alice")
    assert a == cache_dir(tmp_path, "http://127.0.0.1:8000/", "alice")
    assert a != cache_dir(tmp_path, "http://127.0.0.1:8000", "bob")
    assert a != cache_dir(tmp_path, "http://127.0.0.1:8001", "alice")
    assert a.parent == tmp_path and "alice" in a.name


# -- the chunk fetcher -----------------------------------------------------------------------------


def test_a_random_small_read_fetches_one_chunk_not_the_file(cache: DataCache) -> None:
    store = CountingStore()
    data = pattern(10 * MiB)
    entry = store.put(1, data)
    fetcher = ChunkFetcher(store.read, cache)
    assert bytes(fetcher.read(entry, 5 * MiB + 100, 4096)) == data[5 * MiB + 100 : 5 * MiB + 4196]
    assert store.calls == [(1, 5 * MiB, MiB)]
    assert bytes(fetcher.read(entry, 5 * MiB, MiB)) == data[5 * MiB : 6 * MiB]
    assert len(store.calls) == 1  # the second read: from disk


def test_missing_runs_cost_one_request_each(cache: DataCache) -> None:
    store = CountingStore()
    data = pattern(8 * MiB + 5)
    entry = store.put(1, data)
    fetcher = ChunkFetcher(store.read, cache)
    fetcher.read(entry, 2 * MiB, MiB)
    fetcher.read(entry, 5 * MiB, MiB)
    store.calls.clear()
    assert bytes(fetcher.read(entry, 0, entry.size)) == data
    assert store.calls == [(1, 0, 2 * MiB), (1, 3 * MiB, 2 * MiB), (1, 6 * MiB, 2 * MiB + 5)]
    fetcher.flush()  # chunks are written to disk behind the readers
    assert fetcher.cached(entry, 0, entry.size) == data


def test_concurrent_readers_of_a_chunk_share_one_request(cache: DataCache) -> None:
    store = CountingStore()
    store.delay = 0.1
    entry = store.put(1, pattern(2 * MiB))
    fetcher = ChunkFetcher(store.read, cache)
    barrier = threading.Barrier(6)

    def read(offset: int) -> bytes:
        barrier.wait()
        return bytes(fetcher.read(entry, offset, 4096))

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(read, [0, 10, 4096, 8192, 100_000, 200_000]))
    assert [len(r) for r in results] == [4096] * 6
    assert len(store.calls) == 1


def test_a_failed_fetch_is_raised_to_every_waiter_then_fetched_again(cache: DataCache) -> None:
    store = CountingStore()
    entry = store.put(1, pattern(MiB))
    store.fail = 1
    fetcher = ChunkFetcher(store.read, cache)
    with pytest.raises(OrionConnectionError):
        fetcher.read(entry, 0, 10)
    assert bytes(fetcher.read(entry, 0, 10)) == pattern(MiB)[:10]
    assert len(store.calls) == 2


# -- the budget and the read-ahead -----------------------------------------------------------------


def test_needed_bytes_are_always_granted_and_ahead_bytes_within_a_fair_share() -> None:
    budget = MemoryBudget(limit=64 * MiB, floor=4 * MiB)
    a, b = budget.share(), budget.share()
    assert a.reserve(60 * MiB)  # alone: the whole budget
    assert not b.reserve(8 * MiB)  # no room
    assert b.reserve(8 * MiB, needed=True)  # a read waits for it: granted anyway
    a.release(60 * MiB)
    assert a.reserve(30 * MiB)  # two readers: half each
    assert not a.reserve(4 * MiB)
    b.close()
    a.close()
    assert budget.held == 0


def test_readers_stay_within_the_budget_and_a_lone_reader_within_its_window() -> None:
    store = CountingStore()
    data = pattern(64 * MiB)
    budget = MemoryBudget(limit=48 * MiB, floor=4 * MiB)
    with ThreadPoolExecutor(4) as pool:
        readers = []
        for i in range(4):
            entry = store.put(i, data)
            readers.append(
                ReadAhead(
                    lambda o, n, e=entry: store.read(e, o, n),
                    len(data),
                    pool,
                    window=32 * MiB,
                    share=budget.share(),
                )
            )
        for offset in range(0, 32 * MiB, MiB):
            for reader in readers:
                assert bytes(reader.read(offset, MiB)) == data[offset : offset + MiB]
        assert budget.peak <= 48 * MiB + 4 * 8 * MiB  # what reads waited for may exceed it
        for reader in readers:
            reader.close()
        assert budget.held == 0
        alone = ReadAhead(
            lambda o, n: store.read(file_entry(0, len(data)), o, n),
            len(data),
            pool,
            window=32 * MiB,
            share=budget.share(),
        )
        for offset in range(0, 8 * MiB, MiB):
            alone.read(offset, MiB)
        assert alone._next >= 8 * MiB + 24 * MiB  # noqa: SLF001 - not throttled: a full window
        alone.close()


# -- the read-ahead across files -------------------------------------------------------------------


class Folder:
    """A folder listing of small files, and a fetch that records what is fetched ahead."""

    def __init__(self, n: int, size: int = 4096) -> None:
        self.entries = {
            f"f{i:03d}": Entry("file", 100 + i, f"f{i:03d}", f"/d/f{i:03d}", size, 1, 1)
            for i in range(n)
        }
        self.fetched: list[str] = []
        self.event = threading.Event()

    def listing(self, path: str) -> dict[str, Entry] | None:
        return self.entries if path == "/d" else None

    def fetch(self, entry: Entry) -> None:
        self.fetched.append(entry.name)
        self.event.set()


def _ahead(folder: Folder, clock: FakeClock) -> CrossFileReadAhead:
    return CrossFileReadAhead(folder.listing, folder.fetch, lambda e: True, clock=clock)


def _wait_idle(ahead: CrossFileReadAhead) -> None:
    deadline = time.monotonic() + 5
    while ahead._in_flight and time.monotonic() < deadline:  # noqa: SLF001
        time.sleep(0.01)


def test_one_file_read_whole_fetches_nothing_ahead() -> None:
    folder, clock = Folder(20), FakeClock()
    ahead = _ahead(folder, clock)
    entry = folder.entries["f000"]
    ahead.opened("/d/f000", entry)
    ahead.finished("/d/f000", entry, whole=True)
    _wait_idle(ahead)
    ahead.close()
    assert folder.fetched == []


def test_files_read_whole_in_order_fetch_the_next_ones_ahead_in_a_growing_window() -> None:
    folder, clock = Folder(200), FakeClock()
    ahead = _ahead(folder, clock)
    for i in range(2):
        name = f"f{i:03d}"
        ahead.opened(f"/d/{name}", folder.entries[name])
        ahead.finished(f"/d/{name}", folder.entries[name], whole=True)
        clock.now += 0.01
    _wait_idle(ahead)
    assert sorted(folder.fetched) == ["f002", "f003", "f004", "f005"]  # streak 2: 4 ahead
    for i in range(2, 6):
        name = f"f{i:03d}"
        ahead.opened(f"/d/{name}", folder.entries[name])
        ahead.finished(f"/d/{name}", folder.entries[name], whole=True)
        _wait_idle(ahead)
    assert len(folder.fetched) == len(set(folder.fetched))  # never the same file twice
    assert len(folder.fetched) >= 40  # streak 6: 64 ahead
    ahead.close()


def test_a_file_not_read_whole_or_a_pause_ends_the_streak() -> None:
    folder, clock = Folder(50), FakeClock()
    ahead = _ahead(folder, clock)
    e0, e1, e2 = folder.entries["f000"], folder.entries["f001"], folder.entries["f002"]
    ahead.finished("/d/f000", e0, whole=True)
    ahead.finished("/d/f001", e1, whole=False)  # a head of each file: a thumbnailer
    ahead.finished("/d/f002", e2, whole=True)
    clock.now += 60  # a pause: a person, not a copy
    ahead.finished("/d/f003", folder.entries["f003"], whole=True)
    _wait_idle(ahead)
    ahead.close()
    assert folder.fetched == []


def test_files_too_large_are_not_fetched_ahead() -> None:
    folder, clock = Folder(10, size=64 * MiB), FakeClock()
    ahead = _ahead(folder, clock)
    for name in ("f000", "f001", "f002"):
        ahead.finished(f"/d/{name}", folder.entries[name], whole=True)
    _wait_idle(ahead)
    ahead.close()
    assert folder.fetched == []


# -- keep_cache ------------------------------------------------------------------------------------


def test_the_kernel_keeps_its_pages_only_of_the_version_opened_last() -> None:
    reads = ReadPath(CountingStore())
    try:
        v1, v2 = file_entry(1, 10, mtime_ns=1), file_entry(1, 10, mtime_ns=2)
        assert not reads.opened("/a", v1)  # first open: nothing known of the kernel's pages
        assert reads.opened("/a", v1)  # same version: keep them
        assert not reads.opened("/a", v2)  # changed: the kernel drops them
        assert reads.opened("/a", v2)
        assert not reads.opened("/b", v2)  # another path: another inode
        assert not reads.opened("/a", v2, truncate=True)
    finally:
        reads.close()


# -- the command line ------------------------------------------------------------------------------


def test_cache_du_and_clear_report_and_empty_each_cache_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orionfs.cli import main

    folder = cache_dir(tmp_path, "http://127.0.0.1:9", "alice")
    data = DataCache(folder, max_size=64 * MiB, owner="http://127.0.0.1:9 alice")
    key = version_key(file_entry(1, 3000))
    assert key is not None
    data.write(key, 0, b"d" * 3000)
    data.close()
    assert main(["cache", "du", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2.9K" in out and "1 chunks" in out and "alice" in out
    assert main(["cache", "clear", "--all", "--cache-dir", str(tmp_path)]) == 0
    assert "cleared 2.9K" in capsys.readouterr().out
    again = DataCache(folder, max_size=64 * MiB)
    try:
        assert again.read(key, 0, 3000) is None
        assert again.usage().bytes == 0
    finally:
        again.close()


def test_sizes_are_read_with_binary_units() -> None:
    import argparse

    from orionfs.cli.cache import parse_size

    assert parse_size("4096") == 4096
    assert parse_size("512M") == 512 << 20
    assert parse_size("1.5GiB") == 3 << 29
    assert parse_size("10g") == 10 << 30
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size("ten gigs")


def test_mount_refuses_sizes_too_small(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from orionfs.cli import main

    assert main(["mount", str(tmp_path), "--cache-max-size", "1K"]) == 1
    assert "--cache-max-size" in capsys.readouterr().err
    assert main(["mount", str(tmp_path), "--read-ahead-memory", "1M"]) == 1
    assert "--read-ahead-memory" in capsys.readouterr().err


def test_a_cold_read_from_the_start_waits_for_a_small_request_not_a_chunk(
    cache: DataCache,
) -> None:
    store = CountingStore()
    data = pattern(4 * MiB)
    entry = store.put(1, data)
    fetcher = ChunkFetcher(store.read, cache)
    with ThreadPoolExecutor(4) as pool:
        reader = ReadAhead(
            lambda o, n: fetcher.read(entry, o, n),
            entry.size,
            pool,
            align=MiB,
            first_fetch=lambda o, n: store.read(entry, o, n),
        )
        assert bytes(reader.read(0, 4096)) == data[:4096]
        assert store.calls == [(1, 0, 128 << 10)]  # the first byte's request: small
        out = bytearray(reader.read(4096, (128 << 10) - 4096))
        for offset in range(128 << 10, len(data), 256 << 10):
            out += reader.read(offset, 256 << 10)
        assert bytes(out) == data[4096:]
        reader.close()
    fetcher.flush()
    assert fetcher.cached(entry, 0, entry.size) == data  # chunk 0 too: the next segment took it
