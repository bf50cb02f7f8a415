"""CachedSession: the mount's view of Orion, with TTL caches for stat and listings (no FUSE, no errnos).

Paths here are *mount paths*: ``/``-rooted, made of display names (:mod:`orionfs.fs.names`), relative to
the mount root (an Orion folder path, default ``/``). Entries are the Entry dicts of docs/wire.md.

What is cached, and for how long (one TTL, an injected clock, one lock):

- listings: mount folder path -> its entries keyed by display name (every page). A cached, fresh
  listing answers ``lookup`` of each child, positive or negative, with no request: that is what makes
  ``ls -l`` and ``find`` cost ceil(N / page) requests per folder, and probes such as ``.hidden`` free.
- stat results: mount path -> Entry, or a negative mark (404), for paths looked up one by one.

A lookup consults the parent's listing first (it is the freshest, most complete answer), then the stat
cache; a miss costs one ``stat_path`` (plain names) or one listing (names only the listing can
resolve). Concurrent identical misses share one request (single-flight), and network calls are made
outside the lock.

Invalidation: every mutation updates the entries it touches in place (the parent listing(s), the
entry, and the subtree of a moved or removed folder), so the caller's own changes are visible at once;
what others change shows up within the TTL. A fetch that was in flight when a mutation touched its key
is returned to its callers but not stored, so it can never overwrite the newer state. ``invalidate``
drops a path (with its parent's listing) and what is below it, or everything.

Memory: entries are kept once (the dicts the session parsed, never copied per lookup); a listing is
weighed by its entry count, so at most about ``max_entries`` listed entries and ``max_listings``
listings are held, least recently used first out. A single folder larger than ``max_entries`` is still
cached (alone), so that it never costs one request per lookup.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO

from cachetools import TTLCache

from orionfs.client import wire
from orionfs.client.types import OrionResource, resource_from_entry
from orionfs.exceptions import (
    AlreadyExists,
    BadResponse,
    FolderNotEmpty,
    IsAFolder,
    NotAFolder,
    NotFoundResponse,
    NotTaggable,
    ValidationError,
)
from orionfs.fs.names import display_base, display_names, is_plain, orion_name

__all__ = [
    "AlreadyExists",
    "CachedSession",
    "FolderNotEmpty",
    "IsAFolder",
    "NotAFolder",
    "NotTaggable",
]

logger = logging.getLogger(__name__)

Entry = dict[str, Any]

#: Resource types shown as directories (a shard collection lists its shards).
#: The ``limit`` of listing requests: the server's maximum, so a folder of N entries costs
#: ceil(N / LS_PAGE_SIZE) requests.
LS_PAGE_SIZE: int = wire.PAGE_LIMIT_MAX
#: Pages of one listing fetched at a time once the first page gave the total count.
LS_PARALLEL: int = 4

FOLDER_LIKE = frozenset({wire.FOLDER, wire.SHARD_COLLECTION})


# A negative stat result (404), cached like an Entry.
_ABSENT: Any = object()


class _Listing:
    """One folder's entries by display name.

    ``simple`` says every entry shows under its base name (no duplicates in the folder), so an insert
    of a new base or any removal needs no recomputation of the other names.
    """

    __slots__ = ("names", "simple")

    def __init__(self, names: dict[str, Entry], simple: bool) -> None:
        self.names = names
        self.simple = simple


class _Flight:
    """One request in flight, shared by every thread that misses on the same key."""

    __slots__ = ("done", "error", "result", "stale")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.stale = False  # a mutation touched the key meanwhile: do not store the result


def _takes_parallel(session: Any) -> bool:
    """Whether ``session.iter_ls_path`` takes ``parallel`` (OrionSession does; wrappers may not)."""
    try:
        return "parallel" in inspect.signature(session.iter_ls_path).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def _normalize(path: str) -> str:
    """A mount path as ``/a/b`` (no empty segments, no trailing slash).

    Raises ValidationError for a relative path.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValidationError(f"not an absolute mount path: {path!r}")
    return "/" + "/".join(part for part in path.split("/") if part)


def _split(path: str) -> tuple[str, str]:
    """``/a/b`` -> (``/a``, ``b``); the caller never passes ``/``."""
    parent, _, name = path.rpartition("/")
    return parent or "/", name


def _child(parent: str, name: str) -> str:
    return "/" + name if parent == "/" else f"{parent}/{name}"


def _under(key: str, path: str) -> bool:
    """Whether mount path ``key`` is ``path`` or below it."""
    return path == "/" or key == path or key.startswith(path + "/")


