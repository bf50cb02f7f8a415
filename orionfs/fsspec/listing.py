"""How OrionFileSystem lists and looks up paths, through fsspec's ``dircache``.

One listing answers ``info``/``exists``/``isdir``/``open`` for every entry of a folder, and a name
absent from a fresh listing costs no request; ``find``, ``walk``, ``glob`` and ``du`` cost one
listing per folder (``ceil(N / page_size)`` requests for N entries). A path not under a cached
listing costs one ``stat``. The filesystem's own changes update or drop the listings they touch
(the ``_forget_*`` / ``_remember`` methods); changes made elsewhere show once a listing expires
(``listings_expiry_time``) or after ``invalidate_cache()``.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from orionfs.client import wire
from orionfs.exceptions import BadResponse
from orionfs.fsspec import urls
from orionfs.fsspec.entries import (
    INFO_NAME,
    INFO_SIZE,
    entry_info,
    is_directory,
    is_plain,
    listing_infos,
    orion_name,
    root_info,
)
from orionfs.fsspec.errors import orion_errors, refuse

if TYPE_CHECKING:
    from fsspec.dircache import DirCache

    from orionfs.client.session import OrionSession

__all__ = ["ListingMixin"]

_NO_SUCH_PATH = refuse(FileNotFoundError, errno.ENOENT)


class ListingMixin:
    """ls, info, du and the listing cache of OrionFileSystem."""

    session: OrionSession
    dircache: DirCache
    page_size: int
    list_parallel: int

    # Provided by fsspec's AbstractFileSystem.
    _strip_protocol: Any
    _parent: Any
    walk: Any

    def _orion_path(self, path: str) -> str:
        """The Orion path of a filesystem path; names that are not plain are resolved through
        their folder's listing."""
        if all(is_plain(part) for part in path.split(urls.SEP) if part):
            return urls.orion_path(path)
        return self.info(path)[wire.F_PATH]

    # -- listings ----------------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, refresh: bool = False, **kwargs: Any) -> list[Any]:
        """The entries of a folder or collection (a file lists as itself), from the cache when
        fresh. Raises FileNotFoundError, PermissionError."""
        path = self._strip_protocol(path)
        listing = None if refresh else self._cached_listing(path)
        if listing is None:
            listing = self._list(path)
        return listing if detail else [info[INFO_NAME] for info in listing]

    def _cached_listing(self, path: str) -> list[dict[str, Any]] | None:
        """The cached answer of ``ls(path)``, or None. Raises FileNotFoundError when the parent's
        fresh listing lacks the name."""
        try:
            return list(self.dircache[path])
        except KeyError:
            pass
        entry = self._cached_entry(path)
        if entry is not None and not is_directory(entry):
            return [entry]
        return None

    def _cached_entry(self, path: str) -> dict[str, Any] | None:
        """The info of ``path`` from its parent's cached listing, or None when that is not cached.
        Raises FileNotFoundError when the cached listing lacks the name."""
        if not path:
            return None
        try:
            siblings = self.dircache[self._parent(path)]
        except KeyError:
            return None
        for info in siblings:
            if info[INFO_NAME] == path:
                return info
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)

    def _list(self, path: str) -> list[dict[str, Any]]:
        """List a folder from the server (every page) and cache it."""
        folder = self._orion_path(path)
        query = {wire.Q_LIMIT: self.page_size}
        with orion_errors(path):
            try:
                entries = list(
                    self.session.iter_ls_path(folder, query, parallel=self.list_parallel)
                )
            except BadResponse as exc:
                if exc.status_code != 400:
                    raise
                entries = None  # not folder-like: a file lists as itself
        if entries is None:
            info = self.info(path)
            if is_directory(info):
                raise NotADirectoryError(errno.ENOTDIR, "cannot list", path)
            return [info]
        listing = listing_infos(path, entries)
        self.dircache[path] = listing
        return list(listing)

    def info(self, path: str, refresh: bool = False, **kwargs: Any) -> dict[str, Any]:
        """The info of one path: from a cached listing, else one ``stat`` (or, for a shown name
        that is not plain, its folder's listing). Raises FileNotFoundError."""
        path = self._strip_protocol(path)
        if not path:
            return root_info()
        if not refresh:
            cached = self._cached_entry(path)
            if cached is not None:
                return cached
        if all(is_plain(part) for part in path.split(urls.SEP)):
            with orion_errors(path, invalid=_NO_SUCH_PATH):
                entry = self.session.stat_path(urls.orion_path(path))
            return entry_info(entry, path)
        for info in self.ls(self._parent(path), refresh=refresh):
            if info[INFO_NAME] == path:
                return info
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)

    def find(
        self, path: str, maxdepth: int | None = None, withdirs: bool = False,
        detail: bool = False, **kwargs: Any,
    ) -> Any:  # fmt: skip
        """Everything below ``path`` (fsspec's ``find``: one listing per folder), looking the root
        itself up once, not twice, when ``withdirs`` (as ``glob`` asks)."""
        path = self._strip_protocol(path)
        found: dict[str, Any] = {}
        if withdirs and path:
            root = self._info_quiet(path)
            if root is not None and is_directory(root):
                found[path] = root
        for _, dirs, files in self.walk(path, maxdepth, detail=True, **kwargs):
            if withdirs:
                files.update(dirs)
            found.update({info[INFO_NAME]: info for info in files.values()})
        if not found:
            root = self._info_quiet(path)
            if root is not None and not is_directory(root):
                found[path] = root  # find of a file is the file
        names = sorted(found)
        return {name: found[name] for name in names} if detail else names

    def _info_quiet(self, path: str) -> dict[str, Any] | None:
        try:
            return self.info(path)
        except OSError:
            return None

    def du(
        self, path: str, total: bool = True, maxdepth: int | None = None, withdirs: bool = False,
        **kwargs: Any,
    ) -> int | dict[str, int]:  # fmt: skip
        """Bytes of the files under ``path`` (one listing per folder, sizes from the listings)."""
        found = self.find(path, maxdepth=maxdepth, withdirs=withdirs, detail=True, **kwargs)
        sizes = {name: info.get(INFO_SIZE) or 0 for name, info in found.items()}
        return sum(sizes.values()) if total else sizes

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget cached listings: all, or those of ``path`` and below it."""
        if path is None:
            self.dircache.clear()
        else:
            path = self._strip_protocol(path)
            if not path:
                self.dircache.clear()
            else:
                self.dircache.pop(path, None)
                prefix = path + urls.SEP
                for key in [k for k in list(self.dircache) if k.startswith(prefix)]:
                    self.dircache.pop(key, None)
        super().invalidate_cache(path)

    def _forget_created(self, path: str) -> None:
        """Drop the cached listings that a new ``path`` (and new folders above it) changed."""
        child = path
        while child:
            parent = self._parent(child)
            try:
                siblings = self.dircache[parent]
            except KeyError:
                siblings = None
            if siblings is not None and any(i[INFO_NAME] == child for i in siblings):
                return  # ``child`` was there already: nothing above it changed
            self.dircache.pop(parent, None)
            child = parent

    def _forget_removed(self, path: str) -> None:
        """Drop ``path``'s listings, and its entry from its folder's cached listing (the whole
        listing when the entry shared its Orion name: the others' shown names change)."""
        self.invalidate_cache(path)
        parent = self._parent(path)
        try:
            siblings = self.dircache[parent]
        except KeyError:
            return
        gone = [info for info in siblings if info[INFO_NAME] == path]
        name = orion_name(gone[0]) if gone else None
        if not gone or sum(orion_name(info) == name for info in siblings) > 1:
            self.dircache.pop(parent, None)
            return
        siblings.remove(gone[0])

    def _remember(self, path: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Put the Entry of an item just made at ``path`` into its folder's cached listing."""
        info = entry_info(entry, path)
        parent = self._parent(path)
        self._forget_created(parent)
        try:
            siblings = self.dircache[parent]
        except KeyError:
            return info
        for index, old in enumerate(siblings):
            if old[INFO_NAME] == path:
                if old.get(wire.F_ID) == info[wire.F_ID]:
                    siblings[index] = info
                else:  # another entry shows under this name: let the next listing sort it out
                    self.dircache.pop(parent, None)
                return info
        siblings.append(info)
        siblings.sort(key=lambda i: i[INFO_NAME])
        return info

    def _cached_entry_quiet(self, path: str) -> dict[str, Any] | None:
        try:
            return root_info() if not path else self._cached_entry(path)
        except FileNotFoundError:
            return None
