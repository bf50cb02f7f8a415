"""Read-ahead across files (``CrossFileReadAhead``): when the files of one folder are read whole,
one after the other (``cp -r``, ``grep -r``, ``tar c``, ``rsync``), the next small files of the
folder, in listing order, are fetched into the data cache ahead of the reader.

What sets it off: two files of one folder read whole (from the first byte to the last) within
``STREAK_GAP`` seconds of each other. A listing (``ls``, ``gio list``) opens nothing and a single
``cat`` reads one file, so neither does. Each further whole file (or open of a file of a folder on
a streak) moves the window ahead of the file just opened; it doubles with the streak, from 4 files
up to ``max_files``, so a short run of reads fetches little ahead. A file not read whole (a
reader that looks at the head of each file, or seeks) ends the streak.

What it fetches: files of the folder's cached listing (never a listing request of its own) of at
most ``max_file_size`` bytes, not fetched yet, with at most ``workers`` requests and
``max_bytes`` in flight; the bytes in flight also come out of the mount's read-ahead budget
(orionfs.fs.budget). Fetched files go to the data cache (orionfs.fs.chunks); the reader's own read
of a file still in flight waits for that fetch instead of making another.

No FUSE imports, no errnos.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from orionfs.client import wire
from orionfs.fs.budget import MemoryBudget
from orionfs.fs.entry import Entry
from orionfs.fs.mountpath import split

__all__ = ["CrossFileReadAhead"]

logger = logging.getLogger(__name__)

#: Seconds between two whole-file reads of one folder that still make a streak.
STREAK_GAP: float = 5.0
#: Requests in flight ahead of readers, for the whole mount.
WORKERS: int = 16
#: Largest file fetched ahead.
MAX_FILE_SIZE: int = 4 << 20
#: Most files ahead of the reader in one folder.
MAX_FILES: int = 64
#: Most bytes in flight ahead of readers.
MAX_BYTES: int = 32 << 20
#: Folders whose streak is remembered.
MAX_FOLDERS: int = 64

Listing = Callable[[str], Mapping[str, Entry] | None]


@dataclass
class _Folder:
    """What is known of the reads in one folder."""

    streak: int = 0
    last: float = 0.0
    scheduled: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)  # files in listing order
    positions: dict[str, int] = field(default_factory=dict)
    source: tuple[int, int] = (0, -1)  # (id, length) of the listing ``names`` was made from


class CrossFileReadAhead:
    """Fetches the next small files of a folder read file after file.

    ``listing(folder)``: the folder's cached listing (display name -> Entry), None if not cached;
    ``fetch(entry)``: fetch a whole file into the data cache; ``cacheable(entry)``: whether the
    cache keeps it. Thread-safe.
    """

    def __init__(
        self,
        listing: Listing,
        fetch: Callable[[Entry], None],
        cacheable: Callable[[Entry], bool],
        budget: MemoryBudget | None = None,
        workers: int = WORKERS,
        max_file_size: int = MAX_FILE_SIZE,
        max_files: int = MAX_FILES,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._listing = listing
        self._fetch = fetch
        self._cacheable = cacheable
        self._share = budget.share() if budget is not None else None
        self._workers = workers
        self._max_file_size = max_file_size
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._folders: OrderedDict[str, _Folder] = OrderedDict()
        self._in_flight = 0
        self._bytes = 0
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="orionfs-ahead")
        self.fetched = 0  # files fetched ahead (for stats and tests)

    # -- events from the open-file table -----------------------------------------------------------

    def opened(self, path: str, entry: Entry) -> None:
        """A file was opened for reading: on a streak, move the window ahead of it."""
        folder, name = split(path)
        with self._lock:
            state = self._folders.get(folder)
            if state is not None and self._on_streak(state):
                self._ahead(folder, state, name)

    def finished(self, path: str, entry: Entry, whole: bool) -> None:
        """A reader closed a file, having read all of it (``whole``) or not."""
        if entry.size == 0:
            return  # nothing to read: neither breaks nor makes a streak
        folder, name = split(path)
        now = self._clock()
        with self._lock:
            state = self._folders.get(folder)
            if state is None:
                if not whole:
                    return
                state = self._folders[folder] = _Folder()
                while len(self._folders) > MAX_FOLDERS:
                    self._folders.popitem(last=False)
            self._folders.move_to_end(folder)
            if not whole:
                state.streak = 0
                return
            state.streak = state.streak + 1 if self._on_streak(state, now) else 1
            state.last = now
            if state.streak >= 2:
                self._ahead(folder, state, name)

    def close(self) -> None:
        """Stop fetching ahead (what is queued is dropped)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- internals ---------------------------------------------------------------------------------

    def _on_streak(self, state: _Folder, now: float | None = None) -> bool:
        now = self._clock() if now is None else now
        return state.streak >= 1 and now - state.last <= STREAK_GAP

    def _ahead(self, folder: str, state: _Folder, name: str) -> None:
        """Schedule the files after ``name`` in the window (lock held; submits only)."""
        if self._closed:
            return
        listing = self._listing(folder)
        if listing is None:
            return
        if state.source != (id(listing), len(listing)):
            try:
                names = [n for n, e in listing.items() if e.kind in wire.DOWNLOADABLE_TYPES]
            except RuntimeError:  # the cache changed the listing meanwhile: next time
                return
            state.names = names
            state.positions = {n: i for i, n in enumerate(names)}
            state.source = (id(listing), len(listing))
        position = state.positions.get(name)
        if position is None:
            return
        window = min(self._max_files, 1 << min(state.streak, 30))
        for candidate in state.names[position + 1 : position + 1 + window]:
            if candidate in state.scheduled:
                continue
            entry = listing.get(candidate)
            if entry is None or not 0 < entry.size <= self._max_file_size:
                state.scheduled.add(candidate)
                continue
            if not self._cacheable(entry):
                state.scheduled.add(candidate)
                continue
            if self._in_flight >= 2 * self._workers or self._bytes + entry.size > self._max_bytes:
                return
            if self._share is not None and not self._share.reserve(entry.size):
                return
            state.scheduled.add(candidate)
            self._in_flight += 1
            self._bytes += entry.size
            self._pool.submit(self._run, entry)

    def _run(self, entry: Entry) -> None:
        fetched = False
        try:
            self._fetch(entry)
            fetched = True
        except Exception as error:  # noqa: BLE001 - a fetch ahead is only a guess
            logger.debug("fetch ahead of %s failed: %s", entry.path, error)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._bytes -= entry.size
                self.fetched += fetched
            if self._share is not None:
                self._share.release(entry.size)