def _identity(entry: Mapping[str, Any]) -> tuple[Any, Any]:
    return entry.get(wire.F_RESOURCE_TYPE), entry.get(wire.F_ID)


def _is_folder(entry: Mapping[str, Any]) -> bool:
    return entry.get(wire.F_RESOURCE_TYPE) in FOLDER_LIKE


def _not_found(path: str) -> NotFoundResponse:
    return NotFoundResponse(custom_error_msg=f"{path}: no such entry", status_code=404)


def _is_utf8(name: str) -> bool:
    """Whether a name can be sent at all: the kernel hands undecodable bytes over as surrogates."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _new_name(display: str) -> str:
    """The Orion name for a new entry typed as ``display``.

    Raises ValidationError, before any request, for a name Orion cannot hold (docs/wire.md: empty,
    ``.``/``..``, a NUL, or not UTF-8).
    """
    if display in ("", ".", "..") or "\0" in display or not _is_utf8(display):
        raise ValidationError(f"not a valid Orion name: {display!r}")
    return orion_name(display)


def _is_simple(names: Mapping[str, Mapping[str, Any]]) -> bool:
    return all(name == display_base(entry.get(wire.F_NAME) or "") for name, entry in names.items())


class CachedSession:
    """The mount's cached, thread-safe view of Orion over an ``OrionSession``.

    ``root`` is the Orion folder path the mount shows; ``ttl`` (seconds, on ``timer``) bounds how long
    a listing or stat result is trusted; ``max_entries`` bounds the stat results and (roughly) the
    listed entries held, ``max_listings`` the listings held. ``page_size`` is the ``limit`` sent with
    listings (default ``LS_PAGE_SIZE``, the server's maximum; None: the server's default, 250 on
    Orion); ``ls_parallel`` pages of one listing are fetched at a time once the first page gave the
    total count (where the session's ``iter_ls_path`` takes ``parallel``).
    """

    def __init__(
        self,
        session: Any,
        root: str = "/",
        ttl: float = 5.0,
        timer: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
        max_listings: int = 5_000,
        page_size: int | None = LS_PAGE_SIZE,
        ls_parallel: int = LS_PARALLEL,
    ) -> None:
        if not isinstance(root, str) or not root.startswith("/"):
            raise ValidationError(f"the root must be an absolute Orion path: {root!r}")
        if max_entries < 1 or max_listings < 1:
            raise ValidationError("max_entries and max_listings must be positive")
        self.session = session
        self.root = "/" + "/".join(part for part in root.split("/") if part)
        self.ttl = ttl
        self._page_size = page_size
        self._ls_parallel = ls_parallel if _takes_parallel(session) else 1
        self._lock = threading.Lock()
        self._stat: TTLCache[str, Any] = TTLCache(maxsize=max_entries, ttl=ttl, timer=timer)
        # A listing weighs its entry count, at least max_entries / max_listings (so no more than
        # max_listings fit) and at most max_entries (so a huge folder is still cached, alone).
        floor = max(1, -(-max_entries // max_listings))

        def weight(listing: _Listing) -> int:
            return min(max_entries, max(floor, len(listing.names)))

        self._listings: TTLCache[str, _Listing] = TTLCache(
            maxsize=max_entries, ttl=ttl, timer=timer, getsizeof=weight
        )
        self._inflight: dict[tuple[str, str], _Flight] = {}
        self._shared: dict[Any, Any] = {}  # values listed entries share (see _compact)
        self._hits = 0
        self._misses = 0
        self._requests: Counter[str] = Counter()

    # --- reads ------------------------------------------------------------------------------------

    def lookup(self, path: str) -> Entry:
        """The Entry at a mount path.

        Answered from the parent's cached listing, else from the stat cache, else with one
        ``stat_path`` request (plain names) or one listing of the parent (other names). Negative
        answers are cached for the TTL. Raises NotFoundResponse if there is no such entry,
        NotAFolder if a parent known to the cache is not a folder, and what the session raises.
        """
        path = _normalize(path)
        with self._lock:
            found = self._cached(path)
            if found is not None:
                self._hits += 1
            else:
                self._misses += 1
        if found is _ABSENT:
            raise _not_found(path)
        if found is not None:
            return found
        if path == "/":
            return self._stat_fetch(path, self.root)
        parent, name = _split(path)
        if is_plain(name):
            if not _is_utf8(name):
                raise _not_found(path)  # Orion names are UTF-8: no such entry can exist
            return self._stat_fetch(path, self._join(self._folder_orion_path(parent), name))
        entry = self._listing(parent).names.get(name)
        if entry is None:
            raise _not_found(path)
        return entry

    def listdir(self, path: str) -> dict[str, Entry]:
        """A folder's entries by display name (every page), cached for the TTL.

        Returns a new dict (safe to iterate while others mutate the cache) holding the cached Entry
        objects. Fills the lookup cache for every entry. Raises NotFoundResponse, NotAFolder, and
        what the session raises.
        """
        return dict(self._listing(_normalize(path), count=True).names)

    def orion_path(self, path: str) -> str:
        """The Orion path of an existing mount path.

        Raises NotFoundResponse if it does not exist.
        """
        return self.lookup(path)[wire.F_PATH]

    def read(self, entry: Mapping[str, Any], offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of an entry's content from ``offset`` (one ranged request).

        Not cached. Raises what ``read_range`` raises.
        """
        resource = self._resource(entry)
        self._count("read_range")
        return self.session.read_range(resource, offset, length)

    def resource(self, path: str) -> OrionResource:
        """The typed resource (orionfs.client.types) at a mount path, built from its Entry (no request)."""
        return self._resource(self.lookup(path))

    def tags(self, path: str) -> list[str]:
        """The entry's tags (from the cached Entry: no request after a listing)."""
        return list(self.lookup(path).get(wire.F_TAGS) or [])

    def systemtags(self, path: str) -> list[str]:
        """The entry's system tags (from the cached Entry)."""
        return list(self.lookup(path).get(wire.F_SYSTEMTAGS) or [])

    def link(self, path: str) -> dict[str, Any]:
        """The JSON-serializable link of the resource at a path (``create_link``; no request)."""
        resource = self._resource(self.lookup(path))
        link = self.session.create_link(resource)
        return link.to_dict() if hasattr(link, "to_dict") else dict(link)

    # --- mutations --------------------------------------------------------------------------------

    def mkdir(self, path: str) -> Entry:
        """Create a folder; returns its Entry.

        Raises AlreadyExists if the path exists, NotFoundResponse / NotAFolder for a bad parent,
        and what the session raises (AuthorizationRequired in virtual folders).
        """
        path = _normalize(path)
        if path == "/":
            raise AlreadyExists(f"{path}: the mount root exists")
        try:
            self.lookup(path)
        except NotFoundResponse:
            pass
        else:
            raise AlreadyExists(f"{path}: exists")
        parent, name = _split(path)
        orion = self._join(self._existing_folder(parent), _new_name(name))
        try:
            created = self._call("create_paths", self.session.create_paths, orion, exist_ok=False)
        except BadResponse as exc:
            if exc.status_code == 409:
                raise AlreadyExists(f"{path}: exists", exc.response, 409) from exc
            raise
        entry = self._created_entry(created, orion)
        with self._lock:
            self._insert(parent, name, entry, known_absent=True)
            # A new folder is empty: lookups inside it (cp -r, tar x) cost nothing until the TTL.
            self._forget(("ls", path))
            self._listings[path] = _Listing({}, True)
        return entry

    def makedirs(self, path: str) -> Entry:
        """Create a folder and any missing parents (one ``create_paths``); returns its Entry.

        An existing folder is fine. Raises NotAFolder if a component is not a folder.
        """
        path = _normalize(path)
        parts = [p for p in path.split("/") if p]
        if not parts:
            return self.lookup("/")
        depth = 0  # how many leading components exist
        for depth in range(len(parts)):
            current = "/" + "/".join(parts[: depth + 1])
            try:
                entry = self.lookup(current)
            except NotFoundResponse:
                break
            if not _is_folder(entry):
                raise NotAFolder(f"{current}: not a folder")
        else:
            return entry  # every component exists and is a folder
        parent = "/" + "/".join(parts[:depth])
        orion = self._folder_orion_path(parent)
        for name in parts[depth:]:
            orion = self._join(orion, _new_name(name))
        created = self._call("create_paths", self.session.create_paths, orion, exist_ok=True)
        with self._lock:
            # Only the leaf's Entry comes back: drop what the new folders change instead of
            # guessing the intermediate entries.
            self._drop_subtree(_child(parent, parts[depth]))
            self._drop_listing(parent)
        return self._created_entry(created, orion)

    def rmdir(self, path: str) -> None:
        """Remove an empty folder (``remove_paths``, never recursive).

        Raises FolderNotEmpty if the cached listing is not empty, or the server answers 409 (it
        checks emptiness atomically); NotAFolder for a non-folder; NotFoundResponse.
        """
        path = _normalize(path)
        entry = self.lookup(path)
        if not _is_folder(entry):
            raise NotAFolder(f"{path}: not a folder")
        self._remove_folder(path, entry)
        with self._lock:
            self._remove(*_split(path), entry)
            self._drop_subtree(path)

    def unlink(self, path: str) -> None:
        """Delete a file, dataset or shard by id (``delete_resource``), so duplicates are exact.

        Raises IsAFolder for folders and collections, NotFoundResponse, and what the session raises.
        """
        path = _normalize(path)
        entry = self.lookup(path)
        if _is_folder(entry):
            raise IsAFolder(f"{path}: is a folder")
        self._call("delete_resource", self.session.delete_resource, self._resource(entry))
        with self._lock:
            self._remove(*_split(path), entry)

    def rename(self, old: str, new: str) -> Entry:
        """Move and/or rename with one ``assign_paths``; returns the moved Entry.

        An existing target file is deleted (by id) after the assign, so there is never a moment
        where neither exists; an existing empty target folder is removed first. Raises
        FolderNotEmpty for a non-empty target folder, NotAFolder (folder over a non-folder, or a
        destination parent that is not a folder), IsAFolder (non-folder over a folder),
        NotFoundResponse, and what the session raises.
        """
        old, new = _normalize(old), _normalize(new)
        src = self.lookup(old)
        if old == new or old == "/":
            return src
        new_parent, new_name = _split(new)
        dest_orion = self._folder_orion_path(new_parent)
        try:
            target: Entry | None = self.lookup(new)
        except NotFoundResponse:
            target = None
        if target is not None and _identity(target) == _identity(src):
            return src
        src_is_folder = _is_folder(src)
        if target is not None:
            if src_is_folder and not _is_folder(target):
                raise NotAFolder(f"{new}: not a folder")
            if not src_is_folder and _is_folder(target):
                raise IsAFolder(f"{new}: is a folder")
            if src_is_folder:
                # Orion refuses a folder name that exists in the destination: make room first.
                self._remove_folder(new, target)
                with self._lock:
                    self._remove(new_parent, new_name, target)
                    self._drop_subtree(new)
                target = None
        name = self._name_for(new_name, target, src)
        assignment = {
            wire.F_RESOURCE_TYPE: src[wire.F_RESOURCE_TYPE],
            wire.F_ID: src[wire.F_ID],
            wire.F_PATH: dest_orion,
            wire.F_NAME: name,
        }
        answer = self._call("assign_paths", self.session.assign_paths, assignment)
        moved = self._assigned_entry(answer, src, dest_orion, name)
        error: BaseException | None = None
        if target is not None:
            try:
                self._call("delete_resource", self.session.delete_resource, self._resource(target))
            except BaseException as exc:  # the move happened: record it, then report the failure
                error = exc
                logger.warning("rename %s -> %s: the old target was kept: %s", old, new, exc)
        with self._lock:
            self._remove(*_split(old), src)
            if src_is_folder:
                self._drop_subtree(old)
            if target is not None and error is None:
                self._remove(new_parent, new_name, target)
            self._insert(new_parent, new_name, moved, known_absent=target is None)
            if error is not None:
                self._drop_listing(new_parent)
        if error is not None:
            raise error
        return moved

    def create_file(self, path: str, fileobj: BinaryIO, size: int | None = None) -> Entry:
        """Upload a new file at a path; returns its Entry.

        An existing file at the path is replaced like a rename over it: the upload first, then the
        old file deleted by id. Raises IsAFolder if a folder is there, NotFoundResponse /
        NotAFolder for a bad parent, and what the session raises.
        """
        path = _normalize(path)
        parent, name = _split(path)
        try:
            existing: Entry | None = self.lookup(path)
        except NotFoundResponse:
            existing = None
        if existing is not None and _is_folder(existing):
            raise IsAFolder(f"{path}: is a folder")
        folder = self._folder_orion_path(parent)
        orion = self._name_for(name, existing, None)
        uploaded = self._call(
            "upload_file", self.session.upload_file, folder, orion, fileobj, size=size
        )
        entry = self._file_entry(uploaded, self._join(folder, orion))
        error: BaseException | None = None
        if existing is not None:
            try:
                self._call(
                    "delete_resource", self.session.delete_resource, self._resource(existing)
                )
            except BaseException as exc:  # the upload happened: record it, then report
                error = exc
                logger.warning("create %s: the old file was kept: %s", path, exc)
        with self._lock:
            if existing is not None and error is None:
                self._remove(parent, name, existing)
            self._insert(parent, name, entry, known_absent=existing is None)
            if error is not None:
                self._drop_listing(parent)
        if error is not None:
            raise error
        return entry

    def replace_content(self, path: str, fileobj: BinaryIO, size: int | None = None) -> Entry:
        """Replace a file's content (same id, tags kept); returns the updated Entry.

        Raises IsAFolder for folders, ValidationError for read-only kinds (datasets, shards),
        NotFoundResponse, and what the session raises.
        """
        path = _normalize(path)
        entry = self.lookup(path)
        if _is_folder(entry):
            raise IsAFolder(f"{path}: is a folder")
        if entry.get(wire.F_RESOURCE_TYPE) != wire.FILE:
            raise ValidationError(f"{path}: a {entry.get(wire.F_RESOURCE_TYPE)} is read-only")
        replaced = self._call(
            "replace_file_content",
            self.session.replace_file_content,
            self._resource(entry),
            fileobj,
            size=size,
        )
        fields = _fields(replaced)
        new = dict(entry)
        for key in ("size", "modified", wire.F_STATE, wire.F_TAGS, wire.F_SYSTEMTAGS):
            if fields.get(key) is not None:
                new[key] = fields[key]
        with self._lock:
            self._replace(path, entry, new)
        return new

    def set_tags(self, path: str, tags: Iterable[str]) -> list[str]:
        """Make the entry's tags exactly ``tags`` (one add and/or one remove request, or none).

        Returns the new tag list. Raises NotTaggable for folders and shards, NotFoundResponse, and
        what the session raises (ValidationError / BadResponse for a bad tag).
        """
        path = _normalize(path)
        entry = self._taggable(path)
        have = list(entry.get(wire.F_TAGS) or [])
        want = list(dict.fromkeys(tags))
        add = [t for t in want if t not in have]
        drop = [t for t in have if t not in want]
        return self._change_tags(path, entry, add, drop, want)

    def add_tag(self, path: str, tag: str) -> list[str]:
        """Add one tag (no request if present); returns the new tag list. Raises as set_tags."""
        path = _normalize(path)
        entry = self._taggable(path)
        have = list(entry.get(wire.F_TAGS) or [])
        if tag in have:
            return have
        return self._change_tags(path, entry, [tag], [], [*have, tag])

    def remove_tag(self, path: str, tag: str) -> list[str]:
        """Remove one tag (no request if absent); returns the new tag list. Raises as set_tags."""
        path = _normalize(path)
        entry = self._taggable(path)
        have = list(entry.get(wire.F_TAGS) or [])
        if tag not in have:
            return have
        return self._change_tags(path, entry, [], [tag], [t for t in have if t != tag])

    # --- cache control ----------------------------------------------------------------------------

    def invalidate(self, path: str | None = None) -> None:
        """Drop everything, or a path (with its parent's listing, which holds it) and all below it."""
        with self._lock:
            if path is None or _normalize(path) == "/":
                self._stat.clear()
                self._listings.clear()
                for flight in self._inflight.values():
                    flight.stale = True
                self._inflight.clear()
                return
            path = _normalize(path)
            self._drop_subtree(path)
            self._drop_listing(_split(path)[0])

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
            parent, name = _split(path)
            listing = self._listings.get(parent)
            if listing is not None:
                return listing.names.get(name, _ABSENT)
        return self._stat.get(path)

    def _listing(self, path: str, count: bool = False) -> _Listing:
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
        orion = self._folder_orion_path(path)
        params = {wire.Q_LIMIT: self._page_size} if self._page_size else None

        def fetch() -> _Listing:
            self._count("iter_ls_path")
            names: dict[str, Entry] = {}
            clashes: list[Entry] = []
            try:
                if self._ls_parallel > 1:
                    entries = self.session.iter_ls_path(orion, params, parallel=self._ls_parallel)
                else:
                    entries = self.session.iter_ls_path(orion, params)
                for entry in entries:
                    _compact(entry, self._shared)
                    base = display_base(entry.get(wire.F_NAME) or "")
                    if base in names:
                        clashes.append(entry)
                    else:
                        names[base] = entry
            except BadResponse as exc:
                if exc.status_code == 400:
                    raise NotAFolder(f"{path}: not a folder", exc.response, 400) from exc
                raise
            if clashes:  # duplicates: the rule needs the whole folder
                names = display_names([*names.values(), *clashes])
                return _Listing(names, _is_simple(names))
            return _Listing(names, True)

        def store(listing: _Listing) -> None:
            self._listings[path] = listing

        return self._single_flight(("ls", path), fetch, store)

    def _stat_fetch(self, path: str, orion: str) -> Entry:
        """One ``stat_path`` (single-flight); the answer, or the 404, is cached for the TTL."""

        def fetch() -> Any:
            self._count("stat_path")
            try:
                return self.session.stat_path(orion)
            except NotFoundResponse:
                return _ABSENT

        def store(result: Any) -> None:
            self._stat[path] = result

        result = self._single_flight(("stat", path), fetch, store)
        if result is _ABSENT:
            raise _not_found(path)
        return result

    def _single_flight(
        self, key: tuple[str, str], fetch: Callable[[], Any], store: Callable[[Any], None]
    ) -> Any:
        """Run ``fetch`` once for every thread asking for ``key`` meanwhile, outside the lock; store
        the result unless a mutation touched the key while it was in flight."""
        with self._lock:
            flight = self._inflight.get(key)
            leader = flight is None
            if flight is None:
                flight = self._inflight[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result
        try:
            result = fetch()
        except BaseException as exc:
            flight.error = exc
            with self._lock:
                if self._inflight.get(key) is flight:
                    del self._inflight[key]
            flight.done.set()
            raise
        flight.result = result
        with self._lock:
            if self._inflight.get(key) is flight:
                del self._inflight[key]
            if not flight.stale:
                store(result)
        flight.done.set()
        return result

    def _folder_orion_path(self, path: str) -> str:
        """The Orion path of a mount folder, with no request where the path tells it.

        From the cached Entry if there is one; else, for a path of plain names, the root joined with
        it; else from a lookup. Raises NotAFolder / NotFoundResponse when the cache or the lookup
        knows better.
        """
        if path == "/":
            return self.root
        with self._lock:
            found = self._cached(path)
        if found is _ABSENT:
            raise _not_found(path)
        if found is None and all(is_plain(part) for part in path.split("/") if part):
            return self.root + path if self.root != "/" else path
        entry = found if found is not None else self.lookup(path)
        if not _is_folder(entry):
            raise NotAFolder(f"{path}: not a folder")
        return entry[wire.F_PATH]

    def _existing_folder(self, path: str) -> str:
        """The Orion path of a folder that must exist already (Orion would create a missing
        parent; POSIX mkdir wants it there): free when its Entry or listing is cached, else a
        lookup. Raises NotFoundResponse, NotAFolder."""
        with self._lock:
            found = self._cached(path)
            listed = path in self._listings
        if found is None and not listed:
            found = self.lookup(path)
        if found is not None and found is not _ABSENT and not _is_folder(found):
            raise NotAFolder(f"{path}: not a folder")
        return self._folder_orion_path(path)

    def _resource(self, entry: Mapping[str, Any]) -> OrionResource:
        """The typed resource of an Entry; a shard learns its collection's id from the parent."""
        collection = None
        if entry.get(wire.F_RESOURCE_TYPE) == wire.SHARD and entry.get(wire.F_COLLECTION) is None:
            orion_parent = entry[wire.F_PATH].rpartition("/")[0] or "/"
            mount_parent = self._mount_path(orion_parent)
            if mount_parent is not None:
                collection = self.lookup(mount_parent).get(wire.F_ID)
            else:  # a collection name only the listing resolves: ask Orion by path
                parent = self._call("stat_path", self.session.stat_path, orion_parent)
                collection = parent.get(wire.F_ID)
        return resource_from_entry(entry, self.session, collection=collection)

    def _mount_path(self, orion: str) -> str | None:
        """The mount path of an Orion path of plain names under the root, else None."""
        if self.root == "/":
            rest = orion
        elif orion == self.root or orion.startswith(self.root + "/"):
            rest = orion[len(self.root) :] or "/"
        else:
            return None
        parts = [display_base(p) for p in rest.split("/") if p]
        if not all(is_plain(p) for p in parts):
            return None
        return "/" + "/".join(parts)

    def _join(self, folder: str, name: str) -> str:
        return folder.rstrip("/") + "/" + name

    def _call(self, kind: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._count(kind)
        return method(*args, **kwargs)

    def _count(self, kind: str) -> None:
        with self._lock:
            self._requests[kind] += 1

    # --- internals: mutations ---------------------------------------------------------------------

    def _remove_folder(self, path: str, entry: Entry) -> None:
        """``remove_paths`` of a folder, never recursive; FolderNotEmpty if it is not empty."""
        with self._lock:
            listing = self._listings.get(path)
        if listing is not None and listing.names:
            raise FolderNotEmpty(f"{path}: folder not empty")
        try:
            self._call("remove_paths", self.session.remove_paths, entry[wire.F_PATH])
        except BadResponse as exc:
            if exc.status_code == 409:
                raise FolderNotEmpty(f"{path}: folder not empty", exc.response, 409) from exc
            raise

    def _name_for(self, display: str, target: Entry | None, src: Entry | None) -> str:
        """The Orion name to give ``display``: a replaced target's or the moved entry's own name
        where it shows as exactly that (keeps its own name), else a new name (:func:`_new_name`)."""
        for entry in (target, src):
            if entry is not None and display_base(entry.get(wire.F_NAME) or "") == display:
                return entry[wire.F_NAME]
        return _new_name(display)

    def _taggable(self, path: str) -> Entry:
        entry = self.lookup(path)
        if entry.get(wire.F_RESOURCE_TYPE) not in wire.TAGGABLE_TYPES:
            raise NotTaggable(f"{path}: a {entry.get(wire.F_RESOURCE_TYPE)} has no tags")
        return entry

    def _change_tags(
        self, path: str, entry: Entry, add: list[str], drop: list[str], expected: list[str]
    ) -> list[str]:
        resource = self._resource(entry)
        answer: Any = None
        try:
            if add:
                answer = self._call("tag_resource", self.session.tag_resource, resource, *add)
            if drop:
                answer = self._call("untag_resource", self.session.untag_resource, resource, *drop)
        except BaseException:
            # An add may have happened before a remove failed: what the entry holds is unknown.
            with self._lock:
                self._stat.pop(path, None)
                self._drop_listing(_split(path)[0])
            raise
        new = dict(entry)
        new[wire.F_TAGS] = expected
        systemtags = getattr(resource, wire.F_SYSTEMTAGS, None)  # the session refreshes them
        if isinstance(systemtags, list):
            new[wire.F_SYSTEMTAGS] = list(systemtags)
        if isinstance(answer, Mapping):
            if isinstance(answer.get(wire.F_TAGS), list):
                new[wire.F_TAGS] = list(answer[wire.F_TAGS])
            if isinstance(answer.get(wire.F_SYSTEMTAGS), list):
                new[wire.F_SYSTEMTAGS] = list(answer[wire.F_SYSTEMTAGS])
        elif isinstance(answer, list):
            new[wire.F_TAGS] = list(answer)
        with self._lock:
            self._replace(path, entry, new)
        return list(new[wire.F_TAGS])

    def _created_entry(self, created: Any, orion: str) -> Entry:
        """The Entry of a folder just created: from ``create_paths``'s answer when it has one, else
        one ``stat_path``."""
        if isinstance(created, Mapping):
            created = created.get(wire.F_PATHS)
        if isinstance(created, list):
            for entry in created:
                if isinstance(entry, Mapping) and entry.get(wire.F_PATH) == orion:
                    return dict(entry)
        self._count("stat_path")
        return self.session.stat_path(orion)

    def _assigned_entry(self, answer: Any, src: Entry, dest: str, name: str) -> Entry:
        """The moved Entry: from ``assign_paths``'s answer when it has one, else the source's Entry
        with its new name and path (the result is known: no request)."""
        if isinstance(answer, Mapping):
            answer = answer.get(wire.F_RESULTS)
        if isinstance(answer, list):
            for entry in answer:
                if isinstance(entry, Mapping) and _identity(entry) == _identity(src):
                    return dict(entry)
        moved = dict(src)
        moved[wire.F_NAME] = name
        moved[wire.F_PATH] = self._join(dest, name)
        return moved

    def _file_entry(self, uploaded: Any, orion: str) -> Entry:
        """An Entry (docs/wire.md) for a File just uploaded."""
        fields = _fields(uploaded)
        return {
            wire.F_RESOURCE_TYPE: wire.FILE,
            wire.F_ID: fields.get(wire.F_ID),
            wire.F_NAME: fields.get(wire.F_NAME) or orion.rpartition("/")[2],
            wire.F_PATH: orion,
            wire.F_SIZE: fields.get(wire.F_SIZE) or 0,
            "created": fields.get("created"),
            "modified": fields.get("modified"),
            wire.F_OWNER: fields.get(wire.F_OWNER),
            wire.F_PROJECT: fields.get(wire.F_PROJECT),
            wire.F_STATE: fields.get(wire.F_STATE),
            wire.F_TAGS: list(fields.get(wire.F_TAGS) or []),
            wire.F_SYSTEMTAGS: list(fields.get(wire.F_SYSTEMTAGS) or []),
            wire.F_COUNT: fields.get(wire.F_COUNT) or 0,
        }

    # The helpers below run with the lock held and make no requests.

    def _forget(self, key: tuple[str, str]) -> None:
        """A mutation touched ``key``: a fetch in flight for it must not be stored, nor joined."""
        flight = self._inflight.pop(key, None)
        if flight is not None:
            flight.stale = True

    def _drop_listing(self, path: str) -> None:
        self._forget(("ls", path))
        self._listings.pop(path, None)

    def _drop_subtree(self, path: str) -> None:
        """Forget ``path`` and everything below it (stat results, listings, fetches in flight)."""
        for key in [k for k in self._stat.keys() if _under(k, path)]:
            self._stat.pop(key, None)
        for key in [k for k in self._listings.keys() if _under(k, path)]:
            self._listings.pop(key, None)
        for key in [k for k in self._inflight if _under(k[1], path)]:
            self._forget(key)

    def _relist(self, folder: str, listing: _Listing, entries: list[Entry]) -> None:
        """Recompute a listing's display names; drop stat results whose name changed meaning."""
        names = display_names(entries)
        for name, entry in listing.names.items():
            if names.get(name) is not entry:
                self._stat.pop(_child(folder, name), None)
                self._forget(("stat", _child(folder, name)))
        listing.names = names
        listing.simple = _is_simple(names)

    def _remove(self, folder: str, name: str, entry: Entry) -> None:
        """``entry`` (shown as ``name``) is gone from ``folder``."""
        path = _child(folder, name)
        self._stat.pop(path, None)
        self._forget(("stat", path))
        self._forget(("ls", folder))
        listing = self._listings.get(folder)
        if listing is None:
            return  # without the listing, whether a duplicate now shows as ``name`` is unknown
        ident = _identity(entry)
        if _identity(listing.names.get(name) or {}) != ident:
            name = next((n for n, e in listing.names.items() if _identity(e) == ident), "")
            if not name:
                return
        if listing.simple:
            del listing.names[name]
        else:
            self._relist(folder, listing, [e for n, e in listing.names.items() if n != name])

    def _insert(self, folder: str, name: str, entry: Entry, known_absent: bool) -> None:
        """``entry`` is new in ``folder`` under the display name ``name`` (as the caller typed it).

        With the folder's listing cached the result is exact; without it, the stat cache learns the
        entry only if ``name`` was known to be free (else a duplicate of lower id may show there).
        """
        path = _child(folder, name)
        self._forget(("stat", path))
        self._forget(("ls", folder))
        listing = self._listings.get(folder)
        if listing is None:
            if known_absent and display_base(entry.get(wire.F_NAME) or "") == name:
                self._stat[path] = entry
            else:
                self._stat.pop(path, None)
            return
        self._stat.pop(path, None)
        base = display_base(entry.get(wire.F_NAME) or "")
        if listing.simple and base not in listing.names:
            listing.names[base] = entry
        else:
            ident = _identity(entry)
            others = [e for e in listing.names.values() if _identity(e) != ident]
            self._relist(folder, listing, [*others, entry])

    def _replace(self, path: str, old: Entry, new: Entry) -> None:
        """The entry at ``path`` changed in place (same id and name: same display name)."""
        folder, name = _split(path)
        self._forget(("stat", path))
        self._forget(("ls", folder))
        ident = _identity(old)
        listing = self._listings.get(folder)
        if listing is not None:
            if _identity(listing.names.get(name) or {}) != ident:
                name = next((n for n, e in listing.names.items() if _identity(e) == ident), "")
            if name:
                listing.names[name] = new
        current = self._stat.get(path)
        if current is not None and current is not _ABSENT and _identity(current) == ident:
            self._stat[path] = new


_SHARED_FIELDS = (wire.F_RESOURCE_TYPE, wire.F_STATE, wire.F_OWNER, wire.F_PROJECT)
_SHARED_MAX = 10_000


def _compact(entry: dict[str, Any], shared: dict[Any, Any]) -> None:
    """Make a listed Entry share its repeated values (types, states, owner and project ids, an
    unchanged ``modified``) with the other entries through the table ``shared``: the same dict with
    the same values, in about a quarter less memory for a big folder."""
    for key in _SHARED_FIELDS:
        value = entry.get(key)
        if not isinstance(value, str | int):
            continue
        kept = shared.get(value)
        if kept is None and len(shared) < _SHARED_MAX:
            kept = shared.setdefault(value, value)
        if kept is not None and type(kept) is type(value):
            entry[key] = kept
    created = entry.get("created")
    if created is not None and entry.get("modified") == created:
        entry["modified"] = created  # never modified: one string for both


def _fields(resource: Any) -> Mapping[str, Any]:
    """A typed resource's (or a dict's) fields as a mapping."""
    if isinstance(resource, Mapping):
        return resource
    if hasattr(resource, "to_dict"):
        return resource.to_dict()
    return {}
