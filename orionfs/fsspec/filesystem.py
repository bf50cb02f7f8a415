"""OrionFileSystem: Orion as an fsspec filesystem (``orion://``), over one OrionSession.

Listings are cached in fsspec's ``dircache`` (default: trusted for ``DEFAULT_LISTINGS_TTL``
seconds, like the mount's cache; ``listings_expiry_time=``, ``use_listings_cache=False`` and
``invalidate_cache()`` as in fsspec). One listing answers ``info``/``exists``/``isdir``/``open`` for
every entry of a folder, and a name absent from a fresh listing costs no request; ``find``,
``walk``, ``glob`` and ``du`` cost one listing per folder (``ceil(N / page_size)`` requests for N
entries). This filesystem's own changes update or drop the listings they touch at once; changes
made elsewhere show once a listing expires.

Every Orion error leaves as the builtin OSError of :mod:`orionfs.fsspec.errors`.
"""

from __future__ import annotations

import errno
import io
import logging
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from glob import has_magic
from typing import IO, Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from fsspec.spec import AbstractFileSystem, make_instance
from fsspec.utils import isfilelike

from orionfs.client import wire
from orionfs.client.config import SessionConfig
from orionfs.client.session import OrionSession
from orionfs.exceptions import BadResponse, NotFoundResponse
from orionfs.fsspec import urls
from orionfs.fsspec.entries import (
    INFO_NAME,
    INFO_READONLY,
    INFO_SIZE,
    content_ref,
    entry_info,
    is_directory,
    is_plain,
    listing_infos,
    orion_name,
    root_info,
)
from orionfs.fsspec.errors import not_empty, orion_errors, refuse
from orionfs.fsspec.file import DEFAULT_BLOCK_SIZE, OrionFile
from orionfs.fsspec.streams import ProgressReader, ProgressWriter, piped_copy

__all__ = ["OrionFileSystem"]

logger = logging.getLogger(__name__)

#: Seconds a listing is trusted (the mount's default ``--cache-ttl``).
DEFAULT_LISTINGS_TTL = 5.0
#: Pages of a large folder fetched at once, once the first page gave the total.
DEFAULT_LIST_PARALLEL = 4
#: Files up to this size are copied through memory (so the upload can be retried); larger ones
#: are streamed from the download into the upload through a pipe.
COPY_IN_MEMORY_MAX = 16 << 20

_NOT_A_DIRECTORY = refuse(NotADirectoryError, errno.ENOTDIR)
_NO_SUCH_PATH = refuse(FileNotFoundError, errno.ENOENT)


