"""Open folder handles: the snapshot of entries each one pages through (no FUSE imports).

The kernel reads a folder in batches and starts each batch at the offset of the last entry it
kept. Here the offset of an entry is its index + 1 in a snapshot of the folder taken when the
handle reads from offset 0 (the first read after opendir, or after rewinddir): a folder that
changes while it is read (``rm -r`` removing what it listed, others adding) is neither skipped
nor repeated, and the next read from offset 0 sees the changes (POSIX rewinddir).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

#: The first folder handle: far from the open-file table's numbers (from 1), so that a folder's
#: handle is never taken for a file's.
FIRST_HANDLE: int = 1 << 48


class DirHandles(Generic[T]):
    """The open folder handles of a mount, each with its snapshot of rows (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = FIRST_HANDLE
        self._snapshots: dict[int, Sequence[T]] = {}

    def open(self) -> int:
        """A new handle, with no snapshot yet."""
        with self._lock:
            fh = self._next
            self._next += 1
            self._snapshots[fh] = ()
            return fh

    def read(
        self, fh: int, offset: int, load: Callable[[], Sequence[T]]
    ) -> Iterator[tuple[T, int]]:
        """(row, offset of the next row) from ``offset`` on.

        At offset 0 ``load()`` makes a new snapshot (what it raises propagates, before anything is
        returned); later offsets page through the handle's snapshot. An unknown handle gets a fresh
        snapshot on every read, not kept (and read from ``offset``).
        """
        with self._lock:
            known = fh in self._snapshots
            rows = self._snapshots.get(fh, ())
        if offset <= 0 or not known:
            rows = load()
            if known:
                with self._lock:
                    if fh in self._snapshots:  # not released meanwhile
                        self._snapshots[fh] = rows
        start = min(max(offset, 0), len(rows))
        return zip(itertools.islice(rows, start, None), itertools.count(start + 1), strict=False)

    def release(self, fh: int) -> None:
        """The handle is closed: its snapshot goes."""
        with self._lock:
            self._snapshots.pop(fh, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._snapshots)
