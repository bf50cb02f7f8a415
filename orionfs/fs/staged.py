"""One open file's staged state (``StagedFile``): its remote Entry and its local copy.

Writes are staged in a data file of the mount's staging folder (orionfs.fs.journal), with a
journal record saying whose data it is (the path, the id and the version it was based on, and
whether a ``close()`` acknowledged it), kept up to date as the file is renamed, uploaded or
acknowledged; the next mount recovers what a dead mount left. The original content is downloaded
only when a write or a truncate to a non-zero length needs it (``O_TRUNC`` never downloads).
``upload`` creates the file (a new one) or replaces its content (same id); a file written in order
from offset 0 may already be streaming (orionfs.fs.streaming), and ``upload`` then finishes that
stream, or falls back to a sized upload of the staged copy. Where an upload finally fails, the
staged data goes to the recovery folder (``keep_for_recovery``): from then on the node holds no
data, and every read or write of it fails with DataKeptForRecovery, so nothing more is written
where the user does not look.

Locking: ``lock`` serializes changes of the staged copy (write, truncate, download, upload). Reads
of a loaded copy take no lock (``os.pread`` on the temp file), so a reader on another descriptor
never waits for an upload or a download of the same file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from orionfs.client.bodies import FileSpan
from orionfs.exceptions import DataKeptForRecovery
from orionfs.fs.entry import Entry
from orionfs.fs.journal import JournalRecord

if TYPE_CHECKING:
    from orionfs.fs.journal import StagingArea
    from orionfs.fs.streaming import StreamingUpload

logger = logging.getLogger(__name__)

#: Bytes per ranged request when a file is downloaded whole into its staging file.
STAGE_DOWNLOAD_CHUNK: int = 8 << 20
#: Modes of the recovery folder and of the files kept there (they hold the user's data).
RECOVERY_DIR_MODE: int = 0o700
RECOVERY_FILE_MODE: int = 0o600


class ContentStore(Protocol):
    """What staged files need from the cache (``orionfs.fs.cache.CachedSession``)."""

    def read(self, entry: Entry, offset: int, length: int) -> bytes: ...

    def create_file(self, path: str, fileobj: BinaryIO, size: int) -> Entry: ...

    def replace_content(self, path: str, fileobj: BinaryIO, size: int) -> Entry: ...

    def unlink(self, path: str) -> None: ...

    def set_mtime(self, path: str, mtime_ns: int) -> Entry: ...


class StreamingStore(ContentStore, Protocol):
    """A store that also takes uploads of unknown length (orionfs.fs.streaming)."""

    def create_file_stream(self, path: str, chunks: Iterable[FileSpan]) -> Entry: ...

    def replace_content_stream(self, path: str, chunks: Iterable[FileSpan]) -> Entry: ...


#: Starts a streamed upload of a staging file (orionfs.fs.streaming.StreamSlots.start): (data
#: file, bytes in it so far, send) -> the stream, or None when refused.
StreamStarter = Callable[[Path, int, Callable[[Iterable[bytes]], Entry]], "StreamingUpload | None"]


class StagedFile:
    """One open mount path: its remote entry (None until a new file's first upload) and, once
    anything is written, the local temp file holding its full new content."""

    def __init__(self, path: str, entry: Entry | None, staging: StagingArea) -> None:
        self.path = path
        self.entry = entry
        self.lock = threading.RLock()
        self.refs = 0
        self.detached = False  # unlinked or replaced while open: never uploaded again
        self.dirty = entry is None  # a new file must be created even if nothing is written
        self.loaded = entry is None  # the temp file holds the full content
        self.size = entry.size if entry else 0
        self.mtime_ns = time.time_ns()  # the content's time: the last write, or what utimens set
        self.changed_ns = self.mtime_ns  # the last change of content or time (st_ctime)
        self.set_mtime_ns: int | None = None  # a time utimens set, sent after the next upload
        self.last_error: BaseException | None = None
        self.kept: Path | None = None  # where the data went to the recovery folder
        #: A close() acknowledged the data (write-back): it must reach Orion, even after a crash.
        self.acked = False
        #: Every byte staged so far was written in order from offset 0 (a stream may run).
        self.in_order = entry is None
        self.stream: StreamingUpload | None = None
        self.stream_failed = False  # no new stream until the next upload
        self._staging = staging
        self._slot = staging.new_slot()
        self._journaled = False  # the journal holds a live record of this file
        self._fd: int | None = None
        self._fd_lock = threading.Lock()
        self._tmp_path: Path | None = None
        #: The store's ``uploaded``, set by an upload and cleared by any change of content:
        #: ``discard`` then hands the staging file (what was stored) over to the data cache.
        self._adopt: Callable[[Entry, Path, int], object] | None = None

    @property
    def pending(self) -> bool:
        """True for a new file never uploaded (it exists only in this mount)."""
        return self.entry is None

    def _temp_fd(self) -> int:
        if self.kept is not None:
            raise DataKeptForRecovery(
                f"{self.path}: its staged data was moved to {self.kept} (the upload failed)"
            )
        if self._fd is None:
            with self._fd_lock:  # reads take no node lock: one reopen, not two
                if self._fd is not None:
                    return self._fd
                if self._tmp_path is not None:  # parked: the file is there, reopen it
                    self._fd = os.open(self._tmp_path, os.O_RDWR | os.O_CLOEXEC)
                    return self._fd
                self._fd = self._staging.create_data(self._slot)
                self._tmp_path = self._staging.data_path(self._slot)
            self.journal()
        return self._fd

    def park(self) -> None:
        """Close the staging file's descriptor, keeping the file (reopened when needed): a
        closed file waiting for its upload holds no descriptor (a write-back ``cp -r`` of
        thousands of files would otherwise run out of them). Caller holds no handle on it."""
        with self.lock, self._fd_lock:
            if self._fd is not None and self._tmp_path is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None

    @property
    def data_path(self) -> Path | None:
        """The staging file, once there is one."""
        return self._tmp_path

    def journal(self) -> None:
        """Journal the staged file's record (path, id, base version, acknowledged): once it has
        a staging file or is acknowledged, until it is stored. A detached node's record goes
        (an unlinked file's data is nobody's)."""
        if self.detached:
            self.unjournal()
            return
        if self._tmp_path is None and not self.acked:
            return
        entry = self.entry if self.entry is not None and self.entry.is_file else None
        record = JournalRecord(
            path=self.path,
            root=self._staging.root,
            id=entry.id if entry is not None else None,
            base_ctime_ns=entry.ctime_ns if entry is not None else None,
            base_size=entry.size if entry is not None else None,
            acked=self.acked,
            data=self._tmp_path is not None,
        )
        try:
            self._staging.record(self._slot, record)
        except OSError as error:  # the data is still staged and uploaded; only a crash loses it
            logger.error("cannot journal the staged data of %s: %s", self.path, error)
            return
        self._journaled = True

    def unjournal(self) -> None:
        """Drop the journal record (stored, kept elsewhere, or nobody's). Takes no lock of the
        node: ``abandon`` calls it while an upload may hold ``lock``."""
        if self._journaled:
            self._journaled = False
            with contextlib.suppress(OSError):
                self._staging.record(self._slot, None)

    def acknowledge(self) -> None:
        """A ``close()`` returns before the upload (write-back): record that the staged data
        must reach Orion (the next mount uploads it if this one dies)."""
        with self.lock:
            if self.detached or self.kept is not None:
                return
            if not self.acked or not self._journaled:
                self.acked = True
                self.journal()

    def abort_stream(self) -> None:
        """Cut the streamed upload, if one runs (never blocks): the file is then uploaded from
        its staged copy. For any change a stream cannot follow (a rename, an unlink)."""
        stream = self.stream
        if stream is not None:
            stream.abort()

    def ensure_loaded(self, store: ContentStore, limit: int | None = None) -> None:
        """Download the remote content into the temp file (only the first ``limit`` bytes if
        given, the rest being cut anyway). Caller holds ``lock``."""
        if self.loaded:
            return
        fd = self._temp_fd()
        total = self.size if limit is None else min(self.size, limit)
        offset = 0
        assert self.entry is not None
        while offset < total:
            data = store.read(self.entry, offset, min(STAGE_DOWNLOAD_CHUNK, total - offset))
            if not data:
                break
            os.pwrite(fd, data, offset)
            offset += len(data)
        os.ftruncate(fd, offset)
        self.size = offset
        self.loaded = True

    def read(self, offset: int, length: int) -> bytes:
        """Bytes from the temp file (only valid once ``loaded``). Takes no lock: a read does not
        wait for an upload or a download of the same file."""
        fd, size = self._temp_fd(), self.size
        if offset >= size:
            return b""
        return os.pread(fd, min(length, size - offset), offset)

    def write(self, store: ContentStore, data: bytes | memoryview, offset: int) -> int:
        """Write into the staged copy; returns the bytes written. A write that is not an append
        cuts a streamed upload (bytes already sent cannot change)."""
        with self.lock:
            self.ensure_loaded(store)
            appended = offset == self.size
            written = os.pwrite(self._temp_fd(), data, offset)
            self.size = max(self.size, offset + written)
            self.dirty = True
            self._changed()
            if not self._journaled:
                self.journal()
            if not appended:
                self.in_order = False
                self.abort_stream()
            elif self.stream is not None:
                self.stream.grew(self.size)
            return written

    def truncate(self, store: ContentStore, length: int) -> None:
        """Cut or extend the staged copy to ``length`` bytes."""
        with self.lock:
            self._temp_fd()
            self.abort_stream()
            self.stream, self.stream_failed = None, False
            self.in_order = length == 0
            if length == 0:
                self.loaded = True  # nothing of the old content survives: no download
            else:
                self.ensure_loaded(store, limit=length)
            os.ftruncate(self._temp_fd(), length)
            self.size = length
            self.dirty = True
            self._changed()
            if not self._journaled:
                self.journal()

    def upload(self, store: ContentStore) -> None:
        """Upload the staged content if it changed (create, or replace with the same id): the
        streamed upload finished if one runs, else (or if it failed) the staged copy, sized.

        Raises the cache's exception on failure and keeps the data staged (``dirty``).
        """
        with self.lock:
            stream, self.stream = self.stream, None
            if not self.dirty or self.detached:
                if stream is not None:
                    stream.abort()
                return
            entry = stream.finish(self.size) if stream is not None else None
            if stream is not None and entry is None:
                self.stream_failed = True
                if stream.body_sent:  # stored, perhaps, with its answer lost: look again
                    invalidate = getattr(store, "invalidate", None)
                    if invalidate is not None:
                        invalidate(self.path)
            try:
                if entry is None:
                    # A reader of its own (own file offset), so concurrent preads are unaffected;
                    # a file that stayed empty has no staging file at all.
                    source = self._tmp_path if self._tmp_path is not None else os.devnull
                    with open(source, "rb") as fileobj:
                        if self.entry is None or not self.entry.is_file:
                            entry = store.create_file(self.path, fileobj, self.size)
                        else:
                            entry = store.replace_content(self.path, fileobj, self.size)
            except BaseException as exc:
                self.last_error = exc
                raise
            self.entry = entry
            self.dirty = False
            self.acked = False
            self.stream_failed = False
            self.last_error = None
            self.unjournal()  # stored: a crash now leaves nothing to recover
            self._adopt = getattr(store, "uploaded", None)  # the data cache adopts it at discard
            if self.set_mtime_ns is not None:
                self._send_mtime(store)

    def keep_mtime(self, mtime_ns: int) -> None:
        """utimens on an open file whose content is not stored yet: its time is the one given, and
        is sent after the upload (an upload sets the time of the content to now)."""
        with self.lock:
            self.set_mtime_ns = self.mtime_ns = mtime_ns
            self.changed_ns = time.time_ns()

    def _changed(self) -> None:
        """The content changed now: its time is now (a time utimens set before is overwritten),
        and it is no longer what was uploaded."""
        self.mtime_ns = self.changed_ns = time.time_ns()
        self.set_mtime_ns = None
        self._adopt = None

    def _send_mtime(self, store: ContentStore) -> None:
        """Send the time utimens set (one request). The content is stored whatever happens: a
        failure is logged, not raised, so close() does not report stored data as lost."""
        mtime_ns, self.set_mtime_ns = self.set_mtime_ns, None
        try:
            self.entry = store.set_mtime(self.path, mtime_ns)
        except Exception as error:
            logger.warning(
                "%s: stored, but its modification time was not set: %s", self.path, error
            )

    def start_stream(self, store: StreamingStore, start: StreamStarter) -> None:
        """Start a streamed upload if the file qualifies (written in order from offset 0, no
        stream yet, none failed since the last upload, STREAM_MIN_SIZE reached); ``start``
        (orionfs.fs.streaming.StreamSlots.start) may refuse. Caller holds ``lock``."""
        if self.stream is not None or self.stream_failed or not self.in_order:
            return
        if self.detached or self.kept is not None or self._tmp_path is None or not self.dirty:
            return
        path = self.path
        if self.entry is None or not self.entry.is_file:

            def send(chunks: Iterable[bytes]) -> Entry:
                return store.create_file_stream(path, chunks)
        else:

            def send(chunks: Iterable[bytes]) -> Entry:
                return store.replace_content_stream(path, chunks)

        self.stream = start(self._tmp_path, self.size, send)
        if self.stream is None:
            self.stream_failed = True  # no slot: this file uploads at close()

    def keep_for_recovery(self, recovery_dir: Path) -> Path:
        """Move the staged data to the recovery folder; returns where it went. The node keeps no
        data afterwards: its descriptors' reads and writes fail (DataKeptForRecovery)."""
        with self.lock:
            self.abort_stream()
            if self.kept is not None:
                return self.kept
            fd = self._temp_fd()  # a new empty file: an empty one is kept, for the record
            assert self._tmp_path is not None
            os.ftruncate(fd, self.size)
            dest = self._recovery_path(recovery_dir)
            self.unjournal()
            shutil.move(str(self._tmp_path), dest)
            os.chmod(dest, RECOVERY_FILE_MODE)
            with contextlib.suppress(OSError):
                os.close(fd)
            self._fd, self._tmp_path = None, None
            self.dirty = False
            self.loaded = False
            self.kept = dest
            return dest

    def copy_for_recovery(self, recovery_dir: Path) -> Path:
        """Copy the staged data to the recovery folder without taking ``lock`` (an upload in
        flight may hold it for a whole request timeout): for a process about to end at once."""
        dest = self._recovery_path(recovery_dir)
        tmp = self._tmp_path
        if tmp is not None:
            shutil.copyfile(tmp, dest)
        with open(dest, "ab") as fileobj:  # the staged size, not what the temp file holds
            fileobj.truncate(self.size)
        os.chmod(dest, RECOVERY_FILE_MODE)
        return dest

    def _recovery_path(self, recovery_dir: Path) -> Path:
        recovery_dir.mkdir(parents=True, exist_ok=True, mode=RECOVERY_DIR_MODE)
        os.chmod(recovery_dir, RECOVERY_DIR_MODE)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        safe = self.path.strip("/").replace("/", "__") or "root"
        dest = recovery_dir / f"{stamp}-{os.getpid()}-{safe}"
        counter = 1
        while dest.exists():
            counter += 1
            dest = recovery_dir / f"{stamp}-{os.getpid()}-{safe}.{counter}"
        return dest

    def discard(self) -> None:
        """Close and delete the temp file and its journal record. A temp file holding exactly
        what was uploaded last is first handed to the store's ``uploaded`` (the data cache keeps
        it, linked: reading one's own write then costs no request and no copy)."""
        with self.lock:
            self.abort_stream()
            self.stream = None
            self.unjournal()
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
            adopt, self._adopt = self._adopt, None
            if adopt is not None and self._tmp_path is not None and self.entry is not None:
                if not (self.dirty or self.detached) and self.kept is None:
                    adopt(self.entry, self._tmp_path, self.size)  # the size stored: unchanged
            if self._tmp_path is not None:
                with contextlib.suppress(OSError):
                    self._tmp_path.unlink()
                self._tmp_path = None
