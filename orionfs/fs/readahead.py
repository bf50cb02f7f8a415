"""Read-ahead over ranged requests of one remote file (``ReadAhead``; no FUSE, no errnos).

Reads of a file not staged go through ``ReadAhead``: ranged requests whose size doubles (128 KiB, or
the kernel's read if larger, up to 8 MiB) while the reads stay sequential, up to 64 MiB fetched ahead,
in parallel; the first byte waits for one small request only, never for the whole download. Reads are
answered with views of the fetched segments (no copy before the kernel's buffer).

With a data cache the segments are aligned to its chunks (``align``), so that every fetched segment
is whole chunks. With a memory budget (orionfs.fs.budget) the bytes read ahead come out of the
mount's one budget: under pressure a reader's window and segments shrink; what a read waits for is
always fetched.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

from orionfs.fs.budget import Share

#: First ranged request of a reader: what the first byte waits for.
MIN_SEGMENT: int = 128 << 10
#: Largest ranged request of a sequential reader (segments double up to it).
MAX_SEGMENT: int = 8 << 20
#: Bytes kept in flight ahead of a sequential reader.
READ_AHEAD_WINDOW: int = 64 << 20
#: Seconds a failed ranged request answers reads of its range with the same error.
FAILURE_MEMORY: float = 1.0
#: Under a memory budget, a segment ahead is at most this fraction of the reader's fair share, so
#: that several are in flight (a reader with one segment ahead waits for each).
SEGMENTS_PER_SHARE: int = 4
#: Bytes behind the reader kept (the kernel's reads of a file come a little out of order) ...
KEEP_BEHIND: int = 2 << 20
#: ... and how far behind the furthest read a late read may come: it fetches its own segment
#: without ending the run (further back, it is a seek).
LATE_READS: int = 16 << 20


class ReadAhead:
    """Sequential-read accelerator over ranged requests of one remote file.

    The file is fetched in *segments*. The first read fetches one small segment (``min_segment``)
    holding it, so the first byte waits for that much only. While reads stay sequential, segments
    are scheduled back to back ahead of the reader, each twice the size of the one before (up to
    ``max_segment``), until ``window`` bytes beyond the read are in flight; they are fetched in
    parallel by the shared pool. A read elsewhere (a seek) starts over with a small segment there.
    Segments behind the reader are dropped, so memory stays within about ``window`` bytes, and
    within the reader's ``share`` of the mount's budget where one is given.

    Segment boundaries are multiples of ``align`` (except at the end of the file).

    Thread-safe; the kernel may have several reads of one file in flight (libfuse is
    multi-threaded and reads ahead asynchronously), so "sequential" tolerates small disorder.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        pool: ThreadPoolExecutor,
        min_segment: int = MIN_SEGMENT,
        max_segment: int = MAX_SEGMENT,
        window: int = READ_AHEAD_WINDOW,
        align: int = 1,
        share: Share | None = None,
        first_fetch: Callable[[int, int], bytes] | None = None,
    ) -> None:
        self._fetch = fetch
        self.size = size
        self._pool = pool
        self._align = max(1, align)
        self._first = min_segment  # the first segment of a read from the start (``first_fetch``)
        self._first_fetch = first_fetch
        self._min = self._up(max(1, min_segment))
        self._max = max(self._min, self._up(max_segment))
        self._window = window
        self._share = share
        self._lock = threading.Lock()
        self._segments: dict[int, tuple[int, Future[bytes]]] = {}  # start -> (length, data)
        self._starts: list[int] = []  # sorted
        self._next = 0  # end of the sequential run scheduled so far
        self._segment = self._min  # size of the next segment of the run
        self._reads = 0
        self._high = 0  # the end of the furthest read
        # The last failed fetch: (start, end, when, error). The kernel retries a failed read-ahead
        # at once with a smaller read; answering that from here keeps a dead server's cost to one
        # deadline per read() instead of two.
        self._failure: tuple[int, int, float, BaseException] | None = None

    def _up(self, n: int) -> int:
        return -(-n // self._align) * self._align

    def _down(self, n: int) -> int:
        return n - n % self._align

    def _add(
        self,
        start: int,
        length: int,
        needed: bool,
        fetch: Callable[[int, int], bytes] | None = None,
    ) -> int:
        """Schedule the segment ``[start, start + length)`` (its end aligned, unless ``fetch``
        gets it); returns its length, 0 where the budget refuses it (never for ``needed``)."""
        end = start + length if fetch is not None else self._up(start + length)
        length = min(end, self.size) - start
        if length <= 0:
            return 0
        if start in self._segments:
            return self._segments[start][0]
        if self._share is not None and not self._share.reserve(length, needed):
            return 0
        self._segments[start] = (length, self._pool.submit(fetch or self._fetch, start, length))
        bisect.insort(self._starts, start)
        return length

    def _forget(self, start: int) -> None:
        length, future = self._segments.pop(start)
        future.cancel()
        if self._share is not None:
            self._share.release(length)

    def _covering(self, offset: int) -> int | None:
        index = bisect.bisect_right(self._starts, offset) - 1
        if index >= 0:
            start = self._starts[index]
            if offset < start + self._segments[start][0]:
                return start
        return None

    def _drop_before(self, offset: int) -> None:
        while self._starts:
            start = self._starts[0]
            if start + self._segments[start][0] > offset:
                break
            self._forget(start)
            self._starts.pop(0)

    def _reset(self, offset: int) -> None:
        for start in list(self._segments):
            self._forget(start)
        self._starts.clear()
        self._next = self._down(offset)
        self._segment = self._min

    def in_run(self, offset: int) -> bool:
        """Whether a read at ``offset`` continues this reader's sequential run."""
        with self._lock:
            return self._reads > 0 and (
                self._covering(offset) is not None
                or self._high - LATE_READS <= offset <= self._next + self._max
            )

    def start(self, offset: int, length: int) -> None:
        """Schedule what a read of ``[offset, offset + length)`` needs (and reads ahead of it) as
        ``read`` would, without waiting for it: the reader fetches those bytes another way."""
        if offset < self.size and length > 0:
            self._schedule(offset, min(length, self.size - offset))

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` (fewer at the end of the file).

        Raises whatever the fetch raised (the failed segment is forgotten, so a retry refetches it).
        """
        if offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        end = offset + length
        needed = self._schedule(offset, length)
        parts: list[bytes] = []
        for start, seg_length, future in needed:
            try:
                data = future.result()
            except CancelledError:
                # another read dropped the queued segment meanwhile (a seek, or data left behind
                # by a faster reader): this read still needs it, so it fetches it itself
                data = self._fetch(start, seg_length)
            except BaseException as error:
                with self._lock:
                    if start in self._segments and self._segments[start][1] is future:
                        seg_length = self._segments[start][0]
                        self._forget(start)
                        self._starts.remove(start)
                        self._next = min(self._next, start)
                        self._failure = (start, start + seg_length, time.monotonic(), error)
                raise
            lo = max(offset, start) - start
            hi = min(end, start + len(data)) - start
            if hi <= lo:  # the file ended early (it changed): what there is
                break
            # a view, not a copy: the kernel's buffer is filled straight from the segment
            parts.append(memoryview(data)[lo:hi] if (lo, hi) != (0, len(data)) else data)
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _schedule(self, offset: int, length: int) -> list[tuple[int, int, Future[bytes]]]:
        """Schedule the segments of a read (and, in a sequential run, those ahead of it); returns
        the ones holding it. Raises the recent failure of its range, if any."""
        end = offset + length
        with self._lock:
            failure = self._failure
            if failure is not None:
                f_start, f_end, when, error = failure
                if time.monotonic() - when < FAILURE_MEMORY and f_start <= offset < f_end:
                    raise error
                self._failure = None
            self._reads += 1
            covered = self._covering(offset) is not None
            # sequential: inside what is scheduled, just past it, or a little behind it (reads
            # come out of order); a first read starts where it is (a random read fetches one
            # small segment)
            in_run = covered or (
                self._reads > 1 and self._high - LATE_READS <= offset <= self._next + self._max
            )
            if not in_run:
                self._reset(offset)
            # the segments holding this read; a first small read from the start of a file of
            # several chunks takes a small segment of its own (``first_fetch``), not aligned
            if (
                self._first_fetch is not None
                and self._reads == 1
                and offset == 0
                and end <= self._first < self._align < self.size
            ):
                self._add(0, self._first, True, self._first_fetch)
                self._next = self._first
            while self._next < end:
                added = self._add(self._next, max(self._segment, end - self._next), True)
                self._next += added
                if self._reads > 1:
                    self._segment = min(self._segment * 2, self._max)
            # read ahead of a sequential reader (not on a first, possibly lone, read)
            if self._reads > 1 and in_run:
                cap = self._max
                if self._share is not None:  # several segments in a fair share, not one or two
                    cap = self._down(self._share.fair() // SEGMENTS_PER_SHARE)
                    cap = max(self._min, min(self._max, cap))
                while self._next < min(self.size, end + self._window):
                    added = self._add(self._next, min(self._segment, cap), False)
                    if not added:  # over budget: no more ahead for now (the window shrinks,
                        break  # not the requests: small ones would cost more per byte)
                    self._next += added
                    self._segment = min(self._segment * 2, self._max)
            self._high = max(self._high, end) if in_run else end
            self._drop_before(self._high - KEEP_BEHIND)
            needed: list[tuple[int, int, Future[bytes]]] = []
            position = offset
            while position < end:
                start = self._covering(position)
                if start is None:  # a segment was cut short by a failure: fetch the gap
                    start = self._down(position)
                    self._add(start, end - start, True)
                seg_length, future = self._segments[start]
                needed.append((start, seg_length, future))
                position = start + seg_length
        return needed

    def close(self) -> None:
        """Cancel what is still queued and drop the buffered segments."""
        with self._lock:
            self._reset(0)
            if self._share is not None:
                self._share.close()
