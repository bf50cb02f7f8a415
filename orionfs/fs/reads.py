"""The read side of the open-file table (``ReadPath``): how a handle's reads of remote content are
answered, and what the kernel may keep.

- Each handle reading a file not staged gets a ``FileReader``: a read whose chunks are all in the
  data cache is answered from the disk (no request); otherwise the handle's ReadAhead
  (orionfs.fs.readahead) fetches, in whole chunks through the ChunkFetcher (orionfs.fs.chunks),
  which stores what it fetches. Without a data cache (``--cache-mode off``), or for a file too large
  to cache, the ReadAhead makes plain ranged requests, as before the cache existed.
- Every ReadAhead draws on one MemoryBudget (orionfs.fs.budget): a bound for the whole mount.
- ``opened`` says whether the kernel may keep its page cache of the file (FUSE's ``keep_cache``):
  yes when the version opened (id, size, modified time) is the one last opened at that path, so
  a hot re-read costs no read call at all; no when it changed, and the kernel drops its pages.
- Opens and closes feed the read-ahead across files (orionfs.fs.crossfile).

No FUSE imports, no errnos.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from orionfs.exceptions import OrionConnectionError
from orionfs.fs.budget import MemoryBudget
from orionfs.fs.chunks import ChunkFetcher
from orionfs.fs.crossfile import CrossFileReadAhead, Listing
from orionfs.fs.datacache import DataCache
from orionfs.fs.entry import Entry
from orionfs.fs.readahead import ReadAhead

__all__ = ["FETCH_WORKERS", "FileReader", "ReadPath"]

logger = logging.getLogger(__name__)

#: Concurrent ranged requests of the mount's handles (read-ahead).
FETCH_WORKERS: int = 8
#: Mount paths whose last opened version is remembered for ``keep_cache``.
KERNEL_VERSIONS: int = 50_000


class ContentReader(Protocol):
    """What reads need from the cache (``orionfs.fs.cache.CachedSession.read``)."""

    def read(self, entry: Entry, offset: int, length: int) -> bytes: ...


class FileReader:
    """One handle's reads of one remote file; thread-safe. ``whole`` tells whether every byte of
    the file was read through it (for the read-ahead across files)."""

    def __init__(
        self,
        entry: Entry,
        fetch: Callable[[Entry, int, int], Any],
        pool: ThreadPoolExecutor,
        budget: MemoryBudget,
        fetcher: ChunkFetcher | None = None,
    ) -> None:
        self.entry = entry
        self._fetcher = fetcher if fetcher is not None and fetcher.cacheable(entry) else None
        self._plain = fetch
        self._fetch = self._fetcher.read if self._fetcher is not None else fetch
        self._pool = pool
        self._budget = budget
        self._lock = threading.Lock()
        self._ahead: ReadAhead | None = None
        self._from_start = False
        self._end = 0

    @property
    def whole(self) -> bool:
        return self._from_start and self._end >= self.entry.size

    def read(self, offset: int, size: int) -> Any:
        """Bytes ``[offset, offset + size)`` of the file (fewer at its end); raises what the
        fetch raised."""
        ahead = self._ahead
        data = None
        if self._fetcher is not None and (ahead is None or not ahead.in_run(offset)):
            data = self._fetcher.cached(self.entry, offset, size)
        if data is None:
            data = self._read_ahead().read(offset, size)
        if offset == 0:
            self._from_start = True
        self._end = max(self._end, offset + len(data))
        return data

    def _read_ahead(self) -> ReadAhead:
        """The handle's ReadAhead, made once even when reads of the handle race."""
        with self._lock:
            if self._ahead is None:
                entry, fetch, plain = self.entry, self._fetch, self._plain
                cached = self._fetcher is not None
                self._ahead = ReadAhead(
                    lambda offset, length: fetch(entry, offset, length),
                    entry.size,
                    self._pool,
                    align=self._fetcher.chunk_size if self._fetcher is not None else 1,
                    share=self._budget.share(),
                    # the first bytes of the file come in one small request of their own (not
                    # cached: the next segment brings their chunk), so the first byte never
                    # waits for a whole chunk
                    first_fetch=(lambda offset, length: plain(entry, offset, length))
                    if cached
                    else None,
                )
            return self._ahead

    def close(self) -> None:
        """Drop what was read ahead."""
        with self._lock:
            ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.close()


