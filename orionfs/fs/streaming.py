"""Streamed uploads: a file written in order from offset 0 uploads while it is being written.

Once a staged file written that way reaches STREAM_MIN_SIZE, a ``StreamingUpload`` sends its bytes
as they land in the staging file (one chunked request, wire "Streamed uploads", through the
store's ``create_file_stream`` / ``replace_content_stream``): its body is spans of the staging file
(``FileSpan``, over a descriptor of its own), which a plain-HTTP connection sends with sendfile(2)
straight from the page cache and a TLS one reads in blocks (orionfs.client.sendfile). ``close()``
then only waits for the rest of the body and the answer: "until stored" is about max(write time,
upload time) instead of their sum.

The staged copy stays whole while it streams: a write that is not an append, a truncate, a rename
or an unlink cuts the stream (the server commits nothing of a cut stream), and the file is then
uploaded at ``close()`` as before, from its staged copy; a stream that fails does the same, so its
error reaches ``close()``/``fsync()`` and the recovery folder exactly like a sized upload's. Local
disk: a file being written uses its full size in the staging folder until it is stored (a 10 GiB
sequential write needs 10 GiB free there), streamed or not.

At most MAX_STREAMS run at once (each holds a thread and a connection for as long as its file is
written); a file past that limit uploads at ``close()``. No FUSE imports.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from orionfs.client.bodies import FileSpan
from orionfs.fs.entry import Entry

logger = logging.getLogger(__name__)

#: A file written in order from offset 0 starts streaming once it holds this many bytes (smaller
#: files go in one sized request at close(), which costs the same round trips).
STREAM_MIN_SIZE: int = 4 << 20
#: The least a span of the body holds (the sender waits for this much, or the end).
STREAM_CHUNK: int = 128 << 10
#: The most a span holds: what was written since the last span, up to this.
STREAM_SPAN_MAX: int = 8 << 20
#: Streams at once in a mount.
MAX_STREAMS: int = 4
#: Seconds a stream waits for more bytes before it gives up (the file then uploads at close()):
#: a slow writer does not hold a connection and a stream slot for ever.
STREAM_IDLE_TIMEOUT: float = 30.0

#: Sends the body (an iterable of spans of the staged file) and returns the stored file's Entry.
Send = Callable[[Iterable[FileSpan]], Entry]


class StreamCut(Exception):
    """Raised inside the body to cut the request (the server then commits nothing)."""


class StreamingUpload:
    """One file's upload running while the file is written (see the module docstring).

    The writer calls ``grew(size)`` after each append, and ``finish(size)`` when the file is to
    be stored (``close()``); ``abort()`` cuts the request. Thread-safe; ``abort`` never blocks.
    """

    def __init__(
        self,
        data_path: Path,
        size: int,
        send: Send,
        on_end: Callable[[StreamingUpload], None] | None = None,
        idle_timeout: float = STREAM_IDLE_TIMEOUT,
        chunk: int = STREAM_CHUNK,
    ) -> None:
        self._fd = os.open(data_path, os.O_RDONLY | os.O_CLOEXEC)  # the staged file may move
        self._send = send
        self._on_end = on_end
        self._idle_timeout = idle_timeout
        self._chunk = chunk
        self._cond = threading.Condition()
        self._available = size
        self._final: int | None = None
        self._cut = False
        self.sent = 0
        #: The whole body went out (the server may have stored it even if the answer is lost).
        self.body_sent = False
        self.result: Entry | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="orionfs-stream", daemon=True)
        self._thread.start()

    @property
    def ended(self) -> bool:
        """Cut, failed or finished: it sends nothing more."""
        return self._cut or self._done.is_set()

    @property
    def failed(self) -> bool:
        """Cut or failed (the file must be uploaded from its staged copy)."""
        return self._cut or (self._done.is_set() and self.result is None)

    def grew(self, size: int) -> None:
        """The staged file now holds ``size`` bytes, written in order."""
        with self._cond:
            if size > self._available:
                self._available = size
                self._cond.notify_all()

    def abort(self) -> None:
        """Cut the request (nothing is committed); the file uploads from its staged copy."""
        with self._cond:
            if not self._done.is_set():
                self._cut = True
            self._cond.notify_all()

    def finish(self, size: int) -> Entry | None:
        """The file is complete at ``size`` bytes: send the rest, wait for the answer, and return
        the stored Entry; None if the stream was cut or failed (upload the staged copy then)."""
        with self._cond:
            if self._cut:
                return None
            self._final = size
            self._cond.notify_all()
        self._done.wait()
        return None if self._cut else self.result

    # -- the sender thread -------------------------------------------------------------------------

    def _chunks(self) -> Iterator[FileSpan]:
        while True:
            with self._cond:
                while True:
                    if self._cut:
                        raise StreamCut("cut")
                    if self._final is not None and self.sent >= self._final:
                        self.body_sent = True
                        return
                    end = self._final if self._final is not None else self._available
                    if end - self.sent >= self._chunk or (
                        self._final is not None and end > self.sent
                    ):
                        break
                    if not self._cond.wait(self._idle_timeout):
                        self._cut = True
                        raise StreamCut(f"no new data for {self._idle_timeout:g} s")
                offset, length = self.sent, min(STREAM_SPAN_MAX, end - self.sent)
            self.sent += length
            yield FileSpan(self._fd, offset, length)

    def _run(self) -> None:
        try:
            self.result = self._send(self._chunks())
        except StreamCut as cut:
            logger.debug("stream cut (%s): the file uploads from its staged copy", cut)
        except Exception as error:  # noqa: BLE001 - finish() reports it by falling back
            self.error = error
            logger.info("streamed upload failed (%s): the file uploads at close", error)
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._done.set()
            if self._on_end is not None:
                self._on_end(self)


class StreamSlots:
    """The mount's streams: at most ``limit`` at once; counts for the upload stats."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self.running = 0
        self.started = 0
        self.completed = 0
        self.fell_back = 0

    def start(self, data_path: Path, size: int, send: Send) -> StreamingUpload | None:
        """A new stream of the staged file at ``data_path`` (holding ``size`` bytes so far), or
        None when every slot is taken or the file cannot be opened."""
        with self._lock:
            if self.running >= self._limit:
                return None
            self.running += 1
            self.started += 1
        try:
            return StreamingUpload(data_path, size, send, on_end=self._ended)
        except OSError as error:
            logger.warning("cannot stream %s: %s", data_path, error)
            with self._lock:
                self.running -= 1
            return None

    def _ended(self, stream: StreamingUpload) -> None:
        with self._lock:
            self.running -= 1
            if stream.failed:
                self.fell_back += 1
            else:
                self.completed += 1