class _OrionFileSystemType(type(AbstractFileSystem)):  # type: ignore[misc]
    """Decides the profile before fsspec's instance cache looks for an instance (see
    :func:`orionfs.fsspec.urls.resolve_profile`); a filesystem over a given session is never cached."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("session") is not None:
            kwargs.setdefault("skip_instance_cache", True)
        return super().__call__(*args, **urls.resolve_profile(kwargs))


class OrionFileSystem(AbstractFileSystem, metaclass=_OrionFileSystemType):
    """Orion through fsspec: ``fsspec.open("orion://project/1/user/me/data.csv")``.

    Storage options (all keyword-only): ``profile`` (a profile of ``orionfs profile add``), or
    ``url`` and ``token`` (with optional ``username``, ``project``); else ``$ORION_PROFILE``, else
    ``default``. ``config`` (a SessionConfig) or ``session`` (an OrionSession, not pickled: a
    pickled filesystem carries its config) replace them. ``request_timeout`` (seconds),
    ``block_size`` (bytes per ranged read, default 8 MiB), ``page_size`` (entries per listing
    request, default 1000), ``list_parallel`` (pages fetched at once), and fsspec's
    ``use_listings_cache``, ``listings_expiry_time``, ``max_paths``.
    """

    protocol = urls.PROTOCOL
    root_marker = ""
    sep = urls.SEP

    def __init__(
        self,
        *,
        profile: str | None = None,
        url: str | None = None,
        token: str | None = None,
        username: str | None = None,
        project: int | None = None,
        config: SessionConfig | None = None,
        session: OrionSession | None = None,
        request_timeout: float | None = None,
        block_size: int | None = None,
        page_size: int = wire.PAGE_LIMIT_MAX,
        list_parallel: int = DEFAULT_LIST_PARALLEL,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("listings_expiry_time", DEFAULT_LISTINGS_TTL)
        super().__init__(**kwargs)
        if session is None:
            if config is None:
                config = urls.session_config(
                    profile, url, token, username, project, request_timeout
                )
            elif request_timeout is not None:
                config = config.replace(request_timeout=float(request_timeout))
            session = OrionSession(config=config)
        self.session = session
        self.profile = profile
        self.blocksize = block_size or DEFAULT_BLOCK_SIZE
        self.page_size = page_size
        self.list_parallel = list_parallel
        #: Longest wait for the next piece of a streamed read (beyond the request's own timeout).
        self.read_wait = 2 * session.config.request_timeout

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the storage options, with a given session replaced by its config."""
        options = dict(self.storage_options)
        session = options.pop("session", None)
        if session is not None:
            options["config"] = session.config
        return make_instance, (type(self), self.storage_args, options)

    # -- paths -------------------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return urls.strip_url(os.fspath(path) if isinstance(path, os.PathLike) else path)

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        profile = urls.profile_of_url(path)
        return {"profile": profile} if profile else {}

    def unstrip_protocol(self, name: str) -> str:
        """The URL of a path, naming this filesystem's profile when it has one."""
        return urls.make_url(name, self.profile)

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
        """Drop ``path``'s listings, and its entry from its folder's cached listing."""
        self.invalidate_cache(path)
        self.dircache.pop(self._parent(path), None)

    def _remember(self, path: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Put the Entry of a file just written at ``path`` into its folder's cached listing."""
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

    # -- reading -----------------------------------------------------------------------------
    def _readable(self, path: str, info: dict[str, Any]) -> dict[str, Any]:
        """The content reference of a file's info; raises IsADirectoryError for a directory."""
        if is_directory(info):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if info.get(wire.F_RESOURCE_TYPE) == wire.SHARD and info.get(wire.F_COLLECTION) is None:
            info[wire.F_COLLECTION] = self.info(self._parent(path))[wire.F_ID]
        return content_ref(info)

    def _read_range(self, path: str, info: dict[str, Any], offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` in one ranged GET."""
        ref = self._readable(path, info)
        with orion_errors(path):
            data = self.session.read_range(ref, offset, length)
        return data if type(data) is bytes else bytes(data)

    def _downloader(self, path: str, info: dict[str, Any]) -> Callable[[IO[bytes]], int]:
        """``download(sink)``: stream the whole content into ``sink`` (Orion errors translated)."""
        ref = self._readable(path, info)

        def download(sink: IO[bytes]) -> int:
            with orion_errors(path):
                return self.session.download_file(ref, sink)

        return download

    def _download(self, path: str, info: dict[str, Any], sink: IO[bytes]) -> int:
        return self._downloader(path, info)(sink)

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """The content, or bytes ``start:end`` of it (negative: from the end) by one ranged GET."""
        path = self._strip_protocol(path)
        info = self.info(path)
        if start is None and end is None:
            buffer = io.BytesIO()
            self._download(path, info, buffer)
            return buffer.getvalue()
        size = info[INFO_SIZE]
        first = 0 if start is None else (max(size + start, 0) if start < 0 else start)
        if end is None:
            last = max(size, first)
        else:
            last = max(size + end, 0) if end < 0 else end
        if last <= first:
            self._readable(path, info)
            return b""
        return self._read_range(path, info, first, last - first)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> OrionFile:
        return OrionFile(
            self, self._strip_protocol(path), mode, block_size or self.blocksize, autocommit,
            cache_options=cache_options, **kwargs,
        )  # fmt: skip

    def get_file(
        self, rpath: str, lpath: Any, callback: Callback = DEFAULT_CALLBACK,
        outfile: Any = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        """Download one file (one GET) to a local path or file object, reporting progress."""
        rpath = self._strip_protocol(rpath)
        if outfile is None and isfilelike(lpath):
            outfile = lpath
        info = self.info(rpath)
        if is_directory(info):
            if outfile is not None:
                raise IsADirectoryError(errno.EISDIR, "is a directory", rpath)
            os.makedirs(lpath, exist_ok=True)
            return
        callback.set_size(info[INFO_SIZE])
        if outfile is not None:
            self._download(rpath, info, ProgressWriter(outfile, callback))  # type: ignore[arg-type]
            return
        lpath = os.fspath(lpath)
        os.makedirs(os.path.dirname(lpath) or ".", exist_ok=True)
        try:
            with open(lpath, "wb") as sink:
                self._download(rpath, info, ProgressWriter(sink, callback))  # type: ignore[arg-type]
        except BaseException:
            try:
                os.unlink(lpath)  # no half-downloaded file is left behind
            except OSError:
                pass
            raise

    # -- writing -----------------------------------------------------------------------------
    def _write_target(self, path: str, mode: str) -> dict[str, Any] | None:
        """The info of the File a write to ``path`` replaces, or None for a new file.

        Raises FileExistsError (``xb`` of an existing path), IsADirectoryError, PermissionError
        (a dataset, a shard, or a new file in a read-only directory).
        """
        try:
            info = self.info(path)
        except FileNotFoundError:
            parent = self._cached_entry_quiet(self._parent(path))
            if parent is not None and parent.get(INFO_READONLY):
                raise PermissionError(errno.EACCES, "read-only directory", path) from None
            return None
        if mode == "xb":
            raise FileExistsError(errno.EEXIST, "the file exists", path)
        if is_directory(info):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if info.get(wire.F_RESOURCE_TYPE) != wire.FILE:
            raise PermissionError(
                errno.EACCES, f"a {info.get(wire.F_RESOURCE_TYPE)} is read-only", path
            )
        return info

    def _cached_entry_quiet(self, path: str) -> dict[str, Any] | None:
        try:
            return root_info() if not path else self._cached_entry(path)
        except FileNotFoundError:
            return None

    def _store(
        self, path: str, source: Any, size: int, target: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Upload ``size`` bytes of ``source`` to ``path`` (one request): over the File
        ``target`` (same id), or as a new File, creating missing folders when ``source`` can be
        read again. Returns the new info."""
        if target is not None:
            with orion_errors(path):
                stored = self.session.replace_file_content(content_ref(target), source, size)
            return self._remember(path, stored.to_dict())
        parent = self._parent(path)
        folder, name = self._orion_path(parent), path.rsplit(urls.SEP, 1)[-1]
        start = source.tell() if _seekable(source) else None
        with orion_errors(path, invalid=_NOT_A_DIRECTORY):
            try:
                stored = self.session.upload_file(folder, name, source, size)
            except NotFoundResponse:
                if start is None:
                    raise
                self._create_folders(parent, exist_ok=True)
                source.seek(start)
                stored = self.session.upload_file(folder, name, source, size)
        entry = stored.to_dict()
        entry[wire.F_PATH] = f"{folder.rstrip(urls.SEP)}{urls.SEP}{name}"
        return self._remember(path, entry)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Store ``value`` at ``path`` (one upload); ``mode="create"``: FileExistsError if taken."""
        path = self._strip_protocol(path)
        target = self._write_target(path, "xb" if mode == "create" else "wb")
        data = bytes(value)
        self._store(path, io.BytesIO(data), len(data), target)

    def put_file(
        self, lpath: Any, rpath: str, callback: Callback = DEFAULT_CALLBACK,
        mode: str = "overwrite", **kwargs: Any,
    ) -> None:  # fmt: skip
        """Upload one local file (one request, streamed), reporting progress to ``callback``."""
        rpath = self._strip_protocol(rpath)
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        target = self._write_target(rpath, "xb" if mode == "create" else "wb")
        with open(lpath, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            callback.set_size(size)
            self._store(rpath, ProgressReader(source, callback), size, target)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy one file (Orion has no server-side copy: a download streamed into an upload), or
        make the directory ``path2`` for a directory."""
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        source = self.info(path1)
        if is_directory(source):
            self.makedirs(path2, exist_ok=True)
            return
        target = self._write_target(path2, "wb")
        if source[INFO_SIZE] <= COPY_IN_MEMORY_MAX:
            buffer = io.BytesIO()
            size = self._download(path1, source, buffer)
            buffer.seek(0)
            self._store(path2, buffer, size, target)
            return
        source = self.info(path1, refresh=True)  # the upload's size must be the current one
        size = source[INFO_SIZE]
        if target is None:
            self.makedirs(self._parent(path2), exist_ok=True)
        sent: list[int] = []

        def download(sink: IO[bytes]) -> int:
            sent.append(self._download(path1, source, sink))
            return sent[0]

        piped_copy(download, lambda reader: self._store(path2, reader, size, target))
        if sent and sent[0] != size:
            raise OSError(errno.EIO, f"{path1} changed during the copy", path2)

    # -- folders, removal, moves -------------------------------------------------------------
    def _create_folders(self, path: str, exist_ok: bool) -> None:
        with orion_errors(path, conflict=self._conflict_of(path), invalid=_NOT_A_DIRECTORY):
            self.session.create_folders(self._orion_path(path), exist_ok=exist_ok)
        self._forget_created(path)

    def _conflict_of(self, path: str) -> Callable[[str, str], OSError]:
        """The error of a 409 from creating ``path``: FileExistsError if it exists, else
        NotADirectoryError (something above it is not a folder)."""

        def make(message: str, where: str) -> OSError:
            self.invalidate_cache(self._parent(path))
            if self.exists(path):
                return FileExistsError(errno.EEXIST, message, where)
            return NotADirectoryError(errno.ENOTDIR, message, where)

        return make

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Create a folder. Raises FileExistsError, FileNotFoundError (no parent and not
        ``create_parents``), NotADirectoryError, PermissionError."""
        path = self._strip_protocol(path)
        if not create_parents:
            parent = self.info(self._parent(path))
            if not is_directory(parent):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", self._parent(path))
        self._create_folders(path, exist_ok=False)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Create a folder and its missing parents (one request; none when the cache already
        knows the folder and ``exist_ok``)."""
        path = self._strip_protocol(path)
        if exist_ok:
            known = self._cached_entry_quiet(path)
            if known is not None and is_directory(known):
                return
        self._create_folders(path, exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        """Remove an empty folder. Raises OSError ENOTEMPTY, NotADirectoryError."""
        path = self._strip_protocol(path)
        if not is_directory(self.info(path)):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        with orion_errors(path, conflict=not_empty):
            self.session.remove_paths(self._orion_path(path), recursive=False)
        self._forget_removed(path)

    def rm_file(self, path: str) -> None:
        """Remove one path (a folder only if empty)."""
        path = self._strip_protocol(path)
        with orion_errors(path, conflict=not_empty):
            self.session.remove_paths(self._orion_path(path), recursive=False)
        self._forget_removed(path)

    def rm(
        self, path: str | list[str], recursive: bool = False, maxdepth: int | None = None
    ) -> None:
        """Remove files, and folders with everything in them (``recursive``), in one request for
        all the paths (globs expanded). Raises FileNotFoundError, IsADirectoryError (a folder
        without ``recursive``), PermissionError (shards, virtual folders)."""
        if maxdepth is not None:
            super().rm(path, recursive=recursive, maxdepth=maxdepth)
            return
        paths = _outermost(self.expand_path(path))
        for one in paths:
            info = self.info(one)
            if is_directory(info) and not recursive:
                raise IsADirectoryError(errno.EISDIR, "a directory needs recursive=True", one)
            if info.get(wire.F_RESOURCE_TYPE) == wire.SHARD:
                raise PermissionError(errno.EACCES, "a shard is read-only", one)
        orion_paths = [self._orion_path(p) for p in paths]
        with orion_errors(paths[0] if len(paths) == 1 else str(paths), conflict=not_empty):
            self.session.remove_paths(*orion_paths, recursive=recursive)
        for one in paths:
            self._forget_removed(one)

    def mv(
        self, path1: Any, path2: str, recursive: bool = False, maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        """Move or rename (one request, whatever a folder holds). A glob or a list moves into
        the folder ``path2``; one path moves into ``path2`` if that is a folder, else becomes it
        (a File there is replaced). Raises FileNotFoundError, FileExistsError (a folder of that
        name exists there), IsADirectoryError / NotADirectoryError (a file over a folder or the
        reverse), PermissionError, OSError EINVAL (a folder into itself)."""
        path2 = self._strip_protocol(path2)
        if isinstance(path1, list) or has_magic(self._strip_protocol(path1)):
            sources = _outermost(self.expand_path(path1))
            self.makedirs(path2, exist_ok=True)
            self._move([(self.info(s), s, path2, None) for s in sources], path2)
            return
        path1 = self._strip_protocol(path1)
        source = self.info(path1)
        final, name = path2, path2.rsplit(urls.SEP, 1)[-1]
        target = self._info_or_none(path2)
        if target is not None and is_directory(target) and path1 != path2:
            final = f"{path2}{urls.SEP}{path1.rsplit(urls.SEP, 1)[-1]}" if path2 else path1
            name = None  # moved into a folder: the item keeps its Orion name
            target = self._info_or_none(final)
        if final == path1:
            return
        replaced = None
        if target is not None:
            if is_directory(source) and not is_directory(target):
                raise NotADirectoryError(errno.ENOTDIR, "a directory cannot replace a file", final)
            if not is_directory(source) and is_directory(target):
                raise IsADirectoryError(errno.EISDIR, "a file cannot replace a directory", final)
            if not is_directory(target):
                replaced = self._write_target(final, "wb")
        self._move([(source, path1, self._parent(final), name)], final)
        if replaced is not None:  # after the move, so that the name is never empty
            with orion_errors(final):
                self.session.delete_resource(content_ref(replaced))
            self._forget_removed(final)

    def _info_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return self.info(path)
        except FileNotFoundError:
            return None

    def _move(self, moves: list[tuple[dict[str, Any], str, str, str | None]], where: str) -> None:
        """One assign request: each ``(source info, source path, destination folder, new name or
        None to keep the Orion name)``; a missing destination folder is made first."""
        assignments = []
        for info, source, folder, name in moves:
            if info.get(wire.F_ID) is None or info.get(wire.F_RESOURCE_TYPE) == wire.SHARD:
                raise PermissionError(errno.EACCES, "this cannot be moved", source)
            assignments.append({
                wire.F_RESOURCE_TYPE: info[wire.F_RESOURCE_TYPE],
                wire.F_ID: info[wire.F_ID],
                wire.F_PATH: self._orion_path(folder),
                wire.F_NAME: name if name is not None else orion_name(info),
            })  # fmt: skip
        try:
            with orion_errors(where):
                self.session.move_items(*assignments)
        except FileNotFoundError:  # the destination folder is missing: make it, then move
            for folder in {folder for _, _, folder, _ in moves}:
                self.makedirs(folder, exist_ok=True)
            with orion_errors(where):
                self.session.move_items(*assignments)
        for _, source, folder, _ in moves:
            self._forget_removed(source)
            self._forget_created(folder)
            self.dircache.pop(folder, None)

    # -- tags and times ----------------------------------------------------------------------
    def set_tags(self, path: str, tags: Iterable[str]) -> list[str]:
        """Make ``tags`` the exact tag set of a File, Dataset or ShardCollection; returns it.

        At most one request to add and one to remove. Raises OSError ENOTSUP for folders and
        shards (they have no tags), FileNotFoundError, PermissionError.
        """
        path = self._strip_protocol(path)
        info = self.info(path, refresh=True)
        wanted = list(dict.fromkeys(tags))
        current = info.get(wire.F_TAGS) or []
        ref = self._taggable(path, info)
        result = list(current)
        with orion_errors(path):
            add = [t for t in wanted if t not in current]
            drop = [t for t in current if t not in wanted]
            if add:
                result = self.session.tag_resource(ref, *add)
            if drop:
                result = self.session.untag_resource(ref, *drop)
        return self._retagged(path, info, result)

    def add_tags(self, path: str, *tags: str) -> list[str]:
        """Add tags (one request); returns the tags afterwards. Raises as :meth:`set_tags`."""
        path = self._strip_protocol(path)
        info = self.info(path)
        with orion_errors(path):
            result = self.session.tag_resource(self._taggable(path, info), *tags)
        return self._retagged(path, info, result)

    def remove_tags(self, path: str, *tags: str) -> list[str]:
        """Remove tags (one request; absent ones are ignored); returns the tags afterwards."""
        path = self._strip_protocol(path)
        info = self.info(path)
        with orion_errors(path):
            result = self.session.untag_resource(self._taggable(path, info), *tags)
        return self._retagged(path, info, result)

    @staticmethod
    def _taggable(path: str, info: dict[str, Any]) -> dict[str, Any]:
        if info.get(wire.F_RESOURCE_TYPE) not in wire.TAGGABLE_TYPES or info.get(wire.F_ID) is None:
            raise OSError(errno.ENOTSUP, f"a {info.get(wire.F_RESOURCE_TYPE)} has no tags", path)
        return content_ref(info)

    def _retagged(self, path: str, info: dict[str, Any], tags: list[str]) -> list[str]:
        cached = self._cached_entry_quiet(path)
        for target in (info, cached):
            if target is not None:
                target[wire.F_TAGS] = list(tags)
        return list(tags)

    def modified(self, path: str) -> datetime:
        """When the content last changed (Orion's ``modified``)."""
        return _timestamp(self.info(path).get(wire.F_MODIFIED), path)

    def created(self, path: str) -> datetime:
        """When the item was created (Orion's ``created``)."""
        return _timestamp(self.info(path).get(wire.F_CREATED), path)

    def ukey(self, path: str) -> str:
        """Changes when the content changes: id, size and ``modified``."""
        info = self.info(path)
        return f"{info.get(wire.F_ID)}:{info.get(INFO_SIZE)}:{info.get(wire.F_MODIFIED)}"


def _seekable(source: Any) -> bool:
    try:
        return bool(source.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _outermost(paths: Iterable[str]) -> list[str]:
    """The paths that are not inside another of them (sorted)."""
    out: list[str] = []
    for path in sorted(set(paths)):
        if "" in out or any(path.startswith(kept + urls.SEP) for kept in out):
            continue
        out.append(path)
    return out


def _timestamp(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise OSError(errno.ENODATA, "no such time", path)
    return datetime.fromisoformat(value)
