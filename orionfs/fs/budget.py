"""One memory bound for the read-ahead of every open file of the mount (``MemoryBudget``).

Each reader (orionfs.fs.readahead.ReadAhead) holds a ``Share``. Bytes a read is waiting for are
always granted (``reserve(n, needed=True)``), so no read ever stalls on the budget; bytes fetched
*ahead* of a reader are granted only while the whole budget has room and the reader stays within
its fair share: the budget divided among the readers that hold memory now (never less than
``floor``). A lone reader can use its whole window; with eight readers each gets an eighth, so
their windows shrink under pressure (as Mountpoint-s3's prefetcher throttles) instead of the
process growing.

No FUSE imports, no I/O: a lock and integers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

__all__ = ["DEFAULT_READ_AHEAD_MEMORY", "MemoryBudget", "Share", "limit_malloc_arenas"]

logger = logging.getLogger(__name__)

#: Default bytes of read-ahead the whole mount may hold in memory.
DEFAULT_READ_AHEAD_MEMORY: int = 160 << 20
#: Smallest fair share of a reader, however many there are (one large segment's worth).
DEFAULT_FLOOR: int = 8 << 20


class MemoryBudget:
    """A byte budget shared by readers; thread-safe."""

    def __init__(self, limit: int = DEFAULT_READ_AHEAD_MEMORY, floor: int = DEFAULT_FLOOR) -> None:
        if limit <= 0:
            raise ValueError(f"the read-ahead memory must be positive, not {limit}")
        self.limit = limit
        self.floor = min(floor, limit)
        self._lock = threading.Lock()
        self._held = 0
        self._holders: dict[int, int] = {}  # id(share) -> bytes it holds (only shares holding > 0)
        self._peak = 0

    def share(self) -> Share:
        """A new reader's share (release it with ``Share.close``)."""
        return Share(self)

    @property
    def held(self) -> int:
        """Bytes granted now, to all readers."""
        with self._lock:
            return self._held

    @property
    def peak(self) -> int:
        """The most bytes granted at once so far."""
        with self._lock:
            return self._peak

    def fair_share(self, extra_reader: bool = False) -> int:
        """What one reader may hold ahead now: the limit over the readers holding memory."""
        with self._lock:
            return self._fair(len(self._holders) + (1 if extra_reader else 0))

    def _fair(self, readers: int) -> int:
        return max(self.floor, self.limit // max(1, readers))

    def _reserve(self, share: Share, n: int, needed: bool) -> bool:
        with self._lock:
            mine = self._holders.get(id(share), 0)
            if not needed:
                readers = len(self._holders) + (0 if mine else 1)
                if self._held + n > self.limit or mine + n > self._fair(readers):
                    return False
            self._holders[id(share)] = mine + n
            self._held += n
            self._peak = max(self._peak, self._held)
            return True

    def _release(self, share: Share, n: int) -> None:
        with self._lock:
            mine = self._holders.get(id(share), 0)
            n = min(n, mine)
            self._held -= n
            if mine - n > 0:
                self._holders[id(share)] = mine - n
            else:
                self._holders.pop(id(share), None)


class Share:
    """One reader's part of a MemoryBudget."""

    __slots__ = ("_budget", "held")

    def __init__(self, budget: MemoryBudget) -> None:
        self._budget = budget
        self.held = 0

    def reserve(self, n: int, needed: bool = False) -> bool:
        """Take ``n`` bytes: always for ``needed`` (a read waits for them), else only within the
        budget and this reader's fair share. Returns whether they were granted."""
        if n <= 0:
            return True
        granted = self._budget._reserve(self, n, needed)
        if granted:
            self.held += n
        return granted

    def fair(self) -> int:
        """This reader's fair share now (the budget over the readers holding memory, with it)."""
        return self._budget.fair_share(extra_reader=self.held == 0)

    def release(self, n: int) -> None:
        """Give back ``n`` bytes (a segment dropped)."""
        n = min(n, self.held)
        if n > 0:
            self.held -= n
            self._budget._release(self, n)

    def close(self) -> None:
        """Give back everything this reader holds."""
        self.release(self.held)


# glibc's mallopt(M_ARENA_MAX, n). Each thread that allocates would otherwise get a heap (arena) of its
# own, and a read-ahead segment freed in one heap is not reused by the fetch thread of another: the
# process's RSS then grows with the number of fetch threads instead of following what the readers
# hold. (A fixed M_MMAP_THRESHOLD would give every segment back at once, but zeroing fresh pages
# for each one costs about a third of a single reader's throughput.)
_M_ARENA_MAX = -8
#: Heaps of the mount process: the FUSE threads' and the fetch threads' allocations share them.
MALLOC_ARENAS: int = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Bound glibc's heaps (process-wide, so the mount process calls it once at start, before its
    threads). Returns False where it cannot be set (not glibc)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_ARENA_MAX, arenas))
    logger.debug("malloc arenas at most %d: %s", arenas, "set" if done else "refused")
    return done
