"""CachedSession: the mount's view of Orion, with TTL caches for stat and listings (no FUSE, no errnos).

Paths here are *mount paths*: ``/``-rooted, made of display names (orionfs.fs.names), relative to
the mount root (an Orion folder path, default ``/``). Values are ``Entry`` objects
(orionfs.fs.entry), built once per item the server sends.

What is cached, and for how long (one TTL, an injected clock, one lock):

- listings: mount folder path -> its ``Listing`` (every page). A cached listing answers ``lookup``
  of each child, positive or negative, with no request: that is what makes ``ls -l`` and ``find``
  cost ceil(N / page) requests per folder, and probes such as ``.hidden`` free.
- stat results: mount path -> Entry, or a negative mark (404), for paths looked up one by one.

A lookup consults the parent's listing first (the freshest, most complete answer), then the stat
cache; a miss costs one ``stat_path`` (plain names) or one listing (names only the listing can
resolve). Concurrent identical misses share one request (orionfs.fs.flight), and network calls are
made outside the lock.

Invalidation: every mutation updates the entries it touches in place (the parent listing(s), the
entry, and the subtree of a moved or removed folder) from the server's own answer (the entries a
create, a move, an upload or a tag change returns), so the caller's changes are visible at once
with no read-back; what others change shows up within the TTL. ``invalidate`` drops a path (with
its parent's listing) and what is below it, or everything.

Memory: a listing weighs its entry count, so at most about ``max_entries`` listed entries and
``max_listings`` listings are held, least recently used first out. A single folder larger than
``max_entries`` is still cached (alone), so that it never costs one request per lookup.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cachetools import TTLCache

from orionfs.client import wire
from orionfs.client.session import OrionSession
from orionfs.exceptions import (
    BadResponse,
    NotAFolder,
    NotFoundResponse,
    ValidationError,
)
from orionfs.fs.changes import Changes
from orionfs.fs.entry import Entry
from orionfs.fs.flight import Flights
from orionfs.fs.listing import Listing
from orionfs.fs.localtimes import LocalTimes
from orionfs.fs.mountpath import child, is_utf8, normalize, not_found, split, under
from orionfs.fs.names import display_base, is_plain
from orionfs.fs.prefetch import Walks
from orionfs.fs.tags import Tagging

__all__ = ["LS_PAGE_SIZE", "CachedSession"]

logger = logging.getLogger(__name__)

#: The ``limit`` of listing requests: the server's maximum, so a folder of N entries costs
#: ceil(N / LS_PAGE_SIZE) requests.
LS_PAGE_SIZE: int = wire.PAGE_LIMIT_MAX
#: Pages of one listing fetched at a time once the first page gave the total count.
LS_PARALLEL: int = 4

# A negative stat result (404), cached like an Entry.
_ABSENT: Any = object()


class CachedSession(Changes, Tagging):
    """The mount's cached, thread-safe view of Orion over an ``OrionSession``.

    ``root`` is the Orion folder path the mount shows; ``ttl`` (seconds, on ``timer``) bounds how long
    a listing or stat result is trusted; ``max_entries`` bounds the stat results and (roughly) the
    listed entries held, ``max_listings`` the listings held. ``page_size`` is the ``limit`` sent with
    listings (None: the server's default); ``ls_parallel`` pages of one listing are fetched at a
    time once the first page gave the total count. ``on_upload(entry, staged file, size,
    take=True)`` is given every staged file that holds what was uploaded, when its owner is done
    with it (``uploaded``): the data cache's ``adopt``; ``on_new_version(old, new)`` is told of a
    change this mount made that gave an item a new version with the same content (a time, a name):
    the data cache's ``rekey``.
    """

    def __init__(
        self,
        session: OrionSession,
        root: str = "/",
        ttl: float = 5.0,
        timer: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
        max_listings: int = 5_000,
        page_size: int | None = LS_PAGE_SIZE,
        ls_parallel: int = LS_PARALLEL,
        prefetch: bool = True,
        on_upload: Callable[..., Any] | None = None,
        on_new_version: Callable[[Entry, Entry], Any] | None = None,
        local_times: LocalTimes | None = None,
    ) -> None:
        if not isinstance(root, str) or not root.startswith("/"):
            raise ValidationError(f"the root must be an absolute Orion path: {root!r}")
        if max_entries < 1 or max_listings < 1:
            raise ValidationError("max_entries and max_listings must be positive")
        self.session = session
        self._on_upload = on_upload
        self._on_new_version = on_new_version
        self._times = local_times if local_times is not None else LocalTimes(None)
        self.root = normalize(root)
        self.ttl = ttl
        self._page_size = page_size
        self._ls_parallel = max(1, ls_parallel)
        self._lock = threading.Lock()
        self._stat: TTLCache[str, Any] = TTLCache(maxsize=max_entries, ttl=ttl, timer=timer)
        # A listing weighs its entry count, at least max_entries / max_listings (so no more than
        # max_listings fit) and at most max_entries (so a huge folder is still cached, alone).
        floor = max(1, -(-max_entries // max_listings))

        def weight(listing: Listing) -> int:
            return min(max_entries, max(floor, len(listing.names)))

        self._listings: TTLCache[str, Listing] = TTLCache(
            maxsize=max_entries, ttl=ttl, timer=timer, getsizeof=weight
        )
        self._flights = Flights(self._lock)
        # Folders too large to list on a miss (see _learn_folder), for the TTL.
        self._big: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=ttl, timer=timer)
        self._hits = 0
        self._misses = 0
        self._requests: Counter[str] = Counter()
        self._walks = (
            Walks(self._listing, self._unlisted_subfolders, ttl, timer) if prefetch else None
        )

    # --- reads ------------------------------------------------------------------------------------

    def lookup(self, path: str) -> Entry:
        """The Entry at a mount path.

        Answered from the parent's cached listing, else from the stat cache, else with one
        ``stat_path`` request (plain names) or one listing of the parent (other names). Negative
        answers are cached for the TTL. Raises NotFoundResponse if there is no such entry,
        NotAFolder if a parent known to the cache is not a folder, and what the session raises.
        """
        path = normalize(path)
        with self._lock:
            found = self._cached(path)
            if found is not None:
                self._hits += 1
            else:
                self._misses += 1
        if found is _ABSENT:
            raise not_found(path)
        if found is not None:
            return found
        if path == "/":
            return self._stat_fetch(path, self.root)
        parent, name = split(path)
        if is_plain(name):
            if not is_utf8(name):
                raise not_found(path)  # Orion names are UTF-8: no such entry can exist
            try:
                return self._stat_fetch(path, self._join(self._folder_orion_path(parent), name))
            except NotFoundResponse:
                self._learn_folder(parent)  # the next probes in it (a desktop's) cost nothing
                raise
        entry = self._listing(parent).names.get(name)
        if entry is None:
            raise not_found(path)
        return entry

    def known_absent(self, path: str) -> bool:
        """True when the caches alone say nothing is at a mount path (a negative stat, or a
        cached listing of the parent without the name): what ``lookup`` would raise
        NotFoundResponse for with no request, answered without raising (the hot path of a probe
        for an absent name). False means "not known": ``lookup`` decides."""
        path = normalize(path)
        with self._lock:
            absent = self._cached(path) is _ABSENT
            if absent:
                self._hits += 1
        return absent

    def listdir(self, path: str) -> dict[str, Entry]:
        """A folder's entries by display name (every page), cached for the TTL.

        Returns a new dict (safe to iterate while others mutate the cache). Fills the lookup
        cache for every entry. Raises NotFoundResponse, NotAFolder, and what the session raises.
        """
        return dict(self._listing(normalize(path), count=True).names)

    def read(self, entry: Entry, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of an entry's content from ``offset`` (one ranged request).

        Not cached. Raises what ``read_range`` raises.
        """
        self._count("read_range")
        return self.session.read_range(entry.ref, offset, length)

    def link(self, entry: Entry) -> dict[str, Any]:
        """The JSON-serializable link of an entry (``create_link``; no request)."""
        return self.session.create_link(entry.ref)

    def uploaded(self, entry: Entry, staged: Path, size: int) -> None:
        """The content of ``entry`` was uploaded from the local file ``staged`` (``size`` bytes),
        which its owner now gives up (it is deleted next, never changed): handed to
        ``on_upload`` (the data cache keeps it as the file's cached copy, linked where it can,
        so reading one's own write costs no request). Its failure never fails anything."""
        if self._on_upload is None:
            return
        try:
            self._on_upload(entry, staged, size, take=True)
        except Exception as error:  # noqa: BLE001 - only a cache left cold
            logger.debug("after the upload of %s: %s", entry.path, error)

    def cached_listing(self, path: str) -> dict[str, Entry] | None:
        """A folder's cached entries by display name, in listing order, or None if it is not
        cached (no request). The dict is the cache's own: read it, never change it."""
        with self._lock:
            listing = self._listings.get(normalize(path))
        return None if listing is None else listing.names

    def find(self, path: str) -> Entry | None:
        """``lookup``, with None for a path that does not exist."""
        try:
            return self.lookup(path)
        except NotFoundResponse:
            return None

    # --- cache control ----------------------------------------------------------------------------

    def invalidate(self, path: str | None = None) -> None:
        """Drop everything, or a path (with its parent's listing, which holds it) and all below it."""
        with self._lock:
            if path is None or normalize(path) == "/":
                self._stat.clear()
                self._listings.clear()
                self._flights.forget_all()
                return
            path = normalize(path)
            self._drop_subtree(path)
            self._drop_listing(split(path)[0])

    def stats(self) -> dict[str, Any]:
        """Counters: ``hits``, ``misses`` (lookups and listings), ``requests`` by session method
        (a listing of any number of pages counts once), and the sizes of the caches."""
        with self._lock:
            return {
                "hits": self._hits,
                "misses": self._misses,
                "requests": dict(self._requests),
                "requests_total": sum(self._requests.values()),
                "stat_entries": len(self._stat),
                "listings": len(self._listings),
                "listed_entries": sum(len(listing.names) for listing in self._listings.values()),
            }

    # --- internals: fetching ----------------------------------------------------------------------

    def _cached(self, path: str) -> Any:
        """Entry, _ABSENT or None (unknown) from the caches alone. Lock held."""
        if path != "/":
            parent, name = split(path)
            listing = self._listings.get(parent)
            if listing is not None:
                return listing.names.get(name, _ABSENT)
        return self._stat.get(path)

    def _listing(self, path: str, count: bool = False) -> Listing:
        """The cached listing of a folder, or fetch it (every page, single-flight)."""
        with self._lock:
            listing = self._listings.get(path)
            if count:
                if listing is None:
                    self._misses += 1
                else:
                    self._hits += 1
        if listing is not None:
            return listing
        folder = self._folder_entry(path)
        collection = folder.id if folder.kind == wire.SHARD_COLLECTION else None
        params = {wire.Q_LIMIT: self._page_size} if self._page_size else None

        fetched = False

        def fetch() -> Listing:
            nonlocal fetched
            fetched = True
            self._count("iter_ls_path")
            try:
                items = self.session.iter_ls_path(folder.path, params, parallel=self._ls_parallel)
                return Listing.of(
                    self._times.apply(Entry.from_wire(item, collection)) for item in items
                )
            except BadResponse as exc:
                if exc.status_code == 400:
                    raise NotAFolder(f"{path}: not a folder", exc.response, 400) from exc
                raise

        def store(listing: Listing) -> None:
            self._listings[path] = listing

        listing = self._flights.run(("ls", path), fetch, store)
        if fetched and self._walks is not None:
            self._walks.fetched(path)
        return listing

    def _unlisted_subfolders(self, path: str) -> list[str]:
        """The display names of the subfolders of a cached listing whose own listing is not."""
        with self._lock:
            listing = self._listings.get(path)
            if listing is None:
                return []
            return [
                name
                for name, entry in listing.names.items()
                if entry.is_folder and child(path, name) not in self._listings
            ]

    def close(self) -> None:
        """Stop the work done ahead of walks (the cache still answers)."""
        if self._walks is not None:
            self._walks.close()

    def _learn_folder(self, path: str) -> None:
        """After a miss in a folder not listed: list it, one page at most, and keep the listing if
        that page holds the whole folder (a folder of ordinary size); a larger folder is not
        listed again for the TTL, so its probes cost one stat each, as before."""
        with self._lock:
            if path in self._listings or self._big.get(path):
                return
        folder = self._folder_entry(path)
        if not folder.is_folder:
            return
        collection = folder.id if folder.kind == wire.SHARD_COLLECTION else None

        def fetch() -> Listing | None:
            self._count("ls_path")
            query = {wire.Q_LIMIT: self._page_size or wire.PAGE_LIMIT_MAX}
            try:
                answer = self.session.ls_path(folder.path, query)
            except (NotFoundResponse, BadResponse):
                return None  # the walker's own lookups report what is wrong
            items = answer.get(wire.F_RESULTS) or []
            if answer.get(wire.F_COUNT, 0) > len(items):
                return None
            return Listing.of(
                self._times.apply(Entry.from_wire(item, collection)) for item in items
            )

        def store(listing: Listing | None) -> None:
            if listing is None:
                self._big[path] = True
            else:
                self._listings[path] = listing

        self._flights.run(("probe", path), fetch, store)

    def _stat_fetch(self, path: str, orion: str) -> Entry:
        """One ``stat_path`` (single-flight); the answer, or the 404, is cached for the TTL."""

        def fetch() -> Any:
            self._count("stat_path")
            try:
                found = self.session.stat_path(orion)
            except NotFoundResponse:
                return _ABSENT
            entry = Entry.from_wire(found)
            if entry.is_shard and entry.collection is None and path != "/":
                parent = self.lookup(split(path)[0])  # a shard learns its collection's id
                entry = Entry.from_wire(found, parent.id)
            return self._times.apply(entry)

        def store(result: Any) -> None:
            self._stat[path] = result

        result = self._flights.run(("stat", path), fetch, store)
        if result is _ABSENT:
            raise not_found(path)
        return result

    def _folder_entry(self, path: str) -> Entry:
        """The Entry of a mount folder to list: from the cache, else a virtual Entry for a path of
        plain names (its Orion path is the root joined with it: no request), else a lookup."""
        if path == "/":
            with self._lock:
                found = self._stat.get("/")
            return found if isinstance(found, Entry) else Entry.virtual(self.root)
        with self._lock:
            found = self._cached(path)
        if found is _ABSENT:
            raise not_found(path)
        if found is None and all(is_plain(part) for part in path.split("/") if part):
            return Entry.virtual(self._under_root(path))
        entry = found if found is not None else self.lookup(path)
        if not entry.is_folder:
            raise NotAFolder(f"{path}: not a folder")
        return entry

    def _folder_orion_path(self, path: str) -> str:
        """The Orion path of a mount folder, with no request where the path tells it. Raises
        NotAFolder / NotFoundResponse when the cache or the lookup knows better."""
        return self._folder_entry(path).path

    def _existing_folder(self, path: str) -> str:
        """The Orion path of a folder that must exist already (Orion would create a missing
        parent; POSIX mkdir wants it there): free when its Entry or listing is cached, else a
        lookup. Raises NotFoundResponse, NotAFolder."""
        with self._lock:
            found = self._cached(path)
            listed = path in self._listings
        if found is None and not listed:
            found = self.lookup(path)
        if isinstance(found, Entry) and not found.is_folder:
            raise NotAFolder(f"{path}: not a folder")
        return self._folder_orion_path(path)

    def _under_root(self, path: str) -> str:
        return self.root + path if self.root != "/" else path

    @staticmethod
    def _join(folder: str, name: str) -> str:
        return folder.rstrip("/") + "/" + name

    def _call(self, kind: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._count(kind)
        return method(*args, **kwargs)

    def _count(self, kind: str) -> None:
        with self._lock:
            self._requests[kind] += 1

    # --- internals: cache updates (lock held, no requests) ------------------------------------

    def _same_content(self, old: Entry, new: Entry) -> None:
        """``new`` is ``old`` with another version but the same content (no lock held)."""
        if self._on_new_version is not None and old.version != new.version:
            self._on_new_version(old, new)

    def touch(self, folder: str) -> None:
        """The children of ``folder`` changed now: its times show that at once (until the server's
        own arrive with the next listing)."""
        with self._lock:
            self._touch(normalize(folder))

    def _touch(self, folder: str) -> None:
        if folder == "/":
            return
        now = time.time_ns()
        parent, name = split(folder)
        listing = self._listings.get(parent)
        if listing is not None and name in listing.names:
            listing.names[name] = dataclasses.replace(
                listing.names[name], mtime_ns=now, ctime_ns=now
            )
        current = self._stat.get(folder)
        if isinstance(current, Entry):
            self._stat[folder] = dataclasses.replace(current, mtime_ns=now, ctime_ns=now)

    def _drop_listing(self, path: str) -> None:
        self._flights.forget(("ls", path))
        self._listings.pop(path, None)

    def _drop_subtree(self, path: str) -> None:
        """Forget ``path`` and everything below it (stat results, listings, fetches in flight)."""
        for key in [k for k in self._stat.keys() if under(k, path)]:
            self._stat.pop(key, None)
        for key in [k for k in self._listings.keys() if under(k, path)]:
            self._listings.pop(key, None)
        self._flights.forget_where(lambda key: under(key[1], path))  # type: ignore[index]

    def _renamed_in(self, folder: str, names: list[str]) -> None:
        """Display names of ``folder`` now show other entries: drop what was cached under them."""
        for name in names:
            self._stat.pop(child(folder, name), None)
            self._flights.forget(("stat", child(folder, name)))

    def _remove(self, folder: str, name: str, entry: Entry) -> None:
        """``entry`` (shown as ``name``) is gone from ``folder``."""
        self._touch(folder)
        self._renamed_in(folder, [name])
        self._flights.forget(("ls", folder))
        listing = self._listings.get(folder)
        if listing is not None:
            self._renamed_in(folder, listing.remove(entry, name))

    def _insert(self, folder: str, name: str, entry: Entry, known_absent: bool) -> None:
        """``entry`` is new in ``folder`` under the display name ``name`` (as the caller typed it).

        With the folder's listing cached the result is exact; without it, the stat cache learns the
        entry only if ``name`` was known to be free (else a duplicate of lower id may show there).
        """
        self._touch(folder)
        path = child(folder, name)
        self._flights.forget(("stat", path))
        self._flights.forget(("ls", folder))
        listing = self._listings.get(folder)
        if listing is None:
            if known_absent and display_base(entry.name) == name:
                self._stat[path] = entry
            else:
                self._stat.pop(path, None)
            return
        self._stat.pop(path, None)
        self._renamed_in(folder, listing.insert(entry))

    def _replace(self, path: str, old: Entry, new: Entry) -> None:
        """The entry at ``path`` changed in place (same id and name: same display name)."""
        folder, name = split(path)
        self._flights.forget(("stat", path))
        self._flights.forget(("ls", folder))
        listing = self._listings.get(folder)
        if listing is not None:
            listing.replace(old, new, name)
        current = self._stat.get(path)
        if isinstance(current, Entry) and current.key == old.key:
            self._stat[path] = new