class ReadPath:
    """The mount's read path: readers, the data cache, the budget, ``keep_cache`` and the
    read-ahead across files.

    ``store``: the ranged requests; ``data``: the data cache (None: off); ``budget``: the memory
    bound of all read-ahead (default: DEFAULT_READ_AHEAD_MEMORY); ``listing``: a folder's cached
    listing, for the read-ahead across files (None, or no data cache: no read-ahead across files).
    """

    def __init__(
        self,
        store: ContentReader,
        data: DataCache | None = None,
        budget: MemoryBudget | None = None,
        listing: Listing | None = None,
        fetch_workers: int = FETCH_WORKERS,
    ) -> None:
        self._store = store
        self.data = data
        self.budget = budget or MemoryBudget()
        self.fetcher = ChunkFetcher(self._request, data) if data is not None else None
        self.cross: CrossFileReadAhead | None = None
        if self.fetcher is not None and listing is not None:
            self.cross = CrossFileReadAhead(
                listing, self.fetcher.prefetch, self.fetcher.cacheable, self.budget
            )
        self._pool = ThreadPoolExecutor(
            max_workers=fetch_workers, thread_name_prefix="orionfs-read"
        )
        self._lock = threading.Lock()
        self._kernel: OrderedDict[str, tuple[str, int, int, int]] = OrderedDict()
        self._stopped = False

    def _request(self, entry: Entry, offset: int, length: int) -> bytes:
        if self._stopped:
            raise OrionConnectionError("the mount is stopping: no more requests to the server")
        return self._store.read(entry, offset, length)

    def reader(self, entry: Entry) -> FileReader:
        """A new handle's reader of ``entry``'s remote content."""
        return FileReader(entry, self._request, self._pool, self.budget, self.fetcher)

    def opened(self, path: str, entry: Entry | None, truncate: bool = False) -> bool:
        """A handle was opened on the remote file ``entry`` at ``path``: True if the kernel may
        keep the pages it holds of the file (the same version was opened there last)."""
        if entry is None or entry.id is None or entry.ctime_ns <= 0:
            return False
        version = entry.version
        with self._lock:
            keep = self._kernel.get(path) == version
            self._kernel[path] = version
            self._kernel.move_to_end(path)
            while len(self._kernel) > KERNEL_VERSIONS:
                self._kernel.popitem(last=False)
        if self.cross is not None and not truncate:
            self.cross.opened(path, entry)
        return keep and not truncate

    def closed(self, path: str, entry: Entry | None, reader: FileReader | None, kept: bool) -> None:
        """A reading handle was closed (``kept``: it was opened with ``keep_cache``)."""
        if reader is not None:
            reader.close()
        if self.cross is not None and entry is not None and entry.id is not None:
            self.cross.finished(path, entry, kept or (reader is not None and reader.whole))

    def stats(self) -> dict[str, int]:
        """Counters of the read path (data cache hits and misses are per chunk)."""
        result = {"budget_held": self.budget.held, "budget_peak": self.budget.peak}
        if self.data is not None and self.fetcher is not None:
            result |= {
                "chunk_hits": self.data.hits,
                "chunk_misses": self.data.misses,
                "chunk_writes": self.data.writes,
                "chunk_requests": self.fetcher.requests,
                "chunk_skipped": self.fetcher.skipped,
            }
        if self.cross is not None:
            result["fetched_ahead"] = self.cross.fetched
        return result

    def stop(self) -> None:
        """No more requests (the mount is ending without waiting for the server)."""
        self._stopped = True
        if self.cross is not None:
            self.cross.close()

    def close(self) -> None:
        """Stop fetching and close the data cache's index."""
        logger.info("read path at close: %s", self.stats())
        self.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.fetcher is not None:
            self.fetcher.close()
        if self.data is not None:
            self.data.close()
