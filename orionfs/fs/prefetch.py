"""Traversal prefetch: when a process walks a tree, list the folders it will visit next, ahead.

A walk (``find``, ``du``, ``rsync``, ``cp -r``, ``tar c``, ``grep -r``) lists a folder, then lists its
subfolders one after another, each a round trip. ``Walks`` watches the listings the cache fetches:
once ``WALK_EVIDENCE`` subfolders of one folder have been listed, it lists that folder's other
subfolders in the background, ``PREFETCH_PARALLEL`` at a time, through the cache's single-flight
(a folder the walker reaches while its listing is in flight waits for that request, never makes a
second one). Each folder is still listed once.

Browsing does not set it off: ``ls`` of one folder, a file manager opening a folder, and ``stat``
of one entry list no subfolder (or one), so they cost what they cost without prefetch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from cachetools import TTLCache

from orionfs.fs.mountpath import child, split

logger = logging.getLogger(__name__)

#: Subfolders of one folder listed by the walker before the others are listed ahead.
WALK_EVIDENCE: int = 2
#: Listings fetched ahead at a time, for the whole mount.
PREFETCH_PARALLEL: int = 8
#: Folders of one parent listed ahead at the most, per walk.
PREFETCH_MAX: int = 10_000


class Walks:
    """Recognizes walks from the listings fetched, and lists ahead of them.

    ``list_folder(path)`` lists a mount folder through the cache (single-flight, cached);
    ``subfolders(path)`` names the folder children of a cached listing (empty if not cached).
    """

    def __init__(
        self,
        list_folder: Callable[[str], object],
        subfolders: Callable[[str], Iterable[str]],
        ttl: float,
        timer: Callable[[], float],
        parallel: int = PREFETCH_PARALLEL,
    ) -> None:
        self._list = list_folder
        self._subfolders = subfolders
        self._lock = threading.Lock()
        # parent -> how many of its subfolders were listed (by the walker or ahead of it)
        self._listed: TTLCache[str, int] = TTLCache(maxsize=10_000, ttl=max(ttl, 1.0), timer=timer)
        self._ahead: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=max(ttl, 1.0), timer=timer)
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="orionfs-walk")
        self._closed = False
        self.prefetched = 0

    def fetched(self, path: str) -> None:
        """The cache fetched the listing of ``path`` from the server (not from its cache)."""
        if path == "/":
            return
        parent = split(path)[0]
        with self._lock:
            seen = self._listed.get(parent, 0) + 1
            self._listed[parent] = seen
            start = seen >= WALK_EVIDENCE and not self._ahead.get(parent) and not self._closed
            if start:
                self._ahead[parent] = True
        if start:
            self._list_ahead(parent)

    def _list_ahead(self, parent: str) -> None:
        names = list(self._subfolders(parent))[:PREFETCH_MAX]
        logger.debug("walk in %s: listing %d subfolders ahead", parent, len(names))
        for name in names:
            try:
                self._pool.submit(self._fetch, child(parent, name))
            except RuntimeError:  # shut down meanwhile
                return

    def _fetch(self, path: str) -> None:
        if self._closed:
            return
        try:
            self._list(path)
            with self._lock:
                self.prefetched += 1
        except Exception as error:  # a prefetch is a guess: the walker's own call reports errors
            logger.debug("listing ahead of a walk: %s: %s", path, error)

    def close(self) -> None:
        """Stop listing ahead (queued listings are dropped)."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
