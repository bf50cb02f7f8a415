"""Content in chunks (``ChunkFetcher``): from the data cache where it holds them, else one ranged
request per run of missing chunks, written to the cache as they arrive; one fetch per chunk at a
time, however many readers want it (single-flight).

Every reader of a cacheable file goes through one ChunkFetcher: a handle's read-ahead
(orionfs.fs.readahead, whose segments are whole chunks), the read-ahead across files
(orionfs.fs.crossfile) and a read answered from the disk alone (``cached``). A chunk being fetched
is handed to the readers waiting for it from memory, and written to disk behind them by one writer
thread; it stays "in flight" until it is on disk, so no reader ever finds it neither in flight nor
on disk while it is being stored. Readers wait for the disk only when WRITE_BEHIND bytes are already
queued (a disk slower than the network for a while: sustained reads then go at the disk's pace); a
disk stuck for WRITE_WAIT seconds is given up on: those chunks are not cached (``skipped``).

No FUSE imports, no errnos.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from orionfs.fs.datacache import DataCache
from orionfs.fs.entry import Entry

__all__ = ["ChunkFetcher"]

Fetch = Callable[[Entry, int, int], bytes]

#: Bytes of fetched chunks queued for the disk at most (readers do not wait for those writes) ...
WRITE_BEHIND: int = 64 << 20
#: ... and how long a fetch waits for room in the queue before its chunks go uncached.
WRITE_WAIT: float = 1.0


class ChunkFetcher:
    """Chunks of remote files through the data cache ``cache``; ``fetch(entry, offset, length)``
    is the ranged request (orionfs.fs.cache.CachedSession.read). Thread-safe."""

    def __init__(self, fetch: Fetch, cache: DataCache) -> None:
        self._fetch = fetch
        self.cache = cache
        self.chunk_size = cache.chunk_size
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # the writer made room in its queue
        self._flights: dict[tuple[str, int], Future[Any]] = {}
        self.requests = 0  # ranged requests made (for stats and tests)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orionfs-cache-write")
        self._queued = 0  # bytes waiting for the writer
        self.skipped = 0  # chunks not cached: the disk was behind

    def cacheable(self, entry: Entry) -> bool:
        """Whether reads of ``entry`` go through the cache."""
        return self.cache.cacheable(entry)

    def cached(self, entry: Entry, offset: int, length: int) -> bytes | None:
        """Bytes ``[offset, offset + length)`` from the disk alone; None unless every chunk they
        span is there. No request, no waiting."""
        key = self.cache.key(entry)
        end = min(entry.size, offset + length)
        if key is None or offset >= end:
            return None if key is None else b""
        size, step = entry.size, self.chunk_size
        first, last = offset // step, (end - 1) // step
        if first == last:
            expected = self.cache.chunk_length(size, first)
            return self.cache.read(key, first, expected, offset - first * step, end - offset)
        parts = []
        for index in range(first, last + 1):
            lo = max(offset, index * step) - index * step
            hi = min(end, (index + 1) * step) - index * step
            data = self.cache.read(key, index, self.cache.chunk_length(size, index), lo, hi - lo)
            if data is None:
                return None
            parts.append(data)
        return b"".join(parts)

    def read(self, entry: Entry, offset: int, length: int) -> Any:
        """Bytes ``[offset, offset + length)`` (fewer at the end of the file): the chunks they span
        from the cache, from a fetch in flight, or fetched now (one request per run of chunks
        missing). Raises what the fetch raised."""
        key = self.cache.key(entry)
        end = min(entry.size, offset + length)
        if offset >= end:
            return b""
        assert key is not None, "read of an entry the cache cannot key"
        step = self.chunk_size
        first, last = offset // step, (end - 1) // step
        futures: dict[int, Future[Any]] = {}
        mine: list[int] = []
        with self._lock:
            for index in range(first, last + 1):
                future = self._flights.get((key, index))
                if future is None:
                    future = self._flights[(key, index)] = Future()
                    mine.append(index)
                futures[index] = future
        if mine:
            whole = self._load(entry, key, mine, futures)
            if whole is not None and len(mine) == last - first + 1:
                # one answer holds the whole range: a view of it, not a copy
                view, start = whole
                return view[offset - start : end - start]
        parts: list[Any] = []
        for index in range(first, last + 1):
            data = futures[index].result()
            lo = max(offset, index * step) - index * step
            hi = min(end, (index + 1) * step) - index * step
            if hi > len(data):  # the file ended early (it changed meanwhile): what there is
                if len(data) > lo:
                    parts.append(memoryview(data)[lo:])
                break
            parts.append(data if (lo, hi) == (0, len(data)) else memoryview(data)[lo:hi])
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def prefetch(self, entry: Entry) -> None:
        """Fetch the whole of a (small) file into the cache, if it is not there already."""
        if entry.size > 0:
            self.read(entry, 0, entry.size)

    def _load(
        self, entry: Entry, key: str, mine: list[int], futures: dict[int, Future[Any]]
    ) -> tuple[Any, int] | None:
        """Resolve the chunks this caller claimed: from disk, else fetched (runs of consecutive
        chunks in one request each), then stored; they leave the flights once stored. Returns
        (answer, its offset in the file) when one request fetched them all."""
        size, step = entry.size, self.chunk_size
        behind: set[int] = set()  # chunks the writer stores (and takes out of the flights)
        whole: tuple[Any, int] | None = None
        try:
            missing: list[int] = []
            for index in mine:
                data = self.cache.read(key, index, self.cache.chunk_length(size, index))
                if data is None:
                    missing.append(index)
                else:
                    futures[index].set_result(data)
            for run in _runs(missing):
                start = run[0] * step
                length = min(size, (run[-1] + 1) * step) - start
                with self._lock:
                    self.requests += 1
                body = self._fetch(entry, start, length)
                view = memoryview(body).cast("B")  # chunks are views of the answer, not copies
                if len(run) == len(mine) and len(view) == length:
                    whole = (view, start)
                chunks = []
                for index in run:
                    lo = index * step - start
                    piece = view[lo : lo + step]
                    futures[index].set_result(piece)
                    if len(piece) == self.cache.chunk_length(size, index):
                        chunks.append((index, piece))
                if self._write_behind(key, chunks, futures):
                    behind.update(index for index, _ in chunks)
        except BaseException as error:
            for index in mine:
                if not futures[index].done():
                    futures[index].set_exception(error)
            raise
        finally:
            self._land(key, [i for i in mine if i not in behind], futures)
        return whole

    def _land(self, key: str, indexes: list[int], futures: dict[int, Future[Any]]) -> None:
        """Chunks are on disk (or will not be): out of the flights."""
        with self._lock:
            for index in indexes:
                if self._flights.get((key, index)) is futures[index]:
                    del self._flights[(key, index)]

    def _write_behind(
        self, key: str, chunks: list[tuple[int, Any]], futures: dict[int, Future[Any]]
    ) -> bool:
        """Queue chunks for the writer; False if the queue is full (they are not cached)."""
        size = sum(len(piece) for _, piece in chunks)

        def room() -> bool:
            return self._queued == 0 or self._queued + size <= WRITE_BEHIND

        with self._lock:
            if not self._room.wait_for(room, WRITE_WAIT):
                self.skipped += len(chunks)
                return False
            self._queued += size

        def write() -> None:
            try:
                for index, piece in chunks:
                    self.cache.write(key, index, piece)
            finally:
                with self._lock:
                    self._queued -= size
                    self._room.notify_all()
                self._land(key, [index for index, _ in chunks], futures)

        try:
            self._writer.submit(write)
        except RuntimeError:  # closed: nothing more is stored
            with self._lock:
                self._queued -= size
                self._room.notify_all()
            return False
        return True

    def flush(self) -> None:
        """Wait until what is queued for the disk is written."""
        try:
            self._writer.submit(lambda: None).result()
        except RuntimeError:  # closed: nothing queued
            pass

    def close(self) -> None:
        """Write what is queued for the disk, then stop the writer."""
        self._writer.shutdown(wait=True)


def _runs(indexes: list[int]) -> list[list[int]]:
    """Consecutive runs of sorted chunk indexes: [1, 2, 4] -> [[1, 2], [4]]."""
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][-1] + 1 == index:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs
