"""File-like adapters between the session's streamed transfers and fsspec.

- :class:`DownloadStream`: a whole download (``session.download_file``) running in a thread into a
  bounded queue, read in order. It is the read-ahead of a file read from its start: one GET for the
  whole sequential read instead of one ranged GET per block.
- :class:`ProgressReader` / :class:`ProgressWriter`: a source / sink that reports the bytes that
  pass to an fsspec callback (progress bars of ``put`` and ``get``).
- :func:`piped_copy`: a download and an upload joined by an OS pipe, so a large copy is never held
  whole in memory or on disk.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar

from fsspec.callbacks import Callback

__all__ = ["DownloadStream", "ProgressReader", "ProgressWriter", "piped_copy"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Pieces the download thread reads from the socket (1 MiB: the session's fastest read size).
STREAM_CHUNK = 1 << 20
#: Pieces a stream may hold ahead of its reader (so at most this many MiB are buffered).
STREAM_DEPTH = 16
#: Seconds close() waits for the download thread to drop its connection.
STREAM_JOIN_TIMEOUT = 5.0


class _Cancelled(Exception):
    """Raised inside the download thread (from its sink) to end a stream nobody reads any more."""


_END = object()


class DownloadStream:
    """A whole download running in a thread, read in order with :meth:`read`.

    ``download(sink)`` must write the content, in order, into ``sink`` (a file-like object with
    ``write``) and return; what it raises is raised by the :meth:`read` that reaches that point.
    ``wait`` is the longest :meth:`read` waits for the next piece (the download's own request
    timeout normally ends a stalled download first). Not thread-safe: one reader at a time.
    """

    def __init__(self, download: Callable[[Any], object], wait: float) -> None:
        self.position = 0
        self._wait = wait
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=STREAM_DEPTH)
        self._cancelled = threading.Event()
        self._piece: bytes = b""
        self._pending = memoryview(b"")
        self._ended = False
        self._thread = threading.Thread(
            target=self._run, args=(download,), name="orionfs-fsspec-stream", daemon=True
        )
        self._thread.start()

    # -- the download thread ---------------------------------------------------------------
    def _run(self, download: Callable[[Any], object]) -> None:
        try:
            download(self)
        except _Cancelled:
            return
        except BaseException as exc:  # handed to the reader, who raises it
            self._queue.put(exc)
            return
        self._queue.put(_END)

    def write(self, chunk: bytes) -> int:
        """The sink side: queue one piece (blocks while the queue is full)."""
        if self._cancelled.is_set():
            raise _Cancelled
        self._queue.put(chunk)
        return len(chunk)

    # -- the reader ------------------------------------------------------------------------
    def _next_piece(self) -> bool:
        """Load the next piece into ``_pending``; False at the end. Raises the download's error."""
        if self._ended:
            return False
        try:
            item = self._queue.get(timeout=self._wait)
        except queue.Empty as exc:
            self._ended = True
            raise TimeoutError(f"the download sent nothing for {self._wait:.0f} s") from exc
        if item is _END:
            self._ended = True
            return False
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        self._piece = item
        self._pending = memoryview(item)
        return True

    def read(self, length: int) -> bytes:
        """The next ``length`` bytes (fewer at the end of the content).

        A read of exactly one whole piece gets that piece itself, not a copy: a reader that asks
        for the download's piece size (``STREAM_CHUNK``, 1 MiB) costs no copying.
        """
        if not self._pending and self._next_piece() and length == len(self._piece):
            self._pending = memoryview(b"")
            self.position += length
            return self._piece
        parts: list[memoryview] = []
        need = length
        while need > 0 and (self._pending or self._next_piece()):
            piece = self._pending[:need]
            self._pending = self._pending[need:]
            parts.append(piece)
            need -= len(piece)
        self.position += length - need
        return b"".join(parts)

    def close(self) -> None:
        """Stop the download (its connection is closed) and drop what was buffered."""
        self._cancelled.set()
        while True:  # unblock a put() of the download thread; its next write() raises
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(STREAM_JOIN_TIMEOUT)
        self._pending = memoryview(b"")
        self._ended = True


class ProgressReader:
    """A binary source that reports every byte read to ``callback`` (an upload's progress).

    Seeking reports the new position, so a retried upload (the body is sent again from its
    start) shows its true progress.
    """

    def __init__(self, source: IO[bytes], callback: Callback) -> None:
        self._source = source
        self._callback = callback

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self._callback.relative_update(len(data))
        return data

    def seekable(self) -> bool:
        return self._source.seekable()

    def tell(self) -> int:
        return self._source.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._source.seek(offset, whence)
        self._callback.absolute_update(position)
        return position


class ProgressWriter:
    """A binary sink that reports every byte written to ``callback`` (a download's progress)."""

    def __init__(self, sink: IO[bytes], callback: Callback) -> None:
        self._sink = sink
        self._callback = callback

    def write(self, data: bytes) -> int:
        written = self._sink.write(data)
        count = len(data) if written is None else written
        self._callback.relative_update(count)
        return count


def piped_copy(download: Callable[[IO[bytes]], int], upload: Callable[[IO[bytes]], T]) -> T:
    """Run ``download(writer)`` in a thread and ``upload(reader)`` here, over one OS pipe.

    Returns what ``upload`` returns. When the download fails, its error is raised (the upload,
    short of bytes, fails too); otherwise the upload's own error is.
    """
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb")
    writer = os.fdopen(write_fd, "wb")
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            download(writer)
        except BaseException as exc:
            failure.append(exc)
        finally:
            try:
                writer.close()
            except OSError:  # the reader is gone: the upload failed, its error is raised
                pass

    thread = threading.Thread(target=pump, name="orionfs-fsspec-copy", daemon=True)
    thread.start()
    try:
        result = upload(reader)
    except BaseException:
        reader.close()  # the download's next write fails (EPIPE) and the thread ends
        thread.join()
        if failure and not isinstance(failure[0], BrokenPipeError):
            raise failure[0] from None
        raise
    reader.close()
    thread.join()
    if failure:
        raise failure[0]
    return result
