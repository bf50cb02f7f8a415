"""Write-back (``--write-back DELAY``): files closed are uploaded in the background.

``close()`` returns once the file is staged and its journal record says *acknowledged*
(orionfs.fs.journal: if the mount process dies, the next mount uploads it). ``WriteBackQueue`` then
uploads it DELAY seconds after its last close (a file closed again meanwhile waits again, as with
rclone's ``--vfs-write-back``), ``workers`` files at a time. A failed upload that may succeed later
(connection, timeout, 429, 5xx) is tried again with backoff until ``deadline`` seconds after its
first failure; then, and at once for the others (refused, no such folder), the queue's owner keeps
it in the recovery folder and logs it. ``drain`` (unmount) uploads everything now and waits.

The queue knows nothing of files but what its owner's callbacks do with them; no FUSE imports.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from orionfs.exceptions import (
    NotFoundResponse,
    OrionConnectionError,
    OrionServiceError,
    OrionTimeout,
    RateLimitedResponse,
)

logger = logging.getLogger(__name__)

#: Uploads at once.
WRITE_BACK_WORKERS: int = 4
#: Seconds from a file's first failed upload after which it is not tried again.
WRITE_BACK_DEADLINE: float = 60.0
#: Backoff between two attempts of one file: first wait, and the longest.
RETRY_FIRST_WAIT: float = 0.5
RETRY_MAX_WAIT: float = 10.0
#: Errors after which an upload is tried again (the server may take it later; a 404: the file or
#: its folder may be being renamed at that moment).
RETRYABLE = (
    OrionConnectionError,
    OrionTimeout,
    OrionServiceError,
    RateLimitedResponse,
    NotFoundResponse,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WriteBackOptions:
    """``--write-back DELAY``: seconds after a file's last close before its upload starts;
    ``workers`` uploads at once; ``deadline``: seconds a failing upload is tried again."""

    delay: float = 5.0
    workers: int = WRITE_BACK_WORKERS
    deadline: float = WRITE_BACK_DEADLINE


@dataclass(frozen=True, slots=True)
class UploadStats:
    """The mount's uploads now (``OpenFileTable.upload_stats()``).

    ``queued``: closed files waiting for their upload (write-back), ``queued_bytes`` their size;
    ``uploading``: queued files being uploaded now; ``retrying``: queued files whose last attempt
    failed; ``uploaded`` / ``failed``: queued uploads done / given up (data in the recovery folder)
    since the mount started; ``streaming``: streamed uploads running (files being written);
    ``leftovers``: files of a mount that died still to handle (orionfs.fs.recovery).
    """

    queued: int = 0
    queued_bytes: int = 0
    uploading: int = 0
    retrying: int = 0
    uploaded: int = 0
    failed: int = 0
    streaming: int = 0
    leftovers: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Item:
    due: float
    first_failure: float | None = None
    attempts: int = 0
    running: bool = False
    again: bool = False  # submitted again while its upload ran


class WriteBackQueue(Generic[T]):
    """Uploads items in the background (see the module docstring). Thread-safe.

    ``upload(item)`` uploads (raising on failure); ``done(item)`` is called after a successful
    upload, ``give_up(item, error)`` after the last failed one; ``size(item)`` is for the stats.
    """

    def __init__(
        self,
        upload: Callable[[T], None],
        done: Callable[[T], None],
        give_up: Callable[[T, BaseException], None],
        size: Callable[[T], int] = lambda item: 0,
        delay: float = 0.0,
        workers: int = WRITE_BACK_WORKERS,
        deadline: float = WRITE_BACK_DEADLINE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._upload, self._done, self._give_up, self._size = upload, done, give_up, size
        self.delay = delay
        self.deadline = deadline
        self._clock = clock
        self._cond = threading.Condition()
        self._items: dict[T, _Item] = {}
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self._stopped = False
        self._draining = False
        self.uploaded = 0
        self.failed = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"orionfs-upload-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    # -- the owner's side --------------------------------------------------------------------------

    def submit(self, item: T, delay: float | None = None) -> None:
        """Upload ``item`` after ``delay`` seconds (default: the queue's), counted from now; one
        already waiting waits again from now, one being uploaded goes again after that upload."""
        with self._cond:
            if self._stopped:
                return
            wait = self.delay if delay is None else delay
            due = self._clock() + (0.0 if self._draining else wait)
            entry = self._items.get(item)
            if entry is None:
                entry = self._items[item] = _Item(due)
            elif entry.running:
                entry.again = True
            entry.due = due
            heapq.heappush(self._heap, (due, next(self._seq), item))
            self._cond.notify_all()

    def cancel(self, item: T) -> bool:
        """Forget ``item`` unless its upload is running now; True if it was waiting."""
        with self._cond:
            entry = self._items.get(item)
            if entry is None or entry.running:
                return False
            del self._items[item]
            return True

    def __contains__(self, item: T) -> bool:
        with self._cond:
            return item in self._items

    def stats(self) -> UploadStats:
        with self._cond:
            entries = list(self._items.items())
            return UploadStats(
                queued=len(entries),
                queued_bytes=sum(self._size(item) for item, _ in entries),
                uploading=sum(1 for _, e in entries if e.running),
                retrying=sum(1 for _, e in entries if e.attempts and not e.running),
                uploaded=self.uploaded,
                failed=self.failed,
            )

    def drain(
        self,
        progress: Callable[[UploadStats], None] | None = None,
        interval: float = 0.5,
        timeout: float | None = None,
    ) -> bool:
        """Upload everything now (no more delay; retries keep their backoff) and wait until the
        queue is empty, calling ``progress`` every ``interval`` seconds. True once empty; False
        after ``timeout`` seconds, or if the queue was stopped."""
        end = None if timeout is None else self._clock() + timeout
        stats = self.stats()
        if stats.queued:
            logger.warning(
                "uploading %d files (%.1f MB) before the mount ends",
                stats.queued, stats.queued_bytes / 1e6,
            )  # fmt: skip
        if progress is not None:
            self._call(progress, stats)
        with self._cond:
            self._draining = True
            now = self._clock()
            for item, entry in self._items.items():
                if not entry.running and not entry.attempts and entry.due > now:
                    entry.due = now
                    heapq.heappush(self._heap, (now, next(self._seq), item))
            self._cond.notify_all()
        while True:
            with self._cond:
                done = not self._items or self._stopped
                if not done and (end is None or self._clock() < end):
                    self._cond.wait(interval)
            stats = self.stats()
            if progress is not None:
                self._call(progress, stats)
            if done or (end is not None and self._clock() >= end):
                return not stats.queued
            logger.info("%d files (%.1f MB) still to upload", stats.queued,
                        stats.queued_bytes / 1e6)  # fmt: skip

    def stop(self) -> None:
        """Start nothing more (uploads running finish or fail); waiting items stay unsent."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    # -- the workers -------------------------------------------------------------------------------

    def _next(self) -> T | None:
        """The next item that is due (waits for one); None once stopped."""
        with self._cond:
            while not self._stopped:
                now = self._clock()
                while self._heap:
                    due, _, item = self._heap[0]
                    entry = self._items.get(item)
                    if entry is None or entry.running or entry.due != due:
                        heapq.heappop(self._heap)  # stale: cancelled, running or rescheduled
                        continue
                    if due <= now:
                        heapq.heappop(self._heap)
                        entry.running = True
                        return item
                    break
                wait = self._heap[0][0] - now if self._heap else None
                self._cond.wait(wait)
            return None

    def _work(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            try:
                self._upload(item)
            except Exception as error:  # noqa: BLE001 - retried or given up below
                self._failed(item, error)
            else:
                self._succeeded(item)

    def _succeeded(self, item: T) -> None:
        with self._cond:
            entry = self._items[item]
            if entry.again:  # closed again during the upload: it waits its delay anew
                self._requeue(item, entry)
                return
        self._finish(item, entry, True, self._done, item)

    def _failed(self, item: T, error: BaseException) -> None:
        with self._cond:
            entry = self._items[item]
            now = self._clock()
            if entry.first_failure is None:
                entry.first_failure = now
            entry.attempts += 1
            wait = min(RETRY_MAX_WAIT, RETRY_FIRST_WAIT * 2 ** (entry.attempts - 1))
            retry = (
                isinstance(error, RETRYABLE)
                and not self._stopped
                and now + wait - entry.first_failure <= self.deadline
            )
            if retry:
                entry.due = now + wait
                self._requeue(item, entry)
        if retry:
            logger.warning("upload failed (%s); trying again in %.1f s", error, wait)
        else:
            self._finish(item, entry, False, self._give_up, item, error)

    def _requeue(self, item: T, entry: _Item) -> None:
        """Back in the heap at ``entry.due``. Lock held."""
        entry.running = False
        entry.again = False
        heapq.heappush(self._heap, (entry.due, next(self._seq), item))
        self._cond.notify_all()

    def _finish(
        self, item: T, entry: _Item, uploaded: bool, callback: Callable[..., None], *args: Any
    ) -> None:
        """Run ``done`` or ``give_up`` with the item still queued and running, then count it and
        let it go: once ``uploaded``/``failed`` counts an item, or ``drain`` sees the queue
        empty, its callback has finished (its data is in the recovery folder, its staging file
        gone). An item submitted again meanwhile goes back in the heap instead, as new."""
        self._call(callback, *args)
        with self._cond:
            if entry.again:
                entry.first_failure, entry.attempts = None, 0
                self._requeue(item, entry)
            else:
                del self._items[item]
                if uploaded:
                    self.uploaded += 1
                else:
                    self.failed += 1
            self._cond.notify_all()

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - a worker must outlive its owner's mistakes
            logger.exception("write-back callback failed")
