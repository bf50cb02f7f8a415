"""OrionFileSystem: Orion as an fsspec filesystem (``orion://``), over one OrionSession.

This module holds construction, URLs, reading, writing and copying; the other concerns are mixins:
listings and lookups (:mod:`.listing`, fsspec's ``dircache``, by default trusted for
``DEFAULT_LISTINGS_TTL`` seconds like the mount's cache), folders / removal / moves
(:mod:`.changes`) and tags (:mod:`.tags`). Every Orion error leaves as the builtin OSError of
:mod:`orionfs.fsspec.errors`.
"""

from __future__ import annotations

import errno
import io
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from fsspec.spec import AbstractFileSystem, make_instance
from fsspec.utils import isfilelike

from orionfs.client import wire
from orionfs.client.config import SessionConfig
from orionfs.client.session import OrionSession
from orionfs.exceptions import NotFoundResponse
from orionfs.fsspec import urls
from orionfs.fsspec.changes import ChangesMixin
from orionfs.fsspec.entries import INFO_READONLY, INFO_SIZE, content_ref, is_directory
from orionfs.fsspec.errors import orion_errors
from orionfs.fsspec.file import DEFAULT_BLOCK_SIZE, OrionFile
from orionfs.fsspec.listing import ListingMixin
from orionfs.fsspec.streams import STREAM_CHUNK, ProgressReader, ProgressWriter, piped_copy
from orionfs.fsspec.tags import TagsMixin

__all__ = ["OrionFileSystem"]

logger = logging.getLogger(__name__)

#: Seconds a listing is trusted (the mount's default ``--cache-ttl``).
DEFAULT_LISTINGS_TTL = 5.0
#: Pages of a large folder fetched at once, once the first page gave the total.
DEFAULT_LIST_PARALLEL = 4
#: Files up to this size are copied through memory (so the upload can be retried); larger ones
#: are streamed from the download into the upload through a pipe.
COPY_IN_MEMORY_MAX = 16 << 20


class _OrionFileSystemType(type(AbstractFileSystem)):  # type: ignore[misc]
    """Decides the profile before fsspec's instance cache looks for an instance (see
    :func:`orionfs.fsspec.urls.resolve_profile`); a filesystem over a given session is never cached."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("session") is not None:
            kwargs.setdefault("skip_instance_cache", True)
        return super().__call__(*args, **urls.resolve_profile(kwargs))


class OrionFileSystem(
    ListingMixin, ChangesMixin, TagsMixin, AbstractFileSystem, metaclass=_OrionFileSystemType
):
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

    @property
    def fsid(self) -> str:
        """The same for every filesystem on one Orion server (fsspec compares filesystems by it)."""
        return f"{urls.PROTOCOL}_{self.session.config.url.rstrip(urls.SEP)}"

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
                return self.session.download_file(ref, sink, chunk_size=STREAM_CHUNK)

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
        with orion_errors(path, invalid=self._not_a_folder(parent)):
            try:
                stored = self.session.upload_file(folder, name, source, size)
            except NotFoundResponse:
                if start is None:
                    raise
                self._create_folders(parent, exist_ok=True, new=True)
                source.seek(start)
                stored = self.session.upload_file(folder, name, source, size)
        entry = stored.to_dict()
        entry[wire.F_PATH] = f"{folder.rstrip(urls.SEP)}{urls.SEP}{name}"
        return self._remember(path, entry)

    def _not_a_folder(self, folder: str) -> Callable[[str, str], OSError]:
        """The error of a 400 from creating a file in ``folder``: PermissionError when that is a
        read-only directory (a shard collection), else NotADirectoryError."""

        def make(message: str, where: str) -> OSError:
            info = self._cached_entry_quiet(folder) or self._info_or_none(folder)
            if info is not None and is_directory(info) and info.get(INFO_READONLY):
                return PermissionError(errno.EACCES, message, where)
            return NotADirectoryError(errno.ENOTDIR, message, where)

        return make

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

    # -- tags and times ----------------------------------------------------------------------
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


def _timestamp(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise OSError(errno.ENODATA, "no such time", path)
    return datetime.fromisoformat(value)
