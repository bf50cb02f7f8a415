"""OrionFile: the file object of ``OrionFileSystem.open`` (fsspec's AbstractBufferedFile).

Reading (``rb``) takes one of two paths:

- a large file read in order from its start (the usual case: pandas' CSV reader,
  ``shutil.copyfileobj``) is served by one streamed download
  (:class:`~orionfs.fsspec.streams.DownloadStream`), which reads ahead on its own, in the pieces
  it arrives in (no copy when a read asks for a whole piece); the first read elsewhere stops it,
  and it is not started again for that file;
- any other read is random access over a block cache with read-ahead: fsspec's ``background``
  cache by default (an LRU of ``block_size`` blocks, the next block fetched in a thread while the
  current one is read), each block one ranged GET (``session.read_range``). A single read of
  several blocks or more is one ranged GET of its own, past the cache.

Writing (``wb``, ``xb``, ``ab``) stages the bytes in a spooled temp file (memory, then disk) and
uploads them in one request when the file is closed: a File that exists keeps its id (its content
is replaced), a new one is created (its folders too, if missing). ``close()`` raises the upload's
error. Leaving a ``with`` block by an exception discards the file instead of uploading half of it.
``ab`` starts from the File's current content.
"""

from __future__ import annotations

import errno
import logging
import tempfile
import threading
from typing import TYPE_CHECKING, Any

from fsspec.spec import AbstractBufferedFile

from orionfs.fsspec.entries import INFO_SIZE, is_directory
from orionfs.fsspec.errors import orion_errors
from orionfs.fsspec.streams import DownloadStream

if TYPE_CHECKING:
    from orionfs.fsspec.filesystem import OrionFileSystem

__all__ = ["OrionFile"]

logger = logging.getLogger(__name__)

#: Default block size of an open file (bytes per ranged GET and per cache block).
DEFAULT_BLOCK_SIZE = 8 << 20
#: Default cache: fsspec's LRU block cache with a background read-ahead of the next block.
DEFAULT_CACHE_TYPE = "background"
#: Blocks the block caches keep (so an open file holds at most this many blocks).
DEFAULT_MAX_BLOCKS = 8
#: Cache types that take ``maxblocks``.
_BLOCK_CACHES = frozenset({"background", "blockcache"})
#: A file is streamed only if at least this many blocks remain to be read (smaller files are a
#: few ranged GETs, cheaper than a thread).
STREAM_MIN_BLOCKS = 4
#: Bytes a staged write keeps in memory before it spills to a temp file.
SPOOL_MEMORY = 32 << 20


class OrionFile(AbstractBufferedFile):
    """A file of an OrionFileSystem (see the module docstring). Raises, when opened:
    IsADirectoryError (a folder or collection), FileNotFoundError (``rb`` of nothing),
    FileExistsError (``xb`` of something), PermissionError (a write to a read-only kind)."""

    fs: OrionFileSystem

    def __init__(
        self,
        fs: OrionFileSystem,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_type: str | None = None,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        block_size = block_size or DEFAULT_BLOCK_SIZE
        cache_type = cache_type or DEFAULT_CACHE_TYPE
        self._stream: DownloadStream | None = None
        self._stream_lock = threading.Lock()
        self._streamed = False
        self._spool: Any = None
        self._target: dict[str, Any] | None = None
        if mode == "rb":
            info = fs.info(path)
            if is_directory(info):
                raise IsADirectoryError(errno.EISDIR, "a directory cannot be opened", path)
            self._details = info
            options = dict(cache_options or {})
            if cache_type in _BLOCK_CACHES:
                options.setdefault("maxblocks", DEFAULT_MAX_BLOCKS)
            super().__init__(
                fs, path, mode, block_size, autocommit, cache_type, options,
                size=info[INFO_SIZE], **kwargs,
            )  # fmt: skip
            return
        if mode not in ("wb", "xb", "ab"):
            raise ValueError(f"unsupported mode {mode!r}: use rb, wb, xb or ab")
        self._target = fs._write_target(path, mode)
        super().__init__(fs, path, mode, block_size, autocommit, **kwargs)
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
        if mode == "ab" and self._target is not None:
            fs._download(path, self._target, self._spool)
            self.loc = self._spool.tell()

    # -- reading -----------------------------------------------------------------------------
    def _fetch_range(self, start: int, end: int) -> bytes:
        """Bytes ``start:end`` by one ranged GET (the block cache's fetcher)."""
        return self.fs._read_range(self.path, self.details, start, end - start)

    def _may_stream(self) -> bool:
        """Whether to start the file's download stream here: once per file, at its start, and
        only where the file is large enough for it to pay off."""
        return (
            not self._streamed and self.loc == 0 and self.size >= STREAM_MIN_BLOCKS * self.blocksize
        )

    def _start_stream(self) -> DownloadStream:
        self._streamed = True
        stream = DownloadStream(self.fs._downloader(self.path, self.details), self.fs.read_wait)
        self._stream = stream
        return stream

    def _stop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def _read_stream(self, want: int) -> bytes | None:
        """The next ``want`` bytes from the download stream, or None when the position is not
        where the stream is (which stops it: the reader left the in-order path)."""
        with self._stream_lock:
            stream = self._stream
            if stream is None and self._may_stream():
                stream = self._start_stream()
            if stream is None:
                return None
            if stream.position != self.loc:
                self._stop_stream()
                return None
            try:
                with orion_errors(self.path):
                    data = stream.read(want)
            except BaseException:
                self._stop_stream()
                raise
        self.loc += len(data)
        return data

    def read(self, length: int = -1) -> bytes:
        """Up to ``length`` bytes from the position (all the rest for -1); always ``bytes``."""
        if self.mode == "rb" and not self.closed:
            remaining = max(self.size - self.loc, 0)
            want = remaining if length is None or length < 0 else min(int(length), remaining)
            if want == 0:
                return b""
            data = self._read_stream(want)
            if data is not None:
                return data
            if want >= 2 * self.blocksize:  # large: one ranged GET, not block after block
                data = self._fetch_range(self.loc, self.loc + want)
                self.loc += len(data)
                return data
        out = super().read(length)
        return out if type(out) is bytes else bytes(out)

    # -- writing -----------------------------------------------------------------------------
    def _initiate_upload(self) -> None:
        """Nothing to start: Orion takes a file in one request, made by :meth:`commit`."""

    def _upload_chunk(self, final: bool = False) -> bool:
        """Move the write buffer into the spool; on the final flush, upload (if autocommit)."""
        self._spool.write(self.buffer.getbuffer())
        if final and self.autocommit:
            self.commit()
        return True

    def commit(self) -> None:
        """Upload the staged bytes (one request); raises the upload's error."""
        size = self._spool.tell()
        self._spool.seek(0)
        self.fs._store(self.path, self._spool, size, self._target)

    def discard(self) -> None:
        """Drop the staged bytes without uploading them."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    # -- closing -----------------------------------------------------------------------------
    def close(self) -> None:
        """Close; a written file is uploaded first and the upload's error is raised here."""
        if self.closed or getattr(self, "_unclosable", False):
            return
        if self.mode == "rb":
            with self._stream_lock:
                self._stop_stream()
            super().close()
            return
        try:
            if not self.forced:
                self.flush(force=True)
        finally:
            self.closed = True
            if self.autocommit:
                self.discard()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None and self.mode != "rb" and not self.closed:
            self.forced = True  # an error inside the block: store nothing
            self.closed = True
            self.discard()
            return
        self.close()
